"""modeltel's record translation against ``opentelemetry-instrumentation-logging``'s ``LoggingHandler``
(the oracle): equal field for field, except where modeltel's two bounds say otherwise, and made
without importing the instrumentation."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry._logs import LogRecord
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import TracerProvider

from modeltel._internal.log_records import MAX_STACKTRACE_CHARS, translate

ORACLE = LoggingHandler(logger_provider=LoggerProvider(shutdown_on_exit=False))
TRACER = TracerProvider().get_tracer("oracle")
FIELDS = ("timestamp", "body", "severity_number", "severity_text", "trace_id", "span_id", "trace_flags")


def _record(
    level: int = logging.INFO, msg: object = "plain", args: Any = None, **extra: Any
) -> logging.LogRecord:
    record = logging.LogRecord("app.module", level, "/app/module.py", 12, msg, args, None, func="work")
    record.__dict__.update(extra)
    return record


def _both(record: logging.LogRecord) -> tuple[LogRecord, LogRecord]:
    return translate(record), ORACLE._translate(record)


def _assert_same(ours: LogRecord, theirs: LogRecord) -> None:
    for field in FIELDS:
        assert getattr(ours, field) == getattr(theirs, field), field
    assert ours.event_name == theirs.event_name
    assert ours.attributes == theirs.attributes
    assert ours.context == theirs.context


@contextmanager
def _span() -> Iterator[None]:
    with TRACER.start_as_current_span("s"):
        yield


class Opaque:
    def __str__(self) -> str:
        return "opaque!"


def test_plain_args_dict_arg_and_non_text_messages_equal_the_oracle() -> None:
    for record in (
        _record(),
        _record(msg="step %d of %s", args=(3, "fit")),
        _record(msg="%(a)s and %(b)d", args=({"a": "x", "b": 2},)),
        _record(msg=Opaque()),
        _record(msg=42),
        _record(msg={"k": "v"}),
        _record(msg=None),
        _record(msg="no args %s"),
    ):
        _assert_same(*_both(record))
        _assert_same(*_both(record))  # after a formatter set record.message: the same


def test_the_message_an_apps_formatter_made_is_the_body() -> None:
    record = _record(msg="n=%d", args=(1,))
    logging.Formatter().format(record)
    record.args = (2,)  # what the app printed, not a second __str__
    ours, theirs = _both(record)
    assert ours.body == "n=1" and theirs.body == "n=2"


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-20, max_value=200))
def test_every_level_number_has_the_oracles_severity(level: int) -> None:
    _assert_same(*_both(_record(level=level)))


def test_custom_and_named_levels() -> None:
    logging.addLevelName(25, "NOTICE")
    try:
        for level in (5, 25, 45, 60, logging.WARNING, logging.CRITICAL, logging.NOTSET):
            ours, theirs = _both(_record(level=level))
            _assert_same(ours, theirs)
        assert translate(_record(level=logging.WARNING)).severity_text == "WARN"
        assert translate(_record(level=25)).severity_text == "NOTICE"
        assert translate(_record(level=45)).severity_text == "Level 45"
    finally:
        del logging._levelToName[25]
        del logging._nameToLevel["NOTICE"]


PLAIN_VALUES = st.one_of(
    st.text(max_size=20),
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.binary(max_size=8),
)
RECORD_NAMES = {*dir(logging.makeLogRecord({})), "message", "asctime"}
"""What ``extra=`` keys are not: ``Logger.makeRecord`` refuses ``message``, ``asctime`` and the
record's own fields, and a key named like a method (``getMessage``) breaks either translator."""
KEYS = st.text(min_size=1, max_size=12).filter(lambda k: k not in RECORD_NAMES)


@settings(max_examples=150, deadline=None)
@given(
    extra=st.dictionaries(KEYS, PLAIN_VALUES, max_size=6),
    nested=st.dictionaries(st.text(min_size=1, max_size=5), st.lists(st.integers(), max_size=3), max_size=3),
    in_span=st.booleans(),
)
def test_extra_attributes_equal_the_oracle(
    extra: dict[str, Any], nested: dict[str, Any], in_span: bool
) -> None:
    record = _record(**extra)
    if in_span:
        with _span():
            _assert_same(*_both(record))
    else:
        _assert_same(*_both(record))
    ours, theirs = _both(_record(nested=nested))
    assert ours.attributes == {"nested": {k: tuple(v) for k, v in nested.items()}}  # modeltel's bound:
    assert theirs.attributes == {"nested": nested}  # lists become tuples, as the SDK makes them


