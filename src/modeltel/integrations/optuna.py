"""Optuna (``[optuna]`` extra): every trial becomes a ``calibration.iteration``.

Two ways, which may be combined (each trial is still recorded once)::

    import optuna
    from modeltel import calibration
    from modeltel.integrations.optuna import OptunaCallback, traced

    with calibration.job("fit-sir", algorithm="tpe", max_iterations=50) as job:
        study = optuna.create_study()
        study.optimize(traced(objective, job), n_trials=50)                  # spans inside are children
        study.optimize(objective, n_trials=50, callbacks=[OptunaCallback(job)])  # after the fact

``traced(objective, job)`` opens the iteration span when the trial starts and makes it current
while the objective runs, so every span the objective opens (a ``simulation.run``, an HTTP call)
is a child of its trial: that is the only way to tell which runs belong to which trial. A trial
that raises has the exception's type and message on its span (status ERROR); the exception goes on
to Optuna unchanged. ``OptunaCallback(job)`` can only record a trial after Optuna finished it, so
the objective's spans are siblings of the iteration; it remains for objectives you cannot wrap.

Either way the span carries the trial number, state, value (as min loss), best value so far,
whether it improved, n_params and every parameter as ``modeltel.calibration.param.<name>``. Trials
from ``n_jobs > 1`` worker threads are parented to the job explicitly, so they never become orphan
traces. Without a job, spans are parented to the context current when ``traced`` or the callback
was made.
"""

from __future__ import annotations

import functools
import math
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

import optuna
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from modeltel._internal import semconv as sc
from modeltel._internal.domains import _runtime
from modeltel._internal.domains._runtime import Runtime
from modeltel._internal.domains._scope import NOOP, record_error
from modeltel._internal.domains.calibration import CalibrationJob

__all__ = ["OptunaCallback", "traced"]

Objective = Callable[[optuna.Trial], Any]

_TRACED: weakref.WeakKeyDictionary[optuna.Study, set[int]] = weakref.WeakKeyDictionary()
"""Trial numbers ``traced`` recorded, per study, so an OptunaCallback on the same study skips them."""
_TRACED_LOCK = threading.Lock()


def _ns(moment: datetime | None, default: int) -> int:
    return int(moment.timestamp() * 1e9) if moment is not None else default


def _param(value: Any) -> AttributeValue:
    return value if isinstance(value, str | bool | int | float) else str(value)


def _feasible(value: Any, n_objectives: int) -> bool:
    """Whether Optuna will COMPLETE a trial that returned ``value`` (None, NaN or a wrong count fail)."""
    values = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]
    if len(values) != n_objectives:
        return False
    try:
        return not any(math.isnan(float(v)) for v in values)
    except (TypeError, ValueError):
        return False


class _Iterations:
    """What the callback and ``traced`` share: the job (or a best loss of its own), the parent."""

    def __init__(self, job: CalibrationJob | None = None) -> None:
        self._job = None if job is None or job is cast(Any, NOOP) else job
        self._disabled = job is not None and self._job is None
        self._parent = otel_context.get_current() if job is None else None
        self._lock = threading.Lock()
        self._best: float | None = None

    def _runtime(self, study: optuna.Study) -> Runtime | None:
        """The runtime to record on, None when disabled; a job of the wrong direction is a ValueError."""
        job = self._job
        if self._disabled:
            return None
        rt = job._rt if job is not None and job._rt is not None else _runtime.resolve()
        if not rt.enabled:
            return None
        directions = study.directions
        maximize = directions[0] == optuna.study.StudyDirection.MAXIMIZE
        if job is not None and len(directions) == 1 and (job._direction == "maximize") != maximize:
            raise ValueError(
                f"job: direction {job._direction!r} does not match the study's "
                f"{directions[0].name.lower()!r}; open the job with direction={directions[0].name.lower()!r}"
            )
        return rt

    def _observe(self, maximize: bool, number: int, value: float) -> tuple[float, bool]:
        if self._job is not None:
            return self._job.observe(number, value)
        with self._lock:
            best = self._best
            improved = best is None or (value > best if maximize else value < best)
            if improved:
                self._best = best = value
            assert best is not None
            return best, improved

    def _start(self, rt: Runtime, number: int, start: int | None = None) -> Span:
        parent = self._job._context() if self._job is not None else self._parent
        attributes: dict[str, AttributeValue] = {sc.CALIBRATION_ITERATION: number}
        return rt.tracer.start_span(
            sc.SPAN_CALIBRATION_ITERATION, parent, attributes=attributes, start_time=start
        )

    def _finish(
        self,
        rt: Runtime,
        study: optuna.Study,
        span: Span,
        number: int,
        state: optuna.trial.TrialState,
        params: Mapping[str, Any],
        value: float | None,
        seconds: float,
    ) -> None:
        """Set the trial's outcome on its span and record the calibration metrics (span left open)."""
        job = self._job
        values: dict[str, AttributeValue] = {
            sc.CALIBRATION_TRIAL_STATE: state.name,
            sc.CALIBRATION_N_PARAMS: len(params),
        }
        for name, param in params.items():
            values[sc.CALIBRATION_PARAM_PREFIX + name] = _param(param)
        span.set_attributes(values)
        if job is not None:
            metric_attrs = dict(job._metric_attrs)
        else:
            metric_attrs = {
                sc.CALIBRATION_JOB_NAME: study.study_name,
                sc.CALIBRATION_ALGORITHM: type(study.sampler).__name__,
            }
        directions = study.directions
        if len(directions) == 1 and value is not None:
            maximize = directions[0] == optuna.study.StudyDirection.MAXIMIZE
            best, improved = self._observe(maximize, number, value)
            span.set_attributes(
                {
                    sc.CALIBRATION_MIN_LOSS: value,
                    sc.CALIBRATION_BEST_LOSS: best,
                    sc.CALIBRATION_IMPROVED: improved,
                }
            )
            rt.inst.cal_loss.record(value, metric_attrs)
            rt.inst.cal_best_loss.set(best, metric_attrs)
        else:
            span.set_attribute(sc.CALIBRATION_IMPROVED, False)
        if job is not None:
            job._iteration_done()
        status = sc.STATUS_ERROR if state == optuna.trial.TrialState.FAIL else sc.STATUS_OK
        rt.inst.cal_iteration_duration.record(seconds, {**metric_attrs, sc.CALIBRATION_STATUS: status})


