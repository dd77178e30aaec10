"""Finished rollouts and live counters in, a status line on stderr out: redrawn in place on a
terminal, a plain line every `plain_interval_s` otherwise (CI logs see the run move).

The line: done/total and percentage, failures, running mean reward (of the ok rollouts so far),
in flight, rate, ETA (what is left at this run's rate so far), retries and 429s.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TextIO

Mode = Literal["tty", "plain", "off"]
PLAIN_INTERVAL_S = 15.0


@dataclass
class Live:
    """Counters that move between completions: rollouts in flight, retries and 429s so far."""

    in_flight: int = 0
    retries: int = 0
    rate_limited: int = 0


def duration(seconds: float) -> str:
    """45s, 3m05s, 2h07m."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """`enabled`: None picks by the stream (a terminal: redraw; else plain lines), True forces the
    redrawn line, False shows nothing. Redraws at most every `min_interval_s`."""

    def __init__(
        self,
        total: int,
        *,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        min_interval_s: float = 0.1,
        plain_interval_s: float = PLAIN_INTERVAL_S,
        already_done: int = 0,
        already_failed: int = 0,
        reward_sum: float = 0.0,
        reward_count: int = 0,
        live: Callable[[], Live] | None = None,
    ) -> None:
        self.total = total
        self.resumed = already_done
        self.done = already_done
        self.failed = already_failed
        self.reward_sum = reward_sum
        self.reward_count = reward_count
        self._live = live or Live
        self._stream = stream if stream is not None else sys.stderr
        self.mode: Mode = (
            "off" if enabled is False else "tty" if enabled or _is_tty(self._stream) else "plain"
        )
        self._min_interval_s = min_interval_s if self.mode == "tty" else plain_interval_s
        self._started = time.monotonic()
        self._last_draw = self._started if self.mode == "plain" else 0.0
        self._drawn = False

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def record(self, ok: bool, replaced_failed: bool = False, reward: float | None = None) -> None:
        """One record became final; `replaced_failed`: it supersedes a failed one counted as done."""
        if replaced_failed:
            self.failed -= 1
        else:
            self.done += 1
        if not ok:
            self.failed += 1
        elif reward is not None:
            self.reward_sum += reward
            self.reward_count += 1
        self.refresh(force=self.mode == "tty" and self.done == self.total)

    def refresh(self, force: bool = False) -> None:
        if self.mode == "off":
            return
        now = time.monotonic()
        if force or now - self._last_draw >= self._min_interval_s:
            self._draw(now)

    def line(self, now: float | None = None) -> str:
        now = now if now is not None else time.monotonic()
        elapsed = now - self._started
        new = self.done - self.resumed
        rate = new / elapsed if elapsed > 0 else 0.0
        live = self._live()
        percent = f" ({100 * self.done / self.total:.1f}%)" if self.total else ""
        parts = [f"rollouts {self.done:,}/{self.total:,}{percent}"]
        if self.resumed:
            parts[0] += f" ({self.resumed:,} from before)"
        if self.failed:
            parts.append(f"{self.failed:,} failed")
        if self.reward_count:
            parts.append(f"mean reward {self.reward_sum / self.reward_count:.3f}")
        parts.append(f"{live.in_flight} in flight")
        parts.append(f"{rate:.1f}/s")
        left = self.total - self.done
        if left > 0 and new > 0:
            parts.append(f"ETA {duration(left / rate)}")
        if live.retries:
            parts.append(f"{live.retries:,} retries ({live.rate_limited:,} x 429)")
        return ", ".join(parts)

    def _draw(self, now: float) -> None:
        if self.mode == "plain":
            self._stream.write(f"gym-run: {self.line(now)}\n")
        else:
            self._stream.write("\r\x1b[2K" + self.line(now))
            self._drawn = True
        self._stream.flush()
        self._last_draw = now

    def close(self) -> None:
        """Clears the redrawn line so the final summary starts on a clean one."""
        if self._drawn:
            self._stream.write("\r\x1b[2K")
            self._stream.flush()
            self._drawn = False


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
