"""The bridge from Python's ``logging`` (and, if asked, ``warnings``) to the logs pipeline, which
never changes what the application's logging does.

Why not ``LoggingInstrumentor`` (or the SDK's ``LoggingHandler`` on the root logger): both attach a
handler to the root logger before the application starts, and a root handler is not neutral.
``logging.basicConfig()`` does nothing when the root logger has a handler (the app's format, level
and stderr lines vanish: 0 of 17 lines in the issue's example, and every INFO record lost with
them, since the root level stays WARNING); ``logging.lastResort`` stops printing the warnings of an
app that configured nothing; ``if not root.handlers: basicConfig()`` misfires. The instrumentation
works around the first by wrapping ``basicConfig``/``dictConfig``/``fileConfig``, which leaves the
other two.

So no handler is added anywhere. :func:`install` wraps ``logging.Logger.callHandlers`` at class
level: a record reaching it has passed its logger's level and filters, exactly the records the
application handles, and after the application's own handlers (and ``lastResort``) have run it is
also emitted to OpenTelemetry. What the app prints is what it printed without modeltel, and records
that pass the app's loggers reach the exporters (an app at INFO exports INFO), also those of loggers
with ``propagate=False``. Records of the ``opentelemetry`` and ``modeltel`` loggers are not emitted:
the pipeline's own diagnostics would feed the pipeline. The emission never raises; a record it
cannot translate is counted (``log records lost: bridge`` at exit).

``MODELTEL_LOG_LEVEL`` sets the capture threshold instead: records from that level up, whatever the
app's logger levels. Raising it only filters; lowering it below a logger's level also wraps
``Logger.isEnabledFor``, so the record is made, and ``Logger.handle``, so that such a record (one
the app's logger would have refused) goes to OpenTelemetry only: the app's filters and handlers
never see it. ``logging.disable()`` and disabled loggers are respected.

The translation (severity, body, ``exception.type``/``message``/``stacktrace``, the current span's
trace id, span id and flags) is OpenTelemetry's own: ``opentelemetry-instrumentation-logging``'s
``LoggingHandler``, used as a translator only. modeltel adds two bounds: attribute values that are
not OTLP values become their text here (the SDK would warn about each on the app's stderr), and
``exception.stacktrace`` keeps at most :data:`MAX_STACKTRACE_CHARS`.

``MODELTEL_LOG_WARNINGS=true`` captures each warning as it is shown, as a WARNING record of
``py.warnings``. Not through ``logging.captureWarnings``, which moves warnings from stderr into
logging (changing the output); the function that shows a warning, ``warnings._showwarnmsg``, is
wrapped instead: it prints exactly what it printed, and it is wrapped rather than
``warnings.showwarning`` because wrapping that one drops the ``source`` object that lets
``-X tracemalloc`` print where a leaked resource was allocated.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry._logs import LoggerProvider
from opentelemetry.instrumentation.logging.handler import LoggingHandler

from modeltel.formats import MAX_NESTING

__all__ = ["MAX_STACKTRACE_CHARS", "install", "installed", "uninstall"]

MAX_STACKTRACE_CHARS = 8192
"""``exception.stacktrace`` is cut to this many characters: the first 1 KiB (where the program
entered) and the rest from the end (the innermost frames and the exception). A stack trace is
formatted on the app's thread and shipped with every record; a deep one (a recursion, a framework
stack with chained causes) runs to hundreds of KiB, which costs the app, fills the file and passes
receivers' line limits, while the frames that say what failed are the last few."""
_HEAD_CHARS = 1024
_STACKTRACE = "exception.stacktrace"
_PLAIN = frozenset({str, int, float, bool})
_OWN_LOGGERS = ("opentelemetry", "modeltel")
_NAME_CACHE_LIMIT = 4096


def _bounded_stacktrace(text: str) -> str:
    if len(text) <= MAX_STACKTRACE_CHARS:
        return text
    marker = f"\n... {{}} characters cut (bound {MAX_STACKTRACE_CHARS}) ...\n"
    tail = MAX_STACKTRACE_CHARS - _HEAD_CHARS - len(marker) - 8
    cut = len(text) - _HEAD_CHARS - tail
    return text[:_HEAD_CHARS] + marker.format(cut) + text[-tail:]


