"""Where the domain layer gets its tracer and instruments: one :class:`Runtime` at a time.

The first domain call resolves the runtime: it runs
:func:`modeltel._internal.providers.configure` (idempotent)
so a program that never called ``configure()`` still gets telemetry from its environment, then takes
a tracer and a meter from the global OpenTelemetry API and creates every instrument once. When
telemetry is disabled the runtime is :data:`DISABLED` and every domain call returns the shared no-op.

:func:`install` swaps in another runtime (``modeltel.testing`` points the domain layer at its own
in-memory providers this way, repeatedly in one process, which the set-once global providers
cannot do) and returns the previous one for :func:`restore`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from opentelemetry import metrics, trace
from opentelemetry.metrics import Meter, MeterProvider, NoOpMeter
from opentelemetry.trace import NoOpTracer, Tracer, TracerProvider

from modeltel._internal import semconv as sc

if TYPE_CHECKING:
    from modeltel._internal.domains.hardware import GpuProbe
    from modeltel._internal.providers import Handle


class Instruments:
    """Every metric instrument of the domain layer, created once per meter."""

    __slots__ = (
        "cal_best_loss",
        "cal_iteration_duration",
        "cal_loss",
        "genai_duration",
        "genai_tokens",
        "genai_ttft",
        "inf_confidence",
        "inf_duration",
        "inf_entropy",
        "inf_predictions",
        "inf_rejects",
        "sim_cache_requests",
        "sim_run_duration",
    )

    def __init__(self, meter: Meter) -> None:
        seconds, one = sc.UNIT_SECONDS, sc.UNIT_ONE
        self.sim_run_duration = meter.create_histogram(
            sc.METRIC_SIMULATION_RUN_DURATION,
            unit=seconds,
            description="Duration of simulation runs.",
            explicit_bucket_boundaries_advisory=sc.DURATION_BUCKETS_S,
        )
        self.sim_cache_requests = meter.create_counter(
            sc.METRIC_SIMULATION_CACHE_REQUESTS,
            unit=sc.UNIT_REQUESTS,
            description="Simulation result cache lookups, by hit or miss.",
        )
        self.cal_iteration_duration = meter.create_histogram(
            sc.METRIC_CALIBRATION_ITERATION_DURATION,
            unit=seconds,
            description="Duration of calibration iterations (ask, evaluate, tell).",
            explicit_bucket_boundaries_advisory=sc.DURATION_BUCKETS_S,
        )
        self.cal_loss = meter.create_histogram(
            sc.METRIC_CALIBRATION_LOSS,
            unit=one,
            description="Losses told to calibration jobs.",
            explicit_bucket_boundaries_advisory=sc.LOSS_BUCKETS,
        )
        self.cal_best_loss = meter.create_gauge(
            sc.METRIC_CALIBRATION_BEST_LOSS, unit=one, description="Best loss so far of a calibration job."
        )
        self.inf_duration = meter.create_histogram(
            sc.METRIC_INFERENCE_DURATION,
            unit=seconds,
            description="Duration of batch predictions.",
            explicit_bucket_boundaries_advisory=sc.DURATION_BUCKETS_S,
        )
        self.inf_confidence = meter.create_histogram(
            sc.METRIC_INFERENCE_CONFIDENCE,
            unit=one,
            description="Confidence (top-class probability) of predictions.",
            explicit_bucket_boundaries_advisory=sc.CONFIDENCE_BUCKETS,
        )
        self.inf_entropy = meter.create_histogram(
            sc.METRIC_INFERENCE_ENTROPY,
            unit=one,
            description="Entropy of predicted class distributions, in nats.",
            explicit_bucket_boundaries_advisory=sc.ENTROPY_BUCKETS,
        )
        self.inf_rejects = meter.create_counter(
            sc.METRIC_INFERENCE_REJECTS, unit=sc.UNIT_PREDICTIONS, description="Rejected predictions."
        )
        self.inf_predictions = meter.create_counter(
            sc.METRIC_INFERENCE_PREDICTIONS, unit=sc.UNIT_PREDICTIONS, description="Predictions made."
        )
        self.genai_duration = meter.create_histogram(
            sc.GEN_AI_CLIENT_OPERATION_DURATION,
            unit=seconds,
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=sc.GEN_AI_DURATION_BUCKETS_S,
        )
        self.genai_tokens = meter.create_histogram(
            sc.GEN_AI_CLIENT_TOKEN_USAGE,
            unit=sc.UNIT_TOKENS,
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=sc.GEN_AI_TOKEN_BUCKETS,
        )
        self.genai_ttft = meter.create_histogram(
            sc.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK,
            unit=seconds,
            description="Time to receive the first chunk of a GenAI response.",
            explicit_bucket_boundaries_advisory=sc.GEN_AI_TTFT_BUCKETS_S,
        )


class Runtime:
    """A tracer, the instruments and the few settings the domain calls read."""

    __slots__ = ("capture_content", "enabled", "gpu", "inst", "tracer")

    def __init__(
        self,
        tracer: Tracer,
        meter: Meter,
        *,
        enabled: bool = True,
        capture_content: bool = False,
        gpu: GpuProbe | None = None,
    ) -> None:
        self.enabled = enabled
        self.tracer = tracer
        self.inst = Instruments(meter)
        self.capture_content = capture_content
        self.gpu = gpu


def runtime_for(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    *,
    capture_content: bool = False,
    gpu: GpuProbe | None = None,
) -> Runtime:
    """A runtime on explicit providers (the testing capture and the benchmarks use this)."""
    from modeltel import __version__

    return Runtime(
        tracer_provider.get_tracer(sc.INSTRUMENTATION_SCOPE, __version__),
        meter_provider.get_meter(sc.INSTRUMENTATION_SCOPE, __version__),
        capture_content=capture_content,
        gpu=gpu,
    )


DISABLED = Runtime(NoOpTracer(), NoOpMeter(sc.INSTRUMENTATION_SCOPE), enabled=False)
"""The runtime when telemetry is off: domain calls see ``enabled is False`` and return the no-op."""

active: Runtime | None = None
"""The runtime domain calls use; None until the first call resolves it."""

_lock = threading.Lock()


def _from_handle(handle: Handle) -> Runtime:
    if not handle.enabled:
        return DISABLED
    from modeltel import __version__
    from modeltel._internal.domains.hardware import gpu_probe

    return Runtime(
        trace.get_tracer(sc.INSTRUMENTATION_SCOPE, __version__),
        metrics.get_meter(sc.INSTRUMENTATION_SCOPE, __version__),
        capture_content=handle.settings.capture_content,
        gpu=gpu_probe(),
    )


def resolve() -> Runtime:
    """The active runtime, configuring telemetry from the environment on first use."""
    global active
    current = active
    if current is not None:
        return current
    from modeltel._internal.providers import configure

    handle = configure()  # outside _lock: configure takes its own lock
    with _lock:
        if active is None:
            active = _from_handle(handle)
        return active


def install(runtime: Runtime | None) -> Runtime | None:
    """Make ``runtime`` the active one; returns the previous one for :func:`restore`."""
    global active
    with _lock:
        previous, active = active, runtime
    return previous


def restore(previous: Runtime | None) -> None:
    """Undo :func:`install` (None means: resolve again from the environment on next use)."""
    install(previous)
