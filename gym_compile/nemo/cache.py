"""cache: derived schemas kept by source hash, so linting hundreds of NeMo Gym files stays fast.

Two levels: in the process (a lint derives each implementation once) and on disk under
$GYM_COMPILE_CACHE_DIR, else $XDG_CACHE_HOME/gym-compile/derived-schemas, else
~/.cache/gym-compile/derived-schemas. An entry is keyed by the entrypoint's path and content and
the roots searched, and holds the hash of every file the derivation read: any of them changed, and
the entry is derived again. The cache is an optimisation only: any failure to read or write it
falls back silently to deriving.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from gym_compile.nemo import pysource
from gym_compile.nemo.derive import FORMAT, Derived, derive

MAX_ENTRIES = 4096  # past this the oldest quarter of the entries is removed
_MEMO: dict[tuple[str, ...], tuple[tuple[int, int], Derived]] = {}
_MEMO_MAX = 1024


@cache
def _code_digest() -> str:
    """The derivation code's own hash: a changed gym-compile never reads an older entry."""
    digest = hashlib.sha256(str(FORMAT).encode())
    for path in sorted(Path(__file__).parent.glob("*.py")):
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(path.name.encode())
    return digest.hexdigest()


def cache_dir() -> Path:
    explicit = os.environ.get("GYM_COMPILE_CACHE_DIR")
    if explicit:
        return Path(explicit) / "derived-schemas"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gym-compile" / "derived-schemas"


def cached_derive(
    source: Path, server_type: str, implementation: str, roots: Sequence[Path]
) -> Derived:
    """derive(), unless a cached result for the same files exists."""
    try:
        st = source.stat()
        data = source.read_bytes()
    except OSError:
        return derive(source, server_type, implementation, roots)
    memo_key = (str(source), server_type, implementation, *map(str, roots))
    signature = (st.st_mtime_ns, st.st_size)
    memo = _MEMO.get(memo_key)
    if memo is not None and memo[0] == signature:
        return memo[1]
    key = hashlib.sha256(
        "\0".join([str(FORMAT), hashlib.sha256(data).hexdigest(), *memo_key]).encode()
    ).hexdigest()
    derived = _read(key)
    if derived is None:
        derived = derive(source, server_type, implementation, roots)
        _write(key, derived)
    if len(_MEMO) >= _MEMO_MAX:
        _MEMO.pop(next(iter(_MEMO)))
    _MEMO[memo_key] = (signature, derived)
    return derived


def _read(key: str) -> Derived | None:
    try:
        with open(cache_dir() / f"{key}.json", encoding="utf-8") as fh:
            entry = json.load(fh)
        if entry.get("format") != FORMAT:
            return None
        derived = Derived.from_json(entry["derived"])
        for path, digest in derived.files.items():
            if hashlib.sha256(Path(path).read_bytes()).hexdigest() != digest:
                return None
        return derived
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _write(key: str, derived: Derived) -> None:
    """A temp file beside the entry, then a rename: a reader never sees half an entry."""
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{key}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"format": FORMAT, "derived": derived.to_json()}, fh)
            os.replace(tmp, folder / f"{key}.json")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        _trim(folder)
    except (OSError, TypeError, ValueError):
        return


def _trim(folder: Path) -> None:
    entries = [e for e in os.scandir(folder) if e.name.endswith(".json")]
    if len(entries) <= MAX_ENTRIES:
        return
    entries.sort(key=lambda e: e.stat().st_mtime)
    for entry in entries[: len(entries) // 4]:
        try:
            os.unlink(entry.path)
        except OSError:
            pass


def clear_memo() -> None:
    """Forget what this process derived and parsed (tests, benchmarks measuring the disk cache)."""
    _MEMO.clear()
    pysource.clear_parsed()
