"""Spawn and forkserver workers configure modeltel when they first have something to record.

A configured parent's workers stay as cheap as without modeltel (no SDK import) while their tasks
come from outside any span, and configure, with the parent's settings, on the first task handed over
inside a span, the first use of the OpenTelemetry API, of modeltel's domain API, or the first log
record. Every program runs in a fresh interpreter (``process_traces.run_script``).

The API's lazy providers need the entry points ``modeltel`` of the ``opentelemetry_*_provider``
groups; :func:`entry_points_dir` installs them as their own distribution on ``PYTHONPATH``, so these
tests hold whether or not modeltel's own metadata declares them yet.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from otlp_files import jsonl_files
from process_traces import Trace, run_script, writer_pid

WORK = """
import json, logging, os, subprocess, sys
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from opentelemetry import trace
import modeltel

def sdk():
    return "opentelemetry.sdk.trace" in sys.modules

def probe(i):
    return sdk(), os.getpid()

def api_span(i):
    before = sdk()
    with trace.get_tracer("worker").start_as_current_span("own") as span:
        span.set_attribute("i", i)
    return before, os.getpid(), "OTEL_PYTHON_TRACER_PROVIDER" in os.environ

def log_only(i):
    before = sdk()
    logging.getLogger("worker").warning("logged %d in %d", i, os.getpid())
    return before, os.getpid(), logging.Logger.callHandlers.__module__

def domain(i):
    before = sdk()
    from modeltel import simulation
    with simulation.run(model="sir", seed=i):
        pass
    return before, os.getpid()

def grandchild_env(i):
    code = "import os; print(os.environ.get('OTEL_PYTHON_TRACER_PROVIDER'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip()
    return sdk(), os.getpid(), out

def run_tasks(kind, method, fn):
    ctx = mp.get_context(method)
    if kind == "executor":
        with ProcessPoolExecutor(2, mp_context=ctx) as pool:
            return list(pool.map(fn, range(4)))
    with ctx.Pool(2) as pool:
        return pool.map(fn, range(4))
"""

KINDS = [("pool", "spawn"), ("executor", "spawn"), ("pool", "forkserver")]


@pytest.fixture
def entry_points_dir(tmp_path: Path) -> Path:
    """A distribution on its own, declaring the three lazy-provider entry points of deferred.py."""
    info = tmp_path / "entry_points" / "modeltel_lazy_providers-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: modeltel-lazy-providers\nVersion: 0\n")
    (info / "entry_points.txt").write_text(
        "".join(
            f"[opentelemetry_{signal}_provider]\nmodeltel = modeltel._internal.deferred:{signal}_provider\n\n"
            for signal in ("tracer", "meter", "logger")
        )
    )
    return info.parent


def run_tasks(tmp_path: Path, kind: str, method: str, fn: str, **env: str) -> list[tuple[object, ...]]:
    """Run ``fn`` on four items, outside any span, in a configured parent's pool; its results."""
    result = run_script(
        tmp_path,
        WORK
        + f"""
if __name__ == "__main__":
    modeltel.configure(service_name="lazy", run_id="run-7")
    print(json.dumps(run_tasks({kind!r}, {method!r}, {fn})))
""",
        **env,
    )
    assert result.returncode == 0, result.stderr
    return [tuple(item) for item in json.loads(result.stdout.splitlines()[-1])]


def first_tasks_found_no_sdk(results: list[tuple[object, ...]]) -> bool:
    """Each worker's first task (results are in item order) ran before the SDK was imported."""
    first: dict[object, object] = {}
    for loaded, pid, *_ in results:
        first.setdefault(pid, loaded)
    return set(first.values()) == {False}


