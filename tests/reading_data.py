"""Data for the reader and the reading commands' tests: real runs, a Collector-style file, damage.

- :func:`example_run`: ``modeltel run`` on ``examples/otel_api_app.py`` (a real process, real files).
- :func:`collector_file`: a hand-written file the way other producers write OTLP/JSON: upper-case
  hex ids, 64-bit integers as JSON numbers, ``instrumentationLibrarySpans``, status message before
  code, optional fields missing. Its numbers are known, so tests assert exact values.
- :func:`damaged_dir`: a real run's lines with a garbage line in the middle and a torn last line.
- :func:`sdk_file`: many spans from the SDK through modeltel's own JSONL exporter, with every
  attribute type, events, links, errors and escapes: the canonical layout the fast path reads.
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, Status, StatusCode

from modeltel._internal.config import load_settings
from modeltel._internal.export.jsonl import JsonlSpanExporter
from otlp_files import BIN, base_env, jsonl_files, run_under_modeltel

COLLECTOR_TRACE = "5b8efff798038103d269b633813fc60c"
"""The trace of :data:`COLLECTOR_LINES` (written there in upper case)."""
COLLECTOR_LINES = [
    {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "collector-svc"}}]
                },
                "instrumentationLibrarySpans": [
                    {
                        "instrumentationLibrary": {"name": "legacy.lib", "version": "0.9"},
                        "spans": [
                            {
                                "traceId": COLLECTOR_TRACE.upper(),
                                "spanId": "EEE19B7EC3C1B174",
                                "name": "chat gpt-4o",
                                "kind": 3,
                                "startTimeUnixNano": 1544712660000000000,
                                "endTimeUnixNano": 1544712661000000000,
                                "attributes": [
                                    {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                                    {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
                                    {"key": "gen_ai.usage.input_tokens", "value": {"intValue": 120}},
                                    {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 30}},
                                    {"key": "modeltel.inference.cost_usd", "value": {"doubleValue": 0.002}},
                                    {"key": "modeltel.inference.ttft_s", "value": {"doubleValue": 0.25}},
                                ],
                                "status": {},
                            },
                            {
                                "traceId": COLLECTOR_TRACE.upper(),
                                "spanId": "EEE19B7EC3C1B175",
                                "parentSpanId": "EEE19B7EC3C1B174",
                                "name": "retrieve",
                                "startTimeUnixNano": "1544712660100000000",
                                "endTimeUnixNano": "1544712660300000000",
                                "status": {"message": "timeout", "code": 2},
                            },
                        ],
                    }
                ],
            }
        ]
    },
    {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "collector-svc"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "new.lib"},
                        "spans": [
                            {
                                "traceId": COLLECTOR_TRACE,
                                "spanId": "eee19b7ec3c1b176",
                                "parentSpanId": "eee19b7ec3c1b174",
                                "name": "chat gpt-4o",
                                "kind": "SPAN_KIND_CLIENT",
                                "startTimeUnixNano": "1544712661000000000",
                                "endTimeUnixNano": "1544712664000000000",
                                "attributes": [
                                    {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                                    {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
                                    {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "80"}},
                                    {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "90"}},
                                    {"key": "modeltel.inference.cost_usd", "value": {"doubleValue": 0.004}},
                                ],
                                "events": [{"timeUnixNano": 1544712662000000000, "name": "first token"}],
                                "status": {"code": "STATUS_CODE_OK"},
                            }
                        ],
                    }
                ],
            }
        ]
    },
]
"""Three spans: two ``chat gpt-4o`` calls (1 s and 3 s; 200 and 170 tokens; $0.006) and an error."""


def collector_file(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "collector-out.json"
    path.write_text("".join(json.dumps(line) + "\n" for line in COLLECTOR_LINES))
    return path


def example_run(data_dir: Path, **env: str) -> Path:
    """Run the example app under ``modeltel run``; returns the data dir it wrote."""
    result = run_under_modeltel(data_dir, OTEL_SERVICE_NAME="sweep", **env)
    assert result.returncode == 0, result.stderr
    return data_dir


def damaged_dir(source: Path, folder: Path) -> tuple[Path, int, int, int]:
    """``folder`` with one trace file: the lines of ``source``'s traces, a garbage line, a torn last line.

    Returns ``(file, garbage line number, torn line number, spans in the good lines)``.
    """
    lines = [line for path in jsonl_files(source, "traces") for line in path.read_text().splitlines()]
    good = [*lines, json.dumps(COLLECTOR_LINES[1])]
    garbage = 'this is not JSON {"resourceSpans": ['
    torn = lines[0][: len(lines[0]) // 2]
    day = folder / "traces" / "2026-01-02"
    day.mkdir(parents=True)
    path = day / "damaged-1-2.jsonl"
    path.write_text("\n".join([good[0], garbage, *good[1:], torn]))
    spans = sum(line.count('"startTimeUnixNano"') for line in good)
    return path, 2, len(good) + 2, spans


def sdk_file(folder: Path, count: int, *, seed: int = 7, batch: int = 64) -> Path:
    """``count`` SDK spans written by modeltel's JSONL exporter into ``folder`` (a data dir)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "sdk-writer"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("modeltel", "0.1.0")
    rng = random.Random(seed)
    models = ["llama3.1", "gpt-4o-mini", 'quote"model', "ünïcode-✓"]
    with tracer.start_as_current_span(
        "simulation.job", attributes={"modeltel.simulation.n_tasks": count}
    ) as root:
        for i in range(count - 1):
            kind = rng.random()
            links = [Link(root.get_span_context(), {"why": "follows"})] if i % 97 == 0 else []
            with tracer.start_as_current_span(_name(kind, models, i), links=links) as span:
                _decorate(span, kind, rng, models, i)
    settings = load_settings({"MODELTEL_DATA_DIR": str(folder)}, check_dirs=False)
    exporter = JsonlSpanExporter(settings)
    finished = list(memory.get_finished_spans())
    for start in range(0, len(finished), batch):
        exporter.export(finished[start : start + batch])
    exporter.file.close()
    (path,) = jsonl_files(folder, "traces")
    return path


