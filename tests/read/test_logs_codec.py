"""OTLP/JSON logs in, the same logs out: the codec, ``modeltel export --format otlp-json`` and
``modeltel replay --signals logs`` held to protobuf, field for field.

The discipline of ``test_codec_roundtrip.py`` (same strategies for values, resources and scopes,
same comparison) applied to ``ExportLogsServiceRequest``: random requests through the codec in
this process, batches of them through the real commands, and records made by the SDK's own
logging pipeline and encoder, as producers in the wild write them (enum names, base64 ids).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1 import logs_pb2 as pb_logs

from logs_data import sdk_log_request
from modeltel.formats import MAX_NESTING, otlp
from modeltel.formats.protobuf import InvalidLine, logs_request
from otlp_files import hex_to_base64
from otlp_receiver import Receiver, running_receiver
from read.test_codec_roundtrip import (
    ANY_VALUES,
    ATTRIBUTES,
    IN_PROCESS,
    RESOURCES,
    SCOPES,
    SPAN_IDS,
    TEXT,
    THROUGH_THE_CLI,
    TRACE_IDS,
    UINT32,
    UINT64,
    _block,
    _normalise,
    _optional,
    _some,
    assert_reached_everything,
    assert_same,
    otlp_json,
)
from read.test_codec_roundtrip import _reached as reached
from reading_data import modeltel

SEVERITIES = st.integers(0, 24) | st.sampled_from([25, 2**31 - 1, -1])
"""The data model's 0 to 24, and values no name covers: protobuf enums are open."""
LOG_RECORDS = st.builds(
    pb_logs.LogRecord,
    time_unix_nano=UINT64,
    observed_time_unix_nano=UINT64,
    severity_number=SEVERITIES,
    severity_text=TEXT,
    body=_optional(ANY_VALUES),
    attributes=ATTRIBUTES,
    dropped_attributes_count=UINT32,
    flags=UINT32,
    trace_id=st.just(b"") | TRACE_IDS,
    span_id=st.just(b"") | SPAN_IDS,
    event_name=TEXT,
)
LOG_REQUESTS = st.builds(
    ExportLogsServiceRequest,
    resource_logs=st.lists(
        _block(
            pb_logs.ResourceLogs,
            resource=RESOURCES,
            schema_url=TEXT,
            scope_logs=_some(
                _block(pb_logs.ScopeLogs, scope=SCOPES, schema_url=TEXT, log_records=_some(LOG_RECORDS, 3)),
                2,
            ),
        ),
        min_size=1,
        max_size=2,
    ),
)


def parse_logs(line: str | bytes) -> ExportLogsServiceRequest:
    from google.protobuf.json_format import ParseDict

    return ParseDict(hex_to_base64(json.loads(line)), ExportLogsServiceRequest())


def normalised(request: ExportLogsServiceRequest) -> ExportLogsServiceRequest:
    """As ``test_codec_roundtrip.normalised``: empty message fields are absent ones (an empty body
    is no body), and resource and scope blocks holding no record are left out."""
    copy = ExportLogsServiceRequest()
    copy.CopyFrom(request)
    _normalise(copy)
    for block in copy.resource_logs:
        kept = [scope for scope in block.scope_logs if scope.log_records]
        del block.scope_logs[:]
        block.scope_logs.extend(kept)
    blocks = [block for block in copy.resource_logs if block.scope_logs]
    del copy.resource_logs[:]
    copy.resource_logs.extend(blocks)
    return copy


def records(request: ExportLogsServiceRequest) -> int:
    return sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)


def merged(requests: list[ExportLogsServiceRequest]) -> ExportLogsServiceRequest:
    out = ExportLogsServiceRequest()
    for request in requests:
        out.MergeFrom(request)
    return out


