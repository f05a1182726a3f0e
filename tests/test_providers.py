"""configure(): idempotence, existing providers, disabled mode, and nothing lost on any way out."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from otlp_files import attrs, base_env, jsonl_files, metric_requests, spans, summaries

APP = """
import os, sys, threading, time
import modeltel
from opentelemetry import trace, metrics
handle = modeltel.configure()
tracer = trace.get_tracer("t")
for i in range({n}):
    with tracer.start_as_current_span("work") as s:
        s.set_attribute("i", i)
metrics.get_meter("t").create_counter("done").add({n})
"""


def run_py(data: Path, code: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=base_env(data, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def span_names(data: Path) -> list[str]:
    return sorted(s.name for s, _, _ in spans(data))


@pytest.mark.parametrize(
    ("tail", "code"),
    [
        ("", 0),
        ("sys.exit(3)", 3),
        ("raise RuntimeError('uncaught')", 1),
        ("os.kill(os.getpid(), signal.SIGINT); time.sleep(5)", -signal.SIGINT),  # as without modeltel
        ("os.kill(os.getpid(), signal.SIGTERM); time.sleep(5)", -signal.SIGTERM),
    ],
    ids=["normal", "sys.exit", "uncaught", "SIGINT", "SIGTERM"],
)
def test_nothing_finished_is_lost_on_any_exit(tmp_path: Path, tail: str, code: int) -> None:
    # 700 spans: more than one batch, fewer than a full queue; the schedule delay never fires.
    result = run_py(tmp_path, "import signal\n" + APP.format(n=700) + tail, OTEL_BSP_SCHEDULE_DELAY="600000")
    assert result.returncode == code, result.stderr
    assert span_names(tmp_path) == ["work"] * 700
    ids = [s.span_id for s, _, _ in spans(tmp_path)]
    assert len(set(ids)) == 700
    (summary,) = summaries(tmp_path)
    assert summary["span_count"] == 700
    points = [
        m
        for r in metric_requests(tmp_path)
        for rm in r.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    ]
    assert [p.sum.data_points[0].as_int for p in points if p.name == "done"][-1] == 700


SIGTERM_INSIDE_EXPORT = """
import builtins, os, signal, time
from modeltel._internal.export.local import LocalSpanExporter
export = LocalSpanExporter.export
calls = 0
def export_then_signal(self, spans):
    # The signal lands while the writer thread is inside an export and the main thread waits for
    # it: in a flush, for room in the full queue, or in the shutdown.
    global calls
    calls += 1
    if calls == builtins.SIGNAL_AT_EXPORT:
        os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(builtins.EXPORT_S)
    return export(self, spans)
LocalSpanExporter.export = export_then_signal
"""


@pytest.mark.parametrize(
    ("tail", "env"),
    [
        ("handle.force_flush()", {}),
        ("", {"OTEL_BSP_MAX_QUEUE_SIZE": "512", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "128"}),
        ("handle.shutdown()", {}),
    ],
    ids=["in force_flush", "in back-pressure wait", "in shutdown"],
)
def test_sigterm_while_the_main_thread_waits_for_the_writer_flushes_and_exits(
    tmp_path: Path, tail: str, env: dict[str, str]
) -> None:
    # Python runs the handler on the main thread, inside the wait: the handler's own flush must
    # neither deadlock on what that wait holds nor cut the export in progress short.
    # The second export is the flush's or the shutdown's (the first is the first full batch of
    # 512); with a slow writer and a queue of 512, the main thread is waiting for room by then.
    slow = "0.5" if not tail else "0"
    prefix = f"import builtins\nbuiltins.SIGNAL_AT_EXPORT = 2\nbuiltins.EXPORT_S = {slow}\n"
    code = prefix + SIGTERM_INSIDE_EXPORT + APP.format(n=700) + tail + "\ntime.sleep(30)"
    result = run_py(tmp_path, code, timeout=30, OTEL_BSP_SCHEDULE_DELAY="600000", **env)
    assert result.returncode == -signal.SIGTERM, result.stderr
    # In the back-pressure case the process dies inside the loop: every span ended before the
    # signal is on disk, none twice.
    ended = 700 if tail else len(spans(tmp_path))
    assert ended >= 512  # the queue of 512 was full before the second export
    assert sorted(attrs(s.attributes)["i"] for s, _, _ in spans(tmp_path)) == list(range(ended))
    (summary,) = summaries(tmp_path)
    assert summary["span_count"] == ended


def test_configure_is_idempotent_and_thread_safe(tmp_path: Path) -> None:
    code = (
        APP.format(n=1)
        + """
results = []
threads = [threading.Thread(target=lambda: results.append(modeltel.configure())) for _ in range(16)]
[t.start() for t in threads]; [t.join() for t in threads]
assert all(r is handle for r in results), "configure returned different handles"
assert handle.force_flush() is True
handle.shutdown(); handle.shutdown()
from modeltel._internal.export.processor import BackPressureSpanProcessor
(stage,) = trace.get_tracer_provider()._active_span_processor._span_processors
print(sum(isinstance(p, BackPressureSpanProcessor) for p in stage.processors))
"""
    )
    result = run_py(tmp_path, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"  # one redaction stage, one JSONL batch processor, not seventeen
    assert span_names(tmp_path) == ["work"]


def test_existing_providers_get_jsonl_added_not_replaced(tmp_path: Path) -> None:
    code = """
