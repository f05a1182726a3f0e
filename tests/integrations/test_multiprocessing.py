"""multiprocessing (fork, spawn, forkserver) and ProcessPoolExecutor: one trace, parents across pids.

Every program runs in its own interpreter with the batch processor's timer off, so whatever a worker
wrote got there through modeltel's flushes, and real worker processes write their own files.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from process_traces import Trace, run_script

METHODS = ["fork", "spawn", "forkserver"]

TASKS = """
import os, signal, sys, time
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from opentelemetry import trace

def work(i):
    with trace.get_tracer("worker").start_as_current_span("task") as span:
        span.set_attribute("i", i)
    return os.getpid()

def pair(i, j):
    return work(i * 100 + j)
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("method", METHODS)
def test_pool_tasks_are_children_of_the_span_that_submitted_them(tmp_path: Path, method: str) -> None:
    result = run_script(
        tmp_path,
        TASKS
        + f"""
import modeltel
if __name__ == "__main__":
    modeltel.configure(service_name="sweep")
    tracer = trace.get_tracer("driver")
    pids = set()
    with mp.get_context("{method}").Pool(2) as pool:   # created outside any span
        with tracer.start_as_current_span("job"):
            with tracer.start_as_current_span("map"):
                pids |= set(pool.map(work, range(40), chunksize=3))
            with tracer.start_as_current_span("starmap"):
                pids |= set(pool.starmap(pair, [(1, j) for j in range(6)]))
            with tracer.start_as_current_span("apply"):
                pids.add(pool.apply_async(work, (1000,)).get(30))
            with tracer.start_as_current_span("imap"):
                pids |= set(pool.imap_unordered(work, range(7)))
        pool.close(); pool.join()
    print(" ".join(map(str, sorted(pids))))
""",
    )
    assert result.returncode == 0, result.stderr
    found = Trace(tmp_path / "data")
    found.assert_sound()
    for name, count in {"map": 40, "starmap": 6, "apply": 1, "imap": 7}.items():
        found.assert_children("task", found.one(name), count)
    assert found.counts() == {"task": 54, "job": 1, "map": 1, "starmap": 1, "apply": 1, "imap": 1}
    worker_pids = {int(p) for p in result.stdout.split()}
    assert worker_pids <= found.pids() and len(found.pids()) == len(worker_pids) + 1
    assert {s.pid for s in found.named("task")} == worker_pids
    assert {s.resource["service.name"] for s in found.spans} == {"sweep"}
    assert len({s.resource["modeltel.run.id"] for s in found.spans}) == 1


@pytest.mark.timeout(120)
@pytest.mark.parametrize("method", METHODS)
def test_process_pool_executor_takes_the_context_at_submit_time(tmp_path: Path, method: str) -> None:
    result = run_script(
        tmp_path,
        TASKS
        + f"""
import modeltel
if __name__ == "__main__":
    modeltel.configure()
    tracer = trace.get_tracer("driver")
    with ProcessPoolExecutor(2, mp_context=mp.get_context("{method}")) as pool:
        with tracer.start_as_current_span("first"):
            [f.result(30) for f in [pool.submit(work, i) for i in range(10)]]
        with tracer.start_as_current_span("second"):
            list(pool.map(work, range(25), chunksize=4))
        pool.submit(work, -1).result(30)   # no span current: a root of its own trace
""",
    )
    assert result.returncode == 0, result.stderr
    found = Trace(tmp_path / "data")
    found.assert_children("task", found.one("first"), 10)
    found.assert_children("task", found.one("second"), 25)
    (root,) = [s for s in found.named("task") if s.attributes["i"] == -1]
    assert root.span.parent_span_id == b""
    assert root.span.trace_id != found.one("first").span.trace_id
    assert len(found.named("task")) == 36
    ids = [s.span.span_id for s in found.spans]
    assert len(ids) == len(set(ids))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("method", METHODS)
