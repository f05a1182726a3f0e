"""The header every bench prints: which machine and which versions produced its numbers.

A median means little without the CPU, the usable cores and the load it was measured under, so
every bench reports them the same way.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
from collections.abc import Iterable


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def describe(packages: Iterable[str] = ("opentelemetry-sdk", "modeltel")) -> str:
    """Two lines: CPU, cores (usable), OS and load average now; Python and ``packages`` versions."""
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    versions = ", ".join(f"{name} {importlib.metadata.version(name)}" for name in packages)
    return (
        f"machine: {cpu_model()}, {cores} cores ({usable} usable), {platform.system()} "
        f"{platform.release()}, load average {load} at start\n"
        f"python:  {platform.python_implementation()} {platform.python_version()}; {versions}"
    )
