"""Secret-looking attributes never reach a file or an exporter; everything else passes unchanged."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from modeltel.config import DEFAULT_REDACT_KEYS
from modeltel.export.redact import REDACTED, Redactor
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