from opentelemetry import trace, metrics
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
memory = InMemorySpanExporter(); reader = InMemoryMetricReader()
tp = TracerProvider(resource=Resource.create({"service.name": "theirs"}))
tp.add_span_processor(SimpleSpanProcessor(memory)); trace.set_tracer_provider(tp)
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
import modeltel
handle = modeltel.configure(service_name="ignored")
assert trace.get_tracer_provider() is tp
with trace.get_tracer("t").start_as_current_span("shared"): pass
metrics.get_meter("t").create_counter("c").add(2)
handle.force_flush()
assert [s.name for s in memory.get_finished_spans()] == ["shared"]
assert reader.get_metrics_data() is not None
handle.shutdown()
"""
    result = run_py(tmp_path, code)
    assert result.returncode == 0, result.stderr
    ((span, resource, _),) = spans(tmp_path)
    assert span.name == "shared" and attrs(resource.attributes)["service.name"] == "theirs"
    assert any(
        m.name == "c"
        for r in metric_requests(tmp_path)
        for rm in r.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    )


@pytest.mark.parametrize("env", [{"MODELTEL_ENABLED": "false"}, {"OTEL_SDK_DISABLED": "true"}])
def test_disabled_means_no_file_no_thread_no_provider(tmp_path: Path, env: dict[str, str]) -> None:
    code = (
        APP.format(n=5)
        + """
print(handle.enabled, threading.active_count(), type(trace.get_tracer_provider()).__name__)
"""
    )
    result = run_py(tmp_path / "d", code, **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "1", "ProxyTracerProvider"]
    assert not (tmp_path / "d").exists()


def test_bad_variable_inside_an_app_warns_once_and_the_app_runs(tmp_path: Path) -> None:
    result = run_py(
        tmp_path,
        APP.format(n=2) + "print('app ran')",
        OTEL_METRIC_EXPORT_INTERVAL="soon",
        OTEL_TRACES_EXPORTER="jsonl,nosuch",
    )
    assert result.returncode == 0 and result.stdout.strip() == "app ran"
    assert result.stderr.count("OTEL_METRIC_EXPORT_INTERVAL='soon'") == 1
    assert result.stderr.count("'nosuch'") == 1
    assert span_names(tmp_path) == ["work", "work"]


def test_unwritable_data_dir_inside_an_app_falls_back_with_one_warning(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    result = subprocess.run(
        [sys.executable, "-c", APP.format(n=1)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=base_env(blocker / "data"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("MODELTEL_DATA_DIR") == 1
    assert span_names(tmp_path / "modeltel-data") == ["work"]


def test_os_fork_child_writes_its_own_file_without_duplicates(tmp_path: Path) -> None:
    code = (
        APP.format(n=3)
        + """
with tracer.start_as_current_span("parent-before-fork"): pass
pid = os.fork()
if pid == 0:
    for i in range(5):
        with tracer.start_as_current_span("child"): pass
    sys.exit(0)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0
with tracer.start_as_current_span("parent-after-fork"): pass
"""
    )
    result = run_py(tmp_path, code, OTEL_BSP_SCHEDULE_DELAY="600000")
    assert result.returncode == 0, result.stderr
    files = jsonl_files(tmp_path, "traces")
    assert len(files) == 2
    names = span_names(tmp_path)
    assert names == sorted(["work"] * 3 + ["parent-before-fork", "parent-after-fork"] + ["child"] * 5)
    assert len(summaries(tmp_path)) == 2


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_multiprocessing_children_flush_before_exit(tmp_path: Path, method: str) -> None:
    script = tmp_path / "mp_app.py"
    script.write_text(
        textwrap.dedent(f"""
        import multiprocessing as mp
        import modeltel
        from opentelemetry import trace

        def work(n):
            modeltel.configure()  # a spawned child starts empty; a forked one already has providers
            tracer = trace.get_tracer("w")
            for i in range(n):
                with tracer.start_as_current_span("task"):
                    pass
            return n

        if __name__ == "__main__":
            modeltel.configure()
            with trace.get_tracer("p").start_as_current_span("driver"):
                pass
            ctx = mp.get_context("{method}")
            procs = [ctx.Process(target=work, args=(50,)) for _ in range(3)]
            [p.start() for p in procs]; [p.join(30) for p in procs]
            assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    """)
    )
    result = subprocess.run(
        [sys.executable, str(script)],
        env=base_env(tmp_path / "d", OTEL_BSP_SCHEDULE_DELAY="600000"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    names = span_names(tmp_path / "d")
    assert names.count("task") == 150 and names.count("driver") == 1
    assert len(jsonl_files(tmp_path / "d", "traces")) == 4


def test_fork_while_the_export_thread_writes_does_not_deadlock(tmp_path: Path) -> None:
    code = """
import os, sys, threading, time
import modeltel
from opentelemetry import trace
handle = modeltel.configure()
tracer = trace.get_tracer("t")
stop = False
def churn():
    while not stop:
        with tracer.start_as_current_span("bg"): pass
t = threading.Thread(target=churn); t.start()
children = []
deadline = time.time() + 3
while time.time() < deadline:
    pid = os.fork()
    if pid == 0:
        with tracer.start_as_current_span("forked"): pass
        handle.force_flush(5000)
        os._exit(0)
    children.append(pid)
    time.sleep(0.02)
stop = True; t.join()
for pid in children:
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
print(len(children))
"""
    started = time.monotonic()
    result = run_py(tmp_path, code, timeout=90, OTEL_BSP_SCHEDULE_DELAY="10")
    assert result.returncode == 0, result.stderr
    forks = int(result.stdout)
    assert forks > 20
    names = span_names(tmp_path)
    assert names.count("forked") == forks
    bg_ids = [s.span_id for s, _, _ in spans(tmp_path) if s.name == "bg"]
    assert len(bg_ids) == len(set(bg_ids))  # no span written twice by a child
    assert time.monotonic() - started < 90
