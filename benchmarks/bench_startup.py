"""Time from launching `gym-run plan.json` to the first request reaching the model endpoint.

python benchmarks/bench_startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import web
from common import ENV, PY, REPO, compile_plan, emit, write_rows

sys.path.insert(0, str(REPO))
from gym_run.standin.server import build_app  # noqa: E402


async def one(work: Path) -> float:
    """Serves the stand-in in this process, stamping the first request's arrival."""
    first: list[float] = []

    @web.middleware
    async def stamp(request: web.Request, handler):  # noqa: ANN001, ANN202
        if not first:
            first.append(time.monotonic())
        return await handler(request)

    app = build_app()
    app.middlewares.insert(0, stamp)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        plan = compile_plan(
            work, f"http://127.0.0.1:{port}/v1", write_rows(work / "rows.jsonl", 5), 4
        )
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            PY,
            "-m",
            "gym_run.cli",
            str(plan),
            "--overwrite",
            "-q",
            env={**ENV, "GYM_BENCH_KEY": "bench"},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await proc.wait()
        return first[0] - started
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    times = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            times.append(asyncio.run(one(Path(tmp))))
    emit("startup.first_request_s_median", statistics.median(times))
    emit("startup.first_request_s_min", min(times))


if __name__ == "__main__":
    main()
