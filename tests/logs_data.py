"""Log data for the logs reader's tests: Python ``logging`` through the SDK's own logs pipeline.

Records come from real ``logging`` calls (a logger per module, ``logger.exception`` in a failing
span) handled by the SDK's ``LoggingHandler`` and encoded by the OTLP exporter's own encoder, then
written as modeltel's files hold them: one OTLP/JSON ``ExportLogsServiceRequest`` per line, enums
as integers, ids as hex. The spans beside them are written by modeltel's span encoder. A filter on
the handler stamps each record with a chosen time, so time-window tests know every timestamp.
"""

from __future__ import annotations

import base64
import json
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry import context as otel_context
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, Status, StatusCode

from modeltel.formats.sdk_json import encode_spans

START_S = 1_800_000_000
"""2027-01-15T08:00:00Z: the first record of :func:`logs_dir` is at ``START_S + 1``."""
_IDS = ("traceId", "spanId")


def hex_ids(node: Any) -> Any:
    """protobuf JSON's base64 ids as OTLP/JSON's hex."""
    if isinstance(node, dict):
        return {
            k: base64.b64decode(v).hex() if k in _IDS and isinstance(v, str) else hex_ids(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [hex_ids(v) for v in node]
    return node


def logs_line(request: ExportLogsServiceRequest) -> str:
    """One line as modeltel's files hold it (compact, enums as integers, hex ids)."""
    document = MessageToDict(request, use_integers_for_enums=True)
    return json.dumps(hex_ids(document), separators=(",", ":"))


class _Clock(logging.Filter):
    """Stamps each record with the next of ``times`` (seconds since the epoch)."""

    def __init__(self) -> None:
        super().__init__()
        self.at: float | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if self.at is not None:
            record.created = self.at
            record.msecs = (self.at % 1) * 1000
        return True


@dataclass
class Process:
    """One process's logging and tracing, as a program under modeltel would have them."""

    service: str
    pid: int
    run_id: str
    logs: InMemoryLogRecordExporter = field(default_factory=InMemoryLogRecordExporter)
    spans: InMemorySpanExporter = field(default_factory=InMemorySpanExporter)
    clock: _Clock = field(default_factory=_Clock)

    def __post_init__(self) -> None:
        resource = Resource.create(
            {"service.name": self.service, "process.pid": self.pid, "modeltel.run.id": self.run_id}
        )
        self.logger_provider = LoggerProvider(resource=resource)
        self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self.logs))
        self.tracer_provider = TracerProvider(resource=resource)
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.tracer = self.tracer_provider.get_tracer("modeltel")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            self.handler = LoggingHandler(level=logging.DEBUG, logger_provider=self.logger_provider)
        self.handler.addFilter(self.clock)

    @contextmanager
    def logger(self, name: str) -> Iterator[logging.Logger]:
        logger = logging.getLogger(f"{name}")
        logger.handlers, logger.propagate, level = [self.handler], False, logger.level
        logger.setLevel(logging.DEBUG)
        try:
            yield logger
        finally:
            logger.handlers, logger.propagate = [], True
            logger.setLevel(level)

    def at(self, seconds: float) -> _Clock:
        self.clock.at = START_S + seconds
        return self.clock

    def request(self) -> ExportLogsServiceRequest:
        return encode_logs(list(self.logs.get_finished_logs()))

    def write(self, data_dir: Path) -> None:
        """Its spans and records as ``<signal>/<day>/<service>-<pid>-<start>.jsonl`` (a line each)."""
        name = f"{self.service}-{self.pid}-{START_S}.jsonl"
        for signal, line in (
            ("traces", encode_spans(list(self.spans.get_finished_spans()))),
            ("logs", logs_line(self.request())),
        ):
            day = data_dir / signal / "2027-01-15"
            day.mkdir(parents=True, exist_ok=True)
            with open(day / name, "a", encoding="utf-8") as out:
                out.write(line + "\n")


@dataclass
class LogsDir:
    """What :func:`logs_dir` wrote: the data dir and the traces its records were logged in."""

    path: Path
    fit_trace: str
    fit_span: str
    score_trace: str


def logs_dir(folder: Path) -> LogsDir:
    """Two processes of two runs, each with a trace and records in and out of it.

    ``trainer`` (pid 101, run ``run-a``), trace ``simulation.job`` > ``fit``:
      +1 s INFO app.data "loaded 3 rows" (job span), +2 s DEBUG app.data "cache miss seed=7" (fit),
      +3 s ERROR app.fit "fit failed" with a ZeroDivisionError (fit), +4 s WARNING app.data
      "outside any span".
    ``scorer`` (pid 202, run ``run-b``), trace ``inference.predict``:
      +1.5 s INFO app.score "scored 10 rows", +5 s CRITICAL app.score "disk full",
      +6 s INFO app.score, a map body ``{"event": "done", "rows": 10}``.
    """
    trainer = Process("trainer", 101, "run-a")
    with _root(), trainer.logger("app.data") as data, trainer.logger("app.fit") as fit_log:
        with trainer.tracer.start_as_current_span("simulation.job") as job:
            trainer.at(1)
            data.info("loaded %d rows", 3)
            with trainer.tracer.start_as_current_span("fit") as fit:
                trainer.at(2)
                data.debug("cache miss seed=%s", 7)
                trainer.at(3)
                try:
                    1 / 0  # noqa: B018
                except ZeroDivisionError:
                    fit_log.exception("fit failed")
                fit.set_status(Status(StatusCode.ERROR, "division by zero"))
        trainer.at(4)
        data.warning("outside any span")
    scorer = Process("scorer", 202, "run-b")
    with (
        _root(),
        scorer.logger("app.score") as score,
        scorer.tracer.start_as_current_span("inference.predict") as predict,
    ):
        scorer.at(1.5)
        score.info("scored %d rows", 10)
        scorer.at(5)
        score.critical("disk full")
        scorer.at(6)
        score.info({"event": "done", "rows": 10})
    trainer.write(folder)
    scorer.write(folder)
    return LogsDir(
        folder,
        f"{job.get_span_context().trace_id:032x}",
        f"{fit.get_span_context().span_id:016x}",
        f"{predict.get_span_context().trace_id:032x}",
    )


@contextmanager
def _root() -> Iterator[None]:
    """An empty context: the fixture's spans are roots and "outside any span" is outside any, even
    when a test before left a span current in this thread."""
    token = otel_context.attach(otel_context.Context())
    try:
        yield
    finally:
        otel_context.detach(token)


def sdk_log_request() -> tuple[ExportLogsServiceRequest, SpanContext]:
    """Three records from ``logging`` (INFO and ERROR with an exception in a span, WARNING outside)
    as the SDK's encoder makes them, and the span's context."""
    process = Process("logs-svc", 4242, "run-x")
    with _root(), process.logger("app.data") as data, process.logger("app.fit") as fit:
        with process.tracer.start_as_current_span("work") as span:
            data.info("loaded %d rows", 3)
            try:
                1 / 0  # noqa: B018
            except ZeroDivisionError:
                fit.exception("fit failed")
        data.warning("outside any span")
    return process.request(), span.get_span_context()
