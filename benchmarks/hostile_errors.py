"""The internal-error cases of issue 13, point 8 (registered into hostile_cases.CASES), for
benchmarks/bench_hostile.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hostile_cases import (
    SW,
    Case,
    Endpoint,
    Outcome,
    Tools,
    answer,
    case,
    closed_stdout,
    mount_full,
    new_key,
    openai_world,
    unmount,
    world,
)

# ------------------------------------------------------------------ 8. internal errors


def _compile_case(*args: str, files: dict[str, str] | None = None) -> Case:
    def run(t: Tools, d: Path) -> Outcome:
        world(d)
        for name, text in (files or {}).items():
            (d / name).write_text(text)
        out, _ = t.run("gym-compile", *SW, *args, cwd=d, timeout=120)
        return out

    return run


DEEP = "[" * 100_000 + "]" * 100_000
for label, args, files in (
    ("+num_repeats=two", ["+num_repeats=two"], None),
    ("+limit=1e3", ["+limit=1e3"], None),
    ("limit: '5'", ["l.yaml"], {"l.yaml": "limit: '5'\n"}),
    ("+budget.max_usd=abc (priced model)", ["+budget.max_usd=abc", "p.yaml"], {"p.yaml": "prices: {models: {stand-in-1: {input: 1, output: 2}}}\n"}),
    ("+output_jsonl_fpath=null", ["+output_jsonl_fpath=null"], None),
    ("a 200-link ${} chain", ["c.yaml"], {"c.yaml": "".join(f"v{i}: ${{v{i + 1}}}\n" for i in range(200)) + "v200: x\nlimit: ${v0}\n"}),
    ("a JSONL row nested 100,000 deep", ["+input_jsonl_fpath=deep.jsonl"], {"deep.jsonl": DEEP + "\n"}),
    ("a 5,000-digit integer in a row", ["+input_jsonl_fpath=n.jsonl"], {"n.jsonl": '{"n": ' + "9" * 5000 + "}\n"}),
    ("20,000 unknown keys", ["many.yaml"], {"many.yaml": "policy_model:\n  responses_api_models:\n    stand_in_model:\n      model: stand-in-1\n" + "".join(f"      k{i}: 1\n" for i in range(20_000))}),
):  # fmt: skip
    case("errors", label)(_compile_case(*args, files=files))


@case("errors", "a symlink loop (gym-compile LOOP)")
def symlink_loop(t: Tools, d: Path) -> Outcome:
    world(d)
    (d / "a.yaml").symlink_to("b.yaml")
    (d / "b.yaml").symlink_to("a.yaml")
    out, _ = t.run("gym-compile", *SW, "a.yaml", cwd=d)
    return out


@case("errors", "explain-code | head (closed stdout)")
def broken_pipe(t: Tools, d: Path) -> Outcome:
    return closed_stdout(t, world(d))


@case("errors", "tool arguments nested 100,000 deep")
def deep_arguments(t: Tools, d: Path) -> Outcome:
    def reply(_h: dict[str, str], body: dict[str, Any]) -> bytes:
        if "function_call_output" in json.dumps(body.get("input")):
            return answer("done")
        call = {
            "type": "function_call",
            "id": "f",
            "call_id": "c",
            "name": "get_weather",
            "arguments": DEEP,
        }
        return json.dumps({**json.loads(answer("")), "output": [call]}).encode()

    server = Endpoint(reply)
    try:
        openai_world(d, server.url, new_key())
        t.run(
            "gym-compile", "model.yaml", "sw/simple_weather.yaml", "+limit=1", "-o", "p.json", cwd=d
        )
        out, _ = t.run("gym-run", "p.json", "-q", cwd=d)
        rollouts = d / "results/simple_weather_simple_agent_rollouts.jsonl"
        if rollouts.exists() and "RecursionError" in rollouts.read_text(errors="replace"):
            out.verdict = "INTERNAL"  # recorded as a failure with our own bug in it
            out.note = "RecursionError recorded in the rollout"
        return out
    finally:
        server.close()


@case("errors", "full disk under metrics and export")
def full_disk(t: Tools, d: Path) -> Outcome:
    world(d)
    t.run("gym-compile", *SW, "+output_jsonl_fpath=out/r.jsonl", "-o", "p.json", cwd=d)
    full = d / "full"
    if not mount_full(full, 64, 0):
        return Outcome("skipped", note="mounting a tmpfs needs root")
    try:
        (d / "out").mkdir(exist_ok=True)
        (d / "out/r.metrics.json").symlink_to(full / "m.json")
        first, _ = t.run("gym-run", "p.json", "-q", cwd=d)
        second, _ = t.run("gym-run", "export", "p.json", "-o", str(full / "e.jsonl"), cwd=d)
        worst = next((o for o in (first, second) if o.verdict != "ok"), second)
        worst.note = f"exit {first.code} (metrics), {second.code} (export)"
        return worst
    finally:
        unmount(full)


@case("errors", "full disk under the response cache (200 rollouts)")
def full_cache(t: Tools, d: Path) -> Outcome:
    world(d)
    row = (d / "sw/data/example.jsonl").read_text().splitlines()[0]
    (d / "rows.jsonl").write_text(
        "".join(json.dumps({**json.loads(row), "n": i}) + "\n" for i in range(200))
    )
    full = d / "full"
    if not mount_full(full, 512, 160):
        return Outcome("skipped", note="mounting a tmpfs needs root")
    try:
        (d / "cache.yaml").write_text(
            f"response_cache: {{path: {full}/c.sqlite, stand_in: true}}\n"
        )
        t.run(
            "gym-compile", *SW, "cache.yaml", "+input_jsonl_fpath=rows.jsonl", "-o", "p.json", cwd=d
        )
        out, _ = t.run("gym-run", "p.json", "-q", cwd=d, timeout=120)
        rollouts = d / "results/simple_weather_simple_agent_rollouts.jsonl"
        lines = rollouts.read_text().splitlines() if rollouts.exists() else []
        failed = sum(json.loads(x)["_gym"]["status"] != "ok" for x in lines)
        out.note = f"{failed} of {len(lines)} rollouts failed"
        if failed and out.verdict == "ok":
            out.verdict = "FAILED"
        return out
    finally:
        unmount(full)
