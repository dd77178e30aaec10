"""One way to write an output file: a temp file beside it, fsync, rename; never half a file, and
never in place of something that is not a regular file.

`-o /dev/null` as root once replaced the device with a regular file (rename replaces whatever the
name points at): an output path that exists and is a device, a FIFO, a socket, a directory, or
lies under /proc, /sys or /dev is refused (`FileRefused`, an OSError) before anything is written.
A symbolic link to a regular file keeps being a link: its target is replaced.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from gym_compile.files import FileRefused, real_path, refusal


def output_refusal(path: str | os.PathLike[str]) -> str | None:
    """Why `path` must not be written (None: it is a regular file, or does not exist yet)."""
    return refusal(path, to_write=True)


def check_output(path: str | os.PathLike[str]) -> Path:
    """The real path to write `path` through, or FileRefused saying why it must not be."""
    why = output_refusal(path)
    if why is not None:
        raise FileRefused(why, path)
    return real_path(path)


@contextmanager
def atomic_file(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Yields a file to write; on success it replaces `path` whole, on any error (a full disk
    too) it vanishes and the old file (if any) is kept. Readers see the old content or the new,
    never a mix. The old file's permissions are kept; a new file gets the usual 0666 & ~umask."""
    target = check_output(path)
    parent = target.parent
    os.makedirs(parent, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes 0600; a plan or report is meant to be shared
            os.fchmod(fd, _mode_for(target))
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        check_output(target)  # nothing else was put in its place while we wrote
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read_umask() -> int:
    """Read once, at import (single-threaded): reading it means setting it for a moment."""
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


_UMASK = _read_umask()


def _mode_for(target: Path) -> int:
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        return 0o666 & ~_UMASK
