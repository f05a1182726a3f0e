"""OTLP/JSON encoding of SDK spans, log records and metrics, one ``Export*ServiceRequest`` per line.

The encoding follows the OTLP/JSON rules (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding):
lowerCamelCase keys, trace and span ids as hex, enums as integers, 64-bit integers as decimal
strings, non-finite doubles as "NaN"/"Infinity"/"-Infinity" — the lines the Collector's ``file``
exporter writes and its ``otlpjsonfile`` receiver reads.

Spans and log records are encoded by hand with string building because they are the hot path:
going through protobuf messages and ``json_format`` costs ~10x more per span and would make the
exporter the slow part of the pipeline (bench/overhead.py, bench/logs.py). The tests hold these
encoders to the official protobuf encoder field for field. Metrics are few (one batch per export
interval) but are encoded by hand as well, so that no process imports protobuf to write its
files: the last collection is flushed at exit, where those imports held a short app's end up.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import SimpleNamespace
from typing import Any, TypeVar

from opentelemetry.sdk.metrics.export import ExponentialHistogram, Gauge, Histogram, MetricsData, Sum
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, Status
from opentelemetry.trace.span import DEFAULT_TRACE_STATE, TraceState

from modeltel.formats import MAX_NESTING

_logger = logging.getLogger(__name__)

_quote = json.encoder.encode_basestring
"""C-accelerated JSON string quoting; non-ASCII stays raw and the line is written as UTF-8."""

_isfinite = math.isfinite
_T = TypeVar("_T")
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


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def encode_value(value: Any) -> str:
    """The members of an ``AnyValue`` object for ``value`` (without the braces)."""
    kind = type(value)
    if kind is str:
        return '"stringValue":' + _quote(value)
    if kind is bool:
        return '"boolValue":true' if value else '"boolValue":false'
    if kind is int:
        if _INT64_MIN <= value <= _INT64_MAX:
            return f'"intValue":"{value}"'
        return '"stringValue":"' + str(value) + '"'  # beyond int64: kept, as its decimal text
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
    for key, value in attributes.items() if type(attributes) is dict else attribute_items(attributes):
        prefix = _key_prefix.get(key) or _prefix(key)
        kind = type(value)
        # The common types inline; everything else (and the edge cases of float) via encode_value.
        if kind is str:
            out.append(f'{prefix}"stringValue":{_quote(value)}}}}}')
        elif kind is int and _INT64_MIN <= value <= _INT64_MAX:
            out.append(f'{prefix}"intValue":"{value}"}}}}')
        elif kind is float and _isfinite(value):
            out.append(f'{prefix}"doubleValue":{value!r}}}}}')
        elif kind is bool:
            out.append(prefix + ('"boolValue":true}}' if value else '"boolValue":false}}'))
        else:
            out.append(prefix + encode_value(value) + "}}")
    return "[" + ",".join(out) + "]"


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
    "_attributes._dict", "_events._dq", "_links._dq", "_status",
    "_attributes.dropped", "_events.dropped", "_links.dropped",
)  # fmt: skip
"""The fields behind ``ReadableSpan``'s properties, read in one C call.

