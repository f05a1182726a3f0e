"""`make demo` works on a fresh checkout: it creates its own venv, installs modeltel, runs the demo.

(`make test` is proven by `.ci/run` itself, which runs it on a clean clone.)
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from otlp_files import REPO, spans, summaries

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def test_make_demo_on_a_fresh_checkout(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in tracked:
        source = REPO / name
        if source.is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, checkout / name)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path)}
    python = shutil.which("python3")
    assert python is not None
    result = subprocess.run(
        ["make", "demo", f"PYTHON={python}"],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (checkout / ".venv" / "bin" / "modeltel").exists()
    assert "simulation.run" in result.stdout and "calibration.iteration" in result.stdout
    data = checkout / "modeltel-data"
    names = {s.name for s, _, _ in spans(data)}
    assert {"simulation.job", "calibration.job", "inference.predict"} <= names
    assert {s["kind"] for s in summaries(data)} >= {"simulation", "calibration", "inference"}
