"""``modeltel logs``: every filter on records made by Python ``logging`` through the SDK, the table
and the JSON, bad lines, a Collector's file, and the records ``show --trace`` lists."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict

from logs_data import LogsDir, Process, logs_dir, logs_line
from reading_data import modeltel

ALL = [
    "loaded 3 rows",
    "scored 10 rows",
    "cache miss seed=7",
    "fit failed",
    "outside any span",
    "disk full",
    '{"event":"done","rows":10}',
]
"""Every record of :func:`logs_dir`, in time order."""


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> LogsDir:
    return logs_dir(tmp_path_factory.mktemp("logs") / "data")


def logs_json(*args: str) -> dict[str, Any]:
    result = modeltel("logs", "--format", "json", *args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def messages(*args: str) -> list[str]:
    return [record["message"] for record in logs_json(*args)["records"]]


def test_every_record_in_time_order_across_processes(data: LogsDir) -> None:
    assert messages(str(data.path)) == ALL


def test_the_table_has_time_level_service_pid_logger_ids_and_message(data: LogsDir) -> None:
    result = modeltel("logs", "--data-dir", str(data.path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{data.path}: 7 log records in 2 files"
    assert lines[2].split() == [
        "time", "(UTC)", "level", "service", "pid", "logger", "trace", "span", "message",
    ]  # fmt: skip
    rows = [line.split(None, 8) for line in lines[3:] if not line.startswith("    ")]
    assert [row[8] for row in rows] == ALL
    error = rows[3]
    assert error[:8] == [
        "2027-01-15", "08:00:03.000", "ERROR", "trainer", "101", "app.fit",
        data.fit_trace[:8], data.fit_span[:8],
    ]  # fmt: skip
    assert rows[4][2:8] == ["WARN", "trainer", "101", "app.data", "-", "-"]
    assert rows[5][2] == "FATAL" and rows[5][3:5] == ["scorer", "202"]
    (failed,) = [i for i, line in enumerate(lines) if line.endswith("fit failed")]
    assert lines[failed + 1] == "    ZeroDivisionError: division by zero"
    assert "2 runs in" in result.stderr and "--run ID" in result.stderr


def test_json_keeps_every_field(data: LogsDir) -> None:
    records = logs_json(str(data.path), "--trace", data.fit_trace)["records"]
    error = records[2]
    assert error["message"] == "fit failed" and error["level"] == "ERROR"
    assert (error["severity_number"], error["severity_text"]) == (17, "ERROR")
    assert (error["trace_id"], error["span_id"]) == (data.fit_trace, data.fit_span)
    assert error["time"] == "2027-01-15T08:00:03.000000000Z"
    assert error["time_unix_nano"] == 1_800_000_003_000_000_000
    assert error["observed_time_unix_nano"] > 0 and error["flags"] & 1
    assert (error["service"], error["pid"], error["logger"]) == ("trainer", 101, "app.fit")
    assert error["attributes"]["exception.type"] == "ZeroDivisionError"
    assert "Traceback" in error["attributes"]["exception.stacktrace"]
    assert error["resource"]["modeltel.run.id"] == "run-a"
    (done,) = [r for r in logs_json(str(data.path))["records"] if r["message"].startswith("{")]
    assert done["body"] == {"event": "done", "rows": 10}


def test_trace_keeps_that_traces_records_in_any_case(data: LogsDir) -> None:
    want = ["loaded 3 rows", "cache miss seed=7", "fit failed"]
    assert messages(str(data.path), "--trace", data.fit_trace) == want
    assert messages(str(data.path), "--trace", data.fit_trace.upper()) == want
    assert messages(str(data.path), "--trace", "0" * 32) == []
    bad = modeltel("logs", str(data.path), "--trace", "xyz")
    assert bad.returncode == 2 and "--trace: not a trace id: 'xyz'" in bad.stderr


@pytest.mark.parametrize(
    ("level", "want"),
    [
        ("WARN", ["fit failed", "outside any span", "disk full"]),
        ("warning", ["fit failed", "outside any span", "disk full"]),
        ("Error", ["fit failed", "disk full"]),
        ("critical", ["disk full"]),
        ("FATAL", ["disk full"]),
        ("info", [m for m in ALL if m != "cache miss seed=7"]),
        ("DEBUG", ALL),
    ],
)
def test_level_keeps_that_level_or_higher(data: LogsDir, level: str, want: list[str]) -> None:
    assert messages(str(data.path), "--level", level) == want


def test_a_bad_level_is_a_usage_error_naming_it(data: LogsDir) -> None:
    result = modeltel("logs", str(data.path), "--level", "loud")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "modeltel logs: --level: not a log level: 'loud' "
        "(expected TRACE, DEBUG, INFO, WARN (WARNING), ERROR or FATAL (CRITICAL))"
    )


def test_since_and_until_keep_the_window(data: LogsDir) -> None:
    window = ("--since", "2027-01-15T08:00:02Z", "--until", "2027-01-15T08:00:05Z")
    assert messages(str(data.path), *window) == ["cache miss seed=7", "fit failed", "outside any span"]
    assert messages(str(data.path), "--since", "2027-01-15T08:00:05Z") == ALL[-2:]
    bad = modeltel("logs", str(data.path), "--since", "tomorrowish")
    assert bad.returncode == 2 and "not a time: 'tomorrowish'" in bad.stderr


def test_grep_looks_in_the_message_and_the_exception(data: LogsDir) -> None:
    assert messages(str(data.path), "--grep", "rows") == [ALL[0], ALL[1], ALL[6]]
    assert messages(str(data.path), "--grep", "division by zero") == ["fit failed"]
    assert messages(str(data.path), "--grep", "ROWS") == []
    assert messages(str(data.path), "--grep", "rows", "--level", "INFO", "--trace", data.score_trace) == [
        "scored 10 rows",
        '{"event":"done","rows":10}',
    ]


def test_run_keeps_one_runs_records(data: LogsDir) -> None:
    trainer = ["loaded 3 rows", "cache miss seed=7", "fit failed", "outside any span"]
    assert messages(str(data.path), "--run", "run-a") == trainer
    assert logs_json(str(data.path), "--run", "run-a")["run_id"] == "run-a"
    assert messages(str(data.path), "--last-run") == ["scored 10 rows", "disk full", ALL[-1]]
    ambiguous = modeltel("logs", str(data.path), "--run", "run")
    assert ambiguous.returncode == 2 and "--run run: matches 2 runs" in ambiguous.stderr
    unknown = modeltel("logs", str(data.path), "--run", "nope")
    assert unknown.returncode == 1 and "no log records of run nope in" in unknown.stderr


def test_last_is_the_latest_trace_that_logged(data: LogsDir) -> None:
    document = logs_json(str(data.path), "--last")
    assert document["trace_id"] == data.score_trace
    assert [r["message"] for r in document["records"]] == ["scored 10 rows", "disk full", ALL[-1]]
    assert logs_json(str(data.path), "--last", "--run", "run-a")["trace_id"] == data.fit_trace


def test_last_falls_back_to_the_latest_trace(tmp_path: Path) -> None:
    """No record logged in a span: the latest trace of the trace files, with its (no) records."""
    process = Process("quiet", 7, "run-q")
    with process.logger("app") as logger:
        logger.warning("before any span")
        with process.tracer.start_as_current_span("job") as job:
            pass
    process.write(tmp_path)
    document = logs_json(str(tmp_path), "--last")
    assert document["trace_id"] == f"{job.get_span_context().trace_id:032x}"
    assert document["records"] == []


def test_no_log_files_is_a_failure_naming_the_source(tmp_path: Path) -> None:
    (tmp_path / "traces").mkdir()
    result = modeltel("logs", "--data-dir", str(tmp_path))
    assert result.returncode == 1 and result.stderr.strip() == f"modeltel logs: no log files in {tmp_path}"
    missing = modeltel("logs", "--data-dir", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "no such data dir" in missing.stderr


def test_bad_lines_are_skipped_with_file_and_line(data: LogsDir, tmp_path: Path) -> None:
    (source,) = (data.path / "logs").glob("*/trainer-*.jsonl")
    good = source.read_text().splitlines()[0]
    deep = json.loads(good)
    deep["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["body"] = json.loads(
        '{"arrayValue":{"values":[' * 60 + '{"intValue":"1"}' + "]}}" * 60
    )
    day = tmp_path / "logs" / "2027-01-15"
    day.mkdir(parents=True)
    path = day / "damaged-1-1.jsonl"
    lines = ["this is not JSON {", json.dumps(deep), good, '{"resourceLogs": [{"scopeLogs": 7}]}', good[:40]]
    path.write_text("\n".join(lines))
    result = modeltel("logs", str(tmp_path), "--format", "json")
    assert result.returncode == 0 and "Traceback" not in result.stderr
    document = json.loads(result.stdout)
    assert [r["message"] for r in document["records"]] == [
        "loaded 3 rows", "cache miss seed=7", "fit failed", "outside any span",
    ]  # fmt: skip
    assert [(b["line"], b["reason"].split(":")[0]) for b in document["bad_lines"]] == [
        (1, "not JSON"),
        (2, "attribute value nested deeper than 32 levels"),
        (4, "scopeLogs is not a list"),
        (5, "not JSON"),
    ]
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert warnings[0] == f"modeltel logs: warning: {path}:1: skipped invalid line (" + (
        document["bad_lines"][0]["reason"] + ")"
    )


def test_a_collector_file_with_base64_ids_and_documents(data: LogsDir, tmp_path: Path) -> None:
    """Protobuf's own JSON (base64 ids, enum names), pretty-printed, two documents in one file."""
    process = Process("collected", 9, "run-c")
    with process.logger("svc.worker") as logger, process.tracer.start_as_current_span("work") as span:
        logger.error("upstream refused")
    trace = f"{span.get_span_context().trace_id:032x}"
    document = MessageToDict(process.request())
    record = document["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    assert base64.b64decode(record["traceId"]).hex() == trace
    assert record["severityNumber"] == "SEVERITY_NUMBER_ERROR"
    folder = tmp_path / "collector-out"
    folder.mkdir()
    (folder / "logs.json").write_text(json.dumps(document, indent=2) + "\n" + json.dumps(document, indent=2))
    found = logs_json(str(folder), "--trace", trace)["records"]
    assert [(r["message"], r["level"], r["trace_id"]) for r in found] == [
        ("upstream refused", "ERROR", trace)
    ] * 2


def test_export_otlp_json_keeps_a_traces_log_records(data: LogsDir, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    result = modeltel(
        "export", "--format", "otlp-json", "--trace", data.fit_trace, "-o", str(out), str(data.path)
    )
    assert result.returncode == 0, result.stderr
    assert "and 3 log records" in result.stderr
    documents = [json.loads(line) for line in out.read_text().splitlines()]
    logs = [d for d in documents if "resourceLogs" in d]
    bodies = [
        r["body"]["stringValue"]
        for d in logs
        for rl in d["resourceLogs"]
        for sl in rl["scopeLogs"]
        for r in sl["logRecords"]
    ]
    assert sorted(bodies) == ["cache miss seed=7", "fit failed", "loaded 3 rows"]
    everything = tmp_path / "all.jsonl"
    assert modeltel("export", "--format", "otlp-json", "-o", str(everything), str(data.path)).returncode == 0
    assert everything.read_text().count('{"resourceLogs"') == 2  # a line per log line


def test_show_trace_lists_the_traces_records_after_its_spans(data: LogsDir) -> None:
    result = modeltel("show", str(data.path), "--trace", data.fit_trace)
    assert result.returncode == 0, result.stderr
    spans_at = result.stdout.index("span name")
    logs_at = result.stdout.index("3 log records")
    assert spans_at < logs_at
    table = result.stdout[logs_at:].splitlines()
    assert [line.split(None, 8)[-1] for line in table[2:] if not line.startswith("    ")] == [
        "loaded 3 rows", "cache miss seed=7", "fit failed",
    ]  # fmt: skip
    document = json.loads(
        modeltel("show", str(data.path), "--trace", data.fit_trace, "--format", "json").stdout
    )
    assert [r["message"] for r in document["logs"]] == ["loaded 3 rows", "cache miss seed=7", "fit failed"]


def test_logs_help_imports_no_reader() -> None:
    code = (
        "import sys\nfrom modeltel.cli.main import main\n"
        "try:\n    main(['logs', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('LOADED', *sorted(sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    loaded = set(result.stdout.rsplit("LOADED", 1)[1].split())
    assert "modeltel.cli.logs" in loaded
    assert not {m for m in loaded if m.startswith(("numpy", "pydantic", "opentelemetry", "modeltel.read"))}


def test_written_lines_are_the_official_protos(data: LogsDir) -> None:
    """A guard on the fixture: what the tests read is what the OTLP protos decode."""
    from google.protobuf.json_format import ParseDict
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    from otlp_files import hex_to_base64

    for path in sorted((data.path / "logs").glob("*/*.jsonl")):
        for line in path.read_text().splitlines():
            request = ParseDict(hex_to_base64(json.loads(line)), ExportLogsServiceRequest())
            assert logs_line(request) == line


def test_grep_finds_text_that_the_file_escapes(tmp_path: Path) -> None:
    """A producer may write non-ASCII as ``\\u`` escapes and ``/`` as ``\\/``: the text still matches."""
    process = Process("escaped", 5, "run-e")
    with process.logger("app") as logger:
        logger.warning("température élevée in a/b")
        logger.info("plain rows")
    line = json.dumps(json.loads(logs_line(process.request())), ensure_ascii=True).replace("/", "\\/")
    assert "\\u00e9" in line and "a\\/b" in line
    day = tmp_path / "logs" / "2027-01-15"
    day.mkdir(parents=True)
    (day / "escaped-5-1.jsonl").write_text(line + "\n")
    assert messages(str(tmp_path), "--grep", "élevée") == ["température élevée in a/b"]
    assert messages(str(tmp_path), "--grep", "a/b") == ["température élevée in a/b"]
    assert messages(str(tmp_path), "--grep", "rows") == ["plain rows"]
    assert messages(str(tmp_path), "--grep", "absent") == []


def test_export_otlp_json_keeps_a_runs_and_a_windows_log_records(data: LogsDir, tmp_path: Path) -> None:
    def exported(*args: str) -> list[str]:
        out = tmp_path / "out.jsonl"
        result = modeltel("export", "--format", "otlp-json", "-o", str(out), *args, str(data.path))
        assert result.returncode == 0, result.stderr
        return sorted(
            r["body"].get("stringValue", "map")
            for line in out.read_text().splitlines()
            for rl in json.loads(line).get("resourceLogs", [])
            for sl in rl["scopeLogs"]
            for r in sl["logRecords"]
        )

    assert exported("--run", "run-b") == ["disk full", "map", "scored 10 rows"]
    window = ("--since", "2027-01-15T08:00:02Z", "--until", "2027-01-15T08:00:05Z")
    assert exported(*window) == ["cache miss seed=7", "fit failed", "outside any span"]


APP = """
import logging
from modeltel import simulation

logging.basicConfig(level=logging.INFO)
data = logging.getLogger("sweep.data")
with simulation.job("sweep", n_tasks=2):
    for seed in range(2):
        with simulation.run(model="sir", seed=seed):
            data.info("seed %d done", seed)
            data.debug("not exported: the app is at INFO")
    data.warning("sweep slower than expected")
data.error("after the job")
print(__import__("os").getpid())
"""


def test_a_real_run_under_modeltel_run(tmp_path: Path) -> None:
    """The files ``modeltel run`` writes: each record carries the span it was logged in."""
    from otlp_files import run_under_modeltel, spans

    app = tmp_path / "app.py"
    app.write_text(APP)
    data = tmp_path / "data"
    done = run_under_modeltel(data, str(app))
    assert done.returncode == 0, done.stderr
    records = logs_json("--data-dir", str(data))["records"]
    assert [(r["level"], r["logger"], r["message"]) for r in records] == [
        ("INFO", "sweep.data", "seed 0 done"),
        ("INFO", "sweep.data", "seed 1 done"),
        ("WARN", "sweep.data", "sweep slower than expected"),
        ("ERROR", "sweep.data", "after the job"),
    ]
    by_id = {span.span_id.hex(): span for span, _, _ in spans(data)}
    assert [by_id[r["span_id"]].name for r in records[:3]] == [
        "simulation.run",
        "simulation.run",
        "simulation.job",
    ]
    assert {r["trace_id"] for r in records[:3]} == {by_id[r["span_id"]].trace_id.hex() for r in records[:3]}
    assert records[3]["trace_id"] == records[3]["span_id"] == ""
    assert {r["pid"] for r in records} == {int(done.stdout.split()[-1])}  # the process that logged
    job = records[2]["trace_id"]
    assert [r["message"] for r in logs_json("--data-dir", str(data), "--last")["records"]] == [
        "seed 0 done", "seed 1 done", "sweep slower than expected",
    ]  # fmt: skip
    assert logs_json("--data-dir", str(data), "--last")["trace_id"] == job
    shown = modeltel("show", "--data-dir", str(data), "--trace", job)
    assert shown.returncode == 0 and "3 log records" in shown.stdout, shown.stderr


def test_values_json_cannot_hold_are_written_as_text(tmp_path: Path) -> None:
    """Bytes (a body, even a pid) and NaN are valid OTLP; ``--format json`` stays strict JSON."""
    record = {
        "timeUnixNano": "1",
        "body": {"bytesValue": "AAE="},
        "attributes": [{"key": "x", "value": {"doubleValue": "NaN"}}],
    }
    resource = {"attributes": [{"key": "process.pid", "value": {"bytesValue": "AAE="}}]}
    document = {
        "resourceLogs": [{"resource": resource, "scopeLogs": [{"scope": {}, "logRecords": [record]}]}]
    }
    day = tmp_path / "logs" / "d"
    day.mkdir(parents=True)
    (day / "a.jsonl").write_text(json.dumps(document) + "\n")
    (found,) = logs_json(str(tmp_path))["records"]
    assert (found["body"], found["pid"], found["attributes"]) == ("AAE=", "AAE=", {"x": "nan"})
    table = modeltel("logs", str(tmp_path))
    assert table.returncode == 0 and table.stdout.splitlines()[-1].split()[-1] == '"AAE="'
