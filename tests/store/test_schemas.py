"""The small files' schemas: what the writers write validates, and hostile records are refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from modeltel.read.running import parse_record
from modeltel.store.schemas import ProgressRecord, ReplayCursor
from reading_data import example_run, modeltel

RECORD = {
    "schema_version": 1,
    "kind": "calibration",
    "trace_id": "0" * 32,
    "span_id": "0" * 16,
    "pid": 1,
    "host": "h",
    "started": 1.0,
    "updated": 2.0,
}


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("pid", True, "pid"),
        ("pid", -1, "pid"),
        ("started", float("nan"), "started"),
        ("iterations", 1.5, "iterations"),
        ("best_loss", "low", "best_loss"),
    ],
)
def test_a_progress_record_with_a_wrong_field_is_refused_by_name(
    field: str, value: object, named: str
) -> None:
    data = json.dumps({**RECORD, field: value}).encode()
    with pytest.raises(ValueError, match=named):
        parse_record(data)


def test_a_newer_record_is_read_for_the_fields_this_version_knows() -> None:
    record = parse_record(json.dumps({**RECORD, "schema_version": 9, "new_field": [1]}).encode())
    assert record.schema_version == 9 and record.kind == "calibration"


def test_a_cursor_with_a_negative_offset_or_deep_nesting_is_refused() -> None:
    with pytest.raises(ValidationError, match="offset"):
        ReplayCursor.model_validate_json(json.dumps({"endpoints": {"k": {"f": {"offset": -5}}}}))
    with pytest.raises(ValidationError):
        ReplayCursor.model_validate_json('{"endpoints":' + "[" * 100_000 + "]" * 100_000 + "}")


@pytest.mark.parametrize(
    "cursor",
    [
        '{"schema_version":1,"endpoints":{"K":{"traces/x.jsonl":{"offset":-5,"head":"x"}}}}',
        '{"endpoints":' + "[" * 100_000 + "]" * 100_000 + "}",
    ],
)
def test_replay_with_a_hostile_cursor_fails_in_one_line(tmp_path: Path, cursor: str) -> None:
    data = example_run(tmp_path / "data")
    (data / "replay-cursor.json").write_text(cursor)
    done = modeltel("replay", "--endpoint", "http://127.0.0.1:9", "--protocol", "http/protobuf", str(data))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "replay-cursor.json is damaged" in done.stderr, done.stderr


def test_written_cursor_validates(tmp_path: Path) -> None:
    from otlp_receiver import running_receiver

    data = example_run(tmp_path / "data")
    with running_receiver() as receiver:
        done = modeltel("replay", "--endpoint", receiver.endpoint, "--protocol", "http/protobuf", str(data))
    assert done.returncode == 0, done.stderr
    cursor = ReplayCursor.model_validate_json((data / "replay-cursor.json").read_bytes())
    assert cursor.endpoints and all(e.offset > 0 for f in cursor.endpoints.values() for e in f.values())


def test_progress_records_the_pipeline_writes_validate(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        "import json, pathlib, sys\n"
        "from modeltel import calibration\n"
        "with calibration.job('fit', max_iterations=3) as job:\n"
        "    with job.iteration() as it:\n"
        "        with it.tell() as t: t.losses([1.0])\n"
        "    import modeltel; modeltel.configure().force_flush()  # records are written on a thread\n"
        "    files = list(pathlib.Path(sys.argv[1]).glob('running/*.json'))\n"
        "    print(json.dumps([f.read_text() for f in files]))\n"
    )
    import subprocess

    from otlp_files import BIN, base_env

    done = subprocess.run(
        [str(BIN / "python"), str(script), str(tmp_path / "data")],
        env=base_env(tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    records = [ProgressRecord.model_validate_json(text) for text in json.loads(done.stdout)]
    assert [r.kind for r in records] == ["calibration"]


def test_reading_summaries_imports_no_sdk(tmp_path: Path) -> None:
    import subprocess
    import sys

    data = example_run(tmp_path / "data")
    code = (
        "import sys; from pathlib import Path; from modeltel.read import iter_summaries; "
        f"n = len(list(iter_summaries([Path({str(data / 'summaries.jsonl')!r})]))); "
        "print(n, 'opentelemetry.sdk' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    count, sdk = done.stdout.split()
    assert int(count) >= 1 and sdk == "False", done.stderr


def test_a_summary_line_of_100k_brackets_is_skipped_with_one_warning(tmp_path: Path) -> None:
    data = example_run(tmp_path / "data")
    good = (data / "summaries.jsonl").read_text()
    (data / "summaries.jsonl").write_text("[" * 100_000 + "]" * 100_000 + "\n" + good)
    shown = modeltel("show", "--format", "json", str(data))
    assert shown.returncode == 0, shown.stderr
    assert "Traceback" not in shown.stderr and "RecursionError" not in shown.stderr
    assert shown.stderr.count("summaries.jsonl:1: skipped invalid line (not a RunSummary") == 1
    assert json.loads(shown.stdout)["processes"], "the good summaries are still read"
