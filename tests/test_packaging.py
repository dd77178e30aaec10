"""The wheel works on its own: built from the repo, installed in a fresh venv, run from elsewhere."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, REPO


def run(cmd: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A venv holding only the wheel and its declared dependencies; returns its bin directory."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"  # build from a copy so the checkout gets no build/ or egg-info litter
    shutil.copytree(
        REPO,
        src,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "results", "build", "dist", "*.egg-info", "__pycache__", ".*cache"
        ),
    )
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            str(src),
            "-w",
            str(work / "dist"),
        ],
        work,
    )
    (wheel,) = (work / "dist").glob("gym_compile-*.whl")
    venv.create(work / "venv", with_pip=True)
    bin_dir = work / "venv" / ("Scripts" if sys.platform == "win32" else "bin")
    run([str(bin_dir / "python"), "-m", "pip", "install", "-q", str(wheel)], work)
    return bin_dir


def test_wheel_compiles_and_runs_the_example_from_another_directory(installed, tmp_path):
    example = tmp_path / "simple_weather"
    shutil.copytree(EXAMPLES / "simple_weather", example)
    run(
        [
            str(installed / "gym-compile"),
            "simple_weather/simple_weather.yaml",
            "simple_weather/stand_in_model.yaml",
            "+output_jsonl_fpath=out/rollouts.jsonl",
            "+limit=3",
            "-o",
            "plan.json",
        ],
        tmp_path,
    )
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["job"]["input"]["path"] == str((example / "data" / "example.jsonl").resolve())
    proc = run([str(installed / "gym-run"), "plan.json"], tmp_path)
    lines = (tmp_path / "out" / "rollouts.jsonl").read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(line)["reward"] == 1.0 for line in lines)
    assert "rollouts.jsonl" in proc.stdout + proc.stderr


def test_wheel_does_not_import_from_the_checkout(installed, tmp_path):
    proc = run(
        [
            str(installed / "python"),
            "-c",
            "import gym_compile.assets as a, gym_run; print(a.schemas_dir()); print(gym_run.__file__)",
        ],
        tmp_path,
    )
    schemas, runtime_file = proc.stdout.split()
    assert str(REPO) not in schemas and str(REPO) not in runtime_file
    assert (Path(schemas) / "plan.schema.json").is_file()


def test_wheel_installs_no_generic_top_level_name(installed, tmp_path):
    """A user's own runtime.py must not shadow us: only gym_compile and gym_run land at the top."""
    site = Path(
        run(
            [
                str(installed / "python"),
                "-c",
                "import gym_run, pathlib; print(pathlib.Path(gym_run.__file__).parent.parent)",
            ],
            tmp_path,
        ).stdout.strip()
    )
    ours = {p.name for p in site.iterdir() if p.name.startswith(("gym", "runtime"))}
    assert "runtime" not in ours and {"gym_compile", "gym_run"} <= ours


def test_every_package_in_the_tree_is_listed_in_setup_cfg():
    """A subpackage missing from setup.cfg works in a checkout and breaks only in the wheel."""
    listed = {
        line.strip()
        for line in (REPO / "setup.cfg").read_text().splitlines()
        if line.startswith("    gym_")
    }
    found = {
        ".".join(p.parent.relative_to(REPO).parts) for p in REPO.glob("gym_compile/**/__init__.py")
    }
    found |= {
        ".".join(p.parent.relative_to(REPO / "runtime").parts)
        for p in (REPO / "runtime").glob("gym_run/**/__init__.py")
    }
    missing = sorted(found - {name.split(" ")[0] for name in listed})
    assert not missing, f"add to setup.cfg [options] packages: {missing}"
