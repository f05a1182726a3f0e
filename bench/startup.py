"""Start-up cost of the CLI, ``configure()`` and ``modeltel run``, against a bare interpreter and stock OTel.

Run by hand (``.venv/bin/python bench/startup.py [--repeats N] [--only SUBSTRING] [--before SRC]``).
A report, never a test: it prints a table and exits 0 whatever the numbers are.

Start-up is paid once per process, so every sample is a fresh process. The cases are interleaved
(one of each, then again), so load from other work on the shared machine hits every case alike, and
each row is the median of the repeats. Each row is compared with its base (``python -c pass``, or
the same program run plainly): the time it adds and its ratio. ``configure()`` is also compared with
importing the SDK's trace and metrics packages, the floor any OpenTelemetry tracing pays;
``modeltel show`` reads a data dir holding one trace of four spans, written once per bench run by a
tiny app under ``configure()``.

``modeltel run`` is compared with stock ``opentelemetry-instrument`` (``opentelemetry-distro``) from
a venv of its own (``stock_venv.py``: built on first use under ``--stock-venv``, every OpenTelemetry
package at the version modeltel's venv has, the same instrumentations installed). Stock does
comparable work: console exporters for traces, metrics and logs (``OTEL_*_EXPORTER=console``,
stdout and stderr to /dev/null), no OTLP, so no network on either side. Its base is the stock
venv's own ``python``, so each side's added time is its own instrumentation's; the compared column
is modeltel's added time over stock's. ``python -c pass`` is also run under stock as installed (its
OTLP exporters, pointed at a port nothing listens on: that program sends nothing), which imports
the gRPC exporters the console rows do not. Three programs: ``python -c pass``; ``work.py``, one span,
one counter point and one log record through the plain OpenTelemetry API; and ``pool.py``, a spawn
``multiprocessing`` pool of 10 workers mapping ``abs`` over ``range(10)``, whose workers start
instrumented too. Every modeltel sample gets a fresh data dir; after each ``work.py`` and exit
sample the bench checks that the files of that run exist (traces, metrics and, for ``work.py``,
logs), so a fast row never comes from writing less, and prints a line when one is missing.
``python -c pass`` and the pool make no telemetry, so there is nothing to check for them.

The exit rows time a 50-span app from its last line to the end of its process: with the local copy
only, and with traces and metrics also going to an OTLP endpoint that refuses connections (a port
bound and never listened on), over gRPC and OTLP/HTTP.

``--before SRC`` runs every case that runs modeltel a second time with ``PYTHONPATH=SRC`` (a ``src``
tree of an older commit, e.g. ``git archive <commit> src | tar -x -C /tmp/before``), interleaved
with the current tree, so both columns are measured under the same load; the cases without modeltel
(bare interpreters, stock) are measured once and shown in both. The older tree's ``show`` reads the
data dir the current tree wrote (the format is the contract). ``--only SUBSTRING`` runs the rows
whose name holds it, plus the rows they are compared with.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stock_venv
from machine import describe

PYTHON = sys.executable
MODELTEL = str(Path(PYTHON).with_name("modeltel"))
BARE = "python -c pass"
SDK_IMPORT = "import SDK trace + metrics"
STOCK_BARE = "stock venv: python -c pass"
STOCK_DEFAULTS = "stock opentelemetry-instrument python -c pass, its OTLP defaults"
"""The distro's own exporters (OTLP over gRPC, all three signals) to a port nothing listens on:
``-c pass`` records nothing, so nothing is sent, and the row is what stock costs as installed."""
STOCK_EXPORTERS = {
    "OTEL_TRACES_EXPORTER": "console",
    "OTEL_METRICS_EXPORTER": "console",
    "OTEL_LOGS_EXPORTER": "console",
}
EXIT_ROW = "exit after the last line"
TIMES = "\N{MULTIPLICATION SIGN}"

WORK_APP = """
import logging
from opentelemetry import metrics, trace
with trace.get_tracer("bench").start_as_current_span("work"):
    metrics.get_meter("bench").create_counter("work.done").add(1)
    logging.getLogger("bench").warning("one record")
