"""What a log record holds on its way out: no secret (files and OTLP), the official encoding, a
bounded stack trace."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from google.protobuf.json_format import ParseDict
from log_files import records, run, write_app
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs as proto_logs
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider

from modeltel._internal import logs as bridge
from modeltel._internal.logs import MAX_STACKTRACE_CHARS
from modeltel.formats.sdk_json import encode_logs
from otlp_files import hex_to_base64, jsonl_files
from otlp_receiver import running_receiver

SECRETS = {"attribute": "sk-attr-5b1c", "body": "sk-body-77d2", "map": "sk-map-9e0a", "source": "sk-src-41f3"}
SECRET_APP = {
    "s/__init__.py": "",
    "s/main.py": f"""
        import logging

        from opentelemetry import trace

        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
        logger = logging.getLogger("s.main")


        def connect():  # the secret is in the traceback twice: the source line, the exception's text
            raise ConnectionError("refused", dict(api_key="{SECRETS["source"]}"))


        with trace.get_tracer("s").start_as_current_span("job"):
            logger.info("called with extra", extra={{"api_key": "{SECRETS["attribute"]}", "rows": 3}})
            logger.info("connecting with api_key=%s to %s", "{SECRETS["body"]}", "db")
            logger.warning("settings %s", {{"token": "{SECRETS["map"]}", "retries": 2}})
            try:
                connect()
            except ConnectionError:
                logger.exception("connect failed; client = dict(api_key='{SECRETS["source"]}')")
    """,
}


def test_no_secret_reaches_the_log_file_or_the_receiver(tmp_path: Path) -> None:
    folder = write_app(tmp_path, SECRET_APP)
    with running_receiver() as receiver:
        result = run(
            folder,
            "modeltel",
            module="s.main",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        )
        assert result.returncode == 0, result.stderr
        sent = [body for path, body in receiver.bodies if path == "/v1/logs"]
    assert SECRETS["body"] in result.stderr  # the app's own output is the app's
    assert sent, receiver.bodies
    files = [p.read_bytes() for signal in ("logs", "traces") for p in jsonl_files(folder / "data", signal)]
    for where, data in [*(("OTLP", b) for b in sent), *(("file", f) for f in files)]:
        for what, secret in SECRETS.items():
            assert secret.encode() not in data, f"{what} secret in {where}"
    found = {r.body: r for r in records(folder / "data")}
    assert found["called with extra"].attributes == {"api_key": "<redacted>", "rows": 3}
    assert "connecting with api_key=<redacted> to db" in found
    assert "settings {'token': '<redacted>', 'retries': 2}" in found
    failed = found["connect failed; client = dict(api_key='<redacted>')"]
    stacktrace = failed.attributes["exception.stacktrace"]
    assert 'dict(api_key="<redacted>")' in stacktrace and "{'api_key': '<redacted>'}" in stacktrace
    requests = receiver.requests("/v1/logs")
    bodies = {
        r.body.string_value
        for q in requests
        for rl in q.resource_logs
        for s in rl.scope_logs
        for r in s.log_records
    }
    assert bodies == set(found)


def _sdk_records() -> list[object]:
    """Records from real logging calls through the bridge, kept in memory."""
    provider = LoggerProvider(shutdown_on_exit=False)
    kept = InMemoryLogRecordExporter()
    provider.add_log_record_processor(SimpleLogRecordProcessor(kept))
    tracer = TracerProvider().get_tracer("t")
    logger = logging.getLogger("modeltel-test.codec")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    bridge.install(provider)
    try:
        with tracer.start_as_current_span("s"):
            logger.info(
                "hello %s", "w", extra={"n": 3, "d": {"a": [1, {"b": b"x"}]}, "f": 1.5, "o": object()}
            )
            try:
                raise RecursionError("deep " + "x" * 20_000)
            except RecursionError:
                logger.exception("boom")
        logger.warning("outside any span")
    finally:
        bridge.uninstall()
    provider.get_logger("api").emit(
        body={"k": [1, 2.5, None, True]}, event_name="ev", attributes={"x": (1, 2)}
    )
    return list(kept.get_finished_logs())


def test_the_encoder_matches_opentelemetrys_field_for_field() -> None:
    found = _sdk_records()
    assert len(found) == 4
    line = encode_logs(found)
    assert "\n" not in line
    ours = ParseDict(hex_to_base64(json.loads(line)), ExportLogsServiceRequest())
    assert ours == proto_logs(found)


def test_attribute_values_become_otlp_values_and_the_stacktrace_is_bounded() -> None:
    info, error, _, _ = _sdk_records()
    attributes = dict(info.log_record.attributes)  # type: ignore[attr-defined]
    assert attributes["d"] == {"a": (1, {"b": b"x"})} and attributes["n"] == 3
    assert attributes["o"].startswith("<object object at 0x")  # its text, not a warning on stderr
    stacktrace = dict(error.log_record.attributes)["exception.stacktrace"]  # type: ignore[attr-defined]
    assert len(stacktrace) <= MAX_STACKTRACE_CHARS
    assert stacktrace.startswith("Traceback (most recent call last):")
    assert "characters cut" in stacktrace
    assert 'raise RecursionError("deep " + "x" * 20_000)' in stacktrace  # where it was raised
    assert stacktrace.rstrip().endswith("x" * 1000)  # the end of the exception's line


def test_a_record_that_cannot_be_translated_is_counted_not_raised(tmp_path: Path) -> None:
    folder = write_app(
        tmp_path,
        {
            "b/__init__.py": "",
            "b/main.py": """
                import logging
                logging.basicConfig(level=logging.INFO, format="%(message)s")
                logging.getLogger("b").info("%d rows", "three")  # the app's own handler reports it
                logging.getLogger("b").info("next")
            """,
        },
    )
    plain = run(folder, "plain", module="b.main")
    result = run(folder, "modeltel", module="b.main")
    assert result.returncode == plain.returncode == 0
    assert "--- Logging error ---" in plain.stderr
    assert result.stderr.startswith(plain.stderr)  # the logging error, call stack and all
    assert result.stderr[len(plain.stderr) :] == "modeltel: log records lost: bridge 1 (not translatable 1)\n"
    assert [r.body for r in records(folder / "data")] == ["next"]


LOUD = {
    "l/__init__.py": "",
    "l/main.py": """
        import logging

        logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")


        class Loud:
            def __str__(self):
                logging.getLogger("l.str").warning("str called")
                return "loud"


        logging.getLogger("l").info("value %s", Loud())
    """,
}


def test_an_argument_that_logs_is_formatted_once_and_nothing_recurses(tmp_path: Path) -> None:
    folder = write_app(tmp_path, LOUD)
    plain = run(folder, "plain", module="l.main")
    result = run(folder, "modeltel", module="l.main")
    assert plain.stderr == "l.str str called\nl value loud\n"
    assert (result.returncode, result.stderr) == (0, plain.stderr)  # the bridge formats nothing again
    assert sorted(r.body for r in records(folder / "data")) == ["str called", "value loud"]


def test_the_jsonl_entry_point_reads_the_environment_and_redacts(tmp_path: Path, monkeypatch: Any) -> None:
    from importlib.metadata import entry_points

    monkeypatch.setenv("MODELTEL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OTEL_SERVICE_NAME", "entry")
    (found,) = entry_points(group="opentelemetry_logs_exporter", name="jsonl")
    exporter = found.load()()  # as the SDK's configurator builds it: no arguments
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    provider.get_logger("entry").emit(body="token=abc123 given", attributes={"password": "hunter2", "n": 1})
    provider.shutdown()
    (record,) = records(tmp_path / "data")
    assert (record.body, record.attributes) == ("token=<redacted> given", {"password": "<redacted>", "n": 1})
    assert record.path.name.startswith("entry-")