def _name(kind: float, models: list[str], i: int) -> str:
    if kind < 0.5:
        return "simulation.run"
    if kind < 0.7:
        return "calibration.iteration"
    if kind < 0.75:
        return 'odd "name" \\ with\ttab'
    return f"chat {models[i % len(models)]}"


def _decorate(span: object, kind: float, rng: random.Random, models: list[str], i: int) -> None:
    set_attribute = span.set_attribute  # type: ignore[attr-defined]
    if kind < 0.5:
        set_attribute("modeltel.simulation.seed", i)
        set_attribute("modeltel.simulation.model", "sir" if i % 3 else "seir")
        set_attribute("modeltel.simulation.weights", [0.5, 1.5])
        set_attribute("label", "braces {} and ] [brackets], in a value")
    elif kind < 0.7:
        set_attribute("modeltel.calibration.iteration", i)
        set_attribute("modeltel.calibration.best_loss", rng.random())
        if i % 11 == 0:
            span.add_event("checkpoint", {"gen_ai.usage.input_tokens": 999_999})  # type: ignore[attr-defined]
    elif kind >= 0.75:
        model = models[i % len(models)]
        set_attribute("gen_ai.request.model", model)
        set_attribute("gen_ai.provider.name", "ollama" if i % 2 else "openai")
        set_attribute("gen_ai.usage.input_tokens", rng.randrange(10, 2000))
        set_attribute("gen_ai.usage.output_tokens", rng.randrange(1, 500))
        set_attribute("modeltel.inference.cost_usd", rng.random() / 100)
        if i % 2:
            set_attribute("modeltel.inference.ttft_s", rng.random())
        else:
            set_attribute("gen_ai.response.time_to_first_chunk", rng.random())
    if i % 13 == 0:
        span.set_status(Status(StatusCode.ERROR, "bad seed"))  # type: ignore[attr-defined]
        message = "{unbalanced" if i == 650 else "bad seed"  # one line with a lone brace in a string
        span.add_event("exception", {"exception.type": "ValueError", "exception.message": message})  # type: ignore[attr-defined]


def modeltel(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The ``modeltel`` command in a clean environment (no inherited OTEL_/MODELTEL_ variables)."""
    env = base_env(cwd or Path.cwd())
    env.pop("MODELTEL_DATA_DIR")
    env["COLUMNS"] = "200"
    return subprocess.run(
        [str(BIN / "modeltel"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


SPAN_FIELDS = {
    "traceID": str, "spanID": str, "flags": int, "operationName": str, "references": list,
    "startTime": int, "duration": int, "tags": list, "logs": list, "processID": str, "warnings": type(None),
}  # fmt: skip
VALUE_TYPES = {"string": str, "bool": bool, "int64": int, "float64": float, "binary": str}


def check_jaeger_model(document: dict[str, Any]) -> None:
    """Every field Jaeger's JSON model (``model/json/model.go``) has, with its type, and no other.

    Jaeger's UI opens a file in the shape its query API returns: ``{"data": [Trace]}``, where
    Trace = {traceID, spans, processes: {id: Process}, warnings}, Span = {traceID, spanID, flags,
    operationName, references: [{refType, traceID, spanID}], startTime (µs), duration (µs),
    tags: [KeyValue], logs: [{timestamp (µs), fields: [KeyValue]}], processID, warnings},
    KeyValue = {key, type in string|bool|int64|float64|binary, value}, Process = {serviceName, tags}.
    """
    assert set(document) >= {"data"}
    for trace in document["data"]:
        assert set(trace) == {"traceID", "spans", "processes", "warnings"}
        assert len(trace["traceID"]) == 32 and trace["traceID"] == trace["traceID"].lower()
        for process in trace["processes"].values():
            assert set(process) == {"serviceName", "tags"} and isinstance(process["serviceName"], str)
            for tag in process["tags"]:
                check_key_value(tag)
        for span in trace["spans"]:
            assert set(span) == set(SPAN_FIELDS)
            for field, kind in SPAN_FIELDS.items():
                assert isinstance(span[field], kind), field
            assert span["traceID"] == trace["traceID"] and len(span["spanID"]) == 16
            assert span["processID"] in trace["processes"]
            for reference in span["references"]:
                assert set(reference) == {"refType", "traceID", "spanID"}
                assert reference["refType"] in ("CHILD_OF", "FOLLOWS_FROM")
            for tag in span["tags"]:
                check_key_value(tag)
            for log in span["logs"]:
                assert set(log) == {"timestamp", "fields"} and isinstance(log["timestamp"], int)
                for tag in log["fields"]:
                    check_key_value(tag)


def check_key_value(tag: dict[str, Any]) -> None:
    assert set(tag) == {"key", "type", "value"}
    assert isinstance(tag["value"], VALUE_TYPES[tag["type"]]), tag
