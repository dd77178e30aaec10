"""No internal error for any input (issue 13, point 8): every case the issue lists gets a located
diagnostic or one line, as real subprocesses; a response cache that cannot write degrades to no
cache with one warning and fails no rollout."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gym_run.endpoint.cache import ResponseCache

from tests.cli_helpers import (
    SW,
    compile_openai,
    endpoint,
    env,
    no_crash,
    openai_world,
    response,
    run,
    weather_world,
)

DEEP = "[" * 100_000 + "]" * 100_000
ROW = json.loads(
    (Path(__file__).parent.parent / "examples/simple_weather/data/example.jsonl")
    .read_text()
    .splitlines()[0]
)


@pytest.fixture
def world(tmp_path: Path) -> Path:
    return weather_world(tmp_path)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["+num_repeats=two"], "error[GYM031] $.num_repeats"),
        (["+limit=1e3"], "error[GYM031] $.limit"),
        (["+budget.max_usd=abc", "prices.yaml"], "error[GYM031] $.budget.max_usd"),
        (["+output_jsonl_fpath=null"], "error[GYM031] $.output_jsonl_fpath"),
        (["+num_samples_in_parallel=1e9"], "error[GYM031] $.num_samples_in_parallel"),
        (["limit.yaml"], "limit.yaml:1:8: error[GYM031] $.limit"),
        (["chain.yaml"], "chain.yaml:1:5: error[GYM009]"),
        (
            ["+input_jsonl_fpath=deep.jsonl"],
            "deep.jsonl:1:1: error[GYM051] line 1 is not JSON: nested deeper",
        ),
        (
            ["+input_jsonl_fpath=digits.jsonl"],
            "digits.jsonl:1:1: error[GYM051] line 1 is not JSON: a number too long",
        ),
        (["digits.yaml"], "digits.yaml:1:8: error[GYM006]"),
    ],
)
def test_the_listed_inputs_get_located_diagnostics(
    world: Path, args: list[str], words: str
) -> None:
    (world / "prices.yaml").write_text(
        "prices: {models: {stand-in-1: {input: 1.0, output: 2.0}}}\n"
    )
    (world / "limit.yaml").write_text("limit: '5'\n")
    (world / "chain.yaml").write_text(
        "".join(f"v{i}: ${{v{i + 1}}}\n" for i in range(200)) + "v200: end\nlimit: ${v0}\n"
    )
    (world / "deep.jsonl").write_text(DEEP + "\n")
    (world / "digits.jsonl").write_text(
        '{"responses_create_params": {"input": "hi"}, "n": ' + "9" * 5000 + "}\n"
    )
    (world / "digits.yaml").write_text("limit: " + "9" * 5000 + "\n")
    ran = run("gym-compile", *SW, *args, cwd=world)
    no_crash(ran)
    assert ran.code == 1 and words in ran.err, ran.err


def test_twenty_thousand_unknown_keys_are_all_reported(world: Path) -> None:
    keys = "".join(f"      k{i}: 1\n" for i in range(20_000))
    (world / "many.yaml").write_text(
        "policy_model:\n  responses_api_models:\n    stand_in_model:\n      model: stand-in-1\n"
        + keys
    )
    ran = run("gym-compile", "sw/simple_weather.yaml", "many.yaml", cwd=world, timeout=60)
    no_crash(ran)  # 30 s (quadratic) before; benchmarks/bench_hostile.py prints the figure
    assert ran.code == 1 and "20000 errors" in ran.err


def test_a_closed_stdout_is_quiet(world: Path) -> None:
    """`gym-compile explain-code | head -1`: the reader is gone before the first write."""
    for tool, args in (("gym_compile.cli", ["explain-code"]), ("gym_run.cli", ["--help"])):
        read, write = os.pipe()
        os.close(read)
        proc = subprocess.run(
            [sys.executable, "-m", tool, *args],
            stdout=write,
            stderr=subprocess.PIPE,
            env=env(),
            timeout=60,
        )
        os.close(write)
        assert proc.returncode == 1 and b"Traceback" not in proc.stderr, proc.stderr
        assert b"internal error" not in proc.stderr


def _deep_arguments(_path: str, _headers: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
    """First a get_weather call whose arguments nest 100,000 deep; then a plain answer."""
    if any(
        isinstance(i, dict) and i.get("type") == "function_call_output"
        for i in body.get("input", [])
    ):
        return 200, response("done")
    call = {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_1",
        "name": "get_weather",
        "arguments": DEEP,
        "status": "completed",
    }
    return 200, response("", output=[call])


def _deep_or_long_body(
    _path: str, _headers: dict[str, str], body: dict[str, Any]
) -> tuple[int, Any]:
    text = body["input"][-1]["content"] if isinstance(body.get("input"), list) else ""
    if "digits" in str(text):
        return 200, ('{"id": "r", "n": ' + "9" * 5000 + "}").encode()
    return 200, ('{"output": ' + DEEP + "}").encode()


def test_hostile_model_answers_are_recorded_failures_not_crashes(tmp_path: Path) -> None:
    with endpoint(_deep_arguments) as server:
        openai_world(tmp_path, server.url, "sk-test-key-0123456789")
        assert compile_openai(tmp_path, "+limit=1", plan="p.json").code == 0
        ran = run("gym-run", "p.json", "-q", cwd=tmp_path)
        no_crash(ran)
        assert ran.code == 0, (
            ran.err
        )  # the model read why its arguments were refused, then answered
        record = json.loads(
            (tmp_path / "results/simple_weather_simple_agent_rollouts.jsonl").read_text()
        )
        outputs = [
            o for o in record["response"]["output"] if o.get("type") == "function_call_output"
        ]
        assert "nested deeper than 200 levels" in outputs[0]["output"]
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        json.dumps(ROW)
        + "\n"
        + json.dumps(
            {
                **ROW,
                "responses_create_params": {
                    **ROW["responses_create_params"],
                    "input": [{"role": "user", "content": "digits"}],
                },
            }
        )
        + "\n"
    )
    with endpoint(_deep_or_long_body) as server:
        openai_world(tmp_path, server.url, "sk-test-key-0123456789")
        assert compile_openai(tmp_path, "+input_jsonl_fpath=rows.jsonl", plan="p.json").code == 0
        ran = run("gym-run", "p.json", "-q", "--overwrite", cwd=tmp_path)
        no_crash(ran)
        assert ran.code == 3, ran.err
        records = [
            json.loads(line)
            for line in (tmp_path / "results/simple_weather_simple_agent_rollouts.jsonl")
            .read_text()
            .splitlines()
        ]
        assert [r["_gym"]["status"] for r in records] == ["failed", "failed"]
        assert all("not a JSON object" in r["_gym"]["error"]["message"] for r in records)


@contextlib.contextmanager
def full_disk(where: Path, size_k: int = 64, room_k: int = 0) -> Iterator[Path]:
    """A small tmpfs filled to the brim but `room_k` KiB (needs root and a kernel that lets us
    mount; a small tmpfs is a full disk that costs nothing to make)."""
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_k}k", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill ({mounted.stderr.decode().strip()[:80]})")
    try:
        with open(where / "filler", "wb", buffering=0) as fh, contextlib.suppress(OSError):
            for _ in range((size_k - room_k) // 4):
                fh.write(b"x" * 4096)
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_under_metrics_and_export_is_one_line(world: Path) -> None:
    (world / "out").mkdir()
    assert (
        run("gym-compile", *SW, "+output_jsonl_fpath=out/r.jsonl", "-o", "p.json", cwd=world).code
        == 0
    )
    with full_disk(world / "full") as full:
        (world / "out/r.metrics.json").symlink_to(full / "metrics.json")
        ran = run("gym-run", "p.json", "-q", cwd=world)
        no_crash(ran)
        assert (
            ran.code == 1 and "cannot write the metrics" in ran.err and "No space left" in ran.err
        )
        assert len((world / "out/r.jsonl").read_text().splitlines()) == 5  # the rollouts are safe
        ran = run("gym-run", "export", "p.json", "-o", str(full / "final.jsonl"), cwd=world)
        no_crash(ran)
        assert ran.code == 1 and "cannot write the export" in ran.err and "No space left" in ran.err


def test_a_cache_on_a_full_disk_degrades_with_one_warning(world: Path) -> None:
    rows = world / "rows.jsonl"
    rows.write_text("".join(json.dumps({**ROW, "n": i}) + "\n" for i in range(200)))
    with full_disk(world / "full", size_k=512, room_k=160) as full:  # not room for 200 answers
        (world / "cache.yaml").write_text(
            f"response_cache: {{path: {full}/c.sqlite, stand_in: true}}\n"
        )
        ran = run(
            "gym-compile",
            *SW,
            "cache.yaml",
            "+input_jsonl_fpath=rows.jsonl",
            "-o",
            "p.json",
            cwd=world,
        )
        assert ran.code == 0, ran.err
        ran = run("gym-run", "p.json", "-q", cwd=world, timeout=120)
        no_crash(ran)
        assert ran.code == 0, ran.err  # no paid rollout fails because its answer could not be kept
        assert ran.err.count("response cache") == 1 and "going on without it" in ran.err
        written = (
            (world / "results/simple_weather_simple_agent_rollouts.jsonl").read_text().splitlines()
        )
        assert len(written) == 200 and all(json.loads(r)["_gym"]["status"] == "ok" for r in written)


def test_a_cache_whose_database_breaks_degrades_in_process(tmp_path: Path) -> None:
    warnings: list[str] = []
    cache = ResponseCache(tmp_path / "c.sqlite", warn=warnings.append)
    assert cache.put_sync("k1", {"id": "r1"}) and cache.get_sync("k1") == {"id": "r1"}
    cache._db.close()  # what a vanished or corrupted file looks like to SQLite
    assert cache.put_sync("k2", {"id": "r2"}) is False and cache.get_sync("k1") is None
    assert cache.put_sync("k3", {"id": "r3"}) is False
    assert len(warnings) == 1 and "going on without it" in warnings[0]
    with pytest.raises(sqlite3.ProgrammingError):
        cache._db.execute("SELECT 1")  # it really is broken: the cache, not the test, coped
