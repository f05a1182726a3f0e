"""The Jaeger export, field by field against Jaeger's JSON model (see ``check_jaeger_model``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modeltel.formats.jaeger import jaeger_traces
from modeltel.read.files import trace_files
from modeltel.read.query import iter_spans
from otlp_files import attrs, spans
from reading_data import COLLECTOR_TRACE, check_jaeger_model, collector_file, example_run, modeltel


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
        assert span["duration"] == (original.end_time_unix_nano - original.start_time_unix_nano) // 1000
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
    assert tags["sweep.seeds"] == ("string", "[1,2,3]")
    assert tags["sweep.weights"] == ("string", "[0.5,1.5]")
    task = next(s for s in trace["spans"] if s["operationName"] == "task")
    assert task["references"] == [
        {"refType": "CHILD_OF", "traceID": trace["traceID"], "spanID": sweep["spanID"]}
    ]
    (log,) = task["logs"]
    assert log["fields"][0] == {"key": "event", "type": "string", "value": "checkpoint"}
    assert {f["key"] for f in log["fields"]} == {"event", "step", "loss"}
    report = by_name["report"]
    # Its link points at its parent: one reference, typed by the link (no ref_type: FOLLOWS_FROM).
    assert report["references"] == [
        {"refType": "FOLLOWS_FROM", "traceID": trace["traceID"], "spanID": sweep["spanID"]}
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


# --- against the translator Jaeger runs on OTLP input ---------------------------------------------
# Expected values follow opentelemetry-collector-contrib pkg/translator/jaeger (traces_to_jaegerproto)
# and Jaeger's JSON writer (model/converter/json), on files written here and exported by the CLI.

TRACE = "0af7651916cd43dd8448eb211c80319c"
ROOT, OTHER = "b7ad6b7169203331", "c7ad6b7169203332"
START = 1_700_000_000_000_000_900


def _span(span_id: str, name: str, **fields: Any) -> dict[str, Any]:
    node: dict[str, Any] = {
        "traceId": TRACE,
        "spanId": span_id,
        "name": name,
        "kind": 1,
        "startTimeUnixNano": str(START),
        "endTimeUnixNano": str(START + 1_000),
    }
    node.update(fields)
    return node


def _resource(attributes: list[dict[str, Any]], *spans: dict[str, Any]) -> dict[str, Any]:
    return {
        "resource": {"attributes": attributes},
        "scopeSpans": [{"scope": {"name": "t"}, "spans": list(spans)}],
    }


def _string(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "value": {"stringValue": value}}


SERVICE = [_string("service.name", "svc")]


def _export_jaeger(tmp_path: Path, *resource_spans: dict[str, Any]) -> dict[str, Any]:
    """``modeltel export --format jaeger`` on a data dir holding one line with ``resource_spans``."""
    day = tmp_path / "data" / "traces" / "2026-01-02"
    day.mkdir(parents=True)
    (day / "svc-1-2.jsonl").write_text(json.dumps({"resourceSpans": list(resource_spans)}) + "\n")
    out = tmp_path / "jaeger.json"
    result = modeltel("export", "--data-dir", str(tmp_path / "data"), "--format", "jaeger", "-o", str(out))
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(out.read_text())
    return document


def _by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["operationName"]: s for trace in document["data"] for s in trace["spans"]}


def test_duration_truncates_the_nanosecond_difference(tmp_path: Path) -> None:
    # 1,200 ns from ...900 to ...2100: 1 µs, although the end's µs minus the start's µs is 2.
    document = _export_jaeger(
        tmp_path, _resource(SERVICE, _span(ROOT, "short", endTimeUnixNano=str(START + 1_200)))
    )
    check_jaeger_model(document)
    span = _by_name(document)["short"]
    assert (span["startTime"], span["duration"]) == (START // 1000, 1)


def test_links_fold_into_the_parent_and_carry_their_ref_type(tmp_path: Path) -> None:
    child_of = {"key": "opentracing.ref_type", "value": {"stringValue": "child_of"}}
    follows = {"key": "opentracing.ref_type", "value": {"stringValue": "follows_from"}}
    not_a_string = {"key": "opentracing.ref_type", "value": {"intValue": "1"}}
    document = _export_jaeger(
        tmp_path,
        _resource(
            SERVICE,
            _span(ROOT, "root"),
            _span(OTHER, "other", parentSpanId=ROOT),
            # A link to the parent is the parent reference; its type is the link's (FOLLOWS_FROM unless
            # the link says child_of).
            _span(
                "d7ad6b7169203333",
                "parent-link",
                parentSpanId=ROOT,
                links=[{"traceId": TRACE, "spanId": ROOT}],
            ),
            _span(
                "d7ad6b7169203334",
                "parent-link-child-of",
                parentSpanId=ROOT,
                links=[{"traceId": TRACE, "spanId": ROOT, "attributes": [child_of]}],
            ),
            _span(
                "d7ad6b7169203335",
                "typed-links",
                parentSpanId=ROOT,
                links=[
                    {"traceId": TRACE, "spanId": OTHER, "attributes": [child_of]},
                    {"traceId": TRACE, "spanId": OTHER, "attributes": [follows]},
                    {"traceId": TRACE, "spanId": OTHER, "attributes": [not_a_string]},
                ],
            ),
        ),
    )
    check_jaeger_model(document)
    spans = _by_name(document)
    assert spans["parent-link"]["references"] == [
        {"refType": "FOLLOWS_FROM", "traceID": TRACE, "spanID": ROOT}
    ]
    assert spans["parent-link-child-of"]["references"] == [
        {"refType": "CHILD_OF", "traceID": TRACE, "spanID": ROOT}
    ]
    assert [(r["refType"], r["spanID"]) for r in spans["typed-links"]["references"]] == [
        ("CHILD_OF", ROOT),
        ("CHILD_OF", OTHER),
        ("FOLLOWS_FROM", OTHER),
        ("FOLLOWS_FROM", OTHER),
    ]


def test_event_name_field_only_for_a_named_event_without_an_event_attribute(tmp_path: Path) -> None:
    time = str(START + 500)
    events = [
        {"timeUnixNano": time, "name": "", "attributes": [_string("step", "one")]},
        {"timeUnixNano": time, "name": "ignored", "attributes": [_string("event", "from attribute")]},
        {"timeUnixNano": time, "name": "named"},
    ]
    document = _export_jaeger(tmp_path, _resource(SERVICE, _span(ROOT, "events", events=events)))
    check_jaeger_model(document)
    assert [log["fields"] for log in _by_name(document)["events"]["logs"]] == [
        [{"key": "step", "type": "string", "value": "one"}],
        [{"key": "event", "type": "string", "value": "from attribute"}],
        [{"key": "event", "type": "string", "value": "named"}],
    ]


def test_process_of_a_resource_without_service_name(tmp_path: Path) -> None:
    document = _export_jaeger(
        tmp_path,
        _resource([], _span(ROOT, "bare")),
        _resource([_string("host.name", "h1")], _span(OTHER, "unnamed")),
        _resource(
            [{"key": "service.name", "value": {"intValue": "7"}}, _string("host.name", "h2")],
            _span("d7ad6b7169203333", "numbered"),
        ),
    )
    check_jaeger_model(document)
    (trace,) = document["data"]
    processes = {s["operationName"]: trace["processes"][s["processID"]] for s in trace["spans"]}
    assert processes == {
        "bare": {"serviceName": "OTLPResourceNoServiceName", "tags": []},
        "unnamed": {"serviceName": "", "tags": [{"key": "host.name", "type": "string", "value": "h1"}]},
        "numbered": {"serviceName": "", "tags": [{"key": "host.name", "type": "string", "value": "h2"}]},
    }


def test_tags_in_translator_order_with_its_value_types(tmp_path: Path) -> None:
    attributes = [
        _string("s", "x"),
        {"key": "i", "value": {"intValue": "9007199254740991"}},
        {"key": "big", "value": {"intValue": "9007199254740993"}},
        {"key": "neg", "value": {"intValue": "-9007199254740993"}},
        {"key": "d", "value": {"doubleValue": 1.0}},
        {"key": "b", "value": {"boolValue": True}},
        {"key": "raw", "value": {"bytesValue": "AQID"}},
        {"key": "empty", "value": {}},
        {
            "key": "list",
            "value": {
                "arrayValue": {
                    "values": [
                        {"intValue": "1"},
                        {"doubleValue": 2.0},
                        {"doubleValue": 1e-7},
                        {"doubleValue": 1e21},
                        {"doubleValue": 1e16},
                        {"stringValue": "a<b&c> ✓"},
                        {"boolValue": False},
                        {},
                        {"bytesValue": "AQID"},
                    ]
                }
            },
        },
        {
            "key": "map",
            "value": {
                "kvlistValue": {"values": [{"key": "z", "value": {"doubleValue": 0.5}}, _string("a", "q")]}
            },
        },
        {"key": "nan-list", "value": {"arrayValue": {"values": [{"doubleValue": "NaN"}]}}},
    ]
    span = _span(
        ROOT,
        "typed",
        kind=3,
        attributes=attributes,
        status={"code": 2, "message": "boom"},
        traceState="k=v",
    )
    document = _export_jaeger(
        tmp_path,
        {
            "resource": {"attributes": SERVICE},
            "scopeSpans": [{"scope": {"name": "lib", "version": "2"}, "spans": [span]}],
        },
    )
    tags = [(t["key"], t["type"], t["value"]) for t in _by_name(document)["typed"]["tags"]]
    assert tags == [
        ("otel.scope.name", "string", "lib"),
        ("otel.scope.version", "string", "2"),
        ("s", "string", "x"),
        ("i", "int64", 9007199254740991),
        ("big", "int64", "9007199254740993"),
        ("neg", "int64", "-9007199254740993"),
        ("d", "float64", 1.0),
        ("b", "bool", True),
        ("raw", "binary", "AQID"),
        ("empty", "string", ""),
        (
            "list",
            "string",
            '[1,2,1e-7,1e+21,10000000000000000,"a\\u003cb\\u0026c\\u003e ✓",false,null,"AQID"]',
        ),
        ("map", "string", '{"a":"q","z":0.5}'),
        ("nan-list", "string", ""),
        ("span.kind", "string", "client"),
        ("otel.status_code", "string", "ERROR"),
        ("error", "bool", True),
        ("otel.status_description", "string", "boom"),
        ("w3c.tracestate", "string", "k=v"),
    ]


def test_unknown_kind_and_status_give_no_tags(tmp_path: Path) -> None:
    document = _export_jaeger(
        tmp_path,
        _resource(
            SERVICE,
            _span(ROOT, "odd", kind=9, status={"code": 3}),
            _span(OTHER, "unspecified", kind=0, status={"code": 1}),
        ),
    )
    check_jaeger_model(document)
    spans = _by_name(document)
    assert spans["odd"]["tags"] == [{"key": "otel.scope.name", "type": "string", "value": "t"}]
    assert spans["unspecified"]["tags"] == [
        {"key": "otel.scope.name", "type": "string", "value": "t"},
        {"key": "otel.status_code", "type": "string", "value": "OK"},
    ]


def test_flags_keep_only_the_sampled_bit(tmp_path: Path) -> None:
    document = _export_jaeger(
        tmp_path,
        _resource(
            SERVICE,
            _span(ROOT, "sampled", flags=0x301),
            _span(OTHER, "remote-bits-only", flags=0x300),
            _span("d7ad6b7169203333", "no-flags"),
        ),
    )
    check_jaeger_model(document)
    assert {name: s["flags"] for name, s in _by_name(document).items()} == {
        "sampled": 1,
        "remote-bits-only": 0,
        "no-flags": 0,
    }


def test_a_64_bit_trace_id_is_written_as_jaeger_writes_it(tmp_path: Path) -> None:
    short = "0000000000000000a1b2c3d4e5f60718"
    document = _export_jaeger(
        tmp_path,
        _resource(
            SERVICE,
            _span(ROOT, "root", traceId=short),
            _span(OTHER, "child", traceId=short, parentSpanId=ROOT),
        ),
    )
    (trace,) = document["data"]
    assert trace["traceID"] == "a1b2c3d4e5f60718"
    assert {s["traceID"] for s in trace["spans"]} == {"a1b2c3d4e5f60718"}
    child = _by_name(document)["child"]
    assert child["references"] == [{"refType": "CHILD_OF", "traceID": "a1b2c3d4e5f60718", "spanID": ROOT}]
