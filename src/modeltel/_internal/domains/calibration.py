"""Calibration scopes: a job of ask → evaluate → tell iterations that tracks the best loss so far.

The job numbers its iterations, keeps the best loss and the iterations that improved it, and puts
the trajectory on its own span when it ends, where the JSONL pipeline's job summary picks it up.
Loss statistics are vectorised with numpy; NaN or infinite losses are odd data, not a caller error:
they are counted in a ``modeltel.warning`` attribute and left out of min/best.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable
from typing import Literal, cast

import numpy as np
from opentelemetry.context import Context
from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from modeltel._internal import semconv as sc
from modeltel._internal.domains import _runtime
from modeltel._internal.domains._runtime import Runtime
from modeltel._internal.domains._scope import NOOP, Scope, attribute_value, prefixed, text, whole

Direction = Literal["minimize", "maximize"]

TRAJECTORY_MAX_POINTS = 256
"""The job span keeps the first improvements and always the latest one: bounded, start and end kept."""

HISTOGRAM_SAMPLE_MAX = 1024
"""At most this many values per call go into a histogram (evenly spaced); exact statistics are on
the span. Recording a million values one by one through the metrics API would take seconds."""


def histogram_sample(values: np.ndarray) -> list[float]:
    """``values`` if short, else :data:`HISTOGRAM_SAMPLE_MAX` evenly spaced ones, as Python floats."""
    if values.size > HISTOGRAM_SAMPLE_MAX:
        values = values[np.linspace(0, values.size - 1, HISTOGRAM_SAMPLE_MAX).astype(np.intp)]
    return cast(list[float], values.tolist())


def loss_array(losses: object) -> np.ndarray:
    """Losses as a 1-D float array, or a ValueError naming ``losses``."""
    try:
        array = np.asarray(losses, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"losses: expected numbers, got {type(losses).__name__} ({exc})") from None
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1:
        raise ValueError(f"losses: expected a scalar or a 1-D array, got shape {array.shape}")
    if array.size == 0:
        raise ValueError("losses: empty; tell at least one loss")
    return array


class CalibrationJob(Scope):
    """Span ``calibration.job``: the whole fit. Tracks best loss so far, thread-safe."""

    __slots__ = (
        "_algorithm",
        "_attrs",
        "_best",
        "_best_iteration",
        "_counter",
        "_direction",
        "_iterations",
        "_lock",
        "_metric_attrs",
        "_trajectory",
    )
    _span_name = sc.SPAN_CALIBRATION_JOB

    def __init__(
        self,
        rt: Runtime | None,
        name: str,
        algorithm: str | None,
        direction: Direction,
        attrs: dict[str, AttributeValue],
    ) -> None:
        super().__init__(rt)
        self._algorithm = algorithm
        self._direction = direction
        self._attrs = attrs
        self._metric_attrs: dict[str, AttributeValue] = {sc.CALIBRATION_JOB_NAME: name}
        if algorithm is not None:
            self._metric_attrs[sc.CALIBRATION_ALGORITHM] = algorithm

    def _attributes(self) -> dict[str, AttributeValue]:
        return self._attrs

    def _begin(self, rt: Runtime) -> Span:
        # Per-entry state lives here, not in __init__, so each call of a decorated function is fresh.
        self._counter = itertools.count()
        self._lock = threading.Lock()
        self._best: float | None = None
        self._best_iteration: int | None = None
        self._iterations = 0
        self._trajectory: list[tuple[int, float]] = []
        return super()._begin(rt)

    def _end(self, rt: Runtime, span: Span, seconds: float, exc: BaseException | None) -> None:
        with self._lock:
            values: dict[str, AttributeValue] = {sc.CALIBRATION_ITERATIONS: self._iterations}
            if self._best is not None and self._best_iteration is not None:
                values[sc.CALIBRATION_BEST_LOSS] = self._best
                values[sc.CALIBRATION_ITERATIONS_TO_BEST] = self._best_iteration + 1
                values[sc.CALIBRATION_TRAJECTORY_ITERATION] = tuple(i for i, _ in self._trajectory)
                values[sc.CALIBRATION_TRAJECTORY_BEST_LOSS] = tuple(b for _, b in self._trajectory)
        span.set_attributes(values)

    @property
    def best_loss(self) -> float | None:
        """Best loss so far (lowest, or highest for ``direction="maximize"``), None before any."""
        return self._best if self._span is not None else None

    @property
    def iterations(self) -> int:
        """Iterations finished so far."""
        return self._iterations if self._span is not None else 0

    def iteration(self, number: int | None = None) -> CalibrationIteration:
        """A child span ``calibration.iteration``, numbered 0, 1, 2, … unless ``number`` is given."""
        if self._span is None:
            return cast(CalibrationIteration, NOOP)
        chosen = next(self._counter) if number is None else whole("number", number)
        return CalibrationIteration(self._rt, self, chosen)

    def observe(self, iteration: int, loss: float) -> tuple[float, bool]:
        """Fold an iteration's best loss into the job: returns (best so far, whether it improved)."""
        with self._lock:
            best = self._best
            improved = best is None or (loss > best if self._direction == "maximize" else loss < best)
            if improved:
                self._best, self._best_iteration = loss, iteration
                trajectory = self._trajectory
                if len(trajectory) >= TRAJECTORY_MAX_POINTS:
                    trajectory.pop()
                trajectory.append((iteration, loss))
                best = loss
            assert best is not None
        return best, improved

    def _iteration_done(self) -> None:
        with self._lock:
            self._iterations += 1

    def _better(self, a: float, b: float) -> float:
        return max(a, b) if self._direction == "maximize" else min(a, b)


