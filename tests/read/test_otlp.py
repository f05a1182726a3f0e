"""Decoding any valid OTLP/JSON, and re-encoding it canonically (checked by the official protobuf)."""

from __future__ import annotations

import base64
import json
import math

import pytest
from google.protobuf.json_format import ParseDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from modeltel.formats.otlp import InvalidRequest, decode_line, decode_request, encode_request
from otlp_files import hex_to_base64
from reading_data import COLLECTOR_LINES, COLLECTOR_TRACE


def test_collector_style_lines_decode() -> None:
    spans = [s for line in COLLECTOR_LINES for s in decode_request(line)]
    chat, retrieve, second = spans
    assert chat.trace_id == COLLECTOR_TRACE and chat.span_id == "eee19b7ec3c1b174"
    assert (chat.start_ns, chat.end_ns, chat.kind, chat.status_code) == (
        1544712660000000000,
        1544712661000000000,
        3,
        0,
    )
    assert chat.attributes["gen_ai.usage.input_tokens"] == 120
    assert chat.scope.name == "legacy.lib" and chat.scope.version == "0.9"
    assert chat.resource.service_name == "collector-svc"
    assert retrieve.parent_span_id == "eee19b7ec3c1b174"
    assert (retrieve.status_code, retrieve.status_message, retrieve.kind) == (2, "timeout", 0)
    assert retrieve.attributes == {} and retrieve.events == []
    assert (second.kind, second.status_code, second.attributes["gen_ai.usage.output_tokens"]) == (3, 1, 90)
    assert second.events[0].name == "first token" and second.events[0].time_ns == 1544712662000000000


def test_values_of_every_type() -> None:
    values = [
        {"key": "s", "value": {"stringValue": "x"}},
        {"key": "b", "value": {"boolValue": True}},
        {"key": "i", "value": {"intValue": "-9007199254740993"}},
        {"key": "d", "value": {"doubleValue": 1}},
        {"key": "nan", "value": {"doubleValue": "NaN"}},
        {"key": "inf", "value": {"doubleValue": "-Infinity"}},
        {"key": "bytes", "value": {"bytesValue": base64.b64encode(b"\x00\x01").decode()}},
        {"key": "arr", "value": {"arrayValue": {"values": [{"intValue": 1}, {"stringValue": "a"}]}}},
        {"key": "kv", "value": {"kvlistValue": {"values": [{"key": "k", "value": {"boolValue": False}}]}}},
        {"key": "empty", "value": {}},
    ]
    request = {"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": base64.b64encode(bytes(range(16))).decode(), "spanId": "AQIDBAUGBwg=", "name": "n",
         "startTimeUnixNano": "1", "endTimeUnixNano": "2", "attributes": values}
    ]}]}]}  # fmt: skip
    (span,) = decode_request(request)
    assert span.trace_id == bytes(range(16)).hex() and span.span_id == "0102030405060708"
    a = span.attributes
    assert (a["s"], a["b"], a["i"], a["d"]) == ("x", True, -9007199254740993, 1.0) and isinstance(
        a["d"], float
    )
    assert math.isnan(a["nan"]) and a["inf"] == -math.inf
    assert (
        a["bytes"] == b"\x00\x01" and a["arr"] == [1, "a"] and a["kv"] == {"k": False} and a["empty"] is None
    )


@pytest.mark.parametrize(
    "line,reason",
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz"}]}]}]}',
            "traceId is not a 16-byte id",
        ),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}',
            "not an integer",
        ),
        (b'{"resourceSpans": 5}', "resourceSpans is not a list"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [7]}]}]}', "span is not an object"),
    ],
)
def test_invalid_lines_say_why(line: bytes, reason: str) -> None:
    with pytest.raises(InvalidRequest, match=reason):
        decode_line(line)


def test_metrics_lines_and_empty_requests_have_no_spans() -> None:
    assert decode_line(b'{"resourceMetrics": [{"scopeMetrics": []}]}') == []
    assert decode_line(b"{}") == []


