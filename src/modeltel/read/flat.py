"""Spans as flat rows, one per span, for pandas: ``modeltel export --format csv|json``.

Attribute columns are named ``attributes.<key>``, the names ``pandas.json_normalize`` gives nested
attributes, so code written against either reads both. In CSV, arrays and maps are JSON text and
bytes are base64; in JSON they keep their types.
"""

from __future__ import annotations

import base64
import csv
import json
import math
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import IO, Any

from modeltel.read.otlp import KIND_NAMES, STATUS_NAMES, AttributeValue, Span

BASE_COLUMNS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "kind",
    "start_time",
    "start_unix_nano",
    "end_unix_nano",
    "duration_s",
    "status_code",
    "status_message",
    "service_name",
    "scope_name",
    "events",
    "links",
)
ATTRIBUTE_PREFIX = "attributes."


def iso_time(ns: int) -> str:
    """UTC ISO 8601 with microseconds: what pandas and spreadsheets parse."""
    return datetime.fromtimestamp(ns // 1000 / 1e6, UTC).isoformat().replace("+00:00", "Z")


def _json_value(value: AttributeValue) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    return value


def row(span: Span) -> dict[str, Any]:
    """One flat row: the base columns, then ``attributes.<key>`` for each attribute."""
    out: dict[str, Any] = {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "name": span.name,
        "kind": KIND_NAMES.get(span.kind, str(span.kind)),
        "start_time": iso_time(span.start_ns),
        "start_unix_nano": span.start_ns,
        "end_unix_nano": span.end_ns,
        "duration_s": span.duration_s,
        "status_code": STATUS_NAMES.get(span.status_code, str(span.status_code)),
        "status_message": span.status_message,
        "service_name": span.resource.service_name,
        "scope_name": span.scope.name,
        "events": len(span.events),
        "links": len(span.links),
    }
    for key, value in span.attributes.items():
        out[ATTRIBUTE_PREFIX + key] = _json_value(value)
    return out


def _csv_cell(value: Any) -> Any:
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def write_csv(
    out: IO[str], spans: Callable[[], Iterable[Span]], *, header: Iterable[str] | None = None
) -> int:
    """Write one CSV row per span; returns the number written.

    ``spans`` is called twice, once to learn every attribute column and once to write, so the
    rows are never all in memory (pass ``header`` to skip the first pass).
    """
    if header is None:
        keys: dict[str, None] = {}
        for span in spans():
            keys.update(dict.fromkeys(span.attributes))
        header = [*BASE_COLUMNS, *(ATTRIBUTE_PREFIX + k for k in sorted(keys))]
    columns = list(header)
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    count = 0
    for span in spans():
        writer.writerow({k: _csv_cell(v) for k, v in row(span).items()})
        count += 1
    return count


def write_json(out: IO[str], spans: Iterable[Span]) -> int:
    """Write a JSON array of flat rows, streamed one row per line; returns the number written."""
    out.write("[")
    count = 0
    for span in spans:
        out.write(",\n" if count else "\n")
        out.write(json.dumps(row(span), ensure_ascii=False, allow_nan=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count
