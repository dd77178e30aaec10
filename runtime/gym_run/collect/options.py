"""The options a run and a re-verification share, stated once: their names, types and defaults.

`gym-run run` / `gym-run reverify` turn their flags into a JobOptions (gym_run.cli.jobopts), the
Python API turns its keywords into one (gym_run.api), and both hand `job_kwargs()` to the
collection facade, so the three fronts cannot drift apart on a default or on what conflicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, TypedDict

from gym_run.collect.writer import Existing
from gym_run.metrics.gate import Gate


class Spelling(NamedTuple):
    """How a front names the options in a complaint about them."""

    resume: str
    overwrite: str
    retry_failed: str
    resume_on: str


PYTHON = Spelling("resume", "overwrite", "retry_failed", "resume=True")
FLAGS = Spelling("--resume", "--overwrite", "--retry-failed", "--resume")


@dataclass(frozen=True)
class JobOptions:
    """What both a run and a re-verification of a plan take, with their defaults."""

    resume: bool = False
    overwrite: bool = False
    retry_failed: bool = False
    environ: Mapping[str, str] | None = None
    use_cache: bool = True
    max_usd: float | None = None
    max_tokens: int | None = None
    pass_threshold: float | None = None  # None: the plan's (else 1.0)
    fail_under: Iterable[str | Gate] = ()
    junit_path: str | None = None

    def existing(self, kept: str = "the rollouts file", spelling: Spelling = PYTHON) -> Existing:
        """What to do with an output file already there; ValueError when the options conflict."""
        if self.resume and self.overwrite:
            raise ValueError(
                f"{spelling.resume} keeps {kept} and {spelling.overwrite} replaces it: pick one"
            )
        if self.retry_failed and not self.resume:
            raise ValueError(f"{spelling.retry_failed} only makes sense with {spelling.resume_on}")
        if self.overwrite:
            return "overwrite"
        return "append" if self.resume else "refuse"

    def gates(self) -> list[Gate]:
        """The --fail-under gates, parsed (ValueError names an unknown metric)."""
        return [g if isinstance(g, Gate) else Gate.parse(g) for g in self.fail_under]

    def job_kwargs(self) -> dict[str, Any]:
        """The keywords run_job and reverify_job both take."""
        return {
            "existing": self.existing(),
            "retry_failed": self.retry_failed,
            "environ": self.environ,
            "use_cache": self.use_cache,
            "max_usd": self.max_usd,
            "max_tokens": self.max_tokens,
            "pass_threshold": self.pass_threshold,
            "junit_path": self.junit_path,
        }


class JobKeywords(TypedDict, total=False):
    """JobOptions as keywords (`**options: Unpack[JobKeywords]` in gym_run.api), so a caller's
    keywords are type-checked; tests/test_python_api.py checks that it names JobOptions' fields."""

    resume: bool
    overwrite: bool
    retry_failed: bool
    environ: Mapping[str, str] | None
    use_cache: bool
    max_usd: float | None
    max_tokens: int | None
    pass_threshold: float | None
    fail_under: Iterable[str | Gate]
    junit_path: str | None
