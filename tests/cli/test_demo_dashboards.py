"""The dashboards and alert rules query only metrics that `modeltel demo` really writes."""

from __future__ import annotations

import subprocess
from pathlib import Path

from otlp_files import BIN, base_env, jsonl_files
from test_collector_config import check_queries_against_metrics, otel_metrics_from_otlp_json


def test_dashboard_queries_match_the_demo_metrics_file(tmp_path: Path) -> None:
    data = tmp_path / "d"
    result = subprocess.run(
        [str(BIN / "modeltel"), "demo", "--data-dir", str(data)],
        env=base_env(data),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = [line for path in jsonl_files(data, "metrics") for line in path.read_text().splitlines()]
    emitted = otel_metrics_from_otlp_json(lines)
    names = {m.name for m in emitted}
    assert {"modeltel.simulation.run.duration", "gen_ai.client.token.usage"} <= names
    assert check_queries_against_metrics(emitted) == []
