"""Which files a reading command reads, and how their lines are cut into bounded blocks.

Every reading command takes the data dir or explicit files and folders (DESIGN §6). A folder that
holds a ``traces/`` directory is a data dir and only its traces are read; any other folder is
searched for ``*.jsonl`` and ``*.json`` files, so a Collector ``file`` exporter's output folder
works as it is. Lines are read in blocks of whole lines of at most :data:`BLOCK_SIZE` bytes (plus
the one line that crosses the end), so memory stays bounded whatever the size of a file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

TRACES_DIR = "traces"
"""Under a data dir: ``traces/<YYYY-MM-DD>/<service>-<pid>-<start>.jsonl`` (DESIGN §5)."""
METRICS_DIR = "metrics"
SUMMARIES_FILE = "summaries.jsonl"
"""The JSONL pipeline's summaries file (``modeltel.export.jsonl.SUMMARIES_FILE``, tested equal): named
here so that reading never imports the SDK the exporters need (0.4 s of a command's start).
"""
BLOCK_SIZE = 4 << 20
"""Bytes of whole lines handed to a parser at once: large enough that per-block work is noise."""
_SUFFIXES = (".jsonl", ".json")
_NOT_TRACE_DIRS = frozenset({METRICS_DIR, "running"})
"""Inside a data dir found in a folder: metrics, and running jobs' progress records."""
_NOT_TRACE_FILES = frozenset({SUMMARIES_FILE, "replay-cursor.json"})


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


class SourceError(FileNotFoundError):
    """A path given to a reading command does not exist or holds nothing readable."""


def is_data_dir(path: Path) -> bool:
    """True for a modeltel data dir: it holds ``traces/`` or ``summaries.jsonl``."""
    return (path / TRACES_DIR).is_dir() or (path / SUMMARIES_FILE).is_file()


def _files_under(folder: Path) -> list[Path]:
    found = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in _NOT_TRACE_DIRS)
        for name in sorted(names):
            if name.endswith(_SUFFIXES) and name not in _NOT_TRACE_FILES:
                found.append(Path(root) / name)
    return found


def trace_files(paths: Sequence[Path], data_dir: Path | None = None) -> list[Path]:
    """The trace files to read: ``paths`` (files, folders, data dirs) or else ``data_dir``.

    Raises :class:`SourceError` for a path that does not exist. Order is stable (sorted per
    folder), and a file named twice is read once.
    """
    roots = list(paths) if paths else ([data_dir] if data_dir is not None else [])
    found: list[Path] = []
    for root in roots:
        if not root.exists():
            raise SourceError(f"no such file or directory: {root}")
        if root.is_file():
            found.append(root)
        elif (root / TRACES_DIR).is_dir():
            found.extend(_files_under(root / TRACES_DIR))
        else:
            found.extend(_files_under(root))
    return list(dict.fromkeys(p.resolve() for p in found))


def summary_files(paths: Sequence[Path], data_dir: Path | None = None) -> list[Path]:
    """``summaries.jsonl`` of each data dir among ``paths`` (or of ``data_dir``), and any given directly."""
    roots = list(paths) if paths else ([data_dir] if data_dir is not None else [])
    found = []
    for root in roots:
        if root.is_file() and root.name == SUMMARIES_FILE:
            found.append(root)
        elif (root / SUMMARIES_FILE).is_file():
            found.append(root / SUMMARIES_FILE)
    return list(dict.fromkeys(p.resolve() for p in found))


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
