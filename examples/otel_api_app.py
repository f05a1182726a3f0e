"""An application that knows only the OpenTelemetry API: run it under `modeltel run`.

It exercises every attribute value type, events, links, error status and the three metric point
kinds, so the tests can check the JSONL files field by field.
"""

from __future__ import annotations

import os
import sys

from opentelemetry import metrics, trace

tracer = trace.get_tracer("example.app", "1.2.3")
meter = metrics.get_meter("example.app", "1.2.3")
tasks = meter.create_counter("example.tasks", unit="{task}", description="tasks run")
latency = meter.create_histogram(
    "example.latency", unit="s", explicit_bucket_boundaries_advisory=[0.001, 0.01, 0.1, 1.0]
)
temperature = meter.create_gauge("example.temperature", unit="Cel")


def main() -> None:
    n = int(os.environ.get("EXAMPLE_SPANS", "3"))
    with tracer.start_as_current_span("sweep", attributes={"sweep.size": n}) as root:
        root.set_attribute("sweep.label", "SIR ✓")
        root.set_attribute("sweep.ratio", 0.25)
        root.set_attribute("sweep.ok", True)
        root.set_attribute("sweep.seeds", [1, 2, 3])
        root.set_attribute("sweep.names", ["a", "b"])
        root.set_attribute("sweep.weights", [0.5, 1.5])
        root.set_attribute("sweep.flags", [True, False])
        for i in range(n):
            with tracer.start_as_current_span("task", attributes={"task.index": i}) as span:
                span.add_event("checkpoint", {"step": i, "loss": 1.0 / (i + 1)})
                tasks.add(1, {"model": "sir"})
                latency.record(0.002 * (i + 1), {"model": "sir"})
        link = trace.Link(root.get_span_context(), {"link.kind": "follows"})
        with tracer.start_as_current_span("report", links=[link]):
            pass
        try:
            with tracer.start_as_current_span("failing"):
                raise ValueError("bad parameter set")
        except ValueError:
            pass
    temperature.set(21.5, {"room": "lab"})
    exit_mode = os.environ.get("EXAMPLE_EXIT", "normal")
    if exit_mode == "sys.exit":
        sys.exit(3)
    if exit_mode == "raise":
        raise RuntimeError("uncaught on purpose")
    if exit_mode == "wait":
        print("ready", flush=True)
        sys.stdin.read()  # blocks until the test signals the process


if __name__ == "__main__":
    main()
