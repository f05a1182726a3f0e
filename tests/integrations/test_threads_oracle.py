"""modeltel's thread propagation against ``opentelemetry-instrumentation-threading`` as the oracle.

Every scenario runs in a fresh interpreter (the library's uninstrument leaves a ``Timer.start``
behind, so one process per side keeps the sides apart), records its spans with the SDK's in-memory
exporter and prints, for each span, the name of its parent. The two sides must print the same,
except where modeltel goes further on purpose: a ``Thread`` subclass that overrides ``run()``,
which the library leaves without context.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from modeltel.integrations import threads
from process_traces import run_script

SCENARIOS = """
import json, sys, threading
from concurrent.futures import ThreadPoolExecutor
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def turn_on(step):
    if step == "ours":
        from modeltel.integrations import threads
        return {"ours": threads.install()}
    if step == "ours-off":
        from modeltel.integrations import threads
        threads.uninstall()
        return {}
    from opentelemetry.instrumentation.threading import ThreadingInstrumentor
    if step == "library":
        ThreadingInstrumentor().instrument()
    elif step == "library-off":
        ThreadingInstrumentor().uninstrument()
    return {}


installed = {}
for step in sys.argv[1:]:
    installed.update(turn_on(step))

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
tracer = provider.get_tracer("oracle")


def work(name):
    with tracer.start_as_current_span(name):
        pass


def run_thread(thread):
    thread.start()
    thread.join()


class OwnRun(threading.Thread):
    def run(self):
        work("subclass.child")


def nested_outer():
    with tracer.start_as_current_span("nested.middle"):
        run_thread(threading.Thread(target=work, args=("nested.inner",)))


pool = ThreadPoolExecutor(2)
with tracer.start_as_current_span("thread.parent"):
    run_thread(threading.Thread(target=work, args=("thread.child",)))
with tracer.start_as_current_span("timer.parent"):
    run_thread(threading.Timer(0.001, work, args=("timer.child",)))
with tracer.start_as_current_span("submit.parent"):
    pool.submit(work, "submit.child").result()
with tracer.start_as_current_span("map.parent"):
    list(pool.map(work, ["map.child"] * 5))
with tracer.start_as_current_span("nested.parent"):
    run_thread(threading.Thread(target=nested_outer))
run_thread(threading.Thread(target=work, args=("nospan.child",)))
with tracer.start_as_current_span("subclass.parent"):
    run_thread(OwnRun())

with tracer.start_as_current_span("creation.parent"):
    late = ThreadPoolExecutor(1)
with tracer.start_as_current_span("submit_time.parent"):
    late.submit(work, "submit_time.child").result()
late.submit(work, "reused_worker.child").result()  # its worker was started inside submit_time.parent

with tracer.start_as_current_span("created_inside.parent"):
    inside = ThreadPoolExecutor(1)
inside.submit(work, "used_outside.child").result()

starter = ThreadPoolExecutor(1, initializer=work, initargs=("initializer.child",))
with tracer.start_as_current_span("initializer.parent"):
    starter.submit(int).result()

for executor in (pool, late, inside, starter):
    executor.shutdown()

names = {span.context.span_id: span.name for span in exporter.get_finished_spans()}
parents = sorted(
    [span.name, names.get(span.parent.span_id) if span.parent else None]
    for span in exporter.get_finished_spans()
)
print(json.dumps({"installed": installed, "parents": parents}))
"""

# Where modeltel differs from the library on purpose, and what the library does there.
BEYOND_THE_LIBRARY = {"subclass.child": None}


def parentage(tmp_path: Path, *steps: str) -> dict[str, object]:
    """Run the scenarios after ``steps`` (turn ``ours`` / ``library`` on, ``*-off`` turns it off)."""
    result = run_script(tmp_path, SCENARIOS, *steps, timeout=60)
    assert result.returncode == 0, result.stderr
    found: dict[str, object] = json.loads(result.stdout)
    return found


def by_name(found: dict[str, object]) -> dict[str, Counter[str | None]]:
    """The parent names each span name got, counted (``map.child`` runs five times)."""
    table: dict[str, Counter[str | None]] = {}
    parents = found["parents"]
    assert isinstance(parents, list)
    for name, parent in parents:
        table.setdefault(name, Counter())[parent] += 1
    return table


def as_library(table: dict[str, Counter[str | None]]) -> dict[str, Counter[str | None]]:
    """``table`` with the spans where modeltel goes beyond the library given the library's parent."""
    patched = dict(table)
    for name, parent in BEYOND_THE_LIBRARY.items():
        patched[name] = Counter({parent: sum(table[name].values())})
    return patched


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Counter[str | None]]:
    return by_name(parentage(tmp_path_factory.mktemp("library"), "library"))


