"""modeltel's copies of OpenTelemetry semantic-convention names are the upstream ones.

:mod:`modeltel._internal.semconv` spells them as plain strings: importing the generated
``opentelemetry.semconv`` modules to re-export them cost every configured process ~5 ms. This
test is what keeps the copies on the spec: each is compared with the constant it stands for, and
the upstream modules are imported here only.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from functools import reduce

import pytest

from modeltel._internal import semconv

UPSTREAM: dict[str, tuple[str, str]] = {
    "GEN_AI_OPERATION_NAME": ("_incubating.attributes.gen_ai_attributes", "GEN_AI_OPERATION_NAME"),
    "GEN_AI_PROVIDER_NAME": ("_incubating.attributes.gen_ai_attributes", "GEN_AI_PROVIDER_NAME"),
    "GEN_AI_REQUEST_MODEL": ("_incubating.attributes.gen_ai_attributes", "GEN_AI_REQUEST_MODEL"),
    "GEN_AI_RESPONSE_MODEL": ("_incubating.attributes.gen_ai_attributes", "GEN_AI_RESPONSE_MODEL"),
    "GEN_AI_TOKEN_TYPE": ("_incubating.attributes.gen_ai_attributes", "GEN_AI_TOKEN_TYPE"),
    "GEN_AI_USAGE_INPUT_TOKENS": ("_incubating.attributes.gen_ai_attributes", "GEN_AI_USAGE_INPUT_TOKENS"),
    "GEN_AI_USAGE_OUTPUT_TOKENS": ("_incubating.attributes.gen_ai_attributes", "GEN_AI_USAGE_OUTPUT_TOKENS"),
    "GEN_AI_CLIENT_OPERATION_DURATION": (
        "_incubating.metrics.gen_ai_metrics",
        "GEN_AI_CLIENT_OPERATION_DURATION",
    ),
    "GEN_AI_CLIENT_TOKEN_USAGE": ("_incubating.metrics.gen_ai_metrics", "GEN_AI_CLIENT_TOKEN_USAGE"),
    "ERROR_TYPE": ("attributes.error_attributes", "ERROR_TYPE"),
    "GEN_AI_INPUT_MESSAGES": ("_incubating.attributes.gen_ai_attributes", "GEN_AI_INPUT_MESSAGES"),
    "GEN_AI_OUTPUT_MESSAGES": ("_incubating.attributes.gen_ai_attributes", "GEN_AI_OUTPUT_MESSAGES"),
    "GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK": (
        "_incubating.attributes.gen_ai_attributes",
        "GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK",
    ),
    "GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK": (
        "_incubating.metrics.gen_ai_metrics",
        "GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK",
    ),
    "EXCEPTION_MESSAGE": ("attributes.exception_attributes", "EXCEPTION_MESSAGE"),
    "EXCEPTION_TYPE": ("attributes.exception_attributes", "EXCEPTION_TYPE"),
    "GEN_AI_SYSTEM": ("_incubating.attributes.gen_ai_attributes", "GEN_AI_SYSTEM"),
    "OPENTRACING_REF_TYPE": ("_incubating.attributes.opentracing_attributes", "OPENTRACING_REF_TYPE"),
    "PROCESS_PID": ("_incubating.attributes.process_attributes", "PROCESS_PID"),
    "SERVICE_INSTANCE_ID": ("_incubating.attributes.service_attributes", "SERVICE_INSTANCE_ID"),
    "OTEL_SCOPE_NAME": ("attributes.otel_attributes", "OTEL_SCOPE_NAME"),
    "OTEL_SCOPE_VERSION": ("attributes.otel_attributes", "OTEL_SCOPE_VERSION"),
    "OTEL_STATUS_CODE": ("attributes.otel_attributes", "OTEL_STATUS_CODE"),
    "OTEL_STATUS_DESCRIPTION": ("attributes.otel_attributes", "OTEL_STATUS_DESCRIPTION"),
    "SERVICE_NAME": ("attributes.service_attributes", "SERVICE_NAME"),
    "GEN_AI_REQUEST_FREQUENCY_PENALTY": (
        "_incubating.attributes.gen_ai_attributes",
        "GEN_AI_REQUEST_FREQUENCY_PENALTY",
    ),
    "GEN_AI_REQUEST_MAX_TOKENS": ("_incubating.attributes.gen_ai_attributes", "GEN_AI_REQUEST_MAX_TOKENS"),
    "GEN_AI_REQUEST_PRESENCE_PENALTY": (
        "_incubating.attributes.gen_ai_attributes",
        "GEN_AI_REQUEST_PRESENCE_PENALTY",
    ),
    "GEN_AI_REQUEST_SEED": ("_incubating.attributes.gen_ai_attributes", "GEN_AI_REQUEST_SEED"),
    "GEN_AI_REQUEST_STOP_SEQUENCES": (
        "_incubating.attributes.gen_ai_attributes",
        "GEN_AI_REQUEST_STOP_SEQUENCES",
    ),
    "GEN_AI_REQUEST_STREAM": ("_incubating.attributes.gen_ai_attributes", "GEN_AI_REQUEST_STREAM"),
    "GEN_AI_REQUEST_TEMPERATURE": ("_incubating.attributes.gen_ai_attributes", "GEN_AI_REQUEST_TEMPERATURE"),
    "GEN_AI_REQUEST_TOP_K": ("_incubating.attributes.gen_ai_attributes", "GEN_AI_REQUEST_TOP_K"),
    "GEN_AI_REQUEST_TOP_P": ("_incubating.attributes.gen_ai_attributes", "GEN_AI_REQUEST_TOP_P"),
    "GEN_AI_RESPONSE_FINISH_REASONS": (
        "_incubating.attributes.gen_ai_attributes",
        "GEN_AI_RESPONSE_FINISH_REASONS",
    ),
    "GEN_AI_RESPONSE_ID": ("_incubating.attributes.gen_ai_attributes", "GEN_AI_RESPONSE_ID"),
    "SERVER_ADDRESS": ("attributes.server_attributes", "SERVER_ADDRESS"),
    "SERVER_PORT": ("attributes.server_attributes", "SERVER_PORT"),
    "GEN_AI_OPERATION_CHAT": (
        "_incubating.attributes.gen_ai_attributes",
        "GenAiOperationNameValues.CHAT.value",
    ),
    "GEN_AI_TOKEN_TYPE_INPUT": (
        "_incubating.attributes.gen_ai_attributes",
        "GenAiTokenTypeValues.INPUT.value",
    ),
    "GEN_AI_TOKEN_TYPE_OUTPUT": (
        "_incubating.attributes.gen_ai_attributes",
        "GenAiTokenTypeValues.COMPLETION.value",
    ),
}
"""modeltel's name -> (module under ``opentelemetry.semconv``, attribute path in it)."""


def _upstream(module: str, path: str) -> object:
    found = importlib.import_module(f"opentelemetry.semconv.{module}")
    return reduce(getattr, path.split("."), found)


@pytest.mark.parametrize("name", sorted(UPSTREAM))
def test_each_copied_name_equals_the_upstream_constant(name: str) -> None:
    assert getattr(semconv, name) == _upstream(*UPSTREAM[name])


def test_every_otel_name_semconv_spells_is_checked_against_upstream() -> None:
    """A name added to semconv in an upstream namespace must join the table above."""
    upstream_prefixes = (
        "gen_ai.",
        "error.",
        "exception.",
        "otel.",
        "server.",
        "service.",
        "process.",
        "opentracing.",
    )
    spelled = {
        name
        for name, value in vars(semconv).items()
        if name.isupper() and isinstance(value, str) and value.startswith(upstream_prefixes)
    }
    assert spelled - set(UPSTREAM) == set()


def test_importing_semconv_imports_no_semantic_conventions_module() -> None:
    code = "import sys, modeltel._internal.semconv\nprint(*sorted(sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    loaded = [m for m in result.stdout.split() if m.startswith("opentelemetry.semconv")]
    assert loaded == []
