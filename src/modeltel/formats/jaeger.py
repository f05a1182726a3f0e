"""Spans as the JSON Jaeger's UI opens from a file ("JSON File" on its search page).

The model is the one Jaeger's query API returns (``{"data": [trace, ...]}``; each trace has
``traceID``, ``spans`` and ``processes``), with times in microseconds. A file exported here shows
what Jaeger itself shows for the same spans received over OTLP: the mapping follows the translator
Jaeger runs on OTLP input (opentelemetry-collector-contrib ``pkg/translator/jaeger``), then Jaeger's
own JSON writer. What a caller may rely on:

- ``duration`` is ``(end - start)`` in nanoseconds truncated to microseconds (not the difference of
  the two truncated times); a span that ends before it starts gets 0 (Jaeger would wrap around).
- The parent is the first reference, ``CHILD_OF``. A link becomes ``FOLLOWS_FROM`` unless its
  ``opentracing.ref_type`` attribute is ``child_of``; a link to the parent is not a second
  reference but sets the parent reference's type (so a plain link to the parent makes it
  ``FOLLOWS_FROM``).
- Tags, in this order: ``otel.scope.name`` / ``otel.scope.version``, the attributes, ``span.kind``
  (only for the five known kinds), ``otel.status_code`` (OK and ERROR only), ``error`` (ERROR),
  ``otel.status_description`` (any non-empty message), ``w3c.tracestate``. Dropped counts have no tag.
- Tag values: strings, booleans, doubles and bytes (``binary``, base64) keep their types; integers
  are ``int64`` numbers, written as decimal strings beyond ±(2^53 - 1) so JavaScript does not round
  them; an empty value is ``""``; arrays and maps are Go's JSON text of them (compact, sorted keys,
  ``<``, ``>``, ``&`` escaped, Go's float format), ``""`` if they hold NaN or an infinity.
- Events become logs: an ``event`` field with the name, unless the name is empty or the event has
  an ``event`` attribute, then the attributes.
- Each distinct resource is a process named by its ``service.name`` (``""`` if it has none, or a
  non-string one; ``OTLPResourceNoServiceName`` if it has no attributes at all).
- ``flags`` is 1 for a span with the W3C sampled bit and 0 otherwise; a trace id whose first eight
  bytes are zero is written as 16 hex digits, as Jaeger writes a 64-bit id.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from modeltel._internal import semconv
from modeltel.formats.otlp import (
    KIND_NAMES,
    STATUS_ERROR,
    STATUS_NAMES,
    STATUS_OK,
    AttributeValue,
    Resource,
    Span,
)

CHILD_OF = "CHILD_OF"
FOLLOWS_FROM = "FOLLOWS_FROM"
NO_SERVICE_NAME = "OTLPResourceNoServiceName"
"""The translator's service name for a resource with no attributes."""
REF_TYPE_CHILD_OF = "child_of"
"""The ``opentracing.ref_type`` value that makes a link a ``CHILD_OF`` reference."""

_JS_SAFE_INTEGER = 2**53 - 1
_SAMPLED = 0x01
_SPAN_KINDS = {kind: name for kind, name in KIND_NAMES.items() if kind}
_GO_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


class _NotFinite(ValueError):
    """Go's JSON encoder refuses NaN and infinities; the translator then writes an empty string."""


def _go_float(value: float) -> str:
    # Go's encoding/json: shortest digits, fixed notation unless |x| < 1e-6 or >= 1e21, and an
    # exponent without zero padding below zero ("1e-7", "1e+21"). Python's repr has the same digits.
    if not math.isfinite(value):
        raise _NotFinite(value)
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        mantissa, exponent = repr(value).split("e")
        power = int(exponent)
        return f"{mantissa}e{'-' if power < 0 else '+'}{abs(power):0{1 if power < 0 else 2}d}"
    fixed = format(Decimal(repr(value)), "f")
    return fixed.rstrip("0").rstrip(".") if "." in fixed else fixed


def _go_json(value: AttributeValue) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, bytes):
        return '"' + base64.b64encode(value).decode("ascii") + '"'
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).translate(_GO_ESCAPES)
    if isinstance(value, dict):
        items = sorted(value.items())
        return "{" + ",".join(f"{_go_json(key)}:{_go_json(item)}" for key, item in items) + "}"
    return "[" + ",".join(_go_json(item) for item in value) + "]"


def as_string(value: list[AttributeValue] | dict[str, AttributeValue]) -> str:
    """An array or map as the translator's string tag holds it (Go's JSON of its raw value)."""
    try:
        return _go_json(value)
    except _NotFinite:
        return ""


def tag(key: str, value: AttributeValue) -> dict[str, Any]:
    """A Jaeger key/type/value tag, typed as the translator types the OTLP value."""
    if isinstance(value, bool):
        return {"key": key, "type": "bool", "value": value}
    if isinstance(value, int):
        shown_int: int | str = value if abs(value) <= _JS_SAFE_INTEGER else str(value)
        return {"key": key, "type": "int64", "value": shown_int}
    if isinstance(value, float):
        # Jaeger's JSON writer has no form for these; their text keeps the file loadable.
        shown: float | str = value if math.isfinite(value) else str(value)
        return {"key": key, "type": "float64", "value": shown}
    if isinstance(value, bytes):
        return {"key": key, "type": "binary", "value": base64.b64encode(value).decode("ascii")}
    if isinstance(value, str):
        return {"key": key, "type": "string", "value": value}
    if value is None:
        return {"key": key, "type": "string", "value": ""}
    return {"key": key, "type": "string", "value": as_string(value)}