@pytest.mark.timeout(120)
def test_ours_gives_every_span_the_parent_the_library_gives(
    tmp_path: Path, library: dict[str, Counter[str | None]]
) -> None:
    ours = by_name(parentage(tmp_path, "ours"))
    assert as_library(ours) == library
    assert library["thread.child"] == Counter({"thread.parent": 1})  # the oracle does propagate
    assert library["used_outside.child"] == Counter({None: 1})
    assert library["reused_worker.child"] == Counter({None: 1})
    assert library["initializer.child"] == Counter({"initializer.parent": 1})


@pytest.mark.timeout(120)
def test_a_thread_subclass_overriding_run_gets_the_starting_context(tmp_path: Path) -> None:
    assert by_name(parentage(tmp_path, "ours"))["subclass.child"] == Counter({"subclass.parent": 1})


@pytest.mark.timeout(120)
def test_without_either_the_scenarios_tell_the_difference(
    tmp_path: Path, library: dict[str, Counter[str | None]]
) -> None:
    """The oracle comparison can fail: with nothing installed, threads start new traces."""
    none = by_name(parentage(tmp_path))
    assert none != library
    assert none["thread.child"] == Counter({None: 1})


@pytest.mark.timeout(120)
def test_library_on_first_keeps_ours_off(tmp_path: Path, library: dict[str, Counter[str | None]]) -> None:
    found = parentage(tmp_path, "library", "ours")
    assert found["installed"] == {"ours": False}
    assert by_name(found) == library


@pytest.mark.timeout(120)
def test_library_on_top_of_ours_attaches_the_same_context_twice_parents_unchanged(
    tmp_path: Path, library: dict[str, Counter[str | None]]
) -> None:
    found = parentage(tmp_path, "ours", "library")
    assert found["installed"] == {"ours": True}
    assert by_name(found) == by_name(parentage(tmp_path, "ours"))


@pytest.mark.timeout(120)
def test_ours_off_under_the_library_leaves_the_library_working(
    tmp_path: Path, library: dict[str, Counter[str | None]]
) -> None:
    assert by_name(parentage(tmp_path, "ours", "library", "ours-off")) == library
    none = by_name(parentage(tmp_path, "ours", "library", "ours-off", "library-off"))
    assert none["thread.child"] == Counter({None: 1})
    assert none["submit.child"] == Counter({None: 1})


def test_install_imports_neither_the_instrumentation_package_nor_wrapt(tmp_path: Path) -> None:
    code = """
import sys
from modeltel.integrations import threads
assert threads.install()
print(sorted(m for m in sys.modules if m.startswith(("opentelemetry.instrumentation", "wrapt"))))
"""
    result = run_script(tmp_path, code, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


PATCHED = [
    (threading.Thread, "start"),
    (threading.Thread, "_bootstrap_inner"),
    (ThreadPoolExecutor, "submit"),
]


def _originals() -> list[object]:
    return [vars(owner).get(name) for owner, name in PATCHED] + [dict(vars(threading.Timer))]


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch) -> object:
    """No threading patch of ours active around the test (another test may have configured)."""
    monkeypatch.delenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", raising=False)
    threads.uninstall()
    yield
    threads.uninstall()


@pytest.mark.usefixtures("clean")
def test_install_is_idempotent_and_uninstall_restores_the_originals_exactly() -> None:
    before = _originals()
    assert threads.install()
    assert not threads.install()
    assert _originals() != before
    threads.uninstall()
    threads.uninstall()
    assert _originals() == before


@pytest.mark.usefixtures("clean")
@pytest.mark.parametrize("value", ["threading", "flask, threading", "*"])
def test_the_sdk_variable_keeps_it_off(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    before = _originals()
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", value)
    assert not threads.install()
    assert _originals() == before


@pytest.mark.usefixtures("clean")
def test_a_python_without_bootstrap_inner_gets_a_warning_not_a_crash(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delattr(threading.Thread, "_bootstrap_inner")
    before = _originals()
    assert not threads.install()
    assert _originals() == before
    assert "_bootstrap_inner" in caplog.text
