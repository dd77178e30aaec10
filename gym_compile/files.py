"""What gym-compile and gym-run read: regular files only, each kind under a size limit.

A path names a file written by someone else. `/dev/zero` as a config grew the process to 7.6 GB
in 11 s, a FIFO hung it, `/proc/self/environ` as a dataset printed the environment. Every input
is opened here: without blocking (a FIFO cannot hang the open), checked to be a regular file
outside /proc, /sys and /dev (procfs files claim to be regular and empty), and refused by its size
before a byte is read. A refusal is a `FileRefused` (an OSError: `strerror` says why in words),
which the callers turn into a located diagnostic or one line.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MiB = 1024 * 1024
GiB = 1024 * MiB

CONFIG_BYTES = 20 * MiB  # a YAML config or env.yaml, a price table, a metrics document
PLAN_BYTES = 64 * MiB  # plan.json (1,000 servers take a few MB)
TEMPLATE_BYTES = 1 * MiB  # a judge prompt template
LINE_BYTES = 16 * MiB  # one JSONL line: an input row or a rollout record (= a request body's limit)
RECORD_BYTES = 256 * MiB  # one rollout record (a rollout may hold several 32 MiB answers)
JSONL_BYTES = 64 * GiB  # a dataset or a rollouts file, read line by line

PSEUDO_ROOTS = ("/proc", "/sys", "/dev")
_CHUNK = 1 * MiB


class FileRefused(OSError):
    """A path that is not a regular file, or too large: `strerror` is the reason in words."""

    def __init__(self, reason: str, path: str | os.PathLike[str], code: int = errno.EINVAL) -> None:
        super().__init__(code, reason, os.fspath(path))


NUL_REASON = "holds a NUL character, which no file name can"
TOO_LONG = "is a name too long for the file system"


def real_path(path: str | os.PathLike[str]) -> Path:
    """The absolute path with symbolic links followed; a link loop stays as written (opening it
    then fails with ELOOP) instead of raising RuntimeError as Path.resolve() does, and a name with
    a NUL in it stays as written (every check below refuses it) instead of raising ValueError."""
    absolute = os.path.abspath(os.fspath(path))
    if "\x00" in absolute:
        return Path(absolute)
    return Path(os.path.realpath(absolute))


def _mode(path: str | os.PathLike[str]) -> int | None:
    """The file's mode, or None when it cannot be known (missing, a name too long, a NUL)."""
    try:
        return os.stat(path).st_mode
    except (OSError, ValueError):
        return None


def exists(path: str | os.PathLike[str]) -> bool:
    """Path.exists() that answers False instead of raising for a name too long (ENAMETOOLONG)."""
    return _mode(path) is not None


def is_file(path: str | os.PathLike[str]) -> bool:
    mode = _mode(path)
    return mode is not None and stat.S_ISREG(mode)


def is_dir(path: str | os.PathLike[str]) -> bool:
    mode = _mode(path)
    return mode is not None and stat.S_ISDIR(mode)


def kind_of(mode: int) -> str | None:
    """None for a regular file; else what it is, in words."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def pseudo_root(path: Path) -> str | None:
    """'/proc' etc. when the real path is inside a kernel pseudo-filesystem."""
    text = str(path)
    return next((r for r in PSEUDO_ROOTS if text == r or text.startswith(r + os.sep)), None)


def refusal(
    path: str | os.PathLike[str], *, directory_ok: bool = False, to_write: bool = False
) -> str | None:
    """Why this existing path must not be read or replaced (None: a regular file, or missing).
    `to_write`: the reason says that writing is refused (gym_compile.atomic's output check)."""
    real = real_path(path)
    if "\x00" in str(real):
        return NUL_REASON
    root = pseudo_root(real)
    if root is not None:
        return f"is under {root}, not a regular file" + (
            "; refusing to write there" if to_write else ""
        )
    try:
        mode = os.stat(real).st_mode
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            return TOO_LONG
        return None  # missing or unreadable: the open (or the write) says so in its own words
    what = kind_of(mode)
    if what is None or (directory_ok and stat.S_ISDIR(mode)):
        return None
    return f"is {what}, not a regular file" + ("; refusing to replace it" if to_write else "")


def open_input(path: str | os.PathLike[str], limit: int, what: str = "file") -> BinaryIO:
    """A regular file opened for reading, refused (FileRefused) when it is anything else or
    larger than `limit` bytes. FileNotFoundError and PermissionError pass through."""
    real = real_path(path)
    if "\x00" in str(real):
        raise FileRefused(NUL_REASON, str(path).replace("\x00", "\\0"))
    root = pseudo_root(real)
    if root is not None:
        raise FileRefused(f"is under {root}, not a regular file", path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    fd = os.open(real, flags | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        kind = kind_of(info.st_mode)
        if kind is not None:
            code = errno.EISDIR if stat.S_ISDIR(info.st_mode) else errno.EINVAL
            raise FileRefused(f"is {kind}, not a regular file", path, code)
        if info.st_size > limit:
            raise FileRefused(too_large(info.st_size, limit, what), path, errno.EFBIG)
        _blocking(fd)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def too_large(size: int, limit: int, what: str) -> str:
    return f"is {size} bytes, over the {limit}-byte limit for {what}"


def read_bytes(path: str | os.PathLike[str], limit: int, what: str = "file") -> bytes:
    """The whole file, at most `limit` bytes (one that grows past it while read is refused too)."""
    with open_input(path, limit, what) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise FileRefused(too_large(len(data), limit, what), path, errno.EFBIG)
    return data


@dataclass(frozen=True)
class Line:
    """One line of a JSONL file; `data` is None when it is longer than the limit (`size` says how long)."""

    lineno: int
    data: bytes | None
    size: int


def iter_lines(
    fh: BinaryIO, limit: int = LINE_BYTES, digest: hashlib._Hash | None = None
) -> Iterator[Line]:
    """Lines with their newline, each held in memory only up to `limit` bytes: a 20 GB line with
    no newline costs a chunk of memory, not 20 GB. `digest` sees every byte, kept or not."""
    lineno = 0
    while True:
        data = fh.readline(limit + 1)
        if not data:
            return
        lineno += 1
        if digest is not None:
            digest.update(data)
        if len(data) <= limit or data.endswith(b"\n"):
            yield Line(lineno, data, len(data))
            continue
        size = len(data)
        while True:  # the rest of an over-long line: counted and hashed, never kept
            more = fh.readline(_CHUNK)
            if digest is not None:
                digest.update(more)
            size += len(more)
            if not more or more.endswith(b"\n"):
                break
        yield Line(lineno, None, size)


def sha256_of(path: str | os.PathLike[str], limit: int = JSONL_BYTES) -> str:
    """Streams a regular file through sha256 (refused like any input, so /dev/zero cannot spin)."""
    digest = hashlib.sha256()
    with open_input(path, limit) as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _blocking(fd: int) -> None:
    """Back to blocking reads once we know it is a regular file (O_NONBLOCK only kept the open
    of a FIFO from waiting for a writer)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows has no O_NONBLOCK either
        return
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
