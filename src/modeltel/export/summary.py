"""``RunSummary``: one line in ``summaries.jsonl`` per finished process (and, later, per job).

The accumulator runs on the exporter's thread, never on the application's, and its memory is
bounded: count, error count, total, min and max are exact; percentiles come from a reservoir of at
most :data:`RESERVOIR_SIZE` durations per span name (exact below that, Algorithm R above).
"""

from __future__ import annotations

import math
import random
from array import array
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Literal

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode
from pydantic import BaseModel, Field

SCHEMA_VERSION = 1
RESERVOIR_SIZE = 65_536


class DurationStats(BaseModel):
    """Durations of the spans of one name, in seconds."""

    count: int
    errors: int
    total_s: float
    mean_s: float
    min_s: float
    p50_s: float
    p95_s: float
    max_s: float


class NumericStats(BaseModel):
    """A numeric span attribute over every span that carried it."""

    count: int
    sum: float
    mean: float
    min: float
    max: float


class RunSummary(BaseModel):
    """What one process (kind ``process``) or one job recorded. ``schema_version`` guards readers."""

    schema_version: int = SCHEMA_VERSION
    kind: Literal["process", "simulation", "calibration", "inference"]
    service: str
    run_id: str
    pid: int
    job_name: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    start: datetime
    end: datetime
    duration_s: float
    status: Literal["ok", "error"]
    span_count: int
    by_name: dict[str, DurationStats] = Field(default_factory=dict)
    numeric: dict[str, NumericStats] = Field(default_factory=dict)


class _NameStats:
    __slots__ = ("count", "errors", "max", "min", "reservoir", "total")

    def __init__(self) -> None:
        self.count = 0
        self.errors = 0
        self.total = 0.0
        self.min = float("inf")
        self.max = float("-inf")
        self.reservoir = array("d")

    def add(self, seconds: float, error: bool, rng: random.Random) -> None:
        self.count += 1
        self.errors += error
        self.total += seconds
        self.min = min(self.min, seconds)
        self.max = max(self.max, seconds)
        if len(self.reservoir) < RESERVOIR_SIZE:
            self.reservoir.append(seconds)
        else:
            slot = rng.randrange(self.count)
            if slot < RESERVOIR_SIZE:
                self.reservoir[slot] = seconds

    def stats(self) -> DurationStats:
        ordered = sorted(self.reservoir)
        return DurationStats(
            count=self.count,
            errors=self.errors,
            total_s=self.total,
            mean_s=self.total / self.count,
            min_s=self.min,
            p50_s=percentile(ordered, 50),
            p95_s=percentile(ordered, 95),
            max_s=self.max,
        )


class _Numeric:
    __slots__ = ("count", "max", "min", "sum")

    def __init__(self) -> None:
        self.count = 0
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")

    def add(self, value: float) -> None:
        self.count += 1
        self.sum += value
        self.min = min(self.min, value)
        self.max = max(self.max, value)

    def stats(self) -> NumericStats:
        return NumericStats(
            count=self.count, sum=self.sum, mean=self.sum / self.count, min=self.min, max=self.max
        )


def percentile(ordered: list[float], q: float) -> float:
    """Linear-interpolated percentile of sorted values (numpy's default method, without numpy)."""
    if not ordered:
        return 0.0
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class SpanStats:
    """Accumulates per-name durations and numeric attributes of exported spans."""

    def __init__(self) -> None:
        self.by_name: dict[str, _NameStats] = {}
        self.numeric: dict[str, _Numeric] = {}
        self.first_start: int | None = None
        self.errors = 0
        self._rng = random.Random(0x5EED)

    def add(self, spans: Iterable[ReadableSpan]) -> None:
        by_name, numeric, rng = self.by_name, self.numeric, self._rng
        for span in spans:
            start, end = span.start_time or 0, span.end_time or 0
            error = span.status.status_code is StatusCode.ERROR
            self.errors += error
            if self.first_start is None or start < self.first_start:
                self.first_start = start
            stats = by_name.get(span.name)
            if stats is None:
                stats = by_name[span.name] = _NameStats()
            stats.add((end - start) / 1e9, error, rng)
            for key, value in (span.attributes or {}).items():
                kind = type(value)
                if (kind is float or kind is int) and math.isfinite(value):  # type: ignore[arg-type]
                    acc = numeric.get(key)
                    if acc is None:
                        acc = numeric[key] = _Numeric()
                    acc.add(value)  # type: ignore[arg-type]

    @property
    def span_count(self) -> int:
        return sum(s.count for s in self.by_name.values())

    def process_summary(self, *, service: str, run_id: str, pid: int, started_ns: int) -> RunSummary:
        """The summary of everything this process exported since ``started_ns``."""
        end = datetime.now(UTC)
        start = datetime.fromtimestamp(started_ns / 1e9, UTC)
        return RunSummary(
            kind="process",
            service=service,
            run_id=run_id,
            pid=pid,
            start=start,
            end=end,
            duration_s=(end - start).total_seconds(),
            status="error" if self.errors else "ok",
            span_count=self.span_count,
            by_name={name: s.stats() for name, s in sorted(self.by_name.items())},
            numeric={key: n.stats() for key, n in sorted(self.numeric.items())},
        )
