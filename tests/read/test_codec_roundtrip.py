"""OTLP/JSON in, the same OTLP out: ``modeltel export --format otlp-json`` and ``modeltel replay``
held to protobuf, field for field, on random ``Export*ServiceRequest`` messages.

Each generated message is written as one OTLP/JSON line (protobuf's JSON mapping with enums as
integers and trace/span ids as hex, as the OTLP spec says) into a data dir; the real CLI exports
and replays it; what comes out is parsed by protobuf and compared as protobuf messages. Only what
the OTLP protos declare equivalent is normalised before comparing (:func:`normalised`).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from google.protobuf import text_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import MessageToDict, ParseDict
from google.protobuf.message import Message
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    EntityRef,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb_metrics
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1 import trace_pb2 as pb_trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource as SdkResource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, TraceFlags

from modeltel.formats import otlp
from modeltel.formats.protobuf import metrics_request, trace_request
from modeltel.formats.sdk_json import encode_metrics, encode_spans
from otlp_files import hex_to_base64
from otlp_receiver import Receiver, running_receiver
from reading_data import modeltel

Request = TypeVar("Request", ExportTraceServiceRequest, ExportMetricsServiceRequest)
_IDS = frozenset({"traceId", "spanId", "parentSpanId"})


# --- OTLP/JSON lines, comparison ----------------------------------------------------------------------
def _hex_ids(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: base64.b64decode(v).hex() if k in _IDS and isinstance(v, str) else _hex_ids(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids(v) for v in node]
    return node


def otlp_json(message: Message) -> str:
    """``message`` as the OTLP spec writes it: protobuf JSON, enums as integers, ids as hex."""
    return json.dumps(_hex_ids(MessageToDict(message, use_integers_for_enums=True)), separators=(",", ":"))


def parse_line(line: str | bytes, message: Request) -> Request:
    return ParseDict(hex_to_base64(json.loads(line)), message)


def _canonical_nans(message: Message) -> None:
    for field, value in message.ListFields():
        if field.type == FieldDescriptor.TYPE_DOUBLE:
            if field.is_repeated:
                values = [math.nan if math.isnan(v) else v for v in value]
                del value[:]
                value.extend(values)
            elif math.isnan(value):
                setattr(message, field.name, math.nan)


def _normalise(message: Message) -> None:
    """In place: see :func:`normalised`."""
    _canonical_nans(message)
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.is_repeated:
            for item in value:
                _normalise(item)
        else:
            _normalise(value)
            if field.containing_oneof is None and value.ByteSize() == 0:
                message.ClearField(field.name)


def normalised(request: Request) -> Request:
    """``request`` with what OTLP declares equivalent made equal.

    - An empty message field is the same as an absent one: "when InstrumentationScope isn't set, it
      is equivalent with an empty instrumentation scope", "when Status isn't set ... assume
      STATUS_CODE_UNSET", an AnyValue with nothing set "is considered to be empty", an absent
      resource is one with nothing known, exponential buckets with no counts hold nothing. A oneof
      member is kept even when empty: an empty array or a gauge without points is not nothing.
    - OTLP/JSON writes every NaN as ``"NaN"``: NaN payload bits are not carried.
    - Resource and scope blocks with no span or metric hold no telemetry: readers model spans and
      metrics (each with its resource and scope), not empty containers.
    """
    copy = type(request)()
    copy.CopyFrom(request)
    _normalise(copy)
    blocks = copy.resource_spans if isinstance(copy, ExportTraceServiceRequest) else copy.resource_metrics
    for block in blocks:
        scopes = block.scope_spans if isinstance(copy, ExportTraceServiceRequest) else block.scope_metrics
        kept = [s for s in scopes if (s.spans if isinstance(copy, ExportTraceServiceRequest) else s.metrics)]
        del scopes[:]
        scopes.extend(kept)
    kept_blocks = [
        b
        for b in blocks
        if (b.scope_spans if isinstance(copy, ExportTraceServiceRequest) else b.scope_metrics)
    ]
    del blocks[:]
    blocks.extend(kept_blocks)
    return copy


def assert_same(got: Message, want: Message) -> None:
    """Equal on the wire (so NaN == NaN and -0.0 != 0.0); the text form shows where they differ."""
    if got.SerializeToString(deterministic=True) != want.SerializeToString(deterministic=True):
        assert text_format.MessageToString(got) == text_format.MessageToString(want)
        raise AssertionError("equal as text, different on the wire")


def items(request: Message) -> int:
    """Spans, or metric data points: what a replay counts and sends."""
    if isinstance(request, ExportTraceServiceRequest):
        return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
    assert isinstance(request, ExportMetricsServiceRequest)
    return sum(
        len(getattr(m, m.WhichOneof("data")).data_points)
        for rm in request.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.WhichOneof("data")
    )


# --- the receiver -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as server:
        yield server


def write_data_dir(folder: Path, traces: list[str], metrics: list[str]) -> Path:
    for signal, lines in (("traces", traces), ("metrics", metrics)):
        day = folder / signal / "2026-01-01"
        day.mkdir(parents=True, exist_ok=True)
        (day / "x-1-1.jsonl").write_text("".join(line + "\n" for line in lines))
    return folder


def export_lines(data_dir: Path, out: Path, *args: str) -> list[str]:
    result = modeltel("export", "--format", "otlp-json", "-o", str(out), *args, str(data_dir))
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr, result.stderr
    # Not splitlines(): JSON leaves U+2028, U+0085 and the like unescaped, and only "\n" ends a line.
    return out.read_text(encoding="utf-8").split("\n")[:-1]


def replay_requests(
    receiver: Receiver, data_dir: Path
) -> tuple[list[ExportTraceServiceRequest], list[ExportMetricsServiceRequest]]:
    """What ``modeltel replay`` of ``data_dir`` POSTed, parsed: trace requests, metric requests."""
    receiver.bodies.clear()
    result = modeltel("replay", str(data_dir), "--endpoint", receiver.endpoint, "--protocol", "http/protobuf")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning" not in result.stderr and "skipped" not in result.stdout, result.stdout + result.stderr
    return receiver.requests("/v1/traces"), receiver.requests("/v1/metrics")


def merged(requests: list[Request], empty: Request) -> Request:
    """One request holding ``requests`` side by side, as a replay merges the lines of a batch."""
    for request in requests:
        empty.MergeFrom(request)
    return empty


# --- the observations these tests were written for -------------------------------------------------------
def _sdk_spans() -> list[Any]:
    """One span past every default limit (128): 200 attributes, 130 events, 130 links, 130 each inside."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=SdkResource.create({"service.name": "limits"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    remote = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0x00F067AA0BA902B7, True, TraceFlags(1))
    many = {f"k{i}": i for i in range(130)}
    # A full list keeps the newest: the link and the event with 130 attributes come last.
    links = [Link(remote) for _ in range(129)] + [Link(remote, many)]
    with provider.get_tracer("limits.scope").start_as_current_span("limited", links=links) as span:
        span.set_attributes({f"a{i}": i for i in range(200)})
        for i in range(129):
            span.add_event(f"e{i}")
        span.add_event("last", many)
    return list(exporter.get_finished_spans())


