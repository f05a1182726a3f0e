"""The reader's model of OTLP data and its OTLP/JSON codec, both directions, for traces, metrics and logs.

One model for every signal: each item (a :class:`Span`, a :class:`Metric`, a :class:`LogRecord`)
points at the :class:`Resource` and :class:`Scope` of the block it was read from, shared by
identity, and a request is its items; :func:`groups` rebuilds the resource and scope blocks from
that identity, in the order they were read, so a line re-encoded comes out grouped as it went in.
A signal is one row of :data:`LAYOUTS` (the names of its blocks) plus a decoder and an encoder of
its item.

Every field of the trace, metric and log protos is carried, so ``decode`` then ``encode`` loses
nothing but what the protos declare equivalent: an empty message written or left out (an absent
status is UNSET, an absent scope is the empty one, an empty log body is no body), NaN payloads
(OTLP/JSON has one ``"NaN"``), and resource or scope blocks holding no item. Two exceptions the
protos themselves ask for: attribute keys are unique, so a repeated key keeps its last value;
``keyStrindex`` and ``stringValueStrindex`` point into the Profiles dictionary, which no other
signal has, so they are read "as if absent or empty" (common.proto). A ``KeyValue`` without
``key`` has the key ``""``, as protobuf reads it.

Accepted, as the OTLP/JSON encoding and the producers in the wild write it: ids in lower- or
upper-case hex (or protobuf-JSON base64), 64-bit integers as strings or numbers, enums as integers
or names, doubles as numbers or strings, ``scopeSpans`` or the older ``instrumentationLibrary*``,
lowerCamelCase or proto field names, and every optional field missing. Encoding always writes the
canonical form (lowercase hex, 64-bit integers as strings, enums as integers, ``scope*``), which is
what ``modeltel export --format otlp-json`` writes.

This is the full-fidelity route used by export, timeline, trace queries and replay; the
aggregations of ``show`` and ``stats`` read big files through :mod:`modeltel.read.scan` instead.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeAlias, TypeVar

from modeltel.formats import MAX_NESTING
from modeltel.formats.status import STATUS_ERROR as STATUS_ERROR
from modeltel.formats.status import STATUS_NAMES as STATUS_NAMES
from modeltel.formats.status import STATUS_OK as STATUS_OK
from modeltel.formats.status import STATUS_UNSET as STATUS_UNSET

AttributeValue: TypeAlias = (
    "str | bool | int | float | bytes | list[AttributeValue] | dict[str, AttributeValue] | None"
)
Attributes: TypeAlias = dict[str, AttributeValue]
LineKind = Literal["traces", "metrics", "logs"]

KIND_NAMES = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
_STATUS_ENUM = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
_KIND_ENUM = {f"SPAN_KIND_{name.upper()}": value for value, name in KIND_NAMES.items()}
_TEMPORALITY_ENUM = {
    "AGGREGATION_TEMPORALITY_UNSPECIFIED": 0,
    "AGGREGATION_TEMPORALITY_DELTA": 1,
    "AGGREGATION_TEMPORALITY_CUMULATIVE": 2,
}
_HEX = re.compile(r"^[0-9a-fA-F]*$")
_TRACES_START = re.compile(rb'^\s*\{\s*"(resourceSpans|resource_spans)"')
_METRICS_START = re.compile(rb'^\s*\{\s*"(resourceMetrics|resource_metrics)"')
_LOGS_START = re.compile(rb'^\s*\{\s*"(resourceLogs|resource_logs)"')


class InvalidRequest(ValueError):
    """A line is JSON but not an OTLP/JSON request (a bad id, a non-numeric time, ...)."""


# --- the model -------------------------------------------------------------------------------------------
@dataclass(slots=True)
class EntityRef:
    """A ``Resource.entityRefs`` entry: which of the resource's attributes identify an entity."""

    type: str = ""
    id_keys: tuple[str, ...] = ()
    description_keys: tuple[str, ...] = ()
    schema_url: str = ""


@dataclass(frozen=True, slots=True)
class Resource:
    """Resource of a ``resource*`` block (with the block's schema URL); shared by its items."""

    attributes: Attributes = field(default_factory=dict)
    schema_url: str = ""
    dropped_attributes_count: int = 0
    entity_refs: tuple[EntityRef, ...] = ()

    @property
    def service_name(self) -> str:
        value = self.attributes.get("service.name")
        return value if isinstance(value, str) else "unknown_service"


@dataclass(frozen=True, slots=True)
class Scope:
    """Instrumentation scope of a ``scope*`` block (with the block's schema URL); shared by its items."""

    name: str = ""
    version: str = ""
    attributes: Attributes = field(default_factory=dict)
    schema_url: str = ""
    dropped_attributes_count: int = 0


@dataclass(frozen=True, slots=True)
class Event:
    time_ns: int
    name: str
    attributes: Attributes = field(default_factory=dict)
    dropped_attributes_count: int = 0


@dataclass(frozen=True, slots=True)
class Link:
    trace_id: str
    span_id: str
    trace_state: str = ""
    attributes: Attributes = field(default_factory=dict)
    dropped_attributes_count: int = 0
    flags: int = 0