class CalibrationIteration(Scope):
    """Span ``calibration.iteration``: carries its number, n_params, min loss, best so far, improved."""

    __slots__ = ("_best", "_improved", "_job", "_min", "_n_losses", "_n_params", "_number")
    _span_name = sc.SPAN_CALIBRATION_ITERATION

    def __init__(self, rt: Runtime | None, job: CalibrationJob, number: int) -> None:
        super().__init__(rt)
        self._job = job
        self._number = number

    def _parent(self) -> Context | None:
        return self._job._context()

    def _attributes(self) -> dict[str, AttributeValue]:
        return {sc.CALIBRATION_ITERATION: self._number}

    def _begin(self, rt: Runtime) -> Span:
        self._n_params: int | None = None
        self._min: float | None = None
        self._best: float | None = self._job._best
        self._improved = False
        self._n_losses = 0
        return super()._begin(rt)

    def _end(self, rt: Runtime, span: Span, seconds: float, exc: BaseException | None) -> None:
        job = self._job
        job._iteration_done()
        values: dict[str, AttributeValue] = {sc.CALIBRATION_IMPROVED: self._improved}
        if self._n_params is not None:
            values[sc.CALIBRATION_N_PARAMS] = self._n_params
        if self._n_losses:
            values[sc.CALIBRATION_N_LOSSES] = self._n_losses
        if self._min is not None:
            values[sc.CALIBRATION_MIN_LOSS] = self._min
        best = job._best if job._best is not None else self._best
        if best is not None:
            values[sc.CALIBRATION_BEST_LOSS] = best
            rt.inst.cal_best_loss.set(best, job._metric_attrs)
        span.set_attributes(values)
        status = sc.STATUS_OK if exc is None else sc.STATUS_ERROR
        attrs = dict(job._metric_attrs)
        attrs[sc.CALIBRATION_STATUS] = status
        rt.inst.cal_iteration_duration.record(seconds, attrs)

    @property
    def number(self) -> int:
        return self._number

    @property
    def best_loss(self) -> float | None:
        return self._best

    def ask(self) -> CalibrationPhase:
        """Child span ``calibration.ask``: propose parameters; ``a.record(n_params=...)``."""
        return self._phase(sc.SPAN_CALIBRATION_ASK, {})

    def evaluate(self, n: int | None = None) -> CalibrationPhase:
        """Child span ``calibration.evaluate`` over ``n`` evaluations (simulations, batches, …)."""
        attrs: dict[str, AttributeValue] = {}
        if n is not None:
            attrs[sc.CALIBRATION_N_EVALUATIONS] = whole("n", n)
        return self._phase(sc.SPAN_CALIBRATION_EVALUATE, attrs)

    def tell(self) -> CalibrationPhase:
        """Child span ``calibration.tell``: report losses with ``t.losses(array)``."""
        return self._phase(sc.SPAN_CALIBRATION_TELL, {})

    def _phase(self, name: str, attrs: dict[str, AttributeValue]) -> CalibrationPhase:
        if self._span is None:
            return cast(CalibrationPhase, NOOP)
        return CalibrationPhase(self._rt, self, name, attrs)

    def record(self, **numbers: float) -> None:
        """Numeric facts about the iteration as ``modeltel.calibration.<key>`` attributes."""
        self._take_n_params(numbers)
        self._record_numbers(sc.CALIBRATION_PREFIX, numbers)

    def _take_n_params(self, numbers: dict[str, float]) -> None:
        if "n_params" in numbers:
            self._n_params = whole("n_params", numbers["n_params"])

    def losses(self, losses: Iterable[float] | np.ndarray | float) -> float | None:
        """Fold a batch of losses into the iteration and the job; returns the batch's best.

        A ValueError (naming ``losses``) for non-numeric, empty or multi-dimensional input; NaN and
        infinite values are left out and counted in a warning. Returns None if no value was finite.
        """
        array = loss_array(losses)
        finite = array[np.isfinite(array)]
        bad = array.size - finite.size
        self._n_losses += array.size
        if bad:
            self._warn(f"losses: {bad} of {array.size} values are NaN or infinite")
        if finite.size == 0 or self._span is None:
            return None
        rt = cast(Runtime, self._rt)
        job = self._job
        batch_best = float(finite.max() if job._direction == "maximize" else finite.min())
        self._min = batch_best if self._min is None else job._better(self._min, batch_best)
        self._best, improved = job.observe(self._number, batch_best)
        self._improved = self._improved or improved
        record, attrs = rt.inst.cal_loss.record, job._metric_attrs
        for value in histogram_sample(finite):
            record(value, attrs)
        return batch_best


