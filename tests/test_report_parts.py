"""The report's bounded parts: which rows the table keeps, the sketches charts are drawn from, and
histogram bins with a folded tail."""

from __future__ import annotations

import random

from gym_run.report.sketch import OTHER, BinnedSeries, BoundedCounter, Reservoir, percentile
from gym_run.report.svgchart import binned
from gym_run.report.table import Row, TableRows


def _row(i: int, *, failed: bool = False, passed: bool = True) -> Row:
    return Row(i, {"i": i}, None, passed=passed and not failed, failed=failed)


def test_table_keeps_the_first_rows_then_failures_from_across_the_run():
    table = TableRows(max_rows=8)  # 6 first rows, 2 more from the rest
    for i in range(100_000):
        table.add(_row(i, failed=i in (50_000, 90_000), passed=i != 70_000))
    assert [r.position for r in table.rows] == [0, 1, 2, 3, 4, 5, 50_000, 90_000]
    assert table.not_passed_after_head == 3


def test_table_fills_with_not_passed_then_passed_rows_in_order():
    table = TableRows(max_rows=8)
    for i in range(20):
        table.add(_row(i, passed=i != 15))
    assert [r.position for r in table.rows] == [0, 1, 2, 3, 4, 5, 6, 15]
    small = TableRows(max_rows=8)
    for i in range(5):
        small.add(_row(i))
    assert [r.position for r in small.rows] == [0, 1, 2, 3, 4]


def test_failures_past_the_head_are_a_uniform_sample():
    table = TableRows(max_rows=400)  # 100 slots for the rest
    for i in range(20_000):
        table.add(_row(i, failed=i >= 300 and i % 10 == 0))
    positions = [r.position for r in table.rows[300:]]
    assert len(positions) == 100 and positions == sorted(positions)
    assert min(positions) < 5_000 and max(positions) > 15_000  # spread, not the first 100


def test_reservoir_is_exact_until_full_then_uniform_and_bounded():
    sample = Reservoir(size=1000, seed=0)
    for v in range(1000):
        sample.add(float(v))
    assert sorted(sample.values) == [float(v) for v in range(1000)]
    for v in range(1000, 100_000):
        sample.add(float(v))
    assert len(sample) == 1000 and sample.seen == 100_000
    median = percentile(sample.values, 0.5)
    assert median is not None and 40_000 < median < 60_000
    sample.add(float("nan"))
    assert sample.seen == 100_000  # not a number: not counted


def test_binned_series_has_at_most_its_bins_and_means_per_bin():
    series = BinnedSeries(100_000, ("a",), bins=60)
    for i in range(100_000):
        series.add(i, {"a": float(i % 2)})
    labels, means = series.means()
    assert len(labels) == 60 and labels[0] == "0-1666" and series.width == 1667
    assert all(0.49 < m < 0.51 for m in means["a"])
    one = BinnedSeries(20, ("a",))
    for i in range(20):
        one.add(i, {"a": float(i)})
    assert one.means() == ([str(i) for i in range(20)], {"a": [float(i) for i in range(20)]})


def test_bounded_counter_folds_new_keys_once_full():
    counter = BoundedCounter(limit=3)
    for key in ["a", "b", "c", "d", "e", "a"]:
        counter.note(key)
    assert counter == {"a": 2, "b": 1, "c": 1, OTHER: 2}


def test_histogram_bins_fold_a_long_tail_into_a_last_bin():
    rng = random.Random(0)
    values = [rng.lognormvariate(0, 0.5) for _ in range(10_000)] + [500.0]
    labels, counts = binned(values, count=12)
    assert len(labels) == 13 and labels[-1].startswith("> ") and sum(counts) == len(values)
    assert counts[-1] >= 1 and max(counts[:-1]) > 1000  # the body is spread over the 12 bins
    flat, flat_counts = binned([1.0, 2.0, 3.0], count=3)
    assert len(flat) == 3 and flat_counts == [1, 1, 1]  # no tail: no extra bin
    assert binned([5.0] * 4) == (["5"], [4])
