"""``modeltel show [PATH...] [--data-dir D] [--trace ID | --last | --running] [--since T] [--until T]``.

The per-span-name table (count, errors, total, mean, p50, p95, max) over every file, one trace or
a time window, then the job summaries from ``summaries.jsonl`` (a calibration's best-loss
trajectory, an inference job's quality snapshot). A whole run (``--run`` / ``--last-run``, no
trace or window) is also broken down per array task and rank: processes, node, spans, errors and
duration of each, so a task that failed or never wrote stands out. ``--running`` lists the jobs
still open instead, from the progress records the pipeline keeps under ``<data_dir>/running/``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modeltel.cli import _reading as reading

if TYPE_CHECKING:
    from modeltel.read.reports import NameRow
    from modeltel.read.running import RunningJob
    from modeltel.read.runs import Position
    from modeltel.store.schemas import CalibrationSummary, RunSummary

MAX_JOBS_SHOWN = 20
"""Table output lists the latest jobs only; ``--format json`` has them all."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "show",
        help="per-span-name durations and job summaries",
        description="Per span name: count, errors, total, mean, p50, p95, max; then the job summaries.",
    )
    reading.add_source_arguments(parser)
    choice = reading.add_trace_arguments(parser, last_help="the most recent trace")
    choice.add_argument(
        "--running",
        action="store_true",
        help="jobs still open: progress, best loss, elapsed, a rough ETA (stale if their process is gone)",
    )
    reading.add_window_arguments(parser)
    reading.add_run_arguments(parser)
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    return reading.run("show", _show, args)


def _show(args: argparse.Namespace) -> int:
    from modeltel.read.query import aggregate, last_trace_id
    from modeltel.read.reports import name_rows
    from modeltel.read.runs import run_positions
    from modeltel.read.scan import Query
    from modeltel.read.summaries import iter_summaries, select_summaries

    if args.running:
        return _show_running(args)
    found = reading.sources(args)
    since, until = reading.window(args)
    trace = reading.trace_id(args)
    bad = reading.BadLines("show")
    if not found.trace_files and not found.summary_files:
        raise reading.CommandError(f"no trace files or summaries in {found.described}", reading.EXIT_FAILURE)
    if args.last:
        trace = last_trace_id(found.trace_files, run_id=found.run_id, on_bad_line=bad)
        if trace is None:
            raise reading.CommandError(f"no spans in {found.described}", reading.EXIT_FAILURE)
    total = sum(p.stat().st_size for p in found.trace_files)
    with reading.ProgressBar(total, "reading") as bar:
        result = aggregate(
            found.trace_files,
            Query(trace_id=trace, since_ns=since, until_ns=until, run_id=found.run_id),
            progress=bar.advance,
            on_bad_line=bad,
        )
    rows = name_rows(result.table)
    if trace is not None and not rows:
        raise reading.CommandError(f"trace {trace} not found in {found.described}", reading.EXIT_FAILURE)
    from modeltel.cli import logs as trace_logs  # here, not at the top: `show --help` stays light

    records = trace_logs.trace_records(args, trace, found.run_id, bad) if trace is not None else []
    # No summaries file, no summaries: not even the import (pydantic and the SDK, ~0.15 s of start).
    # The table shows jobs only, so its process summaries are not read: no model for them either.
    skip = ("process",) if args.format == "table" else ()
    summaries = (
        select_summaries(
            list(iter_summaries(found.summary_files, on_bad_line=bad, skip_kinds=skip)),
            trace_id=trace,
            since_ns=since,
            until_ns=until,
            run_id=found.run_id,
        )
        if found.summary_files
        else []
    )
    jobs = [s for s in summaries if s.kind != "process"]
    in_run = _spans_in_run(found, jobs[-MAX_JOBS_SHOWN:] if args.format == "table" else jobs, bad)
    positions: list[Position] | None = None
    if found.run_id is not None and trace is None and since is None and until is None:
        positions = run_positions(found.trace_files, found.run_id)
    if args.format == "json":
        document = {
            "source": found.described,
            "files": len(found.trace_files),
            "bytes": total,
            "trace_id": trace,
            "run_id": found.run_id,
            "spans": [row.to_json() for row in rows],
            "jobs": [_job_json(job, in_run) for job in jobs],
            "processes": [s.model_dump(mode="json") for s in summaries if s.kind == "process"],
            "bad_lines": bad.to_json(),
        }
        if trace is not None:
            document["logs"] = [trace_logs.record_json(r) for r in records]
        if positions is not None:
            document["by_task_rank"] = [position.to_json() for position in positions]
        json.dump(document, sys.stdout, indent=2, allow_nan=False, default=str)
        sys.stdout.write("\n")
        return reading.EXIT_OK
    color = reading.use_color(sys.stdout)
    span_count = sum(row.count for row in rows)
    scope = f"trace {trace}" if trace else found.described
    if found.run_id is not None:
        scope += f", run {found.run_id}"
    spans = reading.counted(span_count, "span")
    print(f"{scope}: {spans} in {reading.counted(len(found.trace_files), 'file')} ({total / 1e6:,.1f} MB)")
    if rows:
        print()
        print(_span_table(rows, color))
        if not all(row.exact for row in rows):
            print("(p50/p95 of names with more than 16,384 spans are within 1% of an exact value)")
    if records:
        print()
        print(trace_logs.records_section(records, color))
    if positions and any(p.task is not None or p.rank is not None for p in positions):
        print()
        print(_positions_table(positions, color))
    if jobs:
        print()
        print(_jobs_table(jobs[-MAX_JOBS_SHOWN:], in_run, color))
        if len(jobs) > MAX_JOBS_SHOWN:
            print(f"({len(jobs) - MAX_JOBS_SHOWN} earlier jobs not shown; --format json lists all)")
    return reading.EXIT_OK


