"""A job's progress record on a disk that stops answering: the job's calls do not wait for it.

The record (``<data_dir>/running/<pid>-<span_id>.json``) is written when a job opens, refreshed
while it runs and removed when it ends; a write that never returns must cost the application
nothing, as for the span file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from otlp_files import base_env

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(120)]

APP = """
import json, sys, time
sys.path.insert(0, {here!r})
from storage_app import install_fault
install_fault("hang")
from modeltel import simulation
import modeltel
modeltel.configure()
begun = time.monotonic()
with simulation.job("sweep", n_tasks=3):
    for seed in range(3):
        with simulation.run(model="sir", seed=seed):
            time.sleep(0.6)  # past the refresh interval: each run asks for a new record
print(json.dumps({{"job_s": time.monotonic() - begun}}), flush=True)
"""


def test_a_job_on_a_hung_disk_runs_at_its_own_speed_and_exits(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(APP.format(here=str(Path(__file__).parent)))
    begun = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, str(app)],
            env=base_env(tmp_path / "data", OTEL_SERVICE_NAME="disk"),
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError("the job hung on its progress record") from None
    took = time.monotonic() - begun
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    job_s = json.loads(done.stdout.splitlines()[-1])["job_s"]
    assert job_s < 1.8 + 1.5, job_s  # three 0.6 s runs, and no write waited for
    assert took < 30, took  # the exit's bounds hold with a record that never got written