def test_re_encoding_is_canonical_and_valid_for_protobuf() -> None:
    spans = [s for line in COLLECTOR_LINES for s in decode_request(line)]
    encoded = encode_request(spans)
    text = json.dumps(encoded)
    assert "instrumentationLibrary" not in text and COLLECTOR_TRACE.upper() not in text
    message = ParseDict(hex_to_base64(encoded), ExportTraceServiceRequest())
    decoded = [s for rs in message.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert [s.name for s in decoded] == ["chat gpt-4o", "retrieve", "chat gpt-4o"]
    assert decoded[0].start_time_unix_nano == 1544712660000000000
    assert (
        encoded["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["startTimeUnixNano"] == "1544712660000000000"
    )
    assert decode_request(json.loads(text)) == spans


FULL_SPAN_LINE = {
    "resourceSpans": [
        {
            "resource": {
                "attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}],
                "droppedAttributesCount": 3,
            },
            "scopeSpans": [
                {
                    "scope": {
                        "name": "lib",
                        "version": "1.2",
                        "attributes": [{"key": "scope.kind", "value": {"stringValue": "x"}}],
                        "droppedAttributesCount": 4,
                    },
                    "spans": [
                        {
                            "traceId": "5b8efff798038103d269b633813fc60c",
                            "spanId": "eee19b7ec3c1b174",
                            "traceState": "vendor=v1",
                            "parentSpanId": "0102030405060708",
                            "name": "run",
                            "kind": 2,
                            "startTimeUnixNano": "1544712660000000000",
                            "endTimeUnixNano": "1544712661000000000",
                            "attributes": [{"key": "a", "value": {"intValue": "1"}}],
                            "droppedAttributesCount": 72,
                            "events": [
                                {
                                    "timeUnixNano": "1544712660500000000",
                                    "name": "e",
                                    "attributes": [],
                                    "droppedAttributesCount": 5,
                                }
                            ],
                            "droppedEventsCount": 6,
                            "links": [
                                {
                                    "traceId": "0af7651916cd43dd8448eb211c80319c",
                                    "spanId": "00f067aa0ba902b7",
                                    "traceState": "other=o1",
                                    "attributes": [],
                                    "droppedAttributesCount": 7,
                                    "flags": 769,
                                }
                            ],
                            "droppedLinksCount": 8,
                            "status": {"code": 2, "message": "boom"},
                            "flags": 257,
                        }
                    ],
                    "schemaUrl": "https://scope/1",
                }
            ],
            "schemaUrl": "https://resource/1",
        }
    ]
}


def test_every_span_field_survives_decoding_and_re_encoding() -> None:
    """Dropped counts, flags, trace states, scope and resource details: none is lost on the way."""
    spans = decode_request(FULL_SPAN_LINE)
    assert encode_request(spans) == FULL_SPAN_LINE
    (span,) = spans
    assert (span.dropped_attributes_count, span.dropped_events_count, span.dropped_links_count) == (72, 6, 8)
    assert span.events[0].dropped_attributes_count == 5
    assert (span.links[0].flags, span.links[0].dropped_attributes_count) == (769, 7)
    assert (span.resource.dropped_attributes_count, span.scope.dropped_attributes_count) == (3, 4)


def test_an_attribute_without_a_key_has_the_empty_key() -> None:
    """Protobuf reads a ``KeyValue`` with no ``key`` as key ``""``; so does the reader, and keeps it."""
    line = json.loads(json.dumps(FULL_SPAN_LINE))
    span_node = line["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span_node["attributes"] = [{"value": {"stringValue": "x"}}, {"key": "k"}]
    (span,) = decode_request(line)
    assert span.attributes == {"": "x", "k": None}
    again = encode_request([span])["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"]
    assert again == [{"key": "", "value": {"stringValue": "x"}}, {"key": "k", "value": {}}]
    message = ParseDict(hex_to_base64(line), ExportTraceServiceRequest())
    assert [kv.key for kv in message.resource_spans[0].scope_spans[0].spans[0].attributes] == ["", "k"]


def test_profiles_string_indexes_are_read_as_absent() -> None:
    """``*_strindex`` point into the Profiles dictionary; other signals read them as absent (common.proto)."""
    line = json.loads(json.dumps(FULL_SPAN_LINE))
    span_node = line["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span_node["attributes"] = [{"key": "k", "keyStrindex": 3, "value": {"stringValueStrindex": 4}}]
    (span,) = decode_request(line)
    assert span.attributes == {"k": None}