def test_export_and_replay_keep_dropped_counts_and_link_flags(receiver: Receiver, tmp_path: Path) -> None:
    line = encode_spans(_sdk_spans())
    data_dir = write_data_dir(tmp_path / "data", [line], [])
    want = parse_line(line, ExportTraceServiceRequest())
    span = want.resource_spans[0].scope_spans[0].spans[0]
    assert (span.dropped_attributes_count, span.dropped_events_count, span.dropped_links_count) == (72, 2, 2)
    assert span.events[-1].dropped_attributes_count == 2 and span.links[-1].dropped_attributes_count == 2
    assert span.links[-1].flags == 0x300
    (exported,) = export_lines(data_dir, tmp_path / "out.jsonl")
    assert_same(parse_line(exported, ExportTraceServiceRequest()), want)
    (sent,), _ = replay_requests(receiver, data_dir)
    assert_same(sent, want)


KEYLESS_TRACE = "5b8efff798038103d269b633813fc60c"
KEYLESS_LINE = {
    "resourceSpans": [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "file-exporter"}}]},
            "scopeSpans": [
                {
                    "scope": {"name": "lib"},
                    "spans": [
                        {
                            "traceId": KEYLESS_TRACE,
                            "spanId": "eee19b7ec3c1b174",
                            "name": "keyless",
                            "kind": 1,
                            "startTimeUnixNano": "1544712660000000000",
                            "endTimeUnixNano": "1544712661000000000",
                            "attributes": [{"value": {"stringValue": "x"}}],
                            "status": {},
                        }
                    ],
                }
            ],
        }
    ]
}


