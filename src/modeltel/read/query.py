"""The reading entry points: aggregate many files in parallel, or stream full spans in order.

``aggregate`` cuts the files into byte ranges and scans them on every core (a process pool: the
scan is CPU-bound Python, so threads would queue on the GIL); each worker returns a small
:class:`~modeltel.read.aggregate.GroupTable`, never spans, so memory is bounded by the answer.
``iter_spans`` is the full-fidelity stream used by export, timeline and trace queries: one line
decoded at a time, lines that cannot hold the wanted trace skipped unparsed.
"""

from __future__ import annotations

import gc
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from modeltel.read.aggregate import GroupTable
from modeltel.read.files import (
    BadLine,
    ByteRange,
    ReadWarning,
    file_blocks,
    iter_lines,
    line_number,
    read_blocks,
    split_ranges,
)
from modeltel.read.runs import Selection, run_mark, select_line, span_run
from modeltel.read.scan import Query, scan_block

if TYPE_CHECKING:
    import multiprocessing.context

    from modeltel.formats.otlp import Span

OnBadLine = Callable[[BadLine], None]
Progress = Callable[[int], None]
"""Called with the number of bytes just finished."""

PARALLEL_MIN_BYTES = 24 << 20
"""Below this a pool costs more than it saves (forking and merging): read in this process."""
MIN_RANGE = 8 << 20
MAX_RANGE = 64 << 20


def warn_bad_line(bad: BadLine) -> None:
    """The default ``on_bad_line``: a :class:`ReadWarning` naming file and line."""
    warnings.warn(str(bad), ReadWarning, stacklevel=3)


@dataclass(slots=True)
class Aggregate:
    """What :func:`aggregate` found: the groups, how much was read, and the lines skipped."""

    table: GroupTable
    files: int = 0
    bytes: int = 0
    bad_lines: list[BadLine] = field(default_factory=list)


def _scan_range(task: tuple[ByteRange, Query]) -> tuple[GroupTable, list[tuple[Path, int, str]], int]:
    part, query = task
    table = GroupTable()
    bad: list[tuple[Path, int, str]] = []
    for block in read_blocks(part):
        result = scan_block(block, query)
        table.add_all(result.columns)
        bad.extend((part.path, offset, reason) for offset, reason in (*block.skipped, *result.bad))
    return table, bad, part.size


