"""What ``show`` and ``stats`` report, computed from a :class:`~modeltel.read.aggregate.GroupTable`.

The CLI only formats these rows; library users get the same numbers without it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modeltel._internal import semconv
from modeltel.formats.status import STATUS_ERROR
from modeltel.read.aggregate import DURATION, Distribution, GroupTable
from modeltel.read.runs import file_contains
from modeltel.read.scan import Query

if TYPE_CHECKING:
    from modeltel.formats.otlp import Span
    from modeltel.read.query import OnBadLine
    from modeltel.store.schemas import RunSummary

PERCENTILES = (10, 25, 50, 75, 90)
"""The spread ``stats`` reports for tokens, cost and duration."""

TOKENS_IN = semconv.GEN_AI_USAGE_INPUT_TOKENS
TOKENS_OUT = semconv.GEN_AI_USAGE_OUTPUT_TOKENS
TTFT = semconv.INFERENCE_TTFT
TTFT_SEMCONV = semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK
"""GenAI semantic conventions' name for time to first token; used where a span lacks :data:`TTFT`."""
COST = semconv.INFERENCE_COST_USD
THROUGHPUT = semconv.INFERENCE_THROUGHPUT
STATS_KEYS = (TOKENS_IN, TOKENS_OUT, TTFT, TTFT_SEMCONV, COST, THROUGHPUT)
"""Numeric span attributes ``stats`` reads."""

BY_ALIASES: dict[str, tuple[str, ...]] = {
    "name": (),
    "model": semconv.STATS_MODEL_KEYS,
    "engine": semconv.STATS_ENGINE_KEYS,
}


def group_keys(by: str) -> tuple[str, ...]:
    """Attribute keys for ``--by``: ``name`` (none: group by span name), ``model``, ``engine``, or a key."""
    return BY_ALIASES.get(by, (by,))


def stats_query(
    by: str, *, since_ns: int | None = None, until_ns: int | None = None, run_id: str | None = None
) -> Query:
    """The scan behind ``stats --by by``.

    Grouped by an attribute, a ``*.job`` span is left out: it carries the model of the calls it
    holds but is no call itself, and its duration (all of them) would skew the latency spread.
    ``--by name`` keeps every span, job spans included, each under its own name.
    """
    keys = group_keys(by)
    return Query(
        group_keys=keys,
        skip_suffixes=(semconv.JOB_SPAN_SUFFIX,) if keys else (),
        numeric_keys=STATS_KEYS,
        since_ns=since_ns,
        until_ns=until_ns,
        run_id=run_id,
        fallbacks=((TTFT, TTFT_SEMCONV),),
        rate=(THROUGHPUT, TOKENS_OUT),
    )


def format_seconds(seconds: float) -> str:
    """A duration for people: ``812 ns``, ``3.2 µs``, ``6.7 ms``, ``1.23 s``, ``4.5 min``, ``2.1 h``."""
    if math.isnan(seconds):
        return "-"
    size = abs(seconds)
    if size == 0:
        return "0 s"
    for scale, unit, below in _UNITS:
        if size * scale < below:
            text = f"{seconds * scale:.3g}"
            if abs(float(text)) < below:  # 999.7 µs prints as 1e+03 µs: it is 1 ms
                return f"{text} {unit}"
    return f"{seconds / 3600:.3g} h"


