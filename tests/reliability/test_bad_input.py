"""Bad input from every side: attribute values, environment variables, files. A clear error or a
skipped line with a warning, never a hang, never an exception into the host application."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from modeltel._internal.config import ENV_VARS, ConfigError, load_settings
from modeltel._internal.export.jsonl import JsonlSpanExporter
from modeltel._internal.export.processor import BackPressureSpanProcessor
from modeltel.read import decode_line
from otlp_files import BIN, base_env, hex_to_base64

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(600)]

anything: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()  # includes lone surrogates and control characters
    | st.binary(max_size=64),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanLimits, TracerProvider

    data = tmp_path_factory.mktemp("bad-input")
    exporter = JsonlSpanExporter(load_settings({}, data_dir=data))
    provider = TracerProvider(
        resource=Resource.create({"service.name": "bad"}), span_limits=SpanLimits(max_attribute_length=100)
    )
    processor = BackPressureSpanProcessor(exporter, max_export_batch_size=64)
    provider.add_span_processor(processor)
    return data, provider.get_tracer("bad"), processor


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.text(max_size=20), value=anything)
def test_any_attribute_value_never_raises_and_every_line_stays_valid(
    pipeline: Any, key: str, value: Any
) -> None:
    _, tracer, processor = pipeline
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with tracer.start_as_current_span("fuzz") as span:
            span.set_attribute(key, value)
            span.add_event("e", {key: value} if isinstance(key, str) else {})
    assert processor.force_flush()


def test_fuzzed_lines_decode_with_the_official_protos(pipeline: Any) -> None:
    from google.protobuf.json_format import ParseDict
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    data, _, processor = pipeline
    processor.force_flush()
    found = 0
    for path in (data / "traces").glob("*/*.jsonl"):
        for line in path.read_bytes().splitlines():
            request = ParseDict(hex_to_base64(json.loads(line.decode("utf-8"))), ExportTraceServiceRequest())
            found += sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
            for rs in request.resource_spans:
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        for kv in span.attributes:
                            if kv.value.WhichOneof("value") == "string_value":
                                assert len(kv.value.string_value) <= 100  # SpanLimits honoured
    assert found >= 300


def test_a_small_queue_alone_shrinks_the_default_batch_without_blaming_an_unset_variable() -> None:
    settings_ = load_settings({"OTEL_BSP_MAX_QUEUE_SIZE": "1"}, strict=True, check_dirs=False)
    assert (settings_.bsp_max_queue_size, settings_.bsp_max_export_batch_size) == (1, 1)
    with pytest.raises(ConfigError, match="OTEL_BSP_MAX_EXPORT_BATCH_SIZE='8'"):
        load_settings(
            {"OTEL_BSP_MAX_QUEUE_SIZE": "4", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "8"},
            strict=True,
            check_dirs=False,
        )


@settings(max_examples=200, deadline=None)
@given(values=st.dictionaries(st.sampled_from([v.name for v in ENV_VARS]), st.text(max_size=40), max_size=6))
@example(values={"MODELTEL_ENABLED": "", "MODELTEL_DATA_DIR": "", "OTEL_BSP_MAX_QUEUE_SIZE": "1"})
def test_garbage_environment_is_a_config_error_or_a_warning(values: dict[str, str]) -> None:
    env = {k: v.replace("\x00", "") for k, v in values.items()}
    try:
        load_settings(env, strict=True, check_dirs=False)
    except ConfigError as exc:
        assert exc.problems and all(p.variable in env for p in exc.problems)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_settings(env, strict=False, check_dirs=False)


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=300) | st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_garbage_lines_are_rejected_with_a_reason(raw: bytes) -> None:
    try:
        decode_line(raw)
    except ValueError as exc:
        assert str(exc)


def test_reader_survives_deep_nesting_and_a_huge_line(tmp_path: Path) -> None:
    good = subprocess.run(
        [
            str(BIN / "modeltel"),
            "run",
            "--",
            sys.executable,
            "-c",
            "from opentelemetry import trace\nwith trace.get_tracer('t').start_as_current_span('kept'): pass",
        ],
        env=base_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert good.returncode == 0, good.stderr
    (path,) = (tmp_path / "traces").glob("*/*.jsonl")
    with path.open("ab") as f:
        f.write(b"[" * 200_000 + b"]" * 200_000 + b"\n")  # deep nesting
        f.write(b'{"resourceSpans":[' + b" " * 100_000_000 + b"\n")  # a 100 MB garbage line
        f.write(b'{"resourceSpans": 12}\n')
    for command in (
        ["show", "--format", "json"],
        ["stats", "--by", "name", "--format", "json"],
        ["export", "--format", "csv", "-o", str(tmp_path / "out.csv")],
    ):
        result = subprocess.run(
            [str(BIN / "modeltel"), *command, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=240,
            env=base_env(tmp_path),
        )
        assert result.returncode == 0, (command, result.stderr[-2000:])
        assert "Traceback" not in result.stderr
        for line_number in (2, 3, 4):
            assert f"{path.name}:{line_number}" in result.stderr, (command, result.stderr[-2000:])
        assert "kept" in result.stdout or (tmp_path / "out.csv").read_text().count("kept") == 1


def test_non_finite_numbers_are_kept_as_otlp_json_strings(tmp_path: Path) -> None:
    code = (
        "import math\nfrom opentelemetry import trace\n"
        "with trace.get_tracer('t').start_as_current_span('n') as s:\n"
        "    s.set_attributes({'nan': math.nan, 'inf': math.inf, 'ninf': -math.inf, 'big': 2**64})\n"
    )
    result = subprocess.run(
        [str(BIN / "modeltel"), "run", "--", sys.executable, "-c", code],
        env=base_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    (path,) = (tmp_path / "traces").glob("*/*.jsonl")
    attrs = {
        a["key"]: a["value"]
        for a in json.loads(path.read_text())["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"]
    }
    assert attrs["nan"] == {"doubleValue": "NaN"} and attrs["inf"] == {"doubleValue": "Infinity"}
    assert attrs["ninf"] == {"doubleValue": "-Infinity"}
    assert attrs["big"] == {"stringValue": str(2**64)}  # beyond int64: kept as text, line stays valid
