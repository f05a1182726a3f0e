"""``modeltel doctor``: data dir health from the reader, endpoint reachability by TCP connect only."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from otlp_files import BIN, base_env
from reading_data import damaged_dir, example_run

pytestmark = pytest.mark.timeout(120)


def doctor(data: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "modeltel"), "doctor", *args],
        env=base_env(data, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def doctor_json(data: Path, **env: str) -> dict[str, Any]:
    result = doctor(data, "--format", "json", **env)
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


class Listener:
    """A loopback TCP server that records what each connection sent (a probe must send nothing)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port: int = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(5)
                chunks = []
                try:
                    while chunk := connection.recv(4096):
                        chunks.append(chunk)
                except OSError:
                    pass
                self.received.append(b"".join(chunks))


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.sock.close()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return example_run(tmp_path_factory.mktemp("run") / "data")


def test_health_of_a_real_run(run_dir: Path) -> None:
    health = doctor_json(run_dir)["data_dir_health"]
    assert health["exists"] is True
    assert (health["trace_files"], health["metric_files"], health["spans"]) == (1, 1, 6)
    assert health["summaries"] == 1 and health["bad_lines"] == 0 and health["bad_line_examples"] == []
    on_disk = sum(p.stat().st_size for p in run_dir.rglob("*.jsonl"))
    assert health["bytes"] == on_disk
    assert health["running_jobs"] == {} and health["replay_cursor"] is False


def test_health_names_torn_and_garbage_lines(run_dir: Path, tmp_path: Path) -> None:
    path, garbage, torn, good_spans = damaged_dir(run_dir, tmp_path / "damaged")
    metrics = tmp_path / "damaged" / "metrics" / "2026-01-02"
    metrics.mkdir(parents=True)
    (metrics / "m-1-2.jsonl").write_text('{"resourceMetrics": []}\n{"resourceSpans": []}\n{"resourceMet')
    (tmp_path / "damaged" / "summaries.jsonl").write_text("{}\n")
    health = doctor_json(tmp_path / "damaged")["data_dir_health"]
    assert health["spans"] == good_spans and health["bad_lines"] == 5
    examples = "\n".join(health["bad_line_examples"])
    assert f"{path}:{garbage}:" in examples and f"{path}:{torn}:" in examples
    assert "m-1-2.jsonl:2: skipped invalid line (not an OTLP/JSON metrics request)" in examples
    assert "m-1-2.jsonl:3: skipped invalid line (torn last line)" in examples
    assert "summaries.jsonl:1:" in examples
    table = doctor(tmp_path / "damaged")
    assert table.returncode == 0 and _row(table.stdout, "unreadable lines") == ["5"]
    assert f"{path}:{garbage}:" in table.stdout


def test_a_missing_data_dir_is_reported_and_not_created(tmp_path: Path) -> None:
    health = doctor_json(tmp_path / "later")["data_dir_health"]
    assert health["exists"] is False and not (tmp_path / "later").exists()
    assert "does not exist yet" in doctor(tmp_path / "later").stdout


def test_endpoints_reachable_and_not_never_sending_data(tmp_path: Path, listener: Listener) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        closed_port = closed.getsockname()[1]
    probed = doctor(
        tmp_path / "d",
        "--format",
        "json",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"http://127.0.0.1:{listener.port}",
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=f"http://127.0.0.1:{closed_port}",
        OTEL_EXPORTER_OTLP_HEADERS="authorization=topsecret",
    )
    assert probed.returncode == 1  # one endpoint in use cannot be reached
    report = json.loads(probed.stdout)
    by_port = {e["port"]: e for e in report["endpoints"]}
    up, down = by_port[listener.port], by_port[closed_port]
    assert (up["reachable"], up["signals"], up["error"]) == (True, ["traces"], None)
    assert (down["reachable"], down["signals"]) == (False, ["metrics"]) and down["error"]
    table = doctor(
        tmp_path / "d",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{listener.port}",
        OTEL_EXPORTER_OTLP_HEADERS="authorization=topsecret",
    )
    assert table.returncode == 0
    state = _row(table.stdout, f"127.0.0.1:{listener.port}")  # one line per host:port
    assert state[:2] == ["traces, metrics, logs", "reachable"] and state[2].endswith(" ms")
    assert "topsecret" not in table.stdout + table.stderr
    listener.sock.close()
    listener.thread.join(timeout=10)
    assert len(listener.received) == 2 and set(listener.received) == {b""}  # connected, sent nothing