def default_workers() -> int:
    """Usable cores (affinity-aware), at most 8: beyond that the merge and disk dominate."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def _pool_context() -> multiprocessing.context.BaseContext:
    # fork: workers start in milliseconds with everything imported; the CLI holds no threads.
    import multiprocessing  # here: a file too small to split is read without it (~10 ms of import)

    if sys.platform == "linux":
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def aggregate(
    files: Sequence[Path],
    query: Query,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
    on_bad_line: OnBadLine | None = None,
) -> Aggregate:
    """Group the spans of ``files`` as ``query`` says, on ``workers`` processes (default: all cores)."""
    workers = default_workers() if workers is None else max(1, workers)
    total = sum(p.stat().st_size for p in files)
    size = min(MAX_RANGE, max(MIN_RANGE, total // (workers * 6) + 1))
    tasks = [(part, query) for part in split_ranges(files, size)]
    result = Aggregate(GroupTable(), files=len(files), bytes=total)
    raw_bad: list[tuple[Path, int, str]] = []

    def take(partial: tuple[GroupTable, list[tuple[Path, int, str]], int]) -> None:
        table, bad, done = partial
        result.table.merge(table)
        raw_bad.extend(bad)
        if progress is not None:
            progress(done)

    if workers == 1 or total < PARALLEL_MIN_BYTES or len(tasks) < 2:
        for task in tasks:
            take(_scan_range(task))
    else:
        # Objects the GC never visits are never written by it, so forked workers keep sharing the
        # parent's pages instead of copying them (fewer page faults, less memory per worker).
        gc.freeze()
        try:
            with _pool_context().Pool(min(workers, len(tasks))) as pool:
                for partial in pool.imap_unordered(_scan_range, tasks):
                    take(partial)
        finally:
            gc.unfreeze()
    report = on_bad_line or warn_bad_line
    for path, offset, reason in sorted(raw_bad):
        bad = BadLine(path, line_number(path, offset), reason)
        result.bad_lines.append(bad)
        report(bad)
    return result


@dataclass(frozen=True, slots=True)
class Batch:
    """The spans of one line: where it was (file, byte offset) and what it held."""

    path: Path
    offset: int
    spans: list[Span]


def iter_batches(
    files: Sequence[Path],
    *,
    trace_id: str | None = None,
    run_id: str | None = None,
    progress: Progress | None = None,
    on_bad_line: OnBadLine | None = None,
) -> Iterator[Batch]:
    """Each line's spans, file by file in order; lines that cannot hold ``trace_id`` are not parsed.

    ``trace_id`` (lowercase hex) only pre-selects lines; the spans of a batch are not filtered.
    ``run_id`` does filter: a line of another run is not parsed, and of a line mixing runs only
    the run's spans are kept. A line that is not valid OTLP/JSON is reported to ``on_bad_line``
    and skipped.
    """
    # Imported here, where a line is decoded: the decoder costs ~15 ms of import.
    from modeltel.formats.otlp import InvalidRequest, decode_line

    report = on_bad_line or warn_bad_line
    needles = (trace_id.encode(), trace_id.upper().encode()) if trace_id else ()
    mark = run_mark(run_id) if run_id is not None else None
    for path in files:
        for block in file_blocks(path, report):
            for offset, line in iter_lines(block):
                if needles and not any(n in line for n in needles):
                    continue
                chosen = Selection.ALL if mark is None else select_line(line, mark)
                if chosen is Selection.NONE:
                    continue
                try:
                    spans = decode_line(line)
                except InvalidRequest as exc:
                    report(BadLine(path, line_number(path, offset), str(exc)))
                    continue
                if chosen is Selection.SOME:
                    spans = [span for span in spans if span_run(span) == run_id]
                if spans:
                    yield Batch(path, offset, spans)
            if progress is not None:
                progress(len(block.data))


def iter_spans(
    files: Sequence[Path],
    *,
    trace_id: str | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
    run_id: str | None = None,
    progress: Progress | None = None,
    on_bad_line: OnBadLine | None = None,
) -> Iterator[Span]:
    """Every span of ``files`` (of one trace and run, started in ``[since, until)``), in file order."""
    batches = iter_batches(
        files, trace_id=trace_id, run_id=run_id, progress=progress, on_bad_line=on_bad_line
    )
    for batch in batches:
        for span in batch.spans:
            if trace_id is not None and span.trace_id != trace_id:
                continue
            if since_ns is not None and span.start_ns < since_ns:
                continue
            if until_ns is not None and span.start_ns >= until_ns:
                continue
            yield span


def _lines_backwards(path: Path, chunk: int = 1 << 20) -> Iterator[tuple[int, bytes]]:
    """``(offset, line)`` from the last line of ``path`` to the first, reading ``chunk`` bytes at a time."""
    with open(path, "rb") as handle:
        position = handle.seek(0, os.SEEK_END)
        tail = b""
        while position > 0:
            start = max(0, position - chunk)
            handle.seek(start)
            data = handle.read(position - start) + tail
            position = start
            lines = data.split(b"\n")
            tail = lines.pop(0) if start > 0 else b""  # may begin before ``start``: read with the next chunk
            offset = start + len(tail) + 1 if start > 0 else 0
            located = []
            for line in lines:
                located.append((offset, line))
                offset += len(line) + 1
            for item in reversed(located):
                if item[1].strip():
                    yield item


_CHILD = re.compile(rb'"parentSpanId":"[0-9a-fA-F]')
_SPAN_MARK = b'"startTimeUnixNano":'


def last_trace_id(
    files: Sequence[Path], *, run_id: str | None = None, on_bad_line: OnBadLine | None = None
) -> str | None:
    """The trace whose root span was written last (newest file first); None when there are no spans.

    A process writes its root span when the job ends, after its children's, so the newest file's
    last root span is the most recent finished trace. With no root span anywhere, the trace of the
    newest file's last span is used. Lines without a root span are not decoded. With ``run_id``,
    the last trace of that run.
    """
    # Imported here, where a line is decoded: the decoder costs ~15 ms of import.
    from modeltel.formats.otlp import InvalidRequest, decode_line

    report = on_bad_line or warn_bad_line
    fallback: str | None = None
    mark = run_mark(run_id) if run_id is not None else None
    for path in sorted(files, key=lambda p: p.stat().st_mtime, reverse=True):
        for offset, line in _lines_backwards(path):
            if fallback is not None and len(_CHILD.findall(line)) >= line.count(_SPAN_MARK):
                continue
            chosen = Selection.ALL if mark is None else select_line(line, mark)
            if chosen is Selection.NONE:
                continue
            try:
                spans = decode_line(line)
            except InvalidRequest as exc:
                report(BadLine(path, line_number(path, offset), str(exc)))
                continue
            if chosen is Selection.SOME:
                spans = [span for span in spans if span_run(span) == run_id]
            roots = [s for s in spans if not s.parent_span_id]
            if roots:
                return max(roots, key=lambda s: s.start_ns).trace_id
            if spans and fallback is None:
                fallback = max(spans, key=lambda s: s.end_ns).trace_id
    return fallback
