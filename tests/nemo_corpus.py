"""NeMo Gym's released trees for tests: a nemo-gym wheel fetched from PyPI by pip, unpacked once.

Tests read NeMo Gym's real server folders (app.py, configs/, data/) from the wheel of a given
release. The wheel goes to <cache>/gym-compile/wheels and its tree to
<cache>/gym-compile/nemo-gym/<version>/ (<cache> = $XDG_CACHE_HOME or ~/.cache), so later runs
on the machine neither download nor unpack again. When PyPI cannot be reached the calling test
is skipped with that reason; any other failure of pip fails the test.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

#: The releases the tests read, with a Python version their wheel accepts (0.7.0 needs 3.13.14).
PYTHON_FOR = {"0.4.0": "3.12", "0.7.0": "3.13.14"}
LATEST = "0.7.0"
_DONE = ".complete"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gym-compile"


def nemo_gym_tree(version: str = LATEST) -> Path:
    """The unpacked wheel of nemo-gym==version (holds nemo_gym/, resources_servers/, ...)."""
    tree = cache_root() / "nemo-gym" / version
    if (tree / _DONE).is_file():
        return tree
    wheel = _wheel(version)
    tree.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=tree.parent, prefix=f".{version}."))
    try:
        with zipfile.ZipFile(wheel) as zf:
            for member in zf.infolist():
                target = (tmp / member.filename).resolve()
                if not target.is_relative_to(tmp.resolve()):
                    raise RuntimeError(f"{wheel}: member {member.filename!r} escapes the tree")
            zf.extractall(tmp)
        (tmp / _DONE).write_text(version, encoding="utf-8")
        if tree.exists():  # another run unpacked it meanwhile, or a torn earlier attempt
            if (tree / _DONE).is_file():
                return tree
            shutil.rmtree(tree)
        os.replace(tmp, tree)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return tree


def _wheel(version: str) -> Path:
    wheels = cache_root() / "wheels"
    name = f"nemo_gym-{version}-py3-none-any.whl"
    if (wheels / name).is_file():
        return wheels / name
    wheels.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        PYTHON_FOR.get(version, PYTHON_FOR[LATEST]),
        "--timeout",
        "30",
        "--retries",
        "2",
        "-d",
        str(wheels),
        f"nemo-gym=={version}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    found = sorted(wheels.glob(f"nemo_gym-{version}-*.whl"))
    if proc.returncode == 0 and found:
        return found[0]
    if not _pypi_reachable():
        pytest.skip(
            f"PyPI cannot be reached to download nemo-gym=={version} for the NeMo Gym corpus"
        )
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
    pytest.fail(f"pip could not download nemo-gym=={version} although PyPI answers:\n{tail}")
    raise AssertionError("unreachable")  # pytest.fail raises; this keeps type checkers content


def _pypi_reachable() -> bool:
    try:
        with socket.create_connection(("pypi.org", 443), timeout=10):
            return True
    except OSError:
        return False


def server_configs(tree: Path) -> list[Path]:
    """Every server config file of a tree (`<type>/<implementation>/configs/*.yaml`), sorted."""
    types = ("resources_servers", "responses_api_agents", "responses_api_models")
    return sorted(p for t in types for p in (tree / t).glob("*/configs/*.yaml"))