The properties cost ~3 µs per span (``events`` and ``links`` copy into new tuples on every call,
``attributes`` wraps a ``MappingProxyType``); in the SDK's own class they are plain reads of these
fields. Attributes, events and links are read from the dict and deques inside the SDK's
``BoundedAttributes`` and ``BoundedList`` (whose own ``items``, ``__len__`` and ``__iter__`` are
Python), and the dropped counts from those bounded containers, which the SDK's spans always have.
So the fields are read for that exact class only; anything else (a subclass, a wrapper, a span
built by hand with plain containers, an SDK that renamed them) goes through the public properties.
"""


def _public_fields(span: ReadableSpan) -> tuple[Any, ...]:
    return (
        span.context, span.parent, span.name, span.kind, span.start_time, span.end_time,
        span.attributes, span.events, span.links, span.status,
        span.dropped_attributes, span.dropped_events, span.dropped_links,
    )  # fmt: skip


def read_fields(
    spans: Sequence[ReadableSpan],
    fields: Callable[[ReadableSpan], tuple[Any, ...]],
    properties: Callable[[ReadableSpan], tuple[Any, ...]],
    consume: Callable[[Iterator[tuple[Any, ...]]], _T],
) -> _T:
    """``consume`` the ``fields`` (an ``attrgetter`` of private fields) of each span when all are
    the SDK's own class and have those fields, else the same values read through ``properties``.

    Streamed, not listed: each span's tuple is used while the span is still in the CPU cache and
    freed at once. ``consume`` must have no effect outside its result, since it starts over on the
    properties if some span lacks a field (a span built by hand with plain containers).
    """
    if set(map(type, spans)) == {ReadableSpan}:
        try:
            return consume(map(fields, spans))
        except AttributeError:
            pass
    return consume(map(properties, spans))


def span_fields(spans: Sequence[ReadableSpan]) -> list[tuple[Any, ...]]:
    """``(context, parent, name, kind, start_time, end_time, attributes, events, links, status,
    dropped_attributes, dropped_events, dropped_links)`` for each span."""
    return read_fields(spans, _FIELDS, _public_fields, list)


def _encode_list(fields: Iterator[tuple[Any, ...]]) -> str:
    out = []
    for item in fields:  # an AttributeError of the field getter propagates: read_fields falls back
        try:
            out.append(_encode_fields(item))
        except Exception as exc:  # one bad span never costs its batch
            out.append(_encode_coerced(item, exc))
    return ",".join(out)


_warned_coerced = False
_UNSET = Status()


class _NotOtlp(ValueError):
    """A field OTLP/JSON has no form for (a float time, a value nested too deep)."""


def _nanos(value: Any) -> int:
    """A time the SDK should have been given as int nanoseconds, made one: a float is taken as the
    nanoseconds it says (``start_time=time.time()`` gives a span near 1970, visibly wrong but
    valid), anything out of range or not a number as 0."""
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return 0
    return number if 0 <= number < 1 << 63 else 0


def _bounded(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str | bytes | bool | int | float) or value is None:
        return value
    if depth >= MAX_NESTING:
        return repr(value)[:1000]
    if isinstance(value, Mapping):
        return {str(k): _bounded(v, depth + 1) for k, v in value.items()}
    if isinstance(value, Sequence):
        return [_bounded(v, depth + 1) for v in value]
    return value


def _bounded_attributes(attributes: Any) -> dict[str, Any]:
    return {str(k): _bounded(v) for k, v in dict(attributes or {}).items()}


def _encode_coerced(fields: tuple[Any, ...], error: Exception) -> str:
    """The span of ``fields`` with every field OTLP/JSON cannot hold coerced, warned once."""
    global _warned_coerced
    (context, parent, name, kind, start, end, attributes, events, links, status,
     dropped_attributes, dropped_events, dropped_links) = fields  # fmt: skip
    if not _warned_coerced:
        _warned_coerced = True
        _logger.warning(
            "modeltel: span %.100r had a field OTLP/JSON cannot hold (%s: %.200s); it is written "
            "with that field coerced (times to int nanoseconds, deep values as text)",
            name, type(error).__name__, error,
        )  # fmt: skip
    coerced = (
        context, parent, str(name), kind, _nanos(start), _nanos(end), _bounded_attributes(attributes),
        [Event(str(e.name), _bounded_attributes(e.attributes), _nanos(e.timestamp)) for e in events or ()],
        [Link(link.context, _bounded_attributes(link.attributes)) for link in links or ()],
        status, int(dropped_attributes or 0), int(dropped_events or 0), int(dropped_links or 0),
    )  # fmt: skip
    try:
        return _encode_fields(coerced)
    except Exception:  # e.g. a status or context that is not one: the span as ids, name and times
        return _encode_fields(
            (context, parent, str(name), kind, _nanos(start), _nanos(end), {}, [], [], _UNSET, 0, 0, 0)
        )


_NAME_CACHE_LIMIT = 4096
_quoted_names: dict[str, str] = {}


def _event(event: Event) -> str:
    if type(event.timestamp) is not int:
        raise _NotOtlp(f"event time is not int nanoseconds: {event.timestamp!r}")
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


def _encode_fields(fields: tuple[Any, ...]) -> str:
    """One ``Span`` object from its :func:`span_fields`."""
    (context, parent, name, kind, start, end, attributes, events, links, status,
     dropped_attributes, dropped_events, dropped_links) = fields  # fmt: skip
    if type(start) is not int or type(end) is not int:
        raise _NotOtlp(f"start or end time is not int nanoseconds: {start!r}, {end!r}")
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
        f"{'' if state is DEFAULT_TRACE_STATE else _trace_state(state)}{parent_id}"
        f'"name":{quoted},"kind":{kind._value_ + 1}'
        f',"startTimeUnixNano":"{start}","endTimeUnixNano":"{end}"'
        f',"attributes":{encode_attributes(attributes)}{tail}'
        f',"status":{{"code":{status.status_code._value_}{message}}},"flags":{flags}}}'
    )


def encode_span(span: ReadableSpan) -> str:
    """One OTLP/JSON ``Span`` object."""
    return _encode_fields(span_fields([span])[0])


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


_Group = tuple[Resource | None, InstrumentationScope | None, list[Any]]


def _by_resource(items: Iterable[Any]) -> Iterable[list[_Group]]:
    """``items`` (spans or log records: both have ``resource`` and ``instrumentation_scope``) in
    groups of one resource and one scope, the groups of each resource together, in first-seen order."""
    # Items of one batch nearly always share one resource and one scope: check the last group first.
    groups: dict[tuple[int, int], _Group] = {}
    last_resource: Resource | None = None
    last_scope: InstrumentationScope | None = None
    members: list[Any] = []
    for item in items:
        resource, scope = item.resource, item.instrumentation_scope
        if resource is not last_resource or scope is not last_scope or not members:
            group = groups.get((id(resource), id(scope)))
            if group is None:
                group = groups[(id(resource), id(scope))] = (resource, scope, [])
            last_resource, last_scope, members = resource, scope, group[2]
        members.append(item)
    by_resource: dict[int, list[_Group]] = {}
    for group in groups.values():
        by_resource.setdefault(id(group[0]), []).append(group)
    return by_resource.values()


def _request(items: Iterable[Any], keys: tuple[str, str, str], encode: Callable[[list[Any]], str]) -> str:
    """One ``Export*ServiceRequest``: ``keys`` name the resource, scope and item lists
    (``resourceSpans``, ``scopeSpans``, ``spans``), ``encode`` makes the items of one group."""
    resource_key, scope_key, items_key = keys
    # One list of parts and one join: the batch is ~300 KiB, and every `a + b` would copy all of it.
    parts = ['{"' + resource_key + '":[']
    for r, resource_groups in enumerate(_by_resource(items)):
        resource = resource_groups[0][0]
        encoded = _cache.resource(resource) if resource is not None else '{"attributes":[]}'
        parts.append(("," if r else "") + '{"resource":' + encoded + ',"' + scope_key + '":[')
        for s, (_, scope, members) in enumerate(resource_groups):
            parts.append(("," if s else "") + "{" + _cache.scope(scope) + ',"' + items_key + '":[')
            parts.append(encode(members))
            parts.append("]}")
        schema = ',"schemaUrl":' + _quote(resource.schema_url) if resource and resource.schema_url else ""
        parts.append("]" + schema + "}")
    parts.append("]}")
    return "".join(parts)


def _encode_span_group(spans: list[ReadableSpan]) -> str:
    return read_fields(spans, _FIELDS, _public_fields, _encode_list)


_SPAN_KEYS = ("resourceSpans", "scopeSpans", "spans")


def encode_spans(spans: Iterable[ReadableSpan]) -> str:
    """One ``ExportTraceServiceRequest`` for ``spans``, grouped by resource then scope (no newline)."""
    return _request(spans, _SPAN_KEYS, _encode_span_group)


# --- logs ----------------------------------------------------------------------------------------
_LOG_FIELD_NAMES = (
    "timestamp", "observed_timestamp", "severity_number", "severity_text", "body", "attributes",
    "trace_id", "span_id", "trace_flags", "event_name",
)  # fmt: skip
_LOG_FIELDS = operator.attrgetter(*_LOG_FIELD_NAMES)
"""The API ``LogRecord``'s fields (plain instance attributes), read in one C call."""
_FLAT = frozenset({str, int, float, bool})
_LOG_KEYS = ("resourceLogs", "scopeLogs", "logRecords")
_warned_log = False


