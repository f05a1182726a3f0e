"""``modeltel logs [PATH...] [--data-dir D] [--trace ID | --last] [--run ID | --last-run] [--level L]
[--since T] [--until T] [--grep TEXT] [--format table|json]``.

Log records in time order, with their time, level, service, pid, logger (the scope: Python's
logger name), short trace and span ids, and message; an exception's type and message under its
record. Reads a data dir's ``logs/`` or any OTLP/JSON log file (a Collector's ``file`` exporter's);
:mod:`modeltel.read.logs` says how levels and filters work. ``--last`` is the latest trace that
logged something (else the latest trace of the trace files). ``modeltel show --trace`` lists a
trace's records with :func:`trace_records` and :func:`records_table`.

The reading modules are imported inside the functions, so ``modeltel logs --help`` loads only this.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modeltel.cli import _reading as reading

if TYPE_CHECKING:
    from modeltel.formats.otlp import LogRecord
    from modeltel.store.layout import Signal

SHORT_ID = 8
"""Hex digits of a trace or span id shown in a table (``--format json`` has them whole)."""
ERROR = 17
"""The first severity number of ``ERROR``: rows from here up are red on a terminal."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "logs",
        help="log records in time order, with their level, logger, trace and span",
        description="Log records in time order: time, level, service, pid, logger, trace, span, message.",
    )
    reading.add_source_arguments(parser, files="log files")
    reading.add_trace_arguments(parser, last_help="the latest trace that has log records")
    reading.add_run_arguments(parser)
    parser.add_argument(
        "--level",
        metavar="LEVEL",
        help="this level or higher: TRACE, DEBUG, INFO, WARN (WARNING), ERROR, FATAL (CRITICAL)",
    )
    parser.add_argument(
        "--since", metavar="T", help="records logged at or after T (ISO 8601, or 30m/2h/1d ago)"
    )
    parser.add_argument("--until", metavar="T", help="records logged before T (ISO 8601, or 30m/2h/1d ago)")
    parser.add_argument(
        "--grep", metavar="TEXT", help="records whose message (or exception) contains TEXT (case-sensitive)"
    )
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    return reading.run("logs", _logs, args)


def _logs(args: argparse.Namespace) -> int:
    from modeltel.read.logs import LogQuery, last_logged_trace, parse_level, read_logs

    files, described = _files(args, "logs")
    since, until = reading.window(args)
    trace = reading.trace_id(args)
    min_severity = 0
    if args.level is not None:
        try:
            min_severity = parse_level(args.level)
        except ValueError as exc:
            raise reading.CommandError(f"--level: {exc}") from None
    if not files:
        raise reading.CommandError(f"no log files in {described}", reading.EXIT_FAILURE)
    bad = reading.BadLines("logs")
    run_id = _choose_run(args, files, described, wanted_one_trace=trace is not None or args.last)
    if run_id is not None:
        files = _run_files(files, run_id, described)
    if args.last:
        trace = last_logged_trace(files, run_id=run_id, on_bad_line=bad) or _last_trace(args, run_id, bad)
        if trace is None:
            raise reading.CommandError(f"no trace in {described}", reading.EXIT_FAILURE)
    query = LogQuery(trace, run_id, min_severity, since, until, args.grep)
    total = sum(p.stat().st_size for p in files)
    with reading.ProgressBar(total, "reading") as bar:
        records = read_logs(files, query, on_bad_line=bad, progress=bar.advance)
    if args.format == "json":
        document = {
            "source": described,
            "files": len(files),
            "trace_id": trace,
            "run_id": run_id,
            "records": [record_json(r) for r in records],
            "bad_lines": bad.to_json(),
        }
        _dump(document)
        return reading.EXIT_OK
    scope = f"trace {trace}" if trace else described
    if run_id is not None:
        scope += f", run {run_id}"
    print(f"{scope}: {reading.counted(len(records), 'log record')} in {reading.counted(len(files), 'file')}")
    if records:
        print()
        print(records_table(records, reading.use_color(sys.stdout)))
    return reading.EXIT_OK


def _files(args: argparse.Namespace, signal: Signal) -> tuple[list[Path], str]:
    """The files of ``signal`` that ``PATH...`` or the data dir holds, and how to name them."""
    from modeltel.store.layout import SourceError, data_files

    paths: list[Path] = list(args.paths or [])
    data_dir = None if paths else (args.data_dir or reading.default_data_dir())
    if data_dir is not None and not data_dir.exists():
        raise reading.CommandError(f"no such data dir: {data_dir} (run something under `modeltel run` first)")
    try:
        files = data_files(paths, data_dir, signal)
    except SourceError as exc:
        raise reading.CommandError(str(exc)) from None
    return files, str(data_dir) if data_dir is not None else ", ".join(str(p) for p in paths)


