"""The plan's `ray:` block + gym-run's --ray flags in, the settings one Ray run uses out; and the
one place that imports Ray, saying how to install it when it is missing."""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Any

from gym_compile.plan_types import Job
from gym_run.errors import GymRunError

INSTALL_HINT = "pip install 'ray>=2.10' (or, in a gym-compile checkout, pip install -e '.[ray]')"
LOCAL = "local"  # --ray with no address: start Ray in this machine, bound to 127.0.0.1


@dataclass(frozen=True)
class RaySettings:
    """address None = a local Ray; workers None = the cluster's CPUs / CPU per worker;
    concurrency_per_worker None = the plan's num_samples_in_parallel."""

    address: str | None = None
    workers: int | None = None
    resources_per_worker: dict[str, float] = field(default_factory=lambda: {"CPU": 1.0})
    concurrency_per_worker: int | None = None

    @classmethod
    def from_plan(cls, job: Job) -> RaySettings | None:
        block = job.get("ray")
        if not isinstance(block, dict):
            return None
        return cls(
            block.get("address"),
            block.get("workers"),
            {k: float(v) for k, v in (block.get("resources_per_worker") or {"CPU": 1}).items()},
            block.get("concurrency_per_worker"),
        )

    def override(
        self,
        *,
        address: str | None = None,
        workers: int | None = None,
        concurrency_per_worker: int | None = None,
        cpus_per_worker: float | None = None,
    ) -> RaySettings:
        """Command-line flags win over the block, key by key; `address` LOCAL drops the block's."""
        out = self
        if address is not None:
            out = replace(out, address=None if address == LOCAL else address)
        if workers is not None:
            out = replace(out, workers=workers)
        if concurrency_per_worker is not None:
            out = replace(out, concurrency_per_worker=concurrency_per_worker)
        if cpus_per_worker is not None:
            out = replace(
                out, resources_per_worker={**out.resources_per_worker, "CPU": cpus_per_worker}
            )
        return out

    def actor_options(self) -> dict[str, Any]:
        """Ray's spelling of resources_per_worker: CPU/GPU/memory are options, the rest custom."""
        res = dict(self.resources_per_worker)
        options: dict[str, Any] = {"num_cpus": res.pop("CPU", 1.0), "num_gpus": res.pop("GPU", 0.0)}
        if "memory" in res:
            options["memory"] = res.pop("memory")
        if res:
            options["resources"] = res
        return options

    @property
    def loopback(self) -> bool:
        """A local Ray, or a cluster whose head is on this machine's loopback."""
        if self.address is None:
            return True
        host = self.address.removeprefix("ray://").rsplit(":", 1)[0].strip("[]")
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False


def import_ray(settings: RaySettings) -> ModuleType:
    """Ray, set up before its first import: no usage statistics sent anywhere, and a loopback
    cluster kept on 127.0.0.1 (Ray otherwise swaps loopback for the machine's own address).

    A local Ray of our own gets a token made for this run (its processes inherit it), rather
    than Ray's default of writing one to ~/.ray that later `ray start`s would pick up. Whatever
    the user set in the environment wins."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if settings.loopback:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    if settings.address is None and "RAY_AUTH_MODE" not in os.environ:
        os.environ["RAY_AUTH_MODE"] = "token"
        os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
    try:
        import ray
    except ImportError:
        raise GymRunError(f"--ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray
