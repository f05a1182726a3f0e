"""W3C trace context across process boundaries: carriers, and the hooks :func:`configure` installs.

Context never travels by luck (an inherited thread-local, a fork's copied memory): it is written
into a carrier with the OpenTelemetry propagation API (``traceparent``, ``tracestate``, ``baggage``,
or whatever ``OTEL_PROPAGATORS`` selects) where work is handed over, and extracted where the work
runs. The carriers:

* a small ``dict[str, str]`` pickled with the task, for multiprocessing, process pools and Dask
  (:mod:`modeltel.integrations.multiprocessing`, :mod:`modeltel.integrations.dask`);
* the environment variables ``TRACEPARENT`` / ``TRACESTATE`` / ``BAGGAGE`` for subprocesses
  (:mod:`modeltel.integrations.subprocess`): :func:`install` attaches the context they hold as the
  process's starting context, so its top-level spans are children of the launching span;
* in-process threads need no carrier: the ``Context`` object itself is handed over where a thread
  starts or a task is submitted (:mod:`modeltel.integrations.threads`).

:func:`install` runs from :func:`modeltel.configure` (never at import); :func:`uninstall` reverses
every patch, for tests.

``opentelemetry.propagate`` is imported by the two functions that use it, not by this module:
importing it builds the global propagator from ``OTEL_PROPAGATORS`` out of the entry points of every
installed distribution (``importlib.metadata`` and a read of each ``entry_points.txt``: 25 ms and
more, growing with the venv). A configured process needs it only once it hands work to another
process inside a span, or finds ``TRACEPARENT`` in its environment.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context

from modeltel._internal.config import context_carrier

if TYPE_CHECKING:
    from modeltel._internal.providers import Handle

__all__ = ["attach_environment_context", "capture", "extract", "install", "uninstall"]

_lock = threading.Lock()
_installed = False
_environment_token: object | None = None


def capture(ctx: Context | None = None) -> dict[str, str]:
    """The carrier for ``ctx`` (default: the current context); empty when no span is current."""
    from opentelemetry import propagate  # not at import: see the module docstring

    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=ctx)
    return carrier


def extract(carrier: Mapping[str, str]) -> Context:
    """A fresh context holding what ``carrier`` carries (an empty context for an empty carrier).

    Extracted into an empty context on purpose: work submitted with no span current must start a
    new trace in the worker, not join whatever the worker process happened to have current.
    """
    from opentelemetry import propagate  # not at import: see the module docstring

    return propagate.extract(carrier, context=Context())


def attach_environment_context() -> bool:
    """Make the environment's ``TRACEPARENT`` the calling thread's current context.

    Done once per process, and only when no span is current yet. The token is kept, never detached:
    this is where the process starts in the trace. True when a context was attached.
    """
    global _environment_token
    if _environment_token is not None:
        return False
    carrier = context_carrier()
    if "traceparent" not in carrier or trace.get_current_span().get_span_context().is_valid:
        return False
    ctx = extract(carrier)
    if not trace.get_current_span(ctx).get_span_context().is_valid:
        return False
    _environment_token = otel_context.attach(ctx)
    return True


def install(handle: Handle) -> None:
    """Turn on every propagation hook for a configured process; a second call does nothing."""
    global _installed
    from modeltel.integrations import multiprocessing, subprocess, threads

    with _lock:
        if _installed:
            return
        _installed = True
        attach_environment_context()
        threads.install()
        multiprocessing.install(handle)
        subprocess.install(handle)


def uninstall() -> None:
    """Remove every patch :func:`install` made (the environment context stays attached)."""
    global _installed
    from modeltel.integrations import multiprocessing, subprocess, threads

    with _lock:
        if not _installed:
            return
        _installed = False
        subprocess.uninstall()
        multiprocessing.uninstall()
        threads.uninstall()
