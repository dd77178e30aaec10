"""A Python 3.12 virtualenv with nemo-gym==0.4.0 from PyPI, for tests that run NeMo Gym's own code.

Created once per machine under <cache>/gym-compile/venvs/nemo-gym-0.4.0-py3.12 (<cache> =
$XDG_CACHE_HOME or ~/.cache) and kept between CI runs; the file READY inside marks a finished
install, a lock keeps two test sessions from installing at once. The calling test is skipped with
the reason only when no Python 3.12 exists or PyPI cannot be reached; any other pip failure fails.
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
INSTALL_TIMEOUT_S = 1800


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gym-compile"


def venv_dir() -> Path:
    return cache_root() / "venvs" / f"nemo-gym-{VERSION}-py{PY}"


def nemo_python() -> Path:
    """The venv's python (installing it first if needed); skips the test when that cannot be."""
    venv = venv_dir()
    python = venv / "bin" / "python"
    if (venv / "READY").is_file():
        return python
    base = find_python312()
    if base is None:
        pytest.skip(f"no Python {PY} on this machine to install nemo-gym=={VERSION} into")
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be installing: wait for it
        if (venv / "READY").is_file():
            return python
        _install(base, venv)
    return python


def find_python312() -> str | None:
    """python3.12 on PATH (pyenv shims may exist without answering), else a pyenv install."""
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    candidates = [shutil.which(f"python{PY}")]
    candidates += sorted(glob.glob(os.path.join(root, "versions", f"{PY}*", "bin", f"python{PY}")))
    candidates += [f"/usr/bin/python{PY}", f"/usr/local/bin/python{PY}"]
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
        if proc.returncode == 0 and proc.stdout.strip() == "(3, 12)":
            return candidate
    return None


def _install(base: str, venv: Path) -> None:
    if venv.exists():  # a torn earlier attempt
        shutil.rmtree(venv)
    log_path = venv.parent / "nemo-install.log"
    with open(log_path, "w", encoding="utf-8") as log:
        steps = [
            [base, "-m", "venv", str(venv)],
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--timeout", "60"]
            + ["--retries", "3", f"nemo-gym=={VERSION}"],
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
            (venv / "READY").write_text(VERSION, encoding="utf-8")
            return
    shutil.rmtree(venv, ignore_errors=True)
    if not _pypi_reachable():
        pytest.skip(f"PyPI cannot be reached to install nemo-gym=={VERSION}")
    tail = "\n".join(log_path.read_text(encoding="utf-8").strip().splitlines()[-8:])
    pytest.fail(
        f"installing nemo-gym=={VERSION} failed although PyPI answers ({log_path}):\n{tail}"
    )


def _pypi_reachable() -> bool:
    try:
        with socket.create_connection(("pypi.org", 443), timeout=10):
            return True
    except OSError:
        return False
