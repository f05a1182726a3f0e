"""Pretty-printed OTLP/JSON documents (one or several in a file) read like OTLP/JSON lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from otlp_receiver import running_receiver
from reading_data import modeltel

TRACE_ID = "5b8efff798038103d269b633813fc60c"


def _span(i: int) -> dict[str, Any]:
    return {
        "traceId": TRACE_ID,
        "spanId": f"{i + 1:016x}",
        "name": f"op{i % 2}",
        "kind": 1,
        "startTimeUnixNano": str(1_700_000_000_000_000_000 + i),
        "endTimeUnixNano": str(1_700_000_001_000_000_000 + i),
        "attributes": [{"key": "i", "value": {"intValue": str(i)}}],
        "status": {},
    }


def _traces(first: int, count: int) -> dict[str, Any]:
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]}
    spans = [_span(i) for i in range(first, first + count)]
    return {
        "resourceSpans": [{"resource": resource, "scopeSpans": [{"scope": {"name": "s"}, "spans": spans}]}]
    }


def _metrics(points: int) -> dict[str, Any]:
    gauge = {
        "dataPoints": [
            {"timeUnixNano": "1700000000000000000", "asDouble": float(i), "attributes": []}
            for i in range(points)
        ]
    }
    return {
        "resourceMetrics": [
            {"resource": {}, "scopeMetrics": [{"scope": {}, "metrics": [{"name": "g", "gauge": gauge}]}]}
        ]
    }


def test_pretty_trace_documents_are_read_with_their_counts(tmp_path: Path) -> None:
    path = tmp_path / "spans.json"
    path.write_text(json.dumps(_traces(0, 3), indent=2) + "\n\n" + json.dumps(_traces(3, 4), indent=4) + "\n")
    shown = modeltel("show", "--format", "json", str(path))
    assert shown.returncode == 0, shown.stderr
    assert "skipped" not in shown.stderr
    rows = {row["name"]: row["count"] for row in json.loads(shown.stdout)["spans"]}
    assert rows == {"op0": 4, "op1": 3}
    exported = modeltel("export", "--format", "otlp-json", "-o", "-", str(path))
    assert exported.returncode == 0, exported.stderr
    spans = [
        span
        for line in exported.stdout.splitlines()
        for block in json.loads(line)["resourceSpans"]
        for scope in block["scopeSpans"]
        for span in scope["spans"]
    ]
    assert len(spans) == 7
    trace = modeltel("show", "--trace", TRACE_ID, "--format", "json", str(path))
    assert trace.returncode == 0, trace.stderr


def test_a_document_followed_by_garbage_keeps_the_document_and_warns_once(tmp_path: Path) -> None:
    path = tmp_path / "spans.json"
    path.write_text(json.dumps(_traces(0, 3), indent=2) + "\n{ this is not json\n")
    shown = modeltel("show", "--format", "json", str(path))
    assert shown.returncode == 0, shown.stderr
    assert sum(row["count"] for row in json.loads(shown.stdout)["spans"]) == 3
    warnings = [line for line in shown.stderr.splitlines() if "skipped" in line]
    assert len(warnings) == 1 and f"{path}:" in warnings[0], shown.stderr


def test_pretty_metric_documents_are_replayed_with_their_counts(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(_metrics(2), indent=2) + json.dumps(_metrics(3), indent=2))
    with running_receiver() as receiver:
        sent = modeltel(
            "replay",
            "--endpoint",
            receiver.endpoint,
            "--protocol",
            "http/protobuf",
            "--format",
            "json",
            str(path),
        )
        requests = receiver.requests("/v1/metrics")
    assert sent.returncode == 0, sent.stderr
    points = [
        len(metric.gauge.data_points)
        for request in requests
        for block in request.resource_metrics
        for scope in block.scope_metrics
        for metric in scope.metrics
    ]
    assert sorted(points) == [2, 3]
