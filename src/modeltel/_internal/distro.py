"""Entry points that make ``opentelemetry-instrument`` (and ``modeltel run``) use modeltel.

``opentelemetry_distro`` → :class:`ModeltelDistro`, ``opentelemetry_configurator`` →
:class:`ModeltelConfigurator`. The configurator is the same :func:`modeltel.configure` an
application can call itself, so auto-instrumented and hand-instrumented programs get identical
providers, exporters and files.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]

from modeltel._internal.bootstrap.instrumentors import instrument_options
from modeltel._internal.config import select_modeltel_configurator


class ModeltelDistro(BaseDistro):  # type: ignore[misc]
    """Selecting this distro also selects modeltel's configurator.

    Without that, a second installed configurator could win the race in
    ``_load_configurators`` and modeltel's settings would be silently ignored.
    """

    def _configure(self, **kwargs: Any) -> None:
        select_modeltel_configurator()

    def load_instrumentor(self, entry_point: Any, **kwargs: Any) -> None:
        """modeltel's rules (:func:`instrument_options`), applied by entry-point name before loading.

        ``threading`` is skipped by name, not after loading: :func:`modeltel.configure` (run by the
        configurator before the instrumentors) carries context into threads itself, and loading
        the entry point would import ``BaseInstrumentor`` and ``wrapt`` for nothing.
        """
        options = instrument_options(entry_point.name)
        if options is None:
            return
        kwargs.update(options)
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
