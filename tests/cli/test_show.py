"""``modeltel show`` on a real run, a Collector-style file and a damaged dir, as a person runs it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from modeltel.cli._reading import ProgressBar
from reading_data import COLLECTOR_TRACE, collector_file, damaged_dir, example_run, modeltel


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return example_run(tmp_path_factory.mktemp("run") / "data")


def _rows(stdout: str) -> dict[str, list[str]]:
    """Table lines by their first cell (span names here have no spaces)."""
    return {line.split()[0]: line.split() for line in stdout.splitlines() if line.strip()}


def test_table_for_a_real_run(run_dir: Path) -> None:
    result = modeltel("show", "--data-dir", str(run_dir))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "\033[" not in result.stdout  # plain text in a pipe
    lines = result.stdout.splitlines()
    assert lines[0] == f"{run_dir}: 6 spans in 1 file ({lines[0].split('(')[1]}"
    rows = _rows(result.stdout)
    assert rows["span"][:8] == ["span", "name", "count", "errors", "total", "mean", "p50", "p95"]
    assert rows["task"][1:3] == ["3", "0"] and rows["failing"][1:3] == ["1", "1"]
    assert rows["sweep"][1:3] == ["1", "0"] and rows["report"][1:3] == ["1", "0"]


def test_json_for_a_real_run_matches_the_process_summary(run_dir: Path) -> None:
    result = modeltel("show", "--data-dir", str(run_dir), "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    spans = {row["name"]: row for row in document["spans"]}
    (process,) = document["processes"]
    assert document["jobs"] == [] and document["bad_lines"] == []
    for name, stats in process["by_name"].items():
        row = spans[name]
        assert (row["count"], row["errors"]) == (stats["count"], stats["errors"])
        for ours, theirs in (
            ("total_s", "total_s"),
            ("p50_s", "p50_s"),
            ("p95_s", "p95_s"),
            ("max_s", "max_s"),
        ):
            assert row[ours] == pytest.approx(stats[theirs], abs=2e-9), (name, ours)


def test_trace_and_last(run_dir: Path) -> None:
    last = json.loads(modeltel("show", "--data-dir", str(run_dir), "--last", "--format", "json").stdout)
    assert sum(row["count"] for row in last["spans"]) == 6
    trace = last["trace_id"]
    upper = modeltel("show", "--data-dir", str(run_dir), "--trace", trace.upper())
    assert upper.returncode == 0 and upper.stdout.startswith(f"trace {trace}: 6 spans")
    missing = modeltel("show", "--data-dir", str(run_dir), "--trace", "0" * 32)
    assert (missing.returncode, missing.stderr) == (
        1,
        f"modeltel show: trace {'0' * 32} not found in {run_dir}\n",
    )


def test_collector_style_file(tmp_path: Path) -> None:
    path = collector_file(tmp_path)
    result = modeltel("show", str(path), "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)["spans"]}
    assert rows["chat gpt-4o"]["count"] == 2 and rows["chat gpt-4o"]["total_s"] == pytest.approx(4.0)
    assert rows["chat gpt-4o"]["p50_s"] == pytest.approx(2.0) and rows["chat gpt-4o"][
        "max_s"
    ] == pytest.approx(3.0)
    assert (rows["retrieve"]["errors"], rows["retrieve"]["mean_s"]) == (1, pytest.approx(0.2))
    table = modeltel("show", str(tmp_path), "--trace", COLLECTOR_TRACE.upper())
    assert table.returncode == 0
    (chat,) = [line for line in table.stdout.splitlines() if line.startswith("chat gpt-4o")]
    assert chat.split()[2:] == ["2", "0", "4", "s", "2", "s", "2", "s", "2.9", "s", "3", "s"]


def test_damaged_dir_warns_once_per_line_and_reads_the_rest(run_dir: Path, tmp_path: Path) -> None:
    path, garbage, torn, good = damaged_dir(run_dir, tmp_path / "damaged")
    result = modeltel("show", "--data-dir", str(tmp_path / "damaged"))
    assert result.returncode == 0
    warnings = result.stderr.splitlines()
    assert len(warnings) == 2
    assert warnings[0].startswith(f"modeltel show: warning: {path}:{garbage}: skipped invalid line (not JSON")
    assert warnings[1].startswith(f"modeltel show: warning: {path}:{torn}: skipped invalid line (not JSON")
    assert _rows(result.stdout)["task"][1:3] == ["3", "0"]
    last = modeltel("show", "--data-dir", str(tmp_path / "damaged"), "--last")
    # --last and the trace query both meet the torn line (the garbage line holds no trace id: unread)
    assert last.returncode == 0 and last.stderr.count("warning") == 1 and f":{torn}: " in last.stderr
    everything = json.loads(modeltel("show", str(path), "--format", "json").stdout)
    assert sum(row["count"] for row in everything["spans"]) == good
    assert [b["line"] for b in everything["bad_lines"]] == [garbage, torn]


@pytest.mark.parametrize(
    "args,code,message",
    [
        (["--data-dir", "/nonexistent/dir"], 2, "modeltel show: no such data dir: /nonexistent/dir"),
        (["/nonexistent/file.jsonl"], 2, "modeltel show: no such file or directory: /nonexistent/file.jsonl"),
        (["--trace", "xyz"], 2, "modeltel show: --trace: not a trace id: 'xyz' (expected 32 hex digits)"),
        (["--since", "soonish"], 2, "modeltel show: not a time: 'soonish'"),
        (["--since", "1h", "--until", "2h"], 2, "modeltel show: --since must be before --until"),
    ],
)
def test_bad_arguments_are_one_line_errors(run_dir: Path, args: list[str], code: int, message: str) -> None:
    if "--data-dir" not in args and not args[0].startswith("/"):
        args = ["--data-dir", str(run_dir), *args]
    result = modeltel("show", *args)
    assert result.returncode == code
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_empty_window_and_empty_dir(run_dir: Path, tmp_path: Path) -> None:
    future = modeltel("show", "--data-dir", str(run_dir), "--since", "2999-01-01", "--format", "json")
    assert future.returncode == 0 and json.loads(future.stdout)["spans"] == []
    empty = modeltel("show", "--data-dir", str(tmp_path))
    assert (empty.returncode, empty.stderr) == (
        1,
        f"modeltel show: no trace files or summaries in {tmp_path}\n",
    )


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ProgressBar, "DELAY_S", 0.0)
    monkeypatch.setattr(ProgressBar, "INTERVAL_S", 0.0)
    terminal, pipe = _Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        with ProgressBar(200_000_000, "reading", stream) as bar:
            bar.advance(50_000_000)
            bar.advance(50_000_000)
    assert pipe.getvalue() == ""
    drawn = terminal.getvalue()
    assert "\rreading " in drawn and " 25% " in drawn and " 50% " in drawn and "100/200 MB" in drawn
    assert drawn.endswith("\r\033[K")  # the bar is wiped before the table is printed