def _any_value(value: Any) -> str:
    """A log body or attribute value as ``AnyValue`` members, nested at most ``MAX_NESTING`` deep."""
    if type(value) is str:
        return '"stringValue":' + _quote(value)
    return encode_value(_bounded(value))


def _log_attributes(attributes: Any) -> str:
    if not attributes:
        return "[]"
    items = attribute_items(attributes)
    if all(type(value) in _FLAT for _, value in items):
        return encode_attributes(attributes)
    return encode_attributes(_bounded_attributes(dict(items)))


def _encode_log(log: Any, dropped: int) -> str:
    """One ``LogRecord`` object from the API record ``log`` (the SDK record's ``log_record``)."""
    (timestamp, observed, severity, text, body, attributes,
     trace_id, span_id, flags, event_name) = _LOG_FIELDS(log)  # fmt: skip
    if type(observed) is not int or not (timestamp is None or type(timestamp) is int):
        raise _NotOtlp(f"time is not int nanoseconds: {timestamp!r}, {observed!r}")
    out = f'{{"timeUnixNano":"{timestamp}",' if timestamp is not None else "{"
    out += f'"observedTimeUnixNano":"{observed}"'
    if severity is not None and severity._value_:
        out += f',"severityNumber":{severity._value_}'
    if text:
        out += ',"severityText":' + _quote(text)
    if body is not None:
        out += ',"body":{' + _any_value(body) + "}"
    out += ',"attributes":' + _log_attributes(attributes)
    if dropped:
        out += f',"droppedAttributesCount":{dropped}'
    if trace_id:
        out += f',"traceId":"{trace_id.to_bytes(16, "big").hex()}"'
    if span_id:
        out += f',"spanId":"{span_id.to_bytes(8, "big").hex()}"'
    if flags:
        out += f',"flags":{int(flags)}'
    if event_name:
        out += ',"eventName":' + _quote(event_name)
    return out + "}"


