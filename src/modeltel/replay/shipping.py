"""The replay loop: each file's unsent lines, in order, batched into requests, cursor after each.

A request holds whole lines only (at most ``batch_items`` spans, data points or log records, and at most
:data:`MAX_REQUEST_BYTES` of JSON, except that one line always fits), so the cursor can always say
"everything before this byte was acknowledged". Lines of the other signals are passed over (a
Collector ``file`` exporter may mix them in one file; each signal has its own cursor), invalid
lines are skipped with a warning naming file and line, and an incomplete last line (a process
still writing, or one that crashed mid-line) is left unsent and the cursor stops before it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.message import Message

from modeltel.formats.protobuf import SIGNALS, InvalidLine, Signal, build_request, signal_of
from modeltel.read.files import BadLine, iter_records, line_number
from modeltel.replay.cursor import Cursor
from modeltel.replay.transport import Interrupted, Retrying, SendError, Target
from modeltel.store.layout import data_files

MAX_REQUEST_BYTES = 3 << 20
"""JSON bytes per request: its protobuf is smaller, well under gRPC's usual 4 MiB receive limit."""
ITEM_NAMES = {"traces": "spans", "metrics": "data points", "logs": "log records"}


def replay_files(paths: Sequence[Path], data_dir: Path | None) -> dict[Signal, list[Path]]:
    """The files each signal reads: a data dir's signal folder; any other file or folder is read
    for every signal (a line's own content says which signal it is)."""
    return {signal: data_files(paths, data_dir, signal) for signal in SIGNALS}


def endpoint_key(target: Target) -> str:
    """The cursor's key for one signal's destination."""
    return f"{target.signal} {target.protocol} {target.shown}"


@dataclass
class SignalReport:
    """What one signal's replay did."""

    signal: Signal
    endpoint: str
    protocol: str
    files: int = 0
    up_to_date: int = 0
    """Files with nothing new for this endpoint."""
    lines: int = 0
    items: int = 0
    requests: int = 0
    rejected: int = 0
    skipped: int = 0
    incomplete: int = 0
    rejected_reason: str = ""
    error: str | None = None
    retried: bool = False
    """The error was a retryable one and the retries ran out."""
    interrupted: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "signal": self.signal,
            "endpoint": self.endpoint,
            "protocol": self.protocol,
            "files": self.files,
            "up_to_date_files": self.up_to_date,
            "sent": self.items,
            "unit": ITEM_NAMES[self.signal],
            "lines": self.lines,
            "requests": self.requests,
            "rejected": self.rejected,
            "rejected_reason": self.rejected_reason,
            "skipped_lines": self.skipped,
            "incomplete_lines": self.incomplete,
            "error": self.error,
            "interrupted": self.interrupted,
        }


class _SignalFailed(Exception):
    pass


@dataclass
class _Batch:
    requests: list[Message]
    items: int = 0
    size: int = 0


@dataclass
class Shipper:
    """Replays files to one signal's destination, advancing ``cursor`` after each request."""

    cursor: Cursor
    batch_items: int
    progress: Callable[[int], None]
    on_bad_line: Callable[[BadLine], None]
    stopped: Callable[[], bool]

    def replay(self, signal: Signal, files: Iterable[Path], target: Target, sender: Retrying) -> SignalReport:
        """Send what is new in ``files``; stops at the first request that fails for good, or when
        ``stopped()`` says so (between requests, or while waiting to retry)."""
        report = SignalReport(signal, target.shown, target.protocol)
        key = endpoint_key(target)
        try:
            for path in files:
                report.files += 1
                self._file(signal, path, key, sender, report)
        except _SignalFailed:
            pass
        except Interrupted:
            report.interrupted = True
        return report

    def _file(self, signal: Signal, path: Path, key: str, sender: Retrying, report: SignalReport) -> None:
        start = self.cursor.offset(key, path)
        self.progress(start)
        sent_before = report.lines
        batch = _Batch([])
        position = start  # every byte before it was acknowledged or passed over
        for record in iter_records(path, start):
            if not record.complete:  # still being written, or torn by a crash: not sent
                report.incomplete += 1
                break
            offset, position = record.offset, record.end
            self.progress(record.end - record.offset)
            if record.reason is not None:
                self._bad(path, offset, record.reason)
                report.skipped += 1
                continue
            request, items = self._request(signal, path, offset, record.data, report)
            if request is None:
                continue
            size = len(record.data) + 1
            if batch.requests and (
                batch.items + items > self.batch_items or batch.size + size > MAX_REQUEST_BYTES
            ):
                self._flush(batch, path, key, offset, sender, report)
                batch = _Batch([])
            batch.requests.append(request)
            batch.items += items
            batch.size += size
        if position > start:
            self._flush(batch, path, key, position, sender, report)
        if report.lines == sent_before:
            report.up_to_date += 1

    def _request(
        self, signal: Signal, path: Path, offset: int, line: bytes, report: SignalReport
    ) -> tuple[Message | None, int]:
        """The request of one line of ``signal``; None for a blank line, another signal's or a bad one."""
        if not line.strip():
            return None, 0
        kind = signal_of(line)
        if kind is None:
            self._bad(path, offset, "not an OTLP/JSON trace, metrics or logs request")
            report.skipped += 1
            return None, 0
        if kind != signal:
            return None, 0
        try:
            request, items = build_request(signal, line)
        except InvalidLine as exc:
            self._bad(path, offset, str(exc))
            report.skipped += 1
            return None, 0
        return (request, items) if items else (None, 0)

    def _flush(
        self, batch: _Batch, path: Path, key: str, upto: int, sender: Retrying, report: SignalReport
    ) -> None:
        """Send ``batch`` (if anything is in it), then record ``upto`` as sent."""
        if batch.requests:
            if self.stopped():
                raise Interrupted
            request = type(batch.requests[0])()
            for part in batch.requests:
                request.MergeFrom(part)  # repeated fields append: resource groups side by side
            try:
                delivery = sender.send(request)
            except SendError as error:
                report.error, report.retried = str(error), error.retryable
                raise _SignalFailed from None
            report.requests += 1
            report.items += batch.items
            report.lines += len(batch.requests)
            report.rejected += delivery.rejected
            report.rejected_reason = delivery.message or report.rejected_reason
        self.cursor.advance(key, path, upto)

    def _bad(self, path: Path, offset: int, reason: str) -> None:
        self.on_bad_line(BadLine(path, line_number(path, offset), reason))
