"""Prove the integration harness with the plain OpenTelemetry SDK (no modeltel code involved).

Spans go to Phoenix over OTLP/gRPC and OTLP/HTTP, directly and through rotel, and are read back
from Phoenix's REST API. Metrics go to a rotel sink and are read back from its debug log.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Status, StatusCode

from .backends import (
    PHOENIX_PROJECT_ATTRIBUTE,
    PhoenixServer,
    RotelAgent,
    RotelMetricsSink,
    assert_loopback_only,
    latest_points,
    listening_sockets,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

PROTOCOLS = ["grpc", "http/protobuf"]


@dataclass
class SentTrace:
    trace_id: str
    span_ids: dict[str, str]


def send_trace(exporter: SpanExporter, project: str) -> SentTrace:
    """Emit root -> child -> grandchild with attributes, an event and an error status; flush."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": "harness-smoke", PHOENIX_PROJECT_ATTRIBUTE: project})
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("harness.smoke", "0.1")
    span_ids: dict[str, str] = {}
    with tracer.start_as_current_span(
        "smoke.root", attributes={"smoke.str": "hello", "smoke.int": 42, "smoke.bool": True}
    ) as root:
        span_ids["smoke.root"] = format(root.get_span_context().span_id, "016x")
        with tracer.start_as_current_span("smoke.child", attributes={"smoke.float": 2.5}) as child:
            span_ids["smoke.child"] = format(child.get_span_context().span_id, "016x")
            child.add_event("smoke.event", {"step": 1})
            with tracer.start_as_current_span(
                "smoke.grandchild", attributes={"smoke.list": ["a", "b"]}
            ) as grandchild:
                span_ids["smoke.grandchild"] = format(grandchild.get_span_context().span_id, "016x")
                grandchild.set_status(Status(StatusCode.ERROR, "boom"))
    trace_id = format(root.get_span_context().trace_id, "032x")
    # force_flush() returns True even when nobody accepted the data: the read-back is the check.
    provider.force_flush(timeout_millis=10_000)
    provider.shutdown()
    return SentTrace(trace_id=trace_id, span_ids=span_ids)


def span_exporter(protocol: str, grpc_endpoint: str, traces_url: str) -> SpanExporter:
    if protocol == "grpc":
        return GrpcSpanExporter(endpoint=grpc_endpoint, insecure=True, timeout=10)
    return HttpSpanExporter(endpoint=traces_url, timeout=10)


def assert_trace_in_phoenix(phoenix: PhoenixServer, project: str, sent: SentTrace) -> None:
    spans = phoenix.spans(project, trace_id=sent.trace_id, min_count=3, timeout=30)
    by_name: dict[str, dict[str, Any]] = {span["name"]: span for span in spans}
    assert sorted(by_name) == ["smoke.child", "smoke.grandchild", "smoke.root"]
    for name, span in by_name.items():
        assert span["context"]["trace_id"] == sent.trace_id
        assert span["context"]["span_id"] == sent.span_ids[name]

    root, child, grandchild = by_name["smoke.root"], by_name["smoke.child"], by_name["smoke.grandchild"]
    assert root["parent_id"] is None
    assert child["parent_id"] == sent.span_ids["smoke.root"]
    assert grandchild["parent_id"] == sent.span_ids["smoke.child"]

    assert root["attributes"] == {"smoke.str": "hello", "smoke.int": 42, "smoke.bool": True}
    assert child["attributes"] == {"smoke.float": 2.5}
    assert grandchild["attributes"] == {"smoke.list": ["a", "b"]}
    assert [(e["name"], e["attributes"]) for e in child["events"]] == [("smoke.event", {"step": 1})]
    assert (grandchild["status_code"], grandchild["status_message"]) == ("ERROR", "boom")
    assert root["status_code"] == "UNSET"


def test_phoenix_and_rotel_listen_on_loopback_only(
    phoenix: PhoenixServer, rotel_to_phoenix: RotelAgent
) -> None:
    phoenix_sockets = phoenix.assert_loopback_only()
    grpc_sockets = [s for s in phoenix_sockets if s.port == phoenix.grpc_port]
    # Without the harness's bind fix this is "[::]" (all interfaces).
    assert [s.address for s in grpc_sockets] in (["127.0.0.1"], ["[::ffff:127.0.0.1]"])
    assert {s.port for s in phoenix_sockets} == {phoenix.http_port, phoenix.grpc_port}

    rotel_sockets = assert_loopback_only(
        rotel_to_phoenix.process.group_pids(),
        expected_ports=(rotel_to_phoenix.grpc_port, rotel_to_phoenix.http_port),
    )
    assert {s.address for s in rotel_sockets} == {"127.0.0.1"}


