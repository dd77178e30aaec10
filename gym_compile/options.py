"""What a compile is asked to do: one frozen object every entry point (compile, lint, explain) passes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Options:
    """env: the env.yaml to read (None: ./env.yaml when default_env, else none).
    env_required: a missing env file is an error, not silence.
    assume_env: top-level names defined nowhere come from an env.yaml given at run time (lint).
    allow_missing: `???` may stay unset (lint: set at run time).
    build: build the plan (False: check only).
    nemo_gym_roots: extra NeMo Gym roots (--nemo-gym-root), searched first.
    each_alone: one of several files linted alone (what another file may define is not missing)."""

    env: Path | None = None
    env_required: bool = False
    assume_env: bool = False
    allow_missing: bool = False
    build: bool = True
    default_env: bool = True
    nemo_gym_roots: tuple[Path, ...] = ()
    each_alone: bool = False

    @property
    def env_path(self) -> Path | None:
        if self.env is not None:
            return self.env
        return Path("env.yaml") if self.default_env else None
