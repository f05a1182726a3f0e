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
from itertools import islice, repeat
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.metrics.export import MetricsData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, StatusCode
from opentelemetry.trace.span import DEFAULT_TRACE_STATE, TraceState

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


def attribute_items(attributes: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    """``attributes.items()``, straight from the plain dict inside the SDK's ``BoundedAttributes``.

    ``BoundedAttributes.items()`` walks the pure-Python ``Mapping`` ABC (a generator step and a
    ``__getitem__`` per key): that was half the cost of encoding a span (bench/overhead.py).
    """
    inner = getattr(attributes, "_dict", None)
    return (inner if type(inner) is dict else attributes).items()


def encode_attributes(attributes: Mapping[str, Any] | None) -> str:
    """A JSON array of ``KeyValue`` for ``attributes``."""
    if attributes is None:
        return "[]"
    out = []
    for key, value in attribute_items(attributes):
        prefix = _key_prefix.get(key) or _prefix(key)
        kind = type(value)
        # The common types inline; everything else (and the edge cases of float) via encode_value.
        if kind is str:
            out.append(f'{prefix}"stringValue":{_quote(value)}}}}}')
        elif kind is int:
            out.append(f'{prefix}"intValue":"{value}"}}}}')
        elif kind is float and _isfinite(value):
            out.append(f'{prefix}"doubleValue":{value!r}}}}}')
        elif kind is bool:
            out.append(prefix + ('"boolValue":true}}' if value else '"boolValue":false}}'))
        else:
            out.append(prefix + encode_value(value) + "}}")
    return "[" + ",".join(out) + "]"


# --- many attribute maps at once ---------------------------------------------------------------------
# A batch holds hundreds of spans whose attributes mostly share their keys. Encoding them a column at
# a time (one key across all maps that have the same keys) moves the per-value work from Python
# bytecode into C loops (map over a C function, `%` formatting): ~1 µs instead of ~3 µs per span of
# six attributes (bench/overhead.py), which matters because the export thread shares the GIL with
# the application.

_INNER_DICT = operator.attrgetter("_dict")
_JSON_BOOL = {True: "true", False: "false"}
_COLUMN_FORMATS: dict[type, tuple[str, str, Any]] = {
    str: ('"stringValue":', "", _quote),
    int: ('"intValue":"', '"', int.__repr__),
    float: ('"doubleValue":', "", float.__repr__),
    bool: ('"boolValue":', "", _JSON_BOOL.__getitem__),
}
"""Opening, closing and C converter of the ``AnyValue`` member per exact value type: a column of
one such type is converted with ``map``. Mixed columns, other types and non-finite floats go
through :func:`encode_value`."""
_ANY_VALUE = ("", "", encode_value)


def plain_dicts(maps: Sequence[Mapping[str, Any] | None]) -> Sequence[dict[str, Any]] | None:
    """The plain dicts behind ``maps`` (the SDK's ``BoundedAttributes`` keep one), or None when
    some map is anything else (None, a proxy, a dict subclass)."""
    kinds = set(map(type, maps))
    if kinds == {dict}:
        return maps  # type: ignore[return-value]
    if kinds == {BoundedAttributes}:
        try:
            dicts = list(map(_INNER_DICT, maps))
        except AttributeError:  # an SDK that keeps its values elsewhere
            return None
        if set(map(type, dicts)) == {dict}:
            return dicts
    return None


def columns(dicts: Sequence[dict[str, Any]]) -> list[tuple[tuple[str, ...], list[int] | None, list[tuple[Any, ...]]]]:
    """``dicts`` grouped by their keys (in order): ``(keys, indices, value columns)`` per group.

    ``indices`` are the positions in ``dicts`` of the group's members, None when every dict has
    the same keys (the common case, found with one C-level count).
    """
    shapes = list(map(tuple, dicts))
    if not shapes:
        return []
    if shapes.count(shapes[0]) == len(shapes):
        return [(shapes[0], None, _value_columns(shapes[0], dicts))]
    groups: dict[tuple[str, ...], list[int]] = {}
    for index, shape in enumerate(shapes):
        members = groups.get(shape)
        if members is None:
            members = groups[shape] = []
        members.append(index)
    return [(shape, members, _value_columns(shape, [dicts[i] for i in members])) for shape, members in groups.items()]


def _value_columns(keys: tuple[str, ...], dicts: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    if not keys:
        return []
    if len(keys) == 1:
        return [tuple(map(operator.itemgetter(keys[0]), dicts))]
    return list(zip(*map(operator.itemgetter(*keys), dicts), strict=True))


def _array_pieces(keys: tuple[str, ...], values: list[tuple[Any, ...]]) -> list[Iterable[str]]:
    """The ``KeyValue`` arrays of maps with these ``keys`` and value columns, as pieces whose
    ``"".join`` row by row makes each array: constants repeat, values are converted columns."""
    if not keys:
        return [repeat("[]")]
    pieces: list[Iterable[str]] = []
    closing = "["
    for key, column in zip(keys, values, strict=True):
        kinds = set(map(type, column))
        opening, close, convert = _COLUMN_FORMATS.get(kinds.pop(), _ANY_VALUE) if len(kinds) == 1 else _ANY_VALUE
        if convert is float.__repr__ and not all(map(_isfinite, column)):
            opening, close, convert = _ANY_VALUE
        pieces.append(repeat(closing + _prefix(key) + opening))
        pieces.append(map(convert, column))
        closing = close + "}},"
    pieces.append(repeat(closing[:-1] + "]"))
    return pieces


def _rows(pieces: list[Iterable[str]], size: int) -> list[str]:
    """Join ``pieces`` (columns and repeated constants) row by row, in C: zip makes the rows."""
    return list(islice(map("".join, zip(*pieces)), size))


def attribute_pieces(maps: Sequence[Mapping[str, Any] | None]) -> list[Iterable[str]]:
    """``encode_attributes(m)`` for each of ``maps``, as pieces for :func:`_rows`."""
    dicts = plain_dicts(maps)
    if dicts is None:
        return [[encode_attributes(m) for m in maps]]
    groups = columns(dicts)
    if len(groups) == 1 and groups[0][1] is None:
        keys, _, values = groups[0]
        return _array_pieces(keys, values)
    out = [""] * len(dicts)
    for keys, members, values in groups:
        assert members is not None
        for index, text in zip(members, _rows(_array_pieces(keys, values), len(members)), strict=True):
            out[index] = text
    return [out]


def encode_attribute_arrays(maps: Sequence[Mapping[str, Any] | None]) -> list[str]:
    """``[encode_attributes(m) for m in maps]``, computed a column at a time."""
    return _rows(attribute_pieces(maps), len(maps))


# --- spans -------------------------------------------------------------------------------------------
def _flags(parent: SpanContext | None) -> int:
    if parent is not None and parent.is_remote:
        return _HAS_IS_REMOTE | _IS_REMOTE
    return _HAS_IS_REMOTE


def _trace_state(state: TraceState | None) -> str:
    if state is DEFAULT_TRACE_STATE or not state:
        return ""
    return '"traceState":' + _quote(state.to_header()) + ","


def _dropped(dropped: int) -> str:
    return f',"droppedAttributesCount":{dropped}' if dropped else ""


def _hex(value: int, size: int) -> str:
    return value.to_bytes(size, "big").hex()


_FIELDS = operator.attrgetter(
    "_context", "_parent", "_name", "_kind", "_start_time", "_end_time",
    "_attributes", "_events", "_links", "_status",
    "_attributes.dropped", "_events.dropped", "_links.dropped",
)  # fmt: skip
"""The fields behind ``ReadableSpan``'s properties, read in one C call.

The properties cost ~3 µs per span (``events`` and ``links`` copy into new tuples on every call,
``attributes`` wraps a ``MappingProxyType``); in the SDK's own class they are plain reads of these
fields, and the dropped counts are read from the bounded containers the SDK's spans always have.
So the fields are read for that exact class only; anything else (a subclass, a wrapper, a span
built by hand with plain containers, an SDK that renamed them) goes through the public properties.
"""
_ATTRIBUTES = 6


def _public_fields(span: ReadableSpan) -> tuple[Any, ...]:
    return (
        span.context, span.parent, span.name, span.kind, span.start_time, span.end_time,
        span.attributes, span.events, span.links, span.status,
        span.dropped_attributes, span.dropped_events, span.dropped_links,
    )  # fmt: skip


def span_fields(spans: Sequence[ReadableSpan]) -> list[tuple[Any, ...]]:
    """``(context, parent, name, kind, start_time, end_time, attributes, events, links, status,
    dropped_attributes, dropped_events, dropped_links)`` for each span."""
    if set(map(type, spans)) == {ReadableSpan}:
        try:
            return list(map(_FIELDS, spans))
        except AttributeError:
            pass
    return list(map(_public_fields, spans))


_NAME_CACHE_LIMIT = 4096
_quoted_names: dict[str, str] = {}


def _event(event: Event) -> str:
    return (
        f'{{"timeUnixNano":"{event.timestamp}","name":{_quote(event.name)},"attributes":'
        f"{encode_attributes(event.attributes)}{_dropped(event.dropped_attributes)}}}"
    )


def _link(link: Link) -> str:
    context = link.context
    return (
        f'{{"traceId":"{_hex(context.trace_id, 16)}","spanId":"{_hex(context.span_id, 8)}",'
        f'{_trace_state(context.trace_state)}"attributes":{encode_attributes(link.attributes)}'
        f'{_dropped(link.dropped_attributes)},"flags":{_flags(context)}}}'
    )


def _encode_fields(fields: tuple[Any, ...], attributes_json: str) -> str:
    """One ``Span`` object from :func:`span_fields` and its encoded attributes."""
    context, parent, name, kind, start, end, _, events, links, status, *dropped = fields
    trace_id, span_id, _, _, state, _ = context  # SpanContext is a 6-tuple; its properties index it
    quoted = _quoted_names.get(name)
    if quoted is None:
        quoted = _quote(name)
        if len(_quoted_names) < _NAME_CACHE_LIMIT:
            _quoted_names[name] = quoted
    if parent is None:
        parent_id, flags = "", _HAS_IS_REMOTE
    else:
        parent_id = f'"parentSpanId":"{parent.span_id.to_bytes(8, "big").hex()}",'
        flags = _HAS_IS_REMOTE | _IS_REMOTE if parent.is_remote else _HAS_IS_REMOTE
    dropped_attributes, dropped_events, dropped_links = dropped
    tail = f',"droppedAttributesCount":{dropped_attributes}' if dropped_attributes else ""
    if events:
        tail += ',"events":[' + ",".join(map(_event, events)) + "]"
    if dropped_events:
        tail += f',"droppedEventsCount":{dropped_events}'
    if links:
        tail += ',"links":[' + ",".join(map(_link, links)) + "]"
    if dropped_links:
        tail += f',"droppedLinksCount":{dropped_links}'
    description = status.description
    message = ',"message":' + _quote(description) if description else ""
    return (
        f'{{"traceId":"{trace_id.to_bytes(16, "big").hex()}","spanId":"{span_id.to_bytes(8, "big").hex()}",'
        f'{_trace_state(state)}{parent_id}"name":{quoted},"kind":{kind._value_ + 1}'
        f',"startTimeUnixNano":"{start}","endTimeUnixNano":"{end}","attributes":{attributes_json}{tail}'
        f',"status":{{"code":{status.status_code._value_}{message}}},"flags":{flags}}}'
    )


def encode_span(span: ReadableSpan) -> str:
    """One OTLP/JSON ``Span`` object."""
    (fields,) = span_fields([span])
    return _encode_fields(fields, encode_attributes(fields[_ATTRIBUTES]))


_CONTEXT, _PARENT, _NAME, _KIND, _START, _END, _ATTRIBUTE_MAP, _STATUS = (
    operator.itemgetter(i) for i in (0, 1, 2, 3, 4, 5, 6, 9)
)
_EXTRAS = operator.itemgetter(7, 8, 10, 11, 12)
"""Events, links and the three dropped counts: a span with any of them takes the general path."""
_TRACE_ID, _SPAN_ID, _IS_REMOTE_FIELD, _TRACE_STATE = (operator.itemgetter(i) for i in (0, 1, 2, 4))
_VALUE = operator.attrgetter("_value_")
_STATUS_CODE = operator.attrgetter("status_code")
_DESCRIPTION = operator.attrgetter("description")
_BYTES_16 = operator.methodcaller("to_bytes", 16, "big")
_BYTES_8 = operator.methodcaller("to_bytes", 8, "big")
_KIND_JSON = tuple(str(kind.value + 1) for kind in sorted(SpanKind, key=lambda kind: kind.value))
_STATUS_JSON = tuple(str(code.value) for code in sorted(StatusCode, key=lambda code: code.value))


def _parent_member(parent: SpanContext | None) -> str:
    return "" if parent is None else f'"parentSpanId":"{parent.span_id.to_bytes(8, "big").hex()}",'


def _plain_span_pieces(fields: list[tuple[Any, ...]]) -> list[Iterable[str]] | None:
    """The spans' JSON objects as pieces for :func:`_rows`, when every span is plain (no events,
    links, drops or status message: nearly all spans); None otherwise.

    What :func:`_encode_fields` does per span, a column at a time: ~2x cheaper per span.
    """
    if any(map(any, map(_EXTRAS, fields))):
        return None
    statuses = list(map(_STATUS, fields))
    starts = list(map(_START, fields))
    ends = list(map(_END, fields))
    if any(map(_DESCRIPTION, statuses)) or None in starts or None in ends:
        return None
    contexts = list(map(_CONTEXT, fields))
    parents = list(map(_PARENT, fields))
    states = list(map(_TRACE_STATE, contexts))
    if states.count(DEFAULT_TRACE_STATE) == len(states):
        trace_states: Iterable[str] = repeat("")
    else:
        trace_states = list(map(_trace_state, states))
    roots = parents.count(None)
    if roots == len(parents):
        parent_ids: Iterable[str] = repeat("")
        flags: Iterable[str] = repeat(str(_HAS_IS_REMOTE))
    else:
        parent_ids = list(map(_parent_member, parents))
        remote = [parent is not None and parent.is_remote for parent in parents]
        flags = repeat(str(_HAS_IS_REMOTE)) if not any(remote) else [str(_flags(p)) for p in parents]
    return [
        repeat('{"traceId":"'),
        map(bytes.hex, map(_BYTES_16, map(_TRACE_ID, contexts))),
        repeat('","spanId":"'),
        map(bytes.hex, map(_BYTES_8, map(_SPAN_ID, contexts))),
        repeat('",'),
        trace_states,
        parent_ids,
        repeat('"name":'),
        map(_quote, map(_NAME, fields)),
        repeat(',"kind":'),
        map(_KIND_JSON.__getitem__, map(_VALUE, map(_KIND, fields))),
        repeat(',"startTimeUnixNano":"'),
        map(int.__repr__, starts),
        repeat('","endTimeUnixNano":"'),
        map(int.__repr__, ends),
        repeat('","attributes":'),
        *attribute_pieces(list(map(_ATTRIBUTE_MAP, fields))),
        repeat(',"status":{"code":'),
        map(_STATUS_JSON.__getitem__, map(_VALUE, map(_STATUS_CODE, statuses))),
        repeat('},"flags":'),
        flags,
        repeat("}"),
    ]


def _encode_span_list(spans: Sequence[ReadableSpan]) -> list[str]:
    fields = span_fields(spans)
    pieces = _plain_span_pieces(fields)
    if pieces is not None:
        return _rows(pieces, len(fields))
    arrays = encode_attribute_arrays(list(map(_ATTRIBUTE_MAP, fields)))
    return list(map(_encode_fields, fields, arrays))


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
    # Spans of one batch nearly always share one resource and one scope: check the last group first.
    groups: dict[tuple[int, int], tuple[Resource, InstrumentationScope | None, list[ReadableSpan]]] = {}
    last_resource: Resource | None = None
    last_scope: InstrumentationScope | None = None
    members: list[ReadableSpan] = []
    for span in spans:
        resource, scope = span.resource, span.instrumentation_scope
        if resource is not last_resource or scope is not last_scope:
            group = groups.get((id(resource), id(scope)))
            if group is None:
                group = groups[(id(resource), id(scope))] = (resource, scope, [])
            last_resource, last_scope, members = resource, scope, group[2]
        members.append(span)
    by_resource: dict[int, list[tuple[Resource, InstrumentationScope | None, list[ReadableSpan]]]] = {}
    for group in groups.values():
        by_resource.setdefault(id(group[0]), []).append(group)
    # One list of parts and one join: the batch is ~300 KiB, and every `a + b` would copy all of it.
    parts = ['{"resourceSpans":[']
    for r, resource_groups in enumerate(by_resource.values()):
        resource = resource_groups[0][0]
        parts.append(("," if r else "") + '{"resource":' + _cache.resource(resource) + ',"scopeSpans":[')
        for s, (_, scope, members) in enumerate(resource_groups):
            parts.append(("," if s else "") + "{" + _cache.scope(scope) + ',"spans":[')
            parts.append(",".join(_encode_span_list(members)))
            parts.append("]}")
        schema = ',"schemaUrl":' + _quote(resource.schema_url) if resource.schema_url else ""
        parts.append("]" + schema + "}")
    parts.append("]}")
    return "".join(parts)


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
