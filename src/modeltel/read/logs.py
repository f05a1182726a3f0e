"""Log records read back: filtered by trace, run, level, time and text, in time order.

The answer of ``modeltel logs`` and of the records ``modeltel show --trace`` lists under a trace's
spans. Lines are read through :func:`modeltel.read.files.file_blocks` (bounded memory, documents
and lines alike) and decoded by the one OTLP/JSON codec, so a Collector's ``file`` exporter output
reads the same way as modeltel's own files. A line whose bytes cannot hold the wanted trace (in
hex or base64), run or ``--grep`` text is passed over undecoded; a line that is not OTLP/JSON is reported and
skipped, and every other line is still read. A record whose resource names no ``process.pid`` (the
SDK adds one only with its process detector) takes the pid its file's name gives.

Levels are the log data model's severity ranges: ``TRACE`` 1-4, ``DEBUG`` 5-8, ``INFO`` 9-12,
``WARN`` 13-16, ``ERROR`` 17-20, ``FATAL`` 21-24. A record with no severity number (0) is placed
by its severity text when that is one of the names (``WARNING`` and ``CRITICAL`` too, as Python's
``logging`` spells them), and otherwise has no level: any ``--level`` leaves it out.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from modeltel._internal.semconv import PROCESS_PID
from modeltel.formats.otlp import SEVERITY_RANGES, InvalidRequest, LogRecord, Resource, decode_logs_line
from modeltel.read.files import BadLine, file_blocks, iter_lines, line_number
from modeltel.read.runs import RUN_KEY, Selection, run_mark, select_line
from modeltel.store.layout import file_pid

__all__ = [
    "LEVELS",
    "LogQuery",
    "iter_logs",
    "json_value",
    "last_logged_trace",
    "level_name",
    "log_message",
    "parse_level",
    "read_logs",
    "severity",
]

LEVELS: dict[str, int] = {
    **dict(SEVERITY_RANGES),
    "WARNING": 13,
    "CRITICAL": 21,
}
"""``--level`` names and the lowest severity number each admits; Python's names are aliases."""
_LEVEL_CHOICES = "TRACE, DEBUG, INFO, WARN (WARNING), ERROR or FATAL (CRITICAL)"
_EXCEPTION_KEYS = ("exception.type", "exception.message")

OnBadLine = Callable[[BadLine], None]


def parse_level(text: str) -> int:
    """The lowest severity number ``--level text`` admits (any case); ``ValueError`` names ``text``."""
    number = LEVELS.get(text.strip().upper())
    if number is None:
        raise ValueError(f"not a log level: {text!r} (expected {_LEVEL_CHOICES})")
    return number


def severity(record: LogRecord) -> int:
    """The record's severity number, or the one its severity text names when the number is unset."""
    if record.severity_number:
        return record.severity_number
    return LEVELS.get(record.severity_text.strip().upper().rstrip("234"), 0)


def level_name(record: LogRecord) -> str:
    """The short name of the record's severity range (``INFO`` for 9 to 12), else its text, else "-"."""
    number = severity(record)
    for name, first in reversed(SEVERITY_RANGES):
        if first <= number < first + 4:
            return name
    return record.severity_text or (str(record.severity_number) if record.severity_number else "-")


