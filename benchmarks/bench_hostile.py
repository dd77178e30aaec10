"""Issue 13's hostile inputs against the CLIs of a checkout: what each gets, and the figures.

    python benchmarks/bench_hostile.py [--bin VENV/bin] [--only WORD]

--bin names the venv whose gym-compile / gym-run / python to run (default: this interpreter's),
so the same command prints the figures before (an older checkout's venv) and after. Device
nodes and full-disk cases need root (mknod, a small tmpfs) and say "skipped" otherwise.
Verdicts: ok, or HANG (killed at the timeout), LEAK (a secret or a private file's text printed or
written), REPLACED (a device turned into a regular file), SENT (a secret reached a host the user
did not configure), INTERNAL / TRACEBACK (an internal error), FAILED (rollouts lost).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hostile_errors  # noqa: E402,F401  (registers the internal-error cases)
from hostile_cases import (  # noqa: E402
    CASES,
    SW,
    Endpoint,
    Outcome,
    Tools,
    answer,
    case,
    is_device,
    leaked,
    make_device,
    new_key,
    openai_world,
    rehash,
    world,
)

# ------------------------------------------------------------------ 4. hostile files


@case("files", "gym-compile /dev/zero")
def dev_zero(t: Tools, d: Path) -> Outcome:
    out, _ = t.run("gym-compile", "/dev/zero", cwd=world(d), timeout=10)
    return out


@case("files", "a FIFO as the config")
def fifo_config(t: Tools, d: Path) -> Outcome:
    os.mkfifo(world(d) / "pipe.yaml")
    out, _ = t.run("gym-compile", "pipe.yaml", cwd=d, timeout=10)
    return out


@case("files", "dataset /proc/self/environ (a canary in the env)")
def proc_environ(t: Tools, d: Path) -> Outcome:
    canary = new_key("canary")
    out, text = t.run(
        "gym-compile",
        *SW,
        "+input_jsonl_fpath=/proc/self/environ",
        cwd=world(d),
        extra={"BENCH_CANARY": canary},
    )
    if canary in text:
        out.verdict = "LEAK"
    return out


@case("files", "dataset a shadow-like file")
def shadow(t: Tools, d: Path) -> Outcome:
    (world(d) / "shadow").write_text("root:$6$SECRETHASHvalue:20228:0:99999:7:::\n")
    out, text = t.run("gym-compile", *SW, "+input_jsonl_fpath=shadow", cwd=d)
    if "SECRETHASH" in text:
        out.verdict = "LEAK"
    return out


@case("files", "a config with one 18 MB line")
def long_line(t: Tools, d: Path) -> Outcome:
    (world(d) / "long.yaml").write_text("x: [" + "a, " * 6_000_000 + "\n")
    out, _ = t.run("gym-compile", *SW, "long.yaml", cwd=d)
    return out


@case("files", "a 1 GiB config (sparse)")
def gib_config(t: Tools, d: Path) -> Outcome:
    with open(world(d) / "huge.yaml", "wb") as fh:
        fh.truncate(1 << 30)
    out, _ = t.run("gym-compile", *SW, "huge.yaml", cwd=d, timeout=60)
    return out


def _device_out(
    t: Tools, d: Path, name: str, args: list[str], tool: str = "gym-compile"
) -> Outcome:
    world(d)
    if tool == "gym-run":
        t.run("gym-compile", *SW, "+output_jsonl_fpath=out/r.jsonl", "-o", "p.json", cwd=d)
        t.run("gym-run", "p.json", "-q", cwd=d)
    target = d / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    if not make_device(target):
        return Outcome("skipped", note="mknod needs root")
    out, _ = t.run(tool, *args, cwd=d)
    if not is_device(target):
        out.verdict = "REPLACED"
    return out


@case("files", "compile -o DEVICE")
def out_compile(t: Tools, d: Path) -> Outcome:
    return _device_out(t, d, "dev.out", [*SW, "-o", "dev.out"])


@case("files", "export -o DEVICE")
def out_export(t: Tools, d: Path) -> Outcome:
    return _device_out(
        t, d, "dev.out", ["export", "p.json", "-o", "dev.out", "--overwrite"], "gym-run"
    )


@case("files", "report -o DEVICE")
def out_report(t: Tools, d: Path) -> Outcome:
    return _device_out(t, d, "dev.out", ["report", "out/r.jsonl", "-o", "dev.out"], "gym-run")


@case("files", "metrics file is a DEVICE")
def out_metrics(t: Tools, d: Path) -> Outcome:
    return _device_out(t, d, "out/r.metrics.json", ["p.json", "-q", "--overwrite"], "gym-run")


# ------------------------------------------------------------------ 5. hostile plans


def _attack(t: Tools, d: Path, edit: Callable[[dict[str, Any], str], None]) -> Outcome:
    key, token = new_key("sk-user"), new_key("tok")
    user, evil = Endpoint(lambda h, b: answer("ok")), Endpoint(lambda h, b: answer("ok"))
    try:
        openai_world(d, user.url, key)
        t.run(
            "gym-compile",
            "model.yaml",
            "sw/simple_weather.yaml",
            "+limit=1",
            "-o",
            "plan.json",
            cwd=d,
        )
        rehash(t, d / "plan.json", lambda p: edit(p, evil.url))
        out, _ = t.run("gym-run", "plan.json", "-q", cwd=d, extra={"BENCH_TOKEN": token})
        sent = json.dumps(evil.requests) + json.dumps(user.requests)
        if key in json.dumps(evil.requests) or token in sent:
            out.verdict = "SENT"
        out.note = f"{len(evil.requests)} requests to the attacker"
        return out
    finally:
        user.close()
        evil.close()


@case("plans", "re-hashed plan with a new base_url")
def attack_url(t: Tools, d: Path) -> Outcome:
    def edit(plan: dict[str, Any], evil: str) -> None:
        plan["servers"]["policy_model"]["config"]["base_url"] = evil

    return _attack(t, d, edit)


@case("plans", "re-hashed plan with a header from an env variable")
def attack_header(t: Tools, d: Path) -> Outcome:
    def edit(plan: dict[str, Any], _evil: str) -> None:
        plan["servers"]["policy_model"]["config"]["default_headers"] = {
            "X-Exfil": {"$secret": "BENCH_TOKEN"}
        }
        plan["secrets"]["BENCH_TOKEN"] = {"source": "environment", "key": "BENCH_TOKEN"}

    return _attack(t, d, edit)


# ------------------------------------------------------------------ 6. secrets


@case("secrets", "a 200 echoing the key: rollouts, export, report")
def echo_200(t: Tools, d: Path) -> Outcome:
    key = new_key()
    echo = Endpoint(lambda h, b: answer(f"you sent {h.get('Authorization')}"))
    try:
        openai_world(d, echo.url, key)
        texts = []
        out = Outcome("ok")
        for tool, *args in (
            ("gym-compile", "model.yaml", "sw/simple_weather.yaml", "+limit=2", "-o", "plan.json"),
            ("gym-run", "plan.json", "-q"),
            ("gym-run", "export", "plan.json"),
            ("gym-run", "report", "results/simple_weather_simple_agent_rollouts.jsonl"),
        ):
            out, text = t.run(tool, *args, cwd=d)
            texts.append(text)
        hits = leaked(d, texts, key)
        out.note = f"the key in {hits} files/outputs"
        if hits:
            out.verdict = "LEAK"
        return out
    finally:
        echo.close()


@case("secrets", "GYM061: a plain secret on the command line")
def gym061(t: Tools, d: Path) -> Outcome:
    openai_world(d, "http://127.0.0.1:9/v1", "unused-key-0000")
    secret = new_key("hunter")
    out, text = t.run(
        "gym-compile",
        "model.yaml",
        "sw/simple_weather.yaml",
        f"+policy_model.responses_api_models.openai_model.api_key={secret}",
        cwd=d,
    )
    if secret in text:
        out.verdict = "LEAK"
    return out


@case("secrets", "api-key literal and ${oc.env:X} headers in plan.json")
def header_plan(t: Tools, d: Path) -> Outcome:
    literal, token = new_key("hdrkey"), new_key("tok")
    extra = f"      default_headers:\n        api-key: {literal}\n        X-Org: ${{oc.env:BENCH_ORG}}\n"
    openai_world(d, "http://127.0.0.1:9/v1", new_key(), extra)
    out, _ = t.run(
        "gym-compile",
        "model.yaml",
        "sw/simple_weather.yaml",
        "-o",
        "plan.json",
        cwd=d,
        extra={"BENCH_ORG": token},
    )
    plan = (d / "plan.json").read_text() if (d / "plan.json").exists() else ""
    hits = (literal in plan) + (token in plan)
    out.note = f"{hits} of 2 header values in plan.json"
    if hits:
        out.verdict = "LEAK"
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", type=Path, default=Path(sys.executable).parent)
    parser.add_argument("--only", default="", help="run the cases whose name holds this")
    args = parser.parse_args()
    tools = Tools(
        args.bin.resolve(), {"XDG_CONFIG_HOME": tempfile.mkdtemp(prefix="bench-hostile-")}
    )
    tallies: dict[str, int] = {}
    figures: dict[str, float] = {}
    print(
        f"# {'group':8} {'case':52} {'verdict':9} {'exit':>4} {'s':>7} {'stderr':>10} {'peak MB':>8}  note"
    )
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
        order = ["files", "plans", "secrets", "errors"]
        for i, (group, name, fn) in enumerate(sorted(CASES, key=lambda c: order.index(c[0]))):
            if args.only and args.only not in name:
                continue
            started = time.perf_counter()
            try:
                out = fn(tools, Path(tmp) / f"c{i}")
            except Exception as exc:  # the bench itself must finish: the case says what broke
                out = Outcome("BENCH-ERR", note=f"{type(exc).__name__}: {exc}"[:80])
            out.seconds = out.seconds or time.perf_counter() - started
            tallies[out.verdict] = tallies.get(out.verdict, 0) + 1
            print(
                f"# {group:8} {name[:52]:52} {out.verdict:9} {out.code if out.code is not None else '-':>4} "
                f"{out.seconds:7.2f} {out.stderr_bytes:10,} {out.peak_mb:8.1f}  {out.note}"
            )
            key = "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")[:40]
            figures[f"hostile_{key}_s"] = round(out.seconds, 2)
    for verdict, n in sorted(tallies.items()):
        print(f"hostile_verdict_{verdict.lower().replace('-', '_')}={n}")
    problems = sum(n for v, n in tallies.items() if v not in ("ok", "skipped"))
    print(f"hostile_problems={problems}")
    for name, value in figures.items():
        if name.startswith(("hostile_20_000", "hostile_gym_compile_dev_zero", "hostile_a_1_gib")):
            print(f"{name}={value}")


if __name__ == "__main__":
    main()
