"""Start-up cost of the CLI, ``configure()`` and ``modeltel run``, against a bare interpreter.

Run by hand (``.venv/bin/python bench/startup.py [--repeats N]``). A report, never a test: it prints
a table and exits 0 whatever the numbers are.

Start-up is paid once per process, so every sample is a fresh process. The cases are interleaved
(one of each, then again), so load from other work on the shared machine hits every case alike, and
each row is the median of the repeats. Ratios and differences are to ``python -c pass``; the
``configure()`` row is also compared with importing the SDK's trace and metrics packages, the floor
any OpenTelemetry tracing pays.

The exit rows time a 50-span app from its last line to the end of its process: with the local copy
only, and with traces and metrics also going to an OTLP endpoint that refuses connections (a port
bound and never listened on), over gRPC and OTLP/HTTP.

``--before SRC`` runs every case a second time with ``PYTHONPATH=SRC`` (a ``src`` tree of an older
commit, e.g. ``git archive <commit> src | tar -x -C /tmp/before``), interleaved with the current
tree, so both columns are measured under the same load.
"""

from __future__ import annotations

import argparse
import os
import socket
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


EXIT_APP = """
import time
from opentelemetry import metrics, trace
import modeltel
modeltel.configure()
tracer = trace.get_tracer("exit")
done = metrics.get_meter("exit").create_counter("work.done")
for i in range(50):
    with tracer.start_as_current_span("step"):
        done.add(1)
print(time.time(), flush=True)
"""
"""The exit rows' app: prints the wall time of its last line."""
EXIT_ROW = "exit after the last line"


def exit_cases(endpoint: str) -> tuple[tuple[str, list[str], dict[str, str]], ...]:
    app = [PYTHON, "-c", EXIT_APP]
    remote = {"OTEL_TRACES_EXPORTER": "otlp,jsonl", "OTEL_METRICS_EXPORTER": "otlp,jsonl"}
    remote["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    return (
        (f"{EXIT_ROW}: jsonl only", app, {"OTEL_TRACES_EXPORTER": "jsonl", "OTEL_METRICS_EXPORTER": "jsonl"}),
        (f"{EXIT_ROW}: + otlp refused, grpc", app, remote | {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}),
        (
            f"{EXIT_ROW}: + otlp refused, http",
            app,
            remote | {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
        ),
    )


def sample(name: str, argv: list[str], env: dict[str, str]) -> float:
    """Wall seconds for one fresh process, start to exit (exit rows: from its last line to exit)."""
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if name.startswith(EXIT_ROW):
        return time.time() - float(result.stdout.split()[-1])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--before", metavar="SRC", help="also run every case with PYTHONPATH=SRC")
    options = parser.parse_args()
    repeats = max(7, options.repeats)
    trees = {"now": None} if options.before is None else {"before": options.before, "now": None}
    print(describe())
    with tempfile.TemporaryDirectory() as data_dir, socket.socket() as refused:
        refused.bind(("127.0.0.1", 0))  # bound, never listening: every connection is refused
        cases = (*CASES, *exit_cases(f"http://127.0.0.1:{refused.getsockname()[1]}"))
        base = {k: v for k, v in os.environ.items() if not k.startswith(("MODELTEL_", "OTEL_"))}
        # .pyc files as an installed package has them: without, every case compiles modeltel's
        # sources (an editable install's) each time while the SDK's were compiled by pip.
        base.pop("PYTHONDONTWRITEBYTECODE", None)
        base["MODELTEL_DATA_DIR"] = data_dir
        envs = {tree: base if src is None else base | {"PYTHONPATH": src} for tree, src in trees.items()}
        times: dict[tuple[str, str], list[float]] = {(t, n): [] for n, _, _ in cases for t in trees}
        for name, argv, extra in cases:  # warm the page cache and .pyc files; not counted
            for env in envs.values():
                sample(name, argv, env | extra)
        for _ in range(repeats):
            for name, argv, extra in cases:
                for tree, env in envs.items():
                    times[tree, name].append(sample(name, argv, env | extra))
    medians = {key: statistics.median(samples) for key, samples in times.items()}
    print(f"\nmedian of {repeats} fresh processes per case, interleaved\n")
    for tree in trees:
        bare = medians[tree, "python -c pass"]
        sdk = medians[tree, "import SDK trace + metrics"]
        if len(trees) > 1:
            print(f"{tree} ({trees[tree] or 'this tree'}):\n")
        print("| case | median | minus `python -c pass` | ratio to it | ratio to SDK import |")
        print("|---|---:|---:|---:|---:|")
        for name, _, _ in cases:
            median = medians[tree, name]
            if name.startswith(EXIT_ROW):
                print(f"| `{name}` | {median * 1e3:.0f} ms | | | |")
                continue
            print(
                f"| `{name}` | {median * 1e3:.0f} ms | {(median - bare) * 1e3:+.0f} ms "
                f"| {median / bare:.1f} | {median / sdk:.2f} |"
            )
        print()


if __name__ == "__main__":
    main()
