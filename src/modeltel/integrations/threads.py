"""Context follows work into threads: ``threading.Thread``, ``threading.Timer``, ``ThreadPoolExecutor``.

:func:`modeltel.configure` turns this on. The current context is captured when a thread is started
or a task is submitted, and attached where the work runs, so spans opened there are children of
the span that started or submitted the work. That is also how Optuna trials run with
``n_jobs > 1`` (a ``ThreadPoolExecutor`` inside ``study.optimize``) stay in the study's trace
instead of becoming orphan roots.

Hand-written rather than ``opentelemetry-instrumentation-threading``'s ``ThreadingInstrumentor``
because importing that library (``BaseInstrumentor``, wrapt, packaging, importlib.metadata) costs
about 70-95 ms once the SDK is loaded, one of the two largest parts of ``configure()``; this module
needs only the ``opentelemetry.context`` API the SDK has already imported. The library does the
same three things (capture in ``Thread.start``, attach around the thread's run, wrap the callable
in ``ThreadPoolExecutor.submit``; ``map`` goes through ``submit``) and stays the oracle the tests
compare parentage against. One difference on purpose: the context is attached around
``Thread._bootstrap_inner``, the method that calls ``run()``, instead of around ``Thread.run``, so a
subclass that overrides ``run()`` gets the context too (the library leaves it a new trace).

If the library was turned on first, :func:`install` stays off. If it is turned on after this, both
capture the same context at the same call and attach it twice, nested, which changes no parent.

Listing ``threading`` (or ``*``) in ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` keeps it off.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from opentelemetry import context

from modeltel._internal.config import disabled_instrumentations

__all__ = ["install", "uninstall"]

_R = TypeVar("_R")
_CONTEXT = "_modeltel_context"  # where Thread.start leaves the context for the new thread
_MISSING = object()

_lock = threading.Lock()
# Ours are active; read by every patch on every call, so an uninstalled patch that someone else
# wrapped (and that therefore cannot be taken out) passes straight through.
_active = False
# (class, attribute, what the class's own __dict__ held before, our replacement)
_patches: list[tuple[type, str, object, object]] = []
_logger = logging.getLogger(__name__)


def install() -> bool:
    """Patch threads and thread pools unless disabled or already done; True when this call did."""
    global _active
    disabled = disabled_instrumentations()
    if "threading" in disabled or "*" in disabled or _library_on():
        return False
    with _lock:
        if _patches:
            return False
        bootstrap = getattr(threading.Thread, "_bootstrap_inner", None)
        if bootstrap is None:
            _logger.warning(
                "modeltel: this Python's threading lacks Thread._bootstrap_inner; threads start new traces"
            )
            return False
        replacements = (
            (threading.Thread, "start", _start(threading.Thread.start)),
            (threading.Thread, "_bootstrap_inner", _bootstrap_inner(bootstrap)),
            (ThreadPoolExecutor, "submit", _submit(ThreadPoolExecutor.submit)),
        )
        for owner, name, ours in replacements:
            _patches.append((owner, name, vars(owner).get(name, _MISSING), ours))
            setattr(owner, name, ours)
        _active = True
    return True


def uninstall() -> None:
    """Undo :func:`install`: each class gets back exactly what it held.

    A patch someone wrapped after us (the library's ``ThreadingInstrumentor``, say) stays, as
    taking it out would take their wrapper out too; it passes straight through from now on.
    """
    global _active
    with _lock:
        _active = False
        for owner, name, original, ours in reversed(_patches):
            if vars(owner).get(name) is not ours:
                _logger.debug(
                    "modeltel: %s.%s was wrapped again after us; ours now passes through", owner, name
                )
            elif original is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        _patches.clear()


def _library_on() -> bool:
    """Whether ``opentelemetry-instrumentation-threading`` is instrumenting (never imports it)."""
    module = sys.modules.get("opentelemetry.instrumentation.threading")
    instrumentor = getattr(module, "ThreadingInstrumentor", None)
    return instrumentor is not None and bool(instrumentor().is_instrumented_by_opentelemetry)


def _start(original: Callable[[threading.Thread], None]) -> Callable[[threading.Thread], None]:
    @functools.wraps(original)
    def start(self: threading.Thread) -> None:
        if _active:
            setattr(self, _CONTEXT, context.get_current())
        original(self)

    return start


def _bootstrap_inner(original: Callable[[threading.Thread], None]) -> Callable[[threading.Thread], None]:
    @functools.wraps(original)
    def bootstrap_inner(self: threading.Thread) -> None:
        # Popped, not read: a finished Thread object kept around must not keep its spans alive.
        captured: context.Context | None = vars(self).pop(_CONTEXT, None)
        if captured is None:
            original(self)
            return
        token = context.attach(captured)
        try:
            original(self)
        finally:
            context.detach(token)

    return bootstrap_inner


def _submit(original: Callable[..., Future[Any]]) -> Callable[..., Future[Any]]:
    @functools.wraps(original)
    def submit(self: ThreadPoolExecutor, fn: Callable[..., _R], /, *args: Any, **kwargs: Any) -> Future[_R]:
        if not _active:
            return original(self, fn, *args, **kwargs)
        captured = context.get_current()

        def in_context(*call_args: Any, **call_kwargs: Any) -> _R:
            token = context.attach(captured)
            try:
                return fn(*call_args, **call_kwargs)
            finally:
                context.detach(token)

        return original(self, in_context, *args, **kwargs)

    return submit
