"""A node lost mid-run: a Ray cluster of two nodes on this machine (a head and a second raylet,
both on 127.0.0.1, through Ray's own multi-node test cluster), one worker on each; the second
node is removed while rollouts are in flight. Its rows run again on the head's worker: the set is
complete and nothing is written twice. (`ray start` cannot add a second node on 127.0.0.1: it
swaps loopback for the machine's own address, which these tests never use.)"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gym_run.collect.runner import run_job
from gym_run.scale.ray_engine import RayEngine
from gym_run.scale.settings import RaySettings

from tests.ray_cluster import LOOPBACK_ENV
from tests.test_scale_ray import _running as _workers
from tests.test_scale_ray import assert_complete, cpu_plan

os.environ.update(LOOPBACK_ENV)  # before Ray's first import (see test_scale_ray)
ray = pytest.importorskip(
    "ray", reason="Ray is not installed (pip install 'ray>=2.10'; make test installs it)"
)


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[tuple[Any, Any]]:
    from ray.cluster_utils import Cluster

    temp = tempfile.mkdtemp(prefix="gn-", dir="/tmp")
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "node_ip_address": "127.0.0.1",
            "include_dashboard": False,
            "temp_dir": temp,
        },
    )
    second = cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        yield cluster, second
    finally:
        ray.shutdown()
        cluster.shutdown()  # kills the processes it started, by their pids
        shutil.rmtree(temp, ignore_errors=True)


async def test_a_node_lost_mid_run_loses_and_duplicates_nothing(
    two_nodes: tuple[Any, Any], tmp_path: Path
) -> None:
    cluster, second = two_nodes
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    plan = cpu_plan(tmp_path, rows=20, repeats=10, verify_cpu_ms=10)
    notices: list[str] = []
    engine = RayEngine(
        RaySettings(address=cluster.address, workers=2, concurrency_per_worker=8), notices.append
    )
    out = Path(plan["job"]["output"]["path"])

    async def remove_second_node_when_running() -> None:
        while not (out.exists() and out.stat().st_size > 0 and len(_workers(engine)) == 2):
            await asyncio.sleep(0.05)  # one worker per node, both taking rows
        cluster.remove_node(second)

    remover = asyncio.create_task(remove_second_node_when_running())
    result = await run_job(plan, engine=engine, show_progress=False)
    await asyncio.wait_for(remover, 1)
    assert result.counts["ok"] == 200 and result.counts["missing"] == 0
    assert_complete(str(out), 200)
    assert any("was lost" in n for n in notices), notices
