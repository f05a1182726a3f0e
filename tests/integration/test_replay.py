"""``modeltel replay`` into real receivers: Phoenix reads the spans back, rotel logs every item.

Phoenix keeps one row per span id, so it cannot show a span sent twice; rotel's debug log prints
every span and data point it receives, so the tests that are about duplicates count ids there.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from otlp_files import BIN, attrs, base_env, jsonl_files, run_under_modeltel, spans
from reading_data import example_run, sdk_file

from .backends import (
    BLACKHOLE_DEBUG_ENV,
    PHOENIX_PROJECT_ATTRIBUTE,
    PhoenixServer,
    RotelAgent,
    RotelMetricsSink,
    latest_points,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

PROTOCOLS = ["grpc", "http/protobuf"]
_SPAN_ID = re.compile(r"^\s+ID\s+:\s+([0-9a-f]{16})\s*$", re.MULTILINE)


def replay(data: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "modeltel"), "replay", "--data-dir", str(data), "--format", "json", *args],
        env=base_env(data),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_replay(data: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / "modeltel"), "replay", "--data-dir", str(data), "--format", "json", *args],
        env=base_env(data),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def sent(result_stdout: str) -> dict[str, int]:
    return {s["signal"]: s["sent"] for s in json.loads(result_stdout)["signals"]}


def cursor_offset(data: Path) -> int:
    path = data / "replay-cursor.json"
    try:
        document = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return 0
    return sum(entry["offset"] for files in document["endpoints"].values() for entry in files.values())


def spans_after(path: Path, offset: int) -> int:
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read().count(b'"startTimeUnixNano"')


def rotel_span_ids(*agents: RotelAgent) -> Counter[str]:
    return Counter(id_ for agent in agents for id_ in _SPAN_ID.findall(agent.log_text()))


def wait_for_ids(agents: list[RotelAgent], expected: set[str], timeout: float = 60) -> Counter[str]:
    def complete() -> Counter[str] | None:
        seen = rotel_span_ids(*agents)
        return seen if expected <= set(seen) else None

    return wait_until(complete, timeout=timeout, message=lambda: f"{len(expected)} span ids in rotel's log")


def _phoenix_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_replayed_spans_read_back_from_phoenix_and_a_second_replay_sends_nothing(
    tmp_path: Path, phoenix: PhoenixServer, phoenix_project: str, protocol: str
) -> None:
    data = example_run(
        tmp_path / "d",
        OTEL_RESOURCE_ATTRIBUTES=f"{PHOENIX_PROJECT_ATTRIBUTE}={phoenix_project}",
    )
    local = [span for span, _, _ in spans(data)]
    endpoint = phoenix.grpc_endpoint if protocol == "grpc" else phoenix.http_url
    result = replay(data, "--endpoint", endpoint, "--protocol", protocol, "--signals", "traces")
    assert result.returncode == 0, result.stderr
    assert sent(result.stdout) == {"traces": len(local)} == {"traces": 6}
    received = {
        s["context"]["span_id"]: s for s in phoenix.spans(phoenix_project, min_count=len(local), timeout=60)
    }
    assert set(received) == {span.span_id.hex() for span in local}
    for span in local:
        theirs = received[span.span_id.hex()]
        assert theirs["context"]["trace_id"] == span.trace_id.hex() and theirs["name"] == span.name
        assert (theirs["parent_id"] or "") == span.parent_span_id.hex()
        for key, value in attrs(span.attributes).items():
            assert _phoenix_value(theirs["attributes"][key]) == value, key
        assert [e["name"] for e in theirs["events"]] == [e.name for e in span.events]
    again = replay(data, "--endpoint", endpoint, "--protocol", protocol, "--signals", "traces")
    assert again.returncode == 0, again.stderr
    assert sent(again.stdout) == {"traces": 0}
    assert json.loads(again.stdout)["signals"][0]["up_to_date_files"] == 1
    time.sleep(2)  # Phoenix inserts in batches: give a stray duplicate time to land
    assert len(phoenix.fetch_spans(phoenix_project)) == len(local)


def test_many_spans_with_every_attribute_type_reach_phoenix(tmp_path: Path, phoenix: PhoenixServer) -> None:
    data = tmp_path / "d"
    path = sdk_file(data, 600, batch=50)
    local = {s.span_id.hex(): s for s, _, _ in spans(data)}
    (trace_id,) = {s.trace_id.hex() for s in local.values()}
    result = replay(data, "--endpoint", phoenix.grpc_endpoint, "--batch", "200")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)["signals"][0]
    assert (report["sent"], report["requests"], report["lines"]) == (600, 3, 12)
    received = phoenix.spans("default", trace_id=trace_id, min_count=600, timeout=90)
    assert len(received) == 600
    for theirs in received:
        span = local[theirs["context"]["span_id"]]
        assert theirs["name"] == span.name and (theirs["parent_id"] or "") == span.parent_span_id.hex()
        for key, value in attrs(span.attributes).items():
            assert _phoenix_value(theirs["attributes"][key]) == value, (span.name, key)
        assert theirs["status_code"] == ("ERROR" if span.status.code == 2 else "UNSET")
    assert path.stat().st_size == cursor_offset(data)


def test_sigterm_stops_between_requests_and_the_rest_follows_exactly_once(tmp_path: Path) -> None:
    data = tmp_path / "d"
    path = sdk_file(data, 4000, batch=4)
    expected = {s.span_id.hex() for s, _, _ in spans(data)}
    sink = RotelAgent.start(tmp_path / "rotel", BLACKHOLE_DEBUG_ENV, debug_logs=("traces",))
    try:
        running = start_replay(data, "--endpoint", sink.grpc_endpoint, "--batch", "4")
        wait_until(lambda: cursor_offset(data) > 0, timeout=60, message="a first acknowledged request")
        running.send_signal(signal.SIGTERM)
        stdout, stderr = running.communicate(timeout=60)
        assert running.returncode == 128 + signal.SIGTERM, stderr
        first = json.loads(stdout)
        assert first["interrupted"] is True and "interrupted" in stderr
        first_sent = first["signals"][0]["sent"]
        assert 0 < first_sent < 4000
        assert spans_after(path, cursor_offset(data)) == 4000 - first_sent
        rest = replay(data, "--endpoint", sink.grpc_endpoint, "--batch", "4")
        assert rest.returncode == 0, rest.stderr
        assert sent(rest.stdout)["traces"] == 4000 - first_sent
        seen = wait_for_ids([sink], expected)
        time.sleep(1)
        assert rotel_span_ids(sink) == Counter(dict.fromkeys(expected, 1))  # every span exactly once
        del seen
    finally:
        sink.stop()


def test_sigkill_resumes_from_the_cursor(tmp_path: Path) -> None:
    data = tmp_path / "d"
    path = sdk_file(data, 4000, batch=4)
    expected = {s.span_id.hex() for s, _, _ in spans(data)}
    sink = RotelAgent.start(tmp_path / "rotel", BLACKHOLE_DEBUG_ENV, debug_logs=("traces",))
    try:
        running = start_replay(data, "--endpoint", sink.grpc_endpoint, "--batch", "4")
        wait_until(lambda: cursor_offset(data) > 0, timeout=60, message="a first acknowledged request")
        running.kill()
        running.communicate(timeout=30)
        left = spans_after(path, cursor_offset(data))
        assert 0 < left < 4000
        rest = replay(data, "--endpoint", sink.grpc_endpoint, "--batch", "4")
        assert rest.returncode == 0, rest.stderr
        assert sent(rest.stdout)["traces"] == left  # exactly what the cursor had not recorded
        seen = wait_for_ids([sink], expected)
        time.sleep(1)
        seen = rotel_span_ids(sink)
        # At most the one request acknowledged but not yet recorded when the kill landed comes twice.
        assert set(seen) == expected and sum(seen.values()) - len(expected) <= 4
    finally:
        sink.stop()


def test_a_receiver_that_goes_away_and_comes_back(tmp_path: Path) -> None:
    data = tmp_path / "d"
    path = sdk_file(data, 4000, batch=4)
    expected = {s.span_id.hex() for s, _, _ in spans(data)}
    first = RotelAgent.start(tmp_path / "rotel-1", BLACKHOLE_DEBUG_ENV, debug_logs=("traces",))
    agents = [first]
    try:
        running = start_replay(data, "--endpoint", first.grpc_endpoint, "--batch", "4", "--retries", "2")
        wait_until(lambda: cursor_offset(data) > 0, timeout=60, message="a first acknowledged request")
        first.stop()
        stdout, stderr = running.communicate(timeout=60)
        assert running.returncode == 1, stderr
        report = json.loads(stdout)["signals"][0]
        assert report["error"].startswith("gRPC UNAVAILABLE") and "retry 2 of 2" in stderr
        assert "run again to resume" in stderr
        second = RotelAgent.start(
            tmp_path / "rotel-2",
            BLACKHOLE_DEBUG_ENV,
            debug_logs=("traces",),
            ports=(first.grpc_port, first.http_port),
        )
        agents.append(second)
        left = spans_after(path, cursor_offset(data))
        rest = replay(data, "--endpoint", second.grpc_endpoint, "--batch", "4")
        assert rest.returncode == 0, rest.stderr
        assert sent(rest.stdout)["traces"] == left == 4000 - report["sent"]
        wait_for_ids(agents, expected)
        time.sleep(1)
        seen = rotel_span_ids(*agents)
        # A request the first receiver took but never answered before it went is sent again.
        assert set(seen) == expected and sum(seen.values()) - len(expected) <= 4
    finally:
        for agent in agents:
            agent.stop()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_metrics_replayed_to_rotel_arrive_once(
    tmp_path: Path, rotel_metrics_sink: RotelMetricsSink, protocol: str
) -> None:
    service = f"replayed-{protocol.replace('/', '-')}"
    data = tmp_path / "d"
    run = run_under_modeltel(data, OTEL_SERVICE_NAME=service, OTEL_METRIC_EXPORT_INTERVAL="100")
    assert run.returncode == 0, run.stderr
    (metrics_file,) = jsonl_files(data, "metrics")
    lines = metrics_file.read_text().splitlines()
    endpoint = rotel_metrics_sink.grpc_endpoint if protocol == "grpc" else rotel_metrics_sink.http_endpoint
    result = replay(data, "--endpoint", endpoint, "--protocol", protocol, "--signals", "metrics")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)["signals"][0]
    assert report["lines"] == len(lines) and report["sent"] > 0
    counters = rotel_metrics_sink.wait_for_metric(
        "example.tasks", service_name=service, min_points=len(lines)
    )
    assert len(counters) == len(lines)  # one point per stored line, none twice
    (counter,) = latest_points(counters).values()
    assert counter.value == 3 and counter.unit == "{task}" and counter.temporality == "CUMULATIVE"
    (hist,) = latest_points(
        rotel_metrics_sink.wait_for_metric("example.latency", service_name=service)
    ).values()
    assert hist.bucket_counts == [0, 3, 0, 0, 0] and hist.count == 3
    (gauge,) = latest_points(
        rotel_metrics_sink.wait_for_metric("example.temperature", service_name=service)
    ).values()
    assert gauge.value == 21.5 and gauge.attributes == {"room": "lab"}
    stored = json.loads(lines[-1])["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
    stored_time = next(m for m in stored if m["name"] == "example.tasks")["sum"]["dataPoints"][0][
        "timeUnixNano"
    ]
    assert counter.time_unix_nano == int(stored_time)
    total = len(rotel_metrics_sink.points())
    again = replay(data, "--endpoint", endpoint, "--protocol", protocol, "--signals", "metrics")
    assert again.returncode == 0 and sent(again.stdout) == {"metrics": 0}
    time.sleep(1)
    assert len(rotel_metrics_sink.points()) == total


def test_phoenix_refusing_metrics_fails_that_signal_only(
    tmp_path: Path, phoenix: PhoenixServer, phoenix_project: str
) -> None:
    data = example_run(
        tmp_path / "d",
        OTEL_RESOURCE_ATTRIBUTES=f"{PHOENIX_PROJECT_ATTRIBUTE}={phoenix_project}",
    )
    result = replay(data, "--endpoint", phoenix.grpc_endpoint)
    assert result.returncode == 1
    traces, metrics, logs = json.loads(result.stdout)["signals"]  # by default every signal
    assert traces["sent"] == 6 and traces["error"] is None
    assert metrics["sent"] == 0 and metrics["error"].startswith("gRPC UNIMPLEMENTED")
    assert (logs["files"], logs["sent"], logs["error"]) == (0, 0, None)  # the example app logs nothing
    assert "metrics to " in result.stderr and "UNIMPLEMENTED" in result.stderr
    assert "retry" not in result.stderr  # not retryable: one attempt
    phoenix.spans(phoenix_project, min_count=6, timeout=60)
    again = replay(data, "--endpoint", phoenix.grpc_endpoint, "--signals", "traces")
    assert sent(again.stdout) == {"traces": 0}