def _span_table(rows: list[NameRow], color: bool) -> str:
    from modeltel.read.reports import format_seconds

    headers = ("span name", "count", "errors", "total", "mean", "p50", "p95", "max")
    cells = [
        (
            row.name,
            reading.count(row.count),
            reading.count(row.errors),
            format_seconds(row.total_s),
            format_seconds(row.mean_s),
            format_seconds(row.p50_s),
            format_seconds(row.p95_s),
            format_seconds(row.max_s),
        )
        for row in rows
    ]
    return reading.render_table(headers, cells, color=color, highlight=lambda i: rows[i].errors > 0)


def _positions_table(positions: list[Position], color: bool) -> str:
    """One row per array task and rank of the run; the task or rank column only when the run has one."""
    from modeltel.read.reports import format_seconds

    tasks = any(p.task is not None for p in positions)
    ranks = any(p.rank is not None for p in positions)
    headers = [*(["task"] if tasks else []), *(["rank"] if ranks else [])]
    headers += ["node", "processes", "spans", "errors", "duration"]
    cells = [
        (
            *([_or_dash(p.task)] if tasks else []),
            *([_or_dash(p.rank)] if ranks else []),
            ", ".join(sorted(p.nodes)) or "-",
            reading.count(p.processes),
            reading.count(p.spans),
            reading.count(p.errors),
            format_seconds(p.duration_s),
        )
        for p in positions
    ]
    return reading.render_table(
        headers, cells, color=color, highlight=lambda i: positions[i].errors > 0, left=tasks + ranks + 1
    )


def _or_dash(value: int | None) -> str:
    return "-" if value is None else str(value)


def _spans_in_run(found: reading.Sources, jobs: list[RunSummary], bad: reading.BadLines) -> dict[str, int]:
    """Job span id → the job's spans in every process of its run, for the jobs whose trace is in
    more than one file (a pool's workers, MPI ranks): a job's summary line counts only the spans
    of the process that ran the job span. A job whose trace is in one file needs no reading."""
    from modeltel.read.reports import job_spans
    from modeltel.read.runs import file_contains

    shared = [
        job
        for job in jobs
        if job.trace_id and sum(file_contains(p, (job.trace_id.encode(),)) for p in found.trace_files) > 1
    ]
    totals = job_spans(found.trace_files, shared, run_id=found.run_id, on_bad_line=bad)
    return {span_id: spans.spans for span_id, spans in totals.items() if spans.spans}


def _job_json(job: RunSummary, in_run: dict[str, int]) -> dict[str, Any]:
    """The summary as written, plus ``spans_in_run``: its spans in every process of the run."""
    document = job.model_dump(mode="json")
    document["spans_in_run"] = in_run.get(job.span_id or "", job.span_count)
    return document


def _jobs_table(jobs: list[RunSummary], in_run: dict[str, int], color: bool) -> str:
    from modeltel.read.reports import format_seconds

    headers = ("job", "kind", "service", "started (UTC)", "duration", "status", "spans")
    cells = [
        (
            job.job_name or "-",
            job.kind,
            job.service,
            job.start.strftime("%Y-%m-%d %H:%M:%S"),
            format_seconds(job.duration_s),
            job.status,
            reading.count(in_run.get(job.span_id or "", job.span_count)),
        )
        for job in jobs
    ]
    return reading.render_table(
        headers,
        cells,
        color=color,
        highlight=lambda i: jobs[i].status == "error",
        details=lambda i: job_details(jobs[i]),
        left=4,
    )


