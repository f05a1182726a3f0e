"""``modeltel timeline`` marks a trace's log records on their spans: a tick at the record's time."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from otlp_files import run_under_modeltel
from reading_data import modeltel
from timeline_pages import look

APP = """
import logging, time
from opentelemetry import trace

log = logging.getLogger("app.fit")
logging.basicConfig(level=logging.INFO)
tracer = trace.get_tracer("app")
with tracer.start_as_current_span("warm-up"):
    log.info("warming up")
with tracer.start_as_current_span("fit"):
    log.info("loaded 3 rows")
    with tracer.start_as_current_span("step"):
        time.sleep(0.05)
        log.warning("slow step")
        time.sleep(0.05)
        log.error("step failed <b>bold</b>")
    time.sleep(0.05)
log.info("after every span")
"""
DARK = "rgb(29, 36, 51)"
RED = "rgb(217, 59, 59)"


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("logged")
    app = folder / "app.py"
    app.write_text(APP)
    result = run_under_modeltel(folder / "data", str(app))
    assert result.returncode == 0, result.stderr
    return folder / "data"


def test_log_records_are_ticks_on_their_spans(logged: Path, tmp_path: Path) -> None:
    page = tmp_path / "t.html"
    result = modeltel("timeline", "--data-dir", str(logged), "-o", str(page))
    assert result.returncode == 0, result.stderr
    assert result.stderr.endswith(f"drawn to {page}, 3 log records marked\n")  # the last trace's
    shot = tmp_path / "shot.png"
    seen = look(page, tmp_path, screenshot=shot)
    assert seen.rows == ["fit", "step"]
    (info,), (warning, error) = seen.marks
    assert re.fullmatch(r"INFO at \+\S+ \S+: loaded 3 rows", info[0]) and info[1:] == [DARK, True]
    assert re.fullmatch(r"WARN at \+\S+ \S+: slow step", warning[0]) and warning[1:] == [DARK, True]
    assert re.fullmatch(r"ERROR at \+\S+ \S+: step failed <b>bold</b>", error[0]) and error[1:] == [RED, True]
    assert ["log record", DARK] in seen.legend and ["log record, ERROR or above", RED] in seen.legend
    reds = sum(
        n for n, rgb in Image.open(shot).convert("RGB").getcolors(1 << 24) or [] if rgb == (217, 59, 59)
    )
    assert reds > 20  # no span failed: the red on screen is the ERROR tick and its legend swatch

    by_message = look(page, tmp_path, "toggle('fit'); type('slow step');")
    assert by_message.rows == ["fit", "step"] and by_message.matches == "1 of 2 spans match"


def test_a_run_page_marks_every_trace_it_holds(logged: Path, tmp_path: Path) -> None:
    page = tmp_path / "run.html"
    result = modeltel("timeline", "--data-dir", str(logged), "--last-run", "-o", str(page))
    assert result.returncode == 0, result.stderr
    first = look(page, tmp_path)
    assert first.rows == ["fit", "step"] and [len(marks) for marks in first.marks] == [1, 2]
    (warm_up,) = [value for value, text, _ in first.options if text.startswith("warm-up")]
    other = look(page, tmp_path, f"pick('{warm_up}');")
    assert other.rows == ["warm-up"]
    ((mark,),) = other.marks
    assert re.fullmatch(r"INFO at \+\S+ \S+: warming up", mark[0]) and mark[1:] == [DARK, True]


def test_a_trace_without_logs_has_no_marks(tmp_path: Path, logged: Path) -> None:
    page = tmp_path / "t.html"
    source = logged / "traces"  # the spans alone: no log files beside them
    result = modeltel("timeline", str(source), "-o", str(page))
    assert result.returncode == 0, result.stderr
    assert result.stderr.endswith(f"drawn to {page}\n")
    seen = look(page, tmp_path)
    assert seen.marks == [[], []] and seen.legend == []


def test_a_record_with_no_time_or_before_the_trace_says_so(tmp_path: Path) -> None:
    trace, span_id = "ab" * 16, "cd" * 8
    span = {
        "traceId": trace, "spanId": span_id, "name": "job",
        "startTimeUnixNano": "5000000000", "endTimeUnixNano": "6000000000",
    }  # fmt: skip
    records = [
        {"severityNumber": 17, "body": {"stringValue": "no clock"}, "traceId": trace, "spanId": span_id},
        {
            "timeUnixNano": "4750000000", "severityNumber": 9, "body": {"stringValue": "clock behind"},
            "traceId": trace, "spanId": span_id,
        },
    ]  # fmt: skip
    data = tmp_path / "data"
    for signal, document in (
        ("traces", {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}),
        ("logs", {"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]}),
    ):
        day = data / signal / "2026-01-01"
        day.mkdir(parents=True)
        (day / "app-1-1.jsonl").write_text(json.dumps(document, separators=(",", ":")) + "\n")
    page = tmp_path / "t.html"
    result = modeltel("timeline", "--data-dir", str(data), "-o", str(page))
    assert result.returncode == 0, result.stderr
    ((unknown, behind),) = look(page, tmp_path).marks
    assert unknown[:2] == ["ERROR at an unknown time: no clock", RED]
    assert behind[:2] == ["INFO at -250 ms: clock behind", DARK]
