"""``RunSummary``: one line in ``summaries.jsonl`` per finished process (here) and per job (jobs.py).

Every line is written as a plain dict through :mod:`json`: importing pydantic and building the
models costs ~165 ms, which held a short app's exit up (where the process's line and, often, the
last job's are written; imported ahead on a thread it cost every process of a job array that CPU).
:class:`~modeltel.store.schemas.RunSummary` stays the contract: readers validate with it, and tests
hold every line to what it would write.

Summaries are a stage of the local copy (:mod:`modeltel._internal.export.local`): they fold the batches
the JSONL writer was given, already redacted, so a secret-keyed number is a ``<redacted>`` string
by then and is never added up. The accumulator runs on the exporter's thread, never on the
application's, and its memory is bounded: count, error count, total, min and max are exact;
percentiles come from a reservoir of at most :data:`RESERVOIR_SIZE` durations per span name (exact
below that, Algorithm R above).
"""

from __future__ import annotations

import json
import math
import operator
import os
import random
import time
from array import array
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from modeltel._internal.config import Settings
from modeltel._internal.export.local import Losses, service_of
from modeltel.formats.sdk_json import read_fields
from modeltel.store.files import append_line
from modeltel.store.layout import SUMMARIES_FILE, SUMMARY_SCHEMA_VERSION

RESERVOIR_SIZE = 65_536

_ERROR = StatusCode.ERROR
_FIELDS = operator.attrgetter("_name", "_start_time", "_end_time", "_attributes._dict", "_status")
"""What :meth:`SpanStats.add` reads, straight from the SDK's fields (see otlp_json._FIELDS)."""


def _properties(span: ReadableSpan) -> tuple[Any, ...]:
    return span.name, span.start_time, span.end_time, span.attributes or {}, span.status


def _gather(
    fields: Iterator[tuple[Any, ...]],
) -> tuple[int | None, dict[str, list[float]], dict[str, int], dict[str, list[float]]]:
    """First start, durations and errors per name, numeric values per key, in span order."""
    durations: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    values: dict[str, list[float]] = {}
    first = None
    for name, start, end, attributes, status in fields:
        start, end = start or 0, end or 0
        if first is None or start < first:
            first = start
        seconds = durations.get(name)
        if seconds is None:
            seconds = durations[name] = []
            errors[name] = 0
        seconds.append((end - start) / 1e9)
        if status.status_code is _ERROR:
            errors[name] += 1
        for key, value in attributes.items():
            kind = type(value)
            if kind is float or kind is int:
                numbers = values.get(key)
                if numbers is None:
                    numbers = values[key] = []
                numbers.append(value)
    return first, durations, errors, values


class _NameStats:
    __slots__ = ("count", "errors", "max", "min", "reservoir", "total")

    def __init__(self) -> None:
        self.count = 0
        self.errors = 0
        self.total = 0.0
        self.min = float("inf")
        self.max = float("-inf")
        self.reservoir = array("d")

    def add_many(self, seconds: list[float], errors: int, rng: random.Random) -> None:
        """What :meth:`add` gives for each of ``seconds`` in order, with the arithmetic in builtins."""
        seen = self.count
        self.count += len(seconds)
        self.errors += errors
        self.total = sum(seconds, self.total)
        self.min = min(self.min, min(seconds))
        self.max = max(self.max, max(seconds))
        room = max(RESERVOIR_SIZE - len(self.reservoir), 0)
        self.reservoir.extend(seconds[:room])
        for index in range(room, len(seconds)):  # Algorithm R: one draw per value past the reservoir
            slot = rng.randrange(seen + index + 1)
            if slot < RESERVOIR_SIZE:
                self.reservoir[slot] = seconds[index]

    def fields(self) -> dict[str, float]:
        """The fields of :class:`~modeltel.store.schemas.DurationStats`, in its order."""
        ordered = sorted(self.reservoir)
        return {
            "count": self.count,
            "errors": self.errors,
            "total_s": self.total,
            "mean_s": self.total / self.count,
            "min_s": self.min,
            "p50_s": percentile(ordered, 50),
            "p95_s": percentile(ordered, 95),
            "max_s": self.max,
        }


