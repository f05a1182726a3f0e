"""``modeltel run`` configures a program when it first has something to record.

The SDK's import is most of what ``modeltel run`` adds to a start (bench/startup.py), and a program
that records nothing (a short step of a job array that fails its input check, a ``--help``) need not
pay it. The program's first use of the OpenTelemetry API, of modeltel's domain API, or its first
log record configures it; the files at the end are the ones an eager configuration writes. A
process started inside a trace (``TRACEPARENT`` in its environment) is configured at once: it
records, and its starting context belongs on its main thread.
"""

from __future__ import annotations

import json
from pathlib import Path

from otlp_files import jsonl_files, run_under_modeltel

SDK = "import sys; print(json.dumps({'sdk': 'opentelemetry.sdk.trace' in sys.modules}))"


def _run(tmp_path: Path, code: str, **env: str) -> dict[str, object]:
    result = run_under_modeltel(tmp_path / "d", "-c", "import json\n" + code, **env)
    assert result.returncode == 0, result.stderr
    state: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return state


def _span_names(data_dir: Path) -> list[str]:
    names = []
    for path in jsonl_files(data_dir, "traces"):
        for line in path.read_text().splitlines():
            for rs in json.loads(line)["resourceSpans"]:
                for ss in rs["scopeSpans"]:
                    names.extend(s["name"] for s in ss["spans"])
    return names


def test_a_program_that_records_nothing_never_imports_the_sdk(tmp_path: Path) -> None:
    assert _run(tmp_path, SDK) == {"sdk": False}
    assert not (tmp_path / "d").exists()  # as eagerly: nothing recorded, nothing written


def test_the_opentelemetry_api_configures_on_first_use(tmp_path: Path) -> None:
    code = (
        "from opentelemetry import trace, metrics\n"
        "with trace.get_tracer('app').start_as_current_span('work'):\n"
        "    metrics.get_meter('app').create_counter('steps').add(3)\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "print(json.dumps({'sdk': isinstance(trace.get_tracer_provider(), TracerProvider)}))"
    )
    assert _run(tmp_path, code) == {"sdk": True}
    assert _span_names(tmp_path / "d") == ["work"]
    assert jsonl_files(tmp_path / "d", "metrics")
    assert (tmp_path / "d" / "summaries.jsonl").exists()


def test_the_domain_api_configures_on_first_use(tmp_path: Path) -> None:
    code = "from modeltel import simulation\nwith simulation.run(model='sir', seed=1):\n    pass\n" + SDK
    assert _run(tmp_path, code) == {"sdk": True}
    assert _span_names(tmp_path / "d") == ["simulation.run"]


def test_a_first_log_record_configures_and_reaches_the_log_file(tmp_path: Path) -> None:
    code = "import logging\nlogging.getLogger('app').warning('disk almost full')\n" + SDK
    assert _run(tmp_path, code) == {"sdk": True}
    bodies = [
        record["body"]["stringValue"]
        for path in jsonl_files(tmp_path / "d", "logs")
        for line in path.read_text().splitlines()
        for rl in json.loads(line)["resourceLogs"]
        for sl in rl["scopeLogs"]
        for record in sl["logRecords"]
    ]
    assert bodies == ["disk almost full"]


def test_a_program_started_inside_a_trace_is_configured_at_once(tmp_path: Path) -> None:
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    code = (
        "import sys\nstarted = 'opentelemetry.sdk.trace' in sys.modules\n"
        "from opentelemetry import trace\n"
        "with trace.get_tracer('app').start_as_current_span('child') as span:\n"
        "    ids = span.get_span_context().trace_id\n"
        "print(json.dumps({'sdk': started, 'trace': format(ids, '032x')}))"
    )
    state = _run(tmp_path, code, TRACEPARENT=parent)
    assert state == {"sdk": True, "trace": "0af7651916cd43dd8448eb211c80319c"}
