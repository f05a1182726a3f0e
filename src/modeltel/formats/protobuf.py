"""Stored OTLP/JSON lines as the protobuf requests an OTLP receiver takes: the reader's model → protobuf.

Every line goes through the reader (:mod:`modeltel.formats.otlp`), so replay accepts exactly what
every other command accepts (upper-case or base64 ids, integers as numbers or strings, enum names,
``instrumentationLibrary*``) and sends every field the reader keeps, which is every field of the
trace, metric and log protos (that module's docstring says what is equivalent rather than kept). That is
about six times faster than protobuf's JSON parser, which matters for millions of spans. Resource
and scope blocks are sent grouped as the line grouped them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, TypeVar

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
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
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord as PbLogRecord
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as PbResource
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from modeltel.formats.otlp import (
    AttributeValue,
    Event,
    Exemplar,
    ExponentialHistogramPoint,
    HistogramPoint,
    InvalidRequest,
    LineKind,
    Link,
    LogRecord,
    Metric,
    NumberPoint,
    Point,
    Resource,
    Scope,
    Span,
    SummaryPoint,
    data_points,
    decode_line,
    decode_logs_line,
    decode_metrics_line,
    groups,
    signal_of,
)

Signal = Literal["traces", "metrics", "logs"]
SIGNALS: tuple[Signal, ...] = ("traces", "metrics", "logs")
__all__ = [
    "SIGNALS",
    "InvalidLine",
    "LineKind",
    "Signal",
    "build_request",
    "logs_message",
    "logs_request",
    "metrics_request",
    "signal_of",
    "spans_request",
    "trace_request",
]
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class InvalidLine(ValueError):
    """A line that is not a valid OTLP/JSON request of the signal being replayed."""


_Item = TypeVar("_Item")
_Request = TypeVar("_Request", bound=Message)


def build_request(signal: Signal, line: bytes) -> tuple[Message, int]:
    """The request for one line and how many items it holds (spans, metric data points, log records)."""
    if signal == "traces":
        return trace_request(line)
    if signal == "logs":
        return logs_request(line)
    return metrics_request(line)


def trace_request(line: bytes) -> tuple[ExportTraceServiceRequest, int]:
    """An ``ExportTraceServiceRequest`` with the spans of one line, grouped as the line grouped them."""
    return _request(line, decode_line, spans_request, len, "trace")


def metrics_request(line: bytes) -> tuple[ExportMetricsServiceRequest, int]:
    """An ``ExportMetricsServiceRequest`` from one line; its items are data points."""
    return _request(line, decode_metrics_line, metrics_message, data_points, "metrics")


def logs_request(line: bytes) -> tuple[ExportLogsServiceRequest, int]:
    """An ``ExportLogsServiceRequest`` with the log records of one line, grouped as the line grouped them."""
    return _request(line, decode_logs_line, logs_message, len, "logs")


def _request(
    line: bytes,
    decode: Callable[[bytes], list[_Item]],
    build: Callable[[list[_Item]], _Request],
    count: Callable[[list[_Item]], int],
    what: str,
) -> tuple[_Request, int]:
    """One line's request and item count; every failure is an :class:`InvalidLine` saying why.

    A lone surrogate (a name that came through ``os.fsdecode``) is text protobuf refuses, so such a
    line is decoded again with it escaped. A value protobuf refuses (a negative count, an integer
    beyond its field's type) makes the line invalid, not the replay.
    """
    try:
        items = decode(line)
        try:
            return build(items), count(items)
        except UnicodeEncodeError:
            items = decode(_escaped_surrogates(line))
            return build(items), count(items)
    except InvalidRequest as exc:
        raise InvalidLine(str(exc)) from None
    except ValueError as exc:
        raise InvalidLine(f"not an OTLP {what} request: {str(exc)[:200]}") from None


# --- blocks ----------------------------------------------------------------------------------------------
def _escaped_surrogates(line: bytes) -> bytes:
    """``line`` with each lone surrogate in its strings written out as the text ``\\udXXX``: the
    same text modeltel's own files hold, and valid UTF-8 for protobuf."""
    try:
        document = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest(f"not JSON: {exc}") from None
    return json.dumps(_replace_surrogates(document)).encode()


def _replace_surrogates(node: Any) -> Any:
    if isinstance(node, str):
        return node.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(node, list):
        return [_replace_surrogates(item) for item in node]
    if isinstance(node, dict):
        return {_replace_surrogates(k): _replace_surrogates(v) for k, v in node.items()}
    return node


def _resource(resource: Resource) -> PbResource:
    return PbResource(
        attributes=_key_values(resource.attributes),
        dropped_attributes_count=resource.dropped_attributes_count,
        entity_refs=[
            EntityRef(
                schema_url=ref.schema_url,
                type=ref.type,
                id_keys=ref.id_keys,
                description_keys=ref.description_keys,
            )
            for ref in resource.entity_refs
        ],
    )


def _scope(scope: Scope) -> InstrumentationScope:
    return InstrumentationScope(
        name=scope.name,
        version=scope.version,
        attributes=_key_values(scope.attributes),
        dropped_attributes_count=scope.dropped_attributes_count,
    )


def spans_request(spans: Iterable[Span]) -> ExportTraceServiceRequest:
    """Spans grouped by resource, then scope (shared by identity, as the reader shares them)."""
    request = ExportTraceServiceRequest()
    for resource, scopes in groups(spans):
        block = request.resource_spans.add(resource=_resource(resource), schema_url=resource.schema_url)
        for scope, members in scopes:
            block.scope_spans.add(
                scope=_scope(scope), schema_url=scope.schema_url, spans=[_span(s) for s in members]
            )
    return request


def metrics_message(metrics: Iterable[Metric]) -> ExportMetricsServiceRequest:
    """Metrics grouped by resource, then scope (shared by identity, as the reader shares them)."""
    request = ExportMetricsServiceRequest()
    for resource, scopes in groups(metrics):
        block = request.resource_metrics.add(resource=_resource(resource), schema_url=resource.schema_url)
        for scope, members in scopes:
            block.scope_metrics.add(
                scope=_scope(scope), schema_url=scope.schema_url, metrics=[_metric(m) for m in members]
            )
    return request


def logs_message(records: Iterable[LogRecord]) -> ExportLogsServiceRequest:
    """Log records grouped by resource, then scope (shared by identity, as the reader shares them)."""
    request = ExportLogsServiceRequest()
    for resource, scopes in groups(records):
        block = request.resource_logs.add(resource=_resource(resource), schema_url=resource.schema_url)
        for scope, members in scopes:
            block.scope_logs.add(
                scope=_scope(scope), schema_url=scope.schema_url, log_records=[_log(r) for r in members]
            )
    return request


# --- logs ------------------------------------------------------------------------------------------------
def _log(record: LogRecord) -> PbLogRecord:
    message = PbLogRecord(
        time_unix_nano=record.time_ns,
        observed_time_unix_nano=record.observed_ns,
        severity_number=record.severity_number,  # type: ignore[arg-type]  # an int is what the enum holds
        severity_text=record.severity_text,
        attributes=_key_values(record.attributes),
        dropped_attributes_count=record.dropped_attributes_count,
        flags=record.flags,
        trace_id=bytes.fromhex(record.trace_id),
        span_id=bytes.fromhex(record.span_id),
        event_name=record.event_name,
    )
    if record.body is not None:
        message.body.CopyFrom(_any_value(record.body))
    return message


# --- spans -----------------------------------------------------------------------------------------------
def _span(span: Span) -> PbSpan:
    message = PbSpan(
        trace_id=bytes.fromhex(span.trace_id),
        span_id=bytes.fromhex(span.span_id),
        parent_span_id=bytes.fromhex(span.parent_span_id),
        trace_state=span.trace_state,
        flags=span.flags,
        name=span.name,
        kind=span.kind,  # type: ignore[arg-type]  # an int is what the enum holds
        start_time_unix_nano=span.start_ns,
        end_time_unix_nano=span.end_ns,
        attributes=_key_values(span.attributes),
        status=Status(code=span.status_code, message=span.status_message),  # type: ignore[arg-type]
    )
    # Set only when present: most spans have none of these, and each keyword costs (replay of 1M spans).
    if span.events:
        message.events.extend(_event(e) for e in span.events)
    if span.links:
        message.links.extend(_link(k) for k in span.links)
    if span.dropped_attributes_count:
        message.dropped_attributes_count = span.dropped_attributes_count
    if span.dropped_events_count:
        message.dropped_events_count = span.dropped_events_count
    if span.dropped_links_count:
        message.dropped_links_count = span.dropped_links_count
    return message


def _event(event: Event) -> PbSpan.Event:
    return PbSpan.Event(
        time_unix_nano=event.time_ns,
        name=event.name,
        attributes=_key_values(event.attributes),
        dropped_attributes_count=event.dropped_attributes_count,
    )


def _link(link: Link) -> PbSpan.Link:
    return PbSpan.Link(
        trace_id=bytes.fromhex(link.trace_id),
        span_id=bytes.fromhex(link.span_id),
        trace_state=link.trace_state,
        attributes=_key_values(link.attributes),
        dropped_attributes_count=link.dropped_attributes_count,
        flags=link.flags,
    )


def _key_values(attributes: Mapping[str, AttributeValue]) -> list[KeyValue]:
    return [KeyValue(key=key, value=_any_value(value)) for key, value in attributes.items()]


def _any_value(value: AttributeValue) -> AnyValue:
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        if _INT64_MIN <= value <= _INT64_MAX:
            return AnyValue(int_value=value)
        return AnyValue(string_value=str(value))  # beyond int64: kept as text, as the writer does
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, dict):
        return AnyValue(kvlist_value=KeyValueList(values=_key_values(value)))
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[_any_value(v) for v in value]))
    return AnyValue()


