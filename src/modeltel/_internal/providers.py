"""Builds the SDK providers, processors and exporters from :class:`~modeltel._internal.config.Settings`.

Everything here is stock OpenTelemetry SDK wiring plus modeltel's write path, a row of stages with
one job each::

    span ends -> RedactionStage (once per span) -+-> batch processor -> exporter (OTLP, console, ...)
                                                 +-> back-pressure batches -> JSONL writer -> process
                                                 |   and job summaries (the local copy)
                                                 +-> job summaries' marks, progress records

and for metrics, per reader, redaction in front of each exporter. Log records take the spans' row
(``_logger_provider``, ``export/logs.py``): ``logging`` reaches them through the bridge of
``_internal/logs.py``, which adds no handler to the app's loggers; the row is built by the first
record, not by configure (most processes never log). The resource modeltel creates
is redacted when it is built.

It also makes sure data leaves the process on every way out: normal exit (atexit), SIGTERM
(a handler that flushes, then lets the default action run), and multiprocessing children, which
leave through ``os._exit`` and so skip atexit (a multiprocessing finalizer flushes them, registered
when the app imports multiprocessing, so that configure does not import it). Every
way out is bounded in time: each part of a flush or a shutdown runs on a helper thread and is
waited for at most its own bound, so a disk or a receiver that stopped answering costs that bound,
and what it kept is counted and reported in one line on stderr.
"""

from __future__ import annotations

import atexit
import logging
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from functools import partial
from types import ModuleType
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider, sampling
from opentelemetry.sdk.trace.export import (
    ConsoleSpanExporter,
    SpanExporter,
)

from modeltel._internal import deferred, on_import, semconv, sigterm
from modeltel._internal.config import Settings, Signal
from modeltel._internal.detectors import cluster_resource
from modeltel._internal.export.guard import (
    GRACE_S,
    BoundedMetricExporter,
    CountingBatchSpanProcessor,
    DropCounter,
    GuardedSpanExporter,
)
from modeltel._internal.export.jobs import JobSummaries
from modeltel._internal.export.jsonl import JsonlMetricWriter, JsonlWriter
from modeltel._internal.export.local import LocalSpanExporter, Losses
from modeltel._internal.export.processor import (
    EXIT_TIMEOUT_S,
    PRESSURE_TIMEOUT_S,
    BackPressureSpanProcessor,
    batch_sizes,
)
from modeltel._internal.export.progress import JobProgress
from modeltel._internal.export.redact import RedactingMetricExporter, RedactionStage, Redactor
from modeltel._internal.export.summary import ProcessSummary

if TYPE_CHECKING:
    from modeltel._internal.logs import LazyLoggerProvider

_logger = logging.getLogger(__name__)


def build_sampler(settings: Settings) -> sampling.Sampler:
    """The sampler OTEL_TRACES_SAMPLER / _ARG name, built from the validated settings."""
    ratio = 1.0 if settings.sampler_arg is None else settings.sampler_arg
    base: sampling.Sampler = {
        "always_on": sampling.ALWAYS_ON,
        "always_off": sampling.ALWAYS_OFF,
        "traceidratio": sampling.TraceIdRatioBased(ratio),
        "parentbased_always_on": sampling.ALWAYS_ON,
        "parentbased_always_off": sampling.ALWAYS_OFF,
        "parentbased_traceidratio": sampling.TraceIdRatioBased(ratio),
    }[settings.sampler]
    return sampling.ParentBased(base) if settings.sampler.startswith("parentbased_") else base


def build_resource(settings: Settings, redactor: Redactor | None = None) -> Resource:
    """SDK resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) plus modeltel's run id, redacted.

    Under a batch scheduler or a parallel launcher the cluster detectors add the job, array task,
    node and rank (modeltel/_internal/detectors.py); OTEL_RESOURCE_ATTRIBUTES still overrides any of them.
    """
    attributes: dict[str, str] = {semconv.RESOURCE_RUN_ID: settings.run_id}
    if settings.service_name is not None:
        attributes["service.name"] = settings.service_name
    redactor = redactor if redactor is not None else Redactor(settings.redact_keys)
    resource = redactor.resource(cluster_resource().merge(Resource.create(attributes)))
    assert resource is not None
    return resource


