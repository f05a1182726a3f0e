"""Subprocesses join the launching span's trace through TRACEPARENT / TRACESTATE in their environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from process_traces import Trace, run_script

CHILD = """
import os, sys
{setup}
from opentelemetry import trace
with trace.get_tracer("child").start_as_current_span("child-top") as span:
    span.set_attribute("label", sys.argv[1])
    span.set_attribute("traceparent", os.environ.get("TRACEPARENT", ""))
    span.set_attribute("tracestate", os.environ.get("TRACESTATE", ""))
    with trace.get_tracer("child").start_as_current_span("child-inner"):
        pass
"""

DRIVER = """
import os, subprocess, sys
{setup}
from opentelemetry import trace
child = os.path.join(os.path.dirname(os.path.abspath(__file__)), "child.py")
tracer = trace.get_tracer("driver")
with tracer.start_as_current_span("driver"):
    subprocess.run([sys.executable, child, "run"], check=True, timeout=60)
    proc = subprocess.Popen([sys.executable, child, "popen"], env=dict(os.environ, EXTRA="1"))
    assert proc.wait(60) == 0
subprocess.run([sys.executable, child, "no-span"], check=True, timeout=60)
"""

CONFIGURE = "import modeltel; modeltel.configure()"


def _write_child(tmp_path: Path, setup: str) -> None:
    (tmp_path / "child.py").write_text(CHILD.format(setup=setup))


def _check(found: Trace) -> None:
    driver = found.one("driver")
    children = found.assert_children("child-top", driver, 2)
    assert sorted(s.attributes["label"] for s in children) == ["popen", "run"]
    for top in children:
        (inner,) = [s for s in found.named("child-inner") if s.span.parent_span_id == top.span.span_id]
        assert top.pid != driver.pid and inner.pid == top.pid
        assert top.resource["modeltel.run.id"] == driver.resource["modeltel.run.id"]
        version, trace_id, parent_id, flags = top.attributes["traceparent"].split("-")
        assert (version, trace_id, parent_id) == ("00", driver.span.trace_id.hex(), driver.span.span_id.hex())
        assert int(flags, 16) & 1  # sampled
    (alone,) = [s for s in found.named("child-top") if s.attributes["label"] == "no-span"]
    assert alone.span.parent_span_id == b"" and alone.span.trace_id != driver.span.trace_id
    assert alone.attributes["traceparent"] == ""
    assert alone.resource["modeltel.run.id"] == driver.resource["modeltel.run.id"]
    assert len(found.pids()) == 4


@pytest.mark.timeout(120)
def test_configured_python_children_join_the_launching_span(tmp_path: Path) -> None:
    _write_child(tmp_path, CONFIGURE)
    result = run_script(tmp_path, DRIVER.format(setup=CONFIGURE), MODELTEL_RUN_ID="run-7")
    assert result.returncode == 0, result.stderr
    _check(Trace(tmp_path / "data"))


@pytest.mark.timeout(120)
def test_modeltel_run_makes_unmodified_python_children_join(tmp_path: Path) -> None:
    _write_child(tmp_path, "")
    result = run_script(tmp_path, DRIVER.format(setup=""), modeltel_run=True)
    assert result.returncode == 0, result.stderr
    _check(Trace(tmp_path / "data"))


@pytest.mark.timeout(60)
def test_a_process_started_with_traceparent_continues_that_trace(tmp_path: Path) -> None:
    trace_id, span_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    result = run_script(
        tmp_path,
        f"""
import os, subprocess, sys
{CONFIGURE}
from opentelemetry import trace
with trace.get_tracer("t").start_as_current_span("top"):
    out = subprocess.run([sys.executable, "-c", "import os; print(os.environ['TRACESTATE'])"],
                         capture_output=True, text=True, check=True, timeout=60)
    print(out.stdout.strip())
""",
        TRACEPARENT=f"00-{trace_id}-{span_id}-01",
        TRACESTATE="vendor=opaque",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "vendor=opaque"  # tracestate travels on with the new traceparent
    top = Trace(tmp_path / "data").one("top")
    assert top.span.trace_id.hex() == trace_id and top.span.parent_span_id.hex() == span_id


@pytest.mark.timeout(60)
def test_an_explicit_traceparent_is_left_alone_and_env_dicts_are_not_mutated(tmp_path: Path) -> None:
    result = run_script(
        tmp_path,
        f"""
import os, subprocess, sys
{CONFIGURE}
from opentelemetry import trace
show = [sys.executable, "-c", "import os; print(os.environ.get('TRACEPARENT', '-'))"]
mine = "00-11111111111111111111111111111111-2222222222222222-01"
with trace.get_tracer("t").start_as_current_span("top") as span:
    env = dict(os.environ)
    given = subprocess.run(show, env=dict(env, TRACEPARENT=mine), capture_output=True, text=True).stdout
    copied = subprocess.run(show, env=env, capture_output=True, text=True).stdout
    assert "TRACEPARENT" not in env
    positional = subprocess.Popen(show, -1, None, None, subprocess.PIPE, None, None, True, False,
                                  None, env, text=True).communicate()[0]
print(given.strip(), copied.strip(), positional.strip(), format(span.get_span_context().span_id, "016x"))
""",
    )
    assert result.returncode == 0, result.stderr
    given, copied, positional, span_id = result.stdout.split()
    assert given == "00-11111111111111111111111111111111-2222222222222222-01"
    assert copied.split("-")[2] == span_id and positional == copied


EXEC_APP = """
import os, sys
from modeltel import simulation
for i in range(300):
    with simulation.run(model="m", seed=i):
        pass
os.execv(sys.executable, [sys.executable, "-c", "pass"])
"""


def test_spans_finished_before_os_exec_reach_disk(tmp_path: Path) -> None:
    import subprocess as sp
    import sys

    from otlp_files import base_env, spans

    done = sp.run([sys.executable, "-c", EXEC_APP], env=base_env(tmp_path), capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert len([s for s, _, _ in spans(tmp_path) if s.name == "simulation.run"]) == 300