# --- metrics ---------------------------------------------------------------------------------------------
def _value(value: int | float | None) -> dict[str, Any]:
    if isinstance(value, float):
        return {"as_double": value}
    if value is None:
        return {}
    return {"as_int": value}


def _exemplars(exemplars: Iterable[Exemplar]) -> list[pb.Exemplar]:
    return [
        pb.Exemplar(
            filtered_attributes=_key_values(e.filtered_attributes),
            time_unix_nano=e.time_ns,
            span_id=bytes.fromhex(e.span_id),
            trace_id=bytes.fromhex(e.trace_id),
            **_value(e.value),
        )
        for e in exemplars
    ]


def _point_fields(point: Point) -> dict[str, Any]:
    return {
        "attributes": _key_values(point.attributes),
        "start_time_unix_nano": point.start_ns,
        "time_unix_nano": point.time_ns,
        "flags": point.flags,
    }


def _present(**fields: float | None) -> dict[str, Any]:
    """The optional doubles that were recorded: an unset ``sum`` is not a sum of 0."""
    return {key: value for key, value in fields.items() if value is not None}


def _number_point(point: NumberPoint) -> pb.NumberDataPoint:
    return pb.NumberDataPoint(
        **_point_fields(point), exemplars=_exemplars(point.exemplars), **_value(point.value)
    )


