"""`modeltel run` and plain `opentelemetry-instrument` on an app that knows only the OTel API."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from otlp_files import (
    BIN,
    EXAMPLE_APP,
    attrs,
    base_env,
    jsonl_files,
    metric_requests,
    run_under_modeltel,
    spans,
    summaries,
)


def _check_trace_file(data_dir: Path, service: str) -> None:
    (path,) = jsonl_files(data_dir, "traces")
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    assert path.parent.name == day
    name, pid, start = path.stem.rsplit("-", 2)
    assert name == service and pid.isdigit() and abs(int(start) - datetime.now(UTC).timestamp()) < 120
    found = spans(data_dir)
    by_name = {}
    for span, resource, scope in found:
        by_name.setdefault(span.name, []).append(span)
        assert attrs(resource.attributes)["service.name"] == service
        assert (scope.name, scope.version) == ("example.app", "1.2.3")
    assert sorted(by_name) == ["failing", "report", "sweep", "task"]
    (root,) = by_name["sweep"]
    assert root.parent_span_id == b"" and root.kind == Span.SPAN_KIND_INTERNAL
    assert attrs(root.attributes) == {
        "sweep.size": 3,
        "sweep.label": "SIR ✓",
        "sweep.ratio": 0.25,
        "sweep.ok": True,
        "sweep.seeds": [1, 2, 3],
        "sweep.names": ["a", "b"],
        "sweep.weights": [0.5, 1.5],
        "sweep.flags": [True, False],
    }
    tasks = sorted(by_name["task"], key=lambda s: attrs(s.attributes)["task.index"])
    assert [attrs(t.attributes)["task.index"] for t in tasks] == [0, 1, 2]
    for i, task in enumerate(tasks):
        assert task.trace_id == root.trace_id and task.parent_span_id == root.span_id
        (event,) = task.events
        assert event.name == "checkpoint" and attrs(event.attributes) == {"step": i, "loss": 1.0 / (i + 1)}
        assert root.start_time_unix_nano <= task.start_time_unix_nano <= task.end_time_unix_nano
    (report,) = by_name["report"]
    (link,) = report.links
    assert link.span_id == root.span_id and attrs(link.attributes) == {"link.kind": "follows"}
    (failing,) = by_name["failing"]
    assert failing.status.code == Status.STATUS_CODE_ERROR
    assert "bad parameter set" in failing.status.message
    (exc_event,) = failing.events
    assert exc_event.name == "exception"
    assert attrs(exc_event.attributes)["exception.type"] == "ValueError"


def _check_metric_file(data_dir: Path, service: str) -> None:
    requests = metric_requests(data_dir)
    assert requests, "no metric line written"
    last = requests[-1].resource_metrics[0]
    assert attrs(last.resource.attributes)["service.name"] == service
    (scope_metrics,) = [sm for sm in last.scope_metrics if sm.scope.name == "example.app"]
    metrics = {m.name: m for m in scope_metrics.metrics}
    counter = metrics["example.tasks"]
    assert counter.unit == "{task}" and counter.sum.is_monotonic
    (point,) = counter.sum.data_points
    assert point.as_int == 3 and attrs(point.attributes) == {"model": "sir"}
    hist = metrics["example.latency"].histogram
    (hp,) = hist.data_points
    assert list(hp.explicit_bounds) == [0.001, 0.01, 0.1, 1.0]
    assert hp.count == 3 and list(hp.bucket_counts) == [0, 3, 0, 0, 0]
    assert abs(hp.sum - 0.012) < 1e-9
    (gp,) = metrics["example.temperature"].gauge.data_points
    assert gp.as_double == 21.5 and attrs(gp.attributes) == {"room": "lab"}


def test_modeltel_run_writes_otlp_json_traces_metrics_and_summary(tmp_path: Path) -> None:
    data = tmp_path / "modeltel-data"
    result = run_under_modeltel(data, OTEL_SERVICE_NAME="sweep")
    assert result.returncode == 0, result.stderr
    _check_trace_file(data, "sweep")
    _check_metric_file(data, "sweep")
    (summary,) = summaries(data)
    assert summary["schema_version"] == 1 and summary["kind"] == "process"
    assert summary["service"] == "sweep" and summary["span_count"] == 6
    assert summary["by_name"]["task"]["count"] == 3 and summary["by_name"]["failing"]["errors"] == 1
    task = summary["by_name"]["task"]
    assert task["min_s"] <= task["p50_s"] <= task["p95_s"] <= task["max_s"]
    assert abs(task["mean_s"] * 3 - task["total_s"]) < 1e-9
    for key in ("run_id", "pid", "start", "end"):
        assert summary[key]


def test_files_are_private(tmp_path: Path) -> None:
    data = tmp_path / "deep" / "modeltel-data"
    assert run_under_modeltel(data, OTEL_SERVICE_NAME="sweep").returncode == 0
    for path in [tmp_path / "deep", *data.rglob("*"), data]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


def test_opentelemetry_instrument_uses_modeltel_entry_points(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = base_env(
        data, OTEL_SERVICE_NAME="sweep", OTEL_TRACES_EXPORTER="console,jsonl", OTEL_METRICS_EXPORTER="jsonl"
    )
    result = subprocess.run(
        [str(BIN / "opentelemetry-instrument"), sys.executable, str(EXAMPLE_APP)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    _check_trace_file(data, "sweep")
    _check_metric_file(data, "sweep")
    assert '"name": "sweep"' in result.stdout  # the console exporter ran too
    # modeltel's configurator built the providers: its run id is on the resource.
    (_span, resource, _), *_ = spans(data)
    assert attrs(resource.attributes)["modeltel.run.id"]


def test_run_id_and_data_dir_are_handed_to_children(tmp_path: Path) -> None:
    data = tmp_path / "d"
    code = "import os; print(os.environ['MODELTEL_RUN_ID'], os.environ['MODELTEL_DATA_DIR'])"
    result = run_under_modeltel(data, "-c", code, MODELTEL_RUN_ID="run-42")
    assert result.stdout.split() == ["run-42", str(data)]


def test_missing_and_unknown_commands(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    missing = subprocess.run([str(BIN / "modeltel"), "run"], env=env, capture_output=True, text=True)
    assert missing.returncode == 2 and "missing command" in missing.stderr
    unknown = subprocess.run(
        [str(BIN / "modeltel"), "run", "--", "no-such-program-xyz"], env=env, capture_output=True, text=True
    )
    assert unknown.returncode == 1 and "no-such-program-xyz" in unknown.stderr


def test_exit_status_of_the_program_is_kept(tmp_path: Path) -> None:
    result = run_under_modeltel(tmp_path / "d", EXAMPLE_EXIT="sys.exit")
    assert result.returncode == 3
    assert json.loads((tmp_path / "d" / "summaries.jsonl").read_text())["span_count"] == 6
    assert os.path.exists(tmp_path / "d" / "metrics")


CHILD_STATE = (  # asking for a tracer is a first use: a hooked program configures there (test_run_lazy.py)
    "import json, os, sys; from opentelemetry import trace; trace.get_tracer('probe');"
    " print(json.dumps({'hooked': 'modeltel._internal.bootstrap.start' in sys.modules,"
    " 'sdk': any(m.startswith('opentelemetry.sdk') for m in sys.modules),"
    " 'logs': getattr(__import__('logging').Logger.callHandlers, '__module__', None)"
    " == 'modeltel._internal.logs',"
    " 'run_id': os.environ.get('MODELTEL_RUN_ID'), 'data_dir': os.environ['MODELTEL_DATA_DIR']}))"
)


def test_switched_off_the_program_runs_unhooked(tmp_path: Path) -> None:
    for switch in ({"MODELTEL_ENABLED": "false"}, {"OTEL_SDK_DISABLED": "true"}, {"MODELTEL_ENABLED": "0"}):
        # A bad setting does not stop a switched-off run: nothing reads it.
        result = run_under_modeltel(tmp_path / "d", "-c", CHILD_STATE, OTEL_BSP_MAX_QUEUE_SIZE="x", **switch)
        assert result.returncode == 0, result.stderr
        state = json.loads(result.stdout)
        assert state["hooked"] is False and state["sdk"] is False, switch
        assert state["data_dir"] == str(tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_switched_on_the_program_is_hooked(tmp_path: Path) -> None:
    result = run_under_modeltel(tmp_path / "d", "-c", CHILD_STATE)
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout)
    assert state["hooked"] is True and state["sdk"] is True
    assert state["logs"] is True  # logs go to JSONL by default: the bridge is installed
    result = run_under_modeltel(tmp_path / "d", "-c", CHILD_STATE, OTEL_LOGS_EXPORTER="none")
    assert json.loads(result.stdout)["logs"] is False  # no logs exporter: no bridge


def test_a_malformed_switch_is_a_usage_error(tmp_path: Path) -> None:
    result = run_under_modeltel(tmp_path / "d", "-c", "pass", MODELTEL_ENABLED="maybe")
    assert result.returncode == 2 and "MODELTEL_ENABLED" in result.stderr


def test_switched_off_run_imports_no_settings(tmp_path: Path) -> None:
    """Before exec'ing a switched-off program the parent imports no settings, SDK or typing: each
    is milliseconds the switched-off path must not pay (bench/startup.py)."""
    code = (
        "import os, sys\nfrom modeltel.cli.main import main\n"
        "HEAVY = ('pydantic', 'opentelemetry', 'numpy', 'typing', 'pathlib', 'uuid')\n"
        "def fake_exec(*_):\n"
        "    print(*sorted(m for m in sys.modules if m.startswith(HEAVY)))\n"
        "    raise SystemExit(0)\n"
        "os.execve = fake_exec\nmain(['run', '--', sys.executable, '-c', 'pass'])"
    )
    env = base_env(tmp_path, MODELTEL_ENABLED="false")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == []
