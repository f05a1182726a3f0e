"""The batch processor in front of network exporters: a full queue drops new spans, counts every
one, and warns once, not once per span."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from modeltel._internal import semconv
from modeltel._internal.export.guard import CountingBatchSpanProcessor, dropped_counter


class StalledExporter(SpanExporter):
    """Holds the first batch until released, as a receiver that never answers would."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.exported: list[str] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.release.wait(30)
        self.exported.extend(span.name for span in spans)
        return SpanExportResult.SUCCESS


def test_full_queue_drops_new_spans_counts_each_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    reader = InMemoryMetricReader()
    exporter = StalledExporter()
    processor = CountingBatchSpanProcessor(
        exporter,
        "otlp",
        dropped_counter(MeterProvider(metric_readers=[reader])),
        max_queue_size=8,
        max_export_batch_size=4,
        schedule_delay_millis=10,
    )
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    for i in range(4):
        tracer.start_span(f"first-{i}").end()
    assert exporter.entered.wait(10)  # the worker holds four spans inside the stalled export
    with caplog.at_level(logging.WARNING):
        for i in range(100):
            tracer.start_span(f"later-{i}").end()
    exporter.release.set()
    provider.shutdown()

    points = [
        point
        for metric in reader.get_metrics_data().resource_metrics[0].scope_metrics[0].metrics
        if metric.name == semconv.METRIC_EXPORT_DROPPED
        for point in metric.data.data_points
    ]
    assert [dict(p.attributes) for p in points] == [
        {semconv.EXPORTER_NAME: "otlp", semconv.DROP_REASON: "queue_full"}
    ]
    assert points[0].value == 100 - 8  # the queue kept the first eight; every later span counted
    later = [name for name in exporter.exported if name.startswith("later-")]
    assert later == [f"later-{i}" for i in range(8)]  # the oldest are kept, the new ones dropped
    assert len(exporter.exported) == 4 + 8
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "queue is full (8 spans)" in warnings[0].getMessage()
    assert not any("Queue full" in r.getMessage() for r in caplog.records)  # the SDK's per-span log