# --- the codec in this process ---------------------------------------------------------------------------
def test_log_requests_through_the_codec() -> None:
    """OTLP/JSON → reader → OTLP/JSON, and → protobuf: equal to the request, for every field."""
    seen: set[str] = set()

    @IN_PROCESS
    @given(LOG_REQUESTS)
    def round_trip(request: ExportLogsServiceRequest) -> None:
        reached(request, seen)
        line = otlp_json(request).encode()
        want = normalised(request)
        again = json.dumps(otlp.encode_logs_request(otlp.decode_logs_line(line)))
        assert_same(normalised(parse_logs(again)), want)
        sent, count = logs_request(line)
        assert count == records(request)
        assert_same(normalised(sent), want)

    round_trip()
    assert_reached_everything(ExportLogsServiceRequest, seen)


def test_records_the_sdk_writes_are_read_with_every_field() -> None:
    """The SDK's encoder through protobuf's default JSON (enum names, base64 ids): the producers'
    form, not ours."""
    request, span = sdk_log_request()
    document = MessageToDict(request)
    assert document["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["severityNumber"] == (
        "SEVERITY_NUMBER_INFO"
    )
    decoded = otlp.decode_logs_line(json.dumps(document).encode())
    assert [r.body for r in decoded] == ["loaded 3 rows", "outside any span", "fit failed"]
    assert [r.severity_number for r in decoded] == [9, 13, 17]
    info, outside, error = decoded
    assert (info.trace_id, info.span_id) == (f"{span.trace_id:032x}", f"{span.span_id:016x}")
    assert info.flags == span.trace_flags and outside.trace_id == outside.span_id == "" and outside.flags == 0
    assert info.scope.name == "app.data" and error.scope.name == "app.fit"
    assert info.resource is error.resource
    assert info.resource.attributes["service.name"] == "logs-svc"
    assert info.resource.attributes["process.pid"] == 4242
    assert error.attributes["exception.type"] == "ZeroDivisionError"
    assert info.time_ns > 0 and info.observed_ns >= info.time_ns and info.when_ns == info.time_ns
    assert_same(normalised(logs_request(json.dumps(document).encode())[0]), normalised(request))


COLLECTOR_LOG = {
    "resource_logs": [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"string_value": "legacy"}}]},
            "instrumentationLibraryLogs": [
                {
                    "instrumentationLibrary": {"name": "old.lib"},
                    "logRecords": [
                        {
                            "observed_time_unix_nano": 1700000000000000000,
                            "severity_number": "SEVERITY_NUMBER_WARN2",
                            "severityText": "Warning",
                            "body": {"kvlistValue": {"values": [{"key": "event", "value": {"intValue": 7}}]}},
                            "traceId": "5B8EFFF798038103D269B633813FC60C",
                            "span_id": "7hGbfsPBsXQ=",
                            "event_name": "device.app.lifecycle",
                        }
                    ],
                }
            ],
        }
    ]
}


def test_other_producers_spellings_are_read() -> None:
    """Proto field names, ``instrumentationLibraryLogs``, enum names, upper-case and base64 ids,
    integers as numbers, no ``timeUnixNano`` (the observed time stands in)."""
    (record,) = otlp.decode_any(json.dumps(COLLECTOR_LOG).encode()).logs
    assert record.severity_number == 14 and record.severity_text == "Warning"
    assert record.body == {"event": 7}
    assert record.trace_id == "5b8efff798038103d269b633813fc60c"
    assert record.span_id == "ee119b7ec3c1b174"
    assert record.time_ns == 0 and record.when_ns == 1700000000000000000
    assert record.scope.name == "old.lib" and record.resource.service_name == "legacy"
    assert record.event_name == "device.app.lifecycle"
    assert otlp.signal_of(json.dumps(COLLECTOR_LOG).encode()) == "logs"


