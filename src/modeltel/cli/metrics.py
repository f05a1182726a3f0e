"""``modeltel metrics [PATH...] [--data-dir D] [--run ID|--last-run] [--name GLOB] [--format F]``.

Every instrument of the metric files with its kind, unit and temporality, and per attribute set
the value at the end of the run: a gauge's latest reading, a counter's total (each process's last
cumulative point, added across processes), a histogram's count, sum, min, max and p50/p95/p99.
The percentiles are estimated from the bucket counts, and every output says so. Reads modeltel's
files and any OTLP/JSON metric file (a Collector's ``file`` exporter's); see
:mod:`modeltel.read.metrics` for how points add up.
"""

from __future__ import annotations

import argparse
import base64
import csv
import json
import math
import sys
from typing import TYPE_CHECKING, Any

from modeltel.cli import _reading as reading

if TYPE_CHECKING:
    from modeltel.read.metrics import Instrument, MetricsReport, Series

ESTIMATE_NOTE = "histogram percentiles are estimated from bucket counts (linear within a bucket)"
"""What every output says about p50/p95/p99: they are not exact."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "metrics",
        help="every instrument: last values, counter totals, histogram count/sum/percentiles",
        description="Instruments of the metric files, per attribute set, merged over the run's "
        f"processes; {ESTIMATE_NOTE}.",
    )
    reading.add_source_arguments(parser)
    reading.add_run_arguments(parser)
    parser.add_argument("--name", metavar="GLOB", help="only instruments whose name matches (gen_ai.*)")
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    return reading.run("metrics", _metrics, args)


def _metrics(args: argparse.Namespace) -> int:
    from modeltel.read.metrics import RunNotFound, read_metrics
    from modeltel.store import SourceError, data_files

    paths = list(args.paths or [])
    data_dir = None if paths else (args.data_dir or reading.default_data_dir())
    if data_dir is not None and not data_dir.exists():
        raise reading.CommandError(f"no such data dir: {data_dir} (run something under `modeltel run` first)")
    described = str(data_dir) if data_dir is not None else ", ".join(str(p) for p in paths)
    try:
        files = data_files(paths, data_dir, "metrics")
    except SourceError as exc:
        raise reading.CommandError(str(exc)) from None
    if not files:
        raise reading.CommandError(f"no metric files in {described}", reading.EXIT_FAILURE)
    wanted = args.run.strip() if args.run is not None else None
    if wanted == "":
        raise reading.CommandError("--run: empty run id")
    bad = reading.BadLines("metrics")
    try:
        report = read_metrics(files, names=args.name, run=wanted, last_run=args.last_run, on_bad=bad)
    except RunNotFound as exc:
        raise reading.CommandError(f"{exc} in {described}", reading.EXIT_FAILURE) from None
    if not report.instruments:
        matching = f" matching {args.name}" if args.name is not None else ""
        raise reading.CommandError(f"no metrics{matching} in {described}", reading.EXIT_FAILURE)
    if args.format == "json":
        document = {
            "source": described,
            "run_ids": report.runs,
            "files": report.files,
            "processes": report.processes,
            "note": ESTIMATE_NOTE,
            "instruments": [_clean(instrument.to_json()) for instrument in report.instruments],
            "bad_lines": bad.to_json(),
        }
        json.dump(document, sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
    elif args.format == "csv":
        _csv(report)
    else:
        print(_heading(report, described))
        color = reading.use_color(sys.stdout)
        for instrument in report.instruments:
            print()
            print(_table(instrument, color))
    return reading.EXIT_OK


def _clean(value: Any) -> Any:
    """JSON-safe: NaN and infinities (a gauge may read them) become null, bytes base64."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _heading(report: MetricsReport, described: str) -> str:
    runs = f" of run {', '.join(report.runs)}" if len(report.runs) == 1 else ""
    if len(report.runs) > 1:
        runs = f" of {len(report.runs)} runs read together (pick one with --run ID or --last-run)"
    return (
        f"{described}: {reading.counted(len(report.instruments), 'instrument')}{runs}, "
        f"{reading.counted(report.processes, 'process', 'processes')}, "
        f"{reading.counted(report.files, 'file')}; {ESTIMATE_NOTE}"
    )


