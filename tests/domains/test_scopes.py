"""What every domain scope shares: decorator forms, context across asyncio and threads, errors, no-op."""

from __future__ import annotations

import asyncio
import contextvars
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from opentelemetry.trace import StatusCode

from modeltel import calibration, inference, simulation
from modeltel._internal import semconv
from modeltel._internal.domains import _runtime
from modeltel._internal.domains._scope import NOOP
from modeltel.testing import Capture, capture
from otlp_files import base_env


def _parent_id(span) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def test_decorator_on_sync_function_opens_one_span_per_call(modeltel_capture: Capture) -> None:
    @simulation.run(model="sir", param_id="p1", seed=3)
    def simulate(x: int) -> int:
        return x * 2

    assert simulate(2) == 4 and simulate(5) == 10
    assert simulate.__name__ == "simulate"
    runs = modeltel_capture.spans("simulation.run")
    assert len(runs) == 2
    assert runs[0].context.span_id != runs[1].context.span_id
    assert runs[1].attributes[semconv.SIMULATION_SEED] == 3
    assert modeltel_capture.histogram(semconv.METRIC_SIMULATION_RUN_DURATION).count == 2


def test_decorator_on_async_function_and_context_in_gather(modeltel_capture: Capture) -> None:
    @inference.predict(model="m")
    async def one(i: int) -> int:
        await asyncio.sleep(0.01 * (3 - i))  # finish in reverse order: contexts must not leak
        with simulation.run(model="inner", seed=i):
            await asyncio.sleep(0)
        return i

    async def main() -> list[int]:
        with simulation.job("gather"):
            return list(await asyncio.gather(*(one(i) for i in range(3))))

    assert asyncio.run(main()) == [0, 1, 2]
    job = modeltel_capture.span("simulation.job")
    predicts = modeltel_capture.spans("inference.predict")
    inner = modeltel_capture.spans("simulation.run")
    assert len(predicts) == 3 and len(inner) == 3
    assert {_parent_id(p) for p in predicts} == {job.context.span_id}
    by_id = {p.context.span_id for p in predicts}
    assert {_parent_id(s) for s in inner} == by_id  # each inner run under its own predict
    assert len({s.context.trace_id for s in [job, *predicts, *inner]}) == 1


def test_async_with_form(modeltel_capture: Capture) -> None:
    async def main() -> None:
        async with simulation.run(model="sir") as run:
            run.record(steps=3)

    asyncio.run(main())
    assert modeltel_capture.span("simulation.run").attributes["modeltel.simulation.steps"] == 3


def test_context_follows_into_thread_pool_that_copies_context(modeltel_capture: Capture) -> None:
    def work(i: int) -> None:
        with simulation.run(model="sir", seed=i):
            pass

    with simulation.job("threads") as job, ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(contextvars.copy_context().run, work, i) for i in range(8)]
        for f in futures:
            f.result()
    job_id = modeltel_capture.span("simulation.job").context.span_id
    runs = modeltel_capture.spans("simulation.run")
    assert len(runs) == 8 and {_parent_id(r) for r in runs} == {job_id}
    assert job is not NOOP


def test_child_scopes_parent_to_their_owner_even_on_another_thread(modeltel_capture: Capture) -> None:
    # The pool does not copy context: parents must come from the scope objects themselves.
    with calibration.job("fit") as job, ThreadPoolExecutor(2) as pool:
        iterations = list(pool.map(lambda _: _iterate(job), range(4)))
    assert sorted(iterations) == [0, 1, 2, 3]
    job_span = modeltel_capture.span("calibration.job")
    its = modeltel_capture.spans("calibration.iteration")
    assert {_parent_id(s) for s in its} == {job_span.context.span_id}
    it_ids = {s.context.span_id for s in its}
    tells = modeltel_capture.spans("calibration.tell")
    assert len(tells) == 4 and {_parent_id(t) for t in tells} <= it_ids


def _iterate(job: calibration.CalibrationJob) -> int:
    with job.iteration() as it, it.tell() as t:
        t.losses([1.0])
    return it.number


