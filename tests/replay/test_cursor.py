"""The replay cursor: offsets per endpoint and file, kept across runs, private, safe to move."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from modeltel.replay.cursor import Cursor, CursorError

KEY = "traces grpc http://127.0.0.1:4317"


def _data_dir(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "data"
    (data / "traces" / "2026-01-01").mkdir(parents=True)
    path = data / "traces" / "2026-01-01" / "svc-1-2.jsonl"
    path.write_bytes(b'{"a": 1}\n{"b": 2}\n')
    return data, path


def test_offsets_survive_a_new_cursor_and_are_per_endpoint(tmp_path: Path) -> None:
    data, path = _data_dir(tmp_path)
    cursor = Cursor(data)
    assert cursor.offset(KEY, path) == 0
    cursor.advance(KEY, path, 9)
    again = Cursor(data)
    assert again.offset(KEY, path) == 9
    assert again.offset("traces grpc http://127.0.0.1:9999", path) == 0
    stored = json.loads((data / "replay-cursor.json").read_text())
    assert stored["schema_version"] == 1
    assert list(stored["endpoints"][KEY]) == ["traces/2026-01-01/svc-1-2.jsonl"]  # relative to the data dir
    assert (data / "replay-cursor.json").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in data.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_a_moved_data_dir_keeps_its_cursor(tmp_path: Path) -> None:
    data, path = _data_dir(tmp_path)
    Cursor(data).advance(KEY, path, 9)
    moved = tmp_path / "carried"
    shutil.move(data, moved)
    assert Cursor(moved).offset(KEY, moved / "traces" / "2026-01-01" / "svc-1-2.jsonl") == 9


def test_a_replaced_or_truncated_file_starts_again(tmp_path: Path) -> None:
    data, path = _data_dir(tmp_path)
    Cursor(data).advance(KEY, path, 18)
    path.write_bytes(b'{"c": 3}\n{"d": 4}\n')  # same size, other content
    cursor = Cursor(data)
    assert cursor.offset(KEY, path) == 0 and "changed since it was sent" in cursor.warnings[0]
    Cursor(data).advance(KEY, path, 18)
    path.write_bytes(b'{"c": 3}\n')
    assert Cursor(data).offset(KEY, path) == 0


def test_an_appended_file_resumes(tmp_path: Path) -> None:
    data, path = _data_dir(tmp_path)
    Cursor(data).advance(KEY, path, 18)
    with open(path, "ab") as handle:
        handle.write(b'{"e": 5}\n')
    assert Cursor(data).offset(KEY, path) == 18


@pytest.mark.parametrize("content", ["{not json", '{"endpoints": []}', '{"endpoints": {"k": {"f": {}}}}'])
def test_a_damaged_cursor_stops_the_replay(tmp_path: Path, content: str) -> None:
    data, _ = _data_dir(tmp_path)
    (data / "replay-cursor.json").write_text(content)
    with pytest.raises(CursorError, match="damaged"):
        Cursor(data)


def test_one_replay_per_data_dir_at_a_time(tmp_path: Path) -> None:
    data, _ = _data_dir(tmp_path)
    with Cursor(data).locked(), pytest.raises(CursorError, match="another replay"), Cursor(data).locked():
        pass
    with Cursor(data).locked():  # released
        pass


def test_a_symlink_planted_as_the_cursor_is_replaced_not_followed(tmp_path: Path) -> None:
    data, path = _data_dir(tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    (data / "replay-cursor.json").symlink_to(outside)
    with pytest.raises(CursorError):  # a symlink to a non-cursor is not read as one
        Cursor(data)
    (data / "replay-cursor.json").unlink()
    cursor = Cursor(data)
    (data / "replay-cursor.json").symlink_to(outside)
    cursor.advance(KEY, path, 9)
    assert outside.read_text() == "keep" and not (data / "replay-cursor.json").is_symlink()


def test_without_a_data_dir_the_cursor_is_in_memory(tmp_path: Path) -> None:
    _, path = _data_dir(tmp_path)
    cursor = Cursor(None)
    cursor.advance(KEY, path, 9)
    assert cursor.offset(KEY, path) == 9 and cursor.path is None
