"""A ``logging.LogRecord`` as an OpenTelemetry ``LogRecord``: field for field what
``opentelemetry-instrumentation-logging``'s ``LoggingHandler`` makes of it (as modeltel used it,
without code attributes), plus modeltel's two bounds.

Written here rather than imported because importing that handler imports its package, and with it
``BaseInstrumentor``, ``wrapt``, ``packaging``, ``asyncio`` and ``importlib.metadata``: ~100 ms of
``modeltel.configure()`` on top of the SDK, the largest single part of start-up. The handler stays
the oracle (``tests/logs/test_translation_oracle.py``): any field that drifts from it fails there.

The bounds: attribute values that are not OTLP values become their text here (the SDK would drop
each with a warning on the app's stderr), and ``exception.stacktrace`` keeps at most
:data:`MAX_STACKTRACE_CHARS`.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping, Sequence
from time import time_ns
from typing import Any

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.context import get_current

from modeltel.formats import MAX_NESTING

__all__ = ["MAX_STACKTRACE_CHARS", "translate"]

MAX_STACKTRACE_CHARS = 8192
"""``exception.stacktrace`` is cut to this many characters: the first 1 KiB (where the program
entered) and the rest from the end (the innermost frames and the exception). A stack trace is
formatted on the app's thread and shipped with every record; a deep one (a recursion, a framework
stack with chained causes) runs to hundreds of KiB, which costs the app, fills the file and passes
receivers' line limits, while the frames that say what failed are the last few."""
_HEAD_CHARS = 1024
_STACKTRACE = "exception.stacktrace"
_PLAIN = frozenset({str, int, float, bool})

_RESERVED = frozenset(
    (
        *("asctime", "args", "created", "exc_info", "exc_text", "filename", "funcName", "getMessage"),
        *("message", "levelname", "levelno", "lineno", "module", "msecs", "msg", "name", "pathname"),
        *("process", "processName", "relativeCreated", "stack_info", "thread", "threadName", "taskName"),
    )
)
"""The attributes every ``LogRecord`` has (the logging documentation's list): the rest of a record's
``__dict__`` is what the app passed as ``extra=``, which becomes the OpenTelemetry attributes."""

_SEVERITY = tuple(SeverityNumber(1 + 4 * (level // 10) + min(level % 10, 3)) for level in range(10, 54))
"""Severity by Python level from 10 to 53: each band of ten (DEBUG, INFO, WARN, ERROR, FATAL) starts
at its OpenTelemetry number, and levels 1-3 above the band's base take the next three (``INFO2`` to
``INFO4``); 4-9 above stay at the fourth. Below 10 is unspecified, above 53 ``FATAL4``."""
_SEVERITY_TEXT = {"WARNING": "WARN", "CRITICAL": "FATAL"}
"""The data model's short names for the two Python level names that differ; others pass as they are."""


def severity_number(levelno: int) -> SeverityNumber:
    if levelno < 10:
        return SeverityNumber.UNSPECIFIED
    if levelno > 53:
        return SeverityNumber.FATAL4
    return _SEVERITY[levelno - 10]


def _bounded_stacktrace(text: str) -> str:
    if len(text) <= MAX_STACKTRACE_CHARS:
        return text
    marker = f"\n... {{}} characters cut (bound {MAX_STACKTRACE_CHARS}) ...\n"
    tail = MAX_STACKTRACE_CHARS - _HEAD_CHARS - len(marker) - 8
    cut = len(text) - _HEAD_CHARS - tail
    return text[:_HEAD_CHARS] + marker.format(cut) + text[-tail:]


def otlp_value(value: Any, depth: int = 0) -> Any:
    """``value`` as an OTLP attribute value: maps and sequences kept (keys as text), anything else
    that is not a plain value as its text; deeper than ``MAX_NESTING`` as text too."""
    if type(value) in _PLAIN or value is None or isinstance(value, bytes):
        return value
    if depth < MAX_NESTING:
        if isinstance(value, Mapping):
            return {str(k): otlp_value(v, depth + 1) for k, v in value.items() if str(k)}
        if isinstance(value, Sequence) and not isinstance(value, str):
            return tuple(otlp_value(v, depth + 1) for v in value)
        if isinstance(value, str | int | float):  # subclasses: str enums, numpy scalars
            return value
    try:
        return str(value)
    except Exception:
        return f"<{type(value).__name__}>"


def _attributes(record: logging.LogRecord) -> tuple[dict[str, Any], Any]:
    """The record's ``extra=`` values and its exception, and its event name: ``otel.event.name``,
    else the deprecated ``event.name``; both are taken out of the attributes."""
    attributes = {
        key: value if type(value) in _PLAIN else otlp_value(value)
        for key, value in record.__dict__.items()
        if key not in _RESERVED
    }
    event_name = attributes.pop("otel.event.name", None)
    deprecated_event_name = attributes.pop("event.name", None)
    if event_name is None:
        event_name = deprecated_event_name
    if record.exc_info:
        kind, exception, tb = record.exc_info
        if kind is not None:
            attributes["exception.type"] = kind.__name__
        if exception is not None and exception.args:
            attributes["exception.message"] = str(exception.args[0])
        if tb is not None:
            attributes[_STACKTRACE] = "".join(traceback.format_exception(*record.exc_info))
    stacktrace = attributes.get(_STACKTRACE)
    if type(stacktrace) is str and len(stacktrace) > MAX_STACKTRACE_CHARS:
        attributes[_STACKTRACE] = _bounded_stacktrace(stacktrace)
    return attributes, event_name


def translate(record: logging.LogRecord) -> LogRecord:
    """``record`` in the current context (its span's trace id, span id and flags). The body is the
    message as the app's own formatter already made it (``record.message``), else made now: its
    arguments' ``__str__`` runs once, as without modeltel, where the app printed it."""
    message = record.__dict__.get("message")
    body = message if type(message) is str else record.getMessage()
    attributes, event_name = _attributes(record)
    return LogRecord(
        timestamp=int(record.created * 1e9),
        observed_timestamp=time_ns(),
        context=get_current() or None,
        severity_text=_SEVERITY_TEXT.get(record.levelname, record.levelname),
        severity_number=severity_number(record.levelno),
        body=body,
        attributes=attributes,
        event_name=event_name,
    )