def log_message(record: LogRecord) -> str:
    """The body as one text: a string as it is, anything else as compact JSON (bytes as base64)."""
    body = record.body
    if body is None:
        return ""
    if isinstance(body, str):
        return body
    return json.dumps(json_value(body), ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def json_value(value: object) -> object:
    """``value`` as strict JSON can hold it: bytes as base64, NaN and infinities as their names."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_value(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class LogQuery:
    """Which records to keep; every condition given must hold."""

    trace_id: str | None = None
    """Lowercase hex."""
    run_id: str | None = None
    min_severity: int = 0
    """From :func:`parse_level`; 0 keeps every record, those without a level too."""
    since_ns: int | None = None
    until_ns: int | None = None
    grep: str | None = None
    """Text the message, or the exception's type or message, contains (case-sensitive)."""

    def matches(self, record: LogRecord) -> bool:
        if self.trace_id is not None and record.trace_id != self.trace_id:
            return False
        if self.run_id is not None and record.resource.attributes.get(RUN_KEY) != self.run_id:
            return False
        if self.min_severity and severity(record) < self.min_severity:
            return False
        when = record.when_ns
        if (self.since_ns is not None and when < self.since_ns) or (
            self.until_ns is not None and when >= self.until_ns
        ):
            return False
        return self.grep is None or self._grepped(record)

    def _grepped(self, record: LogRecord) -> bool:
        assert self.grep is not None
        if self.grep in log_message(record):
            return True
        texts = (record.attributes.get(key) for key in _EXCEPTION_KEYS)
        return any(isinstance(text, str) and self.grep in text for text in texts)

    def text_needle(self) -> bytes | None:
        """Bytes a line must hold to hold a record ``grep`` finds: the text itself when JSON writes
        it unescaped (printable ASCII without quote, backslash or slash); else None, no byte test."""
        text = self.grep
        if text is None or not all(" " <= char <= "~" and char not in '"\\/' for char in text):
            return None
        return text.encode()

    def needles(self) -> tuple[bytes, ...]:
        """Bytes a line must hold one of to hold a record of the trace: its id in hex or base64."""
        if self.trace_id is None:
            return ()
        raw = bytes.fromhex(self.trace_id)
        encoded = base64.b64encode(raw).rstrip(b"=")
        return (
            self.trace_id.encode(),
            self.trace_id.upper().encode(),
            encoded,
            encoded.replace(b"+", b"-").replace(b"/", b"_"),
        )


def iter_logs(
    files: Sequence[Path],
    query: LogQuery = LogQuery(),
    *,
    on_bad_line: OnBadLine,
    progress: Callable[[int], None] | None = None,
) -> Iterator[LogRecord]:
    """The records of ``files`` that ``query`` keeps, file by file in the order written."""
    needles = query.needles()
    text = query.text_needle()
    mark = run_mark(query.run_id) if query.run_id is not None else None
    for path in files:
        pid = file_pid(path)
        for block in file_blocks(path, on_bad_line):
            for offset, line in iter_lines(block):
                if needles and not any(needle in line for needle in needles):
                    continue
                if text is not None and text not in line:
                    continue
                if mark is not None and select_line(line, mark) is Selection.NONE:
                    continue
                try:
                    records = decode_logs_line(line)
                except InvalidRequest as exc:
                    on_bad_line(BadLine(path, line_number(path, offset), str(exc)))
                    continue
                if pid is not None:
                    _name_pid(records, pid)
                yield from (record for record in records if query.matches(record))
            if progress is not None:
                progress(len(block.data))


def _name_pid(records: list[LogRecord], pid: int) -> None:
    """Give records whose resource names no ``process.pid`` the pid of the file that holds them."""
    named: dict[int, Resource] = {}
    for record in records:
        if PROCESS_PID in record.resource.attributes:
            continue
        key = id(record.resource)
        if key not in named:
            named[key] = replace(record.resource, attributes={**record.resource.attributes, PROCESS_PID: pid})
        record.resource = named[key]


def read_logs(
    files: Sequence[Path],
    query: LogQuery = LogQuery(),
    *,
    on_bad_line: OnBadLine,
    progress: Callable[[int], None] | None = None,
) -> list[LogRecord]:
    """The records ``query`` keeps, in time order (records of one time stay in the order written).

    Each file is one process's, written batch by batch, so only a sort puts the processes' records
    side by side; memory is bounded by the records kept, not by the files.
    """
    found = list(iter_logs(files, query, on_bad_line=on_bad_line, progress=progress))
    found.sort(key=lambda record: record.when_ns)
    return found


def last_logged_trace(
    files: Sequence[Path], *, run_id: str | None = None, on_bad_line: OnBadLine
) -> str | None:
    """The trace of the latest record logged in a span, in the most recently written file that has
    one (of ``run_id``, when given); None when no record was logged in a span."""
    query = LogQuery(run_id=run_id)
    for path in sorted(files, key=lambda p: p.stat().st_mtime, reverse=True):
        latest: LogRecord | None = None
        for record in iter_logs([path], query, on_bad_line=on_bad_line):
            if record.trace_id and (latest is None or record.when_ns >= latest.when_ns):
                latest = record
        if latest is not None:
            return latest.trace_id
    return None