def test_no_endpoint_in_use(tmp_path: Path) -> None:
    assert doctor_json(tmp_path / "d")["endpoints"] == []
    assert "endpoints: none in use (no otlp exporter)" in doctor(tmp_path / "d").stdout.splitlines()


def test_the_otlp_default_is_probed_when_otlp_is_chosen_without_endpoint(tmp_path: Path) -> None:
    result = doctor(tmp_path / "d", "--format", "json", OTEL_TRACES_EXPORTER="otlp")
    (endpoint,) = json.loads(result.stdout)["endpoints"]
    assert (endpoint["host"], endpoint["port"], endpoint["signals"]) == ("localhost", 4317, ["traces"])
    assert result.returncode == (0 if endpoint["reachable"] else 1)


def test_the_semantic_convention_version_is_printed(tmp_path: Path) -> None:
    from modeltel._internal import semconv

    assert doctor_json(tmp_path / "data")["semconv"] == semconv.SEMCONV_VERSION == "1.41.0"
    table = doctor(tmp_path / "data")
    assert _row(table.stdout, "semconv") == [semconv.SEMCONV_VERSION, "modeltel"]


def _row(table: str, setting: str) -> list[str]:
    """The cells after ``setting`` in the settings table (columns are two or more spaces apart)."""
    for line in table.splitlines():
        cells = [cell for cell in line.strip().split("  ") if cell.strip()]
        if cells and cells[0].strip() == setting:
            return [cell.strip() for cell in cells[1:]]
    raise AssertionError(f"no row {setting!r} in:\n{table}")


def test_a_readable_report_says_where_each_setting_came_from(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {
        "OTEL_SERVICE_NAME": "sir-sweep",
        "MODELTEL_CAPTURE_CONTENT": "yes",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://user:hunter2@127.0.0.1:1",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_BSP_MAX_QUEUE_SIZE": "4096",
        "OTEL_PYTHON_LOG_CORRELATION": "true",
    }
    result = doctor(data, **env)
    out = result.stdout
    for python_repr in ("True", "False", "None", "['", "{'", "{}"):
        assert python_repr not in out, (python_repr, out)
    assert _row(out, "enabled") == ["yes", "default"]
    assert _row(out, "data dir") == [str(data), "MODELTEL_DATA_DIR"]
    assert _row(out, "service name") == ["sir-sweep", "OTEL_SERVICE_NAME"]
    assert _row(out, "capture content") == ["yes", "MODELTEL_CAPTURE_CONTENT"]
    assert _row(out, "traces exporters") == ["otlp, jsonl", "OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert _row(out, "traces endpoint") == [
        "http://user:****@127.0.0.1:1/v1/traces",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    assert _row(out, "metrics protocol") == ["http/protobuf", "OTEL_EXPORTER_OTLP_PROTOCOL"]
    assert _row(out, "span queue size") == ["4096", "OTEL_BSP_MAX_QUEUE_SIZE"]
    assert _row(out, "OTEL_PYTHON_LOG_CORRELATION") == ["true", "not read by modeltel"]
    assert "hunter2" not in out + result.stderr
    # a configured endpoint that cannot be reached fails the check
    assert result.returncode == 1
    assert "modeltel doctor: 127.0.0.1:1 unreachable" in result.stderr
    report = json.loads(doctor(data, "--format", "json", **env).stdout)
    settings = {row["setting"]: row for row in report["settings"]}
    assert settings["service name"] == {
        "setting": "service name",
        "value": "sir-sweep",
        "source": "OTEL_SERVICE_NAME",
    }
    assert report["sources"]["service_name"] == "OTEL_SERVICE_NAME"
    assert report["sources"]["data_dir"] == "MODELTEL_DATA_DIR"
    assert report["sources"]["sampler"] == "default"
