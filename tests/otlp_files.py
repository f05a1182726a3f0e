"""Test helpers: run programs under modeltel and decode its files with the official OTLP messages.

Decoding goes through ``opentelemetry-proto`` and protobuf's JSON parser, after turning OTLP/JSON's
hex ids back into the base64 that protobuf's JSON mapping expects, so a file that is not valid
OTLP/JSON fails here.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from google.protobuf.json_format import ParseDict
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_APP = REPO / "examples" / "otel_api_app.py"
BIN = Path(sys.executable).parent


def hex_to_base64(node: Any) -> Any:
    """OTLP/JSON ids are hex; protobuf's JSON parser wants base64 for bytes fields."""
    if isinstance(node, dict):
        return {
            k: base64.b64encode(bytes.fromhex(v)).decode()
            if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str)
            else hex_to_base64(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [hex_to_base64(v) for v in node]
    return node


def jsonl_files(data_dir: Path, signal: str) -> list[Path]:
    return sorted((data_dir / signal).glob("*/*.jsonl"))


def trace_requests(data_dir: Path) -> list[ExportTraceServiceRequest]:
    out = []
    for path in jsonl_files(data_dir, "traces"):
        for line in path.read_text().splitlines():
            out.append(ParseDict(hex_to_base64(json.loads(line)), ExportTraceServiceRequest()))
    return out


def metric_requests(data_dir: Path) -> list[ExportMetricsServiceRequest]:
    out = []
    for path in jsonl_files(data_dir, "metrics"):
        for line in path.read_text().splitlines():
            out.append(ParseDict(hex_to_base64(json.loads(line)), ExportMetricsServiceRequest()))
    return out


def spans(data_dir: Path) -> list[Any]:
    """Every span in the trace files, each with ``.resource`` and ``.scope`` attached as a tuple."""
    found = []
    for request in trace_requests(data_dir):
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    found.append((span, rs.resource, ss.scope))
    return found


def attrs(key_values: Any) -> dict[str, Any]:
    """Protobuf KeyValue list → plain dict (arrays become lists)."""

    def value(v: Any) -> Any:
        kind = v.WhichOneof("value")
        if kind == "array_value":
            return [value(x) for x in v.array_value.values]
        return getattr(v, kind) if kind else None

    return {kv.key: value(kv.value) for kv in key_values}


def summaries(data_dir: Path) -> list[dict[str, Any]]:
    path = data_dir / "summaries.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def base_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """A clean environment: no inherited OTEL_/MODELTEL_ variable may change what a test sees."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MODELTEL_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["MODELTEL_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


def run_under_modeltel(
    data_dir: Path, *args: str, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    """``modeltel run -- python examples/otel_api_app.py`` (or ``args``) with a clean environment."""
    command = [str(BIN / "modeltel"), "run", "--", sys.executable, *(args or (str(EXAMPLE_APP),))]
    return subprocess.run(
        command, env=base_env(data_dir, **env), capture_output=True, text=True, timeout=timeout
    )
