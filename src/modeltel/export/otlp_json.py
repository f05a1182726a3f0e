"""OTLP/JSON encoding of SDK spans and metrics, one ``Export*ServiceRequest`` per line.

The encoding follows the OTLP/JSON rules (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding):
lowerCamelCase keys, trace and span ids as hex, enums as integers, 64-bit integers as decimal
strings, non-finite doubles as "NaN"/"Infinity"/"-Infinity" — the lines the Collector's ``file``
exporter writes and its ``otlpjsonfile`` receiver reads.

Spans are encoded by hand with string building because they are the hot path: going through
protobuf messages and ``json_format`` costs ~10x more per span and would make the exporter the slow
part of the pipeline (bench/overhead.py). The tests hold this encoder to the official protobuf
encoder field for field. Metrics are few (one batch per export interval), so they go through
OpenTelemetry's own protobuf encoder and protobuf's JSON printer.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import MetricsData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext

_quote = json.encoder.encode_basestring  # type: ignore[attr-defined]
"""C-accelerated JSON string quoting; non-ASCII stays raw and the line is written as UTF-8."""

_HAS_IS_REMOTE = 0x100
_IS_REMOTE = 0x200
_KEY_CACHE_LIMIT = 4096
_key_prefix: dict[str, str] = {}


def _prefix(key: str) -> str:
    """``{"key":"k","value":{`` for ``key``, cached because the same keys recur on every span."""
    prefix = _key_prefix.get(key)
    if prefix is None:
        prefix = '{"key":' + _quote(key) + ',"value":{'
        if len(_key_prefix) < _KEY_CACHE_LIMIT:
            _key_prefix[key] = prefix
    return prefix


def _double(value: float) -> str:
    if math.isfinite(value):
        return repr(value)
    if math.isnan(value):
        return '"NaN"'
    return '"Infinity"' if value > 0 else '"-Infinity"'


def encode_value(value: Any) -> str:
    """The members of an ``AnyValue`` object for ``value`` (without the braces)."""
    kind = type(value)
    if kind is str:
        return '"stringValue":' + _quote(value)
    if kind is bool:
        return '"boolValue":true' if value else '"boolValue":false'
    if kind is int:
        return f'"intValue":"{value}"'
    if kind is float:
        return '"doubleValue":' + _double(value)
    if value is None:
        return ""
    # Subclasses of the primitive types (str enums, numpy floats): bool before int, str before Sequence.
    if isinstance(value, str):
        return '"stringValue":' + _quote(str(value))
    if isinstance(value, bool):
        return encode_value(bool(value))
    if isinstance(value, int):
        return encode_value(int(value))
    if isinstance(value, float):
        return encode_value(float(value))
    if isinstance(value, bytes | bytearray):
        return '"bytesValue":"' + base64.b64encode(value).decode("ascii") + '"'
    if isinstance(value, Mapping):
        items = ",".join(_prefix(str(k)) + encode_value(v) + "}}" for k, v in value.items())
        return '"kvlistValue":{"values":[' + items + "]}"
    if isinstance(value, Sequence):
        return '"arrayValue":{"values":[' + ",".join("{" + encode_value(v) + "}" for v in value) + "]}"
    return '"stringValue":' + _quote(str(value))


def encode_attributes(attributes: Mapping[str, Any] | None) -> str:
    """A JSON array of ``KeyValue`` for ``attributes``."""
    if not attributes:
        return "[]"
    return "[" + ",".join(_prefix(k) + encode_value(v) + "}}" for k, v in attributes.items()) + "]"


def _flags(parent: SpanContext | None) -> int:
    if parent is not None and parent.is_remote:
        return _HAS_IS_REMOTE | _IS_REMOTE
    return _HAS_IS_REMOTE


def _trace_state(context: SpanContext) -> str:
    state = context.trace_state
    if not state:
        return ""
    return '"traceState":' + _quote(state.to_header()) + ","


def _dropped(dropped: int) -> str:
    return f',"droppedAttributesCount":{dropped}' if dropped else ""


def encode_span(span: ReadableSpan) -> str:
    """One OTLP/JSON ``Span`` object."""
    context = span.context
    parent = span.parent
    out = [
        f'{{"traceId":"{context.trace_id:032x}","spanId":"{context.span_id:016x}",',
        _trace_state(context),
        f'"parentSpanId":"{parent.span_id:016x}",' if parent is not None else "",
        '"name":',
        _quote(span.name),
        f',"kind":{span.kind.value + 1},"startTimeUnixNano":"{span.start_time}"',
        f',"endTimeUnixNano":"{span.end_time}","attributes":',
        encode_attributes(span.attributes),
        _dropped(span.dropped_attributes),
    ]
    if span.events:
        events = ",".join(
            f'{{"timeUnixNano":"{e.timestamp}","name":{_quote(e.name)},"attributes":'
            f"{encode_attributes(e.attributes)}{_dropped(e.dropped_attributes)}}}"
            for e in span.events
        )
        out.append(f',"events":[{events}]')
        if span.dropped_events:
            out.append(f',"droppedEventsCount":{span.dropped_events}')
    if span.links:
        links = ",".join(
            f'{{"traceId":"{link.context.trace_id:032x}","spanId":"{link.context.span_id:016x}",'
            f"{_trace_state(link.context)}"
            f'"attributes":{encode_attributes(link.attributes)}{_dropped(link.dropped_attributes)}'
            f',"flags":{_flags(link.context)}}}'
            for link in span.links
        )
        out.append(f',"links":[{links}]')
        if span.dropped_links:
            out.append(f',"droppedLinksCount":{span.dropped_links}')
    status = span.status
    message = ',"message":' + _quote(status.description) if status.description else ""
    out.append(f',"status":{{"code":{status.status_code.value}{message}}},"flags":{_flags(parent)}}}')
    return "".join(out)


class _Cache:
    """Encoded resources and scopes by identity: the SDK reuses one object for all its spans."""

    def __init__(self) -> None:
        self.resources: dict[int, tuple[Resource, str]] = {}
        self.scopes: dict[int, tuple[InstrumentationScope | None, str]] = {}

    def resource(self, resource: Resource) -> str:
        hit = self.resources.get(id(resource))
        if hit is not None and hit[0] is resource:
            return hit[1]
        encoded = '{"attributes":' + encode_attributes(resource.attributes) + "}"
        if len(self.resources) > 64:
            self.resources.clear()
        self.resources[id(resource)] = (resource, encoded)
        return encoded

    def scope(self, scope: InstrumentationScope | None) -> str:
        hit = self.scopes.get(id(scope))
        if hit is not None and hit[0] is scope:
            return hit[1]
        if scope is None:
            encoded = '"scope":{}'
        else:
            version = ',"version":' + _quote(scope.version) if scope.version else ""
            attributes = scope.attributes
            attrs = ',"attributes":' + encode_attributes(attributes) if attributes else ""
            schema = ',"schemaUrl":' + _quote(scope.schema_url) if scope.schema_url else ""
            encoded = '"scope":{"name":' + _quote(scope.name) + version + attrs + "}" + schema
        if len(self.scopes) > 1024:
            self.scopes.clear()
        self.scopes[id(scope)] = (scope, encoded)
        return encoded


_cache = _Cache()


def encode_spans(spans: Iterable[ReadableSpan]) -> str:
    """One ``ExportTraceServiceRequest`` for ``spans``, grouped by resource then scope (no newline)."""
    by_resource: dict[int, tuple[Resource, dict[int, tuple[InstrumentationScope | None, list[str]]]]] = {}
    for span in spans:
        resource = span.resource
        scopes = by_resource.get(id(resource))
        if scopes is None:
            scopes = by_resource[id(resource)] = (resource, {})
        scope = span.instrumentation_scope
        group = scopes[1].get(id(scope))
        if group is None:
            group = scopes[1][id(scope)] = (scope, [])
        group[1].append(encode_span(span))
    resource_spans = []
    for resource, scopes in by_resource.values():
        scope_spans = ",".join(
            "{" + _cache.scope(scope) + ',"spans":[' + ",".join(encoded) + "]}"
            for scope, encoded in scopes.values()
        )
        schema = ',"schemaUrl":' + _quote(resource.schema_url) if resource.schema_url else ""
        resource_spans.append(
            '{"resource":' + _cache.resource(resource) + ',"scopeSpans":[' + scope_spans + "]" + schema + "}"
        )
    return '{"resourceSpans":[' + ",".join(resource_spans) + "]}"


def _hex_ids(node: Any) -> None:
    """Rewrite protobuf-JSON base64 ``traceId``/``spanId`` (exemplars) as OTLP/JSON hex, in place."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("traceId", "spanId") and isinstance(value, str):
                node[key] = base64.b64decode(value).hex()
            else:
                _hex_ids(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids(item)


def encode_metrics(data: MetricsData) -> str:
    """One ``ExportMetricsServiceRequest`` for ``data`` (no newline), via OpenTelemetry's encoder."""
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.exporter.otlp.proto.common.metrics_encoder import (
        encode_metrics as encode_metrics_proto,
    )

    message = MessageToDict(encode_metrics_proto(data), use_integers_for_enums=True)
    _hex_ids(message)
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)