"""
"""``work.py``: one record of each signal through the plain API, so stock and modeltel run it alike."""

POOL_APP = """
import multiprocessing
if __name__ == "__main__":
    pool = multiprocessing.get_context("spawn").Pool(10)
    pool.map(abs, range(10))
    pool.close()
    pool.join()
"""
"""``pool.py``: a file, not ``-c``, so the spawned workers import ``__main__`` as a real app does."""

SHOW_APP = """
from opentelemetry import trace
import modeltel
modeltel.configure()
tracer = trace.get_tracer("bench")
with tracer.start_as_current_span("job"):
    for _ in range(3):
        with tracer.start_as_current_span("step"):
            pass
"""
"""Writes the one small trace ``modeltel show`` reads."""

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


@dataclass(frozen=True)
class Case:
    """One row: a command, run in a fresh process per sample."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    base: str | None = BARE
    """The row its added time and ratio are to; None for the exit rows, timed from their last line."""
    shared: bool = False
    """Runs no modeltel: measured once per round and shown for every tree."""
    expect: tuple[str, ...] = ()
    """Signals that must have a non-empty file in the sample's data dir."""
    compare: tuple[tuple[str, str, str], ...] = ()
    """(row, "added" or "median", label) each: this row's added time (or median) over that row's."""
    target: str = ""


