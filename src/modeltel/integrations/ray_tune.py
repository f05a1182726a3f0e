"""Ray Tune (the ``[ray]`` extra): every finished trial becomes a ``calibration.iteration``.

Also reachable as ``modeltel.integrations.ray.TuneCallback``; kept apart because importing Tune
costs ~1.5 s, which Ray's worker processes must not pay to run a traced task.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any, cast

from opentelemetry import context as otel_context
from opentelemetry.trace import Status, StatusCode
from opentelemetry.util.types import AttributeValue
from ray.tune import Callback

from modeltel._internal import semconv as sc
from modeltel._internal.domains import _runtime
from modeltel._internal.domains._scope import NOOP
from modeltel._internal.domains.calibration import CalibrationJob

__all__ = ["TuneCallback"]


def _flat(config: Mapping[str, Any], prefix: str = "") -> dict[str, AttributeValue]:
    values: dict[str, AttributeValue] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            values.update(_flat(value, f"{name}."))
        elif isinstance(value, str | bool | int | float):
            values[name] = value
        else:
            values[name] = str(value)
    return values


class TuneCallback(Callback):
    """``tune.RunConfig(callbacks=[TuneCallback(job, metric="loss")])``: one iteration per trial.

    The iteration span runs from the trial's start to its completion (or error, then status ERROR)
    and carries the trial's index as the iteration number, its config as
    ``modeltel.calibration.param.<key>`` (nested keys joined with dots), ``metric`` from its last
    result as min loss, and the best loss so far. It is created in the driver, a child of ``job``
    (or of the context current when the callback was made), so it never depends on which worker ran
    the trial. Without ``metric`` no loss is recorded.
    """

    def __init__(self, job: CalibrationJob | None = None, *, metric: str | None = None) -> None:
        self._job = None if job is None or job is cast(Any, NOOP) else job
        self._disabled = job is not None and self._job is None
        self._parent = otel_context.get_current() if job is None else None
        self._metric = metric
        self._starts: dict[str, int] = {}
        self._best: float | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its run config to save experiment state; a live job cannot travel.
        return {"_metric": self._metric}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(None, metric=state["_metric"])  # type: ignore[misc]
        self._disabled = True

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        with self._lock:
            self._starts.setdefault(str(trial.trial_id), time.time_ns())

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._record(trials, trial, failed=False)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._record(trials, trial, failed=True)

    def _observe(self, maximize: bool, number: int, value: float) -> tuple[float, bool]:
        if self._job is not None:
            return self._job.observe(number, value)
        with self._lock:
            improved = self._best is None or (value > self._best if maximize else value < self._best)
            if improved:
                self._best = value
            assert self._best is not None
            return self._best, improved

    def _record(self, trials: list[Any], trial: Any, failed: bool) -> None:
        job = self._job
        if self._disabled:
            return
        rt = job._rt if job is not None and job._rt is not None else _runtime.resolve()
        if not rt.enabled:
            return
        end = time.time_ns()
        with self._lock:
            start = self._starts.pop(str(trial.trial_id), end)
        number = trials.index(trial) if trial in trials else len(trials)
        config = trial.config if isinstance(trial.config, Mapping) else {}
        params = _flat(config)
        values: dict[str, AttributeValue] = {
            sc.CALIBRATION_ITERATION: number,
            sc.CALIBRATION_TRIAL_STATE: "ERROR" if failed else "COMPLETE",
            sc.CALIBRATION_N_PARAMS: len(params),
            **{sc.CALIBRATION_PARAM_PREFIX + k: v for k, v in params.items()},
        }
        metric_attrs: dict[str, AttributeValue] = (
            dict(job._metric_attrs) if job is not None else {sc.CALIBRATION_ALGORITHM: "ray.tune"}
        )
        parent = job._context() if job is not None else self._parent
        span = rt.tracer.start_span(
            sc.SPAN_CALIBRATION_ITERATION, parent, attributes=values, start_time=start
        )
        result = trial.last_result if isinstance(trial.last_result, Mapping) else {}
        value = result.get(self._metric) if self._metric is not None else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            maximize = job is not None and job._direction == "maximize"
            best, improved = self._observe(maximize, number, float(value))
            span.set_attributes(
                {
                    sc.CALIBRATION_MIN_LOSS: float(value),
                    sc.CALIBRATION_BEST_LOSS: best,
                    sc.CALIBRATION_IMPROVED: improved,
                }
            )
            rt.inst.cal_loss.record(float(value), metric_attrs)
            rt.inst.cal_best_loss.set(best, metric_attrs)
        else:
            span.set_attribute(sc.CALIBRATION_IMPROVED, False)
        if failed:
            span.set_attribute(sc.ERROR_TYPE, "ray.tune.TrialError")
            span.set_status(Status(StatusCode.ERROR, f"trial {trial.trial_id} failed"))
        if job is not None:
            job._iteration_done()
        status = sc.STATUS_ERROR if failed else sc.STATUS_OK
        rt.inst.cal_iteration_duration.record(
            (end - start) / 1e9, {**metric_attrs, sc.CALIBRATION_STATUS: status}
        )
        span.end(end_time=end)
