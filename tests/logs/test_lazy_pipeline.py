"""The logs pipeline is built by the first record, not by ``configure()``.

Logs go to the local file by default, so every process would pay the logs SDK's import and the
log file's writer at start-up, also one that never logs. ``configure()`` installs the bridge and
sets modeltel's API ``LoggerProvider``; the first record emitted (through ``logging`` or the
OpenTelemetry logs API) builds the SDK provider and modeltel's stages, once, on its own thread.
A process that never logs never builds it: not at a flush, not at exit, not at SIGTERM.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from log_files import records

from otlp_files import base_env, jsonl_files, spans
from process_traces import run_script

LOGS_MODULES = ("opentelemetry.sdk._logs", "modeltel._internal.export.logs")


def _run(data: Path, code: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *flags, "-c", code], env=base_env(data), capture_output=True, text=True, timeout=60
    )


FIRST_RECORD = """
import logging, sys
import modeltel
modeltel.configure()
print("AT_CONFIGURE", *[m for m in sys.modules if m.startswith({modules!r})])
from opentelemetry import trace
with trace.get_tracer("t").start_as_current_span("work") as span:
    logging.getLogger("app").warning("x")
    print("TRACE", format(span.get_span_context().trace_id, "032x"))
print("AFTER", "opentelemetry.sdk._logs" in sys.modules)
"""


def test_configure_builds_no_logs_pipeline_and_the_first_record_does(tmp_path: Path) -> None:
    result = _run(tmp_path / "data", FIRST_RECORD.format(modules=LOGS_MODULES))
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) if " " in line else (line, "") for line in result.stdout.splitlines())
    assert lines["AT_CONFIGURE"] == ""  # neither the logs SDK nor modeltel's log stages
    assert lines["AFTER"] == "True"
    (record,) = records(tmp_path / "data")
    assert record.body == "x" and record.scope == "app"
    assert record.trace_id == lines["TRACE"]


THREADS = """
import logging, threading
import opentelemetry.sdk._logs as sdk_logs
import modeltel

built = []
original = sdk_logs.LoggerProvider.__init__
def counting(self, *args, **kwargs):
    built.append(threading.current_thread().name)
    original(self, *args, **kwargs)
sdk_logs.LoggerProvider.__init__ = counting

modeltel.configure()
start = threading.Barrier(8)
def log(n):
    start.wait()
    logging.getLogger("app").warning("record %d", n)
threads = [threading.Thread(target=log, args=(n,)) for n in range(1, 8)]
for thread in threads:
    thread.start()
log(0)
for thread in threads:
    thread.join()
print("BUILT", len(built))
"""


def test_records_logged_at_once_from_several_threads_build_it_once_and_all_arrive(tmp_path: Path) -> None:
    result = _run(tmp_path / "data", THREADS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["BUILT", "1"]
    found = records(tmp_path / "data")
    assert sorted(str(r.body) for r in found) == [f"record {n}" for n in range(8)]
    assert len({r.path for r in found}) == 1


OTEL_API = """
from opentelemetry import _logs
early = _logs.get_logger("early")  # before configure: the API's proxy logger
import modeltel
modeltel.configure()
_logs.get_logger_provider().get_logger("x").emit(body="through the API")
early.emit(body="through the proxy")
"""


def test_the_otel_logs_api_after_configure_reaches_the_log_file(tmp_path: Path) -> None:
    result = _run(tmp_path / "data", OTEL_API)
    assert result.returncode == 0, result.stderr
    found = sorted((r.scope, str(r.body)) for r in records(tmp_path / "data"))
    assert found == [("early", "through the proxy"), ("x", "through the API")]


NO_RECORD = """
import os, signal, sys
import modeltel
handle = modeltel.configure()
assert handle.force_flush()
print("READY", flush=True)
if sys.argv[1] == "sigterm":
    os.kill(os.getpid(), signal.SIGTERM)
