"""Metric files read back: every instrument, and per attribute set its value at the end of the run.

What a metric line holds depends on the point's kind and temporality, and so does how points from
several lines and processes add up:

- a **cumulative** sum or histogram point already holds everything its process counted since it
  started, so only each process's last point counts, and those last points are added up across
  the processes of the run (a counter's total, a histogram's buckets);
- a **delta** point holds what happened since the previous one, so every point is added up;
- a **gauge** is a reading, not an amount: the latest one wins, whichever process took it.

Processes are told apart by the resource's ``service.instance.id`` (the SDK sets a fresh one per
process), and without one by the file and resource the points came from: a process writes its own
file, and a Collector's file keeps each process's resource. Histogram percentiles (p50, p95, p99)
are estimates from the bucket counts, linear within a bucket and clamped to the recorded min and
max; exponential histograms are merged at their coarsest scale first.

Lines are read through :func:`modeltel.read.files.read_blocks` (bounded memory, documents and
lines alike) and decoded by the one OTLP/JSON codec, so the Collector's files read the same way.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modeltel._internal import semconv
from modeltel.formats.otlp import (
    Attributes,
    AttributeValue,
    ExponentialHistogramPoint,
    HistogramPoint,
    InvalidRequest,
    Metric,
    NumberPoint,
    Point,
    Resource,
    SummaryPoint,
    decode_metrics_line,
)
from modeltel.read.files import BadLine, file_blocks, iter_lines, line_number

__all__ = [
    "PERCENTILES",
    "Instrument",
    "MetricsReport",
    "Series",
    "bucket_percentile",
    "exponential_percentile",
    "read_metrics",
]

PERCENTILES: tuple[int, ...] = (50, 95, 99)
"""The percentiles estimated for every histogram series."""

TEMPORALITY_NAMES = {0: "", 1: "delta", 2: "cumulative"}
_INSTANCE = "service.instance.id"


@dataclass(slots=True)
class Series:
    """One attribute set of one instrument, merged over the run's processes."""

    attributes: Attributes
    processes: int = 0
    time_ns: int = 0
    """When the latest point that went into it was taken."""
    value: float | int | None = None
    """Gauges and sums: the last reading (gauge) or the total (sum)."""
    count: int | None = None
    sum: float | None = None
    min: float | None = None
    max: float | None = None
    percentiles: dict[int, float | None] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"attributes": self.attributes, "processes": self.processes}
        document["time_unix_nano"] = self.time_ns
        if self.count is None:
            document["value"] = self.value
        else:
            document.update(count=self.count, sum=self.sum, min=self.min, max=self.max)
            document.update({f"p{q}": v for q, v in self.percentiles.items()})
        return document


@dataclass(slots=True)
class Instrument:
    """An instrument as the files describe it, with its series in attribute order."""

    name: str
    kind: str
    unit: str
    temporality: str
    monotonic: bool
    description: str
    series: list[Series]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "unit": self.unit,
            "temporality": self.temporality,
            "monotonic": self.monotonic,
            "description": self.description,
            "series": [s.to_json() for s in self.series],
        }


@dataclass(slots=True)
class MetricsReport:
    """What :func:`read_metrics` found: instruments by name, and what it read them from."""

    instruments: list[Instrument]
    files: int
    processes: int
    runs: list[str]
    bad_lines: list[BadLine]


# --- percentiles from buckets ----------------------------------------------------------------------
def _interpolate(
    buckets: Sequence[tuple[float, float, int]], count: int, q: float, low: float | None, high: float | None
) -> float | None:
    """The ``q`` quantile of ``count`` values in ``(lower, upper, n)`` buckets, ascending."""
    if count <= 0:
        return None
    rank = q * count
    seen = 0
    for lower, upper, n in buckets:
        if n <= 0:
            continue
        if seen + n >= rank:
            if low is not None:
                lower, upper = max(lower, low), max(upper, low)
            if high is not None:
                lower, upper = min(lower, high), min(upper, high)
            if math.isinf(lower):
                return upper if math.isfinite(upper) else None
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * max(rank - seen, 0.0) / n
        seen += n
    return high


