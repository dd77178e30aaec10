"""Issue 13.7: `gym-run serve` under a hostile browser page and hostile clients.

    python benchmarks/bench_serve_hardening.py [--code PATH] [--half-open 20000] [--large 40]

- cross_origin: a page's `fetch` with `Content-Type: text/plain` (no CORS preflight) from another
  origin; status answered (200 = the page spent the user's key).
- half_open: N connections that never finish a request (one process per 10,000), then 20 normal
  requests: how many are answered within 10 s each, and their latency.
- large_requests: 40 requests of ~15 MB at once: the serve process's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
from bounds_common import REPO, Code, emit

HERE = Path(__file__).resolve().parent


@contextmanager
def serving(code: Code, work: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    plan = work / "plan.json"
    subprocess.run(
        [
            code.python,
            "-m",
            "gym_compile.cli",
            str(REPO / "examples/simple_weather/simple_weather.yaml"),
            str(REPO / "examples/simple_weather/stand_in_model.yaml"),
            f"+output_jsonl_fpath={work / 'out.jsonl'}",
            "-o",
            str(plan),
        ],
        env=code.env,
        check=True,
        capture_output=True,
    )
    proc = subprocess.Popen(
        [code.python, "-m", "gym_run.cli", "serve", str(plan)],
        env=code.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    urls: dict[str, str] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        if match := re.match(r"(\S+)\s+\S+\s+\S+\s+(http://\S+)", line):
            urls[match.group(1)] = match.group(2)
        if line.startswith("serving"):
            break
    try:
        yield proc, urls
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return -1.0


async def cross_origin(urls: dict[str, str]) -> None:
    async with aiohttp.ClientSession() as http:
        for name, headers in {
            "text_plain_other_origin": {
                "Content-Type": "text/plain;charset=UTF-8",
                "Origin": "http://evil.example",
                "Sec-Fetch-Site": "cross-site",
            },
            "rebound_host": {"Content-Type": "text/plain", "Host": "evil.example"},
        }.items():
            async with http.post(
                urls["policy_model"] + "/v1/responses", data=b'{"input": "hi"}', headers=headers
            ) as resp:
                emit(f"cross_origin.{name}.status", resp.status)


async def legit_requests(url: str, n: int = 20) -> tuple[int, list[float]]:
    ok, latencies = 0, []
    timeout = aiohttp.ClientTimeout(total=10)
    for _ in range(n):
        started = time.monotonic()
        try:
            async with aiohttp.ClientSession(timeout=timeout) as http:
                async with http.post(url + "/get_weather", json={"city": "sf"}) as resp:
                    await resp.read()
                    ok += resp.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError):
            pass
        latencies.append(time.monotonic() - started)
    return ok, latencies


def half_open(code: Code, urls: dict[str, str], total: int) -> None:
    url = urls["example_simple_weather"]
    host, port = re.match(r"http://([^:/]+):(\d+)", url).groups()  # type: ignore[union-attr]
    attackers = []
    opened = 0
    try:
        for start in range(0, total, 10_000):
            count = min(10_000, total - start)
            attackers.append(
                subprocess.Popen(
                    [sys.executable, str(HERE / "halfopen.py"), host, port, str(count)],
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        for proc in attackers:
            line = proc.stdout.readline() if proc.stdout else ""
            opened += int(line.partition("=")[2] or 0)
        emit("half_open.connections_opened", opened)
        ok, latencies = asyncio.run(legit_requests(url))
        emit("half_open.legit_answered_of_20", ok)
        emit("half_open.legit_p50_s", statistics.median(latencies))
        emit("half_open.legit_max_s", max(latencies))
    finally:
        for proc in attackers:
            proc.kill()
            proc.wait()


async def large_requests(url: str, n: int) -> None:
    body = b'{"city": "' + b"x" * (15 * 1024 * 1024) + b'"}'
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(timeout=timeout) as http:

        async def one() -> int:
            try:
                async with http.post(
                    url + "/get_weather", data=body, headers={"Content-Type": "application/json"}
                ) as resp:
                    await resp.read()
                    return resp.status
            except (aiohttp.ClientError, asyncio.TimeoutError):
                return -1

        statuses = await asyncio.gather(*(one() for _ in range(n)))
    emit("large_requests.answered_200", sum(s == 200 for s in statuses))
    emit("large_requests.answered_other", sum(s not in (200, -1) for s in statuses))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--code", type=Path, default=REPO, help="the checkout to measure")
    parser.add_argument("--half-open", type=int, default=20_000)
    parser.add_argument("--large", type=int, default=40)
    args = parser.parse_args()
    code = Code(args.code)
    emit("code", code.commit())
    with tempfile.TemporaryDirectory() as tmp:
        with serving(code, Path(tmp)) as (_proc, urls):
            asyncio.run(cross_origin(urls))
        with serving(code, Path(tmp)) as (proc, urls):
            emit("large_requests.rss_before_mb", peak_rss_mb(proc.pid))
            asyncio.run(large_requests(urls["example_simple_weather"], args.large))
            emit("large_requests.peak_rss_mb", peak_rss_mb(proc.pid))
        with serving(code, Path(tmp)) as (proc, urls):
            half_open(code, urls, args.half_open)
            emit("half_open.server_alive", int(proc.poll() is None))


if __name__ == "__main__":
    main()
