"""Per-group statistics over span columns, with memory bounded by the number of groups.

Counts, error counts, sums, minima and maxima are exact. Percentiles are exact (numpy's default
linear interpolation) while a group holds at most :data:`EXACT_LIMIT` values of a metric; past that
the values are folded into a log-bucketed histogram (the DDSketch idea) whose buckets are
:data:`GAMMA` wide, so every percentile is within 1% of a true value of the data, and memory per
group stays a few kilobytes however many spans are read. Both forms merge, so partial results from
worker processes combine into the same answer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from modeltel.read.scan import Columns

if TYPE_CHECKING:
    import numpy.typing as npt

    from modeltel.read.layout import FloatArray

EXACT_LIMIT = 16_384
GAMMA = 1.02
_LOG_GAMMA = math.log(GAMMA)
DURATION = "duration_s"
"""The metric every group has: span duration in seconds."""


class Distribution:
    """Count, sum, min, max and percentiles of one metric in one group (non-negative values).

    Negative values (a span whose clock went backwards) count as zero for percentiles; sum, min
    and max keep them as they are.
    """

    __slots__ = ("_bins", "_exact", "_low", "_zeros", "count", "maximum", "minimum", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.minimum = math.inf
        self.maximum = -math.inf
        self._exact: list[FloatArray] | None = []
        self._bins: npt.NDArray[np.int64] = np.zeros(0, np.int64)
        self._low = 0
        self._zeros = 0

    def add(self, values: FloatArray) -> None:
        """Fold in ``values`` (finite ones; NaN and infinities are skipped)."""
        values = values[np.isfinite(values)]
        if not len(values):
            return
        self.count += len(values)
        self.total += float(values.sum())
        self.minimum = min(self.minimum, float(values.min()))
        self.maximum = max(self.maximum, float(values.max()))
        if self._exact is not None:
            self._exact.append(values.copy())
            if self.count > EXACT_LIMIT:
                self._fold(np.concatenate(self._exact))
                self._exact = None
        else:
            self._fold(values)

    def _fold(self, values: FloatArray) -> None:
        positive = values[values > 0]
        self._zeros += len(values) - len(positive)
        if not len(positive):
            return
        index = np.ceil(np.log(positive) / _LOG_GAMMA).astype(np.int64)
        self._add_bins(int(index.min()), np.bincount(index - index.min()))

    def _add_bins(self, low: int, counts: npt.NDArray[np.int64]) -> None:
        if not len(self._bins):
            self._low, self._bins = low, counts.astype(np.int64)
            return
        new_low = min(self._low, low)
        new_high = max(self._low + len(self._bins), low + len(counts))
        merged = np.zeros(new_high - new_low, np.int64)
        merged[self._low - new_low : self._low - new_low + len(self._bins)] += self._bins
        merged[low - new_low : low - new_low + len(counts)] += counts
        self._low, self._bins = new_low, merged

    def merge(self, other: Distribution) -> None:
        """Fold ``other`` (of the same metric and group, from another part of the data) into this one."""
        if not other.count:
            return
        self.count += other.count
        self.total += other.total
        self.minimum = min(self.minimum, other.minimum)
        self.maximum = max(self.maximum, other.maximum)
        if self._exact is not None and other._exact is not None and self.count <= EXACT_LIMIT:
            self._exact.extend(other._exact)
            return
        if self._exact is not None:
            if self._exact:
                self._fold(np.concatenate(self._exact))
            self._exact = None
        if other._exact is not None:
            if other._exact:
                self._fold(np.concatenate(other._exact))
        else:
            self._zeros += other._zeros
            if len(other._bins):
                self._add_bins(other._low, other._bins)

    @property
    def exact(self) -> bool:
        """True while percentiles are computed from every value."""
        return self._exact is not None

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan

    def percentiles(self, qs: Sequence[float]) -> list[float]:
        """The ``qs`` percentiles (0-100); NaN when empty."""
        if not self.count:
            return [math.nan] * len(qs)
        if self._exact is not None:
            return linear_percentiles(np.concatenate(self._exact), qs)
        cumulative = np.cumsum(self._bins)
        out = []
        for q in qs:
            rank = q / 100 * (self.count - 1)
            if rank < self._zeros:
                value = 0.0
            else:
                bucket = int(np.searchsorted(cumulative, rank - self._zeros, side="right"))
                index = self._low + min(bucket, len(self._bins) - 1)
                value = 2 * GAMMA**index / (GAMMA + 1)
            out.append(min(max(value, self.minimum), self.maximum))
        return out


def linear_percentiles(values: FloatArray, qs: Sequence[float]) -> list[float]:
    """``np.percentile(values, qs)`` (its default, linear method) with the same arithmetic, step
    by step: numpy's own partitions through ``np.unique``, whose first call imports
    ``numpy.ma``, a cost ``show`` would pay for every few spans."""
    ordered = np.sort(values)
    count = len(ordered)
    if np.isnan(ordered[-1]):  # NaN sorts last; numpy's answer is then NaN throughout
        return [math.nan] * len(qs)
    virtual = (count - 1) * np.true_divide(qs, 100)
    below = np.floor(virtual)
    above = below + 1
    last, first = virtual >= count - 1, virtual < 0
    below[last] = above[last] = -1
    below[first] = above[first] = 0
    low_index, high_index = below.astype(np.intp), above.astype(np.intp)
    low, high = ordered[low_index], ordered[high_index]
    weight = virtual - low_index
    step = high - low
    result = np.where(weight >= 0.5, high - step * (1 - weight), low + step * weight)
    return [float(v) for v in result]


@dataclass(slots=True)
class Group:
    """Everything known about one group: spans, errors, and a distribution per metric."""

    count: int = 0
    errors: int = 0
    first_start_ns: int = 0
    last_end_ns: int = 0
    metrics: dict[str, Distribution] = field(default_factory=dict)

    def metric(self, name: str) -> Distribution:
        found = self.metrics.get(name)
        if found is None:
            found = self.metrics[name] = Distribution()
        return found


class GroupTable:
    """Groups by label, filled from :class:`Columns` and mergeable across processes."""

    def __init__(self) -> None:
        self.groups: dict[str, Group] = {}

    def __len__(self) -> int:
        return len(self.groups)

    @property
    def span_count(self) -> int:
        return sum(g.count for g in self.groups.values())

    def add(self, columns: Columns) -> None:
        if not len(columns):
            return
        order = np.argsort(columns.group, kind="stable")
        group_ids = columns.group[order]
        cuts = np.flatnonzero(np.diff(group_ids)) + 1
        starts = np.concatenate(([0], cuts))
        stops = np.concatenate((cuts, [len(order)]))
        duration = (columns.end - columns.start)[order] / 1e9
        error = columns.error[order]
        start = columns.start[order]
        end = columns.end[order]
        values = {key: column[order] for key, column in columns.values.items()}
        for lo, hi in zip(starts.tolist(), stops.tolist(), strict=True):
            label = columns.labels[int(group_ids[lo])]
            group = self.groups.get(label)
            if group is None:
                group = self.groups[label] = Group(first_start_ns=int(start[lo:hi].min()))
            group.count += hi - lo
            group.errors += int(error[lo:hi].sum())
            group.first_start_ns = min(group.first_start_ns, int(start[lo:hi].min()))
            group.last_end_ns = max(group.last_end_ns, int(end[lo:hi].max()))
            group.metric(DURATION).add(duration[lo:hi])
            for key, column in values.items():
                part = column[lo:hi]
                if not np.isnan(part).all():
                    group.metric(key).add(part)

    def add_all(self, parts: Iterable[Columns]) -> None:
        for part in parts:
            self.add(part)

    def merge(self, other: GroupTable) -> None:
        for label, theirs in other.groups.items():
            mine = self.groups.get(label)
            if mine is None:
                self.groups[label] = theirs
                continue
            mine.count += theirs.count
            mine.errors += theirs.errors
            mine.first_start_ns = min(mine.first_start_ns, theirs.first_start_ns)
            mine.last_end_ns = max(mine.last_end_ns, theirs.last_end_ns)
            for name, distribution in theirs.metrics.items():
                mine.metric(name).merge(distribution)

    def items(self) -> Iterator[tuple[str, Group]]:
        """Groups by descending span count, then label."""
        return iter(sorted(self.groups.items(), key=lambda item: (-item[1].count, item[0])))
