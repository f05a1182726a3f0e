"""A secret put anywhere the API takes a value reaches no file, no OTLP request and no command output.

One app (in a subprocess, default ``MODELTEL_REDACT_KEYS``) puts a distinctive value under a
secret-looking key in each place a value can go: span, event and link attributes, the resource,
metric point attributes, a job's attributes and numeric results. It exports to the data dir and,
over OTLP/HTTP, to a receiver on 127.0.0.1 that keeps every request body. Then every file of the
data dir, every body, and the output of every reading command (and ``replay`` back to the same
receiver) is searched for each value: as text, and numbers also in their float form.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf.json_format import MessageToJson

from otlp_files import BIN, base_env, spans
from otlp_receiver import MESSAGES, Receiver, running_receiver

pytestmark = pytest.mark.reliability

STRINGS = {
    "span attribute": "sk-span-5f1c9a0e",
    "camelCase span attribute": "sk-camel-8b2c77d1",
    "second camelCase attribute": "sk-access-3e9f01aa",
    "event attribute": "sk-event-a41d93c2",
    "link attribute": "sk-link-66b0e2f4",
    "resource attribute": "sk-resource-0d8c5b13",
    "metric point attribute": "sk-metric-9a7e4c25",
    "second metric point attribute": "sk-metricauth-e5b18f02",
    "job attribute": "sk-job-4d7e1b6a",
}
NUMBERS = {
    "run attribute (number)": 987654321,
    "record(...) result": 5647382910,
    "record(...) float result": 2718281828.5,
    "job attribute (number)": 8765432109,
}

APP = """
import logging, sys
from opentelemetry import metrics, trace
from opentelemetry.trace import Link
import modeltel
from modeltel import simulation

modeltel.configure()
tracer = trace.get_tracer("secrets")
calls = metrics.get_meter("secrets").create_counter("secrets.calls")
S = {strings!r}
N = {numbers!r}
with simulation.job("sweep", n_tasks=1, api_key=S["job attribute"], access_token=N["job attribute (number)"]):
    with tracer.start_as_current_span("first") as first:
        pass
    with tracer.start_as_current_span(
        "call", links=[Link(first.get_span_context(), {{"authorization": S["link attribute"]}})]
    ) as span:
        span.set_attribute("api_key", S["span attribute"])
        span.set_attribute("xApiKey", S["camelCase span attribute"])
        span.set_attribute("accessToken", S["second camelCase attribute"])
        span.set_attribute("gen_ai.usage.input_tokens", 12)
        span.add_event("login", {{"password": S["event attribute"], "user": "ada"}})
        key, auth = S["metric point attribute"], S["second metric point attribute"]
        calls.add(1, {{"api_key": key, "authorization": auth}})
        calls.add(2, {{"api_key": "another", "authorization": "other", "route": "/a"}})
    with simulation.run(model="m", api_key=N["run attribute (number)"]) as run:
        run.record(password=N["record(...) result"], secret=N["record(...) float result"], steps=3)
        print("job open", flush=True)
        sys.stdin.readline()  # the test reads running/ while the job is open
    logging.getLogger("secrets").warning("a log record, for its resource")
"""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as server:
        yield server


def _as_text(path: str, body: bytes) -> str:
    """The body as protobuf's JSON, where ints and doubles are decimal text like everywhere else."""
    message = MESSAGES[path]()
    message.ParseFromString(body)
    return MessageToJson(message) + body.decode("latin-1")


def _leaks(where: str, text: str) -> list[str]:
    found = [f"{what} {value!r} in {where}" for what, value in STRINGS.items() if value in text]
    for what, number in NUMBERS.items():
        forms = {str(number), repr(float(number)), f"{float(number):g}"}
        found += [f"{what} {form} in {where}" for form in forms if form in text]
    return found


