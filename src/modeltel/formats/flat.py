"""Spans as flat rows, one per span, for pandas: ``modeltel export --format csv|json``.

Attribute columns are named ``attributes.<key>``, the names ``pandas.json_normalize`` gives nested
attributes, so code written against either reads both. In CSV, arrays and maps are JSON text and
bytes are base64; in JSON they keep their types.

JSON: an integer whose magnitude is beyond 2^53 - 1 (every ``start_unix_nano`` and
``end_unix_nano``, and any such attribute value, also inside arrays and maps) is written as a
decimal string. JavaScript and most JSON readers hold numbers as doubles and would round it
(``...148637010`` reads back as ``...148637000``); ``int(value)`` or ``pd.to_numeric`` gives the
exact integer back. Smaller integers stay numbers.

CSV: spreadsheets run a cell that begins with ``=``, ``+``, ``-``, ``@``, tab, CR or LF as a
formula, and span names and attribute values are whatever the traced program put there. Following
OWASP's advice on CSV injection, such a text cell gets a leading ``'`` (spreadsheets show it as
text; pandas and ``csv`` readers see the quote), and every text cell is double-quoted so that a
``;`` or ``,`` inside it cannot start a new cell in a locale that splits on it. Numbers are written
bare. A text cell that is entirely a plain negative decimal number (``-3``, ``-0.5``, ``-1e-05``)
keeps its form: OWASP names the leading ``-`` because it starts formulas like ``-1+cmd|...``, but
a cell with nothing but digits after the sign evaluates to that number and nothing else, and
quoting it would turn numeric columns into text. Base64 of bytes can begin with ``+`` and then
gets the quote too.
"""

from __future__ import annotations

import base64
import csv
import json
import math
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import IO, Any

from modeltel.formats.otlp import KIND_NAMES, STATUS_NAMES, AttributeValue, Span

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


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
_PLAIN_NEGATIVE = re.compile(r"-(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", re.ASCII)
_JS_SAFE_INTEGER = 2**53 - 1


def _text_cell(text: str) -> str:
    if text.startswith(_FORMULA_START) and not _PLAIN_NEGATIVE.fullmatch(text):
        return "'" + text
    return text


def _csv_cell(value: Any) -> Any:
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _text_cell(value)
    return value


def _json_safe(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _JS_SAFE_INTEGER:
        return str(value)
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
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
    writer = csv.DictWriter(
        out, fieldnames=columns, extrasaction="ignore", lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC
    )
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
        out.write(json.dumps(_json_safe(row(span)), ensure_ascii=False, allow_nan=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count