def bucket_percentile(
    bounds: Sequence[float], counts: Sequence[int], q: float, low: float | None, high: float | None
) -> float | None:
    """Estimate the ``q`` quantile (0-1) of an explicit-bucket histogram.

    Bucket ``i`` holds values in ``(bounds[i-1], bounds[i]]``; the first and the last are open and
    take the recorded ``low`` (min) and ``high`` (max) as their far edge when known.
    """
    edges = [-math.inf, *bounds, math.inf]
    buckets = [(edges[i], edges[i + 1], n) for i, n in enumerate(counts[: len(edges) - 1])]
    return _interpolate(buckets, sum(counts), q, low, high)


def exponential_percentile(
    scale: int,
    zero_count: int,
    positive: dict[int, int],
    negative: dict[int, int],
    q: float,
    low: float | None,
    high: float | None,
) -> float | None:
    """Estimate the ``q`` quantile of an exponential histogram (bucket ``i``: ``(b**i, b**(i+1)]``
    with ``b = 2**(2**-scale)``; negative buckets mirror it)."""

    def edge(index: int) -> float:
        # Scales outside the spec's -10 … 20 (damage, another producer) put edges past a float's
        # range: they are 0 or infinity here, and the recorded min and max bound the estimate.
        if index == 0:
            return 1.0
        try:
            return float(2.0 ** (index * 2.0**-scale))
        except OverflowError:
            return math.inf if index > 0 else 0.0

    buckets: list[tuple[float, float, int]] = []
    for index in sorted(negative, reverse=True):
        buckets.append((-edge(index + 1), -edge(index), negative[index]))
    if zero_count:
        buckets.append((0.0, 0.0, zero_count))
    for index in sorted(positive):
        buckets.append((edge(index), edge(index + 1), positive[index]))
    total = zero_count + sum(positive.values()) + sum(negative.values())
    return _interpolate(buckets, total, q, low, high)


# --- merging ---------------------------------------------------------------------------------------
def _key(attributes: Attributes) -> str:
    return repr(sorted(attributes.items()))


def _process(resource: Resource, path: Path) -> str:
    instance = resource.attributes.get(_INSTANCE)
    if isinstance(instance, str) and instance:
        return "instance:" + instance
    return f"file:{path}:{_key(resource.attributes)}"


