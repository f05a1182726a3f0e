"""Subprocesses join the trace through the environment (``TRACEPARENT``, ``TRACESTATE``, ``BAGGAGE``);
``os.exec*`` flushes first.

While :func:`install` is active, every ``subprocess.Popen`` (and so ``subprocess.run``,
``check_output``, asyncio's subprocesses) created while a span is current gets that span's context
in its environment, following OpenTelemetry's environment-variable carrier. A child that calls
:func:`modeltel.configure` (or runs under ``modeltel run``) attaches it as its starting context, so
its top-level spans are children of the span that launched it, in the same trace. The child also
gets ``MODELTEL_RUN_ID`` when it has none, so its files group with this run.

An explicit ``env=`` that already holds ``TRACEPARENT`` is left exactly as given: the caller chose.
Without a current span nothing is changed. Non-Python children simply inherit three more variables.
``os.system`` and ``os.posix_spawn`` are not patched.

``os.exec*`` replaces the process without running ``atexit``, so every span and metric it had
finished would be lost: while installed, ``os.execv`` and ``os.execve`` (which every ``os.exec*``
variant ends in) flush first, within :data:`EXEC_FLUSH_TIMEOUT_MS`.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import subprocess
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from modeltel._internal.config import child_environment
from modeltel._internal.propagation import capture

if TYPE_CHECKING:
    from modeltel._internal.providers import Handle

__all__ = ["install", "uninstall"]

EXEC_FLUSH_TIMEOUT_MS = 5_000
"""How long an ``os.exec*`` may wait for the flush before the new program replaces this one."""

_lock = threading.Lock()
_original_init: Callable[..., None] | None = None
_original_exec: dict[str, Callable[..., Any]] = {}


def _environment_for_child(env: Any, run_id: str) -> Any:
    """The ``env`` argument to pass on: unchanged, or a copy carrying the current span's context."""
    if env is not None and "TRACEPARENT" in env:
        return env
    if not trace.get_current_span().get_span_context().is_valid:
        return env
    carrier = capture()
    if not carrier:
        return env
    return child_environment(carrier, run_id, base=env)


def install(handle: Handle) -> None:
    """Patch ``subprocess.Popen.__init__``; a second call does nothing."""
    global _original_init
    with _lock:
        if _original_init is not None:
            return
        original = subprocess.Popen.__init__
        signature = inspect.signature(original)
        run_id = handle.settings.run_id

        def __init__(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
            try:
                bound = signature.bind(self, *args, **kwargs)
            except TypeError:
                return original(self, *args, **kwargs)  # let Popen raise its own error
            env = bound.arguments.get("env")
            child_env = _environment_for_child(env, run_id)
            if child_env is env:
                return original(self, *args, **kwargs)
            bound.arguments["env"] = child_env
            return original(*bound.args, **bound.kwargs)

        __init__.__wrapped__ = original  # type: ignore[attr-defined]
        _original_init = original
        subprocess.Popen.__init__ = __init__  # type: ignore[method-assign]
        for name in ("execv", "execve"):
            _original_exec[name] = getattr(os, name)
            setattr(os, name, _flushing(_original_exec[name], handle))


def _flushing(exec_function: Callable[..., Any], handle: Handle) -> Callable[..., Any]:
    def flush_then_exec(*args: Any, **kwargs: Any) -> Any:
        with contextlib.suppress(Exception):  # telemetry never stops the exec
            handle.force_flush(EXEC_FLUSH_TIMEOUT_MS)
        return exec_function(*args, **kwargs)

    flush_then_exec.__wrapped__ = exec_function  # type: ignore[attr-defined]
    return flush_then_exec


def uninstall() -> None:
    """Restore ``subprocess.Popen.__init__``."""
    global _original_init
    with _lock:
        if _original_init is None:
            return
        subprocess.Popen.__init__ = _original_init  # type: ignore[method-assign]
        _original_init = None
        for name, function in _original_exec.items():
            setattr(os, name, function)
        _original_exec.clear()