def cases(stock: Path, work_dir: Path, show_dir: Path, endpoint: str) -> tuple[Case, ...]:
    """Every row, in print order; ``stock`` is the stock venv's ``bin``, which may not exist yet."""
    work, pool = str(work_dir / "work.py"), str(work_dir / "pool.py")
    stock_python, instrument = str(stock / "python"), str(stock / "opentelemetry-instrument")
    run = [MODELTEL, "run", "--", PYTHON]
    help_target = "≤ +60 ms"
    jsonl = {"OTEL_TRACES_EXPORTER": "jsonl", "OTEL_METRICS_EXPORTER": "jsonl"}
    remote = {"OTEL_TRACES_EXPORTER": "otlp,jsonl", "OTEL_METRICS_EXPORTER": "otlp,jsonl"}
    remote["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    refused = "≤ 1 s beyond the JSONL flush"
    exit_app = [PYTHON, "-c", EXIT_APP]
    signals = ("traces", "metrics")
    return (
        Case(BARE, [PYTHON, "-c", "pass"], base=None, shared=True),
        Case(
            SDK_IMPORT,
            [PYTHON, "-c", "import opentelemetry.sdk.trace, opentelemetry.sdk.metrics"],
            shared=True,
        ),
        Case("modeltel --help", [MODELTEL, "--help"], target=help_target),
        Case("modeltel show --help", [MODELTEL, "show", "--help"], target=help_target),
        Case("modeltel run --help", [MODELTEL, "run", "--help"], target=help_target),
        Case(
            "modeltel show (one trace, 4 spans)",
            [MODELTEL, "show", "--data-dir", str(show_dir)],
            target="≤ 150 ms",
        ),
        Case(
            "import modeltel; configure()",
            [PYTHON, "-c", "import modeltel; modeltel.configure()"],
            compare=((SDK_IMPORT, "median", "SDK import"),),
            target=f"≤ 1.3{TIMES} SDK import",
        ),
        Case(
            "MODELTEL_ENABLED=false modeltel run -- python -c pass",
            [*run, "-c", "pass"],
            {"MODELTEL_ENABLED": "false"},
            target="≤ +40 ms",
        ),
        Case(STOCK_BARE, [stock_python, "-c", "pass"], shared=True),
        Case(
            "stock opentelemetry-instrument python -c pass",
            [instrument, stock_python, "-c", "pass"],
            STOCK_EXPORTERS,
            base=STOCK_BARE,
            shared=True,
        ),
        Case(
            STOCK_DEFAULTS,
            [instrument, stock_python, "-c", "pass"],
            {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint},
            base=STOCK_BARE,
            shared=True,
        ),
        Case(
            "modeltel run -- python -c pass",
            [*run, "-c", "pass"],
            compare=(
                ("stock opentelemetry-instrument python -c pass", "added", "stock's added"),
                (STOCK_DEFAULTS, "added", "stock's added with its OTLP defaults"),
            ),
            target=f"≤ +250 ms; ≤ 0.4 {TIMES} stock's added",
        ),
        Case("python work.py", [PYTHON, work], shared=True),
        Case("stock venv: python work.py", [stock_python, work], base=STOCK_BARE, shared=True),
        Case(
            "stock opentelemetry-instrument python work.py",
            [instrument, stock_python, work],
            STOCK_EXPORTERS,
            base="stock venv: python work.py",
            shared=True,
        ),
        Case(
            "modeltel run -- python work.py",
            [*run, work],
            base="python work.py",
            expect=("traces", "metrics", "logs"),
            compare=(("stock opentelemetry-instrument python work.py", "added", "stock's added"),),
        ),
        Case("python pool.py", [PYTHON, pool], shared=True),
        Case("stock venv: python pool.py", [stock_python, pool], base=STOCK_BARE, shared=True),
        Case(
            "stock opentelemetry-instrument python pool.py",
            [instrument, stock_python, pool],
            STOCK_EXPORTERS,
            base="stock venv: python pool.py",
            shared=True,
        ),
        Case(
            "modeltel run -- python pool.py",
            [*run, pool],
            base="python pool.py",
            compare=(("stock opentelemetry-instrument python pool.py", "added", "stock's added"),),
            target=f"≤ 1.5{TIMES} plain",
        ),
        Case(f"{EXIT_ROW}: jsonl only", exit_app, jsonl, base=None, expect=signals, target="≤ 100 ms"),
        Case(
            f"{EXIT_ROW}: + otlp refused, grpc",
            exit_app,
            remote | {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            base=None,
            expect=signals,
            target=refused,
        ),
        Case(
            f"{EXIT_ROW}: + otlp refused, http",
            exit_app,
            remote | {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
            base=None,
            expect=signals,
            target=refused,
        ),
    )


def select(every: tuple[Case, ...], only: str | None) -> tuple[Case, ...]:
    """The rows whose name holds ``only``, with the rows their numbers are relative to."""
    if only is None:
        return every
    by_name = {case.name: case for case in every}
    wanted = {case.name for case in every if only in case.name}
    pending = list(wanted)
    while pending:
        case = by_name[pending.pop()]
        for needed in (case.base, *(other for other, _, _ in case.compare)):
            if needed is not None and needed not in wanted:
                wanted.add(needed)
                pending.append(needed)
    return tuple(case for case in every if case.name in wanted)


def missing_signals(data_dir: Path, signals: tuple[str, ...]) -> list[str]:
    return [s for s in signals if not any(p.stat().st_size for p in (data_dir / s).glob("*/*.jsonl"))]


def sample(case: Case, env: dict[str, str], root: Path, label: str) -> float:
    """Wall seconds for one fresh process, start to exit (exit rows: from its last line to exit)."""
    data_dir = Path(tempfile.mkdtemp(dir=root))
    is_exit = case.name.startswith(EXIT_ROW)
    start = time.perf_counter()
    result = subprocess.run(
        case.argv,
        env=env | case.env | {"MODELTEL_DATA_DIR": str(data_dir)},
        cwd=root,
        stdout=subprocess.PIPE if is_exit else subprocess.DEVNULL,
        stderr=subprocess.DEVNULL if case.shared else subprocess.PIPE,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    end = time.time()
    if result.returncode != 0:
        print(f"`{case.name}` ({label}) exited {result.returncode}: {(result.stderr or '')[-300:]}")
    if missing := missing_signals(data_dir, case.expect):
        print(f"`{case.name}` ({label}) wrote no {', '.join(missing)} file")
    shutil.rmtree(data_dir)
    if result.returncode != 0:
        return math.nan  # a crash is no start-up time: the row shows the samples that ran
    if not is_exit:
        return elapsed
    try:
        return end - float(result.stdout.split()[-1])
    except (IndexError, ValueError):
        return math.nan


def median(samples: list[float]) -> float:
    """NaN for a row whose every sample failed; a failed sample (NaN) is dropped otherwise."""
    good = [s for s in samples if not math.isnan(s)]
    return statistics.median(good) if good else math.nan


def write_show_dir(show_dir: Path, env: dict[str, str], root: Path) -> None:
    """The data dir ``modeltel show`` reads, written by this tree once per bench run."""
    app = [PYTHON, "-c", SHOW_APP]
    extra = {"MODELTEL_DATA_DIR": str(show_dir), "OTEL_SERVICE_NAME": "bench"}
    subprocess.run(app, env=env | extra, cwd=root, check=False, capture_output=True)
    if missing_signals(show_dir, ("traces",)):
        print(f"the data dir for `modeltel show` has no trace file: {show_dir}")


def table(tree: str, cases: tuple[Case, ...], medians: dict[tuple[str, str], float]) -> None:
    def added(name: str) -> float:
        base = by_name[name].base
        return medians[tree, name] - medians[tree, base] if base else math.nan

    by_name = {case.name: case for case in cases}
    print("| case | median | base | added to base | ratio to base | compared | target |")
    print("|---|---:|---|---:|---:|---|---|")
    for case in cases:
        value = medians[tree, case.name]
        cells = [f"`{case.name}`", f"{value * 1e3:,.0f} ms", "", "", ""]
        if case.base:
            base = medians[tree, case.base]
            cells[2:] = [f"`{case.base}`", f"{(value - base) * 1e3:+,.0f} ms", f"{value / base:.2f}{TIMES}"]
        ratios = []
        for other, how, label in case.compare:
            ratio = added(case.name) / added(other) if how == "added" else value / medians[tree, other]
            ratios.append(f"{ratio:.2f} {TIMES} {label}")
        compared = "; ".join(ratios)
        print("| " + " | ".join([*cells, compared, case.target]) + " |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--before", metavar="SRC", help="also run every modeltel case with PYTHONPATH=SRC")
    parser.add_argument("--only", metavar="SUBSTRING", help="only the rows whose name holds SUBSTRING")
    parser.add_argument(
        "--stock-venv",
        metavar="DIR",
        type=Path,
        default=Path(tempfile.gettempdir()) / "modeltel-bench-stock-venv",
        help="where the stock opentelemetry-distro venv is kept (built on first use)",
    )
    options = parser.parse_args()
    repeats = max(1, options.repeats)
    trees = (
        {"now": None} if options.before is None else {"before": os.path.abspath(options.before), "now": None}
    )
    print(describe())
    stock = options.stock_venv.resolve() / "bin"
    with tempfile.TemporaryDirectory() as scratch, socket.socket() as refused:
        root = Path(scratch)
        refused.bind(("127.0.0.1", 0))  # bound, never listening: every connection is refused
        show_dir = root / "show-data"
        endpoint = f"http://127.0.0.1:{refused.getsockname()[1]}"
        selected = select(cases(stock, root, show_dir, endpoint), options.only)
        if any(str(stock) in " ".join(case.argv) for case in selected):
            stock_venv.ensure(options.stock_venv.resolve())
        (root / "work.py").write_text(WORK_APP)
        (root / "pool.py").write_text(POOL_APP)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("MODELTEL_", "OTEL_"))}
        # .pyc files as an installed package has them: without, every case compiles modeltel's
        # sources (an editable install's) each time while the SDK's were compiled by pip.
        base.pop("PYTHONDONTWRITEBYTECODE", None)
        envs = {tree: base if src is None else base | {"PYTHONPATH": src} for tree, src in trees.items()}
        if any(str(show_dir) in case.argv for case in selected):
            write_show_dir(show_dir, base, root)
        times: dict[tuple[str, str], list[float]] = {(t, c.name): [] for c in selected for t in trees}
        for counted in (False, *[True] * repeats):  # the first round warms the page cache and .pyc files
            for case in selected:
                for tree, env in envs.items():
                    seconds = sample(case, env, root, tree)
                    if counted:
                        for each in trees if case.shared else (tree,):
                            times[each, case.name].append(seconds)
                    if case.shared:  # one sample stands for every tree
                        break
    medians = {key: median(samples) for key, samples in times.items()}
    print(f"\nmedian of {repeats} fresh processes per case, interleaved\n")
    for tree in trees:
        if len(trees) > 1:
            print(f"{tree} ({trees[tree] or 'this tree'}):\n")
        table(tree, selected, medians)
    print("load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg()) + " at end")


if __name__ == "__main__":
    main()
