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

import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
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
from modeltel.export.otlp_json import encode_metrics, encode_spans
from modeltel.export.summary import SpanStats

if TYPE_CHECKING:
    from modeltel.export.jobs import JobSummaries

_logger = logging.getLogger(__name__)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
SUMMARIES_FILE = "summaries.jsonl"


def _file_safe(name: str) -> str:
    return _UNSAFE.sub("_", name).strip("._") or "unknown_service"


def service_of(resource: Resource | None) -> str:
    """The ``service.name`` a resource carries (the SDK always sets one)."""
    if resource is None:
        return "unknown_service"
    return str(resource.attributes.get("service.name", "unknown_service"))


def private_dir(path: Path) -> None:
    """Create ``path`` and any missing parents with mode 0700 (``mkdir -p`` gives parents 0777)."""
    if path.is_dir():
        return
    if path.parent != path:
        private_dir(path.parent)
    with contextlib.suppress(FileExistsError):  # another process made it first
        path.mkdir(mode=0o700)


def append_line(path: Path, line: str) -> None:
    """Append ``line`` + newline to ``path`` with one write, creating it 0600 (dirs 0700)."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        _write_all(fd, (line + "\n").encode("utf-8", "backslashreplace"))
    finally:
        os.close(fd)


def _write_line(fd: int, data: bytes) -> None:
    """``data`` and a newline in one ``writev``: one append, without copying a ~300 KiB batch
    (and holding it twice) to add one byte. A short write (full disk, signal) finishes with write."""
    written = os.writev(fd, (data, b"\n"))
    if written < len(data) + 1:
        _write_all(fd, (data + b"\n")[written:])


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class ProcessFile:
    """The append-only file of one signal for the current process, opened on first write.

    ``backslashreplace`` keeps lone surrogates (only possible inside JSON strings) as valid JSON
    escapes instead of failing the whole line.
    """

    def __init__(self, data_dir: Path, signal: str) -> None:
        self.data_dir = data_dir
        self.signal = signal
        self._fd: int | None = None
        self._pid = 0
        self.path: Path | None = None
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        # The parent's descriptor and lock state are not ours: a child writes its own file.
        self._lock = threading.Lock()
        if self._fd is not None:
            os.close(self._fd)
        self._fd = None
        self.path = None

    def _open(self, service: str) -> int:
        now = time.time()
        day = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")
        pid = os.getpid()
        directory = self.data_dir / self.signal / day
        private_dir(directory)
        path = directory / f"{_file_safe(service)}-{pid}-{int(now)}.jsonl"
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW
        self._fd = os.open(path, flags, 0o600)
        self._pid, self.path = pid, path
        return self._fd

    def write(self, line: str, service: str) -> None:
        data = line.encode("utf-8", "backslashreplace")
        with self._lock:
            fd = self._fd if self._fd is not None and self._pid == os.getpid() else self._open(service)
            _write_line(fd, data)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None


class _WriteErrors:
    """Warn once per distinct error, count what was dropped: a full disk must not flood the log."""

    def __init__(self) -> None:
        self.dropped = 0
        self._seen: set[str] = set()

    def record(self, what: str, count: int, exc: OSError) -> None:
        self.dropped += count
        key = f"{what}:{exc.errno}"
        if key not in self._seen:
            self._seen.add(key)
            _logger.warning("modeltel: cannot write %s (%s); dropping data, the app runs on", what, exc)


class JsonlSpanExporter(SpanExporter):
    """Writes each exported batch as one ``ExportTraceServiceRequest`` line.

    Also keeps the per-name statistics of the process summary, on the export thread.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings if settings is not None else load_settings()
        self.file = ProcessFile(self.settings.data_dir, "traces")
        self.stats = SpanStats()
        self.errors = _WriteErrors()
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
            self.file.write(encode_spans(spans), self._service)
        except OSError as exc:
            self.errors.record(f"trace file under {self.settings.data_dir}", len(spans), exc)
            return SpanExportResult.FAILURE
        finally:
            self.stats.add(spans)
            if self.jobs is not None:
                self.jobs.add(spans, self._service)
        return SpanExportResult.SUCCESS

    def write_summary(self) -> None:
        """Append this process's RunSummary to ``summaries.jsonl`` (skipped when nothing was traced)."""
        if self.stats.span_count == 0:
            return
        summary = self.stats.process_summary(
            service=self._service or "unknown_service",
            run_id=self.settings.run_id,
            pid=self._pid,
            started_ns=self._started_ns,
        )
        try:
            append_line(self.settings.data_dir / SUMMARIES_FILE, summary.model_dump_json())
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
