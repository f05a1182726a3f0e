"""Job summaries: one ``RunSummary`` line in ``summaries.jsonl`` per finished ``*.job`` span.

A job's span often ends at exit, so its line is a plain dict through :mod:`json` like the
process's (:mod:`modeltel._internal.export.summary` says why); a test holds it to the models.

Two halves, because the application's threads must not pay for statistics:

* :meth:`JobSummaries.on_start` (a span processor behind the redaction stage, application thread):
  when a ``simulation.job``, ``calibration.job`` or ``inference.job`` span opens, remember it; when
  a span opens whose parent belongs to an open job, mark it as the job's too. One dict lookup per
  span start, nothing at end.
* :meth:`JobSummaries.add` (a stage of the local copy, :mod:`modeltel._internal.export.local`, export
  thread): fold the marked spans of each batch, already redacted, into their job's
  :class:`~modeltel._internal.export.summary.SpanStats`; when the job span itself arrives, write its line.

Memory is bounded by the spans in flight (open or queued for export), never by the job's length:
a span's mark is dropped when it is exported, and :data:`MAX_TRACKED_SPANS` caps the rest.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode

from modeltel._internal import semconv as sc
from modeltel._internal.config import Settings
from modeltel._internal.export.local import service_of
from modeltel._internal.export.summary import SpanStats, summary_line
from modeltel.store.files import append_line
from modeltel.store.layout import SUMMARIES_FILE

_logger = logging.getLogger(__name__)

JOB_NAME_ATTRIBUTE = {
    "simulation": sc.SIMULATION_JOB_NAME,
    "calibration": sc.CALIBRATION_JOB_NAME,
    "inference": sc.INFERENCE_JOB_NAME,
}
"""Job kinds that get a summary line, and the attribute holding each one's name."""

MAX_TRACKED_SPANS = 100_000
"""Spans marked and not yet exported, across all open jobs; beyond it new spans are not counted."""

PHASE_SPANS = {
    "ask": sc.SPAN_CALIBRATION_ASK,
    "evaluate": sc.SPAN_CALIBRATION_EVALUATE,
    "tell": sc.SPAN_CALIBRATION_TELL,
}


class _Job:
    __slots__ = ("kind", "span_id", "stats")

    def __init__(self, span_id: int, kind: str) -> None:
        self.span_id = span_id
        self.kind = kind
        self.stats = SpanStats()


class JobSummaries(SpanProcessor):
    """Marks job spans and their descendants at start; summarises them at export (module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._owner: dict[int, tuple[_Job, ...]] = {}
        self._warned = False
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._owner.clear)  # the parent's open jobs are not ours

    # --- application thread -------------------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        owner = self._owner
        jobs: tuple[_Job, ...] | None = None
        if owner:
            parent = span.parent
            if parent is not None:
                jobs = owner.get(parent.span_id)
        name = span.name
        if name.endswith(sc.JOB_SPAN_SUFFIX):
            kind = name[: -len(sc.JOB_SPAN_SUFFIX)]
            if kind in JOB_NAME_ATTRIBUTE:
                job = _Job(span.context.span_id, kind)
                jobs = (*jobs, job) if jobs else (job,)
        if jobs is not None and len(owner) < MAX_TRACKED_SPANS:
            owner[span.context.span_id] = jobs

    def on_end(self, span: ReadableSpan) -> None:
        return None

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    # --- export thread ------------------------------------------------------------------------------
    def add(self, spans: Sequence[ReadableSpan]) -> None:
        """Fold an exported batch into the open jobs; write the summary of each job that ended."""
        owner = self._owner
        if not owner:
            return
        batches: dict[_Job, list[ReadableSpan]] = {}
        finished: list[tuple[_Job, ReadableSpan]] = []
        for span in spans:
            span_id = span.context.span_id if span.context is not None else 0
            jobs = owner.pop(span_id, None)
            if jobs is None:
                continue
            for job in jobs:
                batch = batches.get(job)
                if batch is None:
                    batch = batches[job] = []
                batch.append(span)
            if jobs[-1].span_id == span_id:
                finished.append((jobs[-1], span))
        for job, batch in batches.items():
            job.stats.add(batch)
        for job, span in finished:
            self._forget(job)
            self._write(job_summary(job.kind, span, job.stats, self.settings, self._service(span)))

    def close(self) -> None:
        return None

    def _service(self, span: ReadableSpan) -> str:
        return self.settings.service_name or service_of(span.resource)

    def _forget(self, job: _Job) -> None:
        # Marks of the job's spans that never reached export (dropped by a full queue, or still
        # open after the job ended) go with the job.
        for span_id, jobs in list(self._owner.items()):
            if job in jobs:
                self._owner.pop(span_id, None)

    def _write(self, summary: dict[str, Any]) -> None:
        try:
            append_line(self.settings.data_dir, SUMMARIES_FILE, summary_line(summary))
        except OSError as exc:
            with self._lock:
                warned, self._warned = self._warned, True
            if not warned:
                _logger.warning("modeltel: cannot write %s (%s); job summaries are lost", SUMMARIES_FILE, exc)


def _floats(attributes: Mapping[str, Any], key: str) -> tuple[Any, ...]:
    value = attributes.get(key)
    return tuple(value) if isinstance(value, tuple | list) else ()


def _real(value: object) -> float | None:
    """A number as a model's ``float`` field holds it (an int becomes a float), else None (an int
    past the float range too, which the model refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def _whole(value: object) -> int | None:
    """A number as a model's ``int`` field holds it (an integral float becomes an int), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, float) and value.is_integer() else None


def calibration_summary(attributes: Mapping[str, Any], stats: SpanStats) -> dict[str, Any]:
    """The ``CalibrationSummary`` fields, in its order: best loss, trajectory and time per phase,
    from the job span's attributes and its spans."""
    iterations = _floats(attributes, sc.CALIBRATION_TRAJECTORY_ITERATION)
    losses = _floats(attributes, sc.CALIBRATION_TRAJECTORY_BEST_LOSS)
    points = ((_whole(i), _real(b)) for i, b in zip(iterations, losses, strict=False))
    return {
        "direction": "maximize" if attributes.get(sc.CALIBRATION_DIRECTION) == "maximize" else "minimize",
        "iterations": _whole(attributes.get(sc.CALIBRATION_ITERATIONS)) or 0,
        "best_loss": _real(attributes.get(sc.CALIBRATION_BEST_LOSS)),
        "iterations_to_best": _whole(attributes.get(sc.CALIBRATION_ITERATIONS_TO_BEST)),
        "trajectory": [
            {"iteration": i, "best_loss": b} for i, b in points if i is not None and b is not None
        ],
        "phase_seconds": {
            phase: stats.by_name[name].total for phase, name in PHASE_SPANS.items() if name in stats.by_name
        },
    }


