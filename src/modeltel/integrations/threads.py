"""Context follows work into threads: ``threading.Thread``, ``threading.Timer``, ``ThreadPoolExecutor``.

This is OpenTelemetry's own ``opentelemetry-instrumentation-threading``, turned on by
:func:`modeltel.configure` (``modeltel run`` and ``opentelemetry-instrument`` load it as an installed
instrumentor too; whichever comes first wins and the other is skipped). It captures the current
context when a thread is started or a task is submitted and attaches it where the work runs, so
spans opened there are children of the span that started or submitted the work. That is also how
Optuna trials run with ``n_jobs > 1`` (a ``ThreadPoolExecutor`` inside ``study.optimize``) stay in
the study's trace instead of becoming orphan roots.

Listing ``threading`` in ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` keeps it off.
"""

from __future__ import annotations

import logging

from modeltel._internal.config import disabled_instrumentations

__all__ = ["install", "uninstall"]

_ours = False
_logger = logging.getLogger(__name__)


def install() -> bool:
    """Instrument threading unless disabled or already done; True when this call turned it on."""
    global _ours
    disabled = disabled_instrumentations()
    if "threading" in disabled or "*" in disabled:
        return False
    try:
        from opentelemetry.instrumentation.threading import ThreadingInstrumentor
    except ImportError:  # a dependency of modeltel; only a broken install lacks it
        _logger.warning("modeltel: opentelemetry-instrumentation-threading missing; threads start new traces")
        return False
    instrumentor = ThreadingInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        return False
    instrumentor.instrument()
    _ours = True
    return True


def uninstall() -> None:
    """Undo :func:`install` (an instrumentation someone else turned on is left alone)."""
    global _ours
    if _ours:
        from opentelemetry.instrumentation.threading import ThreadingInstrumentor

        ThreadingInstrumentor().uninstrument()
        _ours = False
