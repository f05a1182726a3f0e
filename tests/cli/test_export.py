"""``modeltel export``: CSV/JSON rows, merged OTLP/JSON (checked by protobuf), Jaeger UI JSON."""

from __future__ import annotations

import base64
import csv
import json
from pathlib import Path

import pytest
from google.protobuf.json_format import ParseDict
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otlp_files import hex_to_base64, metric_requests, spans
from reading_data import (
    COLLECTOR_TRACE,
    check_jaeger_model,
    collector_file,
    damaged_dir,
    example_run,
    modeltel,
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return example_run(tmp_path_factory.mktemp("run") / "data")


def _export(out: Path, *args: str) -> str:
    result = modeltel("export", *args, "-o", str(out))
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_csv_rows_with_flattened_attributes(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "spans.csv"
    message = _export(out, "--data-dir", str(run_dir), "--format", "csv")
    assert message == f"modeltel export: wrote 6 spans as csv to {out}\n"
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_name = {row["name"]: row for row in rows}
    assert len(rows) == 6 and set(by_name) == {"sweep", "task", "report", "failing"}
    sweep = by_name["sweep"]
    assert sweep["attributes.sweep.size"] == "3" and sweep["attributes.sweep.label"] == "SIR ✓"
    assert sweep["attributes.sweep.ok"] == "true" and json.loads(sweep["attributes.sweep.seeds"]) == [1, 2, 3]
    assert sweep["parent_span_id"] == "" and sweep["service_name"] == "sweep" and sweep["kind"] == "internal"
    assert by_name["failing"]["status_code"] == "ERROR" and by_name["failing"]["events"] == "1"
    assert by_name["report"]["links"] == "1"
    task = next(row for row in rows if row["name"] == "task")
    assert task["parent_span_id"] == sweep["span_id"] and task["attributes.sweep.size"] == ""
    assert float(task["duration_s"]) == (int(task["end_unix_nano"]) - int(task["start_unix_nano"])) / 1e9


def test_json_rows_keep_types(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "spans.json"
    _export(out, "--data-dir", str(run_dir), "--format", "json")
    rows = json.loads(out.read_text())
    sweep = next(row for row in rows if row["name"] == "sweep")
    assert sweep["attributes.sweep.seeds"] == [1, 2, 3] and sweep["attributes.sweep.ratio"] == 0.25
    assert sweep["attributes.sweep.flags"] == [True, False] and sweep["attributes.sweep.size"] == 3
    # Nanosecond times are beyond 2^53: decimal strings, so no JSON reader rounds them.
    assert isinstance(sweep["start_unix_nano"], str) and int(sweep["start_unix_nano"]) > 2**53


def test_otlp_json_merges_inputs_into_valid_canonical_lines(run_dir: Path, tmp_path: Path) -> None:
    collector = collector_file(tmp_path / "in")
    out = tmp_path / "merged.jsonl"
    _export(out, str(run_dir), str(collector), "--format", "otlp-json")
    lines = out.read_text().splitlines()
    # The run's metric lines come after every trace line, each as it was stored.
    metric_lines = [line for line in lines if line.startswith('{"resourceMetrics"')]
    assert lines[len(lines) - len(metric_lines) :] == metric_lines
    stored = [ParseDict(hex_to_base64(json.loads(m)), ExportMetricsServiceRequest()) for m in metric_lines]
    assert stored == metric_requests(run_dir) != []
    lines = lines[: len(lines) - len(metric_lines)]
    assert len(lines) == 1 + 2
    names = []
    for line in lines:
        assert "instrumentationLibrary" not in line and COLLECTOR_TRACE.upper() not in line
        message = ParseDict(hex_to_base64(json.loads(line)), ExportTraceServiceRequest())
        names += [s.name for rs in message.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert sorted(names) == sorted(
        ["sweep", "task", "task", "task", "report", "failing", "chat gpt-4o", "retrieve", "chat gpt-4o"]
    )
    # Read back by modeltel itself: the same spans, ids and attributes as the original files.
    again = tmp_path / "again.jsonl"
    _export(again, str(out), "--format", "otlp-json", "--trace", COLLECTOR_TRACE)
    assert again.read_text().count('"startTimeUnixNano"') == 3
    original = {s.span_id.hex(): s for s, _, _ in spans(run_dir)}
    exported = [
        s
        for line in lines[:1]
        for rs in json.loads(line)["resourceSpans"]
        for ss in rs["scopeSpans"]
        for s in ss["spans"]
    ]
    assert {s["spanId"] for s in exported} == set(original)


def test_jaeger_file_for_one_trace(run_dir: Path, tmp_path: Path) -> None:
    collector = collector_file(tmp_path / "in")
    out = tmp_path / "jaeger.json"
    _export(out, str(run_dir), str(collector), "--format", "jaeger", "--trace", COLLECTOR_TRACE)
    document = json.loads(out.read_text())
    check_jaeger_model(document)
    assert [t["traceID"] for t in document["data"]] == [COLLECTOR_TRACE]
    everything = tmp_path / "all.json"
    _export(everything, str(run_dir), str(collector), "--format", "jaeger")
    assert len(json.loads(everything.read_text())["data"]) == 2


def test_damaged_dir_and_last(run_dir: Path, tmp_path: Path) -> None:
    path, garbage, torn, good = damaged_dir(run_dir, tmp_path / "damaged")
    out = tmp_path / "d.csv"
    result = modeltel("export", str(path), "--format", "csv", "-o", str(out))
    assert result.returncode == 0
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert [w.split(".jsonl:")[1].split(":")[0] for w in warnings] == [str(garbage), str(torn)]
    assert len(out.read_text().splitlines()) == 1 + good
    last = tmp_path / "last.json"
    _export(last, "--data-dir", str(run_dir), "--format", "json", "--last")
    assert len(json.loads(last.read_text())) == 6


def test_errors_leave_no_file(run_dir: Path, tmp_path: Path) -> None:
    result = modeltel(
        "export", "--data-dir", str(run_dir), "--format", "csv", "-o", str(tmp_path / "no" / "x.csv")
    )
    assert (result.returncode, result.stderr) == (
        2,
        f"modeltel export: -o: no such directory: {tmp_path / 'no'}\n",
    )
    out = tmp_path / "x.json"
    result = modeltel(
        "export", "--data-dir", str(run_dir), "--format", "json", "--trace", "1" * 32, "-o", str(out)
    )
    assert result.returncode == 1 and "not found" in result.stderr
    assert not out.exists() or out.read_text() == "[]\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    result = modeltel("export", "--data-dir", str(run_dir), "-o", str(out))
    assert result.returncode == 2 and "--format" in result.stderr


# --- JSON integers and CSV cells that spreadsheets would misread ----------------------------------
START_NS = 1544712660148637010
"""Beyond 2^53: a JSON number here reads back as ...148637000 in JavaScript and most JSON readers."""


def _flat_data_dir(tmp_path: Path) -> Path:
    """A data dir with one span whose name and attributes are what the CSV and JSON tests need."""

    def value(v: object) -> dict[str, object]:
        if isinstance(v, bool):
            return {"boolValue": v}
        if isinstance(v, int):
            return {"intValue": str(v)}
        if isinstance(v, float):
            return {"doubleValue": v}
        if isinstance(v, bytes):
            return {"bytesValue": base64.b64encode(v).decode()}
        if isinstance(v, list):
            return {"arrayValue": {"values": [value(x) for x in v]}}
        return {"stringValue": v}

    attributes = {
        "formula": "@SUM(1)",
        "plus": "+1",
        "minus-formula": "-1+2",
        "tab": "\tx",
        "cr": "\rx",
        "lf": "\nx",
        "negative-text": "-3",
        "negative-int": -3,
        "negative-double": -0.5,
        "semicolon": "a;=1",
        "raw": b"\xfb",
        "big": 2**53 + 1,
        "safe": 2**53 - 1,
        "neg-big": -(2**53 + 1),
        "list": [2**53 + 1, 1],
    }
    span = {
        "traceId": "0af7651916cd43dd8448eb211c80319c",
        "spanId": "b7ad6b7169203331",
        "name": '=HYPERLINK("http://x")',
        "kind": 1,
        "startTimeUnixNano": str(START_NS),
        "endTimeUnixNano": str(START_NS + 1_500),
        "attributes": [{"key": k, "value": value(v)} for k, v in attributes.items()],
    }
    request = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
                "scopeSpans": [{"scope": {"name": "t"}, "spans": [span]}],
            }
        ]
    }
    day = tmp_path / "data" / "traces" / "2026-01-02"
    day.mkdir(parents=True)
    (day / "svc-1-2.jsonl").write_text(json.dumps(request) + "\n")
    return tmp_path / "data"


def test_json_writes_integers_beyond_2_53_as_strings(tmp_path: Path) -> None:
    out = tmp_path / "spans.json"
    _export(out, "--data-dir", str(_flat_data_dir(tmp_path)), "--format", "json")
    assert f'"start_unix_nano": "{START_NS}"' in out.read_text()
    (row,) = json.loads(out.read_text())
    assert (row["start_unix_nano"], row["end_unix_nano"]) == (str(START_NS), str(START_NS + 1_500))
    assert row["attributes.big"] == "9007199254740993" and row["attributes.neg-big"] == "-9007199254740993"
    assert row["attributes.safe"] == 9007199254740991 and row["attributes.list"] == ["9007199254740993", 1]
    assert (row["events"], row["attributes.negative-int"], row["duration_s"]) == (0, -3, 1.5e-6)


def test_csv_cells_that_would_start_a_formula_get_a_quote(tmp_path: Path) -> None:
    out = tmp_path / "spans.csv"
    _export(out, "--data-dir", str(_flat_data_dir(tmp_path)), "--format", "csv")
    with out.open(newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["name"] == '\'=HYPERLINK("http://x")'
    cells = {
        key.removeprefix("attributes."): value for key, value in row.items() if key.startswith("attributes.")
    }
    assert {k: cells[k] for k in ("formula", "plus", "minus-formula", "tab", "cr", "lf", "raw")} == {
        "formula": "'@SUM(1)",
        "plus": "'+1",
        "minus-formula": "'-1+2",
        "tab": "'\tx",
        "cr": "'\rx",
        "lf": "'\nx",
        "raw": "'+w==",
    }
    # A plain negative number is a number to a spreadsheet, not a formula: it stays as it is.
    assert (cells["negative-text"], cells["negative-int"], cells["negative-double"]) == ("-3", "-3", "-0.5")
    assert row["start_unix_nano"] == str(START_NS) and cells["big"] == "9007199254740993"
    # Text is quoted, so a ';' (the separator in some locales) cannot start a new cell; numbers are not.
    assert ',-0.5,-3,"-3","\'+1",' in out.read_text()
    assert '"a;=1"' in out.read_text()