@dataclass(slots=True)
class Span:
    """One span, ids as lowercase hex, times as integer nanoseconds since the epoch."""

    trace_id: str
    span_id: str
    name: str
    start_ns: int
    end_ns: int
    parent_span_id: str = ""
    kind: int = 0
    status_code: int = STATUS_UNSET
    status_message: str = ""
    attributes: Attributes = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    trace_state: str = ""
    flags: int = 0
    resource: Resource = field(default_factory=Resource)
    scope: Scope = field(default_factory=Scope)
    dropped_attributes_count: int = 0
    dropped_events_count: int = 0
    dropped_links_count: int = 0

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9

    @property
    def is_error(self) -> bool:
        return self.status_code == STATUS_ERROR


Number: TypeAlias = int | float | None
"""A point's or exemplar's value: ``asInt`` as int, ``asDouble`` as float, neither as None."""


@dataclass(slots=True, kw_only=True)
class Exemplar:
    time_ns: int = 0
    value: Number = None
    filtered_attributes: Attributes = field(default_factory=dict)
    trace_id: str = ""
    span_id: str = ""


@dataclass(slots=True, kw_only=True)
class Point:
    """What every data point has; ``flags`` holds ``DataPointFlags`` (bit 0: no recorded value)."""

    attributes: Attributes = field(default_factory=dict)
    start_ns: int = 0
    time_ns: int = 0
    flags: int = 0


@dataclass(slots=True, kw_only=True)
class NumberPoint(Point):
    """A gauge's or a sum's point."""

    value: Number = None
    exemplars: tuple[Exemplar, ...] = ()


@dataclass(slots=True, kw_only=True)
class HistogramPoint(Point):
    """``sum``, ``min`` and ``max`` are None when not recorded (they are optional in the proto)."""

    count: int = 0
    sum: float | None = None
    bucket_counts: tuple[int, ...] = ()
    explicit_bounds: tuple[float, ...] = ()
    min: float | None = None
    max: float | None = None
    exemplars: tuple[Exemplar, ...] = ()


@dataclass(slots=True, kw_only=True)
class Buckets:
    """One range of an exponential histogram: counts of the buckets from index ``offset`` on."""

    offset: int = 0
    bucket_counts: tuple[int, ...] = ()


@dataclass(slots=True, kw_only=True)
class ExponentialHistogramPoint(Point):
    count: int = 0
    sum: float | None = None
    scale: int = 0
    zero_count: int = 0
    positive: Buckets = field(default_factory=Buckets)
    negative: Buckets = field(default_factory=Buckets)
    min: float | None = None
    max: float | None = None
    zero_threshold: float = 0.0
    exemplars: tuple[Exemplar, ...] = ()


@dataclass(slots=True, kw_only=True)
class SummaryPoint(Point):
    count: int = 0
    sum: float = 0.0
    quantiles: tuple[tuple[float, float], ...] = ()
    """``(quantile, value)`` pairs."""


MetricKind = Literal["gauge", "sum", "histogram", "exponential_histogram", "summary", ""]
"""The proto's name of the ``data`` a metric holds; "" for a metric that holds none."""


@dataclass(slots=True, kw_only=True)
class Metric:
    """One metric; ``points`` are :class:`NumberPoint` for gauges and sums, else the kind's own.

    ``temporality`` is meaningful for sums and (exponential) histograms, ``monotonic`` for sums.
    """

    name: str = ""
    description: str = ""
    unit: str = ""
    kind: MetricKind = ""
    points: list[Point] = field(default_factory=list)
    temporality: int = 0
    monotonic: bool = False
    metadata: Attributes = field(default_factory=dict)
    resource: Resource = field(default_factory=Resource)
    scope: Scope = field(default_factory=Scope)


SEVERITY_RANGES: tuple[tuple[str, int], ...] = (
    ("TRACE", 1),
    ("DEBUG", 5),
    ("INFO", 9),
    ("WARN", 13),
    ("ERROR", 17),
    ("FATAL", 21),
)
"""Each short severity name and the first ``SeverityNumber`` of its range of four (``INFO`` is 9,
``INFO2`` to ``INFO4`` are 10 to 12), as the log data model defines them."""
_SEVERITY_ENUM = {"SEVERITY_NUMBER_UNSPECIFIED": 0} | {
    f"SEVERITY_NUMBER_{name}{step + 1 if step else ''}": first + step
    for name, first in SEVERITY_RANGES
    for step in range(4)
}


@dataclass(slots=True, kw_only=True)
class LogRecord:
    """One log record, ids as lowercase hex ("" outside a span), times as integer nanoseconds.

    ``time_ns`` is when the event happened (0 when its source did not say), ``observed_ns`` when a
    bridge or collector saw it: :attr:`when_ns` is the time to order and filter by. ``body`` is the
    record's ``AnyValue`` as it was (a message string, or a map, list, number, bytes), None for none.
    """

    time_ns: int = 0
    observed_ns: int = 0
    severity_number: int = 0
    severity_text: str = ""
    body: AttributeValue = None
    attributes: Attributes = field(default_factory=dict)
    dropped_attributes_count: int = 0
    flags: int = 0
    trace_id: str = ""
    span_id: str = ""
    event_name: str = ""
    resource: Resource = field(default_factory=Resource)
    scope: Scope = field(default_factory=Scope)

    @property
    def when_ns(self) -> int:
        """``time_ns``, or the observed time when the source gave none (the data model's rule)."""
        return self.time_ns or self.observed_ns