def test_phoenix_spans_is_empty_for_unknown_project(phoenix: PhoenixServer) -> None:
    project = f"never-used-{uuid.uuid4().hex}"
    assert phoenix.fetch_spans(project) == []  # Phoenix answers 404 until the project's first span
    with pytest.raises(TimeoutError, match=project):
        phoenix.spans(project, timeout=0.5)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_spans_reach_phoenix_directly(phoenix: PhoenixServer, phoenix_project: str, protocol: str) -> None:
    exporter = span_exporter(protocol, phoenix.grpc_endpoint, phoenix.traces_url)

    sent = send_trace(exporter, phoenix_project)

    assert_trace_in_phoenix(phoenix, phoenix_project, sent)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_spans_reach_phoenix_through_rotel(
    phoenix: PhoenixServer, rotel_to_phoenix: RotelAgent, phoenix_project: str, protocol: str
) -> None:
    exporter = span_exporter(protocol, rotel_to_phoenix.grpc_endpoint, rotel_to_phoenix.traces_url)

    sent = send_trace(exporter, phoenix_project)

    assert_trace_in_phoenix(phoenix, phoenix_project, sent)
    # The hop really happened: rotel's own debug log shows the spans it forwarded.
    assert sent.trace_id in rotel_to_phoenix.log_text()


def metric_exporter(protocol: str, sink: RotelMetricsSink, delta: bool) -> MetricExporter:
    temporality: dict[type, AggregationTemporality] | None = (
        {Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA} if delta else None
    )
    if protocol == "grpc":
        return GrpcMetricExporter(
            endpoint=sink.grpc_endpoint, insecure=True, timeout=10, preferred_temporality=temporality
        )
    return HttpMetricExporter(endpoint=sink.metrics_url, timeout=10, preferred_temporality=temporality)


def send_metrics(exporter: MetricExporter, service_name: str) -> None:
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        metric_readers=[reader], resource=Resource.create({"service.name": service_name})
    )
    meter = provider.get_meter("harness.smoke", "0.1")
    requests = meter.create_counter("smoke.requests", unit="{request}", description="requests served")
    requests.add(3, {"route": "/a"})
    requests.add(4, {"route": "/b", "retry": True, "ratio": 0.5, "tags": ["x", "y"]})
    requests.add(2, {"route": "/a"})
    latency = meter.create_histogram(
        "smoke.latency", unit="s", explicit_bucket_boundaries_advisory=[0.1, 1.0, 10.0]
    )
    for value in (0.05, 0.5, 0.7, 5.0, 50.0):
        latency.record(value, {"op": "step"})
    provider.force_flush(timeout_millis=10_000)
    provider.shutdown()


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("protocol", "delta"), [("grpc", False), ("http/protobuf", False), ("grpc", True)])
def test_metrics_reach_rotel_sink(rotel_metrics_sink: RotelMetricsSink, protocol: str, delta: bool) -> None:
    service_name = f"harness-smoke-{uuid.uuid4().hex[:8]}"

    send_metrics(metric_exporter(protocol, rotel_metrics_sink, delta), service_name)

    temporality = "DELTA" if delta else "CUMULATIVE"
    counter_points = rotel_metrics_sink.wait_for_metric(
        "smoke.requests", service_name=service_name, min_points=2
    )
    for point in counter_points:
        assert (point.unit, point.data_type, point.is_monotonic) == ("{request}", "Sum", True)
        assert point.temporality == temporality
        assert point.description == "requests served"
        assert (point.scope_name, point.scope_version) == ("harness.smoke", "0.1")
    counters = latest_points(counter_points)
    assert {dict(key)["route"]: p.value for key, p in counters.items()} == {"/a": 5, "/b": 4}
    typed = next(p for p in counters.values() if p.attributes["route"] == "/b")
    assert typed.attributes == {"route": "/b", "retry": True, "ratio": 0.5, "tags": ["x", "y"]}

    [histogram] = latest_points(
        rotel_metrics_sink.wait_for_metric("smoke.latency", service_name=service_name)
    ).values()
    assert (histogram.unit, histogram.data_type, histogram.temporality) == ("s", "Histogram", temporality)
    assert histogram.service_name == service_name
    assert histogram.attributes == {"op": "step"}
    assert histogram.explicit_bounds == [0.1, 1.0, 10.0]
    assert histogram.bucket_counts == [1, 2, 1, 1]
    assert (histogram.count, histogram.sum, histogram.min, histogram.max) == (5, 56.25, 0.05, 50)


def test_rotel_metrics_sink_listens_on_loopback_only(rotel_metrics_sink: RotelMetricsSink) -> None:
    sockets = listening_sockets(rotel_metrics_sink.agent.process.group_pids())
    assert {(s.address, s.port) for s in sockets} == {
        ("127.0.0.1", rotel_metrics_sink.agent.grpc_port),
        ("127.0.0.1", rotel_metrics_sink.agent.http_port),
    }
