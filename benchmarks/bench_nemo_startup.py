"""Start-up to the first model request, NeMo Gym's own servers: under gym-run vs NeMo Gym's `ng_run`.

    python benchmarks/bench_nemo_startup.py [--repeats 3] [--nemo-python PATH]

The environment is NeMo Gym's example_single_tool_call (its resources server and simple_agent, its
own code in both cases), the model an endpoint served by this script that stamps the first request.

- gym-run: `gym-run plan.json` launched at t0 (the plan compiled beforehand, its compile time
  printed apart); gym-run starts the two NeMo Gym servers (no Ray), serves the model on loopback,
  and collects: the first request reaches the endpoint at t1.
- NeMo Gym: `ng_run` launched at t0 (Ray cluster, head server, three server processes: the model
  server is one of them; the per-server virtualenvs already exist, `skip_venv_if_present`), then,
  once it says all servers are ready, `ng_collect_rollouts +limit=1` as a user would run it next.

NeMo Gym's Python: --nemo-python, else $NEMO_GYM_PYTHON, else the venv the tests install
(~/.cache/gym-compile/venvs/nemo-gym-0.4.0-py3.12; run `pytest tests/test_nemo_run.py` once).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from aiohttp import web
from common import ENV, PY, REPO, emit
from ng_tools import (
    AGENT,
    collect_command,
    configs,
    free_port,
    start_ng_run,
    stop_group,
    wait_ready,
)

sys.path.insert(0, str(REPO))
from gym_run.standin.server import build_app  # noqa: E402

SINGLE = "resources_servers/example_single_tool_call"


class Endpoint:
    """The stand-in in a thread of this process; `first` is when the first request arrived."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._serve, args=(ready,), daemon=True).start()
        ready.wait()

    def _serve(self, ready: threading.Event) -> None:
        @web.middleware
        async def stamp(request: web.Request, handler):  # noqa: ANN001, ANN202
            if self.first is None:
                self.first = time.monotonic()
            return await handler(request)

        async def start() -> None:
            app = build_app()
            app.middlewares.insert(0, stamp)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()

        self._loop.run_until_complete(start())
        ready.set()
        self._loop.run_forever()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def wait_first(self, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while self.first is None:
            if time.monotonic() > deadline:
                raise TimeoutError("no model request arrived")
            time.sleep(0.005)
        return self.first


def nemo_python(given: str | None) -> tuple[str, Path]:
    python = given or os.environ.get("NEMO_GYM_PYTHON")
    if not python:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        venv = cache / "gym-compile" / "venvs" / "nemo-gym-0.4.0-py3.12"
        if not (venv / "READY").is_file():
            sys.exit(f"no NeMo Gym venv at {venv}: pass --nemo-python or run the NeMo tests once")
        python = str(venv / "bin" / "python")
    origin = subprocess.run(
        [python, "-c", "import importlib.util as u; print(u.find_spec('nemo_gym').origin)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return python, Path(origin).parent.parent


def gym_run_once(work: Path, python: str, root: Path, endpoint: Endpoint) -> tuple[float, float]:
    """(compile s, launch -> first model request s)."""
    model = work / "model.yaml"
    model.write_text(
        "policy_model:\n  responses_api_models:\n    openai_model:\n"
        f"      base_url: {endpoint.base_url}\n      api_key: bench\n      model: bench\n"
    )
    plan = work / "plan.json"
    started = time.monotonic()
    subprocess.run(
        [
            PY,
            "-m",
            "gym_compile.cli",
            str(root / SINGLE / "configs" / "example_single_tool_call.yaml"),
            str(model),
            f"+agent_name={AGENT}",
            f"+input_jsonl_fpath={root / SINGLE / 'data' / 'example.jsonl'}",
            f"+output_jsonl_fpath={work / 'rollouts.jsonl'}",
            "+limit=1",
            f"+nemo_gym={{python: {python}, processes: all}}",
            "-o",
            str(plan),
        ],
        env={**ENV, "NEMO_GYM_EXTRA_ROOTS": str(root)},
        check=True,
        capture_output=True,
    )
    compiled = time.monotonic() - started
    endpoint.first = None
    started = time.monotonic()
    proc = subprocess.Popen(
        [PY, "-m", "gym_run.cli", str(plan), "--overwrite", "-q"],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    first = endpoint.wait_first(300) - started
    proc.wait(timeout=120)
    return compiled, first


def ng_run_once(work: Path, python: str, root: Path, endpoint: Endpoint) -> tuple[float, float]:
    """(launch -> all servers ready s, launch -> first model request s)."""
    venv = Path(python).parent.parent
    head = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    endpoint.first = None
    started = time.monotonic()
    log_path = work / "ng_run.log"
    log = open(log_path, "w")  # noqa: SIM115 - ng_run writes it until it is stopped below
    run = start_ng_run(venv, work, configs(root), endpoint.base_url, head, env, log)
    try:
        wait_ready(run, log_path, timeout=600, every=0.05)
        ready = time.monotonic() - started
        collect = subprocess.run(
            collect_command(
                venv,
                head,
                root / SINGLE / "data" / "example.jsonl",
                work / "ng_rollouts.jsonl",
                "+limit=1",
            ),
            cwd=work,
            env=env,
            capture_output=True,
            timeout=300,
        )
        if collect.returncode != 0:
            raise RuntimeError(collect.stdout.decode()[-2000:] + collect.stderr.decode()[-2000:])
        first = endpoint.wait_first(10) - started
    finally:
        stop_group(run, grace_s=60)  # ng_run's own shutdown: servers and its Ray cluster
        log.close()
    return ready, first


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--nemo-python")
    args = parser.parse_args()
    python, root = nemo_python(args.nemo_python)
    endpoint = Endpoint()
    ours, compiles, ready, theirs = [], [], [], []
    failed = 0  # ng_run starts that did not come up (its Ray node can time out on a busy machine)
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            compiled, first = gym_run_once(Path(tmp), python, root, endpoint)
            compiles.append(compiled)
            ours.append(first)
        for _attempt in range(3):
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    up, first = ng_run_once(Path(tmp), python, root, endpoint)
                except RuntimeError as exc:
                    failed += 1
                    print(
                        f"ng_run failed, trying again: {str(exc).splitlines()[-1]}", file=sys.stderr
                    )
                    continue
                ready.append(up)
                theirs.append(first)
                break
    emit("nemo_startup.gym_run.first_request_s_median", statistics.median(ours))
    emit("nemo_startup.gym_run.compile_s_median", statistics.median(compiles))
    emit("nemo_startup.ng_run.servers_ready_s_median", statistics.median(ready))
    emit("nemo_startup.ng_run.first_request_s_median", statistics.median(theirs))
    emit("nemo_startup.ng_run.failed_starts", failed)


if __name__ == "__main__":
    main()
