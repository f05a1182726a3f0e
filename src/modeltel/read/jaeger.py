"""Spans as the JSON Jaeger's UI opens from a file ("JSON File" on its search page).

The model is the one Jaeger's query API returns (``{"data": [trace, ...]}``; each trace has
``traceID``, ``spans`` and ``processes``), with times in microseconds. The mapping from OTLP
follows Jaeger's own OTLP translator: the parent becomes a ``CHILD_OF`` reference, links become
``FOLLOWS_FROM``, kind/status/scope become the ``span.kind``, ``otel.status_code``, ``error``,
``otel.scope.*`` tags, events become logs with an ``event`` field, and each distinct resource is
a process named by its ``service.name``.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from modeltel import semconv
from modeltel.read.otlp import (
    KIND_NAMES,
    STATUS_ERROR,
    STATUS_NAMES,
    STATUS_UNSET,
    AttributeValue,
    Resource,
    Span,
)

CHILD_OF = "CHILD_OF"
FOLLOWS_FROM = "FOLLOWS_FROM"


def tag(key: str, value: AttributeValue) -> dict[str, Any]:
    """A Jaeger key/type/value tag; arrays and maps become their JSON text, as Jaeger's translator does."""
    if isinstance(value, bool):
        return {"key": key, "type": "bool", "value": value}
    if isinstance(value, int):
        return {"key": key, "type": "int64", "value": value}
    if isinstance(value, float):
        shown: float | str = value if math.isfinite(value) else str(value)
        return {"key": key, "type": "float64", "value": shown}
    if isinstance(value, bytes):
        return {"key": key, "type": "binary", "value": base64.b64encode(value).decode("ascii")}
    if isinstance(value, str):
        return {"key": key, "type": "string", "value": value}
    return {"key": key, "type": "string", "value": json.dumps(value, default=str, ensure_ascii=False)}


def tags(attributes: Mapping[str, AttributeValue]) -> list[dict[str, Any]]:
    return [tag(key, value) for key, value in attributes.items()]


def _micros(ns: int) -> int:
    return ns // 1000


def _span_tags(span: Span) -> list[dict[str, Any]]:
    out = tags(span.attributes)
    if span.scope.name:
        out.append(tag(semconv.OTEL_SCOPE_NAME, span.scope.name))
    if span.scope.version:
        out.append(tag(semconv.OTEL_SCOPE_VERSION, span.scope.version))
    if span.kind:
        out.append(tag(semconv.JAEGER_SPAN_KIND, KIND_NAMES.get(span.kind, "unspecified")))
    if span.status_code != STATUS_UNSET:
        out.append(tag(semconv.OTEL_STATUS_CODE, STATUS_NAMES[span.status_code]))
    if span.status_message:
        out.append(tag(semconv.OTEL_STATUS_DESCRIPTION, span.status_message))
    if span.status_code == STATUS_ERROR:
        out.append(tag(semconv.JAEGER_ERROR, True))
    if span.trace_state:
        out.append(tag(semconv.JAEGER_TRACE_STATE, span.trace_state))
    return out


def jaeger_span(span: Span, process_id: str) -> dict[str, Any]:
    """One span of Jaeger's JSON model."""
    references = []
    if span.parent_span_id:
        references.append({"refType": CHILD_OF, "traceID": span.trace_id, "spanID": span.parent_span_id})
    references.extend(
        {"refType": FOLLOWS_FROM, "traceID": link.trace_id, "spanID": link.span_id} for link in span.links
    )
    return {
        "traceID": span.trace_id,
        "spanID": span.span_id,
        "flags": span.flags & 0xFF or 1,
        "operationName": span.name,
        "references": references,
        "startTime": _micros(span.start_ns),
        "duration": max(0, _micros(span.end_ns) - _micros(span.start_ns)),
        "tags": _span_tags(span),
        "logs": [
            {
                "timestamp": _micros(event.time_ns),
                "fields": [tag(semconv.JAEGER_EVENT, event.name), *tags(event.attributes)],
            }
            for event in span.events
        ],
        "processID": process_id,
        "warnings": None,
    }


def _process(resource: Resource) -> dict[str, Any]:
    others = {k: v for k, v in resource.attributes.items() if k != semconv.SERVICE_NAME}
    return {"serviceName": resource.service_name, "tags": tags(others)}


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
        data.append({"traceID": trace_id, "spans": encoded, "processes": processes, "warnings": None})
    return {"data": data, "total": 0, "limit": 0, "offset": 0, "errors": None}
