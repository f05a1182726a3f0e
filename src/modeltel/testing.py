"""Test helpers: capture in memory the spans and metric points modeltel's domain calls produce.

::

    from modeltel import simulation
    from modeltel.testing import capture

    def test_sweep() -> None:
        with capture() as cap:
            with simulation.run(model="sir", seed=7) as run:
                run.record(steps=100)
        assert cap.span("simulation.run").attributes["modeltel.simulation.steps"] == 100
        assert cap.points("modeltel.simulation.run.duration")[0].count == 1

or, with pytest (this module is registered as a pytest plugin), the ``modeltel_capture`` fixture.

The capture builds its own SDK providers (an ``InMemorySpanExporter`` behind a
``SimpleSpanProcessor`` and an ``InMemoryMetricReader``) and points the domain layer at them for the
duration of the ``with``: the global providers can be set only once per process, a capture can be
opened any number of times. Domain calls from any thread go to the open capture. Spans you create
with your own ``trace.get_tracer(...)`` still go to the global provider.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from modeltel._internal.domains import _runtime

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import (
        ExponentialHistogramDataPoint,
        HistogramDataPoint,
        Metric,
        NumberDataPoint,
    )
    from opentelemetry.sdk.trace import ReadableSpan

    from modeltel._internal.domains.hardware import GpuProbe

__all__ = ["Capture", "capture"]


class Capture:
    """What domain calls emitted while this capture was open. Use :func:`capture` to make one."""

    def __init__(self, *, capture_content: bool = False, gpu: GpuProbe | None = None) -> None:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        resource = Resource.create({"service.name": "modeltel-test"})
        self.exporter = InMemorySpanExporter()
        self.reader = InMemoryMetricReader()
        self.tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.meter_provider = MeterProvider(
            resource=resource, metric_readers=[self.reader], shutdown_on_exit=False
        )
        self.runtime = _runtime.runtime_for(
            self.tracer_provider, self.meter_provider, capture_content=capture_content, gpu=gpu
        )
        self._previous: _runtime.Runtime | None = None
        self._open = False

    def __enter__(self) -> Capture:
        self._previous = _runtime.install(self.runtime)
        self._open = True
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._open:
            self._open = False
            _runtime.restore(self._previous)

    # --- spans ---------------------------------------------------------------------------------------
    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        """Finished spans in the order they ended, optionally only those called ``name``."""
        found = list(self.exporter.get_finished_spans())
        return found if name is None else [s for s in found if s.name == name]

    def span_names(self) -> list[str]:
        """Names of the finished spans, in the order they ended."""
        return [s.name for s in self.exporter.get_finished_spans()]

    def span(self, name: str) -> ReadableSpan:
        """The one finished span called ``name``; an AssertionError (listing what exists) otherwise."""
        found = self.spans(name)
        if len(found) != 1:
            raise AssertionError(
                f"expected one {name!r} span, found {len(found)}; spans: {self.span_names()}"
            )
        return found[0]

    def children(self, parent: ReadableSpan, name: str | None = None) -> list[ReadableSpan]:
        """Finished spans whose parent is ``parent``, optionally only those called ``name``."""
        parent_id = parent.context.span_id if parent.context is not None else None
        return [s for s in self.spans(name) if s.parent is not None and s.parent.span_id == parent_id]

    # --- metrics -------------------------------------------------------------------------------------
    def metrics(self) -> dict[str, Metric]:
        """Every metric collected now (cumulative since the capture opened), by instrument name."""
        data = self.reader.get_metrics_data()
        found: dict[str, Metric] = {}
        if data is None:
            return found
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    found[metric.name] = metric
        return found

    def points(
        self, name: str, **attributes: Any
    ) -> list[NumberDataPoint | HistogramDataPoint | ExponentialHistogramDataPoint]:
        """Data points of the instrument ``name`` whose attributes include ``attributes``.

        Attribute keys with dots cannot be keyword names: pass them as ``**{"a.b": value}``.
        """
        metric = self.metrics().get(name)
        if metric is None:
            return []
        return [
            p
            for p in metric.data.data_points
            if all((p.attributes or {}).get(k) == v for k, v in attributes.items())
        ]

    def histogram(self, name: str, **attributes: Any) -> HistogramDataPoint:
        """The one histogram point of ``name`` matching ``attributes``; AssertionError otherwise."""
        from opentelemetry.sdk.metrics.export import HistogramDataPoint

        found = self.points(name, **attributes)
        if len(found) != 1 or not isinstance(found[0], HistogramDataPoint):
            raise AssertionError(f"expected one histogram point of {name!r} with {attributes}, found {found}")
        return found[0]

    def value(self, name: str, **attributes: Any) -> float:
        """The value of the one counter or gauge point of ``name`` matching ``attributes``."""
        from opentelemetry.sdk.metrics.export import NumberDataPoint

        found = self.points(name, **attributes)
        if len(found) != 1 or not isinstance(found[0], NumberDataPoint):
            raise AssertionError(f"expected one point of {name!r} with {attributes}, found {found}")
        return found[0].value

    def clear(self) -> None:
        """Forget the spans captured so far (metric points are cumulative and stay)."""
        self.exporter.clear()


def capture(*, capture_content: bool = False, gpu: GpuProbe | None = None) -> Capture:
    """A new in-memory capture; use it as a context manager (``with capture() as cap:``).

    ``capture_content`` plays ``MODELTEL_CAPTURE_CONTENT`` for the captured calls.
    """
    return Capture(capture_content=capture_content, gpu=gpu)


try:
    import pytest
except ImportError:  # pragma: no cover - the fixture only exists where pytest does
    pass
else:

    @pytest.fixture
    def modeltel_capture() -> Iterator[Capture]:
        """An open :class:`Capture` for the duration of one test."""
        with capture() as cap:
            yield cap
