"""``modeltel metrics`` on real programs' metric files (two processes of one run), checked against the
official OTLP messages, and on a Collector-style file."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from otlp_files import attrs, metric_requests, run_under_modeltel
from reading_data import modeltel

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example app run twice under one MODELTEL_RUN_ID (3 then 5 tasks), and once in another run."""
    data = tmp_path_factory.mktemp("run") / "data"
    for spans, run in (("3", "sweep-1"), ("5", "sweep-1"), ("2", "sweep-2")):
        result = run_under_modeltel(data, EXAMPLE_SPANS=spans, MODELTEL_RUN_ID=run, OTEL_SERVICE_NAME="sweep")
        assert result.returncode == 0, result.stderr
    return data


def _json(*args: str) -> dict[str, Any]:
    result = modeltel("metrics", *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def _proto_points(data: Path, name: str, run: str) -> list[Any]:
    """The points of ``name`` in run ``run`` as the official messages decode them."""
    found = []
    for request in metric_requests(data):
        for block in request.resource_metrics:
            if attrs(block.resource.attributes).get("modeltel.run.id") != run:
                continue
            for scope in block.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        kind = metric.WhichOneof("data")
                        found.extend(getattr(metric, kind).data_points)
    return found


def test_one_run_merges_its_processes(two_process_run: Path) -> None:
    document = _json("--data-dir", str(two_process_run), "--run", "sweep-1")
    assert document["run_ids"] == ["sweep-1"] and document["processes"] == 2
    assert "estimated from bucket counts" in document["note"]
    by_name = {i["name"]: i for i in document["instruments"]}
    tasks = by_name["example.tasks"]
    assert (tasks["kind"], tasks["unit"], tasks["temporality"], tasks["monotonic"]) == (
        "sum",
        "{task}",
        "cumulative",
        True,
    )
    (series,) = tasks["series"]
    proto_total = sum(p.as_int for p in _proto_points(two_process_run, "example.tasks", "sweep-1"))
    assert series["value"] == proto_total == 3 + 5 and series["processes"] == 2
    (latency,) = by_name["example.latency"]["series"]
    points = _proto_points(two_process_run, "example.latency", "sweep-1")
    assert latency["count"] == sum(p.count for p in points) == 8
    assert latency["sum"] == pytest.approx(sum(p.sum for p in points))
    assert latency["min"] == pytest.approx(0.002) and latency["max"] == pytest.approx(0.010)
    # 0.002 … 0.010 s: all in the (0.001, 0.01] bucket, so the estimates lie within min and max
    assert 0.002 <= latency["p50"] <= latency["p95"] <= latency["p99"] <= 0.010
    (temperature,) = by_name["example.temperature"]["series"]
    assert by_name["example.temperature"]["kind"] == "gauge"
    assert temperature == {**temperature, "value": 21.5, "processes": 2, "attributes": {"room": "lab"}}


def test_last_run_and_all_runs(two_process_run: Path) -> None:
    last = _json("--data-dir", str(two_process_run), "--last-run")
    tasks = next(i for i in last["instruments"] if i["name"] == "example.tasks")
    assert last["run_ids"] == ["sweep-2"] and tasks["series"][0]["value"] == 2
    everything = _json("--data-dir", str(two_process_run))
    tasks = next(i for i in everything["instruments"] if i["name"] == "example.tasks")
    assert everything["processes"] == 3 and tasks["series"][0]["value"] == 10


def test_table_says_percentiles_are_estimates(two_process_run: Path) -> None:
    result = modeltel(
        "metrics", "--data-dir", str(two_process_run), "--run", "sweep-1", "--name", "example.*"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "2 processes" in lines[0] and "estimated from bucket counts" in lines[0]
    assert "example.latency  (histogram, unit s, cumulative)" in lines
    header = next(line for line in lines if "p50~" in line).split()
    assert header == ["count", "sum", "min", "max", "p50~", "p95~", "p99~", "processes"]
    assert "example.tasks  (counter, unit {task}, cumulative)" in lines
    assert "example.temperature  (gauge, unit Cel)" in lines
    at = lines.index("example.temperature  (gauge, unit Cel)")
    assert lines[at + 1].strip() == "room=lab" and lines[at + 3].split() == ["21.5", "2"]


def test_csv_rows_and_name_glob(two_process_run: Path) -> None:
    result = modeltel(
        "metrics", str(two_process_run), "--run", "sweep-1", "--name", "*.latency", "--format", "csv"
    )
    assert result.returncode == 0, result.stderr
    (row,) = list(csv.DictReader(io.StringIO(result.stdout)))
    assert (row["instrument"], row["kind"], row["count"], row["processes"]) == (
        "example.latency",
        "histogram",
        "8",
        "2",
    )
    assert json.loads(row["attributes"]) == {"model": "sir"} and float(row["p50"]) > 0


def test_a_collector_file_with_several_services(tmp_path: Path) -> None:
    def request(service: str, value: int) -> dict[str, Any]:
        point = {"asInt": str(value), "timeUnixNano": "1700000000000000000"}
        return {
            "resourceMetrics": [
                {
                    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                    "scopeMetrics": [
                        {
                            "metrics": [
                                {
                                    "name": "http.server.requests",
                                    "unit": "{request}",
                                    "sum": {
                                        "dataPoints": [point],
                                        "aggregationTemporality": 2,
                                        "isMonotonic": True,
                                    },
                                }
                            ]
                        }
                    ],
                }
            ]
        }

    path = tmp_path / "otel-collector" / "metrics.json"
    path.parent.mkdir()
    path.write_text("".join(json.dumps(request(s, v)) + "\n" for s, v in (("api", 4), ("worker", 6))))
    document = _json(str(path.parent))
    (instrument,) = document["instruments"]
    assert instrument["series"][0]["value"] == 10 and document["processes"] == 2


def test_nothing_found_is_exit_1_with_one_line(tmp_path: Path, two_process_run: Path) -> None:
    empty = tmp_path / "data"
    (empty / "traces").mkdir(parents=True)
    result = modeltel("metrics", "--data-dir", str(empty))
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"modeltel metrics: no metric files in {empty}\n"
    result = modeltel("metrics", "--data-dir", str(two_process_run), "--name", "nothing.*")
    assert (
        result.returncode == 1
        and result.stderr == f"modeltel metrics: no metrics matching nothing.* in {two_process_run}\n"
    )
    result = modeltel("metrics", "--data-dir", str(two_process_run), "--run", "nope")
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "--run nope" in result.stderr


HOSTILE = [
    "abc",
    "",
    "-5",
    "1e400",
    "NaN",
    "\ud800",
    "\x1b[2J",
    1e308,
    -1,
    2**70,
    None,
    [],
    {},
    True,
    "x" * 50_000,
]
POINT_FIELDS = ["timeUnixNano", "asDouble", "asInt", "attributes", "flags", "count", "sum", "bucketCounts"]
POINT_FIELDS += ["explicitBounds", "min", "max", "scale", "zeroCount", "positive", "negative"]


def test_hostile_points_are_skipped_or_read_never_a_traceback(tmp_path: Path) -> None:
    """Every point field of every kind set to a wrong value, one metric per line, then a good one."""
    lines = []
    for kind in ("gauge", "sum", "histogram", "exponentialHistogram", "summary"):
        for name in POINT_FIELDS:
            for value in HOSTILE:
                point = {
                    "timeUnixNano": "1700000000000000000",
                    "asDouble": 1.0,
                    "count": "3",
                    "bucketCounts": ["1", "2"],
                    "explicitBounds": [1.0],
                    "scale": 3,
                    "positive": {"offset": 2, "bucketCounts": ["3"]},
                    name: value,
                }
                metric = {
                    "name": f"{kind}.{name}",
                    kind: {"dataPoints": [point], "aggregationTemporality": 2},
                }
                lines.append({"resourceMetrics": [{"scopeMetrics": [{"metrics": [metric]}]}]})
    good = {"name": "good", "gauge": {"dataPoints": [{"asDouble": 2.0, "timeUnixNano": "1"}]}}
    lines.append({"resourceMetrics": [{"scopeMetrics": [{"metrics": [good]}]}]})
    path = tmp_path / "hostile.jsonl"
    text = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    for output in ("table", "json", "csv"):
        result = modeltel("metrics", str(path), "--format", output)
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-1500:]
        assert "good" in result.stdout
    document = _json(str(path), "--name", "good")
    assert document["instruments"][0]["series"][0]["value"] == 2.0
