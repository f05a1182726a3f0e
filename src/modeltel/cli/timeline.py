"""``modeltel timeline [PATH...] [--trace ID] -o FILE.html|FILE.png``: a Gantt view of one trace.

Without ``--trace``, the most recent trace. HTML is one self-contained file that opens offline,
with a hover showing each span's attributes; PNG needs matplotlib (``pip install 'modeltel[viz]'``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from modeltel.cli import _reading as reading
from modeltel.formats.timeline import MissingViz, render_html, render_png
from modeltel.read.query import iter_spans, last_trace_id

SUFFIXES = (".html", ".htm", ".png")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "timeline",
        help="a Gantt view of one trace as a self-contained HTML page or a PNG",
        description="Draw one trace (default: the most recent) as a Gantt chart: FILE.html or FILE.png.",
    )
    reading.add_source_arguments(parser)
    parser.add_argument("--trace", metavar="ID", help="the trace to draw (default: the most recent)")
    reading.add_run_arguments(parser)
    parser.add_argument(
        "-o", "--output", required=True, type=Path, metavar="FILE", help="FILE.html or FILE.png"
    )
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    return reading.run("timeline", _timeline, args)


def _timeline(args: argparse.Namespace) -> int:
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
        spans = list(
            iter_spans(
                found.trace_files, trace_id=trace, run_id=found.run_id, progress=bar.advance, on_bad_line=bad
            )
        )
    if not spans:
        raise reading.CommandError(f"trace {trace} not found in {found.described}", reading.EXIT_FAILURE)
    if output.suffix.lower() == ".png":
        try:
            render_png(spans, output)
        except MissingViz as exc:
            raise reading.CommandError(str(exc), reading.EXIT_FAILURE) from None
    else:
        with reading.output(str(output)) as out:
            out.write(render_html(spans))
    print(f"modeltel timeline: {len(spans):,} spans of trace {trace} drawn to {output}", file=sys.stderr)
    return reading.EXIT_OK
