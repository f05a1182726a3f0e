"""modeltel over real OTLP: traces to Phoenix (directly and through rotel), metrics to rotel.

The app under test knows only the OpenTelemetry API and runs under `modeltel run`; everything
asserted here was read back from the receivers, never taken from a flush return value.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from otlp_files import run_under_modeltel, spans

from .backends import PhoenixServer, RotelAgent, RotelMetricsSink, latest_points

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

PROTOCOLS = ["grpc", "http/protobuf"]


def _endpoint(protocol: str, grpc: str, http: str) -> str:
    return grpc if protocol == "grpc" else http


def _check_phoenix_trace(phoenix: PhoenixServer, project: str, data: Path) -> None:
    local = {s.name: s for s, _, _ in spans(data)}
    trace_id = local["sweep"].trace_id.hex()
    received = phoenix.spans(project, trace_id=trace_id, min_count=6, timeout=60)
    by_name: dict[str, list[dict]] = {}
    for span in received:
        by_name.setdefault(span["name"], []).append(span)
    assert sorted(by_name) == ["failing", "report", "sweep", "task"] and len(by_name["task"]) == 3
    root = by_name["sweep"][0]
    assert root["context"]["span_id"] == local["sweep"].span_id.hex()
    assert root["attributes"]["sweep.label"] == "SIR ✓" and root["attributes"]["sweep.seeds"] == [1, 2, 3]
    for task in by_name["task"]:
        assert task["parent_id"] == root["context"]["span_id"]
        assert task["events"][0]["name"] == "checkpoint"
    assert by_name["failing"][0]["status_code"] == "ERROR"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_traces_reach_phoenix_and_jsonl_is_still_written(
    tmp_path: Path, phoenix: PhoenixServer, phoenix_project: str, protocol: str
) -> None:
    data = tmp_path / "d"
    endpoint = _endpoint(protocol, phoenix.grpc_endpoint, phoenix.http_url)
    result = run_under_modeltel(
        data,
        OTEL_SERVICE_NAME="sweep",
        OTEL_RESOURCE_ATTRIBUTES=f"openinference.project.name={phoenix_project}",
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_EXPORTER_OTLP_HEADERS="x-api-key=never-written",
        OTEL_METRICS_EXPORTER="jsonl",  # Phoenix refuses metrics
    )
    assert result.returncode == 0, result.stderr
    _check_phoenix_trace(phoenix, phoenix_project, data)
    for path in data.rglob("*"):
        if path.is_file():
            assert b"never-written" not in path.read_bytes()
    assert "never-written" not in result.stderr + result.stdout


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_traces_reach_phoenix_through_a_rotel_collector_hop(
    tmp_path: Path, phoenix: PhoenixServer, rotel_to_phoenix: RotelAgent, phoenix_project: str, protocol: str
) -> None:
    data = tmp_path / "d"
    endpoint = _endpoint(protocol, rotel_to_phoenix.grpc_endpoint, rotel_to_phoenix.http_endpoint)
    result = run_under_modeltel(
        data,
        OTEL_SERVICE_NAME="sweep",
        OTEL_RESOURCE_ATTRIBUTES=f"openinference.project.name={phoenix_project}",
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_METRICS_EXPORTER="jsonl",
    )
    assert result.returncode == 0, result.stderr
    _check_phoenix_trace(phoenix, phoenix_project, data)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_metrics_reach_rotel_over_otlp(
    tmp_path: Path, rotel_metrics_sink: RotelMetricsSink, protocol: str
) -> None:
    endpoint = _endpoint(protocol, rotel_metrics_sink.grpc_endpoint, rotel_metrics_sink.http_endpoint)
    service = f"metrics-{protocol.replace('/', '-')}"
    result = run_under_modeltel(
        tmp_path / "d",
        OTEL_SERVICE_NAME=service,
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_TRACES_EXPORTER="jsonl",
    )
    assert result.returncode == 0, result.stderr
    (counter,) = latest_points(
        rotel_metrics_sink.wait_for_metric("example.tasks", service_name=service)
    ).values()
    assert counter.unit == "{task}" and counter.is_monotonic and counter.value == 3
    assert counter.temporality == "CUMULATIVE" and counter.attributes == {"model": "sir"}
    (hist,) = latest_points(
        rotel_metrics_sink.wait_for_metric("example.latency", service_name=service)
    ).values()
    assert hist.explicit_bounds == [0.001, 0.01, 0.1, 1.0] and hist.bucket_counts == [0, 3, 0, 0, 0]
    assert hist.count == 3 and abs(hist.sum - 0.012) < 1e-9
    (gauge,) = latest_points(
        rotel_metrics_sink.wait_for_metric("example.temperature", service_name=service)
    ).values()
    assert gauge.value == 21.5 and gauge.attributes == {"room": "lab"}