def _encode_log_coerced(log: Any, dropped: int, error: Exception) -> str:
    """The record with what OTLP/JSON cannot hold coerced (times to int nanoseconds, values to
    text), warned once; at worst its times, severity and ids only."""
    global _warned_log
    if not _warned_log:
        _warned_log = True
        _logger.warning(
            "modeltel: a log record had a field OTLP/JSON cannot hold (%s: %.200s); it is written "
            "with that field coerced",
            type(error).__name__, error,
        )  # fmt: skip
    fields = dict(zip(_LOG_FIELD_NAMES, _LOG_FIELDS(log), strict=True))
    fields["timestamp"] = None if fields["timestamp"] is None else _nanos(fields["timestamp"])
    fields["observed_timestamp"] = _nanos(fields["observed_timestamp"])
    try:
        fields["body"] = None if fields["body"] is None else _bounded(fields["body"])
        fields["attributes"] = _bounded_attributes(fields["attributes"])
        return _encode_log(SimpleNamespace(**fields), dropped)
    except Exception:  # e.g. a severity that is not a SeverityNumber
        fields.update(severity_number=None, severity_text=None, body=None, attributes={}, event_name=None)
        return _encode_log(SimpleNamespace(**fields), dropped)


def _encode_log_group(records: list[Any]) -> str:
    out = []
    for record in records:
        log = record.log_record
        attributes = log.attributes
        dropped = getattr(attributes, "dropped", 0)
        try:
            out.append(_encode_log(log, dropped))
        except Exception as exc:  # one bad record never costs its batch
            out.append(_encode_log_coerced(log, dropped, exc))
    return ",".join(out)


def encode_logs(records: Iterable[Any]) -> str:
    """One ``ExportLogsServiceRequest`` for SDK log records (``ReadableLogRecord`` or
    ``ReadWriteLogRecord``), grouped by resource then scope (no newline).

    By hand like the spans, for the same reason: a record is logged on the application's thread and
    the writer must keep up with it (bench/logs.py). Ids are hex, as in the trace files; a record
    logged outside any span has none. Values nested deeper than ``MAX_NESTING`` become their text.
    """
    return _request(records, _LOG_KEYS, _encode_log_group)


