"""Model calls a NeMo Gym agent makes on a rollout's behalf, counted into that rollout.

A NeMo Gym agent runs in its own process and calls gym-run's model servers over loopback; nothing
in NeMo Gym's protocol says which rollout a call belongs to. The collector therefore tags the
row's `responses_create_params.metadata` (an OpenAI field NeMo Gym's agents pass on to every
model call of the rollout) with a key; the loopback model server takes the tag off before the
call goes anywhere (cache keys and the endpoint never see it) and counts the call, its usage,
retries and cache hits into the rollout's scope, the way an in-process rollout counts them.
Calls without a tag (a judge inside a NeMo Gym resources server, an agent that builds its own
requests) still get retries, limits, cache and the run's totals; they are just not per rollout.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from gym_run.endpoint.cache import CacheTally, current_tally, use_tally
from gym_run.endpoint.callstats import CURRENT_ROLLOUT, RolloutTrace
from gym_run.endpoint.usage import add_usage, empty_usage

METADATA_KEY = "gym_rollout"


@dataclass
class RolloutScope:
    """What the model calls of one rollout went through, wherever they were made from."""

    trace: RolloutTrace | None = None
    tally: CacheTally | None = None
    usage_by_server: dict[str, dict[str, int]] = field(default_factory=dict)
    model_calls: int = 0
    error: BaseException | None = None  # the first model call that failed, for the record

    def count(self, server: str, response: Any) -> None:
        self.model_calls += 1
        usage = response.get("usage") if isinstance(response, dict) else None
        add_usage(self.usage_by_server.setdefault(server, empty_usage()), usage)


class Attribution:
    """Open scopes by key; one per run, shared by the collector's agents and the model routes."""

    def __init__(self) -> None:
        self._scopes: dict[str, RolloutScope] = {}

    @contextlib.contextmanager
    def scope(self) -> Iterator[tuple[str, RolloutScope]]:
        """A new scope for the rollout running in this task (its retry trace and cache tally)."""
        key = secrets.token_hex(8)
        scope = RolloutScope(trace=CURRENT_ROLLOUT.get(), tally=current_tally())
        self._scopes[key] = scope
        try:
            yield key, scope
        finally:
            self._scopes.pop(key, None)

    def claim(self, body: dict[str, Any]) -> RolloutScope | None:
        """Takes the tag off a model request (in place) and answers its scope, if still open."""
        metadata = body.get("metadata")
        if not isinstance(metadata, dict) or METADATA_KEY not in metadata:
            return None
        rest = {k: v for k, v in metadata.items() if k != METADATA_KEY}
        if rest:
            body["metadata"] = rest
        else:
            del body["metadata"]
        return self._scopes.get(str(metadata[METADATA_KEY]))

    @staticmethod
    @contextlib.contextmanager
    def bound(scope: RolloutScope | None) -> Iterator[None]:
        """Within it, the client counts retries and the cache its hits into `scope`."""
        if scope is None:
            yield
            return
        token = CURRENT_ROLLOUT.set(scope.trace)
        try:
            with use_tally(scope.tally):
                yield
        finally:
            CURRENT_ROLLOUT.reset(token)


def tagged(params: dict[str, Any], key: str) -> dict[str, Any]:
    """`responses_create_params` with the rollout's tag added to its metadata."""
    metadata = params.get("metadata")
    merged = {**(metadata if isinstance(metadata, dict) else {}), METADATA_KEY: key}
    return {**params, "metadata": merged}


def untagged(value: Any, original: Any = None) -> Any:
    """A result with the tag taken out of every `metadata` object (the agent echoes the row):
    the row's own metadata put back where it had one (`original`), the key dropped where not."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "metadata" and isinstance(v, dict) and METADATA_KEY in v:
                if original is None:
                    continue
                v = original
            out[k] = untagged(v, original)
        return out
    if isinstance(value, list):
        return [untagged(v, original) for v in value]
    return value