class OptunaCallback(_Iterations):
    """``study.optimize(..., callbacks=[OptunaCallback(job)])``; see the module docstring."""

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        with _TRACED_LOCK:
            recorded = _TRACED.get(study)
            if recorded is not None and trial.number in recorded:
                recorded.discard(trial.number)
                return
        rt = self._runtime(study)
        if rt is None:
            return
        now = time.time_ns()
        start, end = _ns(trial.datetime_start, now), _ns(trial.datetime_complete, now)
        span = self._start(rt, trial.number, start)
        single = len(study.directions) == 1
        value = float(trial.value) if single and trial.value is not None else None
        self._finish(rt, study, span, trial.number, trial.state, trial.params, value, (end - start) / 1e9)
        if trial.state == optuna.trial.TrialState.FAIL:
            span.set_attribute(sc.ERROR_TYPE, "optuna.TrialState.FAIL")
            span.set_status(Status(StatusCode.ERROR, f"trial {trial.number} failed"))
        span.end(end_time=end)


class _Traced(_Iterations):
    def __init__(self, objective: Objective, job: CalibrationJob | None) -> None:
        super().__init__(job)
        self._objective = objective

    def __call__(self, trial: optuna.Trial) -> Any:
        study = trial.study
        rt = self._runtime(study)
        if rt is None:
            return self._objective(trial)
        start = time.time_ns()
        span = self._start(rt, trial.number, start)
        token = otel_context.attach(trace.set_span_in_context(span))
        state, value, failure = optuna.trial.TrialState.COMPLETE, None, None
        try:
            result = self._objective(trial)
        except optuna.TrialPruned:
            state = optuna.trial.TrialState.PRUNED
            raise
        except BaseException as exc:
            state, failure = optuna.trial.TrialState.FAIL, exc
            raise
        else:
            if not _feasible(result, len(study.directions)):
                state = optuna.trial.TrialState.FAIL
            elif len(study.directions) == 1:
                value = float(result)
            return result
        finally:
            otel_context.detach(token)
            self._end(rt, study, span, trial, state, value, failure, start)

    def _end(
        self,
        rt: Runtime,
        study: optuna.Study,
        span: Span,
        trial: optuna.Trial,
        state: optuna.trial.TrialState,
        value: float | None,
        failure: BaseException | None,
        start: int,
    ) -> None:
        if failure is not None:
            record_error(span, failure)
        elif state == optuna.trial.TrialState.FAIL:
            span.set_attribute(sc.ERROR_TYPE, "optuna.TrialState.FAIL")
            span.set_status(Status(StatusCode.ERROR, f"trial {trial.number} returned no feasible value"))
        end = time.time_ns()
        self._finish(rt, study, span, trial.number, state, trial.params, value, (end - start) / 1e9)
        with _TRACED_LOCK:
            _TRACED.setdefault(study, set()).add(trial.number)
        span.end(end_time=end)


def traced(objective: Objective, job: CalibrationJob | None = None) -> Objective:
    """``objective`` with each trial run inside its ``calibration.iteration`` span.

    Pass the result to ``study.optimize``; see the module docstring. The wrapper returns what the
    objective returns and re-raises what it raises (``TrialPruned`` included) unchanged.
    """
    return functools.wraps(objective)(_Traced(objective, job))