def test_an_attribute_without_a_key_is_read_by_every_command(receiver: Receiver, tmp_path: Path) -> None:
    """The Collector's ``file`` exporter writes such a key; protobuf reads it as ``""``: so does modeltel."""
    line = json.dumps(KEYLESS_LINE)
    data_dir = write_data_dir(tmp_path / "data", [line], [])
    want = parse_line(line, ExportTraceServiceRequest())
    assert want.resource_spans[0].scope_spans[0].spans[0].attributes[0].key == ""
    (exported,) = export_lines(data_dir, tmp_path / "out.jsonl")
    assert_same(parse_line(exported, ExportTraceServiceRequest()), want)
    rows = tmp_path / "rows.json"
    result = modeltel("export", "--format", "json", "-o", str(rows), str(data_dir))
    assert result.returncode == 0 and "skipped" not in result.stderr, result.stderr
    assert [row["name"] for row in json.loads(rows.read_text())] == ["keyless"]
    for command in (
        ("show", str(data_dir), "--trace", KEYLESS_TRACE, "--format", "json"),
        ("timeline", str(data_dir), "--trace", KEYLESS_TRACE, "-o", str(tmp_path / "t.html")),
    ):
        result = modeltel(*command)
        assert result.returncode == 0 and "skipped" not in result.stderr, (command, result.stderr)
    assert "keyless" in (tmp_path / "t.html").read_text()
    (sent,), _ = replay_requests(receiver, data_dir)
    assert_same(sent, want)


def _sdk_metrics_line() -> str:
    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=SdkResource.create({"service.name": "m"}), metric_readers=[reader])
    meter = provider.get_meter("m.scope", "1.0")
    meter.create_counter("c", unit="{task}").add(3, {"model": "sir"})
    meter.create_histogram("h", unit="s").record(0.5)
    meter.create_gauge("g").set(21.5)
    data = reader.get_metrics_data()
    assert data is not None
    return encode_metrics(data)


def test_export_writes_metric_lines_of_a_data_dir_and_of_metric_files(tmp_path: Path) -> None:
    metrics_line, trace_line = _sdk_metrics_line(), encode_spans(_sdk_spans())
    data_dir = write_data_dir(tmp_path / "data", [trace_line], [metrics_line])
    want = parse_line(metrics_line, ExportMetricsServiceRequest())
    exported = export_lines(data_dir, tmp_path / "out.jsonl")
    assert len(exported) == 2
    assert_same(
        parse_line(exported[0], ExportTraceServiceRequest()),
        parse_line(trace_line, ExportTraceServiceRequest()),
    )
    assert_same(parse_line(exported[1], ExportMetricsServiceRequest()), want)
    (metric_file,) = (data_dir / "metrics").glob("*/*.jsonl")
    (alone,) = export_lines(metric_file, tmp_path / "alone.jsonl")
    assert_same(parse_line(alone, ExportMetricsServiceRequest()), want)