def _run_app(data: Path, receiver: Receiver) -> tuple[str, dict[str, str]]:
    env = base_env(
        data,
        OTEL_SERVICE_NAME="secrets",
        OTEL_RESOURCE_ATTRIBUTES=f"deployment.api_key={STRINGS['resource attribute']},team=ml",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_TRACES_EXPORTER="otlp,jsonl",
        OTEL_METRICS_EXPORTER="otlp,jsonl",
        OTEL_LOGS_EXPORTER="otlp",
    )
    code = textwrap.dedent(APP).format(strings=STRINGS, numbers=NUMBERS)
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdin is not None
        assert process.stdout.readline() == "job open\n"
        running: dict[str, str] = {}
        deadline = time.monotonic() + 15  # the record is written on its own thread
        while not running and time.monotonic() < deadline:
            running = {str(p): p.read_text() for p in (data / "running").glob("*.json")}
            time.sleep(0.05)
        assert running, "no progress record while the job was open"
        out, err = process.communicate("\n", timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    return out + err, {**running, "running/ listing": " ".join(running)}


def _command(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [str(BIN / "modeltel"), *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout + result.stderr


def test_a_secret_anywhere_reaches_no_file_request_or_output(tmp_path: Path, receiver: Receiver) -> None:
    data = tmp_path / "data"
    app_output, running = _run_app(data, receiver)
    leaks = _leaks("the app's output", app_output)
    leaks += [leak for name, text in running.items() for leak in _leaks(name, text)]

    files = [p for p in data.rglob("*") if p.is_file()]
    assert any(p.parent.parent.name == "metrics" for p in files) and (data / "summaries.jsonl").exists()
    leaks += [leak for p in files for leak in _leaks(str(p.relative_to(data)), p.read_text())]
    paths = sorted({path for path, _ in receiver.bodies})
    assert paths == ["/v1/logs", "/v1/metrics", "/v1/traces"]
    leaks += [leak for path, body in receiver.bodies for leak in _leaks(f"POST {path}", _as_text(path, body))]

    env = base_env(data)
    trace_id = spans(data)[0][0].trace_id.hex()
    outputs = {
        "show": _command("show", "--data-dir", str(data), env=env),
        "show --format json": _command("show", "--format", "json", "--data-dir", str(data), env=env),
        "show --last": _command("show", "--last", "--data-dir", str(data), env=env),
        "show --trace": _command("show", "--trace", trace_id, "--data-dir", str(data), env=env),
        "stats --by name": _command("stats", "--by", "name", "--data-dir", str(data), env=env),
        "stats --format json": _command("stats", "--format", "json", "--data-dir", str(data), env=env),
        "show --running": _command("show", "--running", "--data-dir", str(data), env=env),
    }
    for fmt in ("csv", "json", "otlp-json", "jaeger"):
        out = tmp_path / f"export.{fmt}"
        outputs[f"export --format {fmt}"] = (
            _command("export", "--format", fmt, "-o", str(out), "--data-dir", str(data), env=env)
            + out.read_text()
        )
    html = tmp_path / "timeline.html"
    outputs["timeline"] = _command("timeline", "-o", str(html), "--data-dir", str(data), env=env)
    outputs["timeline.html"] = html.read_text()
    app_env = base_env(
        data,
        OTEL_RESOURCE_ATTRIBUTES=f"deployment.api_key={STRINGS['resource attribute']}",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
    )
    outputs["doctor"] = _command("doctor", env=app_env)
    outputs["doctor --format json"] = _command("doctor", "--format", "json", env=app_env)
    before = len(receiver.bodies)
    replay = (
        "replay",
        "--endpoint",
        receiver.endpoint,
        "--protocol",
        "http/protobuf",
        "--data-dir",
        str(data),
    )
    outputs["replay"] = _command(*replay, env=env)
    replayed = receiver.bodies[before:]
    assert {path for path, _ in replayed} == {"/v1/traces", "/v1/metrics", "/v1/logs"}
    leaks += [leak for path, body in replayed for leak in _leaks(f"replayed {path}", _as_text(path, body))]
    leaks += [leak for name, text in outputs.items() for leak in _leaks(f"`modeltel {name}`", text)]
    assert not leaks, "\n".join(leaks)
    # The OTLP copy keeps what is not secret: the receiver saw the redacted keys and the other series.
    traces = "".join(_as_text(p, b) for p, b in receiver.bodies if p == "/v1/traces")
    assert '"<redacted>"' in traces and '"deployment.api_key"' in traces and '"ada"' in traces
    metrics_text = "".join(_as_text(p, b) for p, b in receiver.bodies if p == "/v1/metrics")
    assert '"/a"' in metrics_text and '"<redacted>"' in metrics_text
