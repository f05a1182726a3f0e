"""Progress records read back: running, stale (process gone or pid reused), remote; bad files skipped."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modeltel._internal.process import is_alive, start_ticks
from modeltel.read.running import parse_record, running_jobs


def _record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "schema_version": 1,
        "kind": "calibration",
        "job_name": "fit",
        "service": "svc",
        "trace_id": "0" * 31 + "1",
        "span_id": "0" * 15 + "2",
        "pid": os.getpid(),
        "pid_start": start_ticks(),
        "host": socket.gethostname(),
        "started": 1000.0,
        "updated": 1010.0,
        "iterations": 10,
        "max_iterations": 40,
        "best_loss": 0.5,
        "direction": "minimize",
        "runs": None,
        "n_tasks": None,
        "batches": None,
    }
    record.update(changes)
    return record


def _write(data_dir: Path, name: str, record: dict[str, Any] | str) -> None:
    folder = data_dir / "running"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(record if isinstance(record, str) else json.dumps(record))


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_status_running_stale_remote(tmp_path: Path) -> None:
    _write(tmp_path, "a.json", _record(started=1000.0))
    _write(tmp_path, "b.json", _record(started=1001.0, pid=_dead_pid()))
    _write(tmp_path, "c.json", _record(started=1002.0, pid_start="1"))  # our pid, another process's start
    _write(tmp_path, "d.json", _record(started=1003.0, host="elsewhere"))
    jobs = running_jobs(tmp_path, now=1020.0)
    assert [job.status for job in jobs] == ["running", "stale", "stale", "remote"]


def test_progress_elapsed_and_eta(tmp_path: Path) -> None:
    _write(tmp_path, "a.json", _record())
    (job,) = running_jobs(tmp_path, now=1012.0)
    assert job.progress == (10, 40, "iterations") and job.fraction == 0.25
    assert job.elapsed_s == 12.0
    assert job.eta_s == pytest.approx(30 * 1.0 - 2.0)  # 1 s per iteration so far, 2 s since the update
    document = job.to_json()
    assert (document["done"], document["total"], document["unit"], document["status"]) == (
        10,
        40,
        "iterations",
        "running",
    )


def test_stale_jobs_have_no_eta_and_elapsed_stops_at_the_last_update(tmp_path: Path) -> None:
    _write(tmp_path, "a.json", _record(pid=_dead_pid()))
    (job,) = running_jobs(tmp_path, now=5000.0)
    assert (job.status, job.eta_s, job.elapsed_s) == ("stale", None, 10.0)


def test_simulation_without_total_and_inference(tmp_path: Path) -> None:
    _write(tmp_path, "a.json", _record(kind="simulation", iterations=None, max_iterations=None, runs=7))
    _write(tmp_path, "b.json", _record(kind="inference", iterations=None, max_iterations=None, batches=3))
    first, second = running_jobs(tmp_path, now=1012.0)
    assert (first.progress, first.fraction, first.eta_s) == ((7, None, "runs"), None, None)
    assert second.progress == (3, None, "batches")


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[1, 2]",
        json.dumps(_record(pid="12")),
        json.dumps(_record(runs=True)),
        json.dumps({k: v for k, v in _record().items() if k != "started"}),
        json.dumps(_record(best_loss="low")),
    ],
)
def test_bad_files_are_reported_and_skipped(tmp_path: Path, content: str) -> None:
    _write(tmp_path, "bad.json", content)
    _write(tmp_path, "good.json", _record())
    bad: list[Any] = []
    jobs = running_jobs(tmp_path, on_bad_file=bad.append)
    assert len(jobs) == 1 and len(bad) == 1 and bad[0].path.name == "bad.json"


def test_temporary_files_and_missing_dir(tmp_path: Path) -> None:
    assert running_jobs(tmp_path / "nothing") == []
    _write(tmp_path, ".x.json.1.2.tmp", _record())
    _write(tmp_path, "notes.txt", "hello")
    assert running_jobs(tmp_path) == []


def test_parse_record_fills_optional_fields() -> None:
    minimal = {k: _record()[k] for k in ("kind", "trace_id", "span_id", "pid", "host", "started", "updated")}
    record = parse_record(json.dumps(minimal).encode())
    assert record.best_loss is None and record.job_name is None and record.iterations is None


def test_is_alive_knows_zombies_and_reused_pids() -> None:
    assert is_alive(os.getpid(), start_ticks())
    assert not is_alive(os.getpid(), "0")
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = 100
        while deadline and (Path(f"/proc/{zombie.pid}/stat").read_text().split(")")[1].split()[0] != "Z"):
            subprocess.run(["sleep", "0.05"])
            deadline -= 1
        assert not is_alive(zombie.pid)  # exited, not yet reaped
    finally:
        zombie.wait()
    assert not is_alive(zombie.pid)


def test_a_folder_holding_a_data_dir_reads_no_state_file_as_traces(tmp_path: Path) -> None:
    from modeltel.read import trace_files

    data = tmp_path / "runs" / "a"
    _write(data, "1-2.json", _record())
    day = data / "traces" / "2026-01-01"
    day.mkdir(parents=True)
    (day / "svc-1-2.jsonl").write_text("")
    (data / "replay-cursor.json").write_text("{}")
    assert trace_files([tmp_path / "runs"]) == [(day / "svc-1-2.jsonl").resolve()]