class CalibrationPhase(Scope):
    """Spans ``calibration.ask`` / ``.evaluate`` / ``.tell``: where an iteration's time goes."""

    __slots__ = ("_attrs", "_iteration", "_name")

    def __init__(
        self, rt: Runtime | None, iteration: CalibrationIteration, name: str, attrs: dict[str, AttributeValue]
    ) -> None:
        super().__init__(rt)
        self._iteration = iteration
        self._name = name
        self._attrs = attrs

    def _begin(self, rt: Runtime) -> Span:
        return rt.tracer.start_span(self._name, self._iteration._context(), attributes=self._attrs)

    def record(self, **numbers: float) -> None:
        """Numeric facts as ``modeltel.calibration.<key>``; ``n_params`` also goes on the iteration."""
        self._iteration._take_n_params(numbers)
        self._record_numbers(sc.CALIBRATION_PREFIX, numbers)

    def losses(self, losses: Iterable[float] | np.ndarray | float) -> float | None:
        """Tell losses (see :meth:`CalibrationIteration.losses`); min and best also go on this span."""
        best = self._iteration.losses(losses)
        span, iteration = self._span, self._iteration
        if span is not None:
            values: dict[str, AttributeValue] = {sc.CALIBRATION_N_LOSSES: iteration._n_losses}
            if iteration._min is not None:
                values[sc.CALIBRATION_MIN_LOSS] = iteration._min
            if iteration._best is not None:
                values[sc.CALIBRATION_BEST_LOSS] = iteration._best
            span.set_attributes(values)
            for message in iteration._warnings or ():
                self._warn(message)
        return best


_NOOP_JOB = cast(CalibrationJob, NOOP)


def job(
    name: str,
    algorithm: str | None = None,
    max_iterations: int | None = None,
    direction: Direction = "minimize",
    **attrs: object,
) -> CalibrationJob:
    """Open a ``calibration.job`` span (context manager or decorator).

    ``direction="maximize"`` makes "best" the highest value (scores instead of losses). ``attrs``
    become ``modeltel.calibration.<key>`` attributes.
    """
    rt = _runtime.active
    if rt is not None and not rt.enabled:
        return _NOOP_JOB
    if direction not in ("minimize", "maximize"):
        raise ValueError(f"direction={direction!r}: expected 'minimize' or 'maximize'")
    name = text("name", name)
    algorithm = None if algorithm is None else text("algorithm", algorithm)
    values: dict[str, AttributeValue] = {
        sc.CALIBRATION_JOB_NAME: name,
        sc.CALIBRATION_DIRECTION: direction,
    }
    if algorithm is not None:
        values[sc.CALIBRATION_ALGORITHM] = algorithm
    if max_iterations is not None:
        values[sc.CALIBRATION_MAX_ITERATIONS] = attribute_value("max_iterations", max_iterations)
    prefixed(sc.CALIBRATION_PREFIX, attrs, values)
    return CalibrationJob(rt, name, algorithm, direction, values)
