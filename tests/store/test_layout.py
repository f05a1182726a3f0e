"""The data dir's layout has one owner, and discovery reads only regular files inside a data dir."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from modeltel.store import SUMMARIES_FILE, DataDir, SourceError, data_files, is_data_dir, summary_files

SRC = Path(__file__).resolve().parents[2] / "src" / "modeltel"
LINE = b'{"resourceSpans":[]}\n'


def _data_dir(tmp_path: Path) -> Path:
    day = tmp_path / "data" / "traces" / "2026-01-01"
    day.mkdir(parents=True)
    (day / "svc-1-1.jsonl").write_bytes(LINE)
    return tmp_path / "data"


def test_every_path_of_a_data_dir_comes_from_one_object(tmp_path: Path) -> None:
    layout = DataDir(tmp_path)
    assert layout.signal_dir("logs") == tmp_path / "logs"
    assert layout.summaries == tmp_path / SUMMARIES_FILE
    assert layout.running == tmp_path / "running"
    assert layout.replay_cursor == tmp_path / "replay-cursor.json"
    parts, name = DataDir.process_file("metrics", "my sweep/1", 42, 1_767_225_600.5)
    assert parts == ("metrics", "2026-01-01")
    assert name == "my_sweep_1-42-1767225600.jsonl"


def test_a_data_dir_is_any_signal_folder_or_the_summaries(tmp_path: Path) -> None:
    assert not is_data_dir(tmp_path)
    (tmp_path / "logs").mkdir()
    assert is_data_dir(tmp_path)


def test_no_module_outside_the_store_spells_a_data_dir_name() -> None:
    """One home for the layout: a literal elsewhere would drift from it."""
    literal = re.compile(
        r"""["'](summaries\.jsonl|replay-cursor\.json)["']|/\s*["'](traces|metrics|logs|running)["']"""
    )
    offenders = [
        f"{path.relative_to(SRC)}:{number}"
        for path in SRC.rglob("*.py")
        if "store" not in path.relative_to(SRC).parts
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if literal.search(line) and not line.lstrip().startswith("#")
    ]
    assert offenders == []


def test_a_fifo_in_the_data_dir_is_not_read(tmp_path: Path) -> None:
    data = _data_dir(tmp_path)
    os.mkfifo(data / "traces" / "2026-01-01" / "x.jsonl")
    assert [p.name for p in data_files([], data, "traces")] == ["svc-1-1.jsonl"]
    # and a command that reads the dir ends instead of waiting on the FIFO forever
    done = subprocess.run(
        [sys.executable, "-m", "modeltel.cli.main", "export", "--format", "json", "-o", "-", str(data)],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_a_symlink_planted_in_the_data_dir_is_not_followed(tmp_path: Path) -> None:
    data = _data_dir(tmp_path)
    secret = tmp_path / "outside.jsonl"
    secret.write_bytes(LINE)
    (data / "traces" / "2026-01-01" / "passwd.jsonl").symlink_to(secret)
    (data / "traces" / "linked").symlink_to(tmp_path, target_is_directory=True)
    (data / SUMMARIES_FILE).symlink_to(secret)
    assert [p.name for p in data_files([], data, "traces")] == ["svc-1-1.jsonl"]
    assert summary_files([data]) == []


def test_an_explicit_path_may_be_a_symlink_but_not_a_fifo(tmp_path: Path) -> None:
    data = _data_dir(tmp_path)
    link = tmp_path / "link.jsonl"
    link.symlink_to(data / "traces" / "2026-01-01" / "svc-1-1.jsonl")
    assert [p.name for p in data_files([link], None, "traces")] == ["svc-1-1.jsonl"]
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(SourceError, match="not a regular file"):
        data_files([fifo], None, "traces")


def test_each_signal_reads_its_own_folder(tmp_path: Path) -> None:
    data = _data_dir(tmp_path)
    (data / "metrics" / "2026-01-01").mkdir(parents=True)
    (data / "metrics" / "2026-01-01" / "svc-1-1.jsonl").write_bytes(b'{"resourceMetrics":[]}\n')
    assert [p.parts[-3] for p in data_files([data], None, "metrics")] == ["metrics"]
    assert {p.parts[-3] for p in data_files([data], None, None)} == {"traces", "metrics"}
