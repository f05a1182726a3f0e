"""What ``import modeltel; modeltel.configure()`` loads, counted in a fresh interpreter.

Start-up is paid by every process (a sweep of 10,000 short runs pays it 10,000 times), so the
configuration imports only what it uses when it uses it: the settings are plain dataclasses, the
process summary is written as a plain dict (pydantic and the summary models are for readers), the
readers (numpy) never.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from otlp_files import base_env


def _loaded_by_configure(data_dir: Path) -> set[str]:
    code = "import sys, modeltel\nmodeltel.configure()\nprint('LOADED', *sorted(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], env=base_env(data_dir), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return set(result.stdout.rsplit("LOADED", 1)[1].split())


def test_configure_loads_no_reader_no_summary_model_and_no_pydantic(tmp_path: Path) -> None:
    loaded = _loaded_by_configure(tmp_path / "data")
    assert "opentelemetry.sdk.trace" in loaded  # it did configure
    heavy = ("numpy", "pydantic", "modeltel.read", "modeltel.store.schemas")
    unwanted = {m for m in loaded if m.startswith(heavy)}
    assert not unwanted, sorted(unwanted)


def test_configure_loads_no_instrumentation_base_and_scans_no_entry_points(tmp_path: Path) -> None:
    """Threads, the log bridge and the propagators are modeltel's or lazy: what these packages
    would cost (BaseInstrumentor with wrapt, packaging and asyncio; importlib.metadata's scan of every
    installed distribution) is ~100 ms of each start, more than the rest of configure() together."""
    loaded = _loaded_by_configure(tmp_path / "data")
    # The log file is on by default: the bridge is installed; the logs SDK waits for a first record.
    assert "modeltel._internal.logs" in loaded and "opentelemetry.sdk._logs" not in loaded
    heavy = (
        "opentelemetry.instrumentation",
        "wrapt",
        "packaging",
        "asyncio",
        "importlib.metadata",
        "opentelemetry.util._importlib_metadata",
        "opentelemetry.propagate",
    )
    unwanted = {m for m in loaded if m.startswith(heavy)}
    assert not unwanted, sorted(unwanted)


EXIT_APP = """
import atexit, os, sys
def report():  # registered before configure(): atexit runs it after modeltel's shutdown
    written = os.path.exists(os.path.join(os.environ["MODELTEL_DATA_DIR"], "summaries.jsonl"))
    print("SUMMARY", written, "LOADED", *sorted(sys.modules), flush=True)
atexit.register(report)
from opentelemetry import trace
import modeltel
modeltel.configure()
tracer = trace.get_tracer("t")
for i in range(50):
    with tracer.start_as_current_span("step") as span:
        span.set_attribute("loss", i / 3)
"""


def test_neither_configure_nor_the_exit_that_writes_the_summary_imports_pydantic(tmp_path: Path) -> None:
    """Importing pydantic and building the models costs ~165 ms: paid at exit it held a short
    app's end up, and paid on a helper thread it cost every process of a job array that CPU."""
    env = base_env(tmp_path / "data", OTEL_TRACES_EXPORTER="jsonl", OTEL_METRICS_EXPORTER="jsonl")
    command = [sys.executable, "-c", EXIT_APP]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    written, loaded = result.stdout.rsplit("SUMMARY", 1)[1].split("LOADED")
    assert written.split() == ["True"]  # the summary was written before the modules were listed
    unwanted = {m for m in loaded.split() if m.startswith(("pydantic", "modeltel.store.schemas"))}
    assert not unwanted, sorted(unwanted)


def test_the_parent_of_modeltel_run_validates_without_pydantic_or_semconv(tmp_path: Path) -> None:
    """It checks the environment (exit 2 on a bad variable) and execs the program, which
    configures itself: what it imports for that is paid twice per ``modeltel run``."""
    code = (
        "import os, sys\nfrom modeltel.cli.run import child_environment\n"
        "from modeltel._internal.config import load_settings\n"
        "load_settings(child_environment(dict(os.environ), None, None), strict=True)\n"
        "print('LOADED', *sorted(sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=base_env(tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    loaded = set(result.stdout.rsplit("LOADED", 1)[1].split())
    unwanted = {m for m in loaded if m.startswith(("pydantic", "opentelemetry.semconv", "opentelemetry.sdk"))}
    assert not unwanted, sorted(unwanted)