# --- metrics -------------------------------------------------------------------------------------
# By hand too, though a collection is small: protobuf's JSON printer, the OTLP encoder and its
# generated modules cost ~20-30 ms to import, paid by every process at its last flush, at exit.
# The members are written in field-number order and with protobuf's rules for empty fields
# (proto3 defaults left out, ``optional`` and oneof fields kept when set), so each line is the one
# ``MessageToDict`` printed before, byte for byte (tests/export/test_metrics_json_oracle.py), but
# for attributes: those share the spans' encoder, which writes an empty key or list that protobuf
# leaves out (the same message), and keeps a value protobuf cannot encode (an int beyond int64) as
# its text where protobuf dropped the attribute.


def _object(members: str) -> str:
    """``{...}`` of members that each start with a comma."""
    return "{" + members[1:] + "}"


def _members_attributes(key: str, attributes: Mapping[str, Any] | None) -> str:
    """``,"<key>":[...]``, or nothing for no attributes (an empty repeated field is left out)."""
    return ',"' + key + '":' + encode_attributes(attributes) if attributes else ""


def _times(start: int, time: int) -> str:
    """The ``startTimeUnixNano``/``timeUnixNano`` members, each with a leading comma, 0 left out."""
    return (f',"startTimeUnixNano":"{start:d}"' if start else "") + (
        f',"timeUnixNano":"{time:d}"' if time else ""
    )


def _counts(key: str, counts: Sequence[int]) -> str:
    """A repeated uint64 member (decimal strings), left out when empty."""
    return ',"' + key + '":[' + ",".join(f'"{c:d}"' for c in counts) + "]" if counts else ""


def _optional_double(key: str, value: float | None) -> str:
    return "" if value is None else ',"' + key + '":' + _double(float(value))


def _number(value: float) -> tuple[str, str]:
    """``(asDouble member, asInt member)`` of a point's value, one of them empty: they sit on
    either side of the exemplars. An int beyond int64, which ``asInt`` cannot hold, is a double."""
    if isinstance(value, int) and _INT64_MIN <= value <= _INT64_MAX:
        return "", f',"asInt":"{int(value)}"'
    return ',"asDouble":' + _double(float(value)), ""


def _exemplars(key: str, exemplars: Sequence[Any]) -> str:
    if not exemplars:
        return ""
    out = []
    for exemplar in exemplars:
        as_double, as_int = _number(exemplar.value)
        span_id, trace_id = exemplar.span_id, exemplar.trace_id
        ids = (
            f',"spanId":"{_hex(span_id, 8)}","traceId":"{_hex(trace_id, 16)}"'
            if span_id is not None and trace_id is not None
            else ""
        )
        time = exemplar.time_unix_nano
        members = (f',"timeUnixNano":"{time:d}"' if time else "") + as_double + ids + as_int
        out.append(_object(members + _members_attributes("filteredAttributes", exemplar.filtered_attributes)))
    return ',"' + key + '":[' + ",".join(out) + "]"


def _number_point(point: Any) -> str:
    as_double, as_int = _number(point.value)
    return _object(
        _times(point.start_time_unix_nano, point.time_unix_nano) + as_double
        + _exemplars("exemplars", point.exemplars) + as_int
        + _members_attributes("attributes", point.attributes)
    )  # fmt: skip


def _histogram_point(point: Any) -> str:
    count = point.count
    bounds = point.explicit_bounds
    return _object(
        _times(point.start_time_unix_nano, point.time_unix_nano)
        + (f',"count":"{count:d}"' if count else "")
        + _optional_double("sum", point.sum)
        + _counts("bucketCounts", point.bucket_counts)
        + (',"explicitBounds":[' + ",".join(_double(float(b)) for b in bounds) + "]" if bounds else "")
        + _exemplars("exemplars", point.exemplars)
        + _members_attributes("attributes", point.attributes)
        + _optional_double("min", point.min)
        + _optional_double("max", point.max)
    )


