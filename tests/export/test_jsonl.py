"""The JSONL exporters: entry points, per-process files, and write errors that never reach the app."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from modeltel._internal.config import load_settings
from modeltel._internal.export.jsonl import JsonlSpanExporter
from otlp_files import base_env, jsonl_files, spans


def test_stock_sdk_configurator_finds_jsonl_by_entry_point(tmp_path: Path) -> None:
    code = """
    from opentelemetry import trace, metrics
    from opentelemetry.sdk._configuration import _initialize_components
    _initialize_components(trace_exporter_names=["jsonl"], metric_exporter_names=["jsonl"])
    with trace.get_tracer("t").start_as_current_span("via-entry-point"): pass
    metrics.get_meter("t").create_counter("c").add(1)
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=base_env(tmp_path, OTEL_SERVICE_NAME="ep"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert [s.name for s, _, _ in spans(tmp_path)] == ["via-entry-point"]
    assert jsonl_files(tmp_path, "metrics")[0].name.startswith("ep-")


def test_built_by_the_stock_sdk_the_exporters_still_redact(tmp_path: Path) -> None:
    """With no modeltel pipeline in front, the entry-point exporters redact on their own: span and
    metric attributes, the resource, and the numbers the process summary adds up."""
    code = """
    from opentelemetry import trace, metrics
    from opentelemetry.sdk._configuration import _initialize_components
    _initialize_components(trace_exporter_names=["jsonl"], metric_exporter_names=["jsonl"])
    with trace.get_tracer("t").start_as_current_span("s") as span:
        span.set_attribute("xApiKey", "sk-ep-span-1f2e")
        span.set_attribute("password", 918273645)
    metrics.get_meter("t").create_counter("c").add(1, {"authorization": "sk-ep-metric-3d4c"})
    trace.get_tracer_provider().shutdown()
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=base_env(tmp_path, OTEL_SERVICE_NAME="ep", OTEL_RESOURCE_ATTRIBUTES="team.token=sk-ep-res-5b6a"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    written = {str(p.relative_to(tmp_path)): p.read_text() for p in tmp_path.rglob("*.jsonl")}
    assert "summaries.jsonl" in written and len(written) == 3
    leaks = [
        (name, secret)
        for name, text in written.items()
        for secret in ("sk-ep-span-1f2e", "sk-ep-metric-3d4c", "sk-ep-res-5b6a", "918273645")
        if secret in text
    ]
    assert leaks == []
    assert all("<redacted>" in text for name, text in written.items() if name != "summaries.jsonl")


def _finished_spans(n: int) -> list:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "svc/with space"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    for i in range(n):
        with provider.get_tracer("t").start_as_current_span(f"s{i}"):
            pass
    return list(memory.get_finished_spans())


def test_one_line_per_batch_and_file_name_is_safe(tmp_path: Path) -> None:
    exporter = JsonlSpanExporter(load_settings({}, data_dir=tmp_path))
    assert exporter.export(_finished_spans(3)) is SpanExportResult.SUCCESS
    assert exporter.export(_finished_spans(2)) is SpanExportResult.SUCCESS
    (path,) = jsonl_files(tmp_path, "traces")
    assert path.name.startswith(f"svc_with_space-{os.getpid()}-")
    assert len(path.read_text().splitlines()) == 2
    assert len(spans(tmp_path)) == 5


def test_write_errors_warn_once_drop_and_never_raise(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    exporter = JsonlSpanExporter(load_settings({}, data_dir=data))
    assert exporter.export(_finished_spans(1)) is SpanExportResult.SUCCESS
    (path,) = jsonl_files(data, "traces")
    exporter.file.close()
    # The date directory is replaced by a plain file mid-run: every open now fails (even as root).
    for leftover in path.parent.iterdir():
        leftover.unlink()
    path.parent.rmdir()
    path.parent.write_text("")
    with caplog.at_level(logging.WARNING):
        results = [exporter.export(_finished_spans(2)) for _ in range(3)]
    assert results == [SpanExportResult.FAILURE] * 3
    warnings = [r for r in caplog.records if "cannot write" in r.getMessage()]
    assert len(warnings) == 1 and str(data) in warnings[0].getMessage()
    assert exporter.errors.dropped == 6


def test_symlinks_planted_in_the_data_dir_are_not_followed(tmp_path: Path) -> None:
    data, outside = tmp_path / "data", tmp_path / "outside"
    outside.mkdir()
    data.mkdir()
    (data / "traces").symlink_to(outside, target_is_directory=True)
    exporter = JsonlSpanExporter(load_settings({}, data_dir=data))
    assert exporter.export(_finished_spans(1)) is SpanExportResult.FAILURE
    assert list(outside.iterdir()) == []
    (data / "traces").unlink()
    target = tmp_path / "victim.txt"
    target.write_text("untouched\n")
    (data / "summaries.jsonl").symlink_to(target)
    exporter.export(_finished_spans(1))
    exporter.shutdown()  # writes the process summary: must refuse the planted link
    assert target.read_text() == "untouched\n"


def test_a_file_deleted_while_in_use_is_recreated(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    exporter = JsonlSpanExporter(load_settings({}, data_dir=tmp_path))
    exporter.export(_finished_spans(1))
    (path,) = jsonl_files(tmp_path, "traces")
    path.unlink()
    with caplog.at_level(logging.WARNING):
        assert exporter.export(_finished_spans(2)) is SpanExportResult.SUCCESS
    assert any("deleted while in use" in r.getMessage() for r in caplog.records)
    assert len(spans(tmp_path)) == 2  # the new file holds what came after the deletion