# --- random requests ----------------------------------------------------------------------------------------
_T = TypeVar("_T")
INT64 = st.integers(-(2**63), 2**63 - 1) | st.sampled_from([-(2**63), 2**63 - 1, 0, -1])
UINT64 = st.integers(0, 2**64 - 1) | st.sampled_from([0, 2**64 - 1])
UINT32 = st.integers(0, 2**32 - 1)
SINT32 = st.integers(-(2**31), 2**31 - 1)
DOUBLES = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, -0.0, math.inf, -math.inf, math.nan]
)
TEXT = st.text(max_size=6) | st.sampled_from(["", "service.name", 'q"uote\\', "ünï ✓", "\x00\n"])
ENUM = st.integers(0, 3) | st.sampled_from([7])
"""Known values, and one no enum names yet: protobuf enums are open, so both must pass."""


def _some(strategy: st.SearchStrategy[_T], max_size: int) -> st.SearchStrategy[list[_T]]:
    """1 to ``max_size`` items, or none one time in four: empty blocks and point lists are covered
    without starving what is nested in them (plain ``st.lists`` keeps deep points rare)."""
    return st.integers(0, 3).flatmap(
        lambda k: st.just([]) if k == 0 else st.lists(strategy, min_size=1, max_size=max_size)
    )


def _optional(strategy: st.SearchStrategy[_T]) -> st.SearchStrategy[_T | None]:
    return st.none() | strategy


def _key_values(
    values: st.SearchStrategy[AnyValue | None], max_size: int = 3
) -> st.SearchStrategy[list[KeyValue]]:
    pairs = st.lists(st.tuples(TEXT, values), max_size=max_size, unique_by=lambda pair: pair[0])
    return pairs.map(lambda kv: [KeyValue(key=k) if v is None else KeyValue(key=k, value=v) for k, v in kv])


_SCALARS = st.one_of(
    st.builds(AnyValue),
    TEXT.map(lambda v: AnyValue(string_value=v)),
    st.booleans().map(lambda v: AnyValue(bool_value=v)),
    INT64.map(lambda v: AnyValue(int_value=v)),
    DOUBLES.map(lambda v: AnyValue(double_value=v)),
    st.binary(max_size=6).map(lambda v: AnyValue(bytes_value=v)),
)
ANY_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda vs: AnyValue(array_value=ArrayValue(values=vs))),
        _key_values(inner).map(lambda kvs: AnyValue(kvlist_value=KeyValueList(values=kvs))),
    ),
    max_leaves=5,
)
ATTRIBUTES = _key_values(_optional(ANY_VALUES))
TRACE_IDS = st.binary(min_size=16, max_size=16)
SPAN_IDS = st.binary(min_size=8, max_size=8)

RESOURCES = _optional(
    st.builds(
        Resource,
        attributes=ATTRIBUTES,
        dropped_attributes_count=UINT32,
        entity_refs=st.lists(
            st.builds(
                EntityRef,
                schema_url=TEXT,
                type=TEXT,
                id_keys=st.lists(TEXT, max_size=2),
                description_keys=st.lists(TEXT, max_size=2),
            ),
            max_size=2,
        ),
    )
)
SCOPES = _optional(
    st.builds(
        InstrumentationScope, name=TEXT, version=TEXT, attributes=ATTRIBUTES, dropped_attributes_count=UINT32
    )
)
SPANS = st.builds(
    pb_trace.Span,
    trace_id=TRACE_IDS,
    span_id=SPAN_IDS,
    trace_state=TEXT,
    parent_span_id=st.just(b"") | SPAN_IDS,
    flags=UINT32,
    name=TEXT,
    kind=ENUM,
    start_time_unix_nano=UINT64,
    end_time_unix_nano=UINT64,
    attributes=ATTRIBUTES,
    dropped_attributes_count=UINT32,
    events=st.lists(
        st.builds(
            pb_trace.Span.Event,
            time_unix_nano=UINT64,
            name=TEXT,
            attributes=ATTRIBUTES,
            dropped_attributes_count=UINT32,
        ),
        max_size=2,
    ),
    dropped_events_count=UINT32,
    links=st.lists(
        st.builds(
            pb_trace.Span.Link,
            trace_id=TRACE_IDS,
            span_id=SPAN_IDS,
            trace_state=TEXT,
            attributes=ATTRIBUTES,
            dropped_attributes_count=UINT32,
            flags=UINT32,
        ),
        max_size=2,
    ),
    dropped_links_count=UINT32,
    status=_optional(st.builds(pb_trace.Status, message=TEXT, code=ENUM)),
)


