"""Streaming full spans, trace selection, the last trace, and the warnings for skipped lines."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from modeltel.read import BadLine, Query, ReadWarning, aggregate, iter_spans, last_trace_id, trace_files
from reading_data import COLLECTOR_TRACE, collector_file, damaged_dir, example_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return example_run(tmp_path_factory.mktemp("run") / "data")


def test_iter_spans_streams_every_span_and_filters_a_trace(run_dir: Path, tmp_path: Path) -> None:
    files = [*trace_files([], run_dir), collector_file(tmp_path)]
    everything = list(iter_spans(files))
    assert len(everything) == 6 + 3
    only = list(iter_spans(files, trace_id=COLLECTOR_TRACE))
    assert [s.name for s in only] == ["chat gpt-4o", "retrieve", "chat gpt-4o"]
    late = list(iter_spans(files, since_ns=1544712661000000000, until_ns=1544712662000000000))
    assert [s.span_id for s in late] == ["eee19b7ec3c1b176"]


def test_last_trace_is_the_newest_root(run_dir: Path, tmp_path: Path) -> None:
    files = trace_files([], run_dir)
    (root,) = [s for s in iter_spans(files) if not s.parent_span_id]
    assert last_trace_id(files) == root.trace_id
    assert last_trace_id([collector_file(tmp_path)]) == COLLECTOR_TRACE
    assert last_trace_id([]) is None


def test_bad_lines_warn_with_file_and_line_and_the_rest_is_read(run_dir: Path, tmp_path: Path) -> None:
    path, garbage, torn, good_spans = damaged_dir(run_dir, tmp_path / "damaged")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = aggregate([path], Query())
        streamed = list(iter_spans([path]))
    messages = [str(w.message) for w in caught if issubclass(w.category, ReadWarning)]
    assert f"{path}:{garbage}: skipped invalid line (not JSON" in messages[0]
    assert f"{path}:{torn}: skipped invalid line (not JSON" in messages[1]
    assert len(messages) == 4  # each route reports both lines
    assert result.table.span_count == len(streamed) == good_spans
    assert [(b.line) for b in result.bad_lines] == [garbage, torn]


def test_a_callback_receives_bad_lines_instead_of_warnings(run_dir: Path, tmp_path: Path) -> None:
    path, garbage, torn, _ = damaged_dir(run_dir, tmp_path / "damaged")
    seen: list[BadLine] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        list(iter_spans([path], on_bad_line=seen.append))
    assert [b.line for b in seen] == [garbage, torn]
