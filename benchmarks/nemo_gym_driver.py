"""NeMo Gym's own servers and collector with its defaults, on our stand-in endpoint (filled in below)."""

from __future__ import annotations

from pathlib import Path

VENV = Path.home() / ".cache/gym-compile/venvs/nemo-gym-0.4.0-py3.12"


class NemoGymUnavailable(Exception):
    pass


def nemo_gym_default_rate(rollouts: int, latency_ms: float) -> float:
    if not (VENV / "READY").exists():
        raise NemoGymUnavailable(f"no NeMo Gym venv at {VENV}")
    raise NemoGymUnavailable("not written yet")
