"""``modeltel show --running`` on a real calibration running in another process, then ended or killed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from otlp_files import base_env
from reading_data import modeltel

pytestmark = pytest.mark.timeout(120)

T = TypeVar("T")

CALIBRATION = """
import sys, time
from pathlib import Path
import modeltel
from modeltel import calibration

modeltel.configure(service_name="fitter")
stop = Path(sys.argv[1])
with calibration.job("fit-sir", algorithm="tpe", max_iterations=500) as job:
    for i in range(500):
        if stop.exists():
            break
        with job.iteration() as it:
            with it.tell() as t:
                t.losses([10.0 / (i + 1), 50.0])
        time.sleep(0.05)
"""


def _until(check: Callable[[], T | None], timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found is not None:
            return found
        time.sleep(0.2)
    raise AssertionError(f"not reached within {timeout} s")


def _running(data_dir: Path) -> list[dict[str, Any]]:
    result = modeltel("show", "--running", "--data-dir", str(data_dir), "--format", "json")
    assert result.returncode == 0, result.stderr
    jobs: list[dict[str, Any]] = json.loads(result.stdout)["jobs"]
    return jobs


@pytest.fixture
def calibration(tmp_path: Path) -> Iterator[Callable[[], tuple[subprocess.Popen[str], Path]]]:
    started: list[subprocess.Popen[str]] = []

    def start() -> tuple[subprocess.Popen[str], Path]:
        stop = tmp_path / f"stop-{len(started)}"
        process = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(CALIBRATION), str(stop)],
            env=base_env(tmp_path / "data"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process, stop

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def test_a_running_calibration_shows_progress_then_goes(
    tmp_path: Path, calibration: Callable[[], tuple[subprocess.Popen[str], Path]]
) -> None:
    process, stop = calibration()
    data_dir = tmp_path / "data"

    def progressed() -> dict[str, Any] | None:
        jobs = _running(data_dir) if (data_dir / "running").is_dir() else []
        return jobs[0] if jobs and jobs[0]["iterations"] >= 3 else None

    job = _until(progressed)
    assert (job["status"], job["kind"], job["job_name"], job["pid"]) == (
        "running",
        "calibration",
        "fit-sir",
        process.pid,
    )
    assert job["max_iterations"] == 500 and job["total"] == 500 and job["unit"] == "iterations"
    assert job["best_loss"] == pytest.approx(10.0 / job["iterations"])
    assert job["elapsed_s"] > 0 and job["eta_s"] is not None and job["eta_s"] > 0
    assert job["service"] == "fitter"
    table = modeltel("show", "--running", "--data-dir", str(data_dir))
    assert table.returncode == 0 and "fit-sir" in table.stdout and "running" in table.stdout
    assert "/500 iterations" in table.stdout
    stop.touch()
    assert process.wait(timeout=30) == 0, process.stderr.read() if process.stderr else ""
    assert _running(data_dir) == []
    empty = modeltel("show", "--running", "--data-dir", str(data_dir))
    assert empty.stdout == f"{data_dir}: no open jobs\n"
    # The finished job's summary is where `show` finds it, as before.
    (summary,) = json.loads(modeltel("show", "--data-dir", str(data_dir), "--format", "json").stdout)["jobs"]
    assert summary["job_name"] == "fit-sir"


def test_a_killed_job_shows_as_stale(
    tmp_path: Path, calibration: Callable[[], tuple[subprocess.Popen[str], Path]]
) -> None:
    process, _ = calibration()
    data_dir = tmp_path / "data"
    _until(lambda: _running(data_dir) or None if (data_dir / "running").is_dir() else None)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    (job,) = _running(data_dir)
    assert (job["status"], job["pid"], job["eta_s"]) == ("stale", process.pid, None)
    table = modeltel("show", "--running", "--data-dir", str(data_dir))
    assert "stale" in table.stdout and "0 running, 1 not running" in table.stdout


def test_running_needs_one_data_dir(tmp_path: Path) -> None:
    missing = modeltel("show", "--running", "--data-dir", str(tmp_path / "nope"))
    assert missing.returncode == 2 and missing.stderr.startswith("modeltel show: no such data dir")
    (tmp_path / "a.jsonl").write_text("")
    not_dir = modeltel("show", "--running", str(tmp_path / "a.jsonl"))
    assert not_dir.returncode == 2 and "--running reads one data dir" in not_dir.stderr
    both = modeltel("show", "--running", "--last", "--data-dir", str(tmp_path))
    assert both.returncode == 2 and "not allowed with" in both.stderr
