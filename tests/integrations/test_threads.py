"""Context follows work into threads, thread pools and Optuna's n_jobs > 1 trials."""

from __future__ import annotations

from pathlib import Path

import pytest

from process_traces import Trace, run_script

THREADS = """
import threading
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.pool import ThreadPool
from opentelemetry import trace

tracer = trace.get_tracer("app")

def work(i):
    with tracer.start_as_current_span("task") as span:
        span.set_attribute("i", i)

def main():
    with ThreadPoolExecutor(4) as pool, ThreadPool(2) as threadpool:   # created outside any span
        with tracer.start_as_current_span("job"):
            with tracer.start_as_current_span("executor"):
                list(pool.map(work, range(20)))
                pool.submit(work, 99).result()
            with tracer.start_as_current_span("thread"):
                threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
                [t.start() for t in threads]; [t.join() for t in threads]
            with tracer.start_as_current_span("timer"):
                timer = threading.Timer(0.01, work, args=(0,)); timer.start(); timer.join()
            with tracer.start_as_current_span("threadpool"):
                threadpool.map(work, range(6))
"""


def _check_threads(found: Trace) -> None:
    found.assert_sound()
    for name, count in {"executor": 21, "thread": 3, "timer": 1, "threadpool": 6}.items():
        found.assert_children("task", found.one(name), count)
    assert len(found.named("task")) == 31
    assert len(found.pids()) == 1


@pytest.mark.timeout(60)
def test_configure_carries_context_into_threads_and_thread_pools(tmp_path: Path) -> None:
    result = run_script(tmp_path, THREADS + "import modeltel\nmodeltel.configure()\nmain()\n")
    assert result.returncode == 0, result.stderr
    _check_threads(Trace(tmp_path / "data"))


@pytest.mark.timeout(60)
def test_modeltel_run_carries_context_into_threads_of_an_unmodified_program(tmp_path: Path) -> None:
    result = run_script(tmp_path, THREADS + "main()\n", modeltel_run=True)
    assert result.returncode == 0, result.stderr
    assert "already instrumented" not in result.stderr
    _check_threads(Trace(tmp_path / "data"))


@pytest.mark.timeout(60)
def test_threading_can_be_left_off_with_the_sdk_variable(tmp_path: Path) -> None:
    code = THREADS + "import modeltel\nmodeltel.configure()\nmain()\n"
    result = run_script(tmp_path, code, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="flask, threading")
    assert result.returncode == 0, result.stderr
    found = Trace(tmp_path / "data")
    thread_tasks = [s for s in found.named("task") if s.span.parent_span_id == b""]
    assert len(thread_tasks) == 3 + 1 + 21  # Thread, Timer and the executor start new traces
    found.assert_children("task", found.one("threadpool"), 6)  # multiprocessing's ThreadPool is ours


@pytest.mark.timeout(120)
def test_optuna_trials_with_n_jobs_stay_in_the_study_trace(tmp_path: Path) -> None:
    result = run_script(
        tmp_path,
        """
import optuna
import modeltel
from opentelemetry import trace

modeltel.configure()
optuna.logging.set_verbosity(optuna.logging.WARNING)
tracer = trace.get_tracer("app")

def objective(trial):
    x = trial.suggest_float("x", -10, 10)
    with tracer.start_as_current_span("trial") as span:
        span.set_attribute("trial", trial.number)
        with tracer.start_as_current_span("simulate"):
            return (x - 2) ** 2

with tracer.start_as_current_span("study"):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(objective, n_trials=24, n_jobs=3)
""",
    )
    assert result.returncode == 0, result.stderr
    found = Trace(tmp_path / "data")
    found.assert_sound()
    trials = found.assert_children("trial", found.one("study"), 24)
    assert sorted(s.attributes["trial"] for s in trials) == list(range(24))
    trial_ids = {s.span.span_id for s in trials}
    assert {s.span.parent_span_id for s in found.named("simulate")} == trial_ids