def _buckets(key: str, buckets: Any) -> str:
    """A ``Buckets`` member, left out when it has no counts (as the OTLP exporter does)."""
    counts, offset = buckets.bucket_counts, buckets.offset
    if not counts:
        return ""
    members = (f',"offset":{offset:d}' if offset else "") + _counts("bucketCounts", counts)
    return ',"' + key + '":' + _object(members)


def _exponential_point(point: Any) -> str:
    count, scale, zero_count, flags = point.count, point.scale, point.zero_count, point.flags
    return _object(
        _members_attributes("attributes", point.attributes)
        + _times(point.start_time_unix_nano, point.time_unix_nano)
        + (f',"count":"{count:d}"' if count else "")
        + _optional_double("sum", point.sum)
        + (f',"scale":{scale:d}' if scale else "")
        + (f',"zeroCount":"{zero_count:d}"' if zero_count else "")
        + _buckets("positive", point.positive)
        + _buckets("negative", point.negative)
        + (f',"flags":{flags:d}' if flags else "")
        + _exemplars("exemplars", point.exemplars)
        + _optional_double("min", point.min)
        + _optional_double("max", point.max)
    )


_DATA: tuple[tuple[type, str, Callable[[Any], str]], ...] = (
    (Gauge, "gauge", _number_point),
    (Histogram, "histogram", _histogram_point),
    (Sum, "sum", _number_point),
    (ExponentialHistogram, "exponentialHistogram", _exponential_point),
)


def _metric_data(data: Any) -> str:
    """The metric's data member (``gauge``, ``sum``, ...): none for no points, as the OTLP exporter
    sets the member only while adding a point, and none (warned) for a type it does not know."""
    points = data.data_points
    if not points:
        return ""
    found = next((entry for entry in _DATA if isinstance(data, entry[0])), None)
    if found is None:
        _logger.warning("modeltel: unsupported metric data type %s", type(data).__name__)
        return ""
    kind, key, encode = found
    tail = ""
    if kind is not Gauge:
        temporality = int(data.aggregation_temporality)
        tail = f',"aggregationTemporality":{temporality}' if temporality else ""
    if kind is Sum and data.is_monotonic:
        tail += ',"isMonotonic":true'
    return ',"' + key + '":{"dataPoints":[' + ",".join(map(encode, points)) + "]" + tail + "}"


def _text(key: str, value: str | None) -> str:
    return ',"' + key + '":' + _quote(value) if value else ""


def _metric(metric: Any) -> str:
    return _object(
        _text("name", metric.name) + _text("description", metric.description) + _text("unit", metric.unit)
        + _metric_data(metric.data)
    )  # fmt: skip


def _scope_metrics(scope_metrics: Any) -> str:
    """One ``ScopeMetrics``; its schema URL is the scope's, as the OTLP exporter writes it."""
    scope = scope_metrics.scope
    if scope is None:
        encoded, schema_url = "{}", None
    else:
        encoded = _object(
            _text("name", scope.name) + _text("version", scope.version)
            + _members_attributes("attributes", scope.attributes)
        )  # fmt: skip
        schema_url = scope.schema_url
    metrics = scope_metrics.metrics
    listed = ',"metrics":[' + ",".join(map(_metric, metrics)) + "]" if metrics else ""
    return '{"scope":' + encoded + listed + _text("schemaUrl", schema_url) + "}"


def _resource_metrics(resource_metrics: Any) -> str:
    """One ``ResourceMetrics``; its schema URL is the resource's, as the OTLP exporter writes it."""
    resource = resource_metrics.resource
    scopes = resource_metrics.scope_metrics
    listed = ',"scopeMetrics":[' + ",".join(map(_scope_metrics, scopes)) + "]" if scopes else ""
    return (
        '{"resource":' + _object(_members_attributes("attributes", resource.attributes)) + listed
        + _text("schemaUrl", resource.schema_url) + "}"
    )  # fmt: skip


def encode_metrics(data: MetricsData) -> str:
    """One ``ExportMetricsServiceRequest`` for ``data`` (no newline); ``{}`` for no resource."""
    resources = data.resource_metrics
    if not resources:
        return "{}"
    return '{"resourceMetrics":[' + ",".join(map(_resource_metrics, resources)) + "]}"