def _entry_point(signal_name: Signal, name: str) -> Any:
    from importlib.metadata import entry_points  # 20-50 ms, for an exporter few configurations name

    group = f"opentelemetry_{signal_name}_exporter"
    (found,) = entry_points(group=group, name=name)
    return found.load()()


def _otlp_kwargs(settings: Settings, signal_name: Signal) -> dict[str, Any]:
    otlp = settings.otlp[signal_name]
    kwargs: dict[str, Any] = {"headers": otlp.header_values(), "timeout": otlp.timeout_s}
    if otlp.endpoint is not None:
        kwargs["endpoint"] = otlp.endpoint
    return kwargs


def span_exporter(settings: Settings, name: str) -> SpanExporter:
    """One trace exporter other than ``jsonl`` by its OTEL_TRACES_EXPORTER name, as the SDK makes it
    (no redaction, no guard: :func:`span_processor` puts it behind both)."""
    if name == "console":
        return ConsoleSpanExporter()
    if name == "otlp":
        if settings.otlp["traces"].protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[assignment]
                OTLPSpanExporter,
            )
        return OTLPSpanExporter(**_otlp_kwargs(settings, "traces"))
    exporter: SpanExporter = _entry_point("traces", name)
    return exporter


def metric_reader(settings: Settings, name: str, redactor: Redactor, dropped: DropCounter) -> MetricReader:
    """One metric reader by its OTEL_METRICS_EXPORTER name: push exporters get a periodic reader,
    with redaction in front and the points they fail to export counted in ``dropped``. A pull
    reader (an entry point that is a MetricReader) is served as is."""
    exporter: MetricExporter | MetricReader
    if name == "jsonl":
        exporter = JsonlMetricWriter(settings)
    elif name == "console":
        exporter = ConsoleMetricExporter()
    elif name == "otlp":
        if settings.otlp["metrics"].protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        else:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # type: ignore[assignment]
                OTLPMetricExporter,
            )
        exporter = OTLPMetricExporter(**_otlp_kwargs(settings, "metrics"))
    else:
        exporter = _entry_point("metrics", name)
    if isinstance(exporter, MetricReader):
        return exporter
    bounded = BoundedMetricExporter(exporter, name, _metric_deadline_s(settings, name), dropped)
    return PeriodicExportingMetricReader(
        RedactingMetricExporter(bounded, redactor),
        export_interval_millis=settings.metric_export_interval_ms,
        export_timeout_millis=settings.metric_export_timeout_ms,
    )


def _metric_deadline_s(settings: Settings, name: str) -> float:
    """How long one call of a metric exporter may take: the local file's stall bound, OTLP's own
    timeout plus :data:`~modeltel._internal.export.guard.GRACE_S`, else OTEL_METRIC_EXPORT_TIMEOUT."""
    if name == "jsonl":
        return PRESSURE_TIMEOUT_S
    if name == "otlp":
        return settings.otlp["metrics"].timeout_s + GRACE_S
    return max(settings.metric_export_timeout_ms / 1e3, GRACE_S)


def _span_deadline_s(settings: Settings, name: str) -> float:
    """How long one call of a trace exporter may take: OTLP's own timeout plus
    :data:`~modeltel._internal.export.guard.GRACE_S`, else OTEL_BSP_EXPORT_TIMEOUT."""
    if name == "otlp":
        return settings.otlp["traces"].timeout_s + GRACE_S
    return max(settings.bsp_export_timeout_ms / 1e3, GRACE_S)


def local_copy(settings: Settings, jobs: JobSummaries) -> BackPressureSpanProcessor:
    """The ``jsonl`` exporter's processor: back-pressure instead of drops (export/processor.py), in
    front of the local copy's stages: the JSONL writer, then the process and job summaries."""
    losses = Losses()
    exporter = LocalSpanExporter(
        settings, JsonlWriter(settings, losses), [ProcessSummary(settings, losses), jobs], losses
    )
    return BackPressureSpanProcessor(exporter, **batch_sizes(settings))


