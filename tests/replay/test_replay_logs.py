"""``modeltel replay --signals logs``: stored log records to a real receiver, trace ids intact.

rotel prints every log record it receives with ``--debug-log logs`` (its body, severity, trace and
span id), so the integration tests count records there; the loopback receiver keeps the bytes, so
the others check the cursor, torn lines and bad lines on the official protos.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from integration.backends import BLACKHOLE_DEBUG_ENV, RotelAgent, wait_until
from logs_data import LogsDir, logs_dir
from otlp_files import BIN, base_env
from otlp_receiver import Receiver, running_receiver

_TRACE_ID = re.compile(r"^\s+Trace ID\s+:\s*([0-9a-f]*)\s*$", re.MULTILINE)
_BODY = re.compile(r"^Body: (.*)$", re.MULTILINE)


def replay(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "modeltel"), "replay", "--data-dir", str(data), "--format", "json", *args],
        env=base_env(data),
        capture_output=True,
        text=True,
        timeout=120,
    )


def report(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, object]]:
    assert "Traceback" not in result.stderr, result.stderr
    return {s["signal"]: s for s in json.loads(result.stdout)["signals"]}


@pytest.fixture
def data(tmp_path: Path) -> LogsDir:
    return logs_dir(tmp_path / "data")


@pytest.fixture
def rotel(tmp_path: Path) -> Iterator[RotelAgent]:
    agent = RotelAgent.start(tmp_path / "rotel", BLACKHOLE_DEBUG_ENV, debug_logs=("traces", "logs"))
    try:
        yield agent
    finally:
        agent.stop()


@pytest.mark.integration
@pytest.mark.timeout(180)
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_rotel_receives_every_record_with_its_trace(data: LogsDir, rotel: RotelAgent, protocol: str) -> None:
    endpoint = rotel.grpc_endpoint if protocol == "grpc" else rotel.http_endpoint
    result = replay(data.path, "--signals", "logs", "--endpoint", endpoint, "--protocol", protocol)
    assert result.returncode == 0, result.stderr
    sent = report(result)["logs"]
    assert (sent["sent"], sent["unit"], sent["error"]) == (7, "log records", None)

    def logged() -> Counter[str] | None:
        ids = Counter(_TRACE_ID.findall(rotel.log_text()))
        return ids if sum(ids.values()) >= 7 else None

    ids = wait_until(logged, timeout=15, interval=0.1, message=lambda: rotel.log_text()[-2000:])
    assert ids == Counter({data.fit_trace: 3, data.score_trace: 3, "": 1})
    bodies = _BODY.findall(rotel.log_text())
    assert "Str(fit failed)" in bodies and "Map(event:Str(done), rows:Int(10))" in bodies
    assert "SeverityNumber: SEVERITY_NUMBER_FATAL(21)" in rotel.log_text()
    assert data.fit_span in rotel.log_text()
    again = replay(data.path, "--signals", "logs", "--endpoint", endpoint, "--protocol", protocol)
    assert report(again)["logs"]["sent"] == 0 and report(again)["logs"]["up_to_date_files"] == 2


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_the_default_signals_ship_the_logs_too(data: LogsDir, rotel: RotelAgent) -> None:
    """An offline run writes logs by default, so a later replay sends them unless told otherwise."""
    result = replay(data.path, "--endpoint", rotel.grpc_endpoint)
    assert result.returncode == 0, result.stderr
    assert set(report(result)) == {"traces", "metrics", "logs"} and report(result)["logs"]["sent"] == 7
    wait_until(
        lambda: rotel.log_text().count("LogRecord #") >= 7 or None,
        timeout=15,
        interval=0.1,
        message=lambda: rotel.log_text()[-2000:],
    )
    left_out = replay(data.path, "--endpoint", rotel.grpc_endpoint, "--signals", "traces,metrics")
    assert set(report(left_out)) == {"traces", "metrics"}


# --- a loopback receiver: cursor, torn and bad lines -------------------------------------------------------
@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as server:
        yield server


def _records(receiver: Receiver) -> list[str]:
    return [
        record.body.string_value
        for request in receiver.requests("/v1/logs")
        for rl in request.resource_logs
        for sl in rl.scope_logs
        for record in sl.log_records
    ]


def test_a_replay_with_no_signals_named_sends_the_logs(data: LogsDir, receiver: Receiver) -> None:
    result = replay(data.path, "--endpoint", receiver.endpoint, "--protocol", "http/protobuf")
    assert result.returncode == 0, result.stderr
    assert report(result)["logs"]["sent"] == 7
    assert len(_records(receiver)) == 7


def test_a_torn_last_line_waits_and_a_bad_line_is_skipped(data: LogsDir, receiver: Receiver) -> None:
    (trainer,) = (data.path / "logs").glob("*/trainer-*.jsonl")
    good = trainer.read_text()
    trainer.write_text(good + "not json at all\n" + good[:50])
    args = ("--signals", "logs", "--endpoint", receiver.endpoint, "--protocol", "http/protobuf")
    first = replay(data.path, *args)
    assert first.returncode == 0, first.stderr
    logs = report(first)["logs"]
    assert (logs["sent"], logs["skipped_lines"], logs["incomplete_lines"]) == (7, 1, 1)
    assert (
        f"{trainer}:2: skipped invalid line (not an OTLP/JSON trace, metrics or logs request)" in first.stderr
    )
    ids = {
        record.trace_id.hex()
        for request in receiver.requests("/v1/logs")
        for rl in request.resource_logs
        for sl in rl.scope_logs
        for record in sl.log_records
    }
    assert ids == {data.fit_trace, data.score_trace, ""}
    receiver.bodies.clear()
    trainer.write_text(good + "not json at all\n" + good)  # the torn line finished
    second = replay(data.path, *args)
    assert report(second)["logs"]["sent"] == 4
    assert sorted(_records(receiver)) == [
        "cache miss seed=7",
        "fit failed",
        "loaded 3 rows",
        "outside any span",
    ]