def _shares(attributes: Mapping[str, Any], keys: str, values: str) -> dict[str, float]:
    pairs = zip(map(str, _floats(attributes, keys)), map(_real, _floats(attributes, values)), strict=False)
    return {key: value for key, value in pairs if value is not None}


def quality_snapshot(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The ``QualitySnapshot`` fields, in its order: an inference job's quality figures, from the
    attributes its span ended with."""
    return {
        "predictions": _whole(attributes.get(sc.INFERENCE_BATCH_SIZE)) or 0,
        "confidence_mean": _real(attributes.get(sc.INFERENCE_CONFIDENCE_MEAN)),
        "confidence_median": _real(attributes.get(sc.INFERENCE_CONFIDENCE_MEDIAN)),
        "confidence_p5": _real(attributes.get(sc.INFERENCE_CONFIDENCE_P5)),
        "confidence_p95": _real(attributes.get(sc.INFERENCE_CONFIDENCE_P95)),
        "confidence_std": _real(attributes.get(sc.INFERENCE_CONFIDENCE_STD)),
        "reject_rate": _real(attributes.get(sc.INFERENCE_REJECT_RATE)),
        "entropy_mean": _real(attributes.get(sc.INFERENCE_ENTROPY_MEAN)),
        "class_distribution": _shares(attributes, sc.INFERENCE_CLASS_NAMES, sc.INFERENCE_CLASS_FRACTIONS),
        "feature_missingness": _shares(attributes, sc.INFERENCE_MISSING_COLUMNS, sc.INFERENCE_MISSING_RATES),
    }


def job_summary(
    kind: str, span: ReadableSpan, stats: SpanStats, settings: Settings, service: str
) -> dict[str, Any]:
    """The ``RunSummary`` fields of one finished job span whose spans were folded into ``stats``."""
    attributes: Mapping[str, Any] = span.attributes or {}
    start_ns, end_ns = span.start_time or 0, span.end_time or 0
    context = span.context
    name = attributes.get(JOB_NAME_ATTRIBUTE[kind])
    return stats.run_summary(
        kind=kind,
        service=service,
        run_id=settings.run_id,
        pid=os.getpid(),
        job_name=None if name is None else str(name),
        trace_id=None if context is None else format(context.trace_id, "032x"),
        span_id=None if context is None else format(context.span_id, "016x"),
        start=datetime.fromtimestamp(start_ns / 1e9, UTC),
        end=datetime.fromtimestamp(end_ns / 1e9, UTC),
        duration_s=(end_ns - start_ns) / 1e9,
        status="error" if span.status.status_code is StatusCode.ERROR else "ok",
        calibration=calibration_summary(attributes, stats) if kind == "calibration" else None,
        quality=quality_snapshot(attributes) if kind == "inference" else None,
    )
