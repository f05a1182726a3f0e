"""How the lines of the files a reading command reads are cut into bounded blocks.

Which files those are is the store's to say (:func:`modeltel.store.data_files`). Lines are read in
blocks of whole lines of at most :data:`BLOCK_SIZE` bytes (plus the one line that crosses the end),
so memory stays bounded whatever the size of a file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from modeltel.store.layout import SourceError, data_files, summary_files

__all__ = ["BadLine", "Block", "ByteRange", "ReadWarning", "SourceError", "summary_files", "trace_files"]

BLOCK_SIZE = 4 << 20
"""Bytes of whole lines handed to a parser at once: large enough that per-block work is noise."""


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
    """Cut each file into ranges of about ``size`` bytes (empty files are left out)."""
    ranges = []
    for path in files:
        total = path.stat().st_size
        for start in range(0, total, max(size, 1)):
            ranges.append(ByteRange(path, start, min(start + size, total)))
    return ranges


@dataclass(frozen=True, slots=True)
class Block:
    """Whole lines of one file: ``data`` starts at byte ``offset``; ``at_eof`` if it ends the file."""

    path: Path
    offset: int
    data: bytes
    at_eof: bool


def read_blocks(part: ByteRange, block_size: int = BLOCK_SIZE) -> Iterator[Block]:
    """The lines starting in ``part``, as blocks of whole lines.

    A line belongs to the range its first byte falls in, so ranges of one file can be read by
    different processes and every line is read exactly once.
    """
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
            if not data.endswith(b"\n"):
                data += handle.readline()  # finish the line that crosses the block's end
            yield Block(part.path, position, data, not data.endswith(b"\n") or handle.peek(1) == b"")
            position += len(data)


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