def _log_line(**fields: Any) -> bytes:
    record = {"timeUnixNano": "1700000000000000000", "body": {"stringValue": "x"}, **fields}
    return json.dumps(
        {"resourceLogs": [{"resource": {}, "scopeLogs": [{"scope": {}, "logRecords": [record]}]}]}
    ).encode()


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"traceId": "xyz"}, "traceId is not a 16-byte id: 'xyz'"),
        ({"spanId": "00"}, "spanId is not a 8-byte id: '00'"),
        ({"timeUnixNano": "soon"}, "timeUnixNano is not an integer: 'soon'"),
        ({"observedTimeUnixNano": str(2**64)}, "observedTimeUnixNano out of range"),
        ({"severityNumber": "LOUD"}, "severityNumber is not an integer: 'LOUD'"),
        (
            {"body": json.loads('{"arrayValue":{"values":[' * 40 + "{}" + "]}}" * 40)},
            f"nested deeper than {MAX_NESTING} levels",
        ),
        ({"body": {"mystery": 1}}, "unknown attribute value type 'mystery'"),
    ],
)
def test_a_bad_field_is_a_bad_line_naming_it(fields: dict[str, Any], reason: str) -> None:
    with pytest.raises(otlp.InvalidRequest, match=reason.replace("(", r"\(").replace(")", r"\)")):
        otlp.decode_logs_line(_log_line(**fields))
    with pytest.raises(InvalidLine):
        logs_request(_log_line(**fields))


def test_a_line_of_another_signal_holds_no_record() -> None:
    assert otlp.decode_logs_line(b'{"resourceSpans": []}') == []
    assert otlp.decode_any(_log_line()).signal == "logs"


def test_a_severity_protobuf_cannot_hold_is_a_bad_line_for_replay() -> None:
    with pytest.raises(InvalidLine, match="not an OTLP logs request"):
        logs_request(_log_line(severityNumber=2**40))


# --- the real commands ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as server:
        yield server


def _data_dir(folder: Path, lines: list[str]) -> Path:
    day = folder / "logs" / "2026-01-01"
    day.mkdir(parents=True)
    (day / "x-1-1.jsonl").write_text("".join(line + "\n" for line in lines))
    return folder


@THROUGH_THE_CLI
@given(st.lists(LOG_REQUESTS, min_size=1, max_size=8))
def test_export_writes_back_every_log_request(
    tmp_path_factory: pytest.TempPathFactory, requests: list[ExportLogsServiceRequest]
) -> None:
    folder = tmp_path_factory.mktemp("export-logs")
    data_dir = _data_dir(folder / "data", [otlp_json(r) for r in requests])
    out = folder / "out.jsonl"
    result = modeltel("export", "--format", "otlp-json", "-o", str(out), str(data_dir))
    assert result.returncode == 0 and "warning" not in result.stderr, result.stderr
    lines = out.read_text(encoding="utf-8").split("\n")[:-1]
    wanted = [r for r in requests if records(normalised(r))]
    assert len(lines) == len(wanted)
    for line, request in zip(lines, wanted, strict=True):
        assert_same(normalised(parse_logs(line)), normalised(request))


@THROUGH_THE_CLI
@given(st.lists(LOG_REQUESTS, min_size=1, max_size=8))
def test_replay_sends_every_log_request(
    receiver: Receiver, tmp_path_factory: pytest.TempPathFactory, requests: list[ExportLogsServiceRequest]
) -> None:
    folder = tmp_path_factory.mktemp("replay-logs")
    data_dir = _data_dir(folder / "data", [otlp_json(r) for r in requests])
    receiver.bodies.clear()
    result = modeltel(
        "replay", str(data_dir), "--signals", "logs", "--endpoint", receiver.endpoint,
        "--protocol", "http/protobuf",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning" not in result.stderr and "skipped" not in result.stdout, result.stdout + result.stderr
    got = merged(receiver.requests("/v1/logs"))
    assert_same(normalised(got), normalised(merged([r for r in requests if records(r)])))
    assert f"{sum(records(r) for r in requests):,} log records sent" in result.stdout or not any(
        records(r) for r in requests
    )
