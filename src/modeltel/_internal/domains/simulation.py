"""Simulation scopes: a job (a sweep), its runs, their phases, cache lookups and numeric results."""

from __future__ import annotations

from typing import cast

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from modeltel._internal import semconv as sc
from modeltel._internal.domains import _runtime
from modeltel._internal.domains._runtime import Runtime
from modeltel._internal.domains._scope import NOOP, Scope, attribute_value, prefixed, text


class SimulationJob(Scope):
    """Span ``simulation.job``: one sweep or batch of runs. Its end writes a job summary line."""

    __slots__ = ("_attrs",)
    _span_name = sc.SPAN_SIMULATION_JOB

    def __init__(self, rt: Runtime | None, attrs: dict[str, AttributeValue]) -> None:
        super().__init__(rt)
        self._attrs = attrs

    def _attributes(self) -> dict[str, AttributeValue]:
        return self._attrs

    def record(self, **numbers: float) -> None:
        """Numeric results of the whole job, as ``modeltel.simulation.<key>`` span attributes."""
        self._record_numbers(sc.SIMULATION_PREFIX, numbers)


class SimulationRun(Scope):
    """Span ``simulation.run``: one run of one model with one parameter set and seed.

    Metrics: ``modeltel.simulation.run.duration`` by model and status, and
    ``modeltel.simulation.cache.requests`` by model and hit. Never param_id or seed on a metric: a
    sweep of 10,000 runs makes one series per model and status, not 10,000.
    """

    __slots__ = ("_attrs", "_model")
    _span_name = sc.SPAN_SIMULATION_RUN

    def __init__(self, rt: Runtime | None, model: str, attrs: dict[str, AttributeValue]) -> None:
        super().__init__(rt)
        self._model = model
        self._attrs = attrs

    def _attributes(self) -> dict[str, AttributeValue]:
        return self._attrs

    def _begin(self, rt: Runtime) -> Span:
        return rt.tracer.start_span(sc.SPAN_SIMULATION_RUN, attributes=self._attrs)

    def _end(self, rt: Runtime, span: Span, seconds: float, exc: BaseException | None) -> None:
        status = sc.STATUS_OK if exc is None else sc.STATUS_ERROR
        rt.inst.sim_run_duration.record(
            seconds, {sc.SIMULATION_MODEL: self._model, sc.SIMULATION_STATUS: status}
        )

    def cache(self, hit: bool) -> None:
        """Record a result-cache lookup: span attribute plus the cache-requests counter."""
        span, rt = self._span, self._rt
        if span is None or rt is None:
            return
        hit = bool(hit)
        span.set_attribute(sc.SIMULATION_CACHE_HIT, hit)
        rt.inst.sim_cache_requests.add(1, {sc.SIMULATION_MODEL: self._model, sc.SIMULATION_CACHE_HIT: hit})

    def phase(self, name: str) -> SimulationPhase:
        """A span ``simulation.phase`` named by ``modeltel.simulation.phase``, under this run.

        Phases nest (a phase opened inside another is its child); opened on a thread that did not
        inherit the run's context, a phase is still the run's child.
        """
        span = self._span
        if span is None:
            return cast(SimulationPhase, NOOP)
        current = trace.get_current_span().get_span_context()
        same_trace = current.is_valid and current.trace_id == span.get_span_context().trace_id
        return SimulationPhase(self._rt, name, None if same_trace else self._context())

    def record(self, **numbers: float) -> None:
        """Numeric results (``steps=10_000, final_infected=0.31``) as span attributes, not metrics."""
        self._record_numbers(sc.SIMULATION_PREFIX, numbers)


class SimulationPhase(Scope):
    """Span ``simulation.phase``: a named part of a run (bundle resolution, integration, I/O)."""

    __slots__ = ("_name", "_parent_context")
    _span_name = sc.SPAN_SIMULATION_PHASE

    def __init__(self, rt: Runtime | None, name: str, parent: Context | None) -> None:
        super().__init__(rt)
        self._name = text("name", name)
        self._parent_context = parent

    def _parent(self) -> Context | None:
        return self._parent_context

    def _attributes(self) -> dict[str, AttributeValue]:
        return {sc.SIMULATION_PHASE: self._name}

    def record(self, **numbers: float) -> None:
        """Numeric facts about the phase as ``modeltel.simulation.<key>`` span attributes."""
        self._record_numbers(sc.SIMULATION_PREFIX, numbers)


_NOOP_JOB = cast(SimulationJob, NOOP)
_NOOP_RUN = cast(SimulationRun, NOOP)


def job(name: str, n_tasks: int | None = None, **attrs: object) -> SimulationJob:
    """Open a ``simulation.job`` span (context manager or decorator).

    ``attrs`` become ``modeltel.simulation.<key>`` attributes; a value that is not a str, bool, int,
    float or list of one of them is a ValueError naming the key.
    """
    rt = _runtime.active
    if rt is not None and not rt.enabled:
        return _NOOP_JOB
    values: dict[str, AttributeValue] = {sc.SIMULATION_JOB_NAME: text("name", name)}
    if n_tasks is not None:
        values[sc.SIMULATION_N_TASKS] = attribute_value("n_tasks", n_tasks)
    prefixed(sc.SIMULATION_PREFIX, attrs, values)
    return SimulationJob(rt, values)


def run(model: str, param_id: str | None = None, seed: int | None = None, **attrs: object) -> SimulationRun:
    """Open a ``simulation.run`` span (context manager or decorator); see :class:`SimulationRun`."""
    rt = _runtime.active
    if rt is not None and not rt.enabled:
        return _NOOP_RUN
    model = text("model", model)
    values: dict[str, AttributeValue] = {sc.SIMULATION_MODEL: model}
    if param_id is not None:
        values[sc.SIMULATION_PARAM_ID] = (
            param_id if type(param_id) is str else attribute_value("param_id", param_id)
        )
    if seed is not None:
        values[sc.SIMULATION_SEED] = seed if type(seed) is int else attribute_value("seed", seed)
    if attrs:
        prefixed(sc.SIMULATION_PREFIX, attrs, values)
    return SimulationRun(rt, model, values)
