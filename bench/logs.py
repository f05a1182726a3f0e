"""Per-record cost of ``logger.info`` inside a span: modeltel's logs pipeline against the SDK floor and
against no OpenTelemetry.

Run by hand (``.venv/bin/python bench/logs.py``); a report, never a test: it prints a table and exits
0 whatever the numbers are.

Everything timed runs in ONE process, interleaved (N F Fq M, N F Fq M, ..., after one warm-up round);
each row is the median of the repeats, and ratios are medians of per-round ratios. Every variant
logs the same ``logger.info("step %d of %s", i, "fit")`` on its own logger, inside a span of a
``TracerProvider`` (no span processor), with a ``NullHandler`` standing for the app's own handler,
and ``force_flush`` is inside the timed region, so exporting is counted, not left to a thread.

- N   no OpenTelemetry: the logger and its handler only.
- F   the floor: the SDK ``LoggerProvider`` + ``BatchLogRecordProcessor`` (default settings) + an
      exporter that discards, fed by ``opentelemetry-instrumentation-logging``'s ``LoggingHandler``
      on the logger.
- Fq  the same with a queue that holds every record of a round (the default one may drop).
- M   modeltel: its bridge (``_internal/logs.py``, installed for M's rounds only: it hooks every
      logger), the redaction stage and the log file with back-pressure, writing to a temporary data
      dir. The records on disk are counted after the run: the target holds only with all of them.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from machine import describe
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from modeltel._internal import logs as bridge
from modeltel._internal.config import load_settings
from modeltel._internal.export.logs import LogRedactionStage, local_copy
from modeltel._internal.export.redact import Redactor

TARGET_M_OVER_F = 1.3
RESOURCE = Resource.create({"service.name": "bench"})


class Discard(LogRecordExporter):
    def __init__(self) -> None:
        self.received = 0

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        self.received += len(batch)
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _logger(name: str) -> logging.Logger:
    logger = logging.getLogger(f"bench.{name}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(logging.NullHandler())
    return logger


class Variant:
    """One row: a logger, what to do around each round, and how to flush."""

    def __init__(self, name: str, logger: logging.Logger, flush: Callable[[], object]) -> None:
        self.name, self.logger, self.flush = name, logger, flush
        self.before: Callable[[], None] = lambda: None
        self.after: Callable[[], None] = lambda: None
        self.times: list[float] = []


def floor(name: str, queue: int | None) -> tuple[Variant, Discard]:
    provider = LoggerProvider(resource=RESOURCE, shutdown_on_exit=False)
    discard = Discard()
    kwargs = {} if queue is None else {"max_queue_size": queue, "max_export_batch_size": 512}
    provider.add_log_record_processor(BatchLogRecordProcessor(discard, **kwargs))
    logger = _logger(name)
    logger.addHandler(LoggingHandler(logger_provider=provider))
    return Variant(name, logger, provider.force_flush), discard


def modeltel_variant(data_dir: Path) -> tuple[Variant, Path]:
    settings = load_settings({"MODELTEL_DATA_DIR": str(data_dir), "OTEL_SERVICE_NAME": "bench"})
    provider = LoggerProvider(resource=RESOURCE, shutdown_on_exit=False)
    copy = local_copy(settings)
    stage = LogRedactionStage(Redactor(settings.redact_keys), [copy])
    provider.add_log_record_processor(stage)
    variant = Variant("M", _logger("modeltel"), stage.force_flush)
    variant.before = lambda: bridge.install(provider)
    variant.after = bridge.uninstall
    return variant, data_dir


def on_disk(data_dir: Path) -> int:
    count = 0
    for path in sorted((data_dir / "logs").glob("*/*.jsonl")):
        for line in path.read_text().splitlines():
            for resource_logs in json.loads(line)["resourceLogs"]:
                for scope_logs in resource_logs["scopeLogs"]:
                    count += len(scope_logs["logRecords"])
    return count


def run_round(variant: Variant, tracer: Any, records: int) -> float:
    logger = variant.logger
    variant.before()
    try:
        with tracer.start_as_current_span("round"):
            started = time.perf_counter()
            for i in range(records):
                logger.info("step %d of %s", i, "fit")
            variant.flush()
            elapsed = time.perf_counter() - started
    finally:
        variant.after()
    return elapsed / records


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000, help="records per variant per round")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)
    print(describe(("opentelemetry-sdk", "opentelemetry-instrumentation-logging", "modeltel")))
    tracer = TracerProvider().get_tracer("bench")
    with tempfile.TemporaryDirectory() as folder:
        f, f_discard = floor("F", None)
        fq, fq_discard = floor("Fq", args.records)
        m, data_dir = modeltel_variant(Path(folder) / "data")
        n = Variant("N", _logger("none"), lambda: None)
        variants = [n, f, fq, m]
        for variant in variants:  # warm-up round, not counted
            run_round(variant, tracer, args.records)
        for _ in range(args.repeats):
            for variant in variants:
                variant.times.append(run_round(variant, tracer, args.records))
        logged = (args.repeats + 1) * args.records
        disk = on_disk(data_dir)
    print(f"{args.records} records per round, {args.repeats} rounds (+1 warm-up), one process, interleaved\n")
    print(f"{'variant':<8}{'median µs/record':>18}  delivered")
    delivered = {
        "N": "-",
        "F": f"{f_discard.received / logged:.1%} to the exporter",
        "Fq": f"{fq_discard.received / logged:.1%} to the exporter",
        "M": f"{disk / logged:.1%} on disk",
    }
    for variant in variants:
        print(f"{variant.name:<8}{statistics.median(variant.times) * 1e6:>18.2f}  {delivered[variant.name]}")

    def ratio(a: Variant, b: Variant) -> float:
        return statistics.median(x / y for x, y in zip(a.times, b.times, strict=True))

    print()
    print(f"M / F  = {ratio(m, f):.3f}  (target <= {TARGET_M_OVER_F}, with 100% on disk: {disk}/{logged})")
    print(f"M / Fq = {ratio(m, fq):.3f}")
    print(f"M / N  = {ratio(m, n):.2f}   F / N = {ratio(f, n):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