def tags(attributes: Mapping[str, AttributeValue]) -> list[dict[str, Any]]:
    return [tag(key, value) for key, value in attributes.items()]


def jaeger_trace_id(trace_id: str) -> str:
    """A trace id as Jaeger writes it: 16 hex digits when its high 64 bits are zero."""
    return trace_id[16:] if len(trace_id) == 32 and trace_id.startswith("0" * 16) else trace_id


def _span_tags(span: Span) -> list[dict[str, Any]]:
    out = []
    if span.scope.name:
        out.append(tag(semconv.OTEL_SCOPE_NAME, span.scope.name))
    if span.scope.version:
        out.append(tag(semconv.OTEL_SCOPE_VERSION, span.scope.version))
    out += tags(span.attributes)
    if span.kind in _SPAN_KINDS:
        out.append(tag(semconv.JAEGER_SPAN_KIND, _SPAN_KINDS[span.kind]))
    if span.status_code in (STATUS_OK, STATUS_ERROR):
        out.append(tag(semconv.OTEL_STATUS_CODE, STATUS_NAMES[span.status_code]))
    if span.status_code == STATUS_ERROR:
        out.append(tag(semconv.JAEGER_ERROR, True))
    if span.status_message:
        out.append(tag(semconv.OTEL_STATUS_DESCRIPTION, span.status_message))
    if span.trace_state:
        out.append(tag(semconv.JAEGER_TRACE_STATE, span.trace_state))
    return out


def _references(span: Span) -> list[dict[str, Any]]:
    trace_id = jaeger_trace_id(span.trace_id)
    references = []
    if span.parent_span_id:
        references.append({"refType": CHILD_OF, "traceID": trace_id, "spanID": span.parent_span_id})
    for link in span.links:
        ref_type = (
            CHILD_OF
            if link.attributes.get(semconv.OPENTRACING_REF_TYPE) == REF_TYPE_CHILD_OF
            else FOLLOWS_FROM
        )
        if span.parent_span_id and (link.trace_id, link.span_id) == (span.trace_id, span.parent_span_id):
            references[0]["refType"] = ref_type
            continue
        references.append(
            {"refType": ref_type, "traceID": jaeger_trace_id(link.trace_id), "spanID": link.span_id}
        )
    return references


def _log(event_name: str, attributes: Mapping[str, AttributeValue], time_ns: int) -> dict[str, Any]:
    fields = []
    if event_name and semconv.JAEGER_EVENT not in attributes:
        fields.append(tag(semconv.JAEGER_EVENT, event_name))
    return {"timestamp": time_ns // 1000, "fields": fields + tags(attributes)}


def jaeger_span(span: Span, process_id: str) -> dict[str, Any]:
    """One span of Jaeger's JSON model."""
    return {
        "traceID": jaeger_trace_id(span.trace_id),
        "spanID": span.span_id,
        "flags": 1 if span.flags & _SAMPLED else 0,
        "operationName": span.name,
        "references": _references(span),
        "startTime": span.start_ns // 1000,
        "duration": max(0, span.end_ns - span.start_ns) // 1000,
        "tags": _span_tags(span),
        "logs": [_log(event.name, event.attributes, event.time_ns) for event in span.events],
        "processID": process_id,
        "warnings": None,
    }


def _process(resource: Resource) -> dict[str, Any]:
    if not resource.attributes:
        return {"serviceName": NO_SERVICE_NAME, "tags": []}
    name = resource.attributes.get(semconv.SERVICE_NAME)
    others = {k: v for k, v in resource.attributes.items() if k != semconv.SERVICE_NAME}
    return {"serviceName": name if isinstance(name, str) else "", "tags": tags(others)}


def jaeger_traces(spans: Iterable[Span]) -> dict[str, Any]:
    """``{"data": [...]}`` with one entry per trace (in order of first appearance), spans by start."""
    traces: dict[str, list[Span]] = {}
    for span in spans:
        traces.setdefault(span.trace_id, []).append(span)
    data = []
    for trace_id, members in traces.items():
        processes: dict[str, dict[str, Any]] = {}
        keys: dict[str, str] = {}
        encoded = []
        for span in sorted(members, key=lambda s: (s.start_ns, s.span_id)):
            process = _process(span.resource)
            key = json.dumps(process, sort_keys=True)
            process_id = keys.get(key)
            if process_id is None:
                process_id = keys[key] = f"p{len(keys) + 1}"
                processes[process_id] = process
            encoded.append(jaeger_span(span, process_id))
        data.append(
            {"traceID": jaeger_trace_id(trace_id), "spans": encoded, "processes": processes, "warnings": None}
        )
    return {"data": data, "total": 0, "limit": 0, "offset": 0, "errors": None}