def _otlp_value(value: Any, depth: int = 0) -> Any:
    """``value`` as an OTLP attribute value: maps and sequences kept (keys as text), anything else
    that is not a plain value as its text; deeper than ``MAX_NESTING`` as text too."""
    if type(value) in _PLAIN or value is None or isinstance(value, bytes):
        return value
    if depth < MAX_NESTING:
        if isinstance(value, Mapping):
            return {str(k): _otlp_value(v, depth + 1) for k, v in value.items() if str(k)}
        if isinstance(value, Sequence) and not isinstance(value, str):
            return tuple(_otlp_value(v, depth + 1) for v in value)
        if isinstance(value, str | int | float):  # subclasses: str enums, numpy scalars
            return value
    try:
        return str(value)
    except Exception:
        return f"<{type(value).__name__}>"


class _Message(logging.Formatter):
    """The record's message as the app's own formatter already made it (``record.message``), else
    made now: its arguments' ``__str__`` runs once, as without modeltel, where the app printed it."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.__dict__.get("message")
        return message if type(message) is str else record.getMessage()


class _Translator(LoggingHandler):
    """The instrumentation's ``LoggingHandler`` as a record translator, never attached to a logger."""

    def __init__(self, provider: LoggerProvider) -> None:
        super().__init__(logger_provider=provider)
        self.setFormatter(_Message())
        self._provider = provider
        self._loggers: dict[str, Any] = {}

    def _get_attributes(self, record: logging.LogRecord) -> tuple[dict[str, Any], str | None]:
        attributes, event_name = super()._get_attributes(record)
        for key, value in attributes.items():
            if type(value) not in _PLAIN:
                attributes[key] = _otlp_value(value)
        stacktrace = attributes.get(_STACKTRACE)
        if type(stacktrace) is str and len(stacktrace) > MAX_STACKTRACE_CHARS:
            attributes[_STACKTRACE] = _bounded_stacktrace(stacktrace)
        return attributes, event_name

    def emit(self, record: logging.LogRecord) -> None:
        """As the instrumentation's ``emit``, with the OpenTelemetry logger of each name kept here
        (the provider's own cache takes two locks per call)."""
        logger = self._loggers.get(record.name)
        if logger is None:
            logger = self._provider.get_logger(record.name)
            if len(self._loggers) < _NAME_CACHE_LIMIT:
                self._loggers[record.name] = logger
        logger.emit(self._translate(record))


_emitting = threading.local()
"""``active`` while this thread emits a record: what is logged meanwhile (an argument's ``__str__``
that logs, a warning the SDK issues) goes to the app's handlers only, never round again."""


class _Bridge:
    """What :func:`install` set up: the translator, the threshold, the loggers that are skipped."""

    def __init__(self, provider: LoggerProvider, level: int | None, on_failure: Callable[[], None]) -> None:
        self.translator = _Translator(provider)
        self.level = level
        self.threshold = 0 if level is None else level
        self.on_failure = on_failure
        self._own: dict[str, bool] = {}

    def emit(self, record: logging.LogRecord) -> None:
        """Emit ``record`` to OpenTelemetry; never raises."""
        if record.levelno < self.threshold:
            return
        name = record.name
        own = self._own.get(name)
        if own is None:
            own = name.partition(".")[0] in _OWN_LOGGERS
            if len(self._own) < _NAME_CACHE_LIMIT:
                self._own[name] = own
        if own or getattr(_emitting, "active", False):  # a record logged while one is emitted
            return
        _emitting.active = True
        try:
            self.translator.emit(record)
        except Exception:  # e.g. a message whose arguments do not fit its format
            self.on_failure()
        finally:
            _emitting.active = False

    def warning(self, message: Warning | str, category: type[Warning], filename: str, lineno: int) -> None:
        record = logging.LogRecord("py.warnings", logging.WARNING, filename, lineno, "%s: %s", None, None)
        record.args = (category.__name__, message)
        record.__dict__["code.file.path"] = filename
        record.__dict__["code.line.number"] = lineno
        self.emit(record)


