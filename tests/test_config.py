"""Settings from the environment: defaults, exporter selection, and bad values named clearly."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import pytest

from modeltel._internal.config import ConfigError, ConfigWarning, load_settings


def _known(signal: str) -> frozenset[str]:
    return frozenset({"otlp", "jsonl", "console", "none", "prometheus"})


def load(env: dict[str, str], **kw: object):  # type: ignore[no-untyped-def]
    return load_settings(env, known_exporters=_known, check_dirs=False, **kw)


def test_defaults_write_jsonl_only() -> None:
    s = load({})
    assert s.enabled and s.jsonl and not s.capture_content
    assert s.traces_exporters == s.metrics_exporters == s.logs_exporters == ("jsonl",)
    assert s.data_dir == Path("./modeltel-data") and len(s.run_id) == 32


def test_an_otlp_endpoint_turns_on_otlp() -> None:
    s = load({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"})
    assert s.traces_exporters == ("otlp", "jsonl") and s.metrics_exporters == ("otlp", "jsonl")
    assert s.otlp["traces"].endpoint == "http://127.0.0.1:4317"


def test_per_signal_endpoint_only_affects_its_signal() -> None:
    s = load({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://h:4317"})
    assert s.traces_exporters == ("otlp", "jsonl") and s.metrics_exporters == ("jsonl",)


def test_http_generic_endpoint_gets_the_signal_path_and_specific_is_kept() -> None:
    s = load(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:4318/",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://m:9/custom",
        }
    )
    assert s.otlp["traces"].endpoint == "http://h:4318/v1/traces"
    assert s.otlp["metrics"].endpoint == "http://m:9/custom"


def test_explicit_exporters_jsonl_opt_out_and_none() -> None:
    s = load({"OTEL_TRACES_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "prometheus,otlp"})
    assert s.traces_exporters == ("console", "jsonl") and s.metrics_exporters == (
        "prometheus",
        "otlp",
        "jsonl",
    )
    s = load({"OTEL_TRACES_EXPORTER": "none", "MODELTEL_JSONL": "false"})
    assert s.traces_exporters == () and s.metrics_exporters == ()
    assert load({"OTEL_TRACES_EXPORTER": "none"}).traces_exporters == ()


@pytest.mark.parametrize(
    ("env", "disabled"),
    [({"MODELTEL_ENABLED": "false"}, True), ({"OTEL_SDK_DISABLED": "true"}, True), ({}, False)],
)
def test_disabled(env: dict[str, str], disabled: bool) -> None:
    assert load(env).enabled is not disabled


def test_headers_are_parsed_and_kept_secret() -> None:
    s = load(
        {
            "OTEL_EXPORTER_OTLP_HEADERS": "api-key=s3cr3t%3D,X-Team=a b",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-team=t",
        }
    )
    assert s.otlp["traces"].header_values() == {"api-key": "s3cr3t=", "x-team": "t"}
    assert s.otlp["metrics"].header_values() == {"api-key": "s3cr3t=", "x-team": "a b"}
    assert "s3cr3t" not in repr(s) and "s3cr3t" not in str(dataclasses.asdict(s))


BAD = [
    ("OTEL_TRACES_EXPORTER", "otlp,zipkinn", "zipkinn"),
    ("OTEL_METRIC_EXPORT_INTERVAL", "10s", "whole number"),
    ("OTEL_BSP_MAX_QUEUE_SIZE", "-1", ">= 1"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "grpc or http/protobuf"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317", "URL"),
    ("OTEL_TRACES_SAMPLER", "sometimes", "unknown sampler"),
    ("MODELTEL_ENABLED", "maybe", "true or false"),
    ("OTEL_EXPORTER_OTLP_TIMEOUT", "fast", "whole number"),
]


@pytest.mark.parametrize(("variable", "value", "reason"), BAD)
def test_bad_values_are_named_strictly(variable: str, value: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        load({variable: value}, strict=True)
    (problem,) = info.value.problems
    assert problem.variable == variable and problem.value == value and reason in problem.reason
    assert variable in str(info.value) and value in str(info.value)


@pytest.mark.parametrize(("variable", "value", "reason"), BAD)
def test_bad_values_warn_once_and_use_the_default(variable: str, value: str, reason: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        settings = load({variable: value})
    messages = [str(w.message) for w in caught if issubclass(w.category, ConfigWarning)]
    assert len(messages) == 1 and variable in messages[0] and value in messages[0]
    default = load({})
    assert settings.metric_export_interval_ms == default.metric_export_interval_ms
    assert settings.bsp_max_queue_size == default.bsp_max_queue_size
    assert settings.sampler == default.sampler


def test_malformed_header_is_named_without_showing_the_secret() -> None:
    with pytest.raises(ConfigError) as info:
        load({"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer abc,justatoken123"}, strict=True)
    (problem,) = info.value.problems
    assert problem.variable == "OTEL_EXPORTER_OTLP_HEADERS" and "entry 2 of 2" in problem.reason
    assert "justatoken123" not in str(info.value) and "Bearer" not in str(info.value)


def test_batch_larger_than_queue_is_rejected() -> None:
    with pytest.raises(ConfigError, match="OTEL_BSP_MAX_EXPORT_BATCH_SIZE"):
        load({"OTEL_BSP_MAX_QUEUE_SIZE": "100", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "512"}, strict=True)


def test_sampler_ratio() -> None:
    s = load({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"})
    assert (s.sampler, s.sampler_arg) == ("parentbased_traceidratio", 0.25)
    with pytest.raises(ConfigError, match="OTEL_TRACES_SAMPLER_ARG"):
        load({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, strict=True)


def test_unwritable_data_dir_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    env = {"MODELTEL_DATA_DIR": str(blocker / "sub")}
    with pytest.raises(ConfigError) as info:
        load_settings(env, strict=True, known_exporters=_known)
    assert info.value.problems[0].variable == "MODELTEL_DATA_DIR"
    assert str(blocker / "sub") in str(info.value)
    assert not (blocker / "sub").exists()


def test_overrides_win_and_sources_are_recorded() -> None:
    s = load({"OTEL_SERVICE_NAME": "env", "MODELTEL_JSONL": "true"}, service_name="code")
    assert s.service_name == "code" and s.sources["MODELTEL_JSONL"] == "MODELTEL_JSONL"


def test_readme_documents_every_variable() -> None:
    from modeltel._internal.config import CONTEXT_CARRIER_VARS, ENV_VARS

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for var in (*ENV_VARS, *CONTEXT_CARRIER_VARS):
        assert f"| `{var.name}` |" in readme, var.name
