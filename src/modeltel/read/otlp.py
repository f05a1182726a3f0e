"""Decoding any valid OTLP/JSON trace request into :class:`Span` objects, and encoding them back.

Accepted, as the OTLP/JSON encoding and the producers in the wild write it: ids in lower- or
upper-case hex (or protobuf-JSON base64), 64-bit integers as strings or numbers, enums as integers
or names, ``scopeSpans`` or the older ``instrumentationLibrarySpans``, lowerCamelCase or proto
field names, and every optional field missing. Re-encoding always writes the canonical form
(lowercase hex, int64 as strings, ``scopeSpans``), which is what ``modeltel export --format
otlp-json`` writes.

This is the full-fidelity route used by export, timeline and trace queries; the aggregations of
``show`` and ``stats`` read big files through :mod:`modeltel.read.scan` instead.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

AttributeValue: TypeAlias = (
    "str | bool | int | float | bytes | list[AttributeValue] | dict[str, AttributeValue] | None"
)
Attributes: TypeAlias = dict[str, AttributeValue]

STATUS_UNSET = 0
STATUS_OK = 1
STATUS_ERROR = 2
STATUS_NAMES = {STATUS_UNSET: "UNSET", STATUS_OK: "OK", STATUS_ERROR: "ERROR"}
KIND_NAMES = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
_STATUS_ENUM = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
_KIND_ENUM = {f"SPAN_KIND_{name.upper()}": value for value, name in KIND_NAMES.items()}
_HEX = re.compile(r"^[0-9a-fA-F]*$")


class InvalidRequest(ValueError):
    """A line is JSON but not an OTLP/JSON trace request (a bad id, a non-numeric time, ...)."""


@dataclass(frozen=True, slots=True)
class Resource:
    """Resource of a ``resourceSpans`` entry; shared by identity among its spans."""

    attributes: Attributes = field(default_factory=dict)
    schema_url: str = ""

    @property
    def service_name(self) -> str:
        value = self.attributes.get("service.name")
        return value if isinstance(value, str) else "unknown_service"


@dataclass(frozen=True, slots=True)
class Scope:
    """Instrumentation scope of a ``scopeSpans`` entry; shared by identity among its spans."""

    name: str = ""
    version: str = ""
    attributes: Attributes = field(default_factory=dict)
    schema_url: str = ""


@dataclass(frozen=True, slots=True)
class Event:
    time_ns: int
    name: str
    attributes: Attributes = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Link:
    trace_id: str
    span_id: str
    trace_state: str = ""
    attributes: Attributes = field(default_factory=dict)


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

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9

    @property
    def is_error(self) -> bool:
        return self.status_code == STATUS_ERROR


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
    raise InvalidRequest(f"{what} is not an integer: {value!r}")


def _enum(value: Any, names: Mapping[str, int], what: str) -> int:
    if isinstance(value, str) and value in names:
        return names[value]
    return _int(value, what)


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


def decode_value(node: Any) -> AttributeValue:
    """An OTLP ``AnyValue`` object as a Python value (``None`` for an empty one)."""
    if not isinstance(node, dict) or not node:
        return None
    key, value = next(iter(node.items()))
    if key in ("stringValue", "string_value"):
        return str(value)
    if key in ("boolValue", "bool_value"):
        return bool(value)
    if key in ("intValue", "int_value"):
        return _int(value, "intValue")
    if key in ("doubleValue", "double_value"):
        if isinstance(value, str):
            return float(value.replace("Infinity", "inf"))
        return float(value)
    if key in ("arrayValue", "array_value"):
        return [decode_value(v) for v in _list(value or {}, "values")]
    if key in ("kvlistValue", "kvlist_value"):
        return decode_attributes(_list(value or {}, "values"))
    if key in ("bytesValue", "bytes_value"):
        return base64.b64decode(value)
    raise InvalidRequest(f"unknown attribute value type {key!r}")


def decode_attributes(items: Any) -> Attributes:
    """A list of OTLP ``KeyValue`` as a dict (a repeated key keeps its last value)."""
    if not items:
        return {}
    if not isinstance(items, list):
        raise InvalidRequest("attributes is not a list")
    out: Attributes = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise InvalidRequest("attribute without a key")
        out[item["key"]] = decode_value(item.get("value"))
    return out


def _decode_span(node: Any, resource: Resource, scope: Scope) -> Span:
    if not isinstance(node, dict):
        raise InvalidRequest("span is not an object")
    status = _get(node, "status") or {}
    return Span(
        trace_id=normalize_id(_get(node, "traceId", "trace_id"), 16, "traceId"),
        span_id=normalize_id(_get(node, "spanId", "span_id"), 8, "spanId"),
        parent_span_id=normalize_id(_get(node, "parentSpanId", "parent_span_id"), 8, "parentSpanId"),
        name=str(_get(node, "name") or ""),
        kind=_enum(_get(node, "kind"), _KIND_ENUM, "kind"),
        start_ns=_int(_get(node, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano"),
        end_ns=_int(_get(node, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano"),
        status_code=_enum(_get(status, "code"), _STATUS_ENUM, "status.code"),
        status_message=str(_get(status, "message") or ""),
        attributes=decode_attributes(_get(node, "attributes")),
        events=[
            Event(
                time_ns=_int(_get(e, "timeUnixNano", "time_unix_nano"), "timeUnixNano"),
                name=str(_get(e, "name") or ""),
                attributes=decode_attributes(_get(e, "attributes")),
            )
            for e in _list(node, "events")
        ],
        links=[
            Link(
                trace_id=normalize_id(_get(k, "traceId", "trace_id"), 16, "link traceId"),
                span_id=normalize_id(_get(k, "spanId", "span_id"), 8, "link spanId"),
                trace_state=str(_get(k, "traceState", "trace_state") or ""),
                attributes=decode_attributes(_get(k, "attributes")),
            )
            for k in _list(node, "links")
        ],
        trace_state=str(_get(node, "traceState", "trace_state") or ""),
        flags=_int(_get(node, "flags"), "flags"),
        resource=resource,
        scope=scope,
    )


def decode_request(request: Any) -> list[Span]:
    """The spans of one ``ExportTraceServiceRequest`` object (raises :class:`InvalidRequest`)."""
    if not isinstance(request, dict):
        raise InvalidRequest("not a JSON object")
    spans: list[Span] = []
    try:
        for rs in _list(request, "resourceSpans", "resource_spans"):
            resource_node = _get(rs, "resource") or {}
            resource = Resource(
                attributes=decode_attributes(_get(resource_node, "attributes")),
                schema_url=str(_get(rs, "schemaUrl", "schema_url") or ""),
            )
            groups = _list(rs, "scopeSpans", "scope_spans") or _list(
                rs, "instrumentationLibrarySpans", "instrumentation_library_spans"
            )
            for ss in groups:
                scope_node = _get(ss, "scope") or _get(
                    ss, "instrumentationLibrary", "instrumentation_library"
                )
                scope_node = scope_node or {}
                scope = Scope(
                    name=str(_get(scope_node, "name") or ""),
                    version=str(_get(scope_node, "version") or ""),
                    attributes=decode_attributes(_get(scope_node, "attributes")),
                    schema_url=str(_get(ss, "schemaUrl", "schema_url") or ""),
                )
                spans.extend(_decode_span(node, resource, scope) for node in _list(ss, "spans"))
    except (AttributeError, TypeError) as exc:  # a scalar where an object belongs
        raise InvalidRequest(f"unexpected structure ({exc})") from None
    return spans


def decode_line(line: bytes) -> list[Span]:
    """The spans of one JSONL line; :class:`InvalidRequest` (a ``ValueError``) when it is not one."""
    try:
        request = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"not JSON: {exc}") from None
    except RecursionError:
        raise InvalidRequest("nested too deeply to be OTLP") from None
    try:
        return decode_request(request)
    except RecursionError:
        raise InvalidRequest("nested too deeply to be OTLP") from None


# --- encoding (canonical OTLP/JSON) ----------------------------------------------------------------


def encode_value(value: AttributeValue) -> dict[str, Any]:
    """A Python value as an OTLP ``AnyValue`` object, canonical form."""
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        if math.isfinite(value):
            return {"doubleValue": value}
        return {"doubleValue": "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": encode_attributes(value)}}
    return {"arrayValue": {"values": [encode_value(v) for v in value]}}


def encode_attributes(attributes: Mapping[str, AttributeValue]) -> list[dict[str, Any]]:
    return [{"key": key, "value": encode_value(value)} for key, value in attributes.items()]


def encode_span(span: Span) -> dict[str, Any]:
    """One OTLP/JSON ``Span`` object, canonical form, optional fields left out when empty."""
    node: dict[str, Any] = {"traceId": span.trace_id, "spanId": span.span_id}
    if span.trace_state:
        node["traceState"] = span.trace_state
    if span.parent_span_id:
        node["parentSpanId"] = span.parent_span_id
    node.update(
        name=span.name,
        kind=span.kind,
        startTimeUnixNano=str(span.start_ns),
        endTimeUnixNano=str(span.end_ns),
        attributes=encode_attributes(span.attributes),
    )
    if span.events:
        node["events"] = [
            {"timeUnixNano": str(e.time_ns), "name": e.name, "attributes": encode_attributes(e.attributes)}
            for e in span.events
        ]
    if span.links:
        node["links"] = [
            {"traceId": k.trace_id, "spanId": k.span_id, "attributes": encode_attributes(k.attributes)}
            | ({"traceState": k.trace_state} if k.trace_state else {})
            for k in span.links
        ]
    status: dict[str, Any] = {"code": span.status_code}
    if span.status_message:
        status["message"] = span.status_message
    node["status"] = status
    if span.flags:
        node["flags"] = span.flags
    return node


def encode_request(spans: Iterable[Span]) -> dict[str, Any]:
    """One ``ExportTraceServiceRequest`` for ``spans``, grouped by resource then scope."""
    by_resource: dict[int, tuple[Resource, dict[int, tuple[Scope, list[dict[str, Any]]]]]] = {}
    for span in spans:
        scopes = by_resource.setdefault(id(span.resource), (span.resource, {}))[1]
        scopes.setdefault(id(span.scope), (span.scope, []))[1].append(encode_span(span))
    resource_spans = []
    for resource, scopes in by_resource.values():
        scope_spans = []
        for scope, encoded in scopes.values():
            scope_node: dict[str, Any] = {"name": scope.name}
            if scope.version:
                scope_node["version"] = scope.version
            if scope.attributes:
                scope_node["attributes"] = encode_attributes(scope.attributes)
            entry: dict[str, Any] = {"scope": scope_node, "spans": encoded}
            if scope.schema_url:
                entry["schemaUrl"] = scope.schema_url
            scope_spans.append(entry)
        item: dict[str, Any] = {
            "resource": {"attributes": encode_attributes(resource.attributes)},
            "scopeSpans": scope_spans,
        }
        if resource.schema_url:
            item["schemaUrl"] = resource.schema_url
        resource_spans.append(item)
    return {"resourceSpans": resource_spans}
