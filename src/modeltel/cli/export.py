"""``modeltel export --format csv|json|otlp-json|jaeger [PATH...] [--trace ID | --last] -o FILE``.

- ``csv`` / ``json``: one row per span, attributes flattened to ``attributes.<key>`` columns, for
  ``pandas.read_csv`` / ``pandas.read_json``.
- ``otlp-json``: the spans as canonical OTLP/JSON lines (lowercase hex ids, int64 as strings,
  ``scopeSpans``), merged from every input file: a Collector ``otlpjsonfile`` receiver reads it.
- ``jaeger``: the JSON Jaeger's UI opens from a file (``data[].spans[]`` + ``processes``).

The file is written next to its destination and renamed into place, so a failed export never
leaves half a file. ``-o -`` writes to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from modeltel.cli import _reading as reading
from modeltel.read.flat import write_csv, write_json
from modeltel.read.jaeger import jaeger_traces
from modeltel.read.otlp import Span, encode_request
from modeltel.read.query import iter_batches, iter_spans, last_trace_id

FORMATS = ("csv", "json", "otlp-json", "jaeger")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export",
        help="spans as CSV/JSON rows, merged OTLP/JSON, or Jaeger UI JSON",
        description="Export spans: flat tables for pandas, merged OTLP/JSON, or a file Jaeger's UI opens.",
    )
    parser.add_argument("--format", choices=FORMATS, required=True)
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write; - for stdout")
    reading.add_source_arguments(parser)
    reading.add_trace_arguments(parser, last_help="only the most recent trace")
    reading.add_window_arguments(parser)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    return reading.run("export", _export, args)


def _export(args: argparse.Namespace) -> int:
    found = reading.sources(args)
    since, until = reading.window(args)
    trace = reading.trace_id(args)
    bad = reading.BadLines("export")
    if args.last:
        trace = last_trace_id(found.trace_files, on_bad_line=bad)
        if trace is None:
            raise reading.CommandError(f"no spans in {found.described}", reading.EXIT_FAILURE)
    total = sum(p.stat().st_size for p in found.trace_files)
    passes = 2 if args.format == "csv" else 1
    with reading.ProgressBar(total * passes, "exporting") as bar:

        def spans() -> Iterator[Span]:
            return iter_spans(
                found.trace_files,
                trace_id=trace,
                since_ns=since,
                until_ns=until,
                progress=bar.advance,
                on_bad_line=bad,
            )

        with reading.output(args.output) as out:
            if args.format == "csv":
                written = write_csv(out, spans)
            elif args.format == "json":
                written = write_json(out, spans())
            elif args.format == "jaeger":
                document = jaeger_traces(spans())
                json.dump(document, out, ensure_ascii=False, allow_nan=False)
                out.write("\n")
                written = sum(len(t["spans"]) for t in document["data"])
            else:
                written = _write_otlp(out, found.trace_files, trace, since, until, bar, bad)
    if trace is not None and written == 0:
        raise reading.CommandError(f"trace {trace} not found in {found.described}", reading.EXIT_FAILURE)
    where = "stdout" if args.output == "-" else args.output
    print(f"modeltel export: wrote {written:,} spans as {args.format} to {where}", file=sys.stderr)
    return reading.EXIT_OK


def _write_otlp(
    out: IO[str],
    files: list[Path],
    trace: str | None,
    since: int | None,
    until: int | None,
    bar: reading.ProgressBar,
    bad: reading.BadLines,
) -> int:
    written = 0
    for batch in iter_batches(files, trace_id=trace, progress=bar.advance, on_bad_line=bad):
        kept = [
            span
            for span in batch.spans
            if (trace is None or span.trace_id == trace)
            and (since is None or span.start_ns >= since)
            and (until is None or span.start_ns < until)
        ]
        if kept:
            out.write(json.dumps(encode_request(kept), ensure_ascii=False, separators=(",", ":")))
            out.write("\n")
            written += len(kept)
    return written
