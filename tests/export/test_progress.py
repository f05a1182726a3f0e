"""JobProgress: a record per open job, refreshed at most once per interval, removed at job end."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from modeltel._internal import semconv as sc
from modeltel._internal.export.progress import JobProgress
from modeltel.store.layout import RUNNING_DIR


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


_WRITING: dict[Path, JobProgress] = {}
"""Each data dir's processor: its records are written on a thread, so a look waits for them first."""


def _tracer(data_dir: Path, **kwargs: Any) -> tuple[trace.Tracer, JobProgress]:
    provider = TracerProvider(resource=Resource.create({"service.name": "fit-svc"}))
    progress = _WRITING[data_dir] = JobProgress(data_dir, **kwargs)
    provider.add_span_processor(progress)
    return provider.get_tracer("test"), progress


def _records(data_dir: Path) -> list[dict[str, Any]]:
    assert _WRITING[data_dir].force_flush(5_000)
    return [json.loads(p.read_text()) for p in sorted((data_dir / RUNNING_DIR).glob("*.json"))]


def test_calibration_record_from_start_to_end(tmp_path: Path) -> None:
    clock = Clock()
    tracer, _ = _tracer(tmp_path, clock=clock)
    job = tracer.start_span(
        sc.SPAN_CALIBRATION_JOB,
        attributes={sc.CALIBRATION_JOB_NAME: "fit-sir", sc.CALIBRATION_MAX_ITERATIONS: 10},
    )
    (record,) = _records(tmp_path)
    assert record["kind"] == "calibration" and record["job_name"] == "fit-sir"
    assert (record["iterations"], record["max_iterations"], record["best_loss"]) == (0, 10, None)
    assert record["service"] == "fit-svc" and record["span_id"] == format(
        job.get_span_context().span_id, "016x"
    )
    assert record["trace_id"] == format(job.get_span_context().trace_id, "032x")
    assert record["runs"] is None and record["n_tasks"] is None
    context = trace.set_span_in_context(job)
    for best in (5.0, 3.0, 4.0):  # an iteration reports the job's best so far; 4.0 cannot be it
        tracer.start_span(
            sc.SPAN_CALIBRATION_ITERATION, context, attributes={sc.CALIBRATION_BEST_LOSS: best}
        ).end()
    assert _records(tmp_path)[0]["iterations"] == 0  # within the interval: no write
    clock.now += 1.0
    tracer.start_span(
        sc.SPAN_CALIBRATION_ITERATION, context, attributes={sc.CALIBRATION_BEST_LOSS: 2.5}
    ).end()
    (record,) = _records(tmp_path)
    assert (record["iterations"], record["best_loss"]) == (4, 2.5)
    assert record["updated"] >= record["started"]
    job.end()
    assert _records(tmp_path) == []
    assert oct((tmp_path / RUNNING_DIR).stat().st_mode & 0o777) == "0o700"


def test_simulation_runs_count_even_without_the_jobs_context(tmp_path: Path) -> None:
    tracer, _ = _tracer(tmp_path, interval=0.0)
    job = tracer.start_span(sc.SPAN_SIMULATION_JOB, attributes={sc.SIMULATION_N_TASKS: 8})
    context = trace.set_span_in_context(job)
    tracer.start_span(sc.SPAN_SIMULATION_RUN, context).end()
    # A worker thread that did not inherit the context: still this job's, the only one open.
    worker = threading.Thread(target=lambda: tracer.start_span(sc.SPAN_SIMULATION_RUN).end())
    worker.start()
    worker.join()
    (record,) = _records(tmp_path)
    assert (record["kind"], record["runs"], record["n_tasks"]) == ("simulation", 2, 8)
    job.end()
    assert _records(tmp_path) == []


def test_nested_jobs_each_have_a_record_and_steps_go_to_their_parent(tmp_path: Path) -> None:
    tracer, _ = _tracer(tmp_path, interval=0.0)
    outer = tracer.start_span(sc.SPAN_CALIBRATION_JOB)
    iteration = tracer.start_span(sc.SPAN_CALIBRATION_ITERATION, trace.set_span_in_context(outer))
    inner = tracer.start_span(sc.SPAN_SIMULATION_JOB, trace.set_span_in_context(iteration))
    for _ in range(3):
        tracer.start_span(sc.SPAN_SIMULATION_RUN, trace.set_span_in_context(inner)).end()
    by_kind = {r["kind"]: r for r in _records(tmp_path)}
    assert by_kind["simulation"]["runs"] == 3 and by_kind["calibration"]["iterations"] == 0
    inner.end()
    iteration.end()
    assert [r["kind"] for r in _records(tmp_path)] == ["calibration"]
    assert _records(tmp_path)[0]["iterations"] == 1
    outer.end()
    assert _records(tmp_path) == []


def test_many_threads_lose_no_count(tmp_path: Path) -> None:
    tracer, progress = _tracer(tmp_path, interval=0.0)
    job = tracer.start_span(sc.SPAN_SIMULATION_JOB, attributes={sc.SIMULATION_N_TASKS: 8000})
    context = trace.set_span_in_context(job)

    def work() -> None:
        for _ in range(1000):
            tracer.start_span(sc.SPAN_SIMULATION_RUN, context).end()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (open_job,) = progress._jobs.values()
    assert open_job.done == 8000
    job.end()


def test_a_broken_data_dir_never_reaches_the_app(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    tracer, _ = _tracer(blocker / "data", interval=0.0)
    for _ in range(3):
        job = tracer.start_span(sc.SPAN_CALIBRATION_JOB)
        tracer.start_span(sc.SPAN_CALIBRATION_ITERATION, trace.set_span_in_context(job)).end()
        job.end()
    _WRITING[blocker / "data"].force_flush(5_000)
    warnings = [r for r in caplog.records if "running-job record" in r.getMessage()]
    assert len(warnings) == 1


def test_spans_outside_jobs_cost_a_lookup(tmp_path: Path) -> None:
    """No open job: a span end returns at the first test. Measured, loosely (shared machines)."""
    _, progress = _tracer(tmp_path)
    provider = TracerProvider()
    tracer = provider.get_tracer("bare")
    span = tracer.start_span("simulation.run")
    span.end()
    calls = 200_000
    started = time.perf_counter()
    for _ in range(calls):
        progress.on_end(span)  # type: ignore[arg-type]
    per_call_ns = (time.perf_counter() - started) / calls * 1e9
    assert per_call_ns < 2_000
