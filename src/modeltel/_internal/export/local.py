"""The data dir's copy of each batch: one row of stages, each with one job, all fed the same spans.

The batch arrives redacted (:mod:`modeltel._internal.export.redact`). The writer encodes it and appends
it to the process's trace file; then each stage behind it folds it in (the process summary, the job
summaries). A stage runs even when the write failed: the summary still counts the spans, and says
how many never reached the file.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from typing import Protocol

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from modeltel._internal.config import Settings
from modeltel.store.files import ProcessFile

_logger = logging.getLogger(__name__)


def service_of(resource: Resource | None) -> str:
    """The ``service.name`` a resource carries (the SDK always sets one)."""
    if resource is None:
        return "unknown_service"
    return str(resource.attributes.get("service.name", "unknown_service"))


class Losses:
    """What the local copy lost, counted; each distinct cause warned once, so a full disk cannot
    flood the log. The process summary reports the count (``dropped_spans``), and so does the
    one-line report at exit.

    Counted from several threads at once (the writer, span calls that find the queue full, the
    shutdown), hence the lock: ``+=`` on an attribute is not atomic.
    """

    def __init__(self) -> None:
        self.dropped = 0
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        self.dropped = 0  # the parent's losses are in the parent's summary
        self._lock = threading.Lock()

    def record(self, what: str, count: int, exc: OSError) -> None:
        self.drop(count, f"cannot write {what} ({exc})", key=f"{what}:{exc.errno}")

    def drop(self, count: int, reason: str, key: str | None = None) -> None:
        key = key or reason
        with self._lock:
            self.dropped += count
            first = key not in self._seen
            self._seen.add(key)
        if first:
            _logger.warning("modeltel: %s; dropping data, the app runs on", reason)


class SpanWriter(Protocol):
    """Encodes and writes a batch; says whether it reached the file."""

    @property
    def file(self) -> ProcessFile: ...

    def write(self, spans: Sequence[ReadableSpan]) -> bool: ...

    def close(self) -> None: ...


class SpanStage(Protocol):
    """Folds in each batch after the writer; ``close`` at shutdown, after the last batch."""

    def add(self, spans: Sequence[ReadableSpan]) -> None: ...

    def close(self) -> None: ...


class LocalSpanExporter(SpanExporter):
    """Hands each batch to ``writer``, then to each of ``stages`` in order: the same objects to all."""

    def __init__(
        self, settings: Settings, writer: SpanWriter, stages: Sequence[SpanStage], losses: Losses
    ) -> None:
        self.settings = settings
        self.writer = writer
        self.stages = tuple(stages)
        self.errors = losses
        self._shutdown = False

    @property
    def file(self) -> ProcessFile:
        """The process's trace file (the demo and tests read its path)."""
        return self.writer.file

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            return SpanExportResult.FAILURE
        if not spans:
            return SpanExportResult.SUCCESS
        try:
            written = self.writer.write(spans)
        finally:
            for stage in self.stages:
                stage.add(spans)
        return SpanExportResult.SUCCESS if written else SpanExportResult.FAILURE

    def count_dropped(self, count: int, reason: str) -> None:
        """Spans lost before they reached this exporter (a stalled writer); warned once."""
        self.errors.drop(count, reason)

    def shutdown(self) -> None:
        if self._shutdown:
            return
        self._shutdown = True
        for stage in self.stages:
            stage.close()
        self.writer.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
