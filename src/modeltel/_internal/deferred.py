"""Telemetry configured when a process first has something to record: multiprocessing workers, and
programs started by ``modeltel run`` (its ``sitecustomize``, ``_internal/bootstrap/``).

Why: configuring (importing the SDK, building three signals' pipelines) costs a fresh interpreter
about 150-250 ms of CPU, most of what ``modeltel run`` adds to a start. Configured eagerly, a pool
of ten trivial tasks took 8.5 times as long, though work handed over outside any span in an
unmodified app records nothing, and a job-array step that stops at its input check paid the same
as one that ran. :func:`arm` keeps the settings (a worker's come from its parent) and sets
tripwires that cost nothing until tripped; the first one tripped configures modeltel, once:

* a task handed over inside a sampled span: :mod:`modeltel.integrations.multiprocessing` calls
  :func:`configure_now` before running it;
* the first ``get_tracer_provider`` / ``get_meter_provider`` / ``get_logger_provider`` of the
  OpenTelemetry API (so every ``get_tracer``, ``get_meter``): the API's own lazy providers. With
  ``OTEL_PYTHON_TRACER_PROVIDER=modeltel`` set and no provider set yet, the API builds the global
  provider from the entry point ``modeltel`` of group ``opentelemetry_tracer_provider``, which is
  :func:`tracer_provider` here (meter and logger alike). The API raises when that entry point is
  missing, so the variables are set only when :func:`providers_entry_points` found all three.
  They live in ``os.environ`` only, not in the C environment (``os.unsetenv``), so a process this
  one starts does not inherit them, and they are removed as soon as modeltel is configured;
* modeltel's domain API, and any other call of ``configure()``: ``providers.configure`` takes the
  armed settings through :func:`disarm`;
* the first ``logging`` record the log bridge would export: a class-level hook on
  ``logging.Logger.callHandlers`` puts the exact original back, configures (which installs the real
  bridge on top of the original), then dispatches the record again, through the bridge.

A record the app's logger refuses but ``MODELTEL_LOG_LEVEL`` would capture never reaches
``callHandlers``, so it trips nothing; records from there on are captured once configured.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from modeltel._internal import on_import
from modeltel._internal.logging_frames import as_logging_frames

if TYPE_CHECKING:
    import logging

    from modeltel._internal.providers import Handle

__all__ = [
    "arm",
    "configure_now",
    "disarm",
    "is_multiprocessing_child",
    "logger_provider",
    "meter_provider",
    "providers_entry_points",
    "run_callbacks",
    "tracer_provider",
]

ENTRY_POINT = "modeltel"
"""The name of the three lazy-provider entry points, and the value of the variables naming them."""

PROVIDER_VARIABLES = {
    "OTEL_PYTHON_TRACER_PROVIDER": "opentelemetry_tracer_provider",
    "OTEL_PYTHON_METER_PROVIDER": "opentelemetry_meter_provider",
    "OTEL_PYTHON_LOGGER_PROVIDER": "opentelemetry_logger_provider",
}
"""Each variable the OpenTelemetry API reads on its first ``get_*_provider``, and its entry point group."""

_OWN_LOGGERS = ("opentelemetry", "modeltel")
_CHILD_COMMANDS = (
    "from multiprocessing.spawn import",
    "from multiprocessing.forkserver import",
    "from multiprocessing.resource_tracker import",  # runs no app code: configured, it paid for nothing
)

_lock = threading.RLock()
"""Reentrant: arming waits for ``logging`` through :mod:`on_import`, which runs the wait at once, on
this thread, when another thread finished importing ``logging`` in between."""
_busy = threading.local()
"""``active`` while this thread configures: a record logged meanwhile must not configure again."""


class _State:
    """What :func:`arm` set up in this process."""

    def __init__(self) -> None:
        self.armed = False
        self.overrides: dict[str, Any] | None = None
        self.callbacks: list[Callable[[], None]] = []
        self.pending: list[Callable[[], None]] = []
        self.variables: list[str] = []
        self.log_threshold: int | None = None
        self.original_call_handlers: Callable[[logging.Logger, logging.LogRecord], None] | None = None


_state = _State()


def is_multiprocessing_child() -> bool:
    """True in a process multiprocessing started (spawn, forkserver, or fork from one).

    Read from the command line, so it answers from the first line of ``sitecustomize`` on, before
    multiprocessing has unpickled anything.
    """
    argv = getattr(sys, "orig_argv", sys.argv)
    if "--multiprocessing-fork" in argv or any(arg.startswith(_CHILD_COMMANDS) for arg in argv):
        return True
    process = sys.modules.get("multiprocessing.process")
    return process is not None and process.parent_process() is not None


@functools.cache
def providers_entry_points() -> bool:
    """True when modeltel's installed metadata declares the three lazy-provider entry points.

    Read from modeltel's own ``*.dist-info/entry_points.txt`` on ``sys.path`` (a directory listing
    per entry and one small file): ``importlib.metadata`` would cost a configured parent 25-50 ms at
    its first ``Process.start()`` to import and to read every distribution's entry points. Asked
    once per process (``modeltel run``'s hook, then a configured parent's first ``Process.start()``).
    False when absent (modeltel run from a source tree that was never installed) or unreadable: the
    API's variables are then never set, and the other tripwires configure. Never raises.
    """
    from modeltel._internal import dist_info

    try:
        for name, info in dist_info.distributions():
            if name == ENTRY_POINT:  # the first modeltel on the path is the one imported
                text = dist_info.entry_points_text(info) or ""
                return all(
                    any(entry == ENTRY_POINT for entry, _ in dist_info.entries(text, group))
                    for group in PROVIDER_VARIABLES.values()
                )
    except Exception:  # e.g. an entry_points.txt that is not UTF-8
        return False
    return False


def arm(
    on_configure: Callable[[], None] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    lazy_providers: bool = False,
) -> None:
    """Configure this process with ``overrides`` when it first has something to record; idempotent.

    Later calls add what earlier ones lacked: the first ``overrides`` given are kept, each distinct
    ``on_configure`` runs once right after the deferred configure, and ``lazy_providers`` (the
    parent's :func:`providers_entry_points`) sets the API's variables. Does nothing in a process
    already configured or with telemetry disabled. Never raises: a worker must start regardless.
    """
    try:
        with _lock:
            if _configured() or (overrides is not None and overrides.get("enabled") is False):
                return
            _state.armed = True
            if overrides is not None and _state.overrides is None:
                _state.overrides = dict(overrides)
            if on_configure is not None and on_configure not in _state.callbacks:
                _state.callbacks.append(on_configure)
            if lazy_providers:
                _set_provider_variables()
            _sync_logging_hook()
    except Exception:
        _log_exception("modeltel: could not defer configuring this worker")


def configure_now() -> Handle:
    """Configure modeltel (with the armed settings, if any) and return the handle."""
    _busy.active = True
    try:
        with _lock:
            _remove_tripwires()  # before any import: the SDK's could trip them again
        from modeltel._internal.providers import configure

        return configure()
    finally:
        _busy.active = False


def disarm() -> dict[str, Any]:
    """Remove every tripwire and return the armed settings (empty when not armed).

    Called by ``providers.configure`` under its lock, however configuring was reached; the
    ``on_configure`` callbacks wait for :func:`run_callbacks`, after that lock is released.
    """
    with _lock:
        if not _state.armed:
            return {}
        _remove_tripwires()
        _state.armed = False
        _state.pending, _state.callbacks = _state.callbacks, []
        return dict(_state.overrides or {})


def run_callbacks() -> None:
    """Run the ``on_configure`` callbacks :func:`disarm` set aside, once each; never raises."""
    with _lock:
        pending, _state.pending = _state.pending, []
    for callback in pending:
        try:
            callback()
        except Exception:
            _log_exception(f"modeltel: on_configure {callback!r} failed")


def _configured() -> bool:
    providers = sys.modules.get("modeltel._internal.providers")
    return providers is not None and providers.current() is not None


# --- the API's lazy providers: entry points named "modeltel" -----------------------------------


def tracer_provider() -> Any:
    """Entry point ``opentelemetry_tracer_provider:modeltel``: configure, then the tracer provider."""
    from opentelemetry import trace

    return configure_now().tracer_provider or trace.NoOpTracerProvider()


def meter_provider() -> Any:
    """Entry point ``opentelemetry_meter_provider:modeltel``: configure, then the meter provider."""
    from opentelemetry import metrics

    return configure_now().meter_provider or metrics.NoOpMeterProvider()


def logger_provider() -> Any:
    """Entry point ``opentelemetry_logger_provider:modeltel``: configure, then the logger provider."""
    from opentelemetry import _logs

    return configure_now().logger_provider or _logs.NoOpLoggerProvider()


def _set_provider_variables() -> None:
    for name in PROVIDER_VARIABLES:
        if name in os.environ or name in _state.variables:
            continue  # the app's own choice of provider wins
        os.environ[name] = ENTRY_POINT
        os.unsetenv(name)  # os.environ keeps it for the API; children never see it
        _state.variables.append(name)


# --- logging ------------------------------------------------------------------------------------


def _log_exception(message: str) -> None:
    import logging  # on a failure path only: a worker that never logs does not import logging

    logging.getLogger(__name__).exception(message)


def _sync_logging_hook() -> None:
    """Set the logging tripwire, once ``logging`` is imported: a worker that never logs does not
    import it (5-7 ms of its start)."""
    overrides = _state.overrides
    if overrides is not None and not overrides.get("logs_exporters"):
        _restore_logging()  # nothing would export the record
        return
    level = None if overrides is None else overrides.get("log_level")
    _state.log_threshold = level if isinstance(level, int) else None
    if "logging" not in sys.modules:
        on_import.when_imported("logging", _logging_imported)
        return
    import logging

    if _state.original_call_handlers is None:
        if not _call_handlers.__code__.co_filename.endswith("<modeltel bridge>"):
            as_logging_frames(_call_handlers)  # a failing app handler prints what it printed without
        _state.original_call_handlers = logging.Logger.callHandlers
        logging.Logger.callHandlers = _call_handlers  # type: ignore[method-assign]


def _logging_imported(_: ModuleType) -> None:
    with _lock:
        if _state.armed:
            _sync_logging_hook()


def _restore_logging() -> None:
    on_import.cancel("logging", _logging_imported)
    original = _state.original_call_handlers
    if original is None:
        return
    import logging

    if logging.Logger.__dict__.get("callHandlers") is _call_handlers:
        logging.Logger.callHandlers = original  # type: ignore[method-assign, assignment]
        _state.original_call_handlers = None
    # else another wrapper sits on top of the hook: the hook stays below it and passes records on


def _remove_tripwires() -> None:
    for name in _state.variables:
        os.environ.pop(name, None)
    _state.variables.clear()
    _restore_logging()


def _tripping(record: logging.LogRecord) -> bool:
    if not _state.armed or getattr(_busy, "active", False):
        return False
    if record.name.split(".", 1)[0] in _OWN_LOGGERS:
        return False
    threshold = _state.log_threshold
    return threshold is None or record.levelno >= threshold


def _call_handlers(self: logging.Logger, record: logging.LogRecord) -> None:
    import logging

    original = _state.original_call_handlers
    if original is None:  # removed while this record was on its way in
        logging.Logger.callHandlers(self, record)
        return
    if not _tripping(record):
        original(self, record)
        return
    try:
        configure_now()
    except Exception:  # configure() logs its own failures; this is the last resort
        original(self, record)
        return
    if _state.original_call_handlers is None:  # restored: the bridge, if any, sits on the original
        logging.Logger.callHandlers(self, record)
    else:
        original(self, record)
