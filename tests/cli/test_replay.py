"""``modeltel replay`` without a receiver: usage errors, the plain-text refusal, secrets never shown.

The sends themselves are tested against real receivers in tests/integration/test_replay.py.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from otlp_files import BIN, base_env
from reading_data import collector_file, example_run

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return example_run(tmp_path_factory.mktemp("run") / "data")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def replay(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = base_env(cwd / "default-data", OTEL_EXPORTER_OTLP_TIMEOUT="2000", **env)
    return subprocess.run(
        [str(BIN / "modeltel"), "replay", *args],
        env=environment,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=90,
    )


def _one_line_error(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


@pytest.mark.parametrize(
    "endpoint", ["http://example.com:4317", "http://10.1.2.3:4318", "http://[2001:db8::1]:4317"]
)
def test_plain_text_off_the_machine_is_refused(run_dir: Path, tmp_path: Path, endpoint: str) -> None:
    result = replay("--data-dir", str(run_dir), "--endpoint", endpoint, cwd=tmp_path)
    error = _one_line_error(result)
    assert (
        error.startswith("modeltel replay: refusing to send traces in plain text to ")
        and "--insecure" in error
    )
    assert not (run_dir / "replay-cursor.json").exists()


def test_the_refusal_covers_the_environments_endpoint(run_dir: Path, tmp_path: Path) -> None:
    result = replay(
        "--data-dir",
        str(run_dir),
        cwd=tmp_path,
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT="http://collector.lan:4317",
    )
    assert "refusing to send metrics in plain text to http://collector.lan:4317" in _one_line_error(result)


def test_insecure_lets_it_through(run_dir: Path, tmp_path: Path) -> None:
    # 192.0.2.0/24 is TEST-NET-1: nothing answers, so the send fails (exit 1) instead of being refused.
    result = replay(
        "--data-dir", str(run_dir), "--endpoint", "http://192.0.2.1:4317", "--insecure",
        "--retries", "0", "--signals", "traces", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "refusing" not in result.stderr and "traces to http://192.0.2.1:4317: gRPC" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch", "0"], "--batch: must be at least 1"),
        (["--retries", "-1"], "--retries: must not be negative"),
        (["--protocol", "http/json"], "invalid choice"),
        (["--endpoint", "127.0.0.1:4317"], "--endpoint: expected a URL like http://host:4317"),
        (["--endpoint", "http://127.0.0.1:notaport"], "--endpoint: expected a URL"),
        (["--signals", "spans"], "--signals: expected a comma list of traces, metrics, logs"),
        (["--format", "yaml"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2(run_dir: Path, tmp_path: Path, args: list[str], message: str) -> None:
    result = replay("--data-dir", str(run_dir), *args, cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_missing_sources_exit_2(tmp_path: Path) -> None:
    assert "no such data dir" in _one_line_error(replay("--data-dir", str(tmp_path / "nope"), cwd=tmp_path))
    assert "no such data dir" in _one_line_error(replay(cwd=tmp_path))  # the default one
    assert "no such file or directory" in _one_line_error(replay(str(tmp_path / "nope.jsonl"), cwd=tmp_path))


def test_credentials_and_header_values_are_never_shown(run_dir: Path, tmp_path: Path) -> None:
    in_url = replay(
        "--data-dir", str(run_dir), "--endpoint", "http://user:pw-in-url@127.0.0.1:4317", cwd=tmp_path
    )
    assert "pw-in-url" not in in_url.stderr and "credentials" in _one_line_error(in_url)
    bad = replay("--data-dir", str(run_dir), "--headers", "api-key=hidden-1,oops-hidden-2", cwd=tmp_path)
    assert "entry 2 of 2 is not name=value" in _one_line_error(bad)
    assert "hidden-1" not in bad.stderr and "hidden-2" not in bad.stderr
    port = _closed_port()
    failed = replay(
        "--data-dir", str(run_dir), "--endpoint", f"http://127.0.0.1:{port}", "--retries", "1",
        "--headers", "authorization=Bearer%20topsecret-1", cwd=tmp_path,
        OTEL_EXPORTER_OTLP_HEADERS="x-api-key=topsecret-2",
    )  # fmt: skip
    assert failed.returncode == 1
    assert (
        "retry 1 of 1" in failed.stderr
        and f"traces to http://127.0.0.1:{port}: gRPC UNAVAILABLE" in failed.stderr
    )
    assert "run again to resume" in failed.stderr
    http = replay(
        "--data-dir", str(run_dir), "--protocol", "http/protobuf", "--retries", "0", cwd=tmp_path,
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://localhost:{port}",
        OTEL_EXPORTER_OTLP_HEADERS="x-api-key=topsecret-3",
    )  # fmt: skip
    assert http.returncode == 1 and f"http://localhost:{port}/v1/traces: connection failed" in http.stderr
    for result in (failed, http):
        assert "topsecret" not in result.stdout + result.stderr
    cursor = run_dir / "replay-cursor.json"
    assert not cursor.exists() or "topsecret" not in cursor.read_text()


def test_explicit_files_have_no_cursor_unless_a_data_dir_is_named(tmp_path: Path) -> None:
    path = collector_file(tmp_path / "in")
    result = replay(
        str(path), "--endpoint", f"http://127.0.0.1:{_closed_port()}", "--retries", "0", cwd=tmp_path
    )
    assert "no cursor" in result.stderr and result.returncode == 1


def test_a_damaged_cursor_is_a_one_line_failure(tmp_path: Path) -> None:
    data = example_run(tmp_path / "data")
    (data / "replay-cursor.json").write_text("{broken")
    result = replay("--data-dir", str(data), cwd=tmp_path)
    assert "is damaged" in _one_line_error(result, code=1) and "move it away" in result.stderr