def _low(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _high(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def _add(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else a + b


@dataclass(slots=True)
class _Merged:
    """What some points of one series add up to, before percentiles are taken."""

    attributes: Attributes
    processes: set[str] = field(default_factory=set)
    time_ns: int = 0
    value: float | int | None = None
    count: int = 0
    sum: float | None = None
    min: float | None = None
    max: float | None = None
    bounds: tuple[float, ...] | None = None
    bucket_counts: list[int] = field(default_factory=list)
    mismatched: bool = False
    """Explicit bounds differed between points: no percentiles."""
    scale: int | None = None
    zero_count: int = 0
    positive: dict[int, int] = field(default_factory=dict)
    negative: dict[int, int] = field(default_factory=dict)

    @classmethod
    def of(cls, point: Point, process: str) -> _Merged:
        merged = cls(point.attributes, {process}, point.time_ns)
        if isinstance(point, NumberPoint):
            merged.value = point.value if isinstance(point.value, int | float) else None
            return merged
        if isinstance(point, HistogramPoint | ExponentialHistogramPoint | SummaryPoint):
            merged.count, merged.sum = point.count, point.sum
        if isinstance(point, HistogramPoint):
            merged.min, merged.max = point.min, point.max
            merged.bounds, merged.bucket_counts = point.explicit_bounds, list(point.bucket_counts)
        elif isinstance(point, ExponentialHistogramPoint):
            merged.min, merged.max = point.min, point.max
            merged.scale, merged.zero_count = point.scale, point.zero_count
            for target, buckets in ((merged.positive, point.positive), (merged.negative, point.negative)):
                for i, n in enumerate(buckets.bucket_counts):
                    if n:
                        target[buckets.offset + i] = n
        return merged

    def absorb(self, other: _Merged) -> None:
        """Add ``other``'s amounts to these (a later point of a delta series, another process)."""
        self.processes |= other.processes
        self.time_ns = max(self.time_ns, other.time_ns)
        if other.value is not None:
            self.value = other.value if self.value is None else self.value + other.value
        self.count += other.count
        self.sum = _add(self.sum, other.sum)
        self.min, self.max = _low(self.min, other.min), _high(self.max, other.max)
        self.mismatched = self.mismatched or other.mismatched
        if other.bounds is not None:
            if self.bounds is None:
                self.bounds, self.bucket_counts = other.bounds, list(other.bucket_counts)
            elif self.bounds != other.bounds:
                self.mismatched = True
            else:
                counts = self.bucket_counts
                counts.extend([0] * (len(other.bucket_counts) - len(counts)))
                for i, n in enumerate(other.bucket_counts):
                    counts[i] += n
        if other.scale is not None:
            scale = other.scale if self.scale is None else min(self.scale, other.scale)
            if self.scale is not None and self.scale > scale:
                self.positive = _downscale(self.positive, self.scale - scale)
                self.negative = _downscale(self.negative, self.scale - scale)
            shift = other.scale - scale
            for target, buckets in ((self.positive, other.positive), (self.negative, other.negative)):
                for index, n in _downscale(buckets, shift).items():
                    target[index] = target.get(index, 0) + n
            self.scale = scale
            self.zero_count += other.zero_count

    def series(self, kind: str) -> Series:
        found = Series(self.attributes, len(self.processes), self.time_ns)
        if kind in ("gauge", "sum"):
            found.value = self.value
            return found
        found.count, found.sum, found.min, found.max = self.count, self.sum, self.min, self.max
        for q in PERCENTILES if kind in ("histogram", "exponential_histogram") else ():
            found.percentiles[q] = self._percentile(q / 100)
        return found

    def _percentile(self, q: float) -> float | None:
        if self.scale is not None:
            positive, negative = self.positive, self.negative
            return exponential_percentile(
                self.scale, self.zero_count, positive, negative, q, self.min, self.max
            )
        if self.bounds is None or self.mismatched:
            return None
        return bucket_percentile(self.bounds, self.bucket_counts, q, self.min, self.max)


def _downscale(buckets: dict[int, int], shift: int) -> dict[int, int]:
    """Exponential buckets at a scale ``shift`` coarser: index ``i`` becomes ``i >> shift``."""
    if shift == 0:
        return dict(buckets)
    merged: dict[int, int] = {}
    for index, n in buckets.items():
        merged[index >> shift] = merged.get(index >> shift, 0) + n
    return merged


@dataclass(slots=True)
class _Collected:
    """One instrument while reading: per series and process, what will count."""

    metric: Metric
    per_process: dict[tuple[str, str], _Merged] = field(default_factory=dict)
    """``(series, process)`` → that process's last point (cumulative, gauge) or sum of deltas."""

    def add(self, metric: Metric, process: str) -> None:
        delta = metric.kind != "gauge" and metric.temporality == 1
        for point in metric.points:
            if point.flags & 1:  # DataPointFlags.NO_RECORDED_VALUE: a gap, not a zero
                continue
            key = (_key(point.attributes), process)
            previous = self.per_process.get(key)
            if previous is not None and delta:
                previous.absorb(_Merged.of(point, process))
            elif previous is None or point.time_ns >= previous.time_ns:
                self.per_process[key] = _Merged.of(point, process)

    def instrument(self, processes: set[str]) -> Instrument | None:
        """The instrument as the points of ``processes`` give it (None when they hold none)."""
        metric = self.metric
        merged: dict[str, _Merged] = {}
        for (key, process), part in self.per_process.items():
            if process not in processes:
                continue
            target = merged.get(key)
            if target is None:
                merged[key] = _Merged(part.attributes)
                merged[key].absorb(part)
            elif metric.kind == "gauge":  # a reading: the latest one wins
                if part.time_ns >= target.time_ns:
                    part_copy = _Merged(part.attributes, target.processes | part.processes)
                    part_copy.absorb(part)
                    merged[key] = part_copy
                else:
                    target.processes |= part.processes
            else:
                target.absorb(part)
        if not merged:
            return None
        return Instrument(
            metric.name,
            metric.kind,
            metric.unit,
            "" if metric.kind == "gauge" else TEMPORALITY_NAMES.get(metric.temporality, ""),
            metric.monotonic,
            metric.description,
            [merged[key].series(metric.kind) for key in sorted(merged)],
        )


def _run_of(resource: Resource) -> str:
    value = resource.attributes.get(semconv.RESOURCE_RUN_ID)
    return value if isinstance(value, str) else ""


def _metrics_of(path: Path, on_bad: Callable[[BadLine], None]) -> Iterable[Metric]:
    for block in file_blocks(path, on_bad):
        for offset, line in iter_lines(block):
            try:
                metrics = decode_metrics_line(line)
            except InvalidRequest as exc:
                on_bad(BadLine(path, line_number(path, offset), str(exc)))
                continue
            yield from metrics


class RunNotFound(LookupError):
    """``--run`` named no run of the files, or a prefix of several (the message says which)."""


def _choose(latest: dict[str, int], wanted: str | None, last: bool) -> list[str]:
    """The run ids to report: all, the newest, or the one ``wanted`` is (or is a unique prefix of)."""
    named = [run for run in latest if run]
    if last:
        if not named:
            raise RunNotFound("--last-run: no metrics carry a run id")
        return [max(named, key=lambda run: latest[run])]
    if wanted is None:
        return list(latest)
    if wanted in latest:
        return [wanted]
    matches = sorted(run for run in named if run.startswith(wanted))
    if len(matches) > 1:
        raise RunNotFound(
            f"--run {wanted}: matches {len(matches)} runs ({', '.join(matches[:4])}); give more of it"
        )
    if not matches:
        raise RunNotFound(f"--run {wanted}: no metrics of that run")
    return matches


def read_metrics(
    files: Sequence[Path],
    *,
    names: str | None = None,
    run: str | None = None,
    last_run: bool = False,
    on_bad: Callable[[BadLine], None] = lambda bad: None,
) -> MetricsReport:
    """Every instrument in ``files`` whose name matches the glob ``names``.

    ``run`` keeps one ``modeltel.run.id`` (or the one run it is a unique prefix of, else
    :class:`RunNotFound`), ``last_run`` the run with the latest point; see the module docstring
    for how points add up. Lines that cannot be read are passed to ``on_bad`` and skipped.
    """
    collected: dict[tuple[str, str, str], _Collected] = {}
    process_run: dict[str, str] = {}
    latest: dict[str, int] = {}
    bad: list[BadLine] = []

    def skipped(line: BadLine) -> None:
        bad.append(line)
        on_bad(line)

    for path in files:
        for metric in _metrics_of(path, skipped):
            if not metric.kind or not metric.points:
                continue
            if names is not None and not fnmatch.fnmatchcase(metric.name, names):
                continue
            run_id = _run_of(metric.resource)
            process = _process(metric.resource, path)
            process_run[process] = run_id
            latest[run_id] = max(latest.get(run_id, 0), max(p.time_ns for p in metric.points))
            key = (metric.name, metric.kind, metric.unit)
            entry = collected.get(key)
            if entry is None:
                entry = collected[key] = _Collected(metric)
            entry.add(metric, process)
    chosen = set(_choose(latest, run, last_run))
    processes = {process for process, run_id in process_run.items() if run_id in chosen}
    instruments = [collected[key].instrument(processes) for key in sorted(collected)]
    found = [i for i in instruments if i is not None]
    return MetricsReport(found, len(files), len(processes), sorted(r for r in chosen if r), bad)


def attribute_text(attributes: Attributes) -> str:
    """``k=v, k=v`` in key order: how a table names a series."""
    return ", ".join(f"{k}={_value_text(v)}" for k, v in sorted(attributes.items()))


def _value_text(value: AttributeValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ",".join(_value_text(v) for v in value) + "]"
    return str(value)
