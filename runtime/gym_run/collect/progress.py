"""Finished rollouts and live counters in, one redrawn status line on stderr out (only on a terminal)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO


@dataclass
class Live:
    """Counters that move between completions: rollouts in flight, retries and 429s so far."""

    in_flight: int = 0
    retries: int = 0
    rate_limited: int = 0


class Progress:
    """done/total, failed, in flight, rate, retries, 429s; redrawn at most every `min_interval_s`."""

    def __init__(
        self,
        total: int,
        *,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        min_interval_s: float = 0.1,
        already_done: int = 0,
        already_failed: int = 0,
        live: Callable[[], Live] | None = None,
    ) -> None:
        self.total = total
        self.resumed = already_done
        self.done = already_done
        self.failed = already_failed
        self._live = live or Live
        self._stream = stream if stream is not None else sys.stderr
        self.enabled = _is_tty(self._stream) if enabled is None else enabled
        self._min_interval_s = min_interval_s
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._drawn = False

    def record(self, ok: bool, replaced_failed: bool = False) -> None:
        """One record became final; `replaced_failed`: it supersedes a failed one counted as done."""
        if replaced_failed:
            self.failed -= 1
        else:
            self.done += 1
        if not ok:
            self.failed += 1
        self.refresh(force=self.done == self.total)

    def refresh(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if force or now - self._last_draw >= self._min_interval_s:
            self._draw(now)

    def line(self, now: float | None = None) -> str:
        elapsed = (now if now is not None else time.monotonic()) - self._started
        rate = (self.done - self.resumed) / elapsed if elapsed > 0 else 0.0
        live = self._live()
        parts = [f"rollouts {self.done}/{self.total}"]
        if self.resumed:
            parts[0] += f" ({self.resumed} from before)"
        if self.failed:
            parts.append(f"{self.failed} failed")
        parts.append(f"{live.in_flight} in flight")
        parts.append(f"{rate:.1f}/s")
        if live.retries:
            parts.append(f"{live.retries} retries ({live.rate_limited} x 429)")
        return ", ".join(parts)

    def _draw(self, now: float) -> None:
        self._stream.write("\r\x1b[2K" + self.line(now))
        self._stream.flush()
        self._last_draw = now
        self._drawn = True

    def close(self) -> None:
        """Clears the line so the final summary starts on a clean one."""
        if self._drawn:
            self._stream.write("\r\x1b[2K")
            self._stream.flush()
            self._drawn = False


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