def test_exception_is_recorded_cut_and_reraised_unchanged(modeltel_capture: Capture) -> None:
    class Boom(RuntimeError):
        pass

    error = Boom("x" * 500)
    with pytest.raises(Boom) as raised, simulation.run(model="sir"):
        raise error
    assert raised.value is error
    span = modeltel_capture.span("simulation.run")
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "x" * semconv.ERROR_MESSAGE_MAX_CHARS
    assert span.attributes[semconv.ERROR_TYPE].endswith("Boom")
    (event,) = span.events
    assert event.name == "exception"
    assert event.attributes[semconv.EXCEPTION_MESSAGE] == "x" * 200
    point = modeltel_capture.histogram(
        semconv.METRIC_SIMULATION_RUN_DURATION, **{semconv.SIMULATION_STATUS: "error"}
    )
    assert point.count == 1


def test_exception_with_broken_str_still_reraises_the_original(modeltel_capture: Capture) -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise TypeError("no")

    with pytest.raises(Unprintable), inference.predict(model="m"):
        raise Unprintable
    span = modeltel_capture.span("inference.predict")
    assert span.status.description == "<unprintable Unprintable>"


def test_decorated_async_exception_is_recorded(modeltel_capture: Capture) -> None:
    @calibration.job("fit")
    async def fit() -> None:
        raise ValueError("bad fit")

    with pytest.raises(ValueError, match="bad fit"):
        asyncio.run(fit())
    assert modeltel_capture.span("calibration.job").status.status_code is StatusCode.ERROR


def test_disabled_returns_one_shared_noop_for_every_call() -> None:
    previous = _runtime.install(_runtime.DISABLED)
    try:
        objects = [
            simulation.job("j"),
            simulation.run(model="sir", param_id="p", seed=1),
            calibration.job("c", algorithm="tpe"),
            inference.predict(model="m"),
            inference.generate(model="m", provider="p"),
            inference.job("i"),
        ]
        assert all(o is NOOP for o in objects)
        with simulation.run(model="sir") as run:
            run.cache(hit=True)
            run.record(steps=1)
            with run.phase("p") as phase:
                assert phase is NOOP
        with calibration.job("c") as job, job.iteration() as it:
            with it.ask() as a:
                a.record(n_params=2)
            with it.tell() as t:
                t.losses([1.0])
        with inference.predict(model="m") as p:
            p.outputs([[0.5, 0.5]])

        def f() -> int:
            return 1

        assert simulation.run(model="sir")(f) is f
    finally:
        _runtime.restore(previous)


def test_decorating_before_telemetry_is_resolved_does_not_configure(tmp_path: Path) -> None:
    code = """
    import modeltel
    from modeltel import simulation
    from modeltel._internal.domains import _runtime

    @simulation.run(model="sir")
    def simulate():
        return 7

    assert _runtime.active is None, "decoration must not configure telemetry"
    modeltel.configure(service_name="late-config")
    assert simulate() == 7
    assert _runtime.active is not None and _runtime.active.enabled
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=base_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    files = list((tmp_path / "traces").glob("*/late-config-*.jsonl"))
    assert len(files) == 1 and '"simulation.run"' in files[0].read_text()


def test_disabled_by_environment_writes_nothing_and_returns_noop(tmp_path: Path) -> None:
    code = """
    from modeltel import simulation, inference
    from modeltel._internal.domains._scope import NOOP
    assert simulation.run(model="sir") is not NOOP  # unresolved: lazy scope
    with simulation.run(model="sir") as run:
        assert run is NOOP
    assert simulation.run(model="sir", seed=1) is NOOP
    assert inference.generate(model="m", provider="p") is NOOP
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=base_env(tmp_path, MODELTEL_ENABLED="false"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_bad_keyword_attribute_is_a_value_error_naming_it() -> None:
    with capture(), pytest.raises(ValueError, match="note="):
        simulation.job("j", note={"a": 1})
    with capture(), pytest.raises(ValueError, match="steps="), simulation.run(model="sir") as run:
        run.record(steps="many")  # type: ignore[arg-type]


def test_numpy_scalars_and_lists_become_attributes(modeltel_capture: Capture) -> None:
    import numpy as np

    with simulation.run(model="sir", seed=np.int64(9), tags=["a", "b"]) as run:
        run.record(final=np.float32(0.5), odd=float("nan"))
    span = modeltel_capture.span("simulation.run")
    assert span.attributes[semconv.SIMULATION_SEED] == 9
    assert span.attributes["modeltel.simulation.tags"] == ("a", "b")
    assert span.attributes["modeltel.simulation.final"] == 0.5
    assert span.attributes[semconv.WARNING] == ("odd is nan",)
