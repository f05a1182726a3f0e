"""Progress records of open jobs, so a calibration open for hours is visible before it ends.

:class:`JobProgress` is a span processor. When a ``*.job`` span opens it writes
``<data_dir>/running/<pid>-<span_id>.json``; when an iteration or run inside it ends
(``calibration.iteration``, ``simulation.run``, ``inference.predict``) it counts it and, at most
once per :attr:`JobProgress.interval` per job, replaces that file with the new counts; when the job
span ends the file is removed. ``modeltel show --running`` reads these files
(:mod:`modeltel.read.running`); a file whose process is gone is shown as stale.

Cost on the application thread: span starts that are not jobs cost one dict lookup; span ends
cost one truth test while no job is open, else one or two dict lookups and a clock read; at most
once per second per job a new record is handed to :class:`RecordWriter`, whose thread writes it
(a small file replaced by rename). The application thread never touches the disk, so a disk that
stops answering (an NFS server gone) costs it nothing: only the latest record of each job waits,
and the exit waits for them at most :data:`EXIT_WAIT_S`. Nothing is kept per span, only per open
job. Steps run in other processes (a multiprocessing pool's workers) are not counted here; their
own process sees no open job.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from modeltel._internal import semconv as sc
from modeltel._internal.config import DEFAULT_REDACT_KEYS
from modeltel._internal.export.redact import Redactor
from modeltel._internal.process import start_ticks
from modeltel.store.files import remove_file, replace_file
from modeltel.store.layout import PROGRESS_SCHEMA_VERSION, RUNNING_DIR

_logger = logging.getLogger(__name__)

EXIT_WAIT_S = 1.0
"""The longest the exit waits for records still to be written (a job's removal, most often)."""


JOB_KINDS: Mapping[str, str] = {
    sc.SPAN_SIMULATION_JOB: "simulation",
    sc.SPAN_CALIBRATION_JOB: "calibration",
    sc.SPAN_INFERENCE_JOB: "inference",
}
"""Job span name → kind: the spans that get a progress record."""

STEP_KINDS: Mapping[str, str] = {
    sc.SPAN_SIMULATION_RUN: "simulation",
    sc.SPAN_CALIBRATION_ITERATION: "calibration",
    sc.SPAN_INFERENCE_PREDICT: "inference",
}
"""Step span name → the kind of job it advances (runs, iterations, predict batches)."""

_JOB_NAME = {
    "simulation": sc.SIMULATION_JOB_NAME,
    "calibration": sc.CALIBRATION_JOB_NAME,
    "inference": sc.INFERENCE_JOB_NAME,
}
_TOTAL = {"simulation": sc.SIMULATION_N_TASKS, "calibration": sc.CALIBRATION_MAX_ITERATIONS}


ProgressRecord = dict[str, Any]
"""A record as written: the fields of :class:`modeltel.store.schemas.ProgressRecord` (a test holds
the files to that schema), kept as a plain dict because its counts change on the app thread."""


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _loss(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


class _Job:
    """One open job: its record, a step counter and when it was last written."""

    __slots__ = (
        "best_loss",
        "closed",
        "counter",
        "done",
        "file",
        "kind",
        "maximize",
        "record",
        "writing",
        "written_at",
    )

    def __init__(self, record: ProgressRecord, file: str, now: float) -> None:
        self.record = record
        self.file = file
        self.kind = record["kind"]
        self.counter = itertools.count(1)
        self.done = 0
        self.best_loss: float | None = None
        self.maximize = record["direction"] == "maximize"
        self.written_at = now
        self.writing = threading.Lock()
        self.closed = False

    def improve(self, loss: float) -> None:
        best = self.best_loss
        if best is None or (loss > best if self.maximize else loss < best):
            self.best_loss = loss


class RecordWriter:
    """One thread that writes (or removes) the latest record of each job; started by the first.

    Records wait in a dict by file name, so a newer one replaces an older one not yet written and
    what waits is bounded by the open jobs, however long a write takes.
    """

    def __init__(self, data_dir: Path, on_error: Callable[[Exception], None]) -> None:
        self.data_dir = data_dir
        self._on_error = on_error
        self._pending: dict[str, bytes | None] = {}  # file -> record, None to remove it
        self._lock = threading.Condition()
        self._busy = False
        self._thread: threading.Thread | None = None
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        self._pending, self._lock, self._busy, self._thread = {}, threading.Condition(), False, None

    def put(self, file: str, data: bytes | None) -> None:
        with self._lock:
            self._pending[file] = data
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="modeltel-progress", daemon=True)
                self._thread.start()
            self._lock.notify()

    def drain(self, timeout_s: float) -> bool:
        """Wait until every handed record is written, at most ``timeout_s``; whether they were."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self._pending or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._pending:
                    self._lock.wait()
                batch, self._pending, self._busy = self._pending, {}, True
            for file, data in batch.items():
                try:
                    if data is None:
                        remove_file(self.data_dir, (RUNNING_DIR,), file)
                    else:
                        replace_file(self.data_dir, (RUNNING_DIR,), file, data)
                except Exception as exc:
                    self._on_error(exc)
            with self._lock:
                self._busy = False
                self._lock.notify_all()


class JobProgress(SpanProcessor):
    """Writes, refreshes and removes the progress record of each open job (module docstring)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        redactor: Redactor | None = None,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.data_dir = data_dir
        self.redactor = redactor if redactor is not None else Redactor(DEFAULT_REDACT_KEYS)
        self.interval = interval
        self._clock = clock
        self._jobs: dict[int, _Job] = {}
        self._host = socket.gethostname()
        self._pid = os.getpid()
        self._pid_start = start_ticks()
        self._warned = False
        self._writer = RecordWriter(data_dir, self._warn)
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        # The parent's open jobs are the parent's: a forked worker must not rewrite their records.
        self._jobs = {}
        self._pid = os.getpid()
        self._pid_start = start_ticks()

    # --- application thread -------------------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        kind = JOB_KINDS.get(span.name)
        if kind is None:
            return
        try:
            self._open(span, kind)
        except Exception as exc:  # never into the host
            self._warn(exc)

    def on_end(self, span: ReadableSpan) -> None:
        jobs = self._jobs
        if not jobs:
            return
        name = span.name
        kind = STEP_KINDS.get(name)
        try:
            if kind is not None:
                parent = span.parent
                job = jobs.get(parent.span_id) if parent is not None else None
                if job is None or job.kind != kind:
                    job = self._only_open(kind)
                    if job is None:
                        return
                done = next(job.counter)  # atomic in CPython: concurrent ends never lose a count
                if done > job.done:
                    job.done = done
                if kind == "calibration":
                    loss = _loss((span.attributes or {}).get(sc.CALIBRATION_BEST_LOSS))
                    if loss is not None:
                        job.improve(loss)
                now = self._clock()
                if now - job.written_at >= self.interval:
                    self._refresh(job, now)
            elif name in JOB_KINDS and span.context is not None:
                job = jobs.pop(span.context.span_id, None)
                if job is not None:
                    self._close(job)
        except Exception as exc:
            self._warn(exc)

    def shutdown(self) -> None:
        self._writer.drain(EXIT_WAIT_S)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._writer.drain(min(timeout_millis / 1e3, EXIT_WAIT_S))

    # --- helpers ------------------------------------------------------------------------------------
    def _only_open(self, kind: str) -> _Job | None:
        # A step that is not a direct child of its job (a run inside a phase span, a thread that
        # did not inherit the context) counts for the job of its kind only if one alone is open.
        found = [job for job in list(self._jobs.values()) if job.kind == kind]
        return found[0] if len(found) == 1 else None

    def _open(self, span: Span, kind: str) -> None:
        context = span.context
        attributes = self.redactor.attributes(span.attributes) or {}
        name = attributes.get(_JOB_NAME[kind])
        total_key = _TOTAL.get(kind)
        total = _count(attributes.get(total_key)) if total_key else None
        redacted = self.redactor.resource(span.resource)
        resource = redacted.attributes if redacted is not None else {}
        direction = attributes.get(sc.CALIBRATION_DIRECTION) if kind == "calibration" else None
        now = time.time()
        record: ProgressRecord = {
            "schema_version": PROGRESS_SCHEMA_VERSION,
            "kind": kind,
            "job_name": None if name is None else str(name),
            "service": str(resource.get("service.name", "unknown_service")),
            "trace_id": format(context.trace_id, "032x"),
            "span_id": format(context.span_id, "016x"),
            "pid": self._pid,
            "pid_start": self._pid_start,
            "host": self._host,
            "started": (span.start_time or time.time_ns()) / 1e9,
            "updated": now,
            "iterations": 0 if kind == "calibration" else None,
            "max_iterations": total if kind == "calibration" else None,
            "best_loss": None,
            "direction": None if direction is None else str(direction),
            "runs": 0 if kind == "simulation" else None,
            "n_tasks": total if kind == "simulation" else None,
            "batches": 0 if kind == "inference" else None,
        }
        job = _Job(record, f"{self._pid}-{record['span_id']}.json", self._clock())
        self._jobs[context.span_id] = job
        self._write(job)

    def _refresh(self, job: _Job, now: float) -> None:
        if not job.writing.acquire(blocking=False):
            return  # another thread is writing this record right now
        try:
            if job.closed:
                return
            job.written_at = now
            record = job.record
            kind = record["kind"]
            if kind == "calibration":
                record["iterations"] = job.done
                record["best_loss"] = job.best_loss
            elif kind == "simulation":
                record["runs"] = job.done
            else:
                record["batches"] = job.done
            record["updated"] = time.time()
            self._write(job)
        finally:
            job.writing.release()

    def _close(self, job: _Job) -> None:
        # Under the job's lock, so a refresh on another thread cannot bring the file back.
        with job.writing:
            job.closed = True
            self._writer.put(job.file, None)

    def _write(self, job: _Job) -> None:
        self._writer.put(job.file, json.dumps(job.record, allow_nan=False, separators=(",", ":")).encode())

    def _warn(self, exc: Exception) -> None:
        if not self._warned:
            self._warned = True
            _logger.warning("modeltel: cannot keep the running-job record (%s); the job runs on", exc)
