"""Hostile files (issue 13, point 4): inputs that are not regular files are refused before a byte
is read, every input has a size limit, excerpts come only from config files (short, masked), and
an output path that is a device or a FIFO is refused, never replaced. Real files, FIFOs and
device nodes; gym-compile and gym-run as subprocesses."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from gym_compile.atomic import atomic_file
from gym_compile.files import FileRefused, iter_lines, open_input
from tests.cli_helpers import SW, no_crash, run, weather_world

AS_ROOT = os.geteuid() == 0


@pytest.fixture
def world(tmp_path: Path) -> Path:
    return weather_world(tmp_path)


def _device(path: Path) -> bool:
    """A character device like /dev/null at `path` (root only); False when it cannot be made."""
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, OSError):
        return False
    return True


def _still(path: Path, kind: str) -> None:
    mode = path.lstat().st_mode
    assert stat.S_ISCHR(mode) if kind == "device" else stat.S_ISFIFO(mode), f"{path} was replaced"


# ------------------------------------------------------------------ inputs


def test_dev_zero_and_a_fifo_as_config_are_refused_at_once(world: Path) -> None:
    os.mkfifo(world / "pipe.yaml")
    for config, words in (("/dev/zero", "is under /dev"), ("pipe.yaml", "is a FIFO")):
        ran = run("gym-compile", config, cwd=world, timeout=30)  # was: 7.6 GB in 11 s / a hang
        no_crash(ran)
        assert ran.code == 1 and words in ran.err and "GYM003" in ran.err, ran.err


def test_a_fifo_as_env_yaml_or_dataset_or_template_is_located_not_read(world: Path) -> None:
    os.mkfifo(world / "pipe")
    ran = run("gym-compile", *SW, "--env", "pipe", cwd=world, timeout=30)
    no_crash(ran)
    assert ran.code == 1 and "is a FIFO" in ran.err
    ran = run("gym-compile", *SW, "+input_jsonl_fpath=pipe", cwd=world, timeout=30)
    assert ran.code == 1 and "GYM050" in ran.err and "input file pipe is a FIFO" in ran.err
    assert "<command line>:+input_jsonl_fpath=pipe" in ran.err  # located at the value naming it


def test_proc_environ_as_a_dataset_quotes_nothing(world: Path) -> None:
    canary = "plaincanary0123456789"
    ran = run(
        "gym-compile",
        *SW,
        "+input_jsonl_fpath=/proc/self/environ",
        cwd=world,
        extra_env={"GYM_TEST_CANARY": canary},
    )
    no_crash(ran)
    assert ran.code == 1 and "is under /proc" in ran.err and canary not in ran.text


def test_a_dataset_that_is_not_jsonl_is_located_but_never_quoted(world: Path) -> None:
    (world / "shadow").write_text("root:$6$SECRETHASHvalue:20228:0:99999:7:::\n" * 3)
    ran = run("gym-compile", *SW, "+input_jsonl_fpath=shadow", cwd=world)
    no_crash(ran)
    assert ran.code == 1 and "shadow:1:1: error[GYM051] line 1 is not JSON" in ran.err
    assert "SECRETHASH" not in ran.text and "root:" not in ran.text


def test_a_20_mb_line_gives_a_short_excerpt(world: Path) -> None:
    (world / "long.yaml").write_text("x: [" + "a, " * 6_000_000 + "\n")  # 18 MB, one line, unclosed
    ran = run("gym-compile", *SW, "long.yaml", cwd=world)
    no_crash(ran)
    assert ran.code == 1 and len(ran.err) < 4000, len(ran.err)  # was: 20 MB of stderr


def test_a_long_line_is_cut_around_the_caret(world: Path) -> None:
    (world / "big.yaml").write_text("limit: " + "9" * 5000 + "\n")
    ran = run("gym-compile", *SW, "big.yaml", cwd=world)
    assert ran.code == 1 and "GYM006" in ran.err
    assert max(map(len, ran.err.splitlines())) < 250 and "…" in ran.err


def test_a_config_over_the_limit_is_refused_unread(world: Path) -> None:
    with open(world / "huge.yaml", "wb") as fh:  # sparse: 1 GiB on paper, nothing on disk
        fh.truncate(1 << 30)
    ran = run("gym-compile", *SW, "huge.yaml", cwd=world, timeout=30)
    no_crash(ran)
    assert ran.code == 1 and "GYM007" in ran.err and "over the 20971520-byte limit" in ran.err


def test_symlink_loops_are_one_located_error(world: Path) -> None:
    (world / "a.yaml").symlink_to("b.yaml")
    (world / "b.yaml").symlink_to("a.yaml")
    for args in (["a.yaml"], ["+input_jsonl_fpath=a.yaml"], ["+config_paths=[a.yaml]"]):
        ran = run("gym-compile", *SW, *args, cwd=world)
        no_crash(ran)  # was: RuntimeError: Symlink loop
        assert ran.code == 1 and "error[GYM0" in ran.err, ran.err


def test_gym_run_refuses_a_fifo_or_huge_plan_and_a_fifo_input(world: Path) -> None:
    os.mkfifo(world / "plan.fifo")
    ran = run("gym-run", "plan.fifo", cwd=world, timeout=30)
    no_crash(ran)
    assert ran.code == 4 and "is a FIFO" in ran.err
    with open(world / "big.json", "wb") as fh:
        fh.truncate(100 << 20)
    ran = run("gym-run", "big.json", cwd=world, timeout=30)
    assert ran.code == 4 and "over the 67108864-byte limit" in ran.err
    assert run("gym-compile", *SW, "-o", "plan.json", cwd=world).code == 0
    plan = json.loads((world / "plan.json").read_text())
    data = Path(plan["job"]["input"]["path"])
    data.unlink()
    os.mkfifo(data)  # swapped for a FIFO after compiling
    ran = run("gym-run", "plan.json", cwd=world, timeout=30)
    no_crash(ran)
    assert ran.code == 4 and "is a FIFO" in ran.err


def test_report_of_a_fifo_does_not_hang(world: Path) -> None:
    os.mkfifo(world / "r.jsonl")
    ran = run("gym-run", "report", "r.jsonl", cwd=world, timeout=30)
    no_crash(ran)
    assert ran.code == 1 and "is a FIFO" in ran.err


def test_reader_limits_hold_in_process(tmp_path: Path) -> None:
    big = tmp_path / "big"
    with open(big, "wb") as fh:
        fh.truncate(10_000)
    with pytest.raises(FileRefused, match="over the 100-byte limit"):
        open_input(big, 100)
    lines = tmp_path / "lines"
    lines.write_bytes(b"ok\n" + b"x" * 5000 + b"\nlast\n")
    with open_input(lines, 1 << 20) as fh:
        got = [(line.lineno, line.data, line.size) for line in iter_lines(fh, 100)]
    assert got == [(1, b"ok\n", 3), (2, None, 5001), (3, b"last\n", 5)]


# ------------------------------------------------------------------ outputs


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_outputs_never_replace_a_device_or_fifo(world: Path, kind: str) -> None:
    """compile -o, output_jsonl_fpath, the metrics file, export -o, report -o."""

    def special(name: str) -> Path:
        path = world / name
        if kind == "fifo":
            os.mkfifo(path)
        elif not _device(path):
            pytest.skip("making a device node needs root")
        return path

    plan_out = special("plan.out")
    ran = run("gym-compile", *SW, "-o", "plan.out", cwd=world, timeout=30)
    no_crash(ran)
    assert ran.code == 2 and "refusing to replace it" in ran.err  # was: replaced (as root)
    _still(plan_out, kind)

    rollouts = special("rollouts.jsonl")
    ran = run("gym-compile", *SW, "+output_jsonl_fpath=rollouts.jsonl", cwd=world, timeout=30)
    assert ran.code == 1 and "GYM003" in ran.err and "cannot write rollouts.jsonl" in ran.err
    _still(rollouts, kind)

    (world / "out").mkdir()
    metrics = special("out/r.metrics.json")
    ran = run("gym-compile", *SW, "+output_jsonl_fpath=out/r.jsonl", cwd=world)
    assert ran.code == 1 and "the metrics file" in ran.err
    metrics.unlink()
    ran = run("gym-compile", *SW, "+output_jsonl_fpath=out/r.jsonl", "-o", "p.json", cwd=world)
    assert ran.code == 0, ran.err
    special("out/r.metrics.json")  # appears after compiling: gym-run refuses before any rollout
    ran = run("gym-run", "p.json", "-q", cwd=world, timeout=60)
    no_crash(ran)
    assert ran.code == 1 and "cannot write the metrics" in ran.err
    assert not (world / "out/r.jsonl").exists() or (world / "out/r.jsonl").stat().st_size == 0
    _still(world / "out/r.metrics.json", kind)
    (world / "out/r.metrics.json").unlink()
    assert run("gym-run", "p.json", "-q", "--overwrite", cwd=world).code == 0

    export = special("export.jsonl")
    ran = run("gym-run", "export", "p.json", "-o", "export.jsonl", "--overwrite", cwd=world)
    no_crash(ran)
    assert ran.code == 1 and "cannot write the export" in ran.err
    _still(export, kind)

    report = special("report.html")
    ran = run("gym-run", "report", "out/r.jsonl", "-o", "report.html", cwd=world, timeout=60)
    no_crash(ran)
    assert ran.code == 1 and "not a regular file" in ran.err
    _still(report, kind)


def test_atomic_writes_keep_modes_and_links(tmp_path: Path) -> None:
    target = tmp_path / "real.json"
    target.write_text("old")
    target.chmod(0o640)
    link = tmp_path / "link.json"
    link.symlink_to(target)
    with atomic_file(link) as fh:
        fh.write("new")
    assert link.is_symlink() and target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    with atomic_file(tmp_path / "fresh.json") as fh:
        fh.write("x")
    assert stat.S_IMODE((tmp_path / "fresh.json").stat().st_mode) & 0o044  # not mkstemp's 0600
    with pytest.raises(FileRefused, match="under /proc"):
        with atomic_file("/proc/self/environ") as fh:
            fh.write("x")


def test_a_nul_or_escape_in_a_path_is_located_and_shown_escaped(world: Path) -> None:
    """Found by benchmarks/bench_fuzz.py: a NUL in a path raised ValueError (embedded null byte)."""
    for key in ("input_jsonl_fpath", "output_jsonl_fpath", "config_paths", "response_cache"):
        value = {"config_paths": '["a\\0b"]', "response_cache": '{path: "a\\0b"}'}.get(
            key, '"a\\0b"'
        )
        (world / "nul.yaml").write_text(f"{key}: {value}\n")
        ran = run("gym-compile", *SW, "nul.yaml", cwd=world)
        no_crash(ran)
        assert ran.code == 1 and "a\\x00b" in ran.err and "\x00" not in ran.err, ran.err
        assert "holds a NUL character" in ran.err
    ran = run("gym-compile", *SW, "+limit=\x1b[2J", cwd=world)
    assert ran.code == 1 and "\x1b" not in ran.err and "\\x1b[2J" in ran.err


def test_a_name_too_long_for_the_file_system_is_located(world: Path) -> None:
    """Found by benchmarks/bench_fuzz.py: Path.exists() raised ENAMETOOLONG (4 of 30,000)."""
    name = "x" * 10_000
    for key in ("output_jsonl_fpath", "input_jsonl_fpath", "response_cache.path"):
        ran = run("gym-compile", *SW, f"+{key}={name}", cwd=world)
        no_crash(ran)
        assert ran.code == 1 and "name too long" in ran.err and len(ran.err) < 4000, ran.err[:500]
    ran = run("gym-compile", "lint", name + ".jsonl", cwd=world)
    no_crash(ran)
    assert ran.code == 1 and "name too long" in ran.text
