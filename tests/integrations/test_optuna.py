"""The Optuna callback against real studies: one calibration.iteration per finished trial."""

from __future__ import annotations

import pytest
from opentelemetry.trace import StatusCode

from modeltel import calibration, semconv
from modeltel.testing import Capture

optuna = pytest.importorskip("optuna")
from modeltel.integrations.optuna import OptunaCallback  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -3, 3)
    kind = trial.suggest_categorical("kind", ["a", "b"])
    return (x - 1) ** 2 + (0.5 if kind == "b" else 0.0)


def test_every_trial_is_an_iteration_of_the_job(modeltel_capture: Capture) -> None:
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    with calibration.job("fit", algorithm="tpe", max_iterations=20) as job:
        study.optimize(_objective, n_trials=20, callbacks=[OptunaCallback(job)])
    job_span = modeltel_capture.span("calibration.job")
    its = sorted(
        modeltel_capture.spans("calibration.iteration"),
        key=lambda s: s.attributes[semconv.CALIBRATION_ITERATION],
    )
    assert [s.attributes[semconv.CALIBRATION_ITERATION] for s in its] == list(range(20))
    assert {s.parent.span_id for s in its} == {job_span.context.span_id}
    values = [t.value for t in study.trials]
    running_best = [min(values[: i + 1]) for i in range(20)]
    for span, trial, best in zip(its, study.trials, running_best, strict=True):
        a = span.attributes
        assert a[semconv.CALIBRATION_TRIAL_STATE] == "COMPLETE"
        assert a[semconv.CALIBRATION_MIN_LOSS] == trial.value
        assert a[semconv.CALIBRATION_BEST_LOSS] == best
        assert a["modeltel.calibration.param.x"] == trial.params["x"]
        assert a["modeltel.calibration.param.kind"] == trial.params["kind"]
        assert a[semconv.CALIBRATION_N_PARAMS] == 2
        assert span.start_time == int(trial.datetime_start.timestamp() * 1e9)
        assert span.end_time == int(trial.datetime_complete.timestamp() * 1e9)
    improved = [s.attributes[semconv.CALIBRATION_IMPROVED] for s in its]
    assert improved == [i == 0 or running_best[i] < running_best[i - 1] for i in range(20)]
    assert job_span.attributes[semconv.CALIBRATION_BEST_LOSS] == study.best_value
    assert job_span.attributes[semconv.CALIBRATION_ITERATIONS] == 20
    assert job_span.attributes[semconv.CALIBRATION_ITERATIONS_TO_BEST] == study.best_trial.number + 1
    attrs = {semconv.CALIBRATION_JOB_NAME: "fit", semconv.CALIBRATION_ALGORITHM: "tpe"}
    assert modeltel_capture.value(semconv.METRIC_CALIBRATION_BEST_LOSS, **attrs) == study.best_value
    assert modeltel_capture.histogram(semconv.METRIC_CALIBRATION_LOSS, **attrs).count == 20


def test_parallel_trials_are_not_orphans(modeltel_capture: Capture) -> None:
    study = optuna.create_study()
    with calibration.job("parallel") as job:
        study.optimize(_objective, n_trials=16, n_jobs=4, callbacks=[OptunaCallback(job)])
    job_span = modeltel_capture.span("calibration.job")
    its = modeltel_capture.spans("calibration.iteration")
    assert len(its) == 16
    assert {s.parent.span_id for s in its} == {job_span.context.span_id}
    assert {s.context.trace_id for s in its} == {job_span.context.trace_id}
    assert job_span.attributes[semconv.CALIBRATION_BEST_LOSS] == study.best_value


def test_failed_and_pruned_trials(modeltel_capture: Capture) -> None:
    def objective(trial: optuna.Trial) -> float:
        if trial.number == 1:
            raise ValueError("simulation diverged")
        if trial.number == 2:
            raise optuna.TrialPruned()
        return float(trial.number)

    study = optuna.create_study()
    with calibration.job("fit") as job:
        study.optimize(objective, n_trials=4, callbacks=[OptunaCallback(job)], catch=(ValueError,))
    by_number = {
        s.attributes[semconv.CALIBRATION_ITERATION]: s
        for s in modeltel_capture.spans("calibration.iteration")
    }
    assert by_number[1].status.status_code is StatusCode.ERROR
    assert by_number[1].attributes[semconv.CALIBRATION_TRIAL_STATE] == "FAIL"
    assert by_number[2].attributes[semconv.CALIBRATION_TRIAL_STATE] == "PRUNED"
    assert by_number[2].status.status_code is StatusCode.UNSET
    assert semconv.CALIBRATION_MIN_LOSS not in by_number[2].attributes
    assert by_number[3].attributes[semconv.CALIBRATION_BEST_LOSS] == 0.0


def test_maximize_without_a_job_tracks_its_own_best(modeltel_capture: Capture) -> None:
    study = optuna.create_study(
        direction="maximize", study_name="score", sampler=optuna.samplers.RandomSampler(seed=1)
    )
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=10, callbacks=[OptunaCallback()])
    its = sorted(
        modeltel_capture.spans("calibration.iteration"),
        key=lambda s: s.attributes[semconv.CALIBRATION_ITERATION],
    )
    assert its[-1].attributes[semconv.CALIBRATION_BEST_LOSS] == study.best_value
    attrs = {semconv.CALIBRATION_JOB_NAME: "score", semconv.CALIBRATION_ALGORITHM: "RandomSampler"}
    assert modeltel_capture.value(semconv.METRIC_CALIBRATION_BEST_LOSS, **attrs) == study.best_value


def test_direction_mismatch_is_a_value_error(modeltel_capture: Capture) -> None:
    study = optuna.create_study(direction="maximize")
    with calibration.job("fit") as job, pytest.raises(ValueError, match="direction='maximize'"):
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1, callbacks=[OptunaCallback(job)])


def test_multi_objective_trials_are_recorded_without_best(modeltel_capture: Capture) -> None:
    study = optuna.create_study(directions=["minimize", "minimize"])
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), 1.0), n_trials=3, callbacks=[OptunaCallback()])
    its = modeltel_capture.spans("calibration.iteration")
    assert len(its) == 3
    assert all(semconv.CALIBRATION_BEST_LOSS not in s.attributes for s in its)