def _histogram_point(point: HistogramPoint) -> pb.HistogramDataPoint:
    return pb.HistogramDataPoint(
        **_point_fields(point),
        count=point.count,
        bucket_counts=point.bucket_counts,
        explicit_bounds=point.explicit_bounds,
        exemplars=_exemplars(point.exemplars),
        **_present(sum=point.sum, min=point.min, max=point.max),
    )


def _buckets(point: ExponentialHistogramPoint) -> dict[str, Any]:
    """The ranges that hold something: an empty one is the same as none (the reader keeps no difference)."""
    return {
        key: pb.ExponentialHistogramDataPoint.Buckets(
            offset=buckets.offset, bucket_counts=buckets.bucket_counts
        )
        for key, buckets in (("positive", point.positive), ("negative", point.negative))
        if buckets.offset or buckets.bucket_counts
    }


def _exponential_point(point: ExponentialHistogramPoint) -> pb.ExponentialHistogramDataPoint:
    return pb.ExponentialHistogramDataPoint(
        **_point_fields(point),
        count=point.count,
        scale=point.scale,
        zero_count=point.zero_count,
        **_buckets(point),
        exemplars=_exemplars(point.exemplars),
        zero_threshold=point.zero_threshold,
        **_present(sum=point.sum, min=point.min, max=point.max),
    )


def _summary_point(point: SummaryPoint) -> pb.SummaryDataPoint:
    return pb.SummaryDataPoint(
        **_point_fields(point),
        count=point.count,
        sum=point.sum,
        quantile_values=[
            pb.SummaryDataPoint.ValueAtQuantile(quantile=q, value=v) for q, v in point.quantiles
        ],
    )


def _points(metric: Metric, kind: type[Point], encode: Any) -> list[Any]:
    if not all(isinstance(p, kind) for p in metric.points):
        raise InvalidRequest(f"a {metric.kind} holds points of another kind")
    return [encode(p) for p in metric.points]


def _metric(metric: Metric) -> pb.Metric:
    data: dict[str, Any] = {}
    if metric.kind == "gauge":
        data["gauge"] = pb.Gauge(data_points=_points(metric, NumberPoint, _number_point))
    elif metric.kind == "sum":
        data["sum"] = pb.Sum(
            data_points=_points(metric, NumberPoint, _number_point),
            aggregation_temporality=metric.temporality,  # type: ignore[arg-type]  # an int is what it holds
            is_monotonic=metric.monotonic,
        )
    elif metric.kind == "histogram":
        data["histogram"] = pb.Histogram(
            data_points=_points(metric, HistogramPoint, _histogram_point),
            aggregation_temporality=metric.temporality,  # type: ignore[arg-type]
        )
    elif metric.kind == "exponential_histogram":
        data["exponential_histogram"] = pb.ExponentialHistogram(
            data_points=_points(metric, ExponentialHistogramPoint, _exponential_point),
            aggregation_temporality=metric.temporality,  # type: ignore[arg-type]
        )
    elif metric.kind == "summary":
        data["summary"] = pb.Summary(data_points=_points(metric, SummaryPoint, _summary_point))
    return pb.Metric(
        name=metric.name,
        description=metric.description,
        unit=metric.unit,
        metadata=_key_values(metric.metadata),
        **data,
    )
