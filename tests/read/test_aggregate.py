"""Distributions: exact percentiles while small, within 1% once folded, and mergeable."""

from __future__ import annotations

import numpy as np
import pytest

from modeltel.read.aggregate import EXACT_LIMIT, Distribution, GroupTable
from modeltel.read.scan import Columns


def test_small_distributions_are_exact_like_numpy() -> None:
    values = np.array([0.5, 0.1, 0.3, 2.0, 0.0])
    d = Distribution()
    d.add(values)
    assert d.exact
    assert d.percentiles([10, 50, 95]) == pytest.approx(np.percentile(values, [10, 50, 95]).tolist())
    assert (d.count, d.total, d.minimum, d.maximum) == (5, pytest.approx(2.9), 0.0, 2.0)


def test_nan_and_infinities_are_skipped() -> None:
    d = Distribution()
    d.add(np.array([1.0, np.nan, np.inf, 3.0]))
    assert (d.count, d.mean) == (2, 2.0)


def test_large_distributions_are_within_one_percent_and_bounded() -> None:
    rng = np.random.default_rng(1)
    values = rng.lognormal(-5, 1.5, 400_000)
    values[:1000] = 0.0
    d = Distribution()
    for part in np.array_split(values, 40):
        d.add(part)
    assert not d.exact
    qs = [1, 10, 25, 50, 75, 90, 95, 99]
    got, want = d.percentiles(qs), np.percentile(values, qs)
    for q, g, w in zip(qs, got, want, strict=True):
        assert g == pytest.approx(w, rel=0.011, abs=1e-12), q
    assert d.count == len(values) and d.maximum == values.max() and d.total == pytest.approx(values.sum())
    assert len(d._bins) < 2000  # memory: buckets, not values


def test_merging_parts_gives_the_answer_of_the_whole() -> None:
    rng = np.random.default_rng(2)
    values = rng.exponential(1.0, 3 * EXACT_LIMIT)
    whole = Distribution()
    whole.add(values)
    merged = Distribution()
    for part in np.array_split(values, 7):
        piece = Distribution()
        piece.add(part)
        merged.merge(piece)
    assert merged.count == whole.count
    assert merged.percentiles([50, 90]) == pytest.approx(whole.percentiles([50, 90]), rel=1e-9)
    small = Distribution()
    small.add(values[:10])
    other = Distribution()
    other.add(values[10:20])
    small.merge(other)
    assert small.exact and small.percentiles([50]) == pytest.approx([float(np.median(values[:20]))])


def test_group_table_counts_errors_and_metrics_per_label() -> None:
    columns = Columns(
        labels=["a", "b"],
        group=np.array([0, 1, 0, 0], np.int32),
        start=np.array([0, 0, 10, 20], np.int64),
        end=np.array([1_000_000_000, 2_000_000_000, 500_000_010, 20], np.int64),
        error=np.array([False, True, True, False]),
        values={"tokens": np.array([5.0, np.nan, 7.0, np.nan])},
    )
    table = GroupTable()
    table.add(columns)
    other = GroupTable()
    other.add(columns)
    table.merge(other)
    a, b = table.groups["a"], table.groups["b"]
    assert (a.count, a.errors, b.count, b.errors) == (6, 2, 2, 2)
    assert a.metric("duration_s").total == pytest.approx(3.0)
    assert a.metrics["tokens"].count == 4 and "tokens" not in b.metrics
    assert [label for label, _ in table.items()] == ["a", "b"]
