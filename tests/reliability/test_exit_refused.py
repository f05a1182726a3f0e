"""Exit with an OTLP endpoint that refuses connections (the README's own example with no collector).

The SDK's exporters retry a refused connection with backoff until their timeout (10 s each for
traces and metrics, one after the other), printing a warning per retry. At exit those retries
cannot succeed in any time the user would wait, so modeltel makes one attempt per batch, counts
what did not go out and says so in one line. Guarantees tested, for gRPC and OTLP/HTTP:
- the process ends within a few seconds of the program's last line (the bound is generous: the
  target is 1 s beyond the last JSONL flush, measured by bench/startup.py);
- the local copy holds every span;
- stderr holds exactly one line, the loss report, naming the lost spans and metric points.
"""

from __future__ import annotations

import logging
import re
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from otlp_files import base_env, spans

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(120)]

SPANS = 50
EXIT_BOUND_S = 4.0
"""From the program's last line to the end of the process; the SDK's retries took 13-16 s."""

APP = textwrap.dedent(
    f"""
    import time
    from opentelemetry import metrics, trace
    import modeltel
    modeltel.configure()
    tracer = trace.get_tracer("exit")
    done = metrics.get_meter("exit").create_counter("work.done")
    for i in range({SPANS}):
        with tracer.start_as_current_span(f"step {{i}}"):
            done.add(1, {{"step": str(i % 3)}})
    print(f"last line {{time.time():.6f}}", flush=True)
    """
)
LOSS = re.compile(
    rf"^modeltel: spans lost: otlp {SPANS} \(export_failed {SPANS}\); "
    r"metric points lost: otlp (\d+) \(export_failed \1\)$"
)


@pytest.fixture
def refused_endpoint() -> Iterator[str]:
    """A port bound but never listened on: connections to it are refused, and nothing else can
    take it while the test runs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_exit_is_prompt_and_counts_what_a_refused_endpoint_never_got(
    tmp_path: Path, refused_endpoint: str, protocol: str
) -> None:
    app = tmp_path / "app.py"
    app.write_text(APP)
    env = base_env(
        tmp_path / "data",
        OTEL_TRACES_EXPORTER="otlp,jsonl",
        OTEL_METRICS_EXPORTER="otlp,jsonl",
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_EXPORTER_OTLP_ENDPOINT=refused_endpoint,
    )
    result = subprocess.run([sys.executable, str(app)], env=env, capture_output=True, text=True, timeout=90)
    ended = time.time()
    assert result.returncode == 0, result.stderr
    last_line = float(result.stdout.split()[-1])
    assert ended - last_line < EXIT_BOUND_S, f"exit took {ended - last_line:.1f} s\n{result.stderr}"
    assert len(spans(tmp_path / "data")) == SPANS
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr  # no retry warnings, no traceback
    match = LOSS.match(lines[0])
    assert match is not None, lines[0]
    assert int(match.group(1)) >= 3  # the app's counter alone has three points


def test_while_the_app_runs_the_sdk_exporter_speaks_once_a_minute_and_at_exit_not_at_all(
    refused_endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The SDK logs a warning per retry and an error per batch; a receiver down for an hour would
    print thousands of lines. The first one says the receiver is down; the counter has the rest."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    from modeltel._internal.export.guard import GuardedSpanExporter, dropped_counter

    provider = TracerProvider()
    span = provider.get_tracer("t").start_span("s")
    span.end()
    dropped = dropped_counter(MeterProvider())
    inner = OTLPSpanExporter(endpoint=f"{refused_endpoint}/v1/traces", timeout=1.5)
    guarded = GuardedSpanExporter(inner, "otlp", dropped, timeout_s=5.0)
    sdk = "opentelemetry.exporter.otlp.proto.http"

    def sdk_records() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name.startswith(sdk)]

    with caplog.at_level(logging.INFO):
        guarded.export([span])  # retries once (1 s backoff), then gives up: three records
        assert len(sdk_records()) == 1, [r.getMessage() for r in sdk_records()]
        guarded.export([span])
        assert len(sdk_records()) == 1
        dropped.begin_exit()
        started = time.monotonic()
        guarded.export([span])  # one attempt, no backoff, not a word
        assert time.monotonic() - started < 1.0
        guarded.export([span])  # after a failure at exit: fails at once
    assert len(sdk_records()) == 1
    assert dropped.totals == {("spans", "otlp", "export_failed"): 4}
