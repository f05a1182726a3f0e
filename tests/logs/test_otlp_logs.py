"""Log records over OTLP to a real receiver (rotel prints what it receives), and to none at all.

rotel (``--debug-log logs``, a blackhole exporter, detailed verbosity) prints each record it
received with its trace and span ids; those must be the ids of the spans in the trace files. With
the receiver's port refused, the app's stderr is what it is without modeltel plus one line naming
the log records that never arrived.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from log_files import EXPECTED_INFO_AND_UP, normal, records, run, span_ids, write_app

from integration.backends import BLACKHOLE_DEBUG_ENV, RotelAgent, free_port, wait_until

_RECORD = re.compile(
    r"^LogRecord #\d+\n(?P<fields>.*?)^\s+Trace ID\s+: (?P<trace>\w*)\n\s+Span ID\s+: (?P<span>\w*)$",
    re.MULTILINE | re.DOTALL,
)
_BODY = re.compile(r"^Body: Str\((?P<body>.*?)\)$", re.MULTILINE)


@pytest.fixture
def rotel(tmp_path: Path) -> Iterator[RotelAgent]:
    agent = RotelAgent.start(tmp_path / "rotel", BLACKHOLE_DEBUG_ENV, debug_logs=("logs",))
    try:
        yield agent
    finally:
        agent.stop()


def received(agent: RotelAgent) -> dict[str, tuple[str, str]]:
    """Body -> (trace id, span id) of every log record rotel printed."""
    found = {}
    for match in _RECORD.finditer(agent.log_text()):
        body = _BODY.search(match.group("fields"))
        assert body is not None, match.group(0)
        found[body.group("body")] = (match.group("trace"), match.group("span"))
    return found


@pytest.mark.integration
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_rotel_receives_every_record_with_its_trace_ids(
    tmp_path: Path, rotel: RotelAgent, protocol: str
) -> None:
    folder = write_app(tmp_path)
    endpoint = rotel.grpc_endpoint if protocol == "grpc" else rotel.http_endpoint
    result = run(
        folder,
        "modeltel",
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_TRACES_EXPORTER="jsonl",
        OTEL_METRICS_EXPORTER="jsonl",
    )
    assert result.returncode == 0, result.stderr
    assert "lost" not in result.stderr
    found = wait_until(
        lambda: r if len(r := received(rotel)) >= EXPECTED_INFO_AND_UP else None,
        timeout=20,
        message=lambda: f"rotel printed {len(received(rotel))} records:\n{rotel.log_text()[-3000:]}",
    )
    assert set(found) == {r.body for r in records(folder / "data")}
    ids = span_ids(folder / "data")
    for body, (trace_id, span_id) in found.items():
        where = re.match(r"\[(in (\w+)|no span)\]", body)
        assert where is not None, body
        expected = ids[where.group(2)] if where.group(2) else ("", "")
        assert (trace_id, span_id) == expected, body


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_a_refused_receiver_keeps_the_apps_stderr_and_is_reported_once(tmp_path: Path, protocol: str) -> None:
    folder = write_app(tmp_path)
    plain = run(folder, "plain")
    result = run(
        folder,
        "modeltel",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_TRACES_EXPORTER="jsonl",
        OTEL_METRICS_EXPORTER="jsonl",
        OTEL_LOGS_EXPORTER="otlp",
    )
    assert result.returncode == 0, result.stderr
    app_lines, extra = normal(plain.stderr, folder), normal(result.stderr, folder)
    assert extra.startswith(app_lines), result.stderr  # every line of the app, in its order
    (line,) = extra[len(app_lines) :].splitlines()
    # A warning of modeltel's logger: with the app's basicConfig it comes in the app's format.
    n = EXPECTED_INFO_AND_UP
    assert line.endswith(f" modeltel: log records lost: otlp {n} (export_failed {n})"), line
    assert len(records(folder / "data")) == EXPECTED_INFO_AND_UP  # the log file has them all
