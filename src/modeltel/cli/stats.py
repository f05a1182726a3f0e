"""``modeltel stats --by model|engine|name|KEY [PATH...] [--since T] [--until T] [--format table|json|csv]``.

Per group: calls, errors, tokens in/out, latency mean/p50/p95, time to first token, cost and
throughput, and the p10/p25/p50/p75/p90 spread of tokens, cost and duration. ``model`` is the
first of ``gen_ai.request.model``, ``gen_ai.response.model``, ``modeltel.inference.model``,
``modeltel.simulation.model`` a span carries; ``engine`` the first of ``gen_ai.provider.name``,
``gen_ai.system``, ``modeltel.inference.framework``; any other value is a span attribute key.
Spans without the key are left out (``--by name`` keeps every span).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import TYPE_CHECKING, Any

from modeltel.cli import _reading as reading

if TYPE_CHECKING:
    from modeltel.read.reports import Spread, StatsRow


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "stats",
        help="calls, tokens, latency, ttft, cost and throughput per model / engine / name / attribute",
        description="Aggregates per model, engine, span name or any span attribute, over a time window.",
    )
    parser.add_argument(
        "--by", default="model", metavar="KEY", help="model (default), engine, name, or a span attribute key"
    )
    reading.add_source_arguments(parser)
    reading.add_window_arguments(parser)
    reading.add_run_arguments(parser)
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    return reading.run("stats", _stats, args)


def _stats(args: argparse.Namespace) -> int:
    from modeltel.read.query import aggregate
    from modeltel.read.reports import group_keys, stats_query, stats_rows

    if not args.by.strip():
        raise reading.CommandError("--by: empty key")
    found = reading.sources(args)
    since, until = reading.window(args)
    bad = reading.BadLines("stats")
    total = sum(p.stat().st_size for p in found.trace_files)
    with reading.ProgressBar(total, "reading") as bar:
        result = aggregate(
            found.trace_files,
            stats_query(args.by, since_ns=since, until_ns=until, run_id=found.run_id),
            progress=bar.advance,
            on_bad_line=bad,
        )
    rows = stats_rows(result.table)
    if not rows and args.format == "table":
        keys = ", ".join(group_keys(args.by)) or "a name"
        raise reading.CommandError(f"no spans with {keys} in {found.described}", reading.EXIT_FAILURE)
    if args.format == "json":
        document = {
            "source": found.described,
            "by": args.by,
            "run_id": found.run_id,
            "keys": list(group_keys(args.by)) or ["span name"],
            "since_unix_nano": since,
            "until_unix_nano": until,
            "groups": [row.to_json() for row in rows],
            "bad_lines": bad.to_json(),
        }
        json.dump(document, sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
    elif args.format == "csv":
        records = [row.flat() for row in rows]
        header = list(records[0]) if records else ["group", "calls", "errors"]
        writer = csv.DictWriter(sys.stdout, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
    else:
        color = reading.use_color(sys.stdout)
        print(_main_table(rows, color))
        print()
        print(_spread_table(rows, color))
    return reading.EXIT_OK


def _seconds(value: float | None) -> str:
    from modeltel.read.reports import format_seconds

    return "-" if value is None else format_seconds(value)


def _amount(value: float | None) -> str:
    return reading.number(value, 6) if value is not None and abs(value) < 1 else reading.number(value)


def _main_table(rows: list[StatsRow], color: bool) -> str:
    headers = (
        "group", "calls", "errors", "tokens in", "tokens out", "latency mean", "p50", "p95",
        "ttft p50", "ttft p95", "cost usd", "tokens/s",
    )  # fmt: skip
    cells = [
        (
            row.group,
            reading.count(row.calls),
            reading.count(row.errors),
            reading.number(row.tokens_in.sum, 12) if row.tokens_in.count else "-",
            reading.number(row.tokens_out.sum, 12) if row.tokens_out.count else "-",
            _seconds(row.latency_s.mean),
            _seconds(row.latency_s.p50),
            _seconds(row.latency_s.p95),
            _seconds(row.ttft_s.p50),
            _seconds(row.ttft_s.p95),
            _amount(row.cost_usd.sum),
            reading.number(row.tokens_per_s.mean),
        )
        for row in rows
    ]
    return reading.render_table(headers, cells, color=color, highlight=lambda i: rows[i].errors > 0)


def _spread_table(rows: list[StatsRow], color: bool) -> str:
    from modeltel.read.reports import PERCENTILES

    headers = ("group", "metric", *(f"p{q}" for q in PERCENTILES))
    cells = []
    for row in rows:
        metrics: tuple[tuple[str, Spread, bool], ...] = (
            ("duration", row.latency_s, True),
            ("tokens in", row.tokens_in, False),
            ("tokens out", row.tokens_out, False),
            ("cost usd", row.cost_usd, False),
        )
        for label, spread, seconds in metrics:
            if not spread.count:
                continue
            shown = [_seconds(v) if seconds else _amount(v) for v in spread.percentiles.values()]
            cells.append((row.group, label, *shown))
    return reading.render_table(headers, cells, color=color, left=2)
