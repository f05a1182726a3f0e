"""``modeltel runs [PATH...] [--data-dir D] [--format table|json]``: the runs in a data dir, newest first.

A run is every process that shared one ``modeltel.run.id`` (``MODELTEL_RUN_ID``, by default one per
program, or the scheduler's job id): per run its services, start, duration, processes, array tasks
and ranks among them, spans, errors, ``*.job`` spans and status, counted from the trace lines'
bytes without decoding them. The ids it prints are what ``--run`` takes on every reading command;
``show --run ID`` breaks a run down per task and rank.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from modeltel.cli import _reading as reading

if TYPE_CHECKING:
    from modeltel.read.runs import RunInfo


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "runs",
        help="the runs in a data dir: id, services, start, duration, processes, spans, errors, jobs",
        description="One line per run (newest first), with the array tasks and ranks its processes "
        "ran as; its id is what --run takes on show (which breaks it down per task and rank), stats, "
        "export and timeline.",
    )
    reading.add_source_arguments(parser)
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    return reading.run("runs", _runs, args)


def _runs(args: argparse.Namespace) -> int:
    from modeltel.read.runs import list_runs
    from modeltel.read.summaries import iter_summaries

    found = reading.sources(args)
    if not found.trace_files:
        raise reading.CommandError(f"no trace files in {found.described}", reading.EXIT_FAILURE)
    bad = reading.BadLines("runs")
    summaries = list(iter_summaries(found.summary_files, on_bad_line=bad)) if found.summary_files else []
    runs = list_runs(found.trace_files, summaries)
    if args.format == "json":
        document = {"source": found.described, "runs": [run.to_json() for run in runs]}
        json.dump(document, sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
        return reading.EXIT_OK
    if not runs:
        raise reading.CommandError(f"no spans in {found.described}", reading.EXIT_FAILURE)
    print(f"{found.described}: {reading.counted(len(runs), 'run')}")
    print()
    print(_table(runs, reading.use_color(sys.stdout)))
    return reading.EXIT_OK


def _start(run: RunInfo) -> str:
    if run.start_ns is None:
        return "-"
    return datetime.fromtimestamp(run.start_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _table(runs: list[RunInfo], color: bool) -> str:
    from modeltel.read.reports import format_seconds

    headers = (
        "run id", "services", "started (UTC)", "duration", "processes", "tasks", "ranks", "spans", "errors",
        "jobs", "status",
    )  # fmt: skip
    cells = [
        (
            run.run_id or "(none)",
            ", ".join(sorted(run.services)) or "-",
            _start(run),
            format_seconds(run.duration_s),
            reading.count(len(run.processes)),
            reading.count(run.tasks) if run.tasks else "-",
            reading.count(run.ranks) if run.ranks else "-",
            reading.count(run.spans),
            reading.count(run.errors),
            reading.count(run.jobs),
            run.status,
        )
        for run in runs
    ]
    return reading.render_table(
        headers, cells, color=color, highlight=lambda i: runs[i].status == "error", left=3
    )