def span_processor(settings: Settings, name: str, dropped: DropCounter) -> SpanProcessor:
    """The processor for one trace exporter other than ``jsonl``: the SDK's batch processor, with
    its losses counted and each export held to a deadline (export/guard.py). It goes behind the
    redaction stage."""
    guarded = GuardedSpanExporter(
        span_exporter(settings, name), name, dropped, _span_deadline_s(settings, name)
    )
    return CountingBatchSpanProcessor(
        guarded, name, dropped, **batch_sizes(settings), export_timeout_millis=settings.bsp_export_timeout_ms
    )


class Handle:
    """What :func:`configure` set up: flush it, shut it down. Safe to call from any thread, twice."""

    enabled = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tracer_provider: TracerProvider | None = None
        self.meter_provider: MeterProvider | None = None
        self.logger_provider: LazyLoggerProvider | None = None
        """The logger provider modeltel set, which builds the SDK's at the first record (None when
        logs are off or the app had one)."""
        self.log_stage: Any = None
        """modeltel's log record processors behind their redaction stage (``export/logs.py``), on
        its own provider (once the first record built it) or on the app's."""
        self.span_processors: list[SpanProcessor] = []
        self.progress: JobProgress | None = None
        """The open jobs' progress records, written on their own thread: flushed with the rest."""
        self.metric_readers: list[MetricReader] = []
        self.dropped: DropCounter | None = None
        self.owns_providers = False
        self._lock = threading.Lock()
        self._shut = False

    @property
    def jsonl_span_exporter(self) -> LocalSpanExporter | None:
        """The local copy's exporter, when JSONL is on (tests and the CLI read its file path)."""
        for processor in self.span_processors:
            exporter = getattr(processor, "span_exporter", None)
            if isinstance(exporter, LocalSpanExporter):
                return exporter
        return None

    @property
    def local_copies(self) -> list[Any]:
        """The processors that write the JSONL trace and log files (a pool worker flushes them
        after each task)."""
        spans = [p for p in self.span_processors if isinstance(p, BackPressureSpanProcessor)]
        logs = self.logger_provider is not None or self.log_stage is not None
        return [*spans, *([_LogFiles(self)] if logs else [])]

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export everything finished so far, within ``timeout_millis`` in all (the parts flush in
        parallel). True only if every part reported success in time."""
        parts: list[Callable[[], object]] = [
            *(partial(processor.force_flush, timeout_millis) for processor in self.span_processors),
            *(partial(reader.force_flush, timeout_millis) for reader in self.metric_readers),
        ]
        if self.log_stage is not None:
            parts.append(partial(self.log_stage.force_flush, timeout_millis))
        if self.progress is not None:
            parts.append(partial(self.progress.force_flush, timeout_millis))
        with sigterm.deferred():
            results = _within(timeout_millis / 1e3, parts)
        return all(result is True for result in results)

    def shutdown(self) -> None:
        """Flush and stop what modeltel added; a later call does nothing.

        A SIGTERM arriving meanwhile waits for the end (``sigterm.deferred``): its handler would
        find everything already shut and end the process before the flush finished.
        """
        with self._lock:
            if self._shut:
                return
            self._shut = True
        with sigterm.deferred():
            self._shutdown_parts()

    def _shutdown_parts(self) -> None:
        """Two rounds of parts in parallel, each part waited for at most its own bound.

        First the network exporters' processors, so that what they drop is counted before the
        metrics' last collection; then the local copy, the metrics and the logs together (the
        local copy feeds no metric). The bounds are backstops: each part bounds its own waits.
        Before both, the guarded exporters stop retrying (export/guard.py): a receiver that
        refuses connections costs one attempt per batch, not its backoff up to the timeout.
        """
        if self.logger_provider is not None:
            self.logger_provider.close()  # a record from now on builds no pipeline to shut down
        if self.dropped is not None:
            self.dropped.begin_exit()
        local = [p for p in self.span_processors if isinstance(p, BackPressureSpanProcessor)]
        remote = [p for p in self.span_processors if p not in local]
        remote_s = max((getattr(p, "shutdown_timeout_s", 30.0) for p in remote), default=0.0)
        _within(remote_s + self._deadline_s() + 2.0, [p.shutdown for p in remote])
        metric_s = self.settings.metric_export_timeout_ms / 1e3
        rest: list[Callable[[], object]] = [p.shutdown for p in local]
        if self.meter_provider is not None:
            provider = self.meter_provider
            if self.owns_providers:
                rest.append(lambda: provider.shutdown(timeout_millis=metric_s * 1e3))
            else:
                rest += [partial(provider.remove_metric_reader, reader) for reader in self.metric_readers]
        if self.log_stage is not None:
            rest.append(self.log_stage.shutdown)
        if self.progress is not None:
            rest.append(self.progress.shutdown)
        _within(max(EXIT_TIMEOUT_S, metric_s) + 2.0, rest)
        self._report()

    def _deadline_s(self) -> float:
        return max(
            (_span_deadline_s(self.settings, name) for name in self.settings.traces_exporters), default=0.0
        )

    def _report(self) -> None:
        """One line on stderr (a warning: the log's last-resort handler) naming everything lost,
        per signal: ``modeltel: spans lost: jsonl 6 (...), otlp 50 (export_failed 50); metric
        points lost: otlp 7 (export_failed 7)``."""
        by_signal: dict[str, list[str]] = {}
        exporter = self.jsonl_span_exporter
        if exporter is not None and exporter.errors.dropped:
            by_signal["spans"] = [
                f"jsonl {exporter.errors.dropped} (not written under {self.settings.data_dir})"
            ]
        by_exporter: dict[tuple[str, str], dict[str, int]] = {}
        for (signal_name, name, reason), count in sorted(
            (self.dropped.totals if self.dropped else {}).items()
        ):
            by_exporter.setdefault((signal_name, name), {})[reason] = count
        for (signal_name, name), reasons in sorted(by_exporter.items(), key=_signal_first):
            detail = ", ".join(f"{reason} {count}" for reason, count in reasons.items())
            by_signal.setdefault(signal_name, []).append(f"{name} {sum(reasons.values())} ({detail})")
        log_copies = self.log_stage.local_copies if self.log_stage is not None else ()
        if lost := sum(copy.exporter.errors.dropped for copy in log_copies):
            where = f"jsonl {lost} (not written under {self.settings.data_dir})"
            by_signal.setdefault("log records", []).insert(0, where)
        if by_signal:
            lines = (f"{signal_name} lost: {', '.join(parts)}" for signal_name, parts in by_signal.items())
            _logger.warning("modeltel: %s", "; ".join(lines))


class _LogFiles:
    """The log file's processors, as a pool worker's flush after each task sees them: read at each
    flush, since the first record, which builds them, may come after the worker listed them."""

    def __init__(self, handle: Handle) -> None:
        self._handle = handle

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        stage = self._handle.log_stage
        copies = stage.local_copies if stage is not None else ()
        return all([copy.force_flush(timeout_millis) for copy in copies])


def _signal_first(item: tuple[tuple[str, str], object]) -> tuple[int, str]:
    """Spans, then metric points, then log records (any other signal last), then by exporter."""
    (signal_name, name), _ = item
    order = ("spans", "metric points", "log records")
    return (order.index(signal_name) if signal_name in order else len(order), name)


class NoopHandle(Handle):
    """Returned when telemetry is disabled: no provider, thread, exporter or file."""

    enabled = False

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    def shutdown(self) -> None:
        return None


def _within(seconds: float, actions: Sequence[Callable[[], object]]) -> list[object]:
    """Run ``actions`` in parallel on helper threads; wait at most ``seconds`` for them in all.

    Returns each one's result, ``None`` for one that raised (logged, never raised: these run at
    exit and in signal handlers) or had not returned in time (it runs on, on a daemon thread, and
    the process may exit under it).
    """
    results: list[object] = [None] * len(actions)

    def run(index: int, action: Callable[[], object]) -> None:
        try:
            results[index] = action()
        except Exception:
            _logger.exception("modeltel: error while flushing or shutting down telemetry")

    threads = [
        threading.Thread(target=run, args=(i, action), name="modeltel-exit", daemon=True)
        for i, action in enumerate(actions)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + seconds
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0.0))
    return [
        result if not thread.is_alive() else None for result, thread in zip(results, threads, strict=True)
    ]


def log_exporter(settings: Settings, name: str) -> Any:
    """One logs exporter other than ``jsonl`` by its OTEL_LOGS_EXPORTER name, as the SDK makes it."""
    if name == "console":
        from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter

        return ConsoleLogRecordExporter()
    if name == "otlp":
        if settings.otlp["logs"].protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        else:
            from opentelemetry.exporter.otlp.proto.http._log_exporter import (  # type: ignore[assignment]
                OTLPLogExporter,
            )
        return OTLPLogExporter(**_otlp_kwargs(settings, "logs"))
    return _entry_point("logs", name)


def _log_deadline_s(settings: Settings, name: str) -> float:
    if name == "otlp":
        return settings.otlp["logs"].timeout_s + GRACE_S
    return max(settings.bsp_export_timeout_ms / 1e3, GRACE_S)


def _logger_provider(settings: Settings, resource: Resource, redactor: Redactor, handle: Handle) -> None:
    """Logs, when an exporter is configured: the bridge from ``logging`` (``_internal/logs.py``) to
    a provider of modeltel's whose first record builds the SDK's, behind the redaction stage and its
    processors (:func:`_build_logs`); or, when the app installed an SDK ``LoggerProvider`` already,
    the log file only, on that provider, at once (its own handler feeds it; a bridge would double
    every record)."""
    from opentelemetry import _logs

    existing = _logs.get_logger_provider()
    sdk_logs = sys.modules.get("opentelemetry.sdk._logs")  # an SDK provider exists only once imported
    if sdk_logs is not None and isinstance(existing, sdk_logs.LoggerProvider):
        if settings.jsonl:
            existing.add_log_record_processor(_log_stage(settings, redactor, ("jsonl",), handle))
        return

    from modeltel._internal import logs as bridge

    dropped = handle.dropped
    assert dropped is not None
    provider = bridge.LazyLoggerProvider(partial(_build_logs, settings, resource, redactor, handle))
    handle.logger_provider = provider
    _logs.set_logger_provider(provider)
    bridge.install(
        provider,
        settings.log_level,
        settings.log_warnings,
        on_failure=partial(dropped.lost, "log records", "bridge", "not translatable", 1),
    )
    # From the start of the exit on, records go to the app's handlers only, as without
    # modeltel: the processors are shutting down (the SDK's would log each record it ignores).
    dropped.on_exit(bridge.uninstall)


def _build_logs(settings: Settings, resource: Resource, redactor: Redactor, handle: Handle) -> Any:
    """The SDK ``LoggerProvider`` modeltel's provider delegates to, built by the first record."""
    from opentelemetry.sdk._logs import LoggerProvider

    provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_log_record_processor(_log_stage(settings, redactor, settings.logs_exporters, handle))
    return provider


