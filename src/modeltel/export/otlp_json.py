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
import operator
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import MetricsData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext

_quote = json.encoder.encode_basestring  # type: ignore[attr-defined]
"""C-accelerated JSON string quoting; non-ASCII stays raw and the line is written as UTF-8."""

_isfinite = math.isfinite
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


def _items(attributes: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    """``attributes.items()``, straight from the plain dict inside the SDK's ``BoundedAttributes``.

    ``BoundedAttributes.items()`` walks the pure-Python ``Mapping`` ABC (a generator step and a
    ``__getitem__`` per key): that was half the cost of encoding a span (bench/overhead.py).
    """
    inner = getattr(attributes, "_dict", None)
    return (inner if type(inner) is dict else attributes).items()


def encode_attributes(attributes: Mapping[str, Any] | None) -> str:
    """A JSON array of ``KeyValue`` for ``attributes``."""
    if not attributes:
        return "[]"
    out = []
    for key, value in _items(attributes):
        prefix = _key_prefix.get(key) or _prefix(key)
        kind = type(value)
        # The common types inline; everything else (and the edge cases of float) via encode_value.
        if kind is str:
            out.append(f"{prefix}\"stringValue\":{_quote(value)}}}}}")
        elif kind is int:
            out.append(f'{prefix}"intValue":"{value}"}}}}')
        elif kind is float and _isfinite(value):
            out.append(f'{prefix}"doubleValue":{value!r}}}}}')
        elif kind is bool:
            out.append(prefix + ('"boolValue":true}}' if value else '"boolValue":false}}'))
        else:
            out.append(prefix + encode_value(value) + "}}")
    return "[" + ",".join(out) + "]"


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


def _dropped_of(container: Any) -> int:
    """What ``ReadableSpan.dropped_*`` returns: the SDK's bounded containers count their drops."""
    dropped = getattr(container, "dropped", 0)
    return dropped if type(dropped) is int else 0


_NAME_CACHE_LIMIT = 4096
_quoted_names: dict[str, str] = {}

_FIELDS = operator.attrgetter(
    "_context", "_parent", "_name", "_kind", "_start_time", "_end_time",
    "_attributes", "_events", "_links", "_status",
)  # fmt: skip
"""The private fields behind ``ReadableSpan``'s properties, read in one C call.

The properties cost ~3 µs per span (``events`` and ``links`` copy into new tuples on every call,
``attributes`` wraps a ``MappingProxyType``); the fields are what they return. Used only for the
exact SDK class, whose properties are plain reads of these fields; anything else (a subclass, a
wrapper, an SDK that renamed them) goes through the public properties.
"""


def _public_fields(span: ReadableSpan) -> tuple[Any, ...]:
    return (
        span.context, span.parent, span.name, span.kind, span.start_time, span.end_time,
        span.attributes, span.events, span.links, span.status,
    )  # fmt: skip


def span_fields(span: ReadableSpan) -> tuple[Any, ...]:
    """``(context, parent, name, kind, start_time, end_time, attributes, events, links, status)``.

    ``attributes``/``events``/``links`` may be the SDK's bounded containers (with ``dropped``);
    read them with :func:`_items` / iteration and :func:`_dropped_of`.
    """
    global _private_ok
    if _private_ok and type(span) is ReadableSpan:
        try:
            return _FIELDS(span)  # type: ignore[no-any-return]
        except AttributeError:
            _private_ok = False
    return _public_fields(span)


_private_ok = True


def encode_span(span: ReadableSpan) -> str:
    """One OTLP/JSON ``Span`` object."""
    context, parent, name, kind, start, end, attributes, events, links, status = span_fields(span)
    quoted = _quoted_names.get(name)
    if quoted is None:
        quoted = _quote(name)
        if len(_quoted_names) < _NAME_CACHE_LIMIT:
            _quoted_names[name] = quoted
    parent_id = f'"parentSpanId":"{parent.span_id:016x}",' if parent is not None else ""
    out = [
        f'{{"traceId":"{context.trace_id:032x}","spanId":"{context.span_id:016x}",'
        f"{_trace_state(context)}{parent_id}"
        f'"name":{quoted},"kind":{kind._value_ + 1},"startTimeUnixNano":"{start}"'
        f',"endTimeUnixNano":"{end}","attributes":{encode_attributes(attributes)}'
        f"{_dropped(_dropped_of(attributes))}"
    ]
    if events:
        encoded = ",".join(
            f'{{"timeUnixNano":"{e.timestamp}","name":{_quote(e.name)},"attributes":'
            f"{encode_attributes(e.attributes)}{_dropped(e.dropped_attributes)}}}"
            for e in events
        )
        out.append(f',"events":[{encoded}]')
    dropped_events = _dropped_of(events)
    if dropped_events:
        out.append(f',"droppedEventsCount":{dropped_events}')
    if links:
        encoded = ",".join(
            f'{{"traceId":"{link.context.trace_id:032x}","spanId":"{link.context.span_id:016x}",'
            f"{_trace_state(link.context)}"
            f'"attributes":{encode_attributes(link.attributes)}{_dropped(link.dropped_attributes)}'
            f',"flags":{_flags(link.context)}}}'
            for link in links
        )
        out.append(f',"links":[{encoded}]')
    dropped_links = _dropped_of(links)
    if dropped_links:
        out.append(f',"droppedLinksCount":{dropped_links}')
    description = status.description
    message = ',"message":' + _quote(description) if description else ""
    flags = _HAS_IS_REMOTE | _IS_REMOTE if parent is not None and parent.is_remote else _HAS_IS_REMOTE
    out.append(f',"status":{{"code":{status.status_code._value_}{message}}},"flags":{flags}}}')
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
