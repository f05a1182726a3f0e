"""Entry points that make ``opentelemetry-instrument`` (and ``modeltel run``) use modeltel.

``opentelemetry_distro`` → :class:`ModeltelDistro`, ``opentelemetry_configurator`` →
:class:`ModeltelConfigurator`. The configurator is the same :func:`modeltel.configure` an
application can call itself, so auto-instrumented and hand-instrumented programs get identical
providers, exporters and files.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]

from modeltel._internal.config import log_correlation_requested, select_modeltel_configurator

LOGGING_INSTRUMENTOR = "logging"
"""The entry point of ``opentelemetry-instrumentation-logging``'s ``LoggingInstrumentor``."""


class ModeltelDistro(BaseDistro):  # type: ignore[misc]
    """Selecting this distro also selects modeltel's configurator.

    Without that, a second installed configurator could win the race in
    ``_load_configurators`` and modeltel's settings would be silently ignored.
    """

    def _configure(self, **kwargs: Any) -> None:
        select_modeltel_configurator()

    def load_instrumentor(self, entry_point: Any, **kwargs: Any) -> None:
        """Skip an instrumentor :func:`modeltel.configure` already turned on (threading).

        The configurator runs before the instrumentors load; instrumenting twice would only print
        the SDK's "already instrumented" warning on every start.

        The ``logging`` instrumentor (a dependency: modeltel's bridge translates records with its
        handler) would attach that handler to the root logger, which changes the app's logging
        (``_internal/logs.py`` says how) and, beside modeltel's bridge, exports every record twice.
        So it is not loaded; with ``OTEL_PYTHON_LOG_CORRELATION=true`` it is, for the trace ids it
        puts on records for the app's own format, with its handler left out.
        """
        if entry_point.name == LOGGING_INSTRUMENTOR:
            if not log_correlation_requested():
                return
            kwargs["enable_log_auto_instrumentation"] = False
        instrumentor = entry_point.load()()
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(**kwargs)


class ModeltelConfigurator:
    """Builds providers through :func:`modeltel.configure` (lenient: bad vars warn, app runs).

    Not a subclass of the SDK's ``_BaseConfigurator``: the loader only calls ``configure()``, and
    importing ``opentelemetry.sdk._configuration`` imports the SDK's logs, metrics and trace
    packages whatever the configuration uses (about 50 ms of every ``modeltel run`` start for the
    logs alone). :func:`modeltel.configure` is idempotent, so the base class's singleton is not
    needed either.
    """

    def configure(self, **kwargs: Any) -> None:
        from modeltel._internal.providers import configure

        configure()