_UNITS = (
    (1e9, "ns", 1000.0),
    (1e6, "µs", 1000.0),
    (1e3, "ms", 1000.0),
    (1.0, "s", 60.0),
    (1 / 60, "min", 60.0),
)
"""Each unit: its scale from seconds and the size (in it) from which the next unit is used."""


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class NameRow:
    """One line of ``show``: the spans of one name."""

    name: str
    count: int
    errors: int
    total_s: float
    mean_s: float
    p50_s: float
    p95_s: float
    max_s: float
    exact: bool
    """False when the percentiles come from the bounded histogram (within 1%)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def name_rows(table: GroupTable) -> list[NameRow]:
    rows = []
    for name, group in table.items():
        duration = group.metric(DURATION)
        p50, p95 = duration.percentiles((50, 95))
        rows.append(
            NameRow(
                name=name,
                count=group.count,
                errors=group.errors,
                total_s=duration.total,
                mean_s=duration.mean,
                p50_s=p50,
                p95_s=p95,
                max_s=duration.maximum,
                exact=duration.exact,
            )
        )
    return rows


@dataclass(frozen=True, slots=True)
class Spread:
    """Count, sum, mean, p50, p95 and the :data:`PERCENTILES` of one metric in one group."""

    count: int
    sum: float | None
    mean: float | None
    p50: float | None
    p95: float | None
    percentiles: dict[str, float | None] = field(default_factory=dict)

    @classmethod
    def of(cls, distribution: Distribution | None) -> Spread:
        if distribution is None or not distribution.count:
            return cls(0, None, None, None, None, {f"p{q}": None for q in PERCENTILES})
        values = distribution.percentiles((50, 95, *PERCENTILES))
        return cls(
            count=distribution.count,
            sum=_finite(distribution.total),
            mean=_finite(distribution.mean),
            p50=_finite(values[0]),
            p95=_finite(values[1]),
            percentiles={f"p{q}": _finite(v) for q, v in zip(PERCENTILES, values[2:], strict=True)},
        )


@dataclass(frozen=True, slots=True)
class StatsRow:
    """One line of ``stats``: calls of one model / engine / name / attribute value."""

    group: str
    calls: int
    errors: int
    latency_s: Spread
    tokens_in: Spread
    tokens_out: Spread
    ttft_s: Spread
    cost_usd: Spread
    tokens_per_s: Spread

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def flat(self) -> dict[str, Any]:
        """One flat record (CSV): ``latency_s_p50``, ``tokens_in_sum``, ``cost_usd_p90``, ..."""
        out: dict[str, Any] = {"group": self.group, "calls": self.calls, "errors": self.errors}
        for metric in ("latency_s", "tokens_in", "tokens_out", "ttft_s", "cost_usd", "tokens_per_s"):
            spread: Spread = getattr(self, metric)
            out[f"{metric}_count"] = spread.count
            out[f"{metric}_sum"] = spread.sum
            out[f"{metric}_mean"] = spread.mean
            for name, value in spread.percentiles.items():
                out[f"{metric}_{name}"] = value
            out[f"{metric}_p95"] = spread.p95
        return out


def stats_rows(table: GroupTable) -> list[StatsRow]:
    rows = []
    for label, group in table.items():
        metrics = group.metrics
        rows.append(
            StatsRow(
                group=label,
                calls=group.count,
                errors=group.errors,
                latency_s=Spread.of(metrics.get(DURATION)),
                tokens_in=Spread.of(metrics.get(TOKENS_IN)),
                tokens_out=Spread.of(metrics.get(TOKENS_OUT)),
                ttft_s=Spread.of(metrics.get(TTFT)),
                cost_usd=Spread.of(metrics.get(COST)),
                tokens_per_s=Spread.of(metrics.get(THROUGHPUT)),
            )
        )
    return rows


@dataclass(slots=True)
class JobSpans:
    """What a job's spans add up to in every process of its run: the job span and its descendants.

    A job's line in ``summaries.jsonl`` is written by the process that ran the job span, from the
    spans that process saw; the runs a pool worker or an MPI rank ran are in that process's own
    file. This is the same job read back from all of them.
    """

    spans: int = 0
    processes: set[str] = field(default_factory=set)
    """``service.instance.id`` of each process that wrote some of the job's spans."""
    by_name: dict[str, list[int]] = field(default_factory=dict)
    """Span name → ``[count, errors]``."""
    sums: dict[str, list[float]] = field(default_factory=dict)
    """``"<span name> <attribute>"`` → ``[sum, count]`` of its numeric (and 0/1 boolean) values."""

    def count(self, name: str) -> int:
        return self.by_name.get(name, [0, 0])[0]

    def errors(self, name: str) -> int:
        return self.by_name.get(name, [0, 0])[1]

    def mean(self, name: str, key: str) -> float | None:
        total, count = self.sums.get(f"{name} {key}", [0.0, 0])
        return total / count if count else None

    def total(self, name: str, key: str) -> float:
        return self.sums.get(f"{name} {key}", [0.0, 0])[0]


def job_spans(
    files: Sequence[Path],
    jobs: Sequence[RunSummary],
    *,
    run_id: str | None = None,
    on_bad_line: OnBadLine | None = None,
) -> dict[str, JobSpans]:
    """Job span id → :class:`JobSpans` for each of ``jobs``, from every file of ``files``.

    One pass: only lines holding one of the jobs' trace ids are decoded, and a span belongs to a
    job when it is the job span or below it (a job may share its trace with others).
    """
    from modeltel.read.query import iter_batches

    wanted = {job.trace_id.lower(): job for job in jobs if job.trace_id and job.span_id}
    if not wanted:
        return {}
    needles = [trace.encode() for trace in wanted]
    spans: dict[str, dict[str, Span]] = {trace: {} for trace in wanted}
    for path in files:
        if not file_contains(path, needles):
            continue
        for batch in iter_batches([path], run_id=run_id, on_bad_line=on_bad_line):
            for span in batch.spans:
                found = spans.get(span.trace_id)
                if found is not None:
                    found[span.span_id] = span
    result = {}
    for trace, job in wanted.items():
        children: dict[str, list[Span]] = {}
        for span in spans[trace].values():
            children.setdefault(span.parent_span_id, []).append(span)
        totals = JobSpans()
        root = spans[trace].get(job.span_id or "")
        todo = [root] if root is not None else []
        while todo:
            span = todo.pop()
            _add_job_span(totals, span)
            todo.extend(children.get(span.span_id, ()))
        result[job.span_id or ""] = totals
    return result


def _add_job_span(totals: JobSpans, span: Span) -> None:
    totals.spans += 1
    instance = span.resource.attributes.get("service.instance.id")
    totals.processes.add(instance if isinstance(instance, str) else "")
    counts = totals.by_name.setdefault(span.name, [0, 0])
    counts[0] += 1
    counts[1] += span.status_code == STATUS_ERROR
    for key, value in span.attributes.items():
        if isinstance(value, bool | int | float):
            entry = totals.sums.setdefault(f"{span.name} {key}", [0.0, 0])
            entry[0] += float(value)
            entry[1] += 1
