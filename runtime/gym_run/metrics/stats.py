"""A stream of numbers in, count/mean/std/min/max/median out, in memory that does not grow with it.

Mean and standard deviation use Welford's update (stable over millions of values). The median is
exact while a field has at most `EXACT_DISTINCT` distinct values (rewards, tool calls, most token
counts of a small run); past that the values move into a logarithmic-bucket sketch whose median is
within `RELATIVE_ACCURACY` of the true one (relative error, DDSketch's construction), and the
summary says `median_approx: true`. So 100,000 latencies cost a few thousand counters, not 100,000
floats.

`std` is the sample standard deviation (n - 1), the convention of NeMo Gym's aggregate metrics
(pandas); it is 0 for a single value.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

EXACT_DISTINCT = 2048
RELATIVE_ACCURACY = 0.005
_GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(_GAMMA)


class LogSketch:
    """Counts per logarithmic bucket (separately for negative values, zero and positive ones)."""

    __slots__ = ("count", "negative", "positive", "zeros")

    def __init__(self) -> None:
        self.positive: Counter[int] = Counter()
        self.negative: Counter[int] = Counter()
        self.zeros = 0
        self.count = 0

    def add(self, value: float, times: int = 1) -> None:
        self.count += times
        if value == 0:
            self.zeros += times
        elif value > 0:
            self.positive[math.ceil(math.log(value) / _LOG_GAMMA)] += times
        else:
            self.negative[math.ceil(math.log(-value) / _LOG_GAMMA)] += times

    def quantile(self, q: float) -> float | None:
        """The value at rank floor(q * (count - 1)), within RELATIVE_ACCURACY of the exact one."""
        if not self.count:
            return None
        rank = math.floor(q * (self.count - 1))
        seen = 0
        for key in sorted(self.negative, reverse=True):  # most negative first
            seen += self.negative[key]
            if seen > rank:
                return -_bucket_value(key)
        seen += self.zeros
        if seen > rank:
            return 0.0
        for key in sorted(self.positive):
            seen += self.positive[key]
            if seen > rank:
                return _bucket_value(key)
        return None  # unreachable: the counts add up to self.count


def _bucket_value(key: int) -> float:
    """The value with the least relative error to anything in bucket (gamma^(key-1), gamma^key]."""
    return 2 * _GAMMA**key / (_GAMMA + 1)


class Distribution:
    """Summary statistics of a stream of finite numbers (non-finite ones are counted, not used)."""

    __slots__ = ("_exact", "_m2", "_mean", "_sketch", "count", "max", "min", "non_finite", "total")

    def __init__(self) -> None:
        self.count = 0
        self.non_finite = 0
        self.total = 0.0
        self._mean = 0.0
        self._m2 = 0.0
        self.min = math.inf
        self.max = -math.inf
        self._exact: Counter[float] | None = Counter()
        self._sketch: LogSketch | None = None

    def add(self, value: float) -> None:
        value = float(value)
        if not math.isfinite(value):
            self.non_finite += 1
            return
        self.count += 1
        self.total += value
        delta = value - self._mean
        self._mean += delta / self.count
        self._m2 += delta * (value - self._mean)
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        exact = self._exact
        if exact is not None:
            exact[value] = exact.get(value, 0) + 1
            if len(exact) > EXACT_DISTINCT:
                self._sketch = LogSketch()
                for seen, times in exact.items():
                    self._sketch.add(seen, times)
                self._exact = None
        else:
            assert self._sketch is not None
            self._sketch.add(value)

    @property
    def mean(self) -> float | None:
        return self._mean if self.count else None

    @property
    def std(self) -> float | None:
        if not self.count:
            return None
        return math.sqrt(self._m2 / (self.count - 1)) if self.count > 1 else 0.0

    @property
    def median_exact(self) -> bool:
        return self._exact is not None

    @property
    def median(self) -> float | None:
        if not self.count:
            return None
        if self._exact is None:
            assert self._sketch is not None
            return self._sketch.quantile(0.5)
        return exact_median(self._exact, self.count)

    def quantile(self, q: float) -> float | None:
        """The value at rank floor(q * (count - 1)) (exact, or from the sketch past EXACT_DISTINCT)."""
        if not self.count:
            return None
        if self._exact is None:
            assert self._sketch is not None
            return self._sketch.quantile(q)
        rank = math.floor(q * (self.count - 1))
        seen = 0
        for value in sorted(self._exact):
            seen += self._exact[value]
            if seen > rank:
                return value
        return self.max

    def as_dict(self) -> dict[str, Any]:
        """{count, mean, std, min, max, median}; numbers are None when nothing was counted."""
        out: dict[str, Any] = {
            "count": self.count,
            "mean": self.mean,
            "std": self.std,
            "min": self.min if self.count else None,
            "max": self.max if self.count else None,
            "median": self.median,
        }
        if not self.median_exact:
            out["median_approx"] = True
        if self.non_finite:
            out["non_finite"] = self.non_finite
        return out


def exact_median(counts: Counter[float], n: int) -> float:
    """The median of a multiset given as value -> count: the mean of the two middle values when n
    is even (what pandas and statistics.median answer)."""
    lower_rank, upper_rank = (n - 1) // 2, n // 2
    lower = upper = None
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if lower is None and seen > lower_rank:
            lower = value
        if seen > upper_rank:
            upper = value
            break
    assert lower is not None and upper is not None
    return (lower + upper) / 2


def summarize(values: list[float]) -> dict[str, Any]:
    """What Distribution.as_dict() gives for a short list (one task's repeats), computed directly:
    per-task statistics run once per task and field, so they must be cheap."""
    finite = [float(v) for v in values if math.isfinite(v)]
    n = len(finite)
    out: dict[str, Any]
    if not n:
        out = dict.fromkeys(("mean", "std", "min", "max", "median"))
        out = {"count": 0, **out}
    else:
        ordered = sorted(finite)
        mean = math.fsum(ordered) / n
        var = math.fsum((v - mean) ** 2 for v in ordered) / (n - 1) if n > 1 else 0.0
        out = {
            "count": n,
            "mean": mean,
            "std": math.sqrt(var),
            "min": ordered[0],
            "max": ordered[-1],
            "median": (ordered[(n - 1) // 2] + ordered[n // 2]) / 2,
        }
    if len(finite) < len(values):
        out["non_finite"] = len(values) - len(finite)
    return out