def writers(data: Path) -> set[int]:
    return {
        writer_pid(path) for signal in ("traces", "metrics", "logs") for path in jsonl_files(data, signal)
    }


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("kind", "method"), KINDS)
def test_tasks_from_outside_any_span_leave_the_workers_unconfigured(
    tmp_path: Path, kind: str, method: str
) -> None:
    results = run_tasks(tmp_path, kind, method, "probe")
    assert [loaded for loaded, _ in results] == [False] * 4
    assert writers(tmp_path / "data").isdisjoint(pid for _, pid in results)  # no worker wrote a file


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("kind", "method"), KINDS)
def test_tasks_inside_a_span_configure_the_workers_with_the_parents_settings(
    tmp_path: Path, kind: str, method: str
) -> None:
    source = (
        WORK
        + f"""
def task(i):
    with trace.get_tracer("worker").start_as_current_span("task"):
        return os.getpid()

if __name__ == "__main__":
    modeltel.configure(service_name="lazy", run_id="run-7")
    with trace.get_tracer("driver").start_as_current_span("job"):
        print(json.dumps(run_tasks({kind!r}, {method!r}, task)))
"""
    )
    result = run_script(tmp_path, source)
    assert result.returncode == 0, result.stderr
    found = Trace(tmp_path / "data")
    tasks = found.assert_children("task", found.one("job"), 4)
    assert {s.pid for s in tasks} == set(json.loads(result.stdout))
    assert {(s.resource["service.name"], s.resource["modeltel.run.id"]) for s in found.spans} == {
        ("lazy", "run-7")
    }


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("kind", "method"), KINDS)
def test_the_opentelemetry_api_configures_a_worker_on_first_use(
    tmp_path: Path, entry_points_dir: Path, kind: str, method: str
) -> None:
    results = run_tasks(tmp_path, kind, method, "api_span", PYTHONPATH=str(entry_points_dir))
    assert first_tasks_found_no_sdk(results)
    assert [variable_left for _, _, variable_left in results] == [False] * 4
    found = Trace(tmp_path / "data")
    own = found.named("own")
    assert sorted(s.attributes["i"] for s in own) == [0, 1, 2, 3]
    assert {s.pid for s in own} == {pid for _, pid, _ in results}
    assert all(not s.span.parent_span_id for s in own)  # no parent context: roots of their own traces
    assert {s.resource["modeltel.run.id"] for s in own} == {"run-7"}


@pytest.mark.timeout(120)
def test_the_providers_variables_never_reach_a_workers_children(
    tmp_path: Path, entry_points_dir: Path
) -> None:
    results = run_tasks(tmp_path, "pool", "spawn", "grandchild_env", PYTHONPATH=str(entry_points_dir))
    assert [(loaded, seen) for loaded, _, seen in results] == [(False, "None")] * 4


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("kind", "method"), KINDS)
def test_a_log_record_configures_a_worker_and_reaches_the_runs_log_files(
    tmp_path: Path, kind: str, method: str
) -> None:
    results = run_tasks(tmp_path, kind, method, "log_only")
    assert first_tasks_found_no_sdk(results)
    assert [hook for _, _, hook in results] == ["modeltel._internal.logs"] * 4  # the real bridge
    bodies = {}
    for path in jsonl_files(tmp_path / "data", "logs"):
        for line in path.read_text().splitlines():
            for resource_logs in json.loads(line)["resourceLogs"]:
                for scope_logs in resource_logs["scopeLogs"]:
                    for record in scope_logs["logRecords"]:
                        bodies[record["body"]["stringValue"]] = writer_pid(path)
    expected = {f"logged {i} in {pid}": pid for i, (_, pid, _) in enumerate(results)}
    assert {body: pid for body, pid in bodies.items() if body.startswith("logged")} == expected


@pytest.mark.timeout(120)
def test_the_domain_api_configures_a_worker_with_the_parents_settings(tmp_path: Path) -> None:
    results = run_tasks(tmp_path, "pool", "spawn", "domain")
    assert first_tasks_found_no_sdk(results)
    runs = Trace(tmp_path / "data").named("simulation.run")
    assert {s.pid for s in runs} == {pid for _, pid in results}
    assert {(s.resource["service.name"], s.resource["modeltel.run.id"]) for s in runs} == {("lazy", "run-7")}