class _Numeric:
    __slots__ = ("count", "max", "min", "sum")

    def __init__(self) -> None:
        self.count = 0
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")

    def add_many(self, values: list[float]) -> None:
        """What :meth:`add` gives for each finite one of ``values``; the others are skipped."""
        try:
            total = sum(values, self.sum)
        except OverflowError:  # an int too large for a float
            total = math.inf
        if not math.isfinite(total):  # a NaN or an infinity among them (or an overflowing sum)
            values = [value for value in values if _finite(value)]
            if not values:
                return
            total = sum(values, self.sum)
        self.count += len(values)
        self.sum = total
        self.min = min(self.min, min(values))
        self.max = max(self.max, max(values))

    def fields(self) -> dict[str, float]:
        """The fields of :class:`~modeltel.store.schemas.NumericStats`, in its order; an int
        minimum or maximum as the float the model makes of it."""
        return {
            "count": self.count,
            "sum": self.sum,
            "mean": self.sum / self.count,
            "min": float(self.min),
            "max": float(self.max),
        }


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


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
        """Fold a batch in: gather per name and per key, then fold each list with builtins.

        Runs on the export thread, which shares the GIL with the application: the per-span work is
        a few list appends (bench/overhead.py); sums, minima and maxima run over whole lists.
        """
        batch = spans if isinstance(spans, Sequence) else list(spans)
        first, durations, errors, values = read_fields(batch, _FIELDS, _properties, _gather)
        if first is not None and (self.first_start is None or first < self.first_start):
            self.first_start = first
        for name, seconds in durations.items():
            stats = self.by_name.get(name)
            if stats is None:
                stats = self.by_name[name] = _NameStats()
            stats.add_many(seconds, errors[name], self._rng)
            self.errors += errors[name]
        for key, numbers in values.items():
            acc = self.numeric.get(key) or _Numeric()
            acc.add_many(numbers)
            if acc.count:  # a key whose values were all NaN or infinite has no stats
                self.numeric[key] = acc

    @property
    def span_count(self) -> int:
        return sum(s.count for s in self.by_name.values())

    def process_summary(
        self, *, service: str, run_id: str, pid: int, started_ns: int, ended_ns: int, dropped: int = 0
    ) -> dict[str, Any]:
        """The ``RunSummary`` fields, in its order, of what this process exported from
        ``started_ns`` to ``ended_ns``."""
        start = datetime.fromtimestamp(started_ns / 1e9, UTC)
        end = datetime.fromtimestamp(ended_ns / 1e9, UTC)
        return self.run_summary(
            kind="process",
            service=service,
            run_id=run_id,
            pid=pid,
            start=start,
            end=end,
            duration_s=(end - start).total_seconds(),
            status="error" if self.errors else "ok",
            dropped=dropped,
        )

    def run_summary(
        self,
        *,
        kind: str,
        service: str,
        run_id: str,
        pid: int,
        start: datetime,
        end: datetime,
        duration_s: float,
        status: str,
        job_name: str | None = None,
        trace_id: str | None = None,
        span_id: str | None = None,
        dropped: int = 0,
        calibration: dict[str, Any] | None = None,
        quality: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The ``RunSummary`` fields, in its order, with these stats: one place for the process's
        line and the jobs' (jobs.py), so neither can drift from the model alone."""
        return {
            "schema_version": SUMMARY_SCHEMA_VERSION,
            "kind": kind,
            "service": service,
            "run_id": run_id,
            "pid": pid,
            "job_name": job_name,
            "trace_id": trace_id,
            "span_id": span_id,
            "start": _timestamp(start),
            "end": _timestamp(end),
            "duration_s": duration_s,
            "status": status,
            "span_count": self.span_count,
            "dropped_spans": dropped,
            "by_name": {name: s.fields() for name, s in sorted(self.by_name.items())},
            "numeric": {key: n.fields() for key, n in sorted(self.numeric.items())},
            "calibration": calibration,
            "quality": quality,
        }


def _timestamp(moment: datetime) -> str:
    """A UTC time as pydantic writes one: ``Z``, microseconds only when there are any."""
    return moment.isoformat().replace("+00:00", "Z")


def summary_line(fields: dict[str, Any]) -> str:
    """``fields`` as pydantic's JSON: compact, UTF-8, and an infinite or NaN float as ``null``."""
    return json.dumps(_nulls(fields), ensure_ascii=False, separators=(",", ":"))


def _nulls(value: Any) -> Any:
    if type(value) is dict:
        return {key: _nulls(item) for key, item in value.items()}
    if type(value) is list:  # a calibration's trajectory
        return [_nulls(item) for item in value]
    if type(value) is float and not math.isfinite(value):
        return None
    return value


class ProcessSummary:
    """The process's ``RunSummary``: every batch of the local copy folded in, written at shutdown
    (skipped when nothing was traced). A forked child starts its own."""

    def __init__(self, settings: Settings, losses: Losses) -> None:
        self.settings = settings
        self.losses = losses
        self._service = settings.service_name
        self._start()
        os.register_at_fork(after_in_child=self._start)

    def _start(self) -> None:
        self.stats = SpanStats()
        self._started_ns = time.time_ns()
        self._pid = os.getpid()

    def add(self, spans: Sequence[ReadableSpan]) -> None:
        if self._service is None and spans:
            self._service = service_of(spans[0].resource)
        self.stats.add(spans)

    def close(self) -> None:
        if self.stats.span_count == 0:
            return
        summary = self.stats.process_summary(
            service=self._service or "unknown_service",
            run_id=self.settings.run_id,
            pid=self._pid,
            started_ns=self._started_ns,
            ended_ns=time.time_ns(),
            dropped=self.losses.dropped,
        )
        try:
            append_line(self.settings.data_dir, SUMMARIES_FILE, summary_line(summary))
        except OSError as exc:
            self.losses.record(f"{SUMMARIES_FILE} under {self.settings.data_dir}", 0, exc)
