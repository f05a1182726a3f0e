"""Log records across processes: fork, spawn and pool children write their own log files, with the
ids of their spans; SIGTERM and SIGKILL lose no more than they do for traces.

The programs run as the trace versions do (tests/integrations/test_multiprocessing.py): a fresh
interpreter, the batch timer off (so what is on disk got there through modeltel's flushes), a
process group killed at the end.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
from log_files import records

from process_traces import Trace, run_script, writer_pid

WORK = """
import logging, os, signal, sys, time
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from opentelemetry import trace

logger = logging.getLogger("worker")

def work(i):
    with trace.get_tracer("worker").start_as_current_span("task") as span:
        span.set_attribute("i", i)
        logger.warning("task %d in %d", i, os.getpid())
    return os.getpid()
"""


def assert_task_records(data: Path, count: int) -> set[int]:
    """``count`` task records, each in its own process's log file and inside its task span."""
    tasks = {s.attributes["i"]: s for s in Trace(data).named("task")}
    found = [r for r in records(data) if r.body.startswith("task ")]
    assert sorted(int(r.body.split()[1]) for r in found) == list(range(count))
    for record in found:
        i, pid = map(int, record.body.split()[1::2])
        assert writer_pid(record.path) == pid == tasks[i].pid  # the worker wrote its own file
        span = tasks[i].span
        assert (record.trace_id, record.span_id) == (bytes(span.trace_id).hex(), bytes(span.span_id).hex())
    return {writer_pid(r.path) for r in found}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_pool_children_write_their_own_log_files(tmp_path: Path, method: str) -> None:
    result = run_script(
        tmp_path,
        WORK
        + f"""
import modeltel
if __name__ == "__main__":
    modeltel.configure()
    with trace.get_tracer("driver").start_as_current_span("job"):
        with mp.get_context("{method}").Pool(2) as pool:
            pids = set(pool.map(work, range(6), chunksize=1))
        p = mp.get_context("{method}").Process(target=work, args=(6,))
        p.start(); p.join()
    print(len(pids))
""",
    )
    assert result.returncode == 0, result.stderr
    pids = assert_task_records(tmp_path / "data", 7)
    assert len(pids) >= 2  # the pool's workers and the plain process, each its own file


@pytest.mark.timeout(120)
def test_modeltel_run_logs_an_unmodified_pool_program(tmp_path: Path) -> None:
    result = run_script(
        tmp_path,
        WORK
        + """
if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")
    with trace.get_tracer("driver").start_as_current_span("job"):
        with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
            list(pool.map(work, range(4)))
""",
        modeltel_run=True,
    )
    assert result.returncode == 0, result.stderr
    # Spawned workers skip the main guard's basicConfig: lastResort prints their warnings, as
    # without modeltel.
    assert sorted(re.sub(r"\d+$", "<pid>", line) for line in result.stderr.splitlines()) == [
        f"task {i} in <pid>" for i in range(4)
    ]
    assert_task_records(tmp_path / "data", 4)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_sigkill_after_finished_tasks_loses_only_the_unfinished_records(tmp_path: Path, method: str) -> None:
    result = run_script(
        tmp_path,
        WORK
        + f"""
from concurrent.futures.process import BrokenProcessPool
import modeltel

def doomed():
    with trace.get_tracer("worker").start_as_current_span("unfinished"):
        logger.warning("unfinished")
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
    assert assert_task_records(tmp_path / "data", 5) == {killed}
    assert "unfinished" not in [r.body for r in records(tmp_path / "data")]


@pytest.mark.timeout(60)
def test_sigterm_flushes_the_log_file_and_the_process_dies_of_it(tmp_path: Path) -> None:
    result = run_script(
        tmp_path,
        """
import logging, os, signal
from opentelemetry import trace
import modeltel
modeltel.configure()
logging.basicConfig(level=logging.INFO, format="%(message)s")
with trace.get_tracer("t").start_as_current_span("job"):
    for i in range(50):
        logging.getLogger("app").info("[in job] record %d", i)
    os.kill(os.getpid(), signal.SIGTERM)
""",
    )
    assert result.returncode == -signal.SIGTERM, result.stderr
    assert len(result.stderr.splitlines()) == 50
    found = records(tmp_path / "data")
    assert [r.body for r in found] == [f"[in job] record {i}" for i in range(50)]
    # All in the span that was open (it never ended, so it is in no trace file: as for traces).
    ((trace_id, span_id),) = {(r.trace_id, r.span_id) for r in found}
    assert len(trace_id) == 32 and len(span_id) == 16


@pytest.mark.timeout(60)
def test_sigkill_loses_at_most_what_was_not_flushed(tmp_path: Path) -> None:
    result = run_script(
        tmp_path,
        """
import logging, os, signal
import modeltel
handle = modeltel.configure()
for i in range(20):
    logging.getLogger("app").warning("flushed %d", i)
handle.force_flush()
logging.getLogger("app").warning("never flushed")
os.kill(os.getpid(), signal.SIGKILL)
""",
    )
    assert result.returncode == -signal.SIGKILL
    bodies = [r.body for r in records(tmp_path / "data")]  # every line decodes: none was torn
    assert bodies == [f"flushed {i}" for i in range(20)]
