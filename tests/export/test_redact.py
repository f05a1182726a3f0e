"""Secret-looking attributes never reach a file or an exporter; everything else passes unchanged."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
from opentelemetry.sdk.resources import Resource

from modeltel._internal.config import DEFAULT_REDACT_KEYS
from modeltel._internal.export.redact import REDACTED, Redactor
from otlp_files import attrs, base_env, spans

SECRET = [
    "password",
    "db_password",
    "Authorization",
    "http.request.header.authorization",
    "access_token",
    "x-api-key",
    "OPENAI_API_KEY",
    "client_secret",
    "aws.secret_access_key",
    "session.cookie",
    "xApiKey",
    "accessToken",
    "clientSecret",
    "APIKey",
    "userPassword",
    "deployment.api_key",
]
KEPT = [
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "modeltel.simulation.seed",
    "tokenizer",
    "gen_ai.token.type",
    "author",
    "keyboard",
    "modeltel.inference.cost_usd",
    "inputTokens",
    "authorName",
    "keyboardLayout",
    "tokenizerName",
]


@pytest.mark.parametrize("key", SECRET)
def test_secret_looking_keys_are_redacted(key: str) -> None:
    assert Redactor(DEFAULT_REDACT_KEYS).is_secret(key)


@pytest.mark.parametrize("key", KEPT)
def test_ordinary_keys_are_kept(key: str) -> None:
    assert not Redactor(DEFAULT_REDACT_KEYS).is_secret(key)


def test_files_and_console_never_see_the_secret(tmp_path: Path) -> None:
    code = """
    import modeltel
    from opentelemetry import trace
    modeltel.configure()
    with trace.get_tracer("t").start_as_current_span("call") as span:
        span.set_attribute("api_key", "sk-LEAK-1")
        span.set_attribute("gen_ai.usage.input_tokens", 12)
        span.add_event("login", {"password": "sk-LEAK-2", "user": "ada"})
        span.set_attribute("my.custom_field", "sk-LEAK-3")
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=base_env(
            tmp_path,
            OTEL_TRACES_EXPORTER="console,jsonl",
            MODELTEL_REDACT_KEYS="password,api_key,custom_field",
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    ((span, _, _),) = spans(tmp_path)
    assert attrs(span.attributes) == {
        "api_key": REDACTED,
        "gen_ai.usage.input_tokens": 12,
        "my.custom_field": REDACTED,
    }
    assert attrs(span.events[0].attributes) == {"password": REDACTED, "user": "ada"}
    everything = result.stdout + result.stderr + "".join(p.read_text() for p in tmp_path.rglob("*.jsonl"))
    assert "sk-LEAK" not in everything
    assert REDACTED in result.stdout  # the console exporter got the redacted copy


def _collect(record: Any) -> MetricsData:
    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=Resource.create({"service.name": "m"}), metric_readers=[reader])
    record(provider.get_meter("t"))
    data = reader.get_metrics_data()
    assert data is not None
    return data


def _points(data: MetricsData) -> dict[str, list[Any]]:
    return {
        metric.name: list(metric.data.data_points)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
    }


def test_series_that_differed_only_in_a_secret_become_one_point() -> None:
    """Two series told apart only by a secret would reach a receiver as one series twice (which
    Prometheus rejects): they are merged, counters adding up and histograms bucket by bucket."""

    def record(meter: Any) -> None:
        calls, latency = meter.create_counter("calls"), meter.create_histogram("latency")
        for key, value in (("sk-a", 1), ("sk-b", 2), ("sk-b", 4)):
            calls.add(value, {"api_key": key, "route": "/x"})
            latency.record(value, {"api_key": key})
        calls.add(10, {"route": "/y"})

    original = _collect(record)
    points = _points(Redactor(DEFAULT_REDACT_KEYS).metrics(original))
    assert sorted(((p.value, dict(p.attributes)) for p in points["calls"]), key=lambda v: v[0]) == [
        (7, {"api_key": REDACTED, "route": "/x"}),
        (10, {"route": "/y"}),
    ]
    (histogram,) = points["latency"]
    assert dict(histogram.attributes) == {"api_key": REDACTED}
    assert (histogram.count, histogram.sum, histogram.min, histogram.max) == (3, 7, 1, 4)
    assert sum(histogram.bucket_counts) == 3
    assert len(_points(original)["calls"]) == 3  # the SDK's own data is left as it was


def test_clean_metrics_are_passed_on_untouched() -> None:
    data = _collect(lambda meter: meter.create_counter("calls").add(1, {"route": "/x"}))
    assert Redactor(DEFAULT_REDACT_KEYS).metrics(data) is data