def _log_stage(settings: Settings, redactor: Redactor, names: Sequence[str], handle: Handle) -> Any:
    """The redaction stage and one processor per exporter in ``names``; kept on ``handle``."""
    from modeltel._internal.export import logs

    dropped = handle.dropped
    assert dropped is not None
    processors = [
        logs.local_copy(settings)
        if name == "jsonl"
        else logs.network_processor(
            settings, log_exporter(settings, name), name, dropped, _log_deadline_s(settings, name)
        )
        for name in names
    ]
    handle.log_stage = logs.LogRedactionStage(redactor, processors)
    return handle.log_stage


def build(settings: Settings) -> Handle:
    """Create providers (or add JSONL to the ones already installed) and register exit hooks."""
    handle = Handle(settings)
    redactor = Redactor(settings.redact_keys)
    resource = build_resource(settings, redactor)
    dropped = handle.dropped = DropCounter()
    # Metrics first: the trace processors count what they drop on the meter provider.
    existing_meter = metrics.get_meter_provider()
    if isinstance(existing_meter, MeterProvider):
        handle.meter_provider = existing_meter
        readers = [metric_reader(settings, "jsonl", redactor, dropped)] if settings.jsonl else []
        for reader in readers:
            existing_meter.add_metric_reader(reader)
    else:
        handle.owns_providers = True
        readers = [metric_reader(settings, n, redactor, dropped) for n in settings.metrics_exporters]
        handle.meter_provider = MeterProvider(
            resource=resource, metric_readers=readers, shutdown_on_exit=False
        )
        metrics.set_meter_provider(handle.meter_provider)
    handle.metric_readers = readers
    dropped.count_on(handle.meter_provider)

    existing_tracer = trace.get_tracer_provider()
    if isinstance(existing_tracer, TracerProvider):
        handle.tracer_provider = existing_tracer
        names: tuple[str, ...] = ("jsonl",) if settings.jsonl else ()
    else:
        handle.tracer_provider = TracerProvider(
            resource=resource, sampler=build_sampler(settings), shutdown_on_exit=False
        )
        names = settings.traces_exporters
        trace.set_tracer_provider(handle.tracer_provider)
    processors: list[SpanProcessor] = []
    behind: list[SpanProcessor] = []
    for name in names:
        if name == "jsonl":
            jobs = JobSummaries(settings)  # marks each job's spans at start; summarises them at export
            processors.append(local_copy(settings, jobs))
            handle.progress = JobProgress(settings.data_dir, redactor=redactor)
            behind += [jobs, handle.progress]
        else:
            processors.append(span_processor(settings, name, dropped))
    handle.span_processors = processors
    if processors:
        handle.tracer_provider.add_span_processor(RedactionStage(redactor, [*processors, *behind]))

    if settings.logs_exporters:
        _logger_provider(settings, resource, redactor, handle)
    _register_exit_hooks(handle)
    _install_propagation(handle)
    return handle


