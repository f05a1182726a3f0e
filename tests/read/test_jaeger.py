"""The Jaeger export, field by field against Jaeger's JSON model (see ``check_jaeger_model``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modeltel.read.files import trace_files
from modeltel.read.jaeger import jaeger_traces
from modeltel.read.query import iter_spans
from otlp_files import attrs, spans
from reading_data import COLLECTOR_TRACE, check_jaeger_model, collector_file, example_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return example_run(tmp_path_factory.mktemp("run") / "data")


def test_a_real_run_maps_field_by_field(run_dir: Path) -> None:
    document = jaeger_traces(iter_spans(trace_files([], run_dir)))
    check_jaeger_model(json.loads(json.dumps(document)))
    (trace,) = document["data"]
    by_name = {s["operationName"]: s for s in trace["spans"]}
    originals = {span.name: (span, resource, scope) for span, resource, scope in spans(run_dir)}
    assert set(by_name) == set(originals) == {"sweep", "task", "report", "failing"}
    for name, (original, resource, scope) in originals.items():
        span = by_name[name]
        assert span["traceID"] == original.trace_id.hex() and span["spanID"] == original.span_id.hex()
        assert span["startTime"] == original.start_time_unix_nano // 1000
        assert span["duration"] == original.end_time_unix_nano // 1000 - original.start_time_unix_nano // 1000
        tags = {t["key"]: (t["type"], t["value"]) for t in span["tags"]}
        assert tags["otel.scope.name"] == ("string", scope.name)
        assert tags["otel.scope.version"] == ("string", scope.version)
        assert tags["span.kind"] == ("string", "internal")
        process = trace["processes"][span["processID"]]
        assert process["serviceName"] == "sweep"
        assert {t["key"] for t in process["tags"]} == set(attrs(resource.attributes)) - {"service.name"}
    sweep = by_name["sweep"]
    assert sweep["references"] == []
    tags = {t["key"]: (t["type"], t["value"]) for t in sweep["tags"]}
    assert tags["sweep.size"] == ("int64", 3)
    assert tags["sweep.ratio"] == ("float64", 0.25)
    assert tags["sweep.ok"] == ("bool", True)
    assert tags["sweep.label"] == ("string", "SIR ✓")
    assert tags["sweep.seeds"] == ("string", "[1, 2, 3]")
    task = next(s for s in trace["spans"] if s["operationName"] == "task")
    assert task["references"] == [
        {"refType": "CHILD_OF", "traceID": trace["traceID"], "spanID": sweep["spanID"]}
    ]
    (log,) = task["logs"]
    assert log["fields"][0] == {"key": "event", "type": "string", "value": "checkpoint"}
    assert {f["key"] for f in log["fields"]} == {"event", "step", "loss"}
    report = by_name["report"]
    assert {"refType": "FOLLOWS_FROM", "traceID": trace["traceID"], "spanID": sweep["spanID"]} in report[
        "references"
    ]
    failing = {t["key"]: t["value"] for t in by_name["failing"]["tags"]}
    assert failing["error"] is True and failing["otel.status_code"] == "ERROR"
    assert failing["otel.status_description"].startswith("ValueError")


def test_collector_style_input(tmp_path: Path) -> None:
    document = jaeger_traces(iter_spans([collector_file(tmp_path)]))
    check_jaeger_model(document)
    (trace,) = document["data"]
    assert trace["traceID"] == COLLECTOR_TRACE
    assert [s["operationName"] for s in trace["spans"]] == ["chat gpt-4o", "retrieve", "chat gpt-4o"]
    first, retrieve, second = trace["spans"]
    assert first["startTime"] == 1544712660000000 and first["duration"] == 1_000_000
    assert retrieve["references"][0]["spanID"] == "eee19b7ec3c1b174"
    assert {t["key"]: t["value"] for t in retrieve["tags"]}["error"] is True
    assert {t["key"]: t["value"] for t in first["tags"]}["gen_ai.usage.input_tokens"] == 120
    assert second["logs"] == [
        {
            "timestamp": 1544712662000000,
            "fields": [{"key": "event", "type": "string", "value": "first token"}],
        }
    ]
