"""The log records' write path, the twin of the spans': redaction once, then the local copy and the
network exporters, each with the guarantees its span counterpart has.

::

    record emitted -> LogRedactionStage (once per record) -+-> BackPressureLogProcessor -> log file
                                                           +-> CountingBatchLogRecordProcessor
                                                               -> GuardedLogExporter -> OTLP, ...

The local copy batches with back-pressure instead of drops (:class:`BackPressureLogProcessor`, the
same :class:`~modeltel._internal.export.processor.BackPressureBatcher` as the trace file, with the
``OTEL_BSP_*`` sizes), and writes one ``ExportLogsServiceRequest`` per line to the process's own
file through the store. A network exporter gets the SDK's batch processor, with what its full
queue turns away, what fails and what shutdown leaves queued counted (``log records`` in the
one-line report at exit), and each call held to a deadline (export/guard.py).

This module imports the logs SDK; modeltel imports it only when a logs exporter is configured
and the first record is emitted (``_internal/logs.py``: ``LazyLoggerProvider``).
:class:`JsonlLogExporter` is the ``jsonl`` entry point of ``opentelemetry_logs_exporter``: built
with no arguments (by the stock SDK configurator) it reads the settings from the environment and
redacts each batch itself, as :class:`~modeltel._internal.export.jsonl.JsonlSpanExporter` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk._logs import LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)

from modeltel._internal.config import Settings, load_settings
from modeltel._internal.export.guard import CountingBatch, DropCounter, GuardedExport
from modeltel._internal.export.jsonl import JsonlWriter
from modeltel._internal.export.local import Losses
from modeltel._internal.export.processor import BackPressureBatcher, batch_sizes
from modeltel._internal.export.redact import RedactionRow, Redactor


class LocalLogExporter(LogRecordExporter):
    """Writes each batch (it arrives redacted) to the process's log file; counts what it loses."""

    def __init__(self, settings: Settings, losses: Losses | None = None) -> None:
        self.settings = settings
        self.errors = losses if losses is not None else Losses()
        self.writer = JsonlWriter(settings, self.errors, "logs")
        self._shutdown = False

    @property
    def file(self) -> Any:
        """The process's log file (tests read its path)."""
        return self.writer.file

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        if self._shutdown:
            return LogRecordExportResult.FAILURE
        if not batch:
            return LogRecordExportResult.SUCCESS
        written = self.writer.write(batch)
        return LogRecordExportResult.SUCCESS if written else LogRecordExportResult.FAILURE

    def count_dropped(self, count: int, reason: str) -> None:
        """Records lost before they reached this exporter (a stalled writer); warned once."""
        self.errors.drop(count, reason)

    def shutdown(self) -> None:
        if not self._shutdown:
            self._shutdown = True
            self.writer.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class JsonlLogExporter(LocalLogExporter):
    """The log file for a pipeline modeltel did not build: redact each batch, then write it."""

    def __init__(self, settings: Settings | None = None) -> None:
        settings = settings if settings is not None else load_settings()
        super().__init__(settings)
        self.redactor = Redactor(settings.redact_keys)

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        return super().export(self.redactor.log_records(batch))


class BackPressureLogProcessor(BackPressureBatcher[ReadWriteLogRecord, LocalLogExporter], LogRecordProcessor):
    """The log file's processor: every record, as it is emitted, into a back-pressure batcher.

    The record itself is queued, not a copy: the stage in front hands it over after redaction and
    nothing changes it afterwards, so the SDK's per-record copy and re-wrapping
    (``BatchLogRecordProcessor.on_emit``) are saved on the app thread."""

    thread_name = "modeltel-jsonl-logs-writer"

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        self._put(log_record)


class GuardedLogExporter(GuardedExport, LogRecordExporter):
    """A log record exporter behind :class:`~modeltel._internal.export.guard.GuardedExport`:
    failures counted as ``log records``, every call bounded."""

    def __init__(
        self, inner: LogRecordExporter, name: str, dropped: DropCounter, timeout_s: float | None = None
    ) -> None:
        super().__init__(inner, name, dropped, timeout_s, "log records")

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        return self._export(batch, LogRecordExportResult.SUCCESS, LogRecordExportResult.FAILURE)  # type: ignore[no-any-return]


class CountingBatchLogRecordProcessor(CountingBatch, BatchLogRecordProcessor):
    """The SDK's batch log record processor, counting what its full queue turns away and what its
    shutdown leaves queued, as :class:`~modeltel._internal.export.guard.CountingBatchSpanProcessor`
    does for spans (and for the same reason: the SDK warns per record it drops)."""

    def __init__(self, exporter: LogRecordExporter, name: str, dropped: DropCounter, **kwargs: float) -> None:
        super().__init__(exporter, **kwargs)  # type: ignore[arg-type]
        self._count_on(name, dropped, "log records", kwargs.get("export_timeout_millis") or 30_000)

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        if self._admit():
            super().on_emit(log_record)


class LogRedactionStage(RedactionRow, LogRecordProcessor):
    """Heads modeltel's log record processors: each record is redacted once and every processor
    behind gets that same object (a record that cannot be redacted is dropped, never passed on)."""

    def __init__(self, redactor: Redactor, processors: Sequence[LogRecordProcessor]) -> None:
        super().__init__(redactor, processors, "log record")
        self._on_emits = tuple(p.on_emit for p in self.processors)

    @property
    def local_copies(self) -> tuple[BackPressureLogProcessor, ...]:
        """The processors that write the log file (a pool worker flushes them after each task)."""
        return tuple(p for p in self.processors if isinstance(p, BackPressureLogProcessor))

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        redacted = self._redacted(self.redactor.log_record, log_record)
        if redacted is not None:
            for on_emit in self._on_emits:
                on_emit(redacted)


def local_copy(settings: Settings) -> BackPressureLogProcessor:
    """The ``jsonl`` logs exporter's processor: back-pressure in front of the log file."""
    return BackPressureLogProcessor(LocalLogExporter(settings), **batch_sizes(settings))


def network_processor(
    settings: Settings, exporter: LogRecordExporter, name: str, dropped: DropCounter, deadline_s: float
) -> CountingBatchLogRecordProcessor:
    """The processor for one logs exporter other than ``jsonl``: the SDK's batch processor with its
    losses counted and each export held to ``deadline_s``."""
    return CountingBatchLogRecordProcessor(
        GuardedLogExporter(exporter, name, dropped, deadline_s),
        name,
        dropped,
        **batch_sizes(settings),
        export_timeout_millis=settings.bsp_export_timeout_ms,
    )