def _install_propagation(handle: Handle) -> None:
    """Context into threads, processes and subprocesses (modeltel/_internal/propagation.py); never fatal."""
    from modeltel._internal.propagation import install

    try:
        install(handle)
    except Exception:
        _logger.exception("modeltel: could not install context propagation; workers start own traces")


def _register_exit_hooks(handle: Handle) -> None:
    atexit.register(sigterm.at_exit(handle.shutdown))
    # multiprocessing's fork children end in os._exit, which skips atexit; its finalizers do run.
    on_import.when_imported("multiprocessing.util", partial(_finalize_fork_children, weakref.ref(handle)))
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, sigterm.handler(handle.shutdown))


def _finalize_fork_children(handle: weakref.ref[Handle], util: ModuleType) -> None:
    # As weak as multiprocessing's own registry: a handle dropped before the import is not revived.
    alive = handle()
    if alive is not None:
        util.register_after_fork(alive, _finalize_in_child)


def _finalize_in_child(handle: Handle) -> None:
    import multiprocessing.util  # the child of a multiprocessing fork: imported already

    multiprocessing.util.Finalize(handle, handle.shutdown, exitpriority=-100)


_configure_lock = threading.Lock()
_current: Handle | None = None


def configure(**overrides: Any) -> Handle:
    """Set up telemetry once per process from the environment plus ``overrides``; thread-safe.

    A second call returns the first call's handle unchanged. Bad variables produce one warning each
    and their defaults are used; a failure to build anything leaves the app running untraced.
    """
    global _current
    with _configure_lock:
        if _current is not None:
            return _current
        # In a worker deferred.arm() set up, the parent's settings under the explicit ones.
        handle = _current = _create({**deferred.disarm(), **overrides})
    deferred.run_callbacks()
    return handle


def _create(overrides: dict[str, Any]) -> Handle:
    from modeltel._internal.config import load_settings

    settings = load_settings(**overrides)
    if not settings.enabled:
        return NoopHandle(settings)
    try:
        return build(settings)
    except Exception:
        _logger.exception("modeltel: could not set up telemetry; the app runs on without it")
        return NoopHandle(settings)


def current() -> Handle | None:
    """The handle :func:`configure` returned in this process, if it was called."""
    return _current