def _block(message: type[Message], **fields: Any) -> st.SearchStrategy[Message]:
    """``message(**fields)`` leaving out the fields drawn as None (unset, not empty)."""
    return st.fixed_dictionaries(fields).map(
        lambda f: message(**{k: v for k, v in f.items() if v is not None})
    )


TRACE_REQUESTS = st.builds(
    ExportTraceServiceRequest,
    resource_spans=st.lists(
        _block(
            pb_trace.ResourceSpans,
            resource=RESOURCES,
            schema_url=TEXT,
            scope_spans=_some(
                _block(pb_trace.ScopeSpans, scope=SCOPES, schema_url=TEXT, spans=_some(SPANS, 3)), 2
            ),
        ),
        min_size=1,
        max_size=2,
    ),
)


def _with_value(message: type[Message], **fields: Any) -> st.SearchStrategy[Message]:
    """A point or exemplar whose ``value`` oneof is unset, ``as_int`` or ``as_double``."""
    value = st.none() | INT64.map(lambda v: ("as_int", v)) | DOUBLES.map(lambda v: ("as_double", v))
    return st.tuples(st.fixed_dictionaries(fields), value).map(
        lambda fv: message(**fv[0], **({} if fv[1] is None else {fv[1][0]: fv[1][1]}))
    )


EXEMPLARS = st.lists(
    _with_value(
        pb_metrics.Exemplar,
        filtered_attributes=ATTRIBUTES,
        time_unix_nano=UINT64,
        span_id=st.just(b"") | SPAN_IDS,
        trace_id=st.just(b"") | TRACE_IDS,
    ),
    max_size=2,
)
_POINT = {"attributes": ATTRIBUTES, "start_time_unix_nano": UINT64, "time_unix_nano": UINT64, "flags": UINT32}
NUMBER_POINTS = _some(_with_value(pb_metrics.NumberDataPoint, exemplars=EXEMPLARS, **_POINT), 2)
HISTOGRAM_POINTS = _some(
    _block(
        pb_metrics.HistogramDataPoint,
        count=UINT64,
        sum=_optional(DOUBLES),
        bucket_counts=st.lists(UINT64, max_size=3),
        explicit_bounds=st.lists(DOUBLES, max_size=2),
        exemplars=EXEMPLARS,
        min=_optional(DOUBLES),
        max=_optional(DOUBLES),
        **_POINT,
    ),
    2,
)
BUCKETS = _optional(
    st.builds(
        pb_metrics.ExponentialHistogramDataPoint.Buckets,
        offset=SINT32,
        bucket_counts=st.lists(UINT64, max_size=3),
    )
)
EXPONENTIAL_POINTS = _some(
    _block(
        pb_metrics.ExponentialHistogramDataPoint,
        count=UINT64,
        sum=_optional(DOUBLES),
        scale=SINT32,
        zero_count=UINT64,
        positive=BUCKETS,
        negative=BUCKETS,
        exemplars=EXEMPLARS,
        min=_optional(DOUBLES),
        max=_optional(DOUBLES),
        zero_threshold=DOUBLES,
        **_POINT,
    ),
    2,
)
SUMMARY_POINTS = _some(
    st.builds(
        pb_metrics.SummaryDataPoint,
        count=UINT64,
        sum=DOUBLES,
        quantile_values=st.lists(
            st.builds(pb_metrics.SummaryDataPoint.ValueAtQuantile, quantile=DOUBLES, value=DOUBLES),
            max_size=2,
        ),
        **_POINT,
    ),
    2,
)
DATA = st.one_of(
    st.none(),
    st.builds(pb_metrics.Gauge, data_points=NUMBER_POINTS).map(lambda d: {"gauge": d}),
    st.builds(
        pb_metrics.Sum, data_points=NUMBER_POINTS, aggregation_temporality=ENUM, is_monotonic=st.booleans()
    ).map(lambda d: {"sum": d}),
    st.builds(pb_metrics.Histogram, data_points=HISTOGRAM_POINTS, aggregation_temporality=ENUM).map(
        lambda d: {"histogram": d}
    ),
    st.builds(
        pb_metrics.ExponentialHistogram, data_points=EXPONENTIAL_POINTS, aggregation_temporality=ENUM
    ).map(lambda d: {"exponential_histogram": d}),
    st.builds(pb_metrics.Summary, data_points=SUMMARY_POINTS).map(lambda d: {"summary": d}),
)
METRICS = st.tuples(
    st.fixed_dictionaries({"name": TEXT, "description": TEXT, "unit": TEXT, "metadata": ATTRIBUTES}), DATA
).map(lambda fd: pb_metrics.Metric(**fd[0], **(fd[1] or {})))
METRIC_REQUESTS = st.builds(
    ExportMetricsServiceRequest,
    resource_metrics=st.lists(
        _block(
            pb_metrics.ResourceMetrics,
            resource=RESOURCES,
            schema_url=TEXT,
            scope_metrics=_some(
                _block(
                    pb_metrics.ScopeMetrics,
                    scope=SCOPES,
                    schema_url=TEXT,
                    metrics=_some(METRICS, 3),
                ),
                2,
            ),
        ),
        min_size=1,
        max_size=2,
    ),
)

