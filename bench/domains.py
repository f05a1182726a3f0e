"""Cost of the domain API against hand-written OpenTelemetry, and of ``p.outputs`` on a big batch.

Run by hand (``.venv/bin/python bench/domains.py``, ``--quick`` for a short run). It prints a table
and never fails on timing: the exit code is 0 whatever the numbers are.

Everything runs in ONE process. The paired cases are interleaved (A B, B A, A B, ... so neither side
always runs first) and each cell is the median over the rounds of the per-call time of one round.

- ``simulation.run`` vs the same telemetry written by hand: ``tracer.start_as_current_span`` with
  the same three attributes plus ``histogram.record`` of the duration with model and status. Both
  use the same SDK ``TracerProvider`` (BatchSpanProcessor to an exporter that discards, flushed
  inside the timed region) and the same ``MeterProvider``. Target ratio <= 1.10.
- Disabled: ``simulation.run(...)`` with telemetry off (the shared no-op) vs a span from the OTel
  API's ``NoOpTracer``, both as ``with`` blocks with an empty body. Target ratio <= 0.3.
- ``p.outputs`` on a 1,000,000 x 10 probability matrix (plus labels with rejects, plus 10 feature
  columns with missing values): seconds, median of the repeats.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np
from machine import describe
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from modeltel import inference, simulation
from modeltel._internal import semconv
from modeltel._internal.domains import _runtime

TARGET_RUN_RATIO = 1.10
TARGET_DISABLED_RATIO = 0.3


class Discard(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def busy(microseconds: float) -> Callable[[], None]:
    """A body that spins for about ``microseconds`` (0: empty body)."""
    if microseconds <= 0:
        return lambda: None

    def spin() -> None:
        end = time.perf_counter() + microseconds / 1e6
        while time.perf_counter() < end:
            pass

    return spin


def per_call(loop: Callable[[int], None], calls: int, flush: Callable[[], object] | None) -> float:
    start = time.perf_counter()
    loop(calls)
    if flush is not None:
        flush()
    return (time.perf_counter() - start) / calls


def paired(
    a: Callable[[int], None],
    b: Callable[[int], None],
    rounds: int,
    calls: int,
    flush: Callable[[], object] | None = None,
) -> tuple[float, float]:
    """Median per-call seconds of ``a`` and ``b``, interleaved, alternating which goes first."""
    a(calls // 10)
    b(calls // 10)  # warm-up: instruments' first series, code paths, caches
    times_a: list[float] = []
    times_b: list[float] = []
    for i in range(rounds):
        order = ((a, times_a), (b, times_b)) if i % 2 == 0 else ((b, times_b), (a, times_a))
        for loop, times in order:
            times.append(per_call(loop, calls, flush))
    return statistics.median(times_a), statistics.median(times_b)


def run_cases(rounds: int, calls: int) -> list[tuple[str, str, str, str, str]]:
    resource = Resource.create({"service.name": "bench"})
    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    tracer_provider.add_span_processor(BatchSpanProcessor(Discard()))
    meter_provider = MeterProvider(
        resource=resource, metric_readers=[InMemoryMetricReader()], shutdown_on_exit=False
    )
    tracer = tracer_provider.get_tracer("bench")
    histogram = meter_provider.get_meter("bench").create_histogram(
        "bench.run.duration", unit="s", explicit_bucket_boundaries_advisory=semconv.DURATION_BUCKETS_S
    )
    enabled = _runtime.runtime_for(tracer_provider, meter_provider)
    rows = []
    previous = _runtime.install(enabled)
    try:
        for body_us in (0.0, 50.0):
            body = busy(body_us)

            def modeltel_loop(n: int, body: Callable[[], None] = body) -> None:
                for i in range(n):
                    with simulation.run(model="sir", param_id="a1b2", seed=i):
                        body()

            def by_hand(n: int, body: Callable[[], None] = body) -> None:
                perf_counter = time.perf_counter
                for i in range(n):
                    start = perf_counter()
                    with tracer.start_as_current_span(
                        semconv.SPAN_SIMULATION_RUN,
                        attributes={
                            semconv.SIMULATION_MODEL: "sir",
                            semconv.SIMULATION_PARAM_ID: "a1b2",
                            semconv.SIMULATION_SEED: i,
                        },
                    ):
                        body()
                    histogram.record(
                        perf_counter() - start,
                        {semconv.SIMULATION_MODEL: "sir", semconv.SIMULATION_STATUS: "ok"},
                    )

            ours, theirs = paired(modeltel_loop, by_hand, rounds, calls, tracer_provider.force_flush)
            label = "empty body" if body_us == 0 else f"~{body_us:.0f} us body"
            rows.append(
                (
                    f"simulation.run vs hand-written span+histogram, {label}",
                    f"{ours * 1e6:.2f} us",
                    f"{theirs * 1e6:.2f} us",
                    f"{ours / theirs:.3f}",
                    f"<= {TARGET_RUN_RATIO}",
                )
            )
    finally:
        _runtime.restore(previous)

    previous = _runtime.install(_runtime.DISABLED)
    noop = trace.NoOpTracer()
    try:

        def disabled(n: int) -> None:
            for i in range(n):
                with simulation.run(model="sir", param_id="a1b2", seed=i):
                    pass

        def otel_noop(n: int) -> None:
            for i in range(n):
                with noop.start_as_current_span(
                    semconv.SPAN_SIMULATION_RUN,
                    attributes={
                        semconv.SIMULATION_MODEL: "sir",
                        semconv.SIMULATION_PARAM_ID: "a1b2",
                        semconv.SIMULATION_SEED: i,
                    },
                ):
                    pass

        ours, theirs = paired(disabled, otel_noop, rounds, calls * 5)
        rows.append(
            (
                "disabled simulation.run vs OTel NoOpTracer span",
                f"{ours * 1e9:.0f} ns",
                f"{theirs * 1e9:.0f} ns",
                f"{ours / theirs:.3f}",
                f"<= {TARGET_DISABLED_RATIO}",
            )
        )
    finally:
        _runtime.restore(previous)

    rows.extend(outputs_cases(enabled, repeats=3 if rounds < 10 else 7))
    tracer_provider.shutdown()
    meter_provider.shutdown()
    return rows


def outputs_cases(enabled: _runtime.Runtime, repeats: int) -> list[tuple[str, str, str, str, str]]:
    rng = np.random.default_rng(0)
    probs = rng.random((1_000_000, 10))
    probs /= probs.sum(axis=1, keepdims=True)
    names = np.array([f"class{i}" for i in range(10)])
    labels = np.where(probs.max(axis=1) < 0.2, "unknown", names[probs.argmax(axis=1)])
    features = rng.random((1_000_000, 10))
    features[rng.random((1_000_000, 10)) < 0.01] = np.nan
    cases: list[tuple[str, dict[str, object]]] = [
        ("p.outputs 1e6 x 10 probabilities", {}),
        ("p.outputs 1e6 x 10 + labels with rejects", {"labels": labels, "reject_label": "unknown"}),
        (
            "p.outputs 1e6 x 10 + labels + 1e6 x 10 features",
            {"labels": labels, "reject_label": "unknown", "features": features},
        ),
    ]
    rows = []
    previous = _runtime.install(enabled)
    try:
        for label, kwargs in cases:
            times = []
            for _ in range(repeats):
                with inference.predict(model="bench") as p:
                    start = time.perf_counter()
                    p.outputs(probs, **kwargs)
                    times.append(time.perf_counter() - start)
            rows.append((label, f"{statistics.median(times):.3f} s", "", "", "< 1 s"))
    finally:
        _runtime.restore(previous)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a CI report, not a measurement)")
    args = parser.parse_args(argv)
    rounds, calls = (5, 1000) if args.quick else (21, 4000)
    rows = run_cases(rounds, calls)
    print("bench/domains.py")
    print(describe(("opentelemetry-sdk", "numpy")))
    print(f"{rounds} interleaved rounds of {calls} calls (x5 for the disabled case); medians per call")
    print()
    widths = [
        max(len(r[i]) for r in [*rows, ("case", "modeltel", "reference", "ratio", "target")])
        for i in range(5)
    ]
    header = ("case", "modeltel", "reference", "ratio", "target")
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