def test_non_otlp_values_become_text_where_the_oracle_passes_them_on() -> None:
    raw: dict[str, Any] = {"o": Opaque(), "s": {1}, "deep": {1: [Opaque(), (2, 3)]}, "n": None, "b": b"x"}
    ours, theirs = _both(_record(**raw))
    assert theirs.attributes == raw
    assert ours.attributes == {
        "o": "opaque!",
        "s": "{1}",
        "deep": {"1": ("opaque!", (2, 3))},
        "n": None,
        "b": b"x",
    }


def test_event_names_are_taken_out_as_the_oracle_does() -> None:
    extras: list[dict[str, Any]] = [{"otel.event.name": "a"}, {"event.name": "b"}]
    for extra in (*extras, {"otel.event.name": "a", "event.name": "b"}):
        ours, theirs = _both(_record(**extra, k=1))
        _assert_same(ours, theirs)
        assert ours.attributes == {"k": 1} and ours.event_name in ("a", "b")


def _raised(message: str) -> Any:
    try:
        raise ValueError(message, 2)
    except ValueError:
        return sys.exc_info()


def test_exceptions_and_stack_info_equal_the_oracle() -> None:
    no_args: Any
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        no_args = sys.exc_info()
    for record in (
        _record(level=logging.ERROR, exc_info=_raised("bad")),
        _record(level=logging.ERROR, exc_info=no_args),
        _record(level=logging.ERROR, exc_info=(None, None, None)),
        _record(level=logging.ERROR, exc_info=(ValueError, ValueError("no tb"), None)),
        _record(stack_info="Stack (most recent call last):\n  ..."),
    ):
        ours, theirs = _both(record)
        _assert_same(ours, theirs)
    ours, _ = _both(_record(exc_info=_raised("bad")))
    assert ours.attributes is not None
    assert ours.attributes["exception.type"] == "ValueError" and ours.attributes["exception.message"] == "bad"


def test_a_long_stacktrace_is_bounded_where_the_oracle_keeps_it_whole() -> None:
    record = _record(level=logging.ERROR, exc_info=_raised("deep " + "x" * 20_000))
    ours, theirs = _both(record)
    assert ours.attributes is not None and theirs.attributes is not None
    full, cut = theirs.attributes["exception.stacktrace"], ours.attributes["exception.stacktrace"]
    assert isinstance(full, str) and isinstance(cut, str)
    assert len(full) > MAX_STACKTRACE_CHARS >= len(cut)
    head, _, tail = cut.partition(" characters cut (bound 8192) ...\n")
    assert full.startswith(head.rpartition("\n... ")[0]) and full.endswith(tail) and len(tail) > 6000
    assert int(head.rpartition("\n... ")[2]) == len(full) - 1024 - len(tail)
    assert {k: v for k, v in ours.attributes.items() if k != "exception.stacktrace"} == {
        k: v for k, v in theirs.attributes.items() if k != "exception.stacktrace"
    }


def test_inside_a_span_and_on_another_thread() -> None:
    with _span():
        ours, theirs = _both(_record())
    _assert_same(ours, theirs)
    assert ours.trace_id != 0 and ours.span_id != 0 and ours.trace_flags == theirs.trace_flags
    outside, _ = _both(_record())
    assert outside.trace_id == 0 and outside.span_id == 0
    found: list[tuple[LogRecord, LogRecord]] = []

    def work() -> None:
        with _span():
            found.append(_both(_record(worker=threading.current_thread().name)))
        found.append(_both(_record()))

    worker = threading.Thread(target=work, name="worker-7")
    worker.start()
    worker.join()
    (in_span, in_span_oracle), (bare, bare_oracle) = found
    _assert_same(in_span, in_span_oracle)
    _assert_same(bare, bare_oracle)
    assert in_span.trace_id not in (0, ours.trace_id) and bare.trace_id == 0
    assert in_span.attributes == {"worker": "worker-7"}


BRIDGE_ONLY = """
import json, logging, sys
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
import modeltel
before = set(sys.modules)
from modeltel._internal import logs
provider = LoggerProvider(shutdown_on_exit=False)
kept = InMemoryLogRecordExporter()
provider.add_log_record_processor(SimpleLogRecordProcessor(kept))
logs.install(provider, level=logging.DEBUG, capture_warnings=True)
logger = logging.getLogger("app")
logger.warning("one %s", "record", extra={"k": 1})
try:
    1 / 0
except ZeroDivisionError:
    logger.exception("two")
added = sorted(m for m in set(sys.modules) - before if m.startswith("opentelemetry.instrumentation"))
print(json.dumps({"added": added, "bodies": [r.log_record.body for r in kept.get_finished_logs()]}))
"""


def test_the_bridge_imports_no_instrumentation_package() -> None:
    done = subprocess.run([sys.executable, "-c", BRIDGE_ONLY], capture_output=True, text=True, check=True)
    found = json.loads(done.stdout)
    assert found == {"added": [], "bodies": ["one record", "two"]}, done.stderr
