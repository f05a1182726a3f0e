"""A data dir another user could write to is never used: the CLI refuses it, an app writes no file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from modeltel.store.files import append_line, open_append
from modeltel.store.layout import UnsafeDataDir, unsafe_reason
from otlp_files import BIN, base_env

APP = "from modeltel import simulation\nwith simulation.job('j'):\n    with simulation.run(model='m'): pass\n"


def _shared_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "traces").mkdir(parents=True)
    data.chmod(0o777)
    (data / "summaries.jsonl").write_text("")
    (data / "summaries.jsonl").chmod(0o666)
    return data


def test_a_world_writable_data_dir_is_named_as_unsafe(tmp_path: Path) -> None:
    data = _shared_dir(tmp_path)
    assert "writable by group or others (mode 0777" in (unsafe_reason(data) or "")
    data.chmod(0o700)
    assert "summaries.jsonl is writable by group or others (mode 0666" in (unsafe_reason(data) or "")
    (data / "summaries.jsonl").chmod(0o600)
    assert unsafe_reason(data) is None


def test_a_data_dir_of_another_user_is_refused_by_the_writer(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give a folder away")
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    os.chown(data, 65534, 65534)
    with pytest.raises(UnsafeDataDir, match="owned by uid 65534"):
        open_append(data, ("traces", "2026-01-01"), "x.jsonl")
    with pytest.raises(UnsafeDataDir, match="owned by uid 65534"):
        append_line(data, "summaries.jsonl", "{}")
    assert list(data.iterdir()) == []


def test_modeltel_run_exits_2_naming_the_path(tmp_path: Path) -> None:
    data = _shared_dir(tmp_path)
    done = subprocess.run(
        [str(BIN / "modeltel"), "run", "--", sys.executable, "-c", "pass"],
        env=base_env(data),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert f"{data} is writable by group or others" in done.stderr


def test_an_app_warns_once_and_writes_no_local_file(tmp_path: Path) -> None:
    data = _shared_dir(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", APP], env=base_env(data), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("writable by group or others") == 1, done.stderr
    assert sorted(p.name for p in data.rglob("*")) == ["summaries.jsonl", "traces"]
    assert (data / "summaries.jsonl").read_text() == ""
