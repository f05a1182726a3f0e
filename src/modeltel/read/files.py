"""How the lines of the files a reading command reads are cut into bounded blocks.

Which files those are is the store's to say (:func:`modeltel.store.data_files`). Lines are read in
blocks of whole lines of at most :data:`BLOCK_SIZE` bytes (plus the one line that crosses the end),
so memory stays bounded whatever the size of a file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from modeltel.store.layout import SourceError, data_files, summary_files

__all__ = ["BadLine", "Block", "ByteRange", "ReadWarning", "SourceError", "summary_files", "trace_files"]

BLOCK_SIZE = 4 << 20
"""Bytes of whole lines handed to a parser at once: large enough that per-block work is noise."""
MAX_LINE_BYTES = 64 << 20
"""A request line longer than this is skipped with a warning. The SDK's batches of 512 spans with
its default limits stay far below it; a line past it is damage, or a hostile file."""
MAX_DOCUMENT_BYTES = 1 << 30
"""A pretty-printed document is read whole: one larger than this is skipped with a warning."""
_SNIFF_BYTES = 1 << 16


class ReadWarning(UserWarning):
    """A line that could not be read was skipped; every other line was still read."""


@dataclass(frozen=True, slots=True)
class BadLine:
    """A skipped line: which file, which line (1-based), and why."""

    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: skipped invalid line ({self.reason})"


def trace_files(paths: Sequence[Path], data_dir: Path | None = None) -> list[Path]:
    """The trace files to read: ``paths`` (files, folders, data dirs) or else ``data_dir``."""
    return data_files(paths, data_dir, "traces")


@dataclass(frozen=True, slots=True)
class ByteRange:
    """The lines of ``path`` that start in ``[start, stop)``: a unit of parallel work."""

    path: Path
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


def split_ranges(files: Iterable[Path], size: int) -> list[ByteRange]:
    """Cut each file into ranges of about ``size`` bytes (empty files are left out).

    A file of JSON documents is one range: a document can only be read whole.
    """
    ranges = []
    for path in files:
        total = path.stat().st_size
        step = total if total and is_document(path) else max(size, 1)
        for start in range(0, total, step):
            ranges.append(ByteRange(path, start, min(start + step, total)))
    return ranges


def is_document(path: Path) -> bool:
    """True when ``path`` holds pretty-printed JSON documents rather than one JSON value per line.

    A JSON Lines record never ends its first line inside a value, so a first line that ends with
    an opening bracket, a comma or a colon (``{``, ``"resourceSpans": [``) starts a document. Only
    the first :data:`_SNIFF_BYTES` are looked at: a first line longer than that is a JSONL record.
    """
    with open(path, "rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    head = head.lstrip()
    end = head.find(b"\n")
    if end < 0 or not head.startswith(b"{"):
        return False
    return head[:end].rstrip().endswith((b"{", b"[", b",", b":"))


def _documents(path: Path, limit: int) -> list[Block] | None:
    """Each JSON document of ``path`` as a block of one compact line, at the byte it starts; None
    when the file does not start with a JSON document after all (it is then read as lines).

    The compact line is what an OTLP/JSON Lines file would hold, so every parser downstream reads
    documents and lines alike. Text after the last good document that is not JSON is one skipped
    block: it cannot be resynchronised.
    """
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        return [Block(path, 0, b"", True, ((0, f"JSON document larger than {limit} bytes"),))]
    text = data.decode("utf-8", "surrogateescape")
    decoder = json.JSONDecoder()
    blocks: list[Block] = []
    position = _skip_space(text, 0)
    while position < len(text):
        start = position
        offset = len(text[:start].encode("utf-8", "surrogateescape"))
        try:
            value, position = decoder.raw_decode(text, position)
        except (ValueError, RecursionError) as exc:
            if not blocks:
                return None
            blocks.append(Block(path, offset, b"", True, ((offset, f"not a JSON document: {exc}"),)))
            return blocks
        position = _skip_space(text, position)
        line = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        blocks.append(Block(path, offset, line.encode("utf-8", "backslashreplace") + b"\n", False))
    if blocks:
        last = blocks[-1]
        blocks[-1] = Block(path, last.offset, last.data, True, last.skipped)
    return blocks


def _rest_of_line(handle: BinaryIO, room: int) -> tuple[bytes | None, int]:
    """``(rest of the current line, bytes read)``, or ``(None, bytes read)`` once it outgrows
    ``room``: read in 1 MiB chunks, so a line past the limit never costs more than the limit."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = handle.readline(min(1 << 20, room - size + 1))
        size += len(chunk)
        if size > room:
            return None, size
        chunks.append(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return b"".join(chunks), size


def _skip_line(handle: BinaryIO) -> int:
    """Read past the rest of the current line in bounded chunks; the bytes passed over."""
    skipped = 0
    while True:
        chunk = handle.readline(1 << 20)
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return skipped


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


@dataclass(frozen=True, slots=True)
class Block:
    """Whole lines of one file: ``data`` starts at byte ``offset``; ``at_eof`` if it ends the file."""

    path: Path
    offset: int
    data: bytes
    at_eof: bool
    skipped: tuple[tuple[int, str], ...] = ()
    """``(byte offset, reason)`` of what could not be handed over as lines (a document not JSON)."""


def read_blocks(
    part: ByteRange, block_size: int = BLOCK_SIZE, max_line: int = MAX_LINE_BYTES
) -> Iterator[Block]:
    """The lines starting in ``part``, as blocks of whole lines.

    A line belongs to the range its first byte falls in, so ranges of one file can be read by
    different processes and every line is read exactly once. A file of JSON documents
    (:func:`is_document`) gives one block per document. A line longer than ``max_line`` is
    passed over unread (memory stays bounded by the block, not by the longest line) and reported
    in the block's ``skipped``.
    """
    if part.start == 0 and part.stop > 0 and is_document(part.path):
        documents = _documents(part.path, MAX_DOCUMENT_BYTES)
        if documents is not None:
            yield from documents
            return
    with open(part.path, "rb") as handle:
        position = part.start
        if position > 0:
            handle.seek(position - 1)
            if handle.read(1) != b"\n":
                handle.readline()  # the line that started in the previous range
            position = handle.tell()
        while position < part.stop:
            data = handle.read(min(block_size, part.stop - position))
            if not data:
                return  # the file shrank under us
            skipped: tuple[tuple[int, str], ...] = ()
            consumed = len(data)
            if not data.endswith(b"\n"):  # finish the line that crosses the block's end
                start = data.rfind(b"\n") + 1
                rest, passed = _rest_of_line(handle, max_line - (len(data) - start))
                if rest is None:
                    consumed += passed + _skip_line(handle)
                    data = data[:start]
                    skipped = ((position + start, f"line longer than {max_line} bytes"),)
                else:
                    consumed += len(rest)
                    data += rest
            at_eof = not data.endswith(b"\n") or handle.peek(1) == b""
            yield Block(part.path, position, data, at_eof, skipped)
            position += consumed


@dataclass(frozen=True, slots=True)
class Record:
    """One request as stored: ``data`` spans bytes ``[offset, end)`` of the file (a line without its
    newline, or a document made compact); ``reason`` says why it cannot be used, if it cannot."""

    offset: int
    end: int
    data: bytes
    complete: bool
    reason: str | None = None


def iter_records(path: Path, start: int = 0) -> Iterator[Record]:
    """The requests of ``path`` from byte ``start`` on, one at a time, for readers that keep a
    position in the file (replay's cursor). An unfinished last line is ``complete=False``."""
    size = path.stat().st_size
    documents = _documents(path, MAX_DOCUMENT_BYTES) if size and is_document(path) else None
    if documents is not None:
        ends = [block.offset for block in documents[1:]] + [size]
        for block, end in zip(documents, ends, strict=True):
            if block.offset >= start:
                reason = block.skipped[0][1] if block.skipped else None
                yield Record(block.offset, end, block.data.rstrip(b"\n"), True, reason)
        return
    with open(path, "rb") as handle:
        handle.seek(start)
        position = start
        while True:
            raw, passed = _rest_of_line(handle, MAX_LINE_BYTES)
            offset = position
            if raw is None:
                position += passed + _skip_line(handle)
                yield Record(offset, position, b"", True, f"line longer than {MAX_LINE_BYTES} bytes")
                continue
            if not raw:
                return
            position += len(raw)
            yield Record(offset, position, raw.rstrip(b"\n"), raw.endswith(b"\n"))


def file_blocks(path: Path, on_bad_line: Callable[[BadLine], None]) -> Iterator[Block]:
    """The blocks of the whole of ``path``, what each passed over (a line past the limit, a
    document that is not JSON) reported to ``on_bad_line`` first: the loop every whole-file
    reader shares."""
    for block in read_blocks(ByteRange(path, 0, path.stat().st_size)):
        for offset, reason in block.skipped:
            on_bad_line(BadLine(path, line_number(path, offset), reason))
        yield block


def iter_lines(block: Block) -> Iterator[tuple[int, bytes]]:
    """``(byte offset, line)`` for each non-blank line of ``block``, without the newline."""
    offset = block.offset
    for line in block.data.split(b"\n"):
        start = offset
        offset += len(line) + 1
        if line.strip():
            yield start, line


def line_number(path: Path, offset: int) -> int:
    """1-based number of the line starting at byte ``offset``: only computed for bad lines."""
    count = 0
    with open(path, "rb") as handle:
        remaining = offset
        while remaining > 0:
            chunk = handle.read(min(remaining, 1 << 20))
            if not chunk:
                break
            count += chunk.count(b"\n")
            remaining -= len(chunk)
    return count + 1