class Item(Protocol):
    """What :func:`groups` needs of an item: the blocks it was read from."""

    @property
    def resource(self) -> Resource: ...

    @property
    def scope(self) -> Scope: ...


ItemT = TypeVar("ItemT", bound=Item)


@dataclass(slots=True)
class Layout:
    """The names of one signal's blocks: ``{resources: [{"resource", scopes: [{"scope", items}]}]}``."""

    resources: str
    scopes: str
    items: str
    legacy_scopes: str
    """The name before OTLP 0.15 (``instrumentationLibrary*``); its scope is ``instrumentationLibrary``."""


LAYOUTS: dict[LineKind, Layout] = {
    "traces": Layout("resourceSpans", "scopeSpans", "spans", "instrumentationLibrarySpans"),
    "metrics": Layout("resourceMetrics", "scopeMetrics", "metrics", "instrumentationLibraryMetrics"),
    "logs": Layout("resourceLogs", "scopeLogs", "logRecords", "instrumentationLibraryLogs"),
}


def groups(items: Iterable[ItemT]) -> list[tuple[Resource, list[tuple[Scope, list[ItemT]]]]]:
    """``items`` as resource blocks of scope blocks, in first-seen order (blocks shared by identity)."""
    by_resource: dict[int, tuple[Resource, dict[int, tuple[Scope, list[ItemT]]]]] = {}
    for item in items:
        resource, scope = item.resource, item.scope
        scopes = by_resource.get(id(resource))
        if scopes is None:
            scopes = by_resource[id(resource)] = (resource, {})
        members = scopes[1].get(id(scope))
        if members is None:
            members = scopes[1][id(scope)] = (scope, [])
        members[1].append(item)
    return [(resource, list(scopes.values())) for resource, scopes in by_resource.values()]


# --- decoding: helpers -----------------------------------------------------------------------------------
_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")


@functools.cache
def _snake(camel: str) -> str:
    return _SNAKE.sub("_", camel).lower()


def _get(node: Mapping[str, Any], camel: str, snake: str | None = None) -> Any:
    value = node.get(camel)
    if value is None and snake is not None:
        value = node.get(snake)
    return value


def _list(node: Mapping[str, Any], camel: str, snake: str | None = None) -> list[Any]:
    value = _get(node, camel, snake)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidRequest(f"{camel} is not a list")
    return value


