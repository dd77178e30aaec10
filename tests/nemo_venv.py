"""Virtualenvs with nemo-gym from PyPI, for tests that run NeMo Gym's own code: 0.4.0 on Python
3.12, and 0.7.0 (the newest) on Python 3.13.

Created once per machine under <cache>/gym-compile/venvs/nemo-gym-<version>-py<python> (<cache> =
$XDG_CACHE_HOME or ~/.cache) and kept between CI runs; the file READY inside marks a finished
install, a lock keeps two test sessions from installing at once. The calling test is skipped with
the reason only when no such Python exists or PyPI cannot be reached; any other pip failure fails.

nemo-gym 0.7.0 declares Requires-Python >=3.13.14; the machines here have 3.13.0, so it is installed
with --ignore-requires-python (its code and dependencies run on 3.13.0; the tests show it).
"""

from __future__ import annotations

import fcntl
import glob
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

VERSION = "0.4.0"
PY = "3.12"
#: version -> (the Python minor version it is installed for, extra pip flags)
RELEASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "0.4.0": ("3.12", ()),
    "0.7.0": ("3.13", ("--ignore-requires-python",)),
}
INSTALL_TIMEOUT_S = 1800


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gym-compile"


def venv_dir(version: str = VERSION) -> Path:
    return cache_root() / "venvs" / f"nemo-gym-{version}-py{RELEASES[version][0]}"


def nemo_python(version: str = VERSION) -> Path:
    """The venv's python (installing it first if needed); skips the test when that cannot be."""
    venv = venv_dir(version)
    python = venv / "bin" / "python"
    if (venv / "READY").is_file():
        return python
    minor = RELEASES[version][0]
    base = find_python(minor)
    if base is None:
        pytest.skip(f"no Python {minor} on this machine to install nemo-gym=={version} into")
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be installing: wait for it
        if (venv / "READY").is_file():
            return python
        _install(base, venv, version)
    return python


def nemo_root(python: Path) -> Path:
    """The NeMo Gym tree the wheel installed (its server folders sit beside `nemo_gym`)."""
    out = subprocess.run(
        [str(python), "-c", "import importlib.util as u; print(u.find_spec('nemo_gym').origin)"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return Path(out.stdout.strip()).parent.parent


def find_python(minor: str) -> str | None:
    """python3.X on PATH (pyenv shims may exist without answering), else a pyenv install."""
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    name = f"python{minor}"
    candidates = [shutil.which(name)]
    candidates += sorted(glob.glob(os.path.join(root, "versions", f"{minor}*", "bin", name)))
    candidates += [f"/usr/bin/{name}", f"/usr/local/bin/{name}"]
    for candidate in candidates:
        if not candidate or not os.path.exists(candidate):
            continue
        try:
            proc = subprocess.run(
                [candidate, "-c", "import sys, venv; print(sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if proc.returncode == 0 and proc.stdout.strip() == str(
            tuple(int(n) for n in minor.split("."))
        ):
            return candidate
    return None


def _install(base: str, venv: Path, version: str) -> None:
    if venv.exists():  # a torn earlier attempt
        shutil.rmtree(venv)
    log_path = venv.parent / f"nemo-install-{version}.log"
    with open(log_path, "w", encoding="utf-8") as log:
        steps = [
            [base, "-m", "venv", str(venv)],
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--timeout", "60"]
            + ["--retries", "3", *RELEASES[version][1], f"nemo-gym=={version}"],
        ]
        for cmd in steps:
            log.write(f"$ {' '.join(cmd)}\n")
            log.flush()
            proc = subprocess.run(
                cmd, stdout=log, stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT_S
            )
            if proc.returncode != 0:
                break
    if proc.returncode == 0:
        check = subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import nemo_gym, fastapi, uvicorn"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check.returncode == 0:
            (venv / "READY").write_text(version, encoding="utf-8")
            return
    shutil.rmtree(venv, ignore_errors=True)
    if not _pypi_reachable():
        pytest.skip(f"PyPI cannot be reached to install nemo-gym=={version}")
    tail = "\n".join(log_path.read_text(encoding="utf-8").strip().splitlines()[-8:])
    pytest.fail(
        f"installing nemo-gym=={version} failed although PyPI answers ({log_path}):\n{tail}"
    )


def _pypi_reachable() -> bool:
    try:
        with socket.create_connection(("pypi.org", 443), timeout=10):
            return True
    except OSError:
        return False
