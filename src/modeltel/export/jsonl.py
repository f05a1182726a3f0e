"""JSONL span and metric exporters: the only code that writes modeltel's files.

Layout (DESIGN §5): ``<data_dir>/{traces,metrics}/<YYYY-MM-DD>/<service>-<pid>-<unix_start>.jsonl``,
one OTLP/JSON request per line, plus ``<data_dir>/summaries.jsonl``. Each process writes its own
files, so processes never lock each other; a line is one ``write`` on an ``O_APPEND`` descriptor, so
a crash tears at most the last line. A forked child notices its new pid and opens its own file.

Both exporters are registered as ``jsonl`` under the SDK's exporter entry-point groups and can be
built with no arguments (they then read settings from the environment), which is how
``OTEL_TRACES_EXPORTER=jsonl opentelemetry-instrument ...`` finds them.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from modeltel.config import Settings, load_settings
from modeltel.store.files import ProcessFile, append_line
from modeltel.store.layout import SUMMARIES_FILE
from modeltel.export.otlp_json import encode_metrics, encode_spans
from modeltel.export.redact import Redactor
from modeltel.export.summary import SpanStats

if TYPE_CHECKING:
    from modeltel.export.jobs import JobSummaries

_logger = logging.getLogger(__name__)


def service_of(resource: Resource | None) -> str:
    """The ``service.name`` a resource carries (the SDK always sets one)."""
    if resource is None:
        return "unknown_service"
    return str(resource.attributes.get("service.name", "unknown_service"))


class _WriteErrors:
    """Warn once per distinct cause, count what was dropped: a full disk must not flood the log."""

    def __init__(self) -> None:
        self.dropped = 0
        self._seen: set[str] = set()

    def record(self, what: str, count: int, exc: OSError) -> None:
        self.drop(count, f"cannot write {what} ({exc})", key=f"{what}:{exc.errno}")

    def drop(self, count: int, reason: str, key: str | None = None) -> None:
        self.dropped += count
        key = key or reason
        if key not in self._seen:
            self._seen.add(key)
            _logger.warning("modeltel: %s; dropping data, the app runs on", reason)


class JsonlSpanExporter(SpanExporter):
    """Writes each exported batch as one ``ExportTraceServiceRequest`` line.

    Also keeps the per-name statistics of the process summary, on the export thread.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings if settings is not None else load_settings()
        self.file = ProcessFile(self.settings.data_dir, "traces")
        self.stats = SpanStats()
        self.errors = _WriteErrors()
        self.redactor = Redactor(self.settings.redact_keys)
        self._service: str | None = self.settings.service_name
        self.jobs: JobSummaries | None = None
        """Set by :meth:`JobSummaries.attach`: per-job summary lines (export/jobs.py)."""
        self._started_ns = time.time_ns()
        self._pid = os.getpid()
        self._shutdown = False
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        # Spans the parent exported belong to the parent's summary.
        self.stats = SpanStats()
        self.errors = _WriteErrors()
        self._started_ns = time.time_ns()
        self._pid = os.getpid()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            return SpanExportResult.FAILURE
        if not spans:
            return SpanExportResult.SUCCESS
        if self._service is None:
            self._service = service_of(spans[0].resource)
        try:
            self.file.write(encode_spans(self.redactor.spans(spans)), self._service)
        except OSError as exc:
            self.errors.record(f"trace file under {self.settings.data_dir}", len(spans), exc)
            return SpanExportResult.FAILURE
        finally:
            self.stats.add(spans)
            if self.jobs is not None:
                self.jobs.add(spans, self._service)
        return SpanExportResult.SUCCESS

    def count_dropped(self, count: int, reason: str) -> None:
        """Spans lost before they reached this exporter (a stalled writer); warned once."""
        self.errors.drop(count, reason)

    def write_summary(self) -> None:
        """Append this process's RunSummary to ``summaries.jsonl`` (skipped when nothing was traced)."""
        if self.stats.span_count == 0:
            return
        summary = self.stats.process_summary(
            service=self._service or "unknown_service",
            run_id=self.settings.run_id,
            pid=self._pid,
            started_ns=self._started_ns,
            dropped=self.errors.dropped,
        )
        try:
            append_line(self.settings.data_dir, SUMMARIES_FILE, summary.model_dump_json())
        except OSError as exc:
            self.errors.record(f"{SUMMARIES_FILE} under {self.settings.data_dir}", 0, exc)

    def shutdown(self) -> None:
        if self._shutdown:
            return
        self._shutdown = True
        self.write_summary()
        self.file.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class JsonlMetricExporter(MetricExporter):
    """Writes each collection as one ``ExportMetricsServiceRequest`` line.

    Cumulative temporality (the SDK default) so every line is complete on its own: the last line of
    a file is the process's final state, and a reader never has to add lines up.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__(preferred_temporality=None, preferred_aggregation=None)
        self.settings = settings if settings is not None else load_settings()
        self.file = ProcessFile(self.settings.data_dir, "metrics")
        self.errors = _WriteErrors()
        self._service: str | None = self.settings.service_name

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: object
    ) -> MetricExportResult:
        if not metrics_data.resource_metrics:
            return MetricExportResult.SUCCESS
        if self._service is None:
            self._service = service_of(metrics_data.resource_metrics[0].resource)
        try:
            self.file.write(encode_metrics(metrics_data), self._service)
        except OSError as exc:
            self.errors.record(f"metric file under {self.settings.data_dir}", 1, exc)
            return MetricExportResult.FAILURE
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: object) -> None:
        self.file.close()