def test_a_plain_process_runs_under_the_span_that_started_it(tmp_path: Path, method: str) -> None:
    result = run_script(
        tmp_path,
        TASKS
        + f"""
import modeltel

class Simulation(mp.get_context("{method}").Process):
    def run(self):
        work(7)

if __name__ == "__main__":
    modeltel.configure()
    ctx = mp.get_context("{method}")
    tracer = trace.get_tracer("driver")
    with tracer.start_as_current_span("job"):
        with tracer.start_as_current_span("target"):
            p = ctx.Process(target=work, args=(1,)); p.start()
        with tracer.start_as_current_span("subclass"):
            q = Simulation(); q.start()
        p.join(30); q.join(30)
        assert p.exitcode == 0 and q.exitcode == 0, (p.exitcode, q.exitcode)
""",
    )
    assert result.returncode == 0, result.stderr
    found = Trace(tmp_path / "data")
    found.assert_sound()
    (by_target,) = found.assert_children("task", found.one("target"), 1)
    (by_subclass,) = found.assert_children("task", found.one("subclass"), 1)
    assert len(found.pids()) == 3 and by_target.pid != by_subclass.pid


@pytest.mark.timeout(120)
@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_fresh_workers_take_the_settings_the_parent_was_configured_with(tmp_path: Path, method: str) -> None:
    # Nothing in the environment: service, run id and data dir come from configure() in code only.
    result = run_script(
        tmp_path,
        TASKS
        + f"""
import modeltel
if __name__ == "__main__":
    modeltel.configure(service_name="from-code", run_id="run-42", data_dir=sys.argv[1])
    with trace.get_tracer("driver").start_as_current_span("job"):
        with mp.get_context("{method}").Pool(2) as pool:
            pool.map(work, range(8))
""",
        str(tmp_path / "elsewhere"),
    )
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "data").exists()
    found = Trace(tmp_path / "elsewhere")
    found.assert_children("task", found.one("job"), 8)
    assert {(s.resource["service.name"], s.resource["modeltel.run.id"]) for s in found.spans} == {
        ("from-code", "run-42")
    }
    assert all(path.name.startswith("from-code-") for path in found.files)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_sigkill_after_finished_tasks_loses_only_the_unfinished_spans(tmp_path: Path, method: str) -> None:
    result = run_script(
        tmp_path,
        TASKS
        + f"""
from concurrent.futures.process import BrokenProcessPool
import modeltel

def doomed():
    with trace.get_tracer("worker").start_as_current_span("unfinished"):
        os.kill(os.getpid(), signal.SIGKILL)

if __name__ == "__main__":
    modeltel.configure()
    with trace.get_tracer("driver").start_as_current_span("job"):
        with ProcessPoolExecutor(1, mp_context=mp.get_context("{method}")) as pool:
            pids = {{pool.submit(work, i).result(30) for i in range(5)}}
            try:
                pool.submit(doomed).result(30)
            except BrokenProcessPool:
                print("broken", *pids)
""",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("broken")
    (killed,) = {int(p) for p in result.stdout.split()[1:]}
    found = Trace(tmp_path / "data")
    found.assert_sound()
    tasks = found.assert_children("task", found.one("job"), 5)
    assert {s.pid for s in tasks} == {killed}
    assert sorted(s.attributes["i"] for s in tasks) == [0, 1, 2, 3, 4]
    assert found.named("unfinished") == []


@pytest.mark.timeout(120)
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_terminated_pool_keeps_every_finished_span(tmp_path: Path, method: str) -> None:
    # Pool.__exit__ calls terminate(): SIGTERM to every worker while they wait for work.
    result = run_script(
        tmp_path,
        TASKS
        + f"""
import modeltel
if __name__ == "__main__":
    modeltel.configure()
    with trace.get_tracer("driver").start_as_current_span("job"):
        with mp.get_context("{method}").Pool(2) as pool:
            pool.map(work, range(100), chunksize=1)
""",
    )
    assert result.returncode == 0, result.stderr
    found = Trace(tmp_path / "data")
    found.assert_sound()
    found.assert_children("task", found.one("job"), 100)


@pytest.mark.timeout(120)
def test_modeltel_run_traces_an_unmodified_pool_program(tmp_path: Path) -> None:
    # The program knows only the OpenTelemetry API: no modeltel import, no configure().
    result = run_script(
        tmp_path,
        TASKS
        + """
if __name__ == "__main__":
    with trace.get_tracer("driver").start_as_current_span("job"):
        with mp.get_context("spawn").Pool(2) as pool:
            pool.map(work, range(12))
        with ProcessPoolExecutor(2, mp_context=mp.get_context("forkserver")) as pool:
            list(pool.map(work, range(5)))
""",
        modeltel_run=True,
        OTEL_SERVICE_NAME="unmodified",
    )
    assert result.returncode == 0, result.stderr
    assert "already instrumented" not in result.stderr
    found = Trace(tmp_path / "data")
    found.assert_sound()
    found.assert_children("task", found.one("job"), 17)
    assert {s.resource["service.name"] for s in found.spans} == {"unmodified"}


@pytest.mark.timeout(60)
def test_disabled_telemetry_patches_nothing(tmp_path: Path) -> None:
    result = run_script(
        tmp_path,
        TASKS
        + """
import multiprocessing.pool, multiprocessing.process, subprocess, threading
import modeltel
before = (multiprocessing.pool.Pool.apply_async, multiprocessing.process.BaseProcess.start,
          ProcessPoolExecutor.submit, subprocess.Popen.__init__, threading.Thread.start)
if __name__ == "__main__":
    assert modeltel.configure().enabled is False
    after = (multiprocessing.pool.Pool.apply_async, multiprocessing.process.BaseProcess.start,
             ProcessPoolExecutor.submit, subprocess.Popen.__init__, threading.Thread.start)
    assert before == after
    with mp.get_context("spawn").Pool(2) as pool:
        assert len(pool.map(work, range(4))) == 4
""",
        MODELTEL_ENABLED="false",
    )
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.timeout(60)
def test_uninstall_restores_every_patched_method(tmp_path: Path) -> None:
    result = run_script(
        tmp_path,
        """
import concurrent.futures, multiprocessing.pool, multiprocessing.process, subprocess, threading
import modeltel
from modeltel._internal import propagation
def methods():
    return (multiprocessing.pool.Pool.apply_async, multiprocessing.pool.Pool._map_async,
            multiprocessing.pool.Pool.imap, multiprocessing.pool.Pool.imap_unordered,
            multiprocessing.process.BaseProcess.start, multiprocessing.process.BaseProcess._bootstrap,
            concurrent.futures.ProcessPoolExecutor.submit, subprocess.Popen.__init__,
            threading.Thread.start, concurrent.futures.ThreadPoolExecutor.submit)
before = methods()
modeltel.configure()
patched = methods()
assert all(a is not b for a, b in zip(before, patched)), "something was not patched"
propagation.uninstall()
assert methods() == before
propagation.uninstall()
""",
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.timeout(60)
def test_sigterm_arriving_during_a_per_task_flush_is_handled_after_it(tmp_path: Path) -> None:
    # Pool.terminate() SIGTERMs workers whenever it likes; inside the flush the worker holds the
    # export locks that the handler's own flush needs. It must finish the write, then die of SIGTERM.
    result = run_script(
        tmp_path,
        TASKS
        + """
import modeltel
from modeltel._internal import providers
from modeltel.integrations.multiprocessing import flush_finished_spans

def child():
    handle = providers.current()
    exporter = handle.jsonl_span_exporter
    original = exporter.export
    def export(spans):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.3)   # Python runs signal handlers here, with the flush's locks held
        return original(spans)
    exporter.export = export
    work(1)
    flush_finished_spans(handle)
    time.sleep(30)

if __name__ == "__main__":
    modeltel.configure()
    with trace.get_tracer("driver").start_as_current_span("job"):
        process = mp.get_context("fork").Process(target=child)
        process.start()
        process.join(20)
        print(process.exitcode)
""",
        timeout=45,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(-signal.SIGTERM)]
    found = Trace(tmp_path / "data")
    found.assert_children("task", found.one("job"), 1)
