"""Stored OTLP/JSON lines as the protobuf requests an OTLP receiver takes.

Traces go through the reader (:func:`modeltel.read.decode_line`), so replay accepts exactly what
every other command accepts (upper-case or base64 ids, integers as numbers or strings, enum names,
``instrumentationLibrarySpans``) and builds the ``ExportTraceServiceRequest`` from its spans; that
is about six times faster than protobuf's JSON parser, which matters for millions of spans. The
``dropped_*_count`` fields are not carried over. Metric lines are few (one per export interval)
and go through protobuf's JSON parser after OTLP/JSON's hex ids are turned into the base64 the
protobuf JSON mapping expects, so every metric field is kept.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from google.protobuf.json_format import ParseDict, ParseError
from google.protobuf.message import Message
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as PbResource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Status
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

from modeltel.read.otlp import AttributeValue, InvalidRequest, Span, decode_line

Signal = Literal["traces", "metrics"]
SIGNALS: tuple[Signal, ...] = ("traces", "metrics")
LineKind = Literal["traces", "metrics", "logs"]

_TRACES_START = re.compile(rb'^\s*\{\s*"(resourceSpans|resource_spans)"')
_METRICS_START = re.compile(rb'^\s*\{\s*"(resourceMetrics|resource_metrics)"')
_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})
_HEX = re.compile(r"^(?:[0-9a-fA-F]{16}|[0-9a-fA-F]{32})$")
_LEGACY = {
    "instrumentationLibraryMetrics": "scopeMetrics",
    "instrumentation_library_metrics": "scope_metrics",
    "instrumentationLibrary": "scope",
    "instrumentation_library": "scope",
}
_POINT_KINDS = ("gauge", "sum", "histogram", "exponential_histogram", "summary")


class InvalidLine(ValueError):
    """A line that is not a valid OTLP/JSON request of the signal being replayed."""


def signal_of(line: bytes) -> LineKind | None:
    """Which signal a line holds (logs are not replayed), or None for something else.

    Canonical lines are told apart by their first key without parsing; others are parsed.
    """
    if _TRACES_START.match(line):
        return "traces"
    if _METRICS_START.match(line):
        return "metrics"
    try:
        document = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    if "resourceSpans" in document or "resource_spans" in document:
        return "traces"
    if "resourceMetrics" in document or "resource_metrics" in document:
        return "metrics"
    if "resourceLogs" in document or "resource_logs" in document:
        return "logs"
    return None


def build_request(signal: Signal, line: bytes) -> tuple[Message, int]:
    """The request for one line and how many items it holds (spans, or metric data points)."""
    if signal == "traces":
        return trace_request(line)
    return metrics_request(line)


# --- traces --------------------------------------------------------------------------------------


def trace_request(line: bytes) -> tuple[ExportTraceServiceRequest, int]:
    """An ``ExportTraceServiceRequest`` with the spans of one line, grouped as the line grouped them."""
    try:
        spans = decode_line(line)
    except InvalidRequest as exc:
        raise InvalidLine(str(exc)) from None
    return spans_request(spans), len(spans)


def spans_request(spans: Iterable[Span]) -> ExportTraceServiceRequest:
    """Spans grouped by resource, then scope (shared by identity, as the reader shares them)."""
    request = ExportTraceServiceRequest()
    resources: dict[int, tuple[ResourceSpans, dict[int, ScopeSpans]]] = {}
    for span in spans:
        entry = resources.get(id(span.resource))
        if entry is None:
            resource_spans = request.resource_spans.add(
                resource=PbResource(attributes=_key_values(span.resource.attributes)),
                schema_url=span.resource.schema_url,
            )
            entry = resources[id(span.resource)] = (resource_spans, {})
        resource_spans, scopes = entry
        scope_spans = scopes.get(id(span.scope))
        if scope_spans is None:
            scope = span.scope
            scope_spans = scopes[id(scope)] = resource_spans.scope_spans.add(
                scope=InstrumentationScope(
                    name=scope.name, version=scope.version, attributes=_key_values(scope.attributes)
                ),
                schema_url=scope.schema_url,
            )
        scope_spans.spans.append(_span(span))
    return request


def _span(span: Span) -> PbSpan:
    return PbSpan(
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
        events=[
            PbSpan.Event(time_unix_nano=e.time_ns, name=e.name, attributes=_key_values(e.attributes))
            for e in span.events
        ],
        links=[
            PbSpan.Link(
                trace_id=bytes.fromhex(k.trace_id),
                span_id=bytes.fromhex(k.span_id),
                trace_state=k.trace_state,
                attributes=_key_values(k.attributes),
            )
            for k in span.links
        ],
        status=Status(code=span.status_code, message=span.status_message),  # type: ignore[arg-type]
    )


def _key_values(attributes: Mapping[str, AttributeValue]) -> list[KeyValue]:
    return [KeyValue(key=key, value=_any_value(value)) for key, value in attributes.items()]


def _any_value(value: AttributeValue) -> AnyValue:
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        if -(1 << 63) <= value < (1 << 63):
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


# --- metrics -------------------------------------------------------------------------------------


def metrics_request(line: bytes) -> tuple[ExportMetricsServiceRequest, int]:
    """An ``ExportMetricsServiceRequest`` from one line, every field kept; items are data points."""
    try:
        document = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise InvalidLine(f"not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidLine("not a JSON object")
    try:
        request = ParseDict(
            _protobuf_json(document), ExportMetricsServiceRequest(), ignore_unknown_fields=True
        )
    except (ParseError, ValueError, TypeError, RecursionError) as exc:
        raise InvalidLine(f"not an OTLP metrics request: {str(exc)[:200]}") from None
    points = 0
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                if kind in _POINT_KINDS:
                    points += len(getattr(metric, kind).data_points)
    return request, points


def _protobuf_json(node: Any) -> Any:
    """OTLP/JSON → protobuf JSON: hex ids to base64, pre-1.0 ``instrumentationLibrary*`` names renamed."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                if not value:
                    continue
                if _HEX.match(value):
                    value = base64.b64encode(bytes.fromhex(value)).decode("ascii")
                out[key] = value
            else:
                out[_LEGACY.get(key, key)] = _protobuf_json(value)
        return out
    if isinstance(node, list):
        return [_protobuf_json(value) for value in node]
    return node
