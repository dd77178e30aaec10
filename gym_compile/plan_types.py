"""The plan and the rollout record as Python types: the compiler->runtime seam, written once.

gym-compile builds a `Plan`, gym-run loads one; a rollout line is a `RolloutRecord`. The JSON
Schemas (schemas/plan.schema.json, schemas/rollout.schema.json) stay the contract: each class here
has exactly the keys of one schema object, NotRequired where the schema does not require a key
(tests/test_plan_types.py fails when the two drift). Types say what a value holds, not what it
defaults to: defaults live in the schemas only.

A rollout record also carries the input row's fields and verify's extra fields, which no type can
name; `RolloutRecord` names the keys gym-run reads and writes.
"""

import sys
from typing import Any, Literal

# No `from __future__ import annotations` here: TypedDict reads NotRequired from the evaluated
# annotations, and the drift test reads __required_keys__.
if sys.version_info >= (3, 11):
    from typing import NotRequired, TypedDict
else:  # typing's TypedDict ignores NotRequired before 3.11
    from typing_extensions import NotRequired, TypedDict

ServerType = Literal[
    "responses_api_models", "resources_servers", "responses_api_agents", "environment_servers"
]
RunMode = Literal["builtin", "nemo", "url"]


class Compiler(TypedDict):
    name: str
    version: str


class Source(TypedDict):
    """A file the plan was compiled from, hashed: gym-run refuses a changed input, warns otherwise."""

    role: Literal["config", "env", "input", "dataset"]
    path: str
    sha256: str


class SecretRef(TypedDict):
    """Where gym-run reads secret NAME at start (`{"$secret": NAME}` stands where it was)."""

    source: Literal["env_file", "environment", "config"]
    key: str
    file: NotRequired[str]  # source=config: the file holding the literal


class ServerSource(TypedDict):
    """run=nemo: NeMo Gym's implementation folder and its entrypoint there."""

    dir: str
    entrypoint: str


class ServerEntry(TypedDict):
    """One server of the plan; `config` is normalised by the compiler (canonical names, defaults
    filled). No `run` means builtin."""

    type: ServerType
    implementation: str
    config: dict[str, Any]
    run: NotRequired[RunMode]
    url: NotRequired[str]  # run=url
    source: NotRequired[ServerSource]  # run=nemo


class NemoGym(TypedDict, total=False):
    """How gym-run runs NeMo Gym's own servers (the global `nemo_gym:` key)."""

    python: str | None
    startup_timeout_s: float | None
    globals: dict[str, Any]


class JobInput(TypedDict):
    path: str
    sha256: str
    rows: int


class JobOutput(TypedDict):
    path: str
    metrics_path: str


class Estimate(TypedDict):
    """gym-compile's estimate of the agent's model's tokens and cost (gym_compile/estimate.py)."""

    method: str
    rows: int
    rollouts: int
    model_calls: int
    input_tokens: int
    input_tokens_upper: int
    output_tokens_upper: int
    usd_low: float | None
    usd_high: float | None
    assumptions: list[str]
    model: str | None


class BudgetLimits(TypedDict):
    max_usd: float | None
    max_tokens: int | None


class RayBlock(TypedDict):
    """The config's `ray:` block; gym-run's --ray flags override its keys for one run."""

    address: str | None
    workers: int | None
    resources_per_worker: dict[str, float]
    concurrency_per_worker: int | None


class CacheSpec(TypedDict):
    """The job's response cache (gym_run/endpoint/cache.py opens it)."""

    path: str
    stand_in: bool


class Job(TypedDict):
    """What one `gym-run PLAN` collects. The optional keys are written by every compile; plans made
    without them still load."""

    agent: str
    input: JobInput
    output: JobOutput
    limit: int | None
    num_repeats: int
    concurrency: int
    responses_create_params: dict[str, Any]
    estimate: NotRequired[Estimate | None]
    budget: NotRequired[BudgetLimits | None]
    prices: NotRequired[dict[str, Any] | None]  # the shape of schemas/prices.json
    ray: NotRequired[RayBlock]  # only when the config sets it
    pass_threshold: NotRequired[float]  # only when the config sets it (gym-run's default: 1.0)
    response_cache: NotRequired[CacheSpec | None]


class Plan(TypedDict):
    """schemas/plan.schema.json, format_version 1. `job` is None for a plan that only describes
    servers (`gym-run serve`)."""

    format_version: int
    compiler: Compiler
    sources: list[Source]
    env_file: str | None
    secrets: dict[str, SecretRef]
    servers: dict[str, ServerEntry]
    nemo_gym: NotRequired[NemoGym]
    job: Job | None
    content_hash: str
    signature: NotRequired[str]


# `class` is a keyword, hence the functional form.
ErrorInfo = TypedDict(
    "ErrorInfo",
    {
        "class": str,
        "status": NotRequired[int | None],
        "message": str,
        "request_id": NotRequired[str | None],
        "attempts": NotRequired[int | None],
    },
)


class CacheBlock(TypedDict):
    """With the response cache on: calls replayed (hits) and sent (misses), and the usage replayed."""

    hits: int
    misses: int
    saved_usage_by_server: dict[str, dict[str, int]]


class GymBlock(TypedDict):
    """A record's `_gym` block, always its last key. The schema's two branches in one type: `ok`
    requires usage, model_calls, tool_calls and latency_s; `failed` requires error. Usage is
    token counts by name (input_tokens, cached_input_tokens, output_tokens, ...)."""

    id: str
    status: Literal["ok", "failed"]
    usage: NotRequired[dict[str, int]]
    model_calls: NotRequired[int]
    tool_calls: NotRequired[int]
    latency_s: NotRequired[float]
    retries: NotRequired[int]
    usage_by_server: NotRequired[dict[str, dict[str, int]]]
    cache_hit: NotRequired[bool]
    cache: NotRequired[CacheBlock]
    cost_usd: NotRequired[float | None]
    cost_by_server: NotRequired[dict[str, float | None]]
    model_by_server: NotRequired[dict[str, str]]
    error: NotRequired[ErrorInfo]
    reverify: NotRequired[dict[str, Any]]  # gym-run reverify: where the record came from


class AgentRef(TypedDict):
    name: str


class RolloutRecord(TypedDict):
    """One line of rollouts.jsonl (schemas/rollout.schema.json): an ok record has
    responses_create_params, response and reward; a failed one has neither reward nor (unless the
    row had them) the others. `_ng_failure_*` appear only in what `gym-run serve` answers."""

    _ng_task_index: int
    _ng_rollout_index: int
    agent_ref: NotRequired[AgentRef]
    responses_create_params: NotRequired[dict[str, Any]]
    response: NotRequired[dict[str, Any]]  # an OpenAI Response as the endpoint sent it
    reward: NotRequired[float]
    _ng_failure_class: NotRequired[str]
    _ng_failure_terminal: NotRequired[bool]
    _gym: GymBlock
