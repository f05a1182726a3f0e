"""Start-up cost of the CLI, ``configure()`` and ``modeltel run``, against a bare interpreter.

Run by hand (``.venv/bin/python bench/startup.py [--repeats N]``). A report, never a test: it prints
a table and exits 0 whatever the numbers are.

Start-up is paid once per process, so every sample is a fresh process. The cases are interleaved
(one of each, then again), so load from other work on the shared machine hits every case alike, and
each row is the median of the repeats. Ratios and differences are to ``python -c pass``; the
``configure()`` row is also compared with importing the SDK's trace and metrics packages, the floor
any OpenTelemetry tracing pays.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe

PYTHON = sys.executable
MODELTEL = str(Path(PYTHON).with_name("modeltel"))

CASES: tuple[tuple[str, list[str], dict[str, str]], ...] = (
    ("python -c pass", [PYTHON, "-c", "pass"], {}),
    (
        "import SDK trace + metrics",
        [PYTHON, "-c", "import opentelemetry.sdk.trace, opentelemetry.sdk.metrics"],
        {},
    ),
    ("modeltel --help", [MODELTEL, "--help"], {}),
    ("modeltel show --help", [MODELTEL, "show", "--help"], {}),
    ("modeltel run --help", [MODELTEL, "run", "--help"], {}),
    ("import modeltel; configure()", [PYTHON, "-c", "import modeltel; modeltel.configure()"], {}),
    ("modeltel run -- python -c pass", [MODELTEL, "run", "--", PYTHON, "-c", "pass"], {}),
    (
        "MODELTEL_ENABLED=false modeltel run -- …",
        [MODELTEL, "run", "--", PYTHON, "-c", "pass"],
        {"MODELTEL_ENABLED": "false"},
    ),
)


def sample(argv: list[str], env: dict[str, str]) -> float:
    """Wall seconds for one fresh process, start to exit."""
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=7)
    repeats = max(7, parser.parse_args().repeats)
    print(describe())
    with tempfile.TemporaryDirectory() as data_dir:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("MODELTEL_", "OTEL_"))}
        base["MODELTEL_DATA_DIR"] = data_dir
        times: dict[str, list[float]] = {name: [] for name, _, _ in CASES}
        for _name, argv, extra in CASES:  # warm the page cache and .pyc files; not counted
            sample(argv, base | extra)
        for _ in range(repeats):
            for name, argv, extra in CASES:
                times[name].append(sample(argv, base | extra))
    medians = {name: statistics.median(samples) for name, samples in times.items()}
    bare = medians["python -c pass"]
    sdk = medians["import SDK trace + metrics"]
    print(f"\nmedian of {repeats} fresh processes per case, interleaved\n")
    print("| case | median | minus `python -c pass` | ratio to it | ratio to SDK import |")
    print("|---|---:|---:|---:|---:|")
    for name, median in medians.items():
        print(
            f"| `{name}` | {median * 1e3:.0f} ms | {(median - bare) * 1e3:+.0f} ms "
            f"| {median / bare:.1f} | {median / sdk:.2f} |"
        )


if __name__ == "__main__":
    main()
