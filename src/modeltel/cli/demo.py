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
import multiprocessing
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from modeltel._internal.config import ConfigError, load_settings
from modeltel.read.files import trace_files
from modeltel.read.query import aggregate, warn_bad_line
from modeltel.read.reports import JobSpans, NameRow, job_spans, name_rows
from modeltel.read.runs import file_run
from modeltel.read.scan import Query
from modeltel.read.summaries import iter_summaries, select_summaries
from modeltel.store.layout import DataDir

if TYPE_CHECKING:
    from modeltel.store.schemas import RunSummary

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
    from modeltel._internal import demo
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
    data_dir, run_id = handle.settings.data_dir.resolve(), handle.settings.run_id
    run_files = _run_trace_files(data_dir, run_id, own=exporter.file.path)
    summaries = DataDir(data_dir).summaries
    jobs = [s for s in _summaries(summaries, run_id) if s.kind != "process"]
    print(f"modeltel demo: ran in {elapsed:.1f} s; run id {run_id}")
    for path in run_files:
        print(f"  traces:    {path}")
    print(f"  summaries: {summaries}")
    print()
    rows = name_rows(aggregate(run_files, Query(), workers=1, on_bad_line=warn_bad_line).table)
    totals = job_spans(run_files, jobs, run_id=run_id, on_bad_line=warn_bad_line)
    print_summary(rows, jobs, totals, sys.stdout)
    print_next(data_dir if args.data_dir is not None else None, run_id, sys.stdout)
    return 0


def _run_trace_files(data_dir: Path, run_id: str, own: Path | None) -> list[Path]:
    """This process's trace file first, then its pool workers' files: every file of the data dir
    whose first line's resource names this run id (workers share the run id, not the pid)."""
    own = own.resolve() if own is not None else None
    found = [own] if own is not None else []
    for path in trace_files([], data_dir):
        if path.resolve() != own and file_run(path) == run_id:
            found.append(path.resolve())
    return found


def _summaries(path: Path, run_id: str) -> list[RunSummary]:
    if not path.exists():
        return []
    return select_summaries(list(iter_summaries([path])), run_id=run_id)


WHAT_RUNS_ARE = {"simulation": "runs", "calibration": "evaluation batches", "inference": "runs"}
"""What a ``simulation.run`` span is to each kind of job of the demo (a calibration evaluates its
candidates as batches of simulation runs)."""


def _job_details(job: RunSummary, spans: JobSpans | None) -> str:
    """One job's line, from its spans in every process of the run (``spans``) and its summary."""
    if job.calibration is not None:
        cal = job.calibration
        parts = []
        if spans is not None:
            parts.append(
                f"{spans.count('calibration.iteration')} iterations, "
                f"{spans.count('simulation.run')} evaluation batches"
            )
        if cal.best_loss is None:
            parts.append("no loss told")
        else:
            where = f" at iteration {cal.trajectory[-1].iteration}" if cal.trajectory else ""
            parts.append(f"best loss {cal.best_loss:.3g}{where}")
        phases = ", ".join(f"{k} {v:.3f} s" for k, v in cal.phase_seconds.items())
        return "; ".join(parts) + (f"; {phases}" if phases else "")
    if job.quality is not None:
        q = job.quality
        parts = [f"{q.predictions} predictions"]
        if spans is not None:
            parts.insert(0, f"{spans.count('inference.predict')} batches")
        if q.confidence_mean is not None and q.confidence_p5 is not None:
            parts.append(f"confidence mean {q.confidence_mean:.3f} p5 {q.confidence_p5:.3f}")
        if q.reject_rate is not None:
            parts.append(f"reject rate {q.reject_rate:.1%}")
        if q.entropy_mean is not None:
            parts.append(f"entropy {q.entropy_mean:.3f} nats")
        if q.feature_missingness:
            worst, rate = next(iter(q.feature_missingness.items()))
            parts.append(f"most missing feature {worst} ({rate:.1%})")
        return ", ".join(parts)
    if spans is None or not spans.count("simulation.run"):
        return ""
    runs = "simulation.run"
    cached = int(spans.total(runs, "modeltel.simulation.cache_hit"))
    text = f"{spans.count(runs)} runs ({cached} from cache), {spans.errors(runs)} failed"
    peak = spans.mean(runs, "modeltel.simulation.peak_infected")
    return text + (f", peak infected mean {peak:.3f}" if peak is not None else "")


def _split_counts(rows: Iterable[NameRow], jobs: list[RunSummary], totals: dict[str, JobSpans]) -> list[str]:
    """``simulation.run 111 = 81 runs of sir-sweep + 30 evaluation batches of fit-sir``: each span
    name that several jobs share (or that some spans outside every job add to), taken apart."""
    lines = []
    for row in sorted(rows, key=lambda r: r.name):
        parts = []
        for job in jobs:
            spans = totals.get(job.span_id or "")
            count = spans.count(row.name) if spans is not None else 0
            if count:
                what = WHAT_RUNS_ARE.get(job.kind, "spans") if row.name == "simulation.run" else "spans"
                parts.append(f"{count} {what} of {job.job_name or job.kind}")
        outside = row.count - sum(
            spans.count(row.name) for spans in (totals.get(job.span_id or "") for job in jobs) if spans
        )
        if outside > 0 and parts:
            parts.append(f"{outside} outside any job")
        if len(parts) > 1:
            lines.append(f"{row.name} {row.count} = " + " + ".join(parts))
    return lines


def print_summary(
    rows: Iterable[NameRow], jobs: list[RunSummary], totals: dict[str, JobSpans], out: IO[str]
) -> None:
    """The per-span-name table (count, errors, total, mean, p50, p95, max), what the shared counts
    are made of, and the job table (spans and processes counted over every process of the run)."""
    rows = list(rows)
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
    split = _split_counts(rows, jobs, totals)
    if split:
        print(file=out)
        for line in split:
            print(line, file=out)
    print(file=out)
    header = f"{'job':<12} {'name':<20} {'status':<6} {'procs':>5} {'spans':>6} {'seconds':>8}  details"
    print(header, file=out)
    print("-" * len(header), file=out)
    for job in jobs:
        spans = totals.get(job.span_id or "")
        count = spans.spans if spans is not None else job.span_count
        processes = len(spans.processes) if spans is not None else 1
        print(
            f"{job.kind:<12} {job.job_name or '':<20} {job.status:<6} {processes:>5} {count:>6} "
            f"{job.duration_s:>8.2f}  {_job_details(job, spans)}",
            file=out,
        )


def print_next(data_dir: Path | None, run_id: str, out: IO[str]) -> None:
    """The commands to try next on what the demo wrote (``--data-dir`` added when it was given)."""
    where = f" --data-dir {data_dir}" if data_dir is not None else ""
    commands = (
        (f"modeltel show --last{where}", "the last trace: the calibration, its evaluation batches in it"),
        (
            f"modeltel show --run {run_id}{where}",
            "this run's spans and jobs, with the calibration's trajectory",
        ),
        (f"modeltel runs{where}", "every run in the data dir"),
        (f"modeltel stats --by model{where}", "calls, tokens and latency per model"),
        (f"modeltel timeline -o trace.html{where}", "a Gantt chart of the last trace, opens offline"),
    )
    width = max(len(command) for command, _ in commands)
    print(file=out)
    print("next:", file=out)
    for command, what in commands:
        print(f"  {command:<{width}}  # {what}", file=out)