IN_PROCESS = settings(max_examples=150, derandomize=True, database=None, deadline=None)
THROUGH_THE_CLI = settings(
    max_examples=12,
    derandomize=True,
    database=None,
    deadline=None,
    # No shrinking: each step would run the CLI again. The in-process tests above shrink the same
    # strategies, so a codec bug shows there as a minimal example.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
BATCH = 8
"""Requests per CLI run: one ``modeltel`` process per example, not per request."""


# --- the codec in this process (many examples, cheap) ---------------------------------------------------
def test_trace_requests_through_the_codec() -> None:
    """OTLP/JSON → reader → OTLP/JSON, and → protobuf: equal to the request, for every field."""
    seen: set[str] = set()

    @IN_PROCESS
    @given(TRACE_REQUESTS)
    def round_trip(request: ExportTraceServiceRequest) -> None:
        _reached(request, seen)
        line = otlp_json(request).encode()
        want = normalised(request)
        again = json.dumps(otlp.encode_request(otlp.decode_line(line)))
        assert_same(normalised(parse_line(again, ExportTraceServiceRequest())), want)
        sent, count = trace_request(line)
        assert count == items(request)
        assert_same(normalised(sent), want)

    round_trip()
    assert_reached_everything(ExportTraceServiceRequest, seen)


def test_metric_requests_through_the_codec() -> None:
    seen: set[str] = set()

    @IN_PROCESS
    @given(METRIC_REQUESTS)
    def round_trip(request: ExportMetricsServiceRequest) -> None:
        _reached(request, seen)
        line = otlp_json(request).encode()
        want = normalised(request)
        again = json.dumps(otlp.encode_metrics_request(otlp.decode_metrics_line(line)))
        assert_same(normalised(parse_line(again, ExportMetricsServiceRequest())), want)
        sent, count = metrics_request(line)
        assert count == items(request)
        assert_same(normalised(sent), want)

    round_trip()
    assert_reached_everything(ExportMetricsServiceRequest, seen)


# --- the real commands (batches of requests per run) ---------------------------------------------------
def _has_metric(request: Message) -> bool:
    return isinstance(request, ExportMetricsServiceRequest) and any(
        sm.metrics for rm in request.resource_metrics for sm in rm.scope_metrics
    )


@THROUGH_THE_CLI
@given(
    st.lists(TRACE_REQUESTS, min_size=1, max_size=BATCH),
    st.lists(METRIC_REQUESTS, min_size=1, max_size=BATCH),
)
def test_export_writes_back_every_request(
    tmp_path_factory: pytest.TempPathFactory,
    traces: list[ExportTraceServiceRequest],
    metrics: list[ExportMetricsServiceRequest],
) -> None:
    """Each line with a span or a metric comes out as one line, equal to it as a protobuf message."""
    folder = tmp_path_factory.mktemp("export")
    data_dir = write_data_dir(
        folder / "data", [otlp_json(r) for r in traces], [otlp_json(r) for r in metrics]
    )
    lines = export_lines(data_dir, folder / "out.jsonl")
    want_traces = [r for r in traces if items(normalised(r))]
    want_metrics = [r for r in metrics if _has_metric(normalised(r))]
    assert len(lines) == len(want_traces) + len(want_metrics)
    for line, request in zip(lines[: len(want_traces)], want_traces, strict=True):
        assert_same(normalised(parse_line(line, ExportTraceServiceRequest())), normalised(request))
    for line, metric_request in zip(lines[len(want_traces) :], want_metrics, strict=True):
        assert_same(normalised(parse_line(line, ExportMetricsServiceRequest())), normalised(metric_request))


@THROUGH_THE_CLI
@given(
    st.lists(TRACE_REQUESTS, min_size=1, max_size=BATCH),
    st.lists(METRIC_REQUESTS, min_size=1, max_size=BATCH),
)
def test_replay_sends_every_request(
    receiver: Receiver,
    tmp_path_factory: pytest.TempPathFactory,
    traces: list[ExportTraceServiceRequest],
    metrics: list[ExportMetricsServiceRequest],
) -> None:
    """What the receiver gets, batches merged, is every line with a span or data point, unchanged."""
    folder = tmp_path_factory.mktemp("replay")
    data_dir = write_data_dir(
        folder / "data", [otlp_json(r) for r in traces], [otlp_json(r) for r in metrics]
    )
    trace_requests, metric_requests = replay_requests(receiver, data_dir)
    got_traces = merged(trace_requests, ExportTraceServiceRequest())
    want_traces = merged([r for r in traces if items(r)], ExportTraceServiceRequest())
    assert_same(normalised(got_traces), normalised(want_traces))
    got_metrics = merged(metric_requests, ExportMetricsServiceRequest())
    want_metrics = merged([r for r in metrics if items(r)], ExportMetricsServiceRequest())
    assert_same(normalised(got_metrics), normalised(want_metrics))


# --- what the examples reached ----------------------------------------------------------------------------
_PROFILES_ONLY = frozenset(
    {
        "opentelemetry.proto.common.v1.KeyValue.key_strindex",
        "opentelemetry.proto.common.v1.AnyValue.string_value_strindex",
    }
)
"""Read as absent outside the Profiles signal (common.proto), so never generated."""


def _declared(descriptor: Any, out: set[str]) -> set[str]:
    for field in descriptor.fields:
        if field.full_name not in out:
            out.add(field.full_name)
            if field.message_type is not None:
                _declared(field.message_type, out)
    return out


def _reached(message: Message, out: set[str]) -> None:
    for field, value in message.ListFields():
        out.add(field.full_name)
        values = value if field.is_repeated else [value]
        if field.message_type is not None:
            for item in values:
                _reached(item, out)
        elif field.type == FieldDescriptor.TYPE_DOUBLE:
            out.update(_edge(v) for v in values)
        elif field.full_name.endswith("AnyValue.int_value") and value in (-(2**63), 2**63 - 1):
            out.add("int64 extreme")
    if isinstance(message, KeyValue) and not message.key:
        out.add("empty key")


def _edge(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf"
    return "-0" if value == 0 and math.copysign(1.0, value) < 0 else "double"


def assert_reached_everything(request: type[Message], seen: set[str]) -> None:
    """Guards a round trip against passing vacuously: the examples set every field of the proto
    (but the Profiles-only ones) and met the edges of the encoding."""
    assert _declared(request.DESCRIPTOR, set()) - _PROFILES_ONLY - seen == set()
    assert {"NaN", "inf", "-0", "int64 extreme", "empty key"} <= seen
