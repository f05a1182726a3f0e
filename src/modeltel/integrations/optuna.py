"""Optuna callback (``[optuna]`` extra): every finished trial becomes a ``calibration.iteration``.

::

    import optuna
    from modeltel import calibration
    from modeltel.integrations.optuna import OptunaCallback

    with calibration.job("fit-sir", algorithm="tpe", max_iterations=50) as job:
        study = optuna.create_study()
        study.optimize(objective, n_trials=50, callbacks=[OptunaCallback(job)])

The iteration span is timed from the trial's own start and completion times and carries the trial
number, state, value (as min loss), best value so far, whether it improved, n_params and every
parameter as ``modeltel.calibration.param.<name>``. Trials from ``n_jobs > 1`` worker threads are
parented to the job explicitly, so they never become orphan traces. A failed trial's span has
status ERROR. Without a job, spans are parented to the context current when the callback was made.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any, cast

import optuna
from opentelemetry import context as otel_context
from opentelemetry.trace import Status, StatusCode
from opentelemetry.util.types import AttributeValue

from modeltel import semconv as sc
from modeltel.domains import _runtime
from modeltel.domains._scope import NOOP
from modeltel.domains.calibration import CalibrationJob

__all__ = ["OptunaCallback"]


def _ns(moment: datetime | None, default: int) -> int:
    return int(moment.timestamp() * 1e9) if moment is not None else default


def _param(value: Any) -> AttributeValue:
    return value if isinstance(value, str | bool | int | float) else str(value)


class OptunaCallback:
    """``study.optimize(..., callbacks=[OptunaCallback(job)])``; see the module docstring."""

    def __init__(self, job: CalibrationJob | None = None) -> None:
        self._job = None if job is None or job is cast(Any, NOOP) else job
        self._disabled = job is not None and self._job is None
        self._parent = otel_context.get_current() if job is None else None
        self._lock = threading.Lock()
        self._best: float | None = None

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

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        job = self._job
        if self._disabled:
            return
        rt = job._rt if job is not None and job._rt is not None else _runtime.resolve()
        if not rt.enabled:
            return
        directions = study.directions
        maximize = directions[0] == optuna.study.StudyDirection.MAXIMIZE
        if job is not None and len(directions) == 1 and (job._direction == "maximize") != maximize:
            raise ValueError(
                f"job: direction {job._direction!r} does not match the study's "
                f"{directions[0].name.lower()!r}; open the job with direction={directions[0].name.lower()!r}"
            )
        now = time.time_ns()
        start, end = _ns(trial.datetime_start, now), _ns(trial.datetime_complete, now)
        values: dict[str, AttributeValue] = {
            sc.CALIBRATION_ITERATION: trial.number,
            sc.CALIBRATION_TRIAL_STATE: trial.state.name,
            sc.CALIBRATION_N_PARAMS: len(trial.params),
        }
        for name, value in trial.params.items():
            values[sc.CALIBRATION_PARAM_PREFIX + name] = _param(value)
        if job is not None:
            metric_attrs = dict(job._metric_attrs)
        else:
            metric_attrs = {
                sc.CALIBRATION_JOB_NAME: study.study_name,
                sc.CALIBRATION_ALGORITHM: type(study.sampler).__name__,
            }
        parent = job._context() if job is not None else self._parent
        span = rt.tracer.start_span(
            sc.SPAN_CALIBRATION_ITERATION, parent, attributes=values, start_time=start
        )
        if len(directions) == 1 and trial.value is not None:
            loss = float(trial.value)
            best, improved = self._observe(maximize, trial.number, loss)
            span.set_attributes(
                {
                    sc.CALIBRATION_MIN_LOSS: loss,
                    sc.CALIBRATION_BEST_LOSS: best,
                    sc.CALIBRATION_IMPROVED: improved,
                }
            )
            rt.inst.cal_loss.record(loss, metric_attrs)
            rt.inst.cal_best_loss.set(best, metric_attrs)
        else:
            span.set_attribute(sc.CALIBRATION_IMPROVED, False)
        failed = trial.state == optuna.trial.TrialState.FAIL
        if failed:
            span.set_attribute(sc.ERROR_TYPE, "optuna.TrialState.FAIL")
            span.set_status(Status(StatusCode.ERROR, f"trial {trial.number} failed"))
        if job is not None:
            job._iteration_done()
        status = sc.STATUS_ERROR if failed else sc.STATUS_OK
        rt.inst.cal_iteration_duration.record(
            (end - start) / 1e9, {**metric_attrs, sc.CALIBRATION_STATUS: status}
        )
        span.end(end_time=end)
