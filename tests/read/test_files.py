"""Finding files and cutting them into byte ranges that together read every line exactly once."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from modeltel.read.files import (
    ByteRange,
    SourceError,
    line_number,
    read_blocks,
    split_ranges,
    summary_files,
    trace_files,
)


def _lines_in(path: Path, size: int, block: int) -> list[tuple[int, bytes]]:
    found = []
    for part in split_ranges([path], size):
        for b in read_blocks(part, block_size=block):
            offset = b.offset
            for line in b.data.split(b"\n"):
                if line:
                    found.append((offset, line))
                offset += len(line) + 1
    return found


@pytest.mark.parametrize("size,block", [(1, 1), (7, 3), (100, 16), (10_000, 64), (1 << 20, 1 << 20)])
def test_ranges_read_every_line_once(tmp_path: Path, size: int, block: int) -> None:
    rng = random.Random(size)
    lines = [bytes(rng.choice(b"abcdef{}") for _ in range(rng.randrange(1, 300))) for _ in range(200)]
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"\n".join(lines))  # the last line has no newline
    expected, offset = [], 0
    for line in lines:
        expected.append((offset, line))
        offset += len(line) + 1
    assert _lines_in(path, size, block) == expected


def test_the_last_block_knows_it_ends_the_file(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"a\nb\ntorn")
    blocks = list(read_blocks(ByteRange(path, 0, path.stat().st_size), block_size=2))
    assert [b.at_eof for b in blocks] == [False, False, True]
    assert blocks[-1].data == b"torn"


def test_line_number_counts_newlines_before_an_offset(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"one\ntwo\nthree\n")
    assert [line_number(path, o) for o in (0, 4, 8)] == [1, 2, 3]


def test_data_dirs_folders_and_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "traces" / "2026-01-01").mkdir(parents=True)
    (data / "metrics" / "2026-01-01").mkdir(parents=True)
    (data / "traces" / "2026-01-01" / "a-1-1.jsonl").write_text("")
    (data / "metrics" / "2026-01-01" / "a-1-1.jsonl").write_text("")
    (data / "summaries.jsonl").write_text("")
    other = tmp_path / "collector"
    (other / "nested").mkdir(parents=True)
    (other / "nested" / "out.json").write_text("")
    (other / "notes.txt").write_text("")
    single = tmp_path / "one.jsonl"
    single.write_text("")
    assert [p.name for p in trace_files([], data)] == ["a-1-1.jsonl"]
    assert [p.name for p in trace_files([data, other, single, single])] == [
        "a-1-1.jsonl",
        "out.json",
        "one.jsonl",
    ]
    assert [p.name for p in trace_files([data / "traces"])] == ["a-1-1.jsonl"]
    assert summary_files([data, other]) == [(data / "summaries.jsonl").resolve()]
    with pytest.raises(SourceError, match=r"no such file or directory: .*missing"):
        trace_files([tmp_path / "missing"])
