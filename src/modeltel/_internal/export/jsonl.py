"""JSONL: the writers that put spans, log records and metrics into the data dir, and the SDK entry
points.

The writers encode and write, nothing else: one OTLP/JSON request per line in the process's own
file (docs/data-format.md has the layout), so processes never lock each other; a line is one
``write`` on an ``O_APPEND`` descriptor, so a crash tears at most the last line. A forked child
notices its new pid and opens its own file.

:class:`JsonlSpanExporter` and :class:`JsonlMetricExporter` (and, in ``export/logs.py``, which imports
the logs SDK only when logs are on, ``JsonlLogExporter``) are registered as ``jsonl`` under the
SDK's exporter entry-point groups and can be built with no arguments (they then read settings from
the environment), which is how ``OTEL_TRACES_EXPORTER=jsonl opentelemetry-instrument ...`` finds
them. Built that way nothing stands in front of them, so they redact each batch first, with the
same :class:`~modeltel._internal.export.redact.Redactor` modeltel's own pipeline runs once per span.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from modeltel._internal.config import Settings, load_settings
from modeltel._internal.export.local import LocalSpanExporter, Losses, service_of
from modeltel._internal.export.redact import RedactingMetricExporter, Redactor
from modeltel._internal.export.summary import ProcessSummary
from modeltel.formats.sdk_json import encode_logs, encode_metrics, encode_spans
from modeltel.store.files import ProcessFile
from modeltel.store.layout import Signal

_ENCODERS: dict[Signal, tuple[Callable[[Sequence[Any]], str], str]] = {
    "traces": (encode_spans, "trace file"),
    "logs": (encode_logs, "log file"),
}


class JsonlWriter:
    """Appends each batch of spans (or, for ``signal="logs"``, of log records) to the process's file
    of that signal as one ``ExportTraceServiceRequest`` (``ExportLogsServiceRequest``)."""

    def __init__(self, settings: Settings, losses: Losses, signal: Signal = "traces") -> None:
        self.settings = settings
        self.file = ProcessFile(settings.data_dir, signal)
        self._losses = losses
        self._service = settings.service_name
        self._encode, self._what = _ENCODERS[signal]

    def write(self, items: Sequence[Any]) -> bool:
        if self._service is None:
            self._service = service_of(items[0].resource)
        try:
            self.file.write(self._encode(items), self._service)
        except OSError as exc:
            self._losses.record(f"{self._what} under {self.settings.data_dir}", len(items), exc)
            return False
        return True

    def close(self) -> None:
        self.file.close()


class JsonlSpanExporter(LocalSpanExporter):
    """The local copy for a pipeline modeltel did not build: redact, write, process summary."""

    def __init__(self, settings: Settings | None = None) -> None:
        settings = settings if settings is not None else load_settings()
        losses = Losses()
        super().__init__(settings, JsonlWriter(settings, losses), [ProcessSummary(settings, losses)], losses)
        self.redactor = Redactor(settings.redact_keys)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return super().export(self.redactor.spans(spans))


class JsonlMetricWriter(MetricExporter):
    """Writes each collection as one ``ExportMetricsServiceRequest`` line.

    Cumulative temporality (the SDK default) so every line is complete on its own: the last line of
    a file is the process's final state, and a reader never has to add lines up.
    """

    def __init__(self, settings: Settings) -> None:
        super().__init__(preferred_temporality=None, preferred_aggregation=None)
        self.settings = settings
        self.file = ProcessFile(settings.data_dir, "metrics")
        self.errors = Losses()
        self._service = settings.service_name

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


class JsonlMetricExporter(RedactingMetricExporter):
    """The metric file's exporter, redacting each collection first (the entry point, and modeltel's)."""

    def __init__(self, settings: Settings | None = None) -> None:
        settings = settings if settings is not None else load_settings()
        self.settings = settings
        self.writer = JsonlMetricWriter(settings)
        super().__init__(self.writer, Redactor(settings.redact_keys))

    @property
    def file(self) -> ProcessFile:
        return self.writer.file
