"""modeltel's own API against hostile arguments and hostile endings: a ValueError naming the argument,
never an exception from inside the SDK; overrides checked like the variables they stand for; an
interrupted program keeps the exit status it would have without modeltel."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import context as otel_context

from modeltel import calibration, inference, simulation
from modeltel.testing import Capture
from otlp_files import BIN, base_env, jsonl_files

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]


@pytest.fixture(autouse=True)
def _context_restored() -> Iterator[None]:
    """These tests open scopes and never close them (a caller's bug they survive); the spans they
    leave current must not become the parents of later tests' spans in this thread."""
    token = otel_context.attach(otel_context.get_current())
    try:
        yield
    finally:
        otel_context.detach(token)


class BadStr:
    """An object whose ``__str__`` and ``__repr__`` raise, as a half-built proxy's might."""

    def __str__(self) -> str:
        raise RuntimeError("__str__ is broken")

    __repr__ = __str__


def deep_list(depth: int = 10_000) -> list[Any]:
    root: list[Any] = []
    node = root
    for _ in range(depth):
        child: list[Any] = []
        node.append(child)
        node = child
    return root


def _open(scope: Any) -> Any:
    """Enter a scope the way a caller's ``with`` would, returning what ``as`` binds."""
    return scope.__enter__()


def _run() -> Any:
    return _open(simulation.run(model="sir"))


def _iteration() -> Any:
    return _open(_open(calibration.job("fit")).iteration())


def _generate() -> Any:
    return _open(inference.generate(model="m", provider="p"))


HOSTILE: dict[str, Any] = {"bad __str__": BadStr(), "10,000-deep list": deep_list()}
ENTRY_POINTS: dict[str, tuple[str, Callable[[Any], object]]] = {
    "simulation.job(name)": ("name", lambda v: simulation.job(v)),
    "simulation.job(n_tasks)": ("n_tasks", lambda v: simulation.job("j", n_tasks=v)),
    "simulation.job(**attrs)": ("owner", lambda v: simulation.job("j", owner=v)),
    "simulation.run(model)": ("model", lambda v: simulation.run(model=v)),
    "simulation.run(param_id)": ("param_id", lambda v: simulation.run(model="m", param_id=v)),
    "simulation.run(seed)": ("seed", lambda v: simulation.run(model="m", seed=v)),
    "simulation.run(**attrs)": ("a", lambda v: simulation.run(model="m", a=v)),
    "run.phase(name)": ("name", lambda v: _run().phase(v)),
    "run.record(**numbers)": ("a", lambda v: _run().record(a=v)),
    "calibration.job(name)": ("name", lambda v: calibration.job(v)),
    "calibration.job(algorithm)": ("algorithm", lambda v: calibration.job("j", algorithm=v)),
    "calibration.job(max_iterations)": ("max_iterations", lambda v: calibration.job("j", max_iterations=v)),
    "calibration.job(**attrs)": ("owner", lambda v: calibration.job("j", owner=v)),
    "job.iteration(number)": ("number", lambda v: _open(calibration.job("fit")).iteration(v)),
    "iteration.evaluate(n)": ("n", lambda v: _iteration().evaluate(n=v)),
    "iteration.record(**numbers)": ("n_params", lambda v: _iteration().record(n_params=v)),
    "iteration.losses(losses)": ("losses", lambda v: _iteration().losses(v)),
    "inference.job(name)": ("name", lambda v: inference.job(v)),
    "inference.job(model)": ("model", lambda v: inference.job("j", model=v)),
    "inference.predict(model)": ("model", lambda v: inference.predict(model=v)),
    "inference.predict(framework)": ("framework", lambda v: inference.predict(model="m", framework=v)),
    "inference.predict(**attrs)": ("batch", lambda v: inference.predict(model="m", batch=v)),
    "inference.generate(model)": ("model", lambda v: inference.generate(model=v, provider="p")),
    "inference.generate(provider)": ("provider", lambda v: inference.generate(model="m", provider=v)),
    "inference.generate(operation)": ("operation", lambda v: inference.generate("m", "p", operation=v)),
    "inference.generate(**attrs)": ("user", lambda v: inference.generate("m", "p", user=v)),
    "generate.usage(input_tokens)": ("input_tokens", lambda v: _generate().usage(input_tokens=v)),
    "generate.usage(response_model)": ("response_model", lambda v: _generate().usage(response_model=v)),
}


@pytest.mark.parametrize("value", list(HOSTILE.values()), ids=list(HOSTILE))
@pytest.mark.parametrize("entry", list(ENTRY_POINTS), ids=list(ENTRY_POINTS))
def test_every_entry_point_names_the_argument_it_cannot_take(
    modeltel_capture: Capture, entry: str, value: Any
) -> None:
    argument, call = ENTRY_POINTS[entry]
    with pytest.raises(ValueError) as raised:
        scope: Any = call(value)
        if hasattr(scope, "__enter__"):
            with scope:
                pass
    message = str(raised.value)
    assert message.startswith(f"{argument}"), message
    assert len(message) < 400, message  # a 10,000-deep list is described, not printed


def test_a_rejected_argument_leaves_no_span_open(modeltel_capture: Capture) -> None:
    with pytest.raises(ValueError, match=r"^model"):
        simulation.run(model=BadStr())  # type: ignore[arg-type]
    with simulation.run(model="sir"):
        pass
    assert [s.name for s in modeltel_capture.spans()] == ["simulation.run"]


def _app(tmp_path: Path, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "app.py"
    path.write_text(code)
    return subprocess.run(
        [sys.executable, str(path)], env=base_env(tmp_path / "data", **env), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


BSP_APP = """
import time, warnings
warnings.simplefilter("always")
import modeltel
from opentelemetry import trace
handle = modeltel.configure({override})
tracer = trace.get_tracer("bsp")
started = time.monotonic()
for i in range(3000):
    with tracer.start_as_current_span("s"):
        pass
handle.shutdown()
print("SECONDS", time.monotonic() - started)
"""


@pytest.mark.parametrize(
    ("override", "shown"),
    [
        ("bsp_max_export_batch_size=4096", "4096"),
        ("bsp_max_queue_size=0", "0"),
        ("bsp_max_export_batch_size=0", "0"),
        ("bsp_schedule_delay_ms=-5", "-5"),
    ],
)
def test_bsp_overrides_are_validated_like_the_variables(
    tmp_path: Path, override: str, shown: str, figures: Any
) -> None:
    try:
        result = _app(tmp_path, BSP_APP.format(override=override), OTEL_TRACES_EXPORTER="jsonl")
    except subprocess.TimeoutExpired:
        pytest.fail(f"configure({override}) then 3,000 spans did not finish in 60 s")
    assert result.returncode == 0, result.stderr
    name = override.split("=")[0]
    warning = [line for line in result.stderr.splitlines() if name in line and "ConfigWarning" in line]
    assert warning and f"'{shown}'" in warning[0] and "using" in warning[0], result.stderr
    seconds = float(result.stdout.split("SECONDS")[1])
    on_disk = sum(path.read_text().count('"name":"s"') for path in jsonl_files(tmp_path / "data", "traces"))
    assert on_disk == 3000
    figures(
        fault=f"configure({override})", runs=1, sent=3000, on_disk=on_disk,
        note=f"3,000 spans and shutdown in {seconds:.2f} s",
    )  # fmt: skip


INTERRUPTED = """
import modeltel
modeltel.configure()
from modeltel import simulation
with simulation.run(model="sir", seed=1):
    pass
with simulation.run(model="sir", seed=2):
    raise KeyboardInterrupt
"""
UNDER_RUN = """
from modeltel import simulation
with simulation.run(model="sir", seed=1):
    pass
with simulation.run(model="sir", seed=2):
    raise KeyboardInterrupt
"""


@pytest.mark.parametrize("how", ["configure()", "modeltel run"])
def test_an_uncaught_keyboard_interrupt_still_dies_of_sigint(tmp_path: Path, how: str) -> None:
    plain = _app(tmp_path, "raise KeyboardInterrupt\n")
    assert plain.returncode == -signal.SIGINT  # what Python does without modeltel
    data = tmp_path / "data"
    if how == "configure()":
        result = _app(tmp_path, INTERRUPTED)
    else:
        app = tmp_path / "under_run.py"
        app.write_text(UNDER_RUN)
        result = subprocess.run(
            [str(BIN / "modeltel"), "run", "--", sys.executable, str(app)],
            env=base_env(data), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == -signal.SIGINT, (result.returncode, result.stderr)
    assert result.stderr.rstrip().endswith("KeyboardInterrupt")
    lines = "".join(path.read_text() for path in jsonl_files(data, "traces"))
    assert lines.count('"name":"simulation.run"') == 2  # flushed first, the interrupted run too
    assert "KeyboardInterrupt" in lines


HANDLED = """
import modeltel
modeltel.configure()
from modeltel import simulation
try:
    with simulation.run(model="sir", seed=2):
        raise KeyboardInterrupt
except KeyboardInterrupt:
    print("handled")
"""


def test_an_interrupt_the_app_handles_keeps_its_own_status(tmp_path: Path) -> None:
    result = _app(tmp_path, HANDLED)
    assert result.returncode == 0 and result.stdout == "handled\n", (result.returncode, result.stderr)
