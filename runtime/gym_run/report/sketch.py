"""Streams of numbers in, bounded summaries out: what the report's charts are drawn from.

A report of ten million rollouts must cost about the memory and the page size of one of two
thousand, so nothing here keeps one entry per rollout: a seeded reservoir sample (for histograms
and percentiles), sums per bin of input positions (for series over the run) and a counter that
folds rare keys together once it is full.
"""

from __future__ import annotations

import math
import random
from array import array
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

RESERVOIR = 100_000
SERIES_BINS = 60
OTHER = "(other messages)"


class Reservoir:
    """A uniform sample of at most `size` values (Algorithm R), 8 bytes each; exact until full."""

    def __init__(self, size: int = RESERVOIR, seed: int = 0) -> None:
        self.size = size
        self.seen = 0
        self._values = array("d")
        self._rng = random.Random(seed)

    def add(self, value: float) -> None:
        if not math.isfinite(value):
            return
        self.seen += 1
        if len(self._values) < self.size:
            self._values.append(value)
            return
        slot = self._rng.randrange(self.seen)
        if slot < self.size:
            self._values[slot] = value

    @property
    def values(self) -> list[float]:
        return self._values.tolist()

    def __len__(self) -> int:
        return len(self._values)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank percentile of a sample (q in 0..1), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@dataclass
class BinnedSeries:
    """Sums of named values over consecutive input positions: at most `bins` bins however many
    rollouts there are (one bin per rollout while they fit). `expected` is the most positions
    there can be (tasks x repeats, known before the pass)."""

    expected: int
    names: tuple[str, ...]
    bins: int = SERIES_BINS
    width: int = field(init=False)
    sums: list[list[float]] = field(init=False)
    counts: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.width = max(1, math.ceil(self.expected / self.bins))
        n = max(1, math.ceil(self.expected / self.width))
        self.sums = [[0.0] * len(self.names) for _ in range(n)]
        self.counts = [0] * n

    def add(self, position: int, values: Mapping[str, float]) -> None:
        index = position // self.width
        if index >= len(self.counts):  # more records than announced: widen the last bin
            index = len(self.counts) - 1
        self.counts[index] += 1
        row = self.sums[index]
        for i, name in enumerate(self.names):
            row[i] += values.get(name, 0.0)

    def means(self) -> tuple[list[str], dict[str, list[float]]]:
        """(bin labels, mean per counted value per bin), bins with nothing counted left out at the end."""
        last = max((i for i, n in enumerate(self.counts) if n), default=-1)
        labels: list[str] = []
        out: dict[str, list[float]] = {name: [] for name in self.names}
        for i in range(last + 1):
            start = i * self.width
            labels.append(str(start) if self.width == 1 else f"{start}-{start + self.width - 1}")
            for j, name in enumerate(self.names):
                out[name].append(self.sums[i][j] / self.counts[i] if self.counts[i] else 0.0)
        return labels, out


class BoundedCounter(Counter[str]):
    """A Counter of at most `limit` keys; later new keys are counted under OTHER."""

    def __init__(self, limit: int = 200) -> None:
        super().__init__()
        self.limit = limit

    def note(self, key: str) -> None:
        if key in self or len(self) < self.limit:
            self[key] += 1
        else:
            self[OTHER] += 1
