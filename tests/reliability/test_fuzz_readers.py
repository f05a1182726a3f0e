"""Hostile lines against every reading command and replay: warnings, never a traceback or a hang.

Hypothesis builds OTLP/JSON trace, metric and log lines with one field made hostile (a wrong type, a
number out of range, deep nesting, a lone surrogate, control characters, a huge value) beside one
good line. Each command must exit 0 or 1 within its timeout, under a 2 GiB address-space limit,
print no traceback, and still read the good line.
"""

from __future__ import annotations

import json
import resource
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from otlp_files import BIN, base_env
from otlp_receiver import running_receiver

TRACE_ID = "5b8efff798038103d269b633813fc60c"
GOOD_SPAN = {
    "traceId": TRACE_ID,
    "spanId": "00000000000000ff",
    "name": "good",
    "kind": 1,
    "startTimeUnixNano": "1700000000000000000",
    "endTimeUnixNano": "1700000001000000000",
    "status": {},
}
HOSTILE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.characters(codec="utf-8", categories=["Cc", "Cs", "Lo", "Zs"]), max_size=30),
    st.sampled_from(["abc", "", "-5", "1e400", "NaN", "0x10", "\ud800", "\x1b[2J"]),
    st.tuples(st.just("deep list"), st.integers(min_value=1, max_value=400)),
    st.tuples(st.just("deep value"), st.integers(min_value=1, max_value=300)),
    st.tuples(st.just("huge"), st.just(200_000)),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
SPAN_FIELDS = ["traceId", "spanId", "parentSpanId", "name", "kind", "startTimeUnixNano", "endTimeUnixNano",
               "attributes", "events", "links", "status", "flags", "droppedAttributesCount"]  # fmt: skip
POINT_FIELDS = ["timeUnixNano", "startTimeUnixNano", "asDouble", "asInt", "attributes", "exemplars", "flags"]
LOG_FIELDS = ["timeUnixNano", "observedTimeUnixNano", "severityNumber", "severityText", "body", "attributes",
              "droppedAttributesCount", "flags", "traceId", "spanId", "eventName"]  # fmt: skip
GOOD_RECORD = {
    "timeUnixNano": "1700000000000000000",
    "severityNumber": 13,
    "body": {"stringValue": "good record"},
    "traceId": TRACE_ID,
    "spanId": "00000000000000ff",
}


def _value(spec: Any) -> Any:
    """The hostile value a spec names: deep or huge ones are built here, not by hypothesis, whose
    report would recurse through them."""
    if isinstance(spec, tuple):
        kind, n = spec
        if kind == "deep list":
            return json.loads("[" * n + "1" + "]" * n)
        if kind == "deep value":
            return json.loads('{"arrayValue":{"values":[' * n + '{"intValue":"1"}' + "]}}" * n)
        return "x" * n
    return spec


def _trace_line(field: str, spec: Any) -> dict[str, Any]:
    value = _value(spec)
    span = {**GOOD_SPAN, "spanId": "0000000000000001", "name": "hostile", field: value}
    if field == "attributes" and isinstance(value, dict):
        span["attributes"] = [{"key": "a", "value": value}]
    return {"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {}, "spans": [span]}]}]}


def _metric_line(field: str, spec: Any) -> dict[str, Any]:
    value = _value(spec)
    point = {"timeUnixNano": "1700000000000000000", "asDouble": 1.0, field: value}
    metric = {"name": "g", "gauge": {"dataPoints": [point]}}
    return {"resourceMetrics": [{"resource": {}, "scopeMetrics": [{"scope": {}, "metrics": [metric]}]}]}


def _log_line(field: str, spec: Any) -> dict[str, Any]:
    value = _value(spec)
    record = {**GOOD_RECORD, "body": {"stringValue": "hostile"}, field: value}
    if field == "attributes" and isinstance(value, dict):
        record["attributes"] = [{"key": "a", "value": value}]
    return {"resourceLogs": [{"resource": {}, "scopeLogs": [{"scope": {}, "logRecords": [record]}]}]}


LINE_MAKERS = {"trace": _trace_line, "metric": _metric_line, "log": _log_line}
LINES = st.lists(
    st.one_of(
        st.tuples(st.just("trace"), st.sampled_from(SPAN_FIELDS), HOSTILE),
        st.tuples(st.just("metric"), st.sampled_from(POINT_FIELDS), HOSTILE),
        st.tuples(st.just("log"), st.sampled_from(LOG_FIELDS), HOSTILE),
    ),
    min_size=5,
    max_size=25,
)
GOOD = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {}, "spans": [GOOD_SPAN]}]}]}
GOOD_LOG = {"resourceLogs": [{"resource": {}, "scopeLogs": [{"scope": {}, "logRecords": [GOOD_RECORD]}]}]}


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = base_env(cwd / "data", COLUMNS="200")
    return subprocess.run(
        [str(BIN / "modeltel"), *args],
        env=env,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=60,
        preexec_fn=_limit_memory,
    )


@pytest.mark.timeout(900)  # four examples of thirteen commands each, on two loaded cores
# Each example runs thirteen commands: few examples, no shrinking (a failure names its command and stderr).
@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    phases=[Phase.generate],
)
@given(lines=LINES)
def test_hostile_lines_never_crash_or_hang_a_reader(
    tmp_path_factory: Any, lines: list[dict[str, Any]]
) -> None:
    root = tmp_path_factory.mktemp("fuzz")
    data = root / "data"
    built = [LINE_MAKERS[kind](field, spec) for kind, field, spec in lines]
    text = "\n".join(json.dumps(line, ensure_ascii=False) for line in built)
    raw = (text + "\n" + json.dumps(GOOD) + "\n" + json.dumps(GOOD_LOG) + "\n").encode(
        "utf-8", "surrogatepass"
    )
    for signal in ("traces", "metrics", "logs"):
        (data / signal / "2026-01-01").mkdir(parents=True)
        (data / signal / "2026-01-01" / "f-1-1.jsonl").write_bytes(raw)
    commands = [
        ["show", "--format", "json"],
        ["stats", "--by", "name"],
        ["show", "--trace", TRACE_ID],
        ["export", "--format", "json", "-o", str(root / "o.json")],
        ["export", "--format", "csv", "-o", str(root / "o.csv")],
        ["export", "--format", "jaeger", "-o", str(root / "o.jaeger.json")],
        ["export", "--format", "otlp-json", "-o", str(root / "o.jsonl")],
        ["timeline", "-o", str(root / "t.html")],
        ["doctor", "--format", "json"],
        ["logs"],
        ["logs", "--trace", TRACE_ID, "--level", "warn", "--grep", "good"],
        ["logs", "--format", "json"],
    ]
    for command in commands:
        done = _run(*command, str(data), cwd=root) if command[0] != "doctor" else _run(*command, cwd=root)
        assert done.returncode in (0, 1), (command, done.returncode, done.stderr[-1500:])
        assert "Traceback" not in done.stderr, (command, done.stderr[-1500:])
    exported = (root / "o.json").read_text()
    assert '"name": "good"' in exported
    records = json.loads(_run("logs", "--format", "json", str(data), cwd=root).stdout)["records"]
    assert "good record" in [record["message"] for record in records]
    with running_receiver() as receiver:
        done = _run(
            "replay", "--endpoint", receiver.endpoint, "--protocol", "http/protobuf", str(data), cwd=root
        )
        sent = receiver.requests("/v1/traces")
    assert done.returncode in (0, 1) and "Traceback" not in done.stderr, done.stderr[-1500:]
    assert any(
        span.name == "good"
        for r in sent
        for rs in r.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    )