_lock = threading.Lock()
_bridge: _Bridge | None = None
_originals: dict[str, Any] = {}
_widened = threading.local()
"""``(logger, level)`` when ``isEnabledFor`` said yes only because of MODELTEL_LOG_LEVEL; the record
that logger makes next at that level goes to OpenTelemetry only."""


def _call_handlers(self: logging.Logger, record: logging.LogRecord) -> None:
    try:
        _originals["callHandlers"](self, record)
    finally:
        bridge = _bridge
        if bridge is not None:
            bridge.emit(record)


def _is_enabled_for(self: logging.Logger, level: int) -> bool:
    if _originals["isEnabledFor"](self, level):
        return True
    bridge = _bridge
    if bridge is None or level < bridge.threshold or self.disabled or self.manager.disable >= level:
        return False
    _widened.marker = (self, level)
    return True


def _handle(self: logging.Logger, record: logging.LogRecord) -> None:
    marker = getattr(_widened, "marker", None)
    if marker is not None:
        _widened.marker = None
        bridge = _bridge
        if (
            bridge is not None
            and marker[0] is self
            and marker[1] == record.levelno
            and not _originals["isEnabledFor"](self, record.levelno)
        ):
            bridge.emit(record)  # below the app's level: the app never sees it
            return
    _originals["handle"](self, record)


def _show_warning(message: warnings.WarningMessage) -> None:
    _originals["_showwarnmsg"](message)
    bridge = _bridge
    # With logging.captureWarnings(True) the warning is a py.warnings record, which the bridge sees.
    if bridge is not None and getattr(logging, "_warnings_showwarning", None) is None:
        bridge.warning(message.message, message.category, message.filename, message.lineno)


def _as_logging_frames(*functions: Callable[..., Any]) -> None:
    """Give the hooks' code a file name in the ``logging`` package's folder, ``<modeltel bridge>``.

    When one of the app's handlers fails, ``Handler.handleError`` prints the call stack from the
    first frame outside that folder: with the hooks in the chain, that stack would list four more
    frames (the hook and the logging frames above it) than without modeltel. Named so, the hooks
    are passed over like logging's own frames, and a traceback through one still says what it is.
    """
    folder = os.path.dirname(logging.__file__)
    for function in functions:
        function.__code__ = function.__code__.replace(co_filename=os.path.join(folder, "<modeltel bridge>"))


_as_logging_frames(_call_handlers, _handle)


def install(
    provider: LoggerProvider,
    level: int | None = None,
    capture_warnings: bool = False,
    on_failure: Callable[[], None] = lambda: None,
) -> None:
    """Emit what passes the app's loggers (from ``level`` up, if given) to ``provider``'s loggers;
    with ``capture_warnings``, each warning shown too. A second call replaces the first."""
    global _bridge
    with _lock:
        uninstall_locked()
        _originals["callHandlers"] = logging.Logger.callHandlers
        logging.Logger.callHandlers = _call_handlers  # type: ignore[method-assign]
        if level is not None:
            _originals["isEnabledFor"] = logging.Logger.isEnabledFor
            _originals["handle"] = logging.Logger.handle
            logging.Logger.isEnabledFor = _is_enabled_for  # type: ignore[method-assign]
            logging.Logger.handle = _handle  # type: ignore[method-assign]
        if capture_warnings:
            _originals["_showwarnmsg"] = warnings._showwarnmsg  # type: ignore[attr-defined]
            warnings._showwarnmsg = _show_warning  # type: ignore[attr-defined]
        _bridge = _Bridge(provider, level, on_failure)


def installed() -> bool:
    return _bridge is not None


def uninstall() -> None:
    """Put back everything :func:`install` replaced (for tests)."""
    with _lock:
        uninstall_locked()


def uninstall_locked() -> None:
    global _bridge
    _bridge = None
    for name in ("callHandlers", "isEnabledFor", "handle"):
        if name in _originals:
            setattr(logging.Logger, name, _originals.pop(name))
    if "_showwarnmsg" in _originals:
        warnings._showwarnmsg = _originals.pop("_showwarnmsg")  # type: ignore[attr-defined]