def _describe(instrument: Instrument) -> str:
    parts = [instrument.kind]
    if instrument.kind == "sum":
        parts[0] = "counter" if instrument.monotonic else "up-down counter"
    parts += [f"unit {instrument.unit or '-'}"]
    if instrument.temporality:
        parts.append(instrument.temporality)
    return f"{instrument.name}  ({', '.join(parts)})"


def _table(instrument: Instrument, color: bool) -> str:
    """The instrument's title, the attributes all its series share, and a row per series whose
    first columns are the attributes that tell the series apart (a table, not a wall of keys)."""
    from modeltel.read.metrics import PERCENTILES, attribute_text

    title = reading.printable(_describe(instrument))
    if color:
        title = f"\033[1m{title}\033[0m"
    lines = [title]
    first = instrument.series[0].attributes
    common = {
        k: v
        for k, v in first.items()
        if all(k in s.attributes and s.attributes[k] == v for s in instrument.series)
    }
    if common:
        lines.append("  " + reading.printable(attribute_text(common)))
    keys = sorted({k for s in instrument.series for k in s.attributes} - set(common))
    if instrument.kind in ("gauge", "sum"):
        headers: tuple[str, ...] = (
            *keys,
            "last value" if instrument.kind == "gauge" else "total",
            "processes",
        )
    else:
        estimated = tuple(f"p{q}~" for q in PERCENTILES) if instrument.kind != "summary" else ()
        headers = (*keys, "count", "sum", "min", "max", *estimated, "processes")
    rows = [(*(_cell(s, k) for k in keys), *_numbers(instrument.kind, s)) for s in instrument.series]
    table = reading.render_table(headers, rows, left=len(keys))
    lines.extend("  " + line for line in table.splitlines())
    return "\n".join(lines)


def _cell(series: Series, key: str) -> str:
    from modeltel.read.metrics import attribute_text

    return (
        attribute_text({key: series.attributes[key]}).partition("=")[2] if key in series.attributes else "-"
    )


def _numbers(kind: str, series: Series) -> tuple[str, ...]:
    from modeltel.read.metrics import PERCENTILES

    if kind in ("gauge", "sum"):
        value = None if series.value is None else float(series.value)
        return reading.number(value, 8), reading.count(series.processes)
    shown = [reading.number(series.percentiles.get(q)) for q in PERCENTILES] if kind != "summary" else []
    return (
        reading.count(series.count or 0),
        reading.number(series.sum),
        reading.number(series.min),
        reading.number(series.max),
        *shown,
        reading.count(series.processes),
    )


def _csv(report: MetricsReport) -> None:
    """One row per series; ``attributes`` is a JSON object, p50/p95/p99 are estimates from buckets."""
    from modeltel.read.metrics import PERCENTILES

    fields = (
        "instrument", "kind", "unit", "temporality", "attributes", "processes", "value", "count", "sum",
        "min", "max", *(f"p{q}" for q in PERCENTILES),
    )  # fmt: skip
    writer = csv.DictWriter(sys.stdout, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for instrument in report.instruments:
        for series in instrument.series:
            row: dict[str, Any] = {
                "instrument": instrument.name,
                "kind": instrument.kind,
                "unit": instrument.unit,
                "temporality": instrument.temporality,
                "attributes": json.dumps(_clean(series.attributes), sort_keys=True),
                "processes": series.processes,
                "value": series.value,
                "count": series.count,
                "sum": series.sum,
                "min": series.min,
                "max": series.max,
            }
            row.update({f"p{q}": v for q, v in series.percentiles.items()})
            writer.writerow(row)
