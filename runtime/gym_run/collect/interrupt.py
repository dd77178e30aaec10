"""Ctrl-C (or SIGTERM, as a batch scheduler sends) during a collection: the first signal stops
admitting rows and lets in-flight rollouts finish for a bounded grace period; the second exits
at once. Installed on the running loop, so signals are handled between callbacks, never in the
middle of a write."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable


class Interrupts:
    """Counts SIGINT/SIGTERM and calls `first` once, then `again` for every later one."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, *, first: Callable[[], None], again: Callable[[], None]) -> None:
        self.first = first
        self.again = again
        self.count = 0
        self._installed: list[signal.Signals] = []

    def install(self) -> bool:
        """False where the loop cannot take signals (Windows, a thread that is not the main one)."""
        loop = asyncio.get_running_loop()
        for sig in self.SIGNALS:
            try:
                loop.add_signal_handler(sig, self._handle)
            except (NotImplementedError, RuntimeError, ValueError):
                self.remove()
                return False
            self._installed.append(sig)
        return True

    def remove(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)
        self._installed = []

    def _handle(self) -> None:
        self.count += 1
        (self.first if self.count == 1 else self.again)()