def _int(value: Any, what: str) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise InvalidRequest(f"{what} is not an integer: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise InvalidRequest(f"{what} is not an integer: {str(value)[:40]!r}")


MAX_TIME_NS = (1 << 64) - 1
"""The largest ``fixed64``, the type of every OTLP time: a time past it (an app that stamped a span
in nanoseconds times 1000) is refused with a warning, not wrapped or carried into arithmetic."""


def _time(value: Any, what: str) -> int:
    number = _int(value, what)
    if not 0 <= number <= MAX_TIME_NS:
        raise InvalidRequest(f"{what} out of range (0 to {MAX_TIME_NS}): {str(number)[:40]}")
    return number


def _double(value: Any, what: str) -> float:
    """A double as protobuf's JSON mapping writes it: a number, or a string ("NaN", "-Infinity", "1.5")."""
    if isinstance(value, float):
        return value
    if isinstance(value, bool):
        raise InvalidRequest(f"{what} is not a number: {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidRequest(f"{what} is not a number: {str(value)[:40]!r}") from None


def _optional_double(node: Mapping[str, Any], camel: str) -> float | None:
    value = node.get(camel)
    return None if value is None else _double(value, camel)


def _double_or_zero(value: Any, what: str) -> float:
    return 0.0 if value is None else _double(value, what)


def _enum(value: Any, names: Mapping[str, int], what: str) -> int:
    if isinstance(value, str) and value in names:
        return names[value]
    return _int(value, what)


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _bytes(value: Any, what: str) -> bytes:
    """Base64 as protobuf's JSON parser takes it: standard or URL-safe alphabet, padded or not."""
    if not isinstance(value, str):
        raise InvalidRequest(f"{what} is not a base64 string")
    text = value.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{what} is not base64: {value[:40]!r}") from None


def normalize_id(value: Any, size: int, what: str) -> str:
    """An id as lowercase hex of ``size`` bytes; "" for a missing one. Accepts hex or base64."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise InvalidRequest(f"{what} is not a string")
    if len(value) == 2 * size and _HEX.match(value):
        return value.lower()
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != size:
        raise InvalidRequest(f"{what} is not a {size}-byte id: {value!r}")
    return raw.hex()


def decode_value(node: Any, depth: int = 0) -> AttributeValue:
    """An OTLP ``AnyValue`` object as a Python value (``None`` for an empty one)."""
    if not isinstance(node, dict) or not node:
        return None
    if depth > MAX_NESTING:
        raise InvalidRequest(f"attribute value nested deeper than {MAX_NESTING} levels")
    key, value = next(iter(node.items()))
    if key in ("stringValue", "string_value"):
        return _str(value)
    if key in ("intValue", "int_value"):
        return _int(value, "intValue")
    if key in ("doubleValue", "double_value"):
        return _double(value, "doubleValue")
    if key in ("boolValue", "bool_value"):
        return bool(value)
    if key in ("arrayValue", "array_value"):
        return [decode_value(v, depth + 1) for v in _list(value or {}, "values")]
    if key in ("kvlistValue", "kvlist_value"):
        return decode_attributes(_list(value or {}, "values"), depth + 1)
    if key in ("bytesValue", "bytes_value"):
        return _bytes(value, "bytesValue")
    if key in ("stringValueStrindex", "string_value_strindex"):
        return None
    raise InvalidRequest(f"unknown attribute value type {key!r}")


def decode_attributes(items: Any, depth: int = 0) -> Attributes:
    """A list of OTLP ``KeyValue`` as a dict (a repeated key keeps its last value; no key is "")."""
    if not items:
        return {}
    if not isinstance(items, list):
        raise InvalidRequest("attributes is not a list")
    out: Attributes = {}
    for item in items:
        if not isinstance(item, dict):
            raise InvalidRequest("attribute is not an object")
        key = item.get("key")
        if key is None:
            key = ""
        elif not isinstance(key, str):
            raise InvalidRequest("attribute key is not a string")
        out[key] = decode_value(item.get("value"), depth)
    return out


def _count(node: Mapping[str, Any], camel: str, snake: str) -> int:
    """An optional integer field, quick when absent: dropped counts and flags mostly are."""
    value = node.get(camel)
    if value is None:
        value = node.get(snake)
        if value is None:
            return 0
    return value if type(value) is int else _int(value, camel)


def _dropped(node: Mapping[str, Any]) -> int:
    return _count(node, "droppedAttributesCount", "dropped_attributes_count")


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(f"{what} is not an object")
    return value


# --- decoding: blocks ------------------------------------------------------------------------------------
def _resource(block: Mapping[str, Any]) -> Resource:
    node = _object(block.get("resource"), "resource")
    refs = tuple(
        EntityRef(
            type=_str(ref.get("type")),
            id_keys=tuple(map(_str, _list(ref, "idKeys", "id_keys"))),
            description_keys=tuple(map(_str, _list(ref, "descriptionKeys", "description_keys"))),
            schema_url=_str(_get(ref, "schemaUrl", "schema_url")),
        )
        for ref in _list(node, "entityRefs", "entity_refs")
    )
    return Resource(
        attributes=decode_attributes(node.get("attributes")),
        schema_url=_str(_get(block, "schemaUrl", "schema_url")),
        dropped_attributes_count=_dropped(node),
        entity_refs=refs,
    )


def _scope(block: Mapping[str, Any]) -> Scope:
    node = _object(
        block.get("scope") or _get(block, "instrumentationLibrary", "instrumentation_library"), "scope"
    )
    return Scope(
        name=_str(node.get("name")),
        version=_str(node.get("version")),
        attributes=decode_attributes(node.get("attributes")),
        schema_url=_str(_get(block, "schemaUrl", "schema_url")),
        dropped_attributes_count=_dropped(node),
    )


def _decode_blocks(
    request: Any, layout: Layout, decode_item: Callable[[Any, Resource, Scope], ItemT]
) -> list[ItemT]:
    if not isinstance(request, dict):
        raise InvalidRequest("not a JSON object")
    out: list[ItemT] = []
    try:
        for block in _list(request, layout.resources, _snake(layout.resources)):
            resource = _resource(block)
            scope_blocks = _list(block, layout.scopes, _snake(layout.scopes)) or _list(
                block, layout.legacy_scopes, _snake(layout.legacy_scopes)
            )
            for scope_block in scope_blocks:
                scope = _scope(scope_block)
                for node in _list(scope_block, layout.items, _snake(layout.items)):
                    out.append(decode_item(node, resource, scope))
    except (AttributeError, TypeError) as exc:  # a scalar where an object belongs
        raise InvalidRequest(f"unexpected structure ({exc})") from None
    return out


def load_line(line: bytes) -> Any:
    """One JSONL line parsed (:class:`InvalidRequest` when it is not JSON or nests too deep)."""
    try:
        return json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"not JSON: {exc}") from None
    except RecursionError:
        raise InvalidRequest("nested too deeply to be OTLP") from None


def signal_of_document(document: Any) -> LineKind | None:
    """Which signal a parsed line holds, by its top-level key; None for anything else."""
    if not isinstance(document, dict):
        return None
    for signal, layout in LAYOUTS.items():
        if layout.resources in document or _snake(layout.resources) in document:
            return signal
    return None


def signal_of(line: bytes) -> LineKind | None:
    """Which signal a line holds, or None for something else.

    Canonical lines are told apart by their first key without parsing; others are parsed.
    """
    if _TRACES_START.match(line):
        return "traces"
    if _METRICS_START.match(line):
        return "metrics"
    if _LOGS_START.match(line):
        return "logs"
    try:
        return signal_of_document(load_line(line))
    except InvalidRequest:
        return None


def _guarded(decode: Callable[[Any], list[ItemT]], document: Any) -> list[ItemT]:
    try:
        return decode(document)
    except RecursionError:
        raise InvalidRequest("nested too deeply to be OTLP") from None


# --- decoding: spans -------------------------------------------------------------------------------------
def _decode_event(node: Any) -> Event:
    return Event(
        time_ns=_time(_get(node, "timeUnixNano", "time_unix_nano"), "timeUnixNano"),
        name=_str(node.get("name")),
        attributes=decode_attributes(node.get("attributes")),
        dropped_attributes_count=_dropped(node),
    )


def _decode_link(node: Any) -> Link:
    return Link(
        trace_id=normalize_id(_get(node, "traceId", "trace_id"), 16, "link traceId"),
        span_id=normalize_id(_get(node, "spanId", "span_id"), 8, "link spanId"),
        trace_state=_str(_get(node, "traceState", "trace_state")),
        attributes=decode_attributes(node.get("attributes")),
        dropped_attributes_count=_dropped(node),
        flags=_count(node, "flags", "flags"),
    )


def _decode_span(node: Any, resource: Resource, scope: Scope) -> Span:
    if not isinstance(node, dict):
        raise InvalidRequest("span is not an object")
    status = node.get("status") or {}
    events = node.get("events")
    links = node.get("links")
    return Span(
        trace_id=normalize_id(_get(node, "traceId", "trace_id"), 16, "traceId"),
        span_id=normalize_id(_get(node, "spanId", "span_id"), 8, "spanId"),
        parent_span_id=normalize_id(_get(node, "parentSpanId", "parent_span_id"), 8, "parentSpanId"),
        name=_str(node.get("name")),
        kind=_enum(node.get("kind"), _KIND_ENUM, "kind"),
        start_ns=_time(_get(node, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano"),
        end_ns=_time(_get(node, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano"),
        status_code=_enum(status.get("code"), _STATUS_ENUM, "status.code"),
        status_message=_str(status.get("message")),
        attributes=decode_attributes(node.get("attributes")),
        events=[_decode_event(e) for e in _list(node, "events")] if events else [],
        links=[_decode_link(k) for k in _list(node, "links")] if links else [],
        trace_state=_str(_get(node, "traceState", "trace_state")),
        flags=_count(node, "flags", "flags"),
        resource=resource,
        scope=scope,
        dropped_attributes_count=_dropped(node),
        dropped_events_count=_count(node, "droppedEventsCount", "dropped_events_count"),
        dropped_links_count=_count(node, "droppedLinksCount", "dropped_links_count"),
    )


def decode_request(request: Any) -> list[Span]:
    """The spans of one ``ExportTraceServiceRequest`` object (raises :class:`InvalidRequest`)."""
    return _decode_blocks(request, LAYOUTS["traces"], _decode_span)


def decode_line(line: bytes) -> list[Span]:
    """The spans of one JSONL line; :class:`InvalidRequest` (a ``ValueError``) when it is not one.

    A line of another signal holds no span: ``[]``.
    """
    return _guarded(decode_request, load_line(line))


# --- decoding: metrics -----------------------------------------------------------------------------------
def _value(node: Mapping[str, Any]) -> Number:
    value = _get(node, "asDouble", "as_double")
    if value is not None:
        return _double(value, "asDouble")
    value = _get(node, "asInt", "as_int")
    if value is not None:
        return _int(value, "asInt")
    return None


def _decode_exemplars(node: Mapping[str, Any]) -> tuple[Exemplar, ...]:
    return tuple(
        Exemplar(
            time_ns=_time(_get(e, "timeUnixNano", "time_unix_nano"), "timeUnixNano"),
            value=_value(e),
            filtered_attributes=decode_attributes(_get(e, "filteredAttributes", "filtered_attributes")),
            trace_id=normalize_id(_get(e, "traceId", "trace_id"), 16, "exemplar traceId"),
            span_id=normalize_id(_get(e, "spanId", "span_id"), 8, "exemplar spanId"),
        )
        for e in _list(node, "exemplars")
    )


def _point_fields(node: Any) -> dict[str, Any]:
    if not isinstance(node, dict):
        raise InvalidRequest("data point is not an object")
    return {
        "attributes": decode_attributes(node.get("attributes")),
        "start_ns": _time(_get(node, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano"),
        "time_ns": _time(_get(node, "timeUnixNano", "time_unix_nano"), "timeUnixNano"),
        "flags": _int(node.get("flags"), "flags"),
    }


def _counts(node: Mapping[str, Any], what: str = "bucketCounts") -> tuple[int, ...]:
    return tuple(_int(v, what) for v in _list(node, what, _snake(what)))


def _number_point(node: Any) -> NumberPoint:
    return NumberPoint(**_point_fields(node), value=_value(node), exemplars=_decode_exemplars(node))


def _histogram_point(node: Any) -> HistogramPoint:
    return HistogramPoint(
        **_point_fields(node),
        count=_int(node.get("count"), "count"),
        sum=_optional_double(node, "sum"),
        bucket_counts=_counts(node),
        explicit_bounds=tuple(
            _double(v, "explicitBounds") for v in _list(node, "explicitBounds", "explicit_bounds")
        ),
        min=_optional_double(node, "min"),
        max=_optional_double(node, "max"),
        exemplars=_decode_exemplars(node),
    )


def _buckets(node: Any) -> Buckets:
    node = _object(node, "buckets")
    return Buckets(offset=_int(node.get("offset"), "offset"), bucket_counts=_counts(node))


def _exponential_point(node: Any) -> ExponentialHistogramPoint:
    return ExponentialHistogramPoint(
        **_point_fields(node),
        count=_int(node.get("count"), "count"),
        sum=_optional_double(node, "sum"),
        scale=_int(node.get("scale"), "scale"),
        zero_count=_int(_get(node, "zeroCount", "zero_count"), "zeroCount"),
        positive=_buckets(node.get("positive")),
        negative=_buckets(node.get("negative")),
        min=_optional_double(node, "min"),
        max=_optional_double(node, "max"),
        zero_threshold=_double_or_zero(_get(node, "zeroThreshold", "zero_threshold"), "zeroThreshold"),
        exemplars=_decode_exemplars(node),
    )


def _summary_point(node: Any) -> SummaryPoint:
    return SummaryPoint(
        **_point_fields(node),
        count=_int(node.get("count"), "count"),
        sum=_double_or_zero(node.get("sum"), "sum"),
        quantiles=tuple(
            (_double_or_zero(q.get("quantile"), "quantile"), _double_or_zero(q.get("value"), "value"))
            for q in _list(node, "quantileValues", "quantile_values")
        ),
    )


_POINT_DECODERS: dict[MetricKind, tuple[str, Callable[[Any], Point]]] = {
    "gauge": ("gauge", _number_point),
    "sum": ("sum", _number_point),
    "histogram": ("histogram", _histogram_point),
    "exponential_histogram": ("exponentialHistogram", _exponential_point),
    "summary": ("summary", _summary_point),
}


def _decode_metric(node: Any, resource: Resource, scope: Scope) -> Metric:
    if not isinstance(node, dict):
        raise InvalidRequest("metric is not an object")
    metric = Metric(
        name=_str(node.get("name")),
        description=_str(node.get("description")),
        unit=_str(node.get("unit")),
        metadata=decode_attributes(node.get("metadata")),
        resource=resource,
        scope=scope,
    )
    for kind, (camel, decode_point) in _POINT_DECODERS.items():
        data = _get(node, camel, kind)
        if data is None:
            continue
        data = _object(data, camel)
        metric.kind = kind
        metric.points = [decode_point(p) for p in _list(data, "dataPoints", "data_points")]
        metric.temporality = _enum(
            _get(data, "aggregationTemporality", "aggregation_temporality"),
            _TEMPORALITY_ENUM,
            "aggregationTemporality",
        )
        metric.monotonic = bool(_get(data, "isMonotonic", "is_monotonic"))
        break
    return metric


def decode_metrics_request(request: Any) -> list[Metric]:
    """The metrics of one ``ExportMetricsServiceRequest`` object (raises :class:`InvalidRequest`)."""
    return _decode_blocks(request, LAYOUTS["metrics"], _decode_metric)


def decode_metrics_line(line: bytes) -> list[Metric]:
    """The metrics of one JSONL line (``[]`` for a line of another signal)."""
    return _guarded(decode_metrics_request, load_line(line))


def data_points(metrics: Iterable[Metric]) -> int:
    """How many data points ``metrics`` hold: what a metrics exporter counts as items."""
    return sum(len(metric.points) for metric in metrics)


# --- decoding: logs --------------------------------------------------------------------------------------
def _decode_log(node: Any, resource: Resource, scope: Scope) -> LogRecord:
    if not isinstance(node, dict):
        raise InvalidRequest("log record is not an object")
    return LogRecord(
        time_ns=_time(_get(node, "timeUnixNano", "time_unix_nano"), "timeUnixNano"),
        observed_ns=_time(
            _get(node, "observedTimeUnixNano", "observed_time_unix_nano"), "observedTimeUnixNano"
        ),
        severity_number=_enum(
            _get(node, "severityNumber", "severity_number"), _SEVERITY_ENUM, "severityNumber"
        ),
        severity_text=_str(_get(node, "severityText", "severity_text")),
        body=decode_value(node.get("body")),
        attributes=decode_attributes(node.get("attributes")),
        dropped_attributes_count=_dropped(node),
        flags=_count(node, "flags", "flags"),
        trace_id=normalize_id(_get(node, "traceId", "trace_id"), 16, "traceId"),
        span_id=normalize_id(_get(node, "spanId", "span_id"), 8, "spanId"),
        event_name=_str(_get(node, "eventName", "event_name")),
        resource=resource,
        scope=scope,
    )


def decode_logs_request(request: Any) -> list[LogRecord]:
    """The log records of one ``ExportLogsServiceRequest`` object (raises :class:`InvalidRequest`)."""
    return _decode_blocks(request, LAYOUTS["logs"], _decode_log)


def decode_logs_line(line: bytes) -> list[LogRecord]:
    """The log records of one JSONL line (``[]`` for a line of another signal)."""
    return _guarded(decode_logs_request, load_line(line))


# --- encoding (canonical OTLP/JSON) ----------------------------------------------------------------------
def _encode_double(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def encode_value(value: AttributeValue) -> dict[str, Any]:
    """A Python value as an OTLP ``AnyValue`` object, canonical form."""
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": _encode_double(value)}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": encode_attributes(value)}}
    return {"arrayValue": {"values": [encode_value(v) for v in value]}}


def encode_attributes(attributes: Mapping[str, AttributeValue]) -> list[dict[str, Any]]:
    return [{"key": key, "value": encode_value(value)} for key, value in attributes.items()]


def _put(node: dict[str, Any], key: str, value: Any) -> None:
    """``node[key] = value`` unless it is the field's default, as protobuf's JSON mapping leaves those out."""
    if value:
        node[key] = value


def _encode_resource(resource: Resource) -> dict[str, Any]:
    node: dict[str, Any] = {"attributes": encode_attributes(resource.attributes)}
    _put(node, "droppedAttributesCount", resource.dropped_attributes_count)
    if resource.entity_refs:
        node["entityRefs"] = []
        for ref in resource.entity_refs:
            entry: dict[str, Any] = {}
            _put(entry, "schemaUrl", ref.schema_url)
            _put(entry, "type", ref.type)
            _put(entry, "idKeys", list(ref.id_keys))
            _put(entry, "descriptionKeys", list(ref.description_keys))
            node["entityRefs"].append(entry)
    return node


def _encode_scope(scope: Scope) -> dict[str, Any]:
    node: dict[str, Any] = {"name": scope.name}
    _put(node, "version", scope.version)
    if scope.attributes:
        node["attributes"] = encode_attributes(scope.attributes)
    _put(node, "droppedAttributesCount", scope.dropped_attributes_count)
    return node


def _encode_blocks(
    items: Iterable[ItemT], layout: Layout, encode_item: Callable[[ItemT], Any]
) -> dict[str, Any]:
    blocks = []
    for resource, scopes in groups(items):
        scope_blocks = []
        for scope, members in scopes:
            entry: dict[str, Any] = {
                "scope": _encode_scope(scope),
                layout.items: [encode_item(m) for m in members],
            }
            _put(entry, "schemaUrl", scope.schema_url)
            scope_blocks.append(entry)
        block: dict[str, Any] = {"resource": _encode_resource(resource), layout.scopes: scope_blocks}
        _put(block, "schemaUrl", resource.schema_url)
        blocks.append(block)
    return {layout.resources: blocks}


def _encode_event(event: Event) -> dict[str, Any]:
    node = {
        "timeUnixNano": str(event.time_ns),
        "name": event.name,
        "attributes": encode_attributes(event.attributes),
    }
    _put(node, "droppedAttributesCount", event.dropped_attributes_count)
    return node


def _encode_link(link: Link) -> dict[str, Any]:
    node: dict[str, Any] = {"traceId": link.trace_id, "spanId": link.span_id}
    _put(node, "traceState", link.trace_state)
    node["attributes"] = encode_attributes(link.attributes)
    _put(node, "droppedAttributesCount", link.dropped_attributes_count)
    _put(node, "flags", link.flags)
    return node


def encode_span(span: Span) -> dict[str, Any]:
    """One OTLP/JSON ``Span`` object, canonical form, optional fields left out when empty."""
    # Plain ifs rather than _put: this runs per span of an export, and the calls cost ~10 %.
    node: dict[str, Any] = {"traceId": span.trace_id, "spanId": span.span_id}
    if span.trace_state:
        node["traceState"] = span.trace_state
    if span.parent_span_id:
        node["parentSpanId"] = span.parent_span_id
    node["name"] = span.name
    node["kind"] = span.kind
    node["startTimeUnixNano"] = str(span.start_ns)
    node["endTimeUnixNano"] = str(span.end_ns)
    node["attributes"] = encode_attributes(span.attributes)
    if span.dropped_attributes_count:
        node["droppedAttributesCount"] = span.dropped_attributes_count
    if span.events:
        node["events"] = [_encode_event(e) for e in span.events]
    if span.dropped_events_count:
        node["droppedEventsCount"] = span.dropped_events_count
    if span.links:
        node["links"] = [_encode_link(k) for k in span.links]
    if span.dropped_links_count:
        node["droppedLinksCount"] = span.dropped_links_count
    node["status"] = (
        {"code": span.status_code, "message": span.status_message}
        if span.status_message
        else {"code": span.status_code}
    )
    if span.flags:
        node["flags"] = span.flags
    return node


def encode_request(spans: Iterable[Span]) -> dict[str, Any]:
    """One ``ExportTraceServiceRequest`` for ``spans``, grouped by resource then scope."""
    return _encode_blocks(spans, LAYOUTS["traces"], encode_span)


def _put_value(node: dict[str, Any], value: Number) -> None:
    if isinstance(value, float):
        node["asDouble"] = _encode_double(value)
    elif value is not None:
        node["asInt"] = str(value)


def _put_double(node: dict[str, Any], key: str, value: float) -> None:
    """A double unless it is +0.0, the default (-0.0 is not: it reads back as a different value)."""
    if value or math.copysign(1.0, value) < 0:
        node[key] = _encode_double(value)


def _put_optional(node: dict[str, Any], key: str, value: float | None) -> None:
    if value is not None:
        node[key] = _encode_double(value)


def _encode_exemplars(node: dict[str, Any], exemplars: tuple[Exemplar, ...]) -> None:
    if not exemplars:
        return
    out = []
    for exemplar in exemplars:
        entry: dict[str, Any] = {}
        if exemplar.filtered_attributes:
            entry["filteredAttributes"] = encode_attributes(exemplar.filtered_attributes)
        _put(entry, "timeUnixNano", str(exemplar.time_ns) if exemplar.time_ns else "")
        _put_value(entry, exemplar.value)
        _put(entry, "spanId", exemplar.span_id)
        _put(entry, "traceId", exemplar.trace_id)
        out.append(entry)
    node["exemplars"] = out


def _uint64(value: int) -> str:
    return str(value) if value else ""


def _encode_point(point: Point) -> dict[str, Any]:
    node: dict[str, Any] = {}
    if point.attributes:
        node["attributes"] = encode_attributes(point.attributes)
    _put(node, "startTimeUnixNano", _uint64(point.start_ns))
    _put(node, "timeUnixNano", _uint64(point.time_ns))
    if isinstance(point, NumberPoint):
        _put_value(node, point.value)
        _encode_exemplars(node, point.exemplars)
    elif isinstance(point, HistogramPoint):
        _put(node, "count", _uint64(point.count))
        _put_optional(node, "sum", point.sum)
        _put(node, "bucketCounts", [str(c) for c in point.bucket_counts])
        _put(node, "explicitBounds", [_encode_double(b) for b in point.explicit_bounds])
        _encode_exemplars(node, point.exemplars)
        _put_optional(node, "min", point.min)
        _put_optional(node, "max", point.max)
    elif isinstance(point, ExponentialHistogramPoint):
        _put(node, "count", _uint64(point.count))
        _put_optional(node, "sum", point.sum)
        _put(node, "scale", point.scale)
        _put(node, "zeroCount", _uint64(point.zero_count))
        for key, buckets in (("positive", point.positive), ("negative", point.negative)):
            if buckets.offset or buckets.bucket_counts:
                entry: dict[str, Any] = {}
                _put(entry, "offset", buckets.offset)
                _put(entry, "bucketCounts", [str(c) for c in buckets.bucket_counts])
                node[key] = entry
        _encode_exemplars(node, point.exemplars)
        _put_optional(node, "min", point.min)
        _put_optional(node, "max", point.max)
        _put_double(node, "zeroThreshold", point.zero_threshold)
    elif isinstance(point, SummaryPoint):
        _put(node, "count", _uint64(point.count))
        _put_double(node, "sum", point.sum)
        quantiles = []
        for quantile, value in point.quantiles:
            entry = {}
            _put_double(entry, "quantile", quantile)
            _put_double(entry, "value", value)
            quantiles.append(entry)
        _put(node, "quantileValues", quantiles)
    _put(node, "flags", point.flags)
    return node


def encode_metric(metric: Metric) -> dict[str, Any]:
    """One OTLP/JSON ``Metric`` object, canonical form (defaults left out, as protobuf's JSON does)."""
    node: dict[str, Any] = {"name": metric.name}
    _put(node, "description", metric.description)
    _put(node, "unit", metric.unit)
    if metric.kind:
        data: dict[str, Any] = {}
        _put(data, "dataPoints", [_encode_point(p) for p in metric.points])
        if metric.kind in ("sum", "histogram", "exponential_histogram"):
            _put(data, "aggregationTemporality", metric.temporality)
        if metric.kind == "sum":
            _put(data, "isMonotonic", metric.monotonic)
        node[_POINT_DECODERS[metric.kind][0]] = data
    if metric.metadata:
        node["metadata"] = encode_attributes(metric.metadata)
    return node


def encode_metrics_request(metrics: Iterable[Metric]) -> dict[str, Any]:
    """One ``ExportMetricsServiceRequest`` for ``metrics``, grouped by resource then scope."""
    return _encode_blocks(metrics, LAYOUTS["metrics"], encode_metric)


def encode_log(record: LogRecord) -> dict[str, Any]:
    """One OTLP/JSON ``LogRecord`` object, canonical form (defaults left out, as protobuf's JSON does)."""
    node: dict[str, Any] = {}
    _put(node, "timeUnixNano", _uint64(record.time_ns))
    _put(node, "observedTimeUnixNano", _uint64(record.observed_ns))
    _put(node, "severityNumber", record.severity_number)
    _put(node, "severityText", record.severity_text)
    if record.body is not None:
        node["body"] = encode_value(record.body)
    if record.attributes:
        node["attributes"] = encode_attributes(record.attributes)
    _put(node, "droppedAttributesCount", record.dropped_attributes_count)
    _put(node, "flags", record.flags)
    _put(node, "traceId", record.trace_id)
    _put(node, "spanId", record.span_id)
    _put(node, "eventName", record.event_name)
    return node


def encode_logs_request(records: Iterable[LogRecord]) -> dict[str, Any]:
    """One ``ExportLogsServiceRequest`` for ``records``, grouped by resource then scope."""
    return _encode_blocks(records, LAYOUTS["logs"], encode_log)


@dataclass(slots=True)
class Decoded:
    """What one line holds: its signal (None for a JSON object of no known signal) and its items."""

    signal: LineKind | None
    spans: list[Span] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    logs: list[LogRecord] = field(default_factory=list)


def decode_any(line: bytes) -> Decoded:
    """The items of one line of any signal (:class:`InvalidRequest` when it is not OTLP/JSON)."""
    document = load_line(line)
    signal = signal_of_document(document)
    if signal == "metrics":
        return Decoded(signal, metrics=_guarded(decode_metrics_request, document))
    if signal == "logs":
        return Decoded(signal, logs=_guarded(decode_logs_request, document))
    return Decoded(signal, spans=_guarded(decode_request, document))
