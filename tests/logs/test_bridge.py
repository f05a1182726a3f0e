"""The bridge never changes what the app's logging does, and what passes the app's loggers is in the
log files, with the ids of the span it was logged in.

Each app runs three ways: plain (the OpenTelemetry API alone, no modeltel), under ``modeltel run``
and under plain ``opentelemetry-instrument`` (modeltel's distro and configurator, found through
their entry points); stderr must be the same every way, modulo timestamps.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from log_files import (
    EXPECTED_INFO_AND_UP,
    assert_in_their_spans,
    normal,
    records,
    run,
    span_ids,
    write_app,
)

WAYS = ("modeltel", "instrument")


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = write_app(tmp_path_factory.mktemp("plain"))
    result = run(folder, "plain")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("\n") >= EXPECTED_INFO_AND_UP  # the app prints its own lines
    return normal(result.stderr, folder)


@pytest.mark.parametrize("how", WAYS)
def test_stderr_is_the_apps_and_every_record_is_in_the_log_file(tmp_path: Path, plain: str, how: str) -> None:
    folder = write_app(tmp_path)
    result = run(folder, how)
    assert result.returncode == 0, result.stderr
    assert normal(result.stderr, folder) == plain

    found = records(folder / "data")
    assert len(found) == EXPECTED_INFO_AND_UP, [r.body for r in found]
    assert "[in load] cache miss seed=7" not in [r.body for r in found]  # DEBUG: the app is at INFO
    assert {r.scope for r in found} == {"__main__", "shop.load", "shop.fit"}  # run with -m
    assert_in_their_spans(folder / "data", found)
    levels = {r.body: (r.record.severity_text, r.record.severity_number) for r in found}
    assert levels["[in load] 1 row had no label"] == ("WARN", 13)
    assert levels["[no span] done"] == ("FATAL", 21)

    (failed,) = [r for r in found if r.body == "[in fit] fit failed"]
    attributes = failed.attributes
    assert attributes["exception.type"] == "ZeroDivisionError"
    assert attributes["exception.message"] == "division by zero"
    assert attributes["exception.stacktrace"].startswith("Traceback (most recent call last):")
    assert attributes["exception.stacktrace"].rstrip().endswith("ZeroDivisionError: division by zero")
    assert failed.resource["modeltel.run.id"]
    assert failed.path.name.startswith("unknown_service_python-")  # <service>-<pid>-<start>.jsonl
    assert oct(failed.path.stat().st_mode & 0o777) == "0o600"
    assert oct(failed.path.parent.stat().st_mode & 0o777) == "0o700"


NO_CONFIG = {
    "quiet/__init__.py": "",
    "quiet/main.py": """
        import logging
        import sys

        logger = logging.getLogger("quiet.worker")
        logger.info("not shown: no handler, and lastResort prints WARNING and up")
        logger.warning("careful: %s", "disk almost full")
        logger.error("failed")
        root = logging.getLogger()
        print(len(root.handlers), root.level, file=sys.stdout)
        if not root.handlers:  # the idiom a root handler would defeat
            logging.basicConfig(level=logging.INFO, format="configured %(levelname)s %(message)s")
        logger.info("after basicConfig")
    """,
}


@pytest.mark.parametrize("how", WAYS)
def test_an_app_without_logging_config_keeps_last_resort_and_its_idioms(tmp_path: Path, how: str) -> None:
    folder = write_app(tmp_path, NO_CONFIG)
    plain = run(folder, "plain", module="quiet.main")
    result = run(folder, how, module="quiet.main")
    assert result.returncode == plain.returncode == 0, result.stderr
    assert plain.stderr == "careful: disk almost full\nfailed\nconfigured INFO after basicConfig\n"
    assert (result.stdout, result.stderr) == (plain.stdout, plain.stderr)
    assert plain.stdout == "0 30\n"
    bodies = [r.body for r in records(folder / "data")]
    # What passes the logger: its level is WARNING (root's default) until basicConfig sets INFO.
    assert bodies == ["careful: disk almost full", "failed", "after basicConfig"]


DICT_CONFIG = {
    "dc/__init__.py": "",
    "dc/main.py": """
        import logging
        import logging.config
        import sys

        logging.config.dictConfig({
            "version": 1,
            "formatters": {"short": {"format": "[%(name)s] %(levelname)s %(message)s"}},
            "handlers": {
                "err": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                        "formatter": "short", "level": "INFO"},
                "out": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout",
                        "formatter": "short", "level": "ERROR"},
            },
            "loggers": {
                "dc.noisy": {"level": "ERROR"},
                "dc.own": {"level": "DEBUG", "handlers": ["out"], "propagate": False},
            },
            "root": {"level": "INFO", "handlers": ["err"]},
        })
        logging.getLogger("dc.main").info("configured by dictConfig")
        logging.getLogger("dc.noisy").warning("not shown: the logger is at ERROR")
        logging.getLogger("dc.own").debug("not printed: its handler is at ERROR")
        logging.getLogger("dc.own").error("own handler, not propagated")
        print(sorted(type(h).__name__ for h in logging.getLogger().handlers), file=sys.stdout)
    """,
}
FILE_CONFIG = {
    "fc/__init__.py": "",
    "fc/logging.ini": """
        [loggers]
        keys=root,fc

        [handlers]
        keys=err

        [formatters]
        keys=plain

        [logger_root]
        level=WARNING
        handlers=err

        [logger_fc]
        level=INFO
        handlers=err
        propagate=0
        qualname=fc

        [handler_err]
        class=StreamHandler
        level=NOTSET
        formatter=plain
        args=(sys.stderr,)

        [formatter_plain]
        format=fileConfig %(levelname)s:%(name)s:%(message)s
    """,
    "fc/main.py": """
        import logging
        import logging.config
        import os

        logging.config.fileConfig(os.path.join(os.path.dirname(__file__), "logging.ini"))
        logging.getLogger("fc.app").info("configured by fileConfig")
        logging.getLogger("other").info("not shown: root is at WARNING")
        logging.getLogger("other").warning("root's warning")
    """,
}


@pytest.mark.parametrize("how", WAYS)
@pytest.mark.parametrize(
    ("files", "module", "expected"),
    [
        (
            DICT_CONFIG,
            "dc.main",
            [
                "configured by dictConfig",
                "not printed: its handler is at ERROR",
                "own handler, not propagated",
            ],
        ),
        (FILE_CONFIG, "fc.main", ["configured by fileConfig", "root's warning"]),
    ],
    ids=["dictConfig", "fileConfig"],
)
def test_dict_and_file_config_apps_are_unchanged(
    tmp_path: Path, how: str, files: dict[str, str], module: str, expected: list[str]
) -> None:
    folder = write_app(tmp_path, files)
    plain = run(folder, "plain", module=module)
    result = run(folder, how, module=module)
    assert plain.returncode == result.returncode == 0, result.stderr
    assert plain.stderr and (result.stdout, result.stderr) == (plain.stdout, plain.stderr)
    # The records that pass the app's loggers, also one its handler's level keeps off the screen
    # and one of a logger that does not propagate.
    assert [r.body for r in records(folder / "data")] == expected


def test_log_level_debug_captures_debug_while_stderr_stays_at_info(tmp_path: Path, plain: str) -> None:
    folder = write_app(tmp_path)
    result = run(folder, "modeltel", MODELTEL_LOG_LEVEL="DEBUG")
    assert result.returncode == 0, result.stderr
    assert normal(result.stderr, folder) == plain
    assert "cache miss" not in result.stderr
    found = records(folder / "data")
    assert len(found) == EXPECTED_INFO_AND_UP + 1
    (debug,) = [r for r in found if r.record.severity_text == "DEBUG"]
    assert debug.body == "[in load] cache miss seed=7"
    assert_in_their_spans(folder / "data", found)


def test_log_level_error_raises_the_threshold(tmp_path: Path, plain: str) -> None:
    folder = write_app(tmp_path)
    result = run(folder, "modeltel", MODELTEL_LOG_LEVEL="error")
    assert normal(result.stderr, folder) == plain
    assert sorted(r.body for r in records(folder / "data")) == [
        "[in fit] fit failed",
        "[in job] 1 error(s)",
        "[no span] done",
    ]


WARNS = {
    "w/__init__.py": "",
    "w/main.py": """
        import logging
        import warnings

        from opentelemetry import trace

        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
        with trace.get_tracer("w").start_as_current_span("job"):
            warnings.warn("[in job] the old API is deprecated", UserWarning, stacklevel=1)
        logging.getLogger("w").info("[no span] after the warning")
    """,
}


@pytest.mark.parametrize("capture", ["true", "false"])
def test_warnings_are_captured_on_request_with_stderr_unchanged(tmp_path: Path, capture: str) -> None:
    folder = write_app(tmp_path, WARNS)
    plain = run(folder, "plain", module="w.main")
    result = run(folder, "modeltel", module="w.main", MODELTEL_LOG_WARNINGS=capture)
    assert result.returncode == 0, result.stderr
    assert "UserWarning: [in job] the old API is deprecated" in plain.stderr
    assert result.stderr == plain.stderr
    found = records(folder / "data")
    if capture == "false":
        assert [r.body for r in found] == ["[no span] after the warning"]
        return
    warning, info = found if found[0].scope == "py.warnings" else found[::-1]
    assert warning.scope == "py.warnings" and warning.record.severity_text == "WARN"
    assert warning.body == "UserWarning: [in job] the old API is deprecated"
    assert warning.attributes["code.file.path"].endswith("main.py")
    assert (warning.trace_id, warning.span_id) == span_ids(folder / "data")["job"]
    assert_in_their_spans(folder / "data", [info])
    assert info.body == "[no span] after the warning"


def test_a_bad_log_level_is_named(tmp_path: Path) -> None:
    folder = write_app(tmp_path)
    result = run(folder, "modeltel", MODELTEL_LOG_LEVEL="LOUD")
    assert result.returncode == 2
    assert "MODELTEL_LOG_LEVEL='LOUD'" in result.stderr


CORRELATION = {
    "c/__init__.py": "",
    "c/main.py": """
        import logging
        import sys

        from opentelemetry import trace

        with trace.get_tracer("c").start_as_current_span("job"):
            logging.getLogger("c").warning("[in job] correlated")
        print(sorted(type(h).__name__ for h in logging.getLogger().handlers))
    """,
}


def test_log_correlation_loads_the_stock_instrumentor_without_its_handler(tmp_path: Path) -> None:
    folder = write_app(tmp_path, CORRELATION)
    result = run(folder, "instrument", module="c.main", OTEL_PYTHON_LOG_CORRELATION="true")
    assert result.returncode == 0, result.stderr
    # Its basicConfig (asked for with the variable) prints the trace id in the app's format ...
    ((trace_id, span_id),) = [span_ids(folder / "data")["job"]]
    assert f"trace_id={trace_id} span_id={span_id}" in result.stderr
    assert result.stdout == "['StreamHandler']\n"  # ... and no OTel handler is on the root logger
    (record,) = records(folder / "data")  # once, not twice
    assert (record.body, record.trace_id) == ("[in job] correlated", trace_id)


OWN_PROVIDER = {
    "o/__init__.py": "",
    "o/main.py": """
        import logging

        from opentelemetry._logs import set_logger_provider
        from opentelemetry.instrumentation.logging.handler import LoggingHandler
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

        import modeltel

        provider = LoggerProvider()
        mine = InMemoryLogRecordExporter()
        provider.add_log_record_processor(SimpleLogRecordProcessor(mine))
        set_logger_provider(provider)
        logging.getLogger().addHandler(LoggingHandler(logger_provider=provider))
        modeltel.configure()
        logging.getLogger("o").warning("api_key=sk-own-1 once")
        print(len(mine.get_finished_logs()))
    """,
}


def test_an_apps_own_logger_provider_gets_the_log_file_added_and_no_bridge(tmp_path: Path) -> None:
    folder = write_app(tmp_path, OWN_PROVIDER)
    result = run(folder, "plain", module="o.main", MODELTEL_ENABLED="true")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "1\n"  # the app's own pipeline saw the record once
    assert [r.body for r in records(folder / "data")] == ["api_key=<redacted> once"]
