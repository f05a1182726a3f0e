"""``modeltel demo [--data-dir D] [--workers N]``: run the bundled example and print its summary.

Telemetry is configured from the environment as usual (``--data-dir`` overrides
``MODELTEL_DATA_DIR``); the service name defaults to ``modeltel-demo``. With ``--workers N`` (N ≥ 2)
the sweep and the calibration's evaluations run on a spawn-started process pool of N workers, each
writing its own file of the same run. The tables are read back from the files this run wrote (every
process's trace file and the run's lines in ``summaries.jsonl``), so what is printed is what is on
disk.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import IO, Any

from modeltel.config import ConfigError, load_settings
from modeltel.read.files import trace_files
from modeltel.read.query import aggregate, warn_bad_line
from modeltel.read.reports import NameRow, name_rows
from modeltel.read.scan import Query
from modeltel.store.layout import DataDir

DEFAULT_SERVICE = "modeltel-demo"
MAX_WORKERS = 64


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the bundled example and print its summary",
        description="Run a simulation sweep, a calibration, a classifier and LLM-style calls with "
        "telemetry on, then print the per-span and per-job summary read back from the files.",
    )
    parser.add_argument("--data-dir", type=Path, help="where JSONL goes (default: MODELTEL_DATA_DIR)")
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="worker processes for the sweep and the calibration's evaluations (0 or 1: in this process)",
    )
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if not 0 <= args.workers <= MAX_WORKERS:
        print(f"modeltel demo: --workers {args.workers}: expected 0 to {MAX_WORKERS}", file=sys.stderr)
        return 2
    try:
        settings = load_settings(strict=True)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"modeltel demo: {problem}", file=sys.stderr)
        return 2
    if not settings.enabled:
        print("modeltel demo: telemetry is disabled (MODELTEL_ENABLED / OTEL_SDK_DISABLED)", file=sys.stderr)
        return 2
    if not settings.jsonl:
        print("modeltel demo: MODELTEL_JSONL=false, so there are no files to summarise", file=sys.stderr)
        return 2
    overrides: dict[str, Any] = {}
    if args.data_dir is not None:
        overrides["data_dir"] = args.data_dir
    if settings.service_name is None:
        overrides["service_name"] = DEFAULT_SERVICE

    import modeltel
    from modeltel import demo
    from modeltel.inference import enable_process_metrics

    handle = modeltel.configure(**overrides)
    exporter = handle.jsonl_span_exporter
    if not handle.enabled or exporter is None:
        print("modeltel demo: telemetry could not be set up (see the log above)", file=sys.stderr)
        return 1
    enable_process_metrics()
    started = time.perf_counter()
    if args.workers >= 2:
        with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            demo.run_all(pool, args.workers)
    else:
        demo.run_all()
    elapsed = time.perf_counter() - started
    handle.shutdown()  # flush: spans, metrics and summary lines are on disk from here on
    data_dir, run_id = handle.settings.data_dir, handle.settings.run_id
    run_files = _run_trace_files(data_dir, run_id, own=exporter.file.path)
    summaries = DataDir(data_dir).summaries
    jobs = [s for s in _summaries(summaries, run_id) if s["kind"] != "process"]
    print(f"modeltel demo: ran in {elapsed:.1f} s; run id {run_id}")
    for path in run_files:
        print(f"  traces:    {path}")
    print(f"  summaries: {summaries}")
    print()
    table = aggregate(run_files, Query(), workers=1, on_bad_line=warn_bad_line).table
    print_summary(name_rows(table), jobs, sys.stdout)
    return 0


def _run_trace_files(data_dir: Path, run_id: str, own: Path | None) -> list[Path]:
    """This process's trace file first, then its pool workers' files: every file of the data dir
    whose first line's resource names this run id (workers share the run id, not the pid)."""
    marker = json.dumps(run_id).encode()
    own = own.resolve() if own is not None else None
    found = [own] if own is not None else []
    for path in trace_files([], data_dir):
        if path == own:
            continue
        with open(path, "rb") as lines:
            if marker in lines.readline():
                found.append(path)
    return found


def _summaries(path: Path, run_id: str) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            summary = json.loads(line)
        except json.JSONDecodeError:
            continue
        if summary.get("run_id") == run_id:
            found.append(summary)
    return found


def _job_details(job: dict[str, Any]) -> str:
    if job.get("calibration"):
        cal = job["calibration"]
        phases = ", ".join(f"{k} {v:.3f} s" for k, v in cal["phase_seconds"].items())
        best = cal["best_loss"]
        best_text = (
            "no loss told" if best is None else f"best loss {best:.3g} after {cal['iterations_to_best']}"
        )
        return f"{best_text} of {cal['iterations']} iterations; {phases}"
    if job.get("quality"):
        q = job["quality"]
        parts = [f"{q['predictions']} predictions"]
        if q["confidence_mean"] is not None:
            parts.append(f"confidence mean {q['confidence_mean']:.3f} p5 {q['confidence_p5']:.3f}")
        if q["reject_rate"] is not None:
            parts.append(f"reject rate {q['reject_rate']:.1%}")
        if q["entropy_mean"] is not None:
            parts.append(f"entropy {q['entropy_mean']:.3f} nats")
        if q["feature_missingness"]:
            worst, rate = next(iter(q["feature_missingness"].items()))
            parts.append(f"most missing feature {worst} ({rate:.1%})")
        return ", ".join(parts)
    by_name = job.get("by_name", {})
    runs = by_name.get("simulation.run")
    if runs:
        numeric = job.get("numeric", {})
        hits = ""
        if "modeltel.simulation.peak_infected" in numeric:
            hits = f", peak infected mean {numeric['modeltel.simulation.peak_infected']['mean']:.3f}"
        return f"{runs['count']} runs, {runs['errors']} failed{hits}"
    return ""


def print_summary(rows: Iterable[NameRow], jobs: list[dict[str, Any]], out: IO[str]) -> None:
    """The per-span-name table (count, errors, total, mean, p50, p95, max) and the job table."""
    columns = ("total s", "mean ms", "p50 ms", "p95 ms", "max ms")
    header = f"{'span':<24} {'count':>7} {'errors':>6} " + " ".join(f"{c:>9}" for c in columns)
    print(header, file=out)
    print("-" * len(header), file=out)
    for row in sorted(rows, key=lambda r: r.name):
        print(
            f"{row.name:<24} {row.count:>7} {row.errors:>6} {row.total_s:>9.3f} {row.mean_s * 1e3:>9.2f} "
            f"{row.p50_s * 1e3:>9.2f} {row.p95_s * 1e3:>9.2f} {row.max_s * 1e3:>9.2f}",
            file=out,
        )
    if not jobs:
        return
    print(file=out)
    header = f"{'job':<12} {'name':<20} {'status':<6} {'spans':>6} {'seconds':>8}  details"
    print(header, file=out)
    print("-" * len(header), file=out)
    for job in jobs:
        print(
            f"{job['kind']:<12} {job['job_name'] or '':<20} {job['status']:<6} {job['span_count']:>6} "
            f"{job['duration_s']:>8.2f}  {_job_details(job)}",
            file=out,
        )
