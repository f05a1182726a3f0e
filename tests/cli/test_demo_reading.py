"""The reading commands on what ``modeltel demo`` wrote: the numbers they print must be the run's."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from otlp_files import BIN, base_env
from reading_data import modeltel


def demo(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``modeltel demo --data-dir data_dir`` in a clean environment."""
    result = subprocess.run(
        [str(BIN / "modeltel"), "demo", "--data-dir", str(data_dir), *args],
        env=base_env(data_dir),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def one_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("demo") / "data"
    demo(data_dir)
    return data_dir


def test_show_names_the_iteration_that_found_the_best_loss(one_run: Path) -> None:
    shown = modeltel("show", "--data-dir", str(one_run))
    assert shown.returncode == 0, shown.stderr
    best = re.search(r"best loss (\S+) at iteration (\d+)", shown.stdout)
    last_point = re.search(r"trajectory .*→ (\d+):(\S+)", shown.stdout)
    assert best and last_point, shown.stdout
    assert best[2] == last_point[1]  # the trajectory's last improvement is the best iteration
    (job,) = [
        j
        for j in json.loads(modeltel("show", "--data-dir", str(one_run), "--format", "json").stdout)["jobs"]
        if j["kind"] == "calibration"
    ]
    assert int(best[2]) == job["calibration"]["trajectory"][-1]["iteration"]
    assert int(best[2]) == job["calibration"]["iterations_to_best"] - 1
    assert f"after {job['calibration']['iterations_to_best']} of 30 iterations" in shown.stdout


def test_stats_by_model_counts_calls_not_the_job_span(one_run: Path) -> None:
    result = modeltel("stats", "--data-dir", str(one_run), "--by", "model", "--format", "json")
    assert result.returncode == 0, result.stderr
    groups = {g["group"]: g for g in json.loads(result.stdout)["groups"]}
    assert groups["centroid-v1"]["calls"] == 8  # eight inference.predict; inference.job is no call
    assert groups["centroid-v1"]["latency_s"]["count"] == 8
    by_name = json.loads(
        modeltel("stats", "--data-dir", str(one_run), "--by", "name", "--format", "json").stdout
    )["groups"]
    names = {g["group"]: g["calls"] for g in by_name}
    assert names["inference.job"] == 1 and names["inference.predict"] == 8  # --by name keeps every span


def test_stats_with_nothing_to_show_fails_with_its_prefix(one_run: Path) -> None:
    result = modeltel("stats", "--data-dir", str(one_run), "--by", "no.such.key")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == f"modeltel stats: no spans with no.such.key in {one_run}\n"


def test_show_last_agrees_in_number(one_run: Path) -> None:
    result = modeltel("show", "--data-dir", str(one_run), "--last")
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert re.search(r": [\d,]+ spans in 1 file \(", first), first
    single = modeltel("show", "--data-dir", str(one_run), "--last", "--format", "json")
    trace = json.loads(single.stdout)["trace_id"]
    assert trace in first