"""


def test_exit_and_sigterm_without_a_record_build_nothing(tmp_path: Path) -> None:
    for how in ("exit", "sigterm"):
        data = tmp_path / how
        command = [sys.executable, "-X", "importtime", "-c", NO_RECORD, how]
        result = subprocess.run(command, env=base_env(data), capture_output=True, text=True, timeout=60)
        expected = -signal.SIGTERM if how == "sigterm" else 0
        assert result.returncode == expected, result.stderr
        assert result.stdout.split() == ["READY"]
        imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
        assert "opentelemetry.sdk.trace" in imported  # -X importtime did report the imports
        assert not imported & set(LOGS_MODULES), how
        assert jsonl_files(data, "logs") == [], how


BROKEN_BUILD = """
import logging
import modeltel
from modeltel._internal.export import logs

def broken(settings):
    raise OSError("no room for a log file")
logs.local_copy = broken  # the log file's stage cannot be made

modeltel.configure()
from opentelemetry import trace
with trace.get_tracer("t").start_as_current_span("work"):
    logging.getLogger("app").warning("first")
    logging.getLogger("app").warning("second")
"""


def test_a_logs_pipeline_that_cannot_be_built_costs_the_logs_only(tmp_path: Path) -> None:
    """The pipeline is built by the first record: if that fails it is reported once, and the
    process runs on, its spans recorded, what it prints unchanged."""
    result = _run(tmp_path / "data", BROKEN_BUILD)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("could not set up the logs pipeline") == 1, result.stderr
    assert "OSError: no room for a log file" in result.stderr
    assert result.stderr.startswith("first\n") and result.stderr.endswith("\nsecond\n")
    assert jsonl_files(tmp_path / "data", "logs") == []
    assert [s.name for s, _, _ in spans(tmp_path / "data")] == ["work"]


QUIET_FIRST = """
import logging, os, signal
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from opentelemetry import trace
import modeltel

def quiet():
    with trace.get_tracer("worker").start_as_current_span("quiet"):
        return os.getpid()

def work(i):
    with trace.get_tracer("worker").start_as_current_span("task"):
        logging.getLogger("worker").warning("task %d", i)

def doomed():
    os.kill(os.getpid(), signal.SIGKILL)

if __name__ == "__main__":
    modeltel.configure()
    with trace.get_tracer("driver").start_as_current_span("job"):
        with ProcessPoolExecutor(1, mp_context=mp.get_context("fork")) as pool:
            pool.submit(quiet).result(30)  # the worker flushes after it, with no log pipeline yet
            for i in range(3):
                pool.submit(work, i).result(30)
            try:
                pool.submit(doomed).result(30)
            except BrokenProcessPool:
                print("broken")
"""


@pytest.mark.timeout(120)
def test_a_pool_worker_flushes_the_log_file_built_after_its_first_task(tmp_path: Path) -> None:
    """The worker lists its JSONL processors at its first task's flush; records of later tasks,
    which build the log pipeline, are on disk after each task all the same (SIGKILL, no exit)."""
    result = run_script(tmp_path, QUIET_FIRST)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["broken"]
    assert sorted(str(r.body) for r in records(tmp_path / "data")) == ["task 0", "task 1", "task 2"]


AFTER_SHUTDOWN = """
import sys
from opentelemetry import _logs
import modeltel
handle = modeltel.configure()
assert _logs.get_logger_provider().force_flush()  # the app's flush builds nothing either
handle.shutdown()
_logs.get_logger_provider().get_logger("x").emit(body="too late")
print("LOADED", *[m for m in sys.modules if m.startswith({modules!r})])
"""


def test_a_record_after_shutdown_builds_no_pipeline(tmp_path: Path) -> None:
    result = _run(tmp_path / "data", AFTER_SHUTDOWN.format(modules=LOGS_MODULES))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["LOADED"]
    assert jsonl_files(tmp_path / "data", "logs") == []
