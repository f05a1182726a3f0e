"""``modeltel timeline [PATH...] [--trace ID|--last] [--run ID|--last-run] -o FILE.html|FILE.png``.

Without ``--trace``, the most recent trace (of the run, with ``--run``). HTML is one
self-contained file that opens offline, with a hover card of each span's attributes, collapsible
subtrees and a filter; with ``--run`` / ``--last-run`` it also holds the run's other traces (up to
``--max-spans`` spans in all) and an index to switch between them. PNG draws the one trace and
needs matplotlib (``pip install 'modeltel[viz]'``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modeltel.cli import _reading as reading

if TYPE_CHECKING:
    from modeltel.formats.otlp import LogRecord

SUFFIXES = (".html", ".htm", ".png")
MAX_PAGE_SPANS = 20_000
"""Default ``--max-spans`` of a run's page: about 10 MB of HTML, which a browser opens in a second or two."""


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "timeline",
        help="a Gantt view of one trace (or a run's traces) as a self-contained HTML page or a PNG",
        description=(
            "Draw one trace (default: the most recent) as a Gantt chart: FILE.html or FILE.png. "
            "With --run or --last-run the page also holds the run's other traces, with an index."
        ),
    )
    reading.add_source_arguments(parser)
    reading.add_trace_arguments(parser, last_help="the most recent trace (the default)")
    reading.add_run_arguments(parser)
    parser.add_argument(
        "--max-spans",
        type=_at_least_one,
        default=MAX_PAGE_SPANS,
        metavar="N",
        help=f"with --run: spans the page holds across the run's traces (default {MAX_PAGE_SPANS:,}); "
        "the index lists the others",
    )
    parser.add_argument(
        "-o", "--output", required=True, type=Path, metavar="FILE", help="FILE.html or FILE.png"
    )
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    return reading.run("timeline", _timeline, args)


def _timeline(args: argparse.Namespace) -> int:
    from modeltel.formats.timeline import MissingViz, group_traces, render_html, render_png, render_run_html
    from modeltel.read.query import iter_spans, last_trace_id

    output: Path = args.output
    if output.suffix.lower() not in SUFFIXES:
        raise reading.CommandError(f"-o: {output} must end in .html or .png")
    if not output.parent.is_dir():
        raise reading.CommandError(f"-o: no such directory: {output.parent}")
    found = reading.sources(args)
    bad = reading.BadLines("timeline")
    trace = reading.trace_id(args) or last_trace_id(found.trace_files, run_id=found.run_id, on_bad_line=bad)
    if trace is None:
        raise reading.CommandError(f"no spans in {found.described}", reading.EXIT_FAILURE)
    total = sum(p.stat().st_size for p in found.trace_files)
    with reading.ProgressBar(total, "reading") as bar:
        wanted = None if found.run_id is not None else trace
        spans = iter_spans(
            found.trace_files, trace_id=wanted, run_id=found.run_id, progress=bar.advance, on_bad_line=bad
        )
        groups = group_traces(spans, keep=trace, max_spans=args.max_spans)
    chosen = next((g for g in groups if g.trace_id == trace and g.spans), None)
    if chosen is None or not chosen.spans:
        where = f"run {found.run_id} in " if found.run_id is not None else ""
        raise reading.CommandError(
            f"trace {trace} not found in {where}{found.described}", reading.EXIT_FAILURE
        )
    drawn = chosen.spans
    if output.suffix.lower() == ".png":
        try:
            render_png(drawn, output)
        except MissingViz as exc:
            raise reading.CommandError(str(exc), reading.EXIT_FAILURE) from None
        print(f"modeltel timeline: {len(drawn):,} spans of trace {trace} drawn to {output}", file=sys.stderr)
        return reading.EXIT_OK
    held = {g.trace_id for g in groups if g.spans}
    logs = _trace_logs(found, held, bad)
    with reading.output(str(output)) as out:
        if found.run_id is None:
            out.write(render_html(drawn, logs=logs.get(trace, [])))
        else:
            out.write(render_run_html(groups, trace, max_spans=args.max_spans, logs=logs))
    said = f"modeltel timeline: {len(drawn):,} spans of trace {trace} drawn to {output}"
    if found.run_id is not None:
        said += f", with an index of {len(groups):,} traces of run {found.run_id}"
        if len(held) < len(groups):
            said += f" ({len(held):,} of them in the page)"
    marked = len(logs.get(trace, []))
    if marked:
        said += f", {reading.counted(marked, 'log record')} marked"
    print(said, file=sys.stderr)
    return reading.EXIT_OK


def _trace_logs(
    found: reading.Sources, traces: set[str], bad: reading.BadLines
) -> dict[str, list[LogRecord]]:
    """The log records of ``traces`` (those logged in a span) in the log files beside the traces."""
    from modeltel.read.logs import LogQuery, iter_logs
    from modeltel.store.layout import SourceError, data_files

    try:
        files = data_files(found.paths, found.data_dir, "logs")
    except SourceError:
        return {}
    query = LogQuery(trace_id=next(iter(traces)) if len(traces) == 1 else None, run_id=found.run_id)
    found_logs: dict[str, list[LogRecord]] = {}
    for record in iter_logs(files, query, on_bad_line=bad):
        if record.trace_id in traces and record.span_id:
            found_logs.setdefault(record.trace_id, []).append(record)
    return found_logs
