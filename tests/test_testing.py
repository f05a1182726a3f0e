"""modeltel.testing: repeated captures in one process, the helpers, and the pytest plugin for users."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from modeltel import inference, simulation
from modeltel._internal import semconv
from modeltel._internal.domains import _runtime
from modeltel.testing import Capture, capture
from otlp_files import base_env


def test_captures_are_independent_and_repeatable() -> None:
    for i in range(3):
        with capture() as cap, simulation.run(model="sir", seed=i):
            pass
        assert [s.attributes[semconv.SIMULATION_SEED] for s in cap.spans()] == [i]
        assert cap.histogram(semconv.METRIC_SIMULATION_RUN_DURATION).count == 1


def test_nested_capture_takes_over_and_restores() -> None:
    before = _runtime.active
    with capture() as outer:
        with capture() as inner, simulation.run(model="inner"):
            pass
        with simulation.run(model="outer"):
            pass
    assert _runtime.active is before
    assert [s.attributes[semconv.SIMULATION_MODEL] for s in inner.spans()] == ["inner"]
    assert [s.attributes[semconv.SIMULATION_MODEL] for s in outer.spans()] == ["outer"]


def test_calls_from_other_threads_are_captured(modeltel_capture: Capture) -> None:
    def work() -> None:
        with simulation.run(model="threaded"):
            pass

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(modeltel_capture.spans("simulation.run")) == 4


def test_helpers_span_children_points_clear(modeltel_capture: Capture) -> None:
    with simulation.run(model="a") as run, run.phase("p1"), run.phase("p2"):
        pass
    run_span = modeltel_capture.span("simulation.run")
    (p1,) = modeltel_capture.children(run_span)
    assert [c.attributes[semconv.SIMULATION_PHASE] for c in modeltel_capture.children(p1)] == ["p2"]
    assert modeltel_capture.span_names() == ["simulation.phase", "simulation.phase", "simulation.run"]
    with pytest.raises(AssertionError, match=r"expected one 'simulation.phase' span, found 2"):
        modeltel_capture.span("simulation.phase")
    assert (
        modeltel_capture.points(semconv.METRIC_SIMULATION_RUN_DURATION, **{semconv.SIMULATION_MODEL: "b"})
        == []
    )
    assert modeltel_capture.points("no.such.metric") == []
    modeltel_capture.clear()
    assert modeltel_capture.spans() == []
    assert modeltel_capture.histogram(semconv.METRIC_SIMULATION_RUN_DURATION).count == 1


def test_fixture_is_available_to_users_through_the_plugin(tmp_path: Path) -> None:
    (tmp_path / "test_user_code.py").write_text(
        textwrap.dedent(
            """
            from modeltel import inference

            def predict(x):
                with inference.predict(model="user-model") as p:
                    p.outputs([[0.2, 0.8]] * len(x))

            def test_predict_is_instrumented(modeltel_capture):
                predict([1, 2, 3])
                span = modeltel_capture.span("inference.predict")
                assert span.attributes["modeltel.inference.batch_size"] == 3

            def test_each_test_gets_a_fresh_capture(modeltel_capture):
                assert modeltel_capture.spans() == []
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        env=base_env(tmp_path / "data"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
    assert not (tmp_path / "data").exists()  # captured in memory: nothing configured, nothing written


def test_content_capture_flag(modeltel_capture: Capture) -> None:
    with inference.generate(model="m", provider="p") as g:
        g.content(prompt="private")
    assert semconv.GEN_AI_INPUT_MESSAGES not in modeltel_capture.span("chat m").attributes
