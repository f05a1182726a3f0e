"""Stock ``opentelemetry-instrument`` for bench/startup.py: ``opentelemetry-distro`` in a venv of its own.

A venv of its own, because in modeltel's venv the stock command would find modeltel's distro and
configurator through their entry points and measure modeltel again. Every OpenTelemetry package it
holds is pinned to the version modeltel's venv has (the instrumentations included, and the wrapt,
packaging and typing_extensions they import), so what differs between the two is modeltel's own
work, not a newer SDK. Built on first use (about 10 s from PyPI) and kept: a stamp file lists the
pins it was built with, and a venv whose stamp differs is built again.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
from pathlib import Path

CORE = (
    "opentelemetry-api",
    "opentelemetry-sdk",
    "opentelemetry-instrumentation",
    "opentelemetry-semantic-conventions",
)
"""What ``opentelemetry-distro`` runs on; the instrumentations are found by name."""
DEPENDENCIES = ("wrapt", "packaging", "typing_extensions")
"""What the instrumentations import at start-up: a different version would time differently."""
STAMP = "modeltel-bench-pins.txt"


def requirements() -> list[str]:
    """``name==version`` for the stock venv, read from the interpreter running the bench."""
    installed = {
        dist.metadata["Name"].lower().replace("_", "-"): dist.version
        for dist in importlib.metadata.distributions()
    }
    names = [*CORE, *sorted(n for n in installed if n.startswith("opentelemetry-instrumentation-"))]
    names += [n for n in DEPENDENCIES if n.replace("_", "-") in installed]
    pins = [f"{name}=={installed[name.replace('_', '-')]}" for name in names]
    # opentelemetry-distro is released with the instrumentations, under the same version.
    return [f"opentelemetry-distro=={installed['opentelemetry-instrumentation']}", *pins]


def ensure(directory: Path) -> Path:
    """The stock venv's ``bin`` directory, building the venv first if it is missing or stale."""
    pins = requirements()
    stamp = directory / STAMP
    if stamp.exists() and stamp.read_text().split() == pins:
        return directory / "bin"
    print(f"building the stock venv in {directory}: {' '.join(pins)}", flush=True)
    shutil.rmtree(directory, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(directory)], check=True)
    pip = [
        str(directory / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ]
    subprocess.run([*pip, *pins], check=True)
    stamp.write_text("\n".join(pins) + "\n")  # last: an interrupted build has none and is redone
    return directory / "bin"
