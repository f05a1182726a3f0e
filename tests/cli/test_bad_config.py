"""`modeltel run` and `modeltel doctor` stop with exit 2 and name the bad variable and value."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from otlp_files import BIN, base_env

CASES = [
    ({"OTEL_TRACES_EXPORTER": "otlp,jaegerr"}, "OTEL_TRACES_EXPORTER", "jaegerr"),
    ({"OTEL_METRIC_EXPORT_INTERVAL": "1m"}, "OTEL_METRIC_EXPORT_INTERVAL", "1m"),
    ({"OTEL_EXPORTER_OTLP_HEADERS": "api-key"}, "OTEL_EXPORTER_OTLP_HEADERS", "not name=value"),
    ({"OTEL_BSP_SCHEDULE_DELAY": "fast"}, "OTEL_BSP_SCHEDULE_DELAY", "fast"),
]


def _modeltel(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "modeltel"), *args],
        env=base_env(tmp_path / "d", **env),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


@pytest.mark.parametrize(("env", "variable", "shown"), CASES)
@pytest.mark.parametrize("command", [["doctor"], ["run", "--", "true"]])
def test_bad_variable_exits_2_naming_it(
    tmp_path: Path, env: dict[str, str], variable: str, shown: str, command: list[str]
) -> None:
    result = _modeltel(tmp_path, env, *command)
    assert result.returncode == 2
    assert variable in result.stderr and shown in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "d").exists()


def test_unwritable_data_dir_exits_2(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    for command in (["doctor"], ["run", "--", "true"]):
        result = _modeltel(tmp_path, {"MODELTEL_DATA_DIR": str(tmp_path / "f" / "x")}, *command)
        assert (
            result.returncode == 2
            and "MODELTEL_DATA_DIR" in result.stderr
            and str(tmp_path / "f") in result.stderr
        )


def test_run_data_dir_flag_is_checked_too(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    result = _modeltel(tmp_path, {}, "run", "--data-dir", str(tmp_path / "f" / "x"), "--", "true")
    assert result.returncode == 2 and "MODELTEL_DATA_DIR" in result.stderr


def test_doctor_reports_sources_and_never_header_values(tmp_path: Path) -> None:
    env = {
        "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20topsecret",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317",
    }
    result = _modeltel(tmp_path, env, "doctor", "--format", "json")
    report = json.loads(result.stdout)
    (endpoint,) = report["endpoints"]
    assert result.returncode == (0 if endpoint["reachable"] else 1), result.stderr
    assert report["otlp"]["traces"]["headers"] == ["authorization"]
    assert report["traces_exporters"] == ["otlp", "jsonl"]
    assert report["sources"]["otlp.traces.endpoint"] == "OTEL_EXPORTER_OTLP_ENDPOINT"
    assert report["sources"]["otlp.traces.headers"] == "OTEL_EXPORTER_OTLP_HEADERS"
    assert report["sources"]["traces_exporters"] == "OTEL_EXPORTER_OTLP_ENDPOINT"
    assert "topsecret" not in result.stdout + result.stderr
