"""``modeltel export --format csv|json|otlp-json|jaeger [PATH...] [--trace ID | --last] -o FILE``.

- ``csv`` / ``json``: one row per span, attributes flattened to ``attributes.<key>`` columns, for
  ``pandas.read_csv`` / ``pandas.read_json``.
- ``otlp-json``: the trace, metric and log lines of every input file (a data dir's ``traces/``,
  ``metrics/`` and ``logs/``), one line out per line in, every field kept, written canonically
  (lowercase hex ids, int64 as strings, ``scope*``): a Collector ``otlpjsonfile`` receiver reads
  it. ``--trace`` / ``--last`` keep that trace's spans and log records and no metric; ``--since`` /
  ``--until`` keep the spans started, the data points recorded and the records logged in the
  window. Lines left empty by a filter are not written, nor lines that held no item in the first
  place.
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
from typing import IO, TYPE_CHECKING, Any

from modeltel.cli import _reading as reading

if TYPE_CHECKING:
    from modeltel.formats.otlp import LogRecord, Metric, Span

FORMATS = ("csv", "json", "otlp-json", "jaeger")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export",
        help="spans as CSV/JSON rows, spans and metrics as merged OTLP/JSON, or Jaeger UI JSON",
        description=(
            "Export spans as flat tables for pandas or a file Jaeger's UI opens, "
            "or spans, metrics and log records as merged OTLP/JSON."
        ),
    )
    parser.add_argument("--format", choices=FORMATS, required=True)
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write; - for stdout")
    reading.add_source_arguments(parser)
    reading.add_trace_arguments(parser, last_help="only the most recent trace")
    reading.add_window_arguments(parser)
    reading.add_run_arguments(parser)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    return reading.run("export", _export, args)


def _export(args: argparse.Namespace) -> int:
    from modeltel.formats.flat import write_csv, write_json
    from modeltel.formats.jaeger import jaeger_traces
    from modeltel.read.query import iter_spans, last_trace_id

    found = reading.sources(args)
    since, until = reading.window(args)
    trace = reading.trace_id(args)
    bad = reading.BadLines("export")
    if args.last:
        trace = last_trace_id(found.trace_files, run_id=found.run_id, on_bad_line=bad)
        if trace is None:
            raise reading.CommandError(f"no spans in {found.described}", reading.EXIT_FAILURE)
    files = _otlp_files(args, found) if args.format == "otlp-json" else found.trace_files
    total = sum(p.stat().st_size for p in files)
    passes = 2 if args.format == "csv" else 1
    with reading.ProgressBar(total * passes, "exporting") as bar:

        def spans() -> Iterator[Span]:
            return iter_spans(
                found.trace_files,
                trace_id=trace,
                since_ns=since,
                until_ns=until,
                run_id=found.run_id,
                progress=bar.advance,
                on_bad_line=bad,
            )

        points = records = 0
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
                written, points, records = _write_otlp(
                    out, files, trace, since, until, bar, bad, found.run_id
                )
    if trace is not None and written == 0 and records == 0:
        raise reading.CommandError(f"trace {trace} not found in {found.described}", reading.EXIT_FAILURE)
    where = "stdout" if args.output == "-" else args.output
    parts = [f"{written:,} spans"]
    parts += [f"{points:,} data points"] if points else []
    parts += [f"{records:,} log records"] if records else []
    what = " and ".join([", ".join(parts[:-1]), parts[-1]]) if len(parts) > 1 else parts[0]
    print(f"modeltel export: wrote {what} as {args.format} to {where}", file=sys.stderr)
    return reading.EXIT_OK


def _otlp_files(args: argparse.Namespace, found: reading.Sources) -> list[Path]:
    """The trace files, then the metric and log files not among them (of the run, with ``--run``):
    the order the lines are written in."""
    from modeltel.read.runs import run_files
    from modeltel.store.layout import data_files

    paths: list[Path] = list(args.paths or [])
    data_dir = None if paths else (args.data_dir or reading.default_data_dir())
    others = [*data_files(paths, data_dir, "metrics"), *data_files(paths, data_dir, "logs")]
    if found.run_id is not None:
        others = run_files(others, found.run_id)
    return list(dict.fromkeys([*found.trace_files, *others]))


def _write_otlp(
    out: IO[str],
    files: list[Path],
    trace: str | None,
    since: int | None,
    until: int | None,
    bar: reading.ProgressBar,
    bad: reading.BadLines,
    run: str | None = None,
) -> tuple[int, int, int]:
    """Each line's kept spans, metrics or log records as one line; returns how many spans, data
    points and log records."""
    from modeltel.formats.otlp import (
        InvalidRequest,
        data_points,
        decode_any,
        encode_logs_request,
        encode_metrics_request,
        encode_request,
    )
    from modeltel.read.files import BadLine, file_blocks, iter_lines, line_number
    from modeltel.read.runs import Selection, run_mark, select_line

    spans_written = points_written = records_written = 0
    needles = (trace.encode(), trace.upper().encode()) if trace else ()
    mark = run_mark(run) if run is not None else None
    for path in files:
        for block in file_blocks(path, bad):
            for offset, line in iter_lines(block):
                if needles and not any(n in line for n in needles):
                    continue
                if mark is not None and select_line(line, mark) is Selection.NONE:
                    continue
                try:
                    decoded = decode_any(line)
                except InvalidRequest as exc:
                    bad(BadLine(path, line_number(path, offset), str(exc)))
                    continue
                spans = [s for s in decoded.spans if _span_kept(s, trace, since, until, run)]
                metrics = [] if trace is not None else _metrics_kept(decoded.metrics, since, until, run)
                logs = [r for r in decoded.logs if _log_kept(r, trace, since, until, run)]
                if spans:
                    document = encode_request(spans)
                elif metrics:
                    document = encode_metrics_request(metrics)
                elif logs:
                    document = encode_logs_request(logs)
                else:
                    continue
                out.write(json.dumps(document, ensure_ascii=False, separators=(",", ":")))
                out.write("\n")
                spans_written += len(spans)
                points_written += data_points(metrics)
                records_written += len(logs)
            bar.advance(len(block.data))
    return spans_written, points_written, records_written


def _span_kept(span: Span, trace: str | None, since: int | None, until: int | None, run: str | None) -> bool:
    from modeltel.read.runs import span_run

    return (
        (run is None or span_run(span) == run)
        and (trace is None or span.trace_id == trace)
        and (since is None or span.start_ns >= since)
        and (until is None or span.start_ns < until)
    )


def _log_kept(
    record: LogRecord, trace: str | None, since: int | None, until: int | None, run: str | None
) -> bool:
    from modeltel.read.runs import RUN_KEY

    return (
        (run is None or record.resource.attributes.get(RUN_KEY) == run)
        and (trace is None or record.trace_id == trace)
        and (since is None or record.when_ns >= since)
        and (until is None or record.when_ns < until)
    )


def _metrics_kept(
    metrics: list[Metric], since: int | None, until: int | None, run: str | None = None
) -> list[Metric]:
    """``metrics`` (of ``run``) with only the points recorded in ``[since, until)``; a metric left
    with none goes."""
    import dataclasses

    from modeltel.read.runs import RUN_KEY

    if run is not None:
        metrics = [m for m in metrics if m.resource.attributes.get(RUN_KEY) == run]
    if since is None and until is None:
        return metrics
    kept = []
    for metric in metrics:
        points = [
            p
            for p in metric.points
            if (since is None or p.time_ns >= since) and (until is None or p.time_ns < until)
        ]
        if points:
            kept.append(dataclasses.replace(metric, points=points))
    return kept
