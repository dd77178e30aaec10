"""`example_cpu_bound`: example_simple_weather whose verify burns CPU, the way verifiers that run
code or sandboxes do; what benchmarks/bench_scale.py and the Ray tests scale out."""

from __future__ import annotations

import time
from typing import Any

from gym_run.defaults import default_of
from gym_run.servers.builtin.resources import SimpleWeather


def burn_cpu(ms: float) -> None:
    """Busy until this thread has used `ms` of CPU (not wall) time."""
    end = time.thread_time() + ms / 1000.0
    x = 0
    while time.thread_time() < end:
        for i in range(1000):
            x ^= i


class CpuBound(SimpleWeather):
    """Blocks its event loop in verify on purpose: the work is CPU, so one process does one at a time."""

    async def verify(self, body: dict[str, Any]) -> dict[str, Any]:
        default = default_of("resources_servers", "example_cpu_bound", "verify_cpu_ms")
        burn_cpu(float(self.config.get("verify_cpu_ms", default)))
        return {**body, "reward": 1.0}
