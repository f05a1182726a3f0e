"""Stored lines as protobuf requests: what the reader reads is what is sent, field for field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.protobuf.json_format import MessageToDict

from modeltel.formats.protobuf import InvalidLine, build_request, metrics_request, signal_of, trace_request
from modeltel.read import iter_spans
from otlp_files import attrs, jsonl_files, metric_requests
from reading_data import COLLECTOR_LINES, collector_file, example_run, sdk_file


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return example_run(tmp_path_factory.mktemp("run") / "data", OTEL_METRIC_EXPORT_INTERVAL="200")


def test_trace_lines_become_the_spans_the_reader_reads(tmp_path: Path) -> None:
    path = sdk_file(tmp_path / "d", 400, batch=64)
    expected = {span.span_id: span for span in iter_spans([path])}
    seen = 0
    for line in path.read_bytes().splitlines():
        request, count = trace_request(line)
        assert count == sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        for resource_spans in request.resource_spans:
            resource = attrs(resource_spans.resource.attributes)
            assert resource["service.name"] == "sdk-writer"
            for scope_spans in resource_spans.scope_spans:
                assert scope_spans.scope.name == "modeltel"
                for span in scope_spans.spans:
                    seen += 1
                    want = expected[span.span_id.hex()]
                    assert span.trace_id.hex() == want.trace_id and span.name == want.name
                    assert span.parent_span_id.hex() == want.parent_span_id
                    assert (span.start_time_unix_nano, span.end_time_unix_nano) == (
                        want.start_ns,
                        want.end_ns,
                    )
                    assert (span.status.code, span.status.message) == (want.status_code, want.status_message)
                    got = attrs(span.attributes)
                    assert got == {k: v for k, v in want.attributes.items()}
                    assert [e.name for e in span.events] == [e.name for e in want.events]
                    assert [k.span_id.hex() for k in span.links] == [k.span_id for k in want.links]
    assert seen == len(expected) == 400


def test_collector_style_lines(tmp_path: Path) -> None:
    path = collector_file(tmp_path)
    first, second = path.read_bytes().splitlines()
    request, count = trace_request(first)
    assert count == 2
    (resource_spans,) = request.resource_spans
    (scope_spans,) = resource_spans.scope_spans
    assert (scope_spans.scope.name, scope_spans.scope.version) == ("legacy.lib", "0.9")
    chat, retrieve = scope_spans.spans
    assert chat.span_id.hex() == "eee19b7ec3c1b174" and retrieve.parent_span_id == chat.span_id
    assert attrs(chat.attributes)["gen_ai.usage.input_tokens"] == 120
    assert retrieve.status.code == 2 and retrieve.status.message == "timeout"
    request, count = trace_request(second)
    (span,) = request.resource_spans[0].scope_spans[0].spans
    assert count == 1 and span.kind == 3 and span.status.code == 1 and span.events[0].name == "first token"
    assert signal_of(json.dumps(COLLECTOR_LINES[0]).encode()) == "traces"


def test_metric_lines_keep_every_field(run_dir: Path) -> None:
    (path,) = jsonl_files(run_dir, "metrics")
    expected = metric_requests(run_dir)
    lines = path.read_bytes().splitlines()
    assert len(lines) == len(expected) > 0
    for line, want in zip(lines, expected, strict=True):
        assert signal_of(line) == "metrics"
        request, points = metrics_request(line)
        assert request == want
        assert points == sum(
            len(getattr(m, m.WhichOneof("data")).data_points)
            for rm in request.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
        )
        assert points > 0


def test_metric_lines_with_hex_exemplar_ids_and_legacy_names() -> None:
    line = {
        "resourceMetrics": [
            {
                "resource": {"attributes": []},
                "instrumentationLibraryMetrics": [
                    {
                        "instrumentationLibrary": {"name": "old.lib"},
                        "metrics": [
                            {
                                "name": "requests",
                                "sum": {
                                    "aggregationTemporality": 2,
                                    "isMonotonic": True,
                                    "dataPoints": [
                                        {
                                            "asInt": "7",
                                            "timeUnixNano": 5,
                                            "exemplars": [
                                                {
                                                    "asDouble": 1.5,
                                                    "traceId": "5B8EFFF798038103D269B633813FC60C",
                                                    "spanId": "eee19b7ec3c1b174",
                                                }
                                            ],
                                        }
                                    ],
                                },
                            }
                        ],
                    }
                ],
            }
        ]
    }
    request, points = build_request("metrics", json.dumps(line).encode())
    assert points == 1
    scope_metrics = request.resource_metrics[0].scope_metrics[0]  # type: ignore[attr-defined]
    assert scope_metrics.scope.name == "old.lib"
    point = scope_metrics.metrics[0].sum.data_points[0]
    assert point.as_int == 7 and point.exemplars[0].span_id.hex() == "eee19b7ec3c1b174"
    assert point.exemplars[0].trace_id.hex() == "5b8efff798038103d269b633813fc60c"


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (b'{"resourceSpans": []}', "traces"),
        (b'  {"resourceMetrics":[]}', "metrics"),
        (b'{"resourceLogs": []}', "logs"),
        (b'{"schemaUrl": "", "resource_spans": []}', "traces"),
        (b"garbage", None),
        (b"[1]", None),
        (b'{"other": 1}', None),
    ],
)
def test_signal_of(line: bytes, kind: str | None) -> None:
    assert signal_of(line) == kind


@pytest.mark.parametrize(
    "line", [b"not json", b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz"}]}]}]}']
)
def test_invalid_trace_lines(line: bytes) -> None:
    with pytest.raises(InvalidLine):
        trace_request(line)


@pytest.mark.parametrize(
    "line", [b"not json", b"[]", b'{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"sum": 3}]}]}]}']
)
def test_invalid_metric_lines(line: bytes) -> None:
    with pytest.raises(InvalidLine):
        metrics_request(line)


def test_int_beyond_int64_is_sent_as_text() -> None:
    line = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "1" * 32,
                                "spanId": "2" * 16,
                                "name": "big",
                                "startTimeUnixNano": "1",
                                "endTimeUnixNano": "2",
                                "attributes": [{"key": "n", "value": {"intValue": str(1 << 70)}}],
                            }
                        ]
                    }
                ]
            }
        ]
    }
    request, _ = trace_request(json.dumps(line).encode())
    span = request.resource_spans[0].scope_spans[0].spans[0]
    assert MessageToDict(span.attributes[0].value) == {"stringValue": str(1 << 70)}