def _choose_run(
    args: argparse.Namespace, files: list[Path], described: str, *, wanted_one_trace: bool
) -> str | None:
    """The run of ``--run`` / ``--last-run``; without either, a note when several are read together."""
    from modeltel.read.runs import known_runs, newest_run

    if args.last_run:
        run = newest_run(files)
        if run is None:
            raise reading.CommandError(f"no run in {described}", reading.EXIT_FAILURE)
        return run
    if args.run is not None:
        wanted = args.run.strip()
        if not wanted:
            raise reading.CommandError("--run: empty run id")
        return reading._resolve_run(wanted, known_runs(files), described)
    runs = known_runs(files)
    if len(runs) > 1 and not wanted_one_trace:
        print(
            f"modeltel logs: note: {len(runs)} runs in {described}, read together; "
            "pick one with --last-run or --run ID (`modeltel runs` lists them)",
            file=sys.stderr,
        )
    return None


def _run_files(files: list[Path], run_id: str, described: str) -> list[Path]:
    from modeltel.read.runs import run_files

    chosen = run_files(files, run_id)
    if not chosen:
        raise reading.CommandError(f"no log records of run {run_id} in {described}", reading.EXIT_FAILURE)
    return chosen


def _last_trace(args: argparse.Namespace, run_id: str | None, bad: reading.BadLines) -> str | None:
    """The latest trace of the trace files beside the logs: ``--last`` when no record is in a span."""
    from modeltel.read.query import last_trace_id

    files, _ = _files(args, "traces")
    return last_trace_id(files, run_id=run_id, on_bad_line=bad)


def trace_records(
    args: argparse.Namespace, trace: str, run_id: str | None, bad: reading.BadLines
) -> list[LogRecord]:
    """The records of ``trace`` in the log files of the sources ``args`` names, in time order."""
    from modeltel.read.logs import LogQuery, read_logs

    files, _ = _files(args, "logs")
    return read_logs(files, LogQuery(trace_id=trace, run_id=run_id), on_bad_line=bad)


def records_section(records: list[LogRecord], color: bool) -> str:
    """``N log records`` and their table: what ``show --trace`` prints under the span table."""
    return f"{reading.counted(len(records), 'log record')}\n{records_table(records, color)}"


def records_table(records: list[LogRecord], color: bool) -> str:
    """One row per record, the exception (type: message) of a record that has one under it."""
    from modeltel.read.logs import level_name, log_message, severity

    headers = ("time (UTC)", "level", "service", "pid", "logger", "trace", "span", "message")
    cells = [
        (
            _time(record.when_ns),
            level_name(record),
            record.resource.service_name,
            _pid(record),
            record.scope.name or "-",
            record.trace_id[:SHORT_ID] or "-",
            record.span_id[:SHORT_ID] or "-",
            log_message(record),
        )
        for record in records
    ]
    return reading.render_table(
        headers,
        cells,
        color=color,
        highlight=lambda i: severity(records[i]) >= ERROR,
        details=lambda i: _exception(records[i]),
        left=len(headers),
    )


def _exception(record: LogRecord) -> list[str]:
    kind = record.attributes.get("exception.type")
    message = record.attributes.get("exception.message")
    if not isinstance(kind, str) and not isinstance(message, str):
        return []
    text = str(kind) if isinstance(kind, str) else "exception"
    return [f"{text}: {message}" if isinstance(message, str) else text]


def _time(ns: int, iso: bool = False) -> str:
    """``2027-01-15 08:00:03.000`` for a table, ``2027-01-15T08:00:03.000000001Z`` (every digit)
    with ``iso``; "-" for no time."""
    if not ns:
        return "-"
    try:
        moment = datetime.fromtimestamp(ns // 1_000_000_000, UTC)
    except (OverflowError, OSError, ValueError):  # past the year 9999: shown as the number it is
        return str(ns)
    if iso:
        return f"{moment:%Y-%m-%dT%H:%M:%S}.{ns % 1_000_000_000:09d}Z"
    return f"{moment:%Y-%m-%d %H:%M:%S}.{ns % 1_000_000_000 // 1_000_000:03d}"


def _pid(record: LogRecord) -> str:
    pid = record.resource.attributes.get("process.pid")
    return str(pid) if isinstance(pid, int) and not isinstance(pid, bool) else "-"


def record_json(record: LogRecord) -> dict[str, Any]:
    """One record for ``--format json``: every field, the level and message as the table shows them."""
    from modeltel.read.logs import json_value, level_name, log_message

    return {
        "time": _time(record.when_ns, iso=True),
        "time_unix_nano": record.time_ns,
        "observed_time_unix_nano": record.observed_ns,
        "level": level_name(record),
        "severity_number": record.severity_number,
        "severity_text": record.severity_text,
        "logger": record.scope.name,
        "message": log_message(record),
        "body": json_value(record.body),
        "attributes": json_value(record.attributes),
        "trace_id": record.trace_id,
        "span_id": record.span_id,
        "flags": record.flags,
        "event_name": record.event_name,
        "service": record.resource.service_name,
        "pid": json_value(record.resource.attributes.get("process.pid")),
        "resource": json_value(record.resource.attributes),
    }


def _dump(document: dict[str, Any]) -> None:
    import json

    json.dump(document, sys.stdout, indent=2, allow_nan=False, ensure_ascii=False)
    sys.stdout.write("\n")
