"""One summaries.jsonl line per finished *.job span, written by the real JSONL pipeline in a subprocess."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from otlp_files import base_env, spans, summaries

PROGRAM = """
import numpy as np
from modeltel import calibration, inference, simulation

with calibration.job("fit-sir", algorithm="random", max_iterations=4) as job:
    for i, losses in enumerate([[4.0, 5.0], [3.0, 9.0], [3.5, 3.2], [1.0, 2.0]]):
        with job.iteration() as it:
            with it.ask() as a:
                a.record(n_params=2)
            with it.evaluate(n=2):
                with simulation.job("inner-sweep", n_tasks=2):  # a job inside a job
                    for seed in range(2):
                        with simulation.run(model="sir", seed=seed):
                            pass
            with it.tell() as t:
                t.losses(losses)

probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.5, 0.5], [0.2, 0.8]])
with inference.job("nightly", model="clf"):
    with inference.predict(model="clf") as p:
        p.outputs(probs, labels=["a", "b", "unknown", "b"], reject_label="unknown",
                  features=np.array([[1.0, np.nan], [1.0, 2.0], [1.0, 2.0], [1.0, 2.0]]))

try:
    with simulation.job("broken"):
        with simulation.run(model="sir"):
            raise RuntimeError("diverged")
except RuntimeError:
    pass

with simulation.run(model="outside-any-job"):
    pass
"""


def _run(tmp_path: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PROGRAM)],
        env=base_env(tmp_path, OTEL_SERVICE_NAME="jobs-test", MODELTEL_RUN_ID="run-42"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return summaries(tmp_path)


def test_one_line_per_job_with_ids_counts_and_status(tmp_path: Path) -> None:
    lines = _run(tmp_path)
    jobs = [line for line in lines if line["kind"] != "process"]
    assert [(j["kind"], j["job_name"]) for j in jobs] == [
        *[("simulation", "inner-sweep")] * 4,
        ("calibration", "fit-sir"),
        ("inference", "nightly"),
        ("simulation", "broken"),
    ]
    assert [line["kind"] for line in lines].count("process") == 1
    exported = {s.span_id.hex(): s for s, _, _ in spans(tmp_path)}
    for job in jobs:
        span = exported[job["span_id"]]
        assert span.name == f"{job['kind']}.job"
        assert span.trace_id.hex() == job["trace_id"]
        assert job["service"] == "jobs-test" and job["run_id"] == "run-42"
        assert job["schema_version"] == 1
    inner = jobs[0]
    assert inner["span_count"] == 3 and inner["by_name"]["simulation.run"]["count"] == 2
    assert jobs[-1]["status"] == "error"
    assert jobs[-1]["by_name"]["simulation.run"]["errors"] == 1
    assert all(j["status"] == "ok" for j in jobs[:-1])


def test_calibration_summary_has_trajectory_and_time_per_phase(tmp_path: Path) -> None:
    (fit,) = [line for line in _run(tmp_path) if line["kind"] == "calibration"]
    # The outer job counts the inner sweeps' spans too: 1 job + 4 x (iteration, ask, evaluate,
    # tell, simulation.job, 2 runs).
    assert fit["span_count"] == 1 + 4 * 7
    assert fit["by_name"]["simulation.run"]["count"] == 8
    cal = fit["calibration"]
    assert cal["iterations"] == 4 and cal["best_loss"] == 1.0 and cal["iterations_to_best"] == 4
    assert cal["trajectory"] == [
        {"iteration": 0, "best_loss": 4.0},
        {"iteration": 1, "best_loss": 3.0},
        {"iteration": 3, "best_loss": 1.0},
    ]
    assert set(cal["phase_seconds"]) == {"ask", "evaluate", "tell"}
    assert cal["phase_seconds"]["evaluate"] == fit["by_name"]["calibration.evaluate"]["total_s"]
    assert fit["quality"] is None


def test_inference_summary_has_the_quality_snapshot(tmp_path: Path) -> None:
    (nightly,) = [line for line in _run(tmp_path) if line["kind"] == "inference"]
    q = nightly["quality"]
    assert q["predictions"] == 4
    assert abs(q["confidence_mean"] - (0.9 + 0.6 + 0.5 + 0.8) / 4) < 1e-9
    assert q["reject_rate"] == 0.25
    assert q["class_distribution"] == {"b": 0.5, "a": 0.25, "unknown": 0.25}
    assert q["feature_missingness"] == {"1": 0.25}
    assert nightly["calibration"] is None


SECRET_NUMBERS = """
from modeltel import simulation

with simulation.job("sweep", n_tasks=1):
    with simulation.run(model="m", api_key=987654321) as run:
        run.record(password=4242, steps=12)
"""


def test_secret_numbers_reach_no_summary(tmp_path: Path) -> None:
    """Summaries are folded from the redacted spans: a secret-keyed number is neither summed nor shown."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SECRET_NUMBERS)],
        env=base_env(tmp_path, OTEL_SERVICE_NAME="secret-numbers"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = summaries(tmp_path)
    assert sorted(s["kind"] for s in lines) == ["process", "simulation"]
    for line in lines:
        assert "modeltel.simulation.api_key" not in line["numeric"]
        assert "modeltel.simulation.password" not in line["numeric"]
        assert line["numeric"]["modeltel.simulation.steps"]["sum"] == 12.0  # other numbers still count
    text = (tmp_path / "summaries.jsonl").read_text()
    for leaked in ("987654321", "4242"):
        assert leaked not in text
