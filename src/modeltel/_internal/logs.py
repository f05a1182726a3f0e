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

The translation (severity, body, attributes, ``exception.type``/``message``/``stacktrace``, the
current span's trace id, span id and flags) is :mod:`modeltel._internal.log_records`, field for field
what ``opentelemetry-instrumentation-logging``'s ``LoggingHandler`` makes of a record, plus modeltel's
two bounds (non-OTLP attribute values as text, ``exception.stacktrace`` at most
:data:`MAX_STACKTRACE_CHARS`). Hand-written because importing that handler imports the
instrumentation's package (``BaseInstrumentor``, ``wrapt``, ``packaging``, ``asyncio``,
``importlib.metadata``): ~100 ms of ``configure()`` on an idle machine, timed as that import after
the SDK's; the bridge's own import takes ~1 ms. The handler is kept as the test oracle. The SDK's
own ``LoggingHandler`` is deprecated (a warning on construction).

``MODELTEL_LOG_WARNINGS=true`` captures each warning as it is shown, as a WARNING record of
``py.warnings``. Not through ``logging.captureWarnings``, which moves warnings from stderr into
logging (changing the output); the function that shows a warning, ``warnings._showwarnmsg``, is
wrapped instead: it prints exactly what it printed, and it is wrapped rather than
``warnings.showwarning`` because wrapping that one drops the ``source`` object that lets
``-X tracemalloc`` print where a leaked resource was allocated.

The provider the bridge emits to is a :class:`LazyLoggerProvider`: logs go to the local file by
default, and building the SDK's ``LoggerProvider`` and modeltel's log stages (their imports, the
writer thread) at ``configure()`` cost every process ~11 ms of start-up, also one that never logs.
The first record, through the bridge or the OpenTelemetry logs API, builds them on its own thread.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Callable
from typing import Any

from opentelemetry._logs import Logger, LoggerProvider, NoOpLoggerProvider
from opentelemetry.util.types import Attributes

from modeltel._internal.log_records import MAX_STACKTRACE_CHARS, translate
from modeltel._internal.logging_frames import as_logging_frames

__all__ = ["MAX_STACKTRACE_CHARS", "LazyLoggerProvider", "install", "installed", "uninstall"]

_OWN_LOGGERS = ("opentelemetry", "modeltel")
_NAME_CACHE_LIMIT = 4096
_logger = logging.getLogger(__name__)
_NOOP = NoOpLoggerProvider()


class LazyLoggerProvider(LoggerProvider):
    """The logger provider ``configure()`` sets: ``build`` makes the real one (the SDK's, with
    modeltel's stages) when the first logger is asked for, exactly once, whatever the threads.

    It is an API provider rather than an SDK one so that configuring imports no logs SDK; the SDK
    provider's other methods (``add_log_record_processor``, ``resource``) are reached through it,
    and build it. Its ``force_flush`` and ``shutdown`` never build: with nothing built there is
    nothing to flush. After :meth:`close` (modeltel's exit) nothing is built any more: a record
    emitted then goes nowhere, as the shut-down SDK processors would have done with it.
    """

    def __init__(self, build: Callable[[], LoggerProvider]) -> None:
        self._build = build
        self._built: LoggerProvider | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._building = threading.local()
        # A fork while another thread builds would leave the child's lock held for ever.
        os.register_at_fork(after_in_child=self._after_fork)

    @property
    def built(self) -> LoggerProvider | None:
        """The real provider, if the first record came."""
        return self._built

    def get_logger(
        self,
        name: str,
        version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> Logger:
        provider = self._built or self._provider()
        return provider.get_logger(name, version=version, schema_url=schema_url, attributes=attributes)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        flush = getattr(self._built, "force_flush", None)
        return True if flush is None else bool(flush(timeout_millis))

    def shutdown(self) -> None:
        self.close()
        shutdown = getattr(self._built, "shutdown", None)
        if shutdown is not None:
            shutdown()

    def close(self) -> None:
        """Build nothing from now on; a build under way finishes first."""
        with self._lock:
            self._closed = True

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._provider(), name)

    def _provider(self) -> LoggerProvider:
        if getattr(self._building, "active", False):
            return _NOOP  # asked by the build itself (an exporter's import that logs): no pipeline yet
        with self._lock:
            if self._built is None:
                if self._closed:
                    return _NOOP
                self._building.active = True
                try:
                    self._built = self._build()
                except Exception:
                    _logger.exception(
                        "modeltel: could not set up the logs pipeline; no log record is exported"
                    )
                    self._built = _NOOP
                finally:
                    self._building.active = False
            return self._built

    def _after_fork(self) -> None:
        self._lock = threading.Lock()


_emitting = threading.local()
"""``active`` while this thread emits a record: what is logged meanwhile (an argument's ``__str__``
that logs, a warning the SDK issues) goes to the app's handlers only, never round again."""


class _Bridge:
    """What :func:`install` set up: the provider and its loggers, the threshold, the loggers skipped."""

    def __init__(self, provider: LoggerProvider, level: int | None, on_failure: Callable[[], None]) -> None:
        self.provider = provider
        self._loggers: dict[str, Logger] = {}
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
            self._logger(name).emit(translate(record))
        except Exception:  # e.g. a message whose arguments do not fit its format
            self.on_failure()
        finally:
            _emitting.active = False

    def _logger(self, name: str) -> Logger:
        """The OpenTelemetry logger of ``name``, kept here (the provider's own cache takes two locks
        per call)."""
        logger = self._loggers.get(name)
        if logger is None:
            logger = self.provider.get_logger(name)
            if len(self._loggers) < _NAME_CACHE_LIMIT:
                self._loggers[name] = logger
        return logger

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


as_logging_frames(_call_handlers, _handle)  # handleError prints the stack it printed without modeltel


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