def job_details(job: RunSummary) -> list[str]:
    """The lines under a job: best-loss trajectory for calibration, quality for inference."""
    from modeltel.read.reports import format_seconds

    details = []
    if job.calibration is not None:
        cal = job.calibration
        best = "-" if cal.best_loss is None else f"{cal.best_loss:.6g}"
        details.append(f"best loss {best}{_best_iteration(cal)} ({cal.direction})")
        if cal.trajectory:
            points = [f"{p.iteration}:{p.best_loss:.4g}" for p in cal.trajectory]
            if len(points) > 8:
                points = [*points[:4], "…", *points[-3:]]
            details.append("trajectory " + " → ".join(points))
        if cal.phase_seconds:
            phases = ", ".join(f"{k} {format_seconds(v)}" for k, v in cal.phase_seconds.items())
            details.append(f"time in {phases}")
    if job.quality is not None:
        q = job.quality
        parts = [f"{q.predictions:,} predictions"]
        for label, value in (
            ("confidence mean", q.confidence_mean),
            ("median", q.confidence_median),
            ("p5", q.confidence_p5),
            ("p95", q.confidence_p95),
        ):
            if value is not None:
                parts.append(f"{label} {value:.3f}")
        if q.reject_rate is not None:
            parts.append(f"reject rate {q.reject_rate:.1%}")
        if q.entropy_mean is not None:
            parts.append(f"entropy {q.entropy_mean:.3f}")
        details.append(", ".join(parts))
        if q.class_distribution:
            classes = list(q.class_distribution.items())[:6]
            more = " …" if len(q.class_distribution) > 6 else ""
            details.append("classes " + ", ".join(f"{k} {v:.0%}" for k, v in classes) + more)
        if q.feature_missingness:
            worst = list(q.feature_missingness.items())[:4]
            details.append("missing values " + ", ".join(f"{k} {v:.1%}" for k, v in worst))
    return details


def _best_iteration(cal: CalibrationSummary) -> str:
    """`` at iteration 16, after 17 of 30 iterations``: the number, then the count.

    ``iterations_to_best`` is a count (iterations run until the best one, that one included), so
    the iteration that found the best loss is the trajectory's last improvement, not that count:
    an Optuna study's ``best_trial.number`` 2 is three trials in.
    """
    parts = []
    if cal.trajectory:
        parts.append(f" at iteration {cal.trajectory[-1].iteration}")
    if cal.iterations_to_best is not None:
        parts.append(f" after {cal.iterations_to_best} of {cal.iterations} iterations")
    return ",".join(parts)


def _running_dir(args: argparse.Namespace) -> Path:
    """The data dir ``--running`` reads: ``--data-dir``, a single data dir given as PATH, or the default."""
    from modeltel.store.layout import is_data_dir

    paths: list[Path] = list(args.paths or [])
    if paths and args.data_dir is None:
        if len(paths) != 1 or not is_data_dir(paths[0]):
            raise reading.CommandError("--running reads one data dir: pass it as PATH or --data-dir D")
        return paths[0]
    data_dir: Path = args.data_dir or reading.default_data_dir()
    if not data_dir.is_dir():
        raise reading.CommandError(f"no such data dir: {data_dir} (run something under `modeltel run` first)")
    return data_dir


def _show_running(args: argparse.Namespace) -> int:
    from modeltel.read.running import running_jobs

    data_dir = _running_dir(args)
    bad = reading.BadLines("show")
    jobs = running_jobs(data_dir, on_bad_file=bad)
    if args.format == "json":
        document = {
            "data_dir": str(data_dir),
            "jobs": [job.to_json() for job in jobs],
            "bad_files": bad.to_json(),
        }
        json.dump(document, sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
        return reading.EXIT_OK
    if not jobs:
        print(f"{data_dir}: no open jobs")
        return reading.EXIT_OK
    running = sum(job.status == "running" for job in jobs)
    print(f"{data_dir}: {running} running, {len(jobs) - running} not running (stale or on another host)")
    print()
    print(_running_table(jobs, reading.use_color(sys.stdout)))
    return reading.EXIT_OK


def _running_table(jobs: list[RunningJob], color: bool) -> str:
    from modeltel.read.reports import format_seconds

    headers = ("job", "kind", "status", "host:pid", "progress", "best loss", "elapsed", "ETA", "updated")
    cells = []
    for job in jobs:
        record = job.record
        progress = job.progress
        if progress is None:
            done = "-"
        else:
            count, total, unit = progress
            done = f"{count:,}/{total:,} {unit}" if total else f"{count:,} {unit}"
            if job.fraction is not None:
                done += f" ({job.fraction:.0%})"
        eta = job.eta_s
        cells.append(
            (
                record.job_name or "-",
                record.kind,
                job.status,
                f"{record.host}:{record.pid}",
                done,
                "-" if record.best_loss is None else f"{record.best_loss:.6g}",
                format_seconds(job.elapsed_s),
                "-" if eta is None else format_seconds(eta),
                f"{format_seconds(max(0.0, job.now - record.updated))} ago",
            )
        )
    return reading.render_table(
        headers, cells, color=color, highlight=lambda i: jobs[i].status == "stale", left=4
    )
