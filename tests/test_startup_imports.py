"""What ``import modeltel; modeltel.configure()`` loads, counted in a fresh interpreter.

Start-up is paid by every process (a sweep of 10,000 short runs pays it 10,000 times), so the
configuration imports only what it uses when it uses it: the settings are plain dataclasses, the
summary models (pydantic) load when a summary is written, the readers (numpy) never.
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


WARMED = """
import sys, time
from opentelemetry import trace
import modeltel
modeltel.configure()
with trace.get_tracer("t").start_as_current_span("first"):
    pass
deadline = time.monotonic() + 20
while "modeltel.store.schemas" not in sys.modules and time.monotonic() < deadline:
    time.sleep(0.01)
print("WARMED", "modeltel.store.schemas" in sys.modules)
"""


def test_the_first_span_imports_the_summary_models_while_the_app_runs(tmp_path: Path) -> None:
    """They are needed for the summary written at exit; imported then, they would hold the exit up."""
    env = base_env(tmp_path / "data")
    command = [sys.executable, "-c", WARMED]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "WARMED True" in result.stdout


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
