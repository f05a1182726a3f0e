"""``modeltel run``'s own ``sitecustomize``: configure, then the installed instrumentors, nothing stock.

The instrumentors here are tiny distributions written into a directory the test puts on
PYTHONPATH (a ``*.dist-info`` with METADATA and entry_points.txt), so what is found, skipped,
imported and applied is seen from a real child process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from otlp_files import BIN, base_env, run_under_modeltel

GROUP = "opentelemetry_instrumentor"

PRESENT = """
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

APPLIED = []


class PresentInstrumentor(BaseInstrumentor):
    def instrumentation_dependencies(self):
        return ("pydantic >= 2",)

    def _instrument(self, **kwargs):
        APPLIED.append(sorted(kwargs))

    def _uninstrument(self, **kwargs):
        pass
"""

FAILING = """
class FailingInstrumentor:
    is_instrumented_by_opentelemetry = False

    def instrument(self, **kwargs):
        raise RuntimeError("boom in instrument")
"""

NEVER_IMPORTED = "raise AssertionError('this instrumentor must not be imported')\n"

SPY = """
class Spy:
    is_instrumented_by_opentelemetry = False

    def instrument(self, **kwargs):
        pass
"""


def _distribution(site: Path, name: str, entry: str, value: str, source: str, requires: str = "") -> None:
    """One installed distribution ``name`` whose ``opentelemetry_instrumentor`` ``entry`` is ``value``."""
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n"
    if requires:
        metadata += f'Provides-Extra: instruments\nRequires-Dist: {requires}; extra == "instruments"\n'
    (info / "METADATA").write_text(metadata + "\nA description.\n")
    (info / "entry_points.txt").write_text(f"[console_scripts]\nx = y:z\n\n[{GROUP}]\n{entry} = {value}\n")
    (site / f"{value.split(':')[0]}.py").write_text(source)


def _site(tmp_path: Path, failing: bool) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    _distribution(
        site, "mt-present", "present", "mt_present:PresentInstrumentor", PRESENT, requires="pydantic >= 2"
    )
    _distribution(
        site,
        "mt-missing",
        "missing",
        "mt_missing:Missing",
        NEVER_IMPORTED,
        requires="no-such-library-xyz >= 1",
    )
    _distribution(site, "mt-disabled", "disabled_one", "mt_disabled:Disabled", NEVER_IMPORTED)
    if failing:
        _distribution(site, "mt-failing", "failing", "mt_failing:FailingInstrumentor", FAILING)
    # A second ``threading`` entry: modeltel propagates context into threads itself, so an
    # instrumentor of that name is skipped before it is loaded, whoever ships it.
    _distribution(site, "mt-threading", "threading", "mt_threading:Spy", SPY)
    return site


STATE = (
    "import json, sys\n"
    "mt = sys.modules.get('mt_present')\n"
    "print(json.dumps({'applied': mt.APPLIED if mt else None,\n"
    "  'modules': sorted(m for m in sys.modules if m.startswith(('mt_', 'opentelemetry.instr')))}))\n"
)


def _child_state(
    tmp_path: Path, *command: str, failing: bool = True, **env: str
) -> tuple[dict[str, object], str]:
    site = _site(tmp_path, failing)
    env = {"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "disabled_one", **env}
    env = base_env(tmp_path / "data", PYTHONPATH=str(site), **env)
    result = subprocess.run(
        [*command, sys.executable, "-c", STATE], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1]), result.stderr


def test_modeltel_run_loads_installed_instrumentors_through_its_own_hook(tmp_path: Path) -> None:
    state, stderr = _child_state(tmp_path, str(BIN / "modeltel"), "run", "--")
    modules = state["modules"]
    assert isinstance(modules, list)
    assert "opentelemetry.instrumentation.auto_instrumentation" not in modules
    assert "mt_present" in modules and state["applied"] == [[]]  # found, loaded and applied
    assert "mt_missing" not in modules  # its library is not installed: never imported
    assert "mt_disabled" not in modules  # OTEL_PYTHON_DISABLED_INSTRUMENTATIONS
    assert "mt_threading" not in modules  # skipped by name
    (line,) = [line for line in stderr.splitlines() if "failing" in line]
    assert "boom in instrument" in line and "mt_failing" in line
    assert "Traceback" not in stderr


def test_a_wildcard_disables_every_instrumentor(tmp_path: Path) -> None:
    state, stderr = _child_state(
        tmp_path, str(BIN / "modeltel"), "run", "--", OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=" other , *"
    )
    assert not [m for m in state["modules"] if str(m).startswith("mt_")]  # type: ignore[attr-defined]
    assert "failing" not in stderr


def test_opentelemetry_instrument_skips_threading_by_name_before_loading_it(tmp_path: Path) -> None:
    # (No failing instrumentor: the stock loader stops at the first one that raises.)
    state, _ = _child_state(tmp_path, str(BIN / "opentelemetry-instrument"), failing=False)
    modules = state["modules"]
    assert isinstance(modules, list)
    assert "mt_present" in modules and "mt_threading" not in modules


LOGGING_STATE = (
    "import json, logging\n"
    "from opentelemetry.instrumentation.logging import LoggingInstrumentor\n"
    "print(json.dumps([LoggingInstrumentor().is_instrumented_by_opentelemetry,\n"
    "  sorted(type(h).__name__ for h in logging.getLogger().handlers)]))\n"
)


def test_the_logging_instrumentor_loads_only_for_log_correlation_and_without_its_handler(
    tmp_path: Path,
) -> None:
    off = run_under_modeltel(tmp_path / "d", "-c", LOGGING_STATE)
    assert off.returncode == 0, off.stderr
    assert json.loads(off.stdout)[0] is False
    on = run_under_modeltel(tmp_path / "d", "-c", LOGGING_STATE, OTEL_PYTHON_LOG_CORRELATION="true")
    assert on.returncode == 0, on.stderr
    instrumented, handlers = json.loads(on.stdout)
    assert instrumented is True and "LoggingHandler" not in handlers


APP = textwrap.dedent(
    """
    import logging, os
    from opentelemetry import metrics, trace
    metrics.get_meter("a").create_counter("a.count").add(1)
    with trace.get_tracer("a").start_as_current_span("s"):
        logging.getLogger("a").warning("inside")
    print(os.getpid())
    """
)


def test_the_files_written_are_traces_metrics_logs_and_the_summary(tmp_path: Path) -> None:
    data = tmp_path / "d"
    result = run_under_modeltel(data, "-c", APP, OTEL_SERVICE_NAME="svc")
    assert result.returncode == 0, result.stderr
    pid = result.stdout.split()[-1]
    found = sorted(str(p.relative_to(data).parent.parent) for p in data.rglob("*.jsonl") if p.parent != data)
    assert found == ["logs", "metrics", "traces"]
    for path in data.rglob("*.jsonl"):
        if path.parent != data:
            name, file_pid, _start = path.stem.rsplit("-", 2)
            assert (name, file_pid) == ("svc", pid)
    assert sorted(p.name for p in data.iterdir()) == ["logs", "metrics", "summaries.jsonl", "traces"]


WORKER_STATE = """
import json, multiprocessing, sys

def state(_):
    from modeltel._internal.providers import current
    return {"configured": current() is not None, "instrumented": "mt_present" in sys.modules}

if __name__ == "__main__":
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        print(json.dumps(pool.map(state, [0])[0]))
"""


def test_a_spawned_worker_is_neither_configured_nor_instrumented_at_start(tmp_path: Path) -> None:
    site = _site(tmp_path, failing=False)
    app = tmp_path / "app.py"
    app.write_text(WORKER_STATE)
    result = run_under_modeltel(tmp_path / "d", str(app), PYTHONPATH=str(site))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"configured": False, "instrumented": False}
