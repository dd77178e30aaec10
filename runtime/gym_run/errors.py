"""The runtime's exception tree; each user-facing error carries the exit code `gym-run` returns.

GymRunError            a user mistake: printed as one line, never a traceback (exit 1)
├── PlanError          bad, stale or unsuitable plan (exit 4)
├── SecretError        a secret the plan refers to cannot be found (exit 4)
├── OutputExistsError  the rollouts file holds data and no --resume/--overwrite, or another plan's (exit 2)
└── ServerStartError   a server of the plan could not listen (exit 1)
ModelCallError         one model call failed (after its retries); recorded in the rollout, not fatal
RunStopped             (endpoint/watch.py) the run stopped admitting model calls; the rollout is
                       abandoned unrecorded, a resume runs it
RolloutTimeout         a rollout ran past its deadline (rollout_timeout_s); recorded, not fatal
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_SOME_FAILED = 3
EXIT_BAD_PLAN = 4
EXIT_BUDGET = 5  # stopped by the budget: resumable with a higher --max-usd / --max-tokens
EXIT_BELOW_THRESHOLD = 6  # --fail-under: the mean reward (or pass rate, pass@k) is below the gate
EXIT_ENDPOINT_DOWN = 7  # the circuit breaker stopped the run: fix the endpoint, then resume
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


class GymRunError(Exception):
    """Base for mistakes a user can fix; `cli.main` turns them into `gym-run: error: ...`."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PlanError(GymRunError):
    exit_code = EXIT_BAD_PLAN


class SecretError(GymRunError):
    exit_code = EXIT_BAD_PLAN


class OutputExistsError(GymRunError):
    exit_code = EXIT_USAGE


class ServerStartError(GymRunError):
    exit_code = EXIT_ERROR


class ModelCallError(Exception):
    """A failed call to a Responses endpoint; `status` is None when no HTTP answer arrived.

    `attempts` is how many HTTP requests the call made before giving up (1 = not retried).
    """

    def __init__(
        self,
        status: int | None,
        message: str,
        request_id: str | None = None,
        error_type: str | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.request_id = request_id
        self.error_type = error_type
        self.attempts = attempts

    def __str__(self) -> str:
        where = f"HTTP {self.status}" if self.status is not None else "no response"
        rid = f" (request id {self.request_id})" if self.request_id else ""
        return f"{where}: {self.message}{rid}"


class RolloutTimeout(Exception):
    """The whole rollout (all its model and tool calls) exceeded rollout_timeout_s."""
