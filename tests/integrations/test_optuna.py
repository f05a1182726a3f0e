"""The Optuna callback against real studies: one calibration.iteration per finished trial."""

from __future__ import annotations

import pytest
from opentelemetry.trace import StatusCode

from modeltel import calibration, simulation
from modeltel._internal import semconv
from modeltel.testing import Capture

optuna = pytest.importorskip("optuna")
from modeltel.integrations.optuna import OptunaCallback, traced  # noqa: E402

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


def _traced_objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -3, 3)
    with simulation.run(model="sir", seed=trial.number) as run:
        run.record(x=x)
    return (x - 1) ** 2


@pytest.mark.parametrize("n_jobs", [1, 3])
def test_traced_objective_spans_are_children_of_their_trial(modeltel_capture: Capture, n_jobs: int) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    with calibration.job("fit", max_iterations=12) as job:
        study.optimize(traced(_traced_objective, job), n_trials=12, n_jobs=n_jobs)
    job_span = modeltel_capture.span("calibration.job")
    its = {s.context.span_id: s for s in modeltel_capture.spans("calibration.iteration")}
    assert len(its) == 12
    assert {s.parent.span_id for s in its.values()} == {job_span.context.span_id}
    runs = modeltel_capture.spans("simulation.run")
    assert len(runs) == 12
    for run in runs:
        iteration = its[run.parent.span_id]
        assert iteration.attributes[semconv.CALIBRATION_ITERATION] == run.attributes[semconv.SIMULATION_SEED]
        assert run.context.trace_id == job_span.context.trace_id
    by_number = {s.attributes[semconv.CALIBRATION_ITERATION]: s for s in its.values()}
    for trial in study.trials:
        a = by_number[trial.number].attributes
        assert a[semconv.CALIBRATION_TRIAL_STATE] == "COMPLETE"
        assert a[semconv.CALIBRATION_MIN_LOSS] == trial.value
        assert a["modeltel.calibration.param.x"] == trial.params["x"]
    assert job_span.attributes[semconv.CALIBRATION_BEST_LOSS] == study.best_value
    assert job_span.attributes[semconv.CALIBRATION_ITERATIONS] == 12
    attrs = {semconv.CALIBRATION_JOB_NAME: "fit"}
    assert modeltel_capture.histogram(semconv.METRIC_CALIBRATION_LOSS, **attrs).count == 12


def test_traced_failed_trial_carries_the_exception(modeltel_capture: Capture) -> None:
    def objective(trial: optuna.Trial) -> float:
        if trial.number == 1:
            raise ValueError("simulation diverged at t=3.5")
        if trial.number == 2:
            raise optuna.TrialPruned()
        if trial.number == 3:
            return float("nan")
        return float(trial.number)

    study = optuna.create_study()
    with calibration.job("fit") as job:
        study.optimize(traced(objective, job), n_trials=5, catch=(ValueError,))
    by_number = {
        s.attributes[semconv.CALIBRATION_ITERATION]: s
        for s in modeltel_capture.spans("calibration.iteration")
    }
    assert sorted(by_number) == [0, 1, 2, 3, 4]
    for trial in study.trials:
        assert by_number[trial.number].attributes[semconv.CALIBRATION_TRIAL_STATE] == trial.state.name
    failed = by_number[1]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description == "simulation diverged at t=3.5"
    assert failed.attributes[semconv.ERROR_TYPE] == "ValueError"
    (event,) = failed.events
    assert event.attributes[semconv.EXCEPTION_TYPE] == "ValueError"
    assert event.attributes[semconv.EXCEPTION_MESSAGE] == "simulation diverged at t=3.5"
    assert by_number[2].status.status_code is StatusCode.UNSET
    assert by_number[3].status.status_code is StatusCode.ERROR
    assert semconv.CALIBRATION_MIN_LOSS not in by_number[3].attributes
    assert by_number[4].attributes[semconv.CALIBRATION_BEST_LOSS] == 0.0
    failures = modeltel_capture.histogram(
        semconv.METRIC_CALIBRATION_ITERATION_DURATION, **{semconv.CALIBRATION_STATUS: "error"}
    )
    assert failures.count == 2


def test_traced_uncaught_exception_still_ends_its_span(modeltel_capture: Capture) -> None:
    def objective(trial: optuna.Trial) -> float:
        raise KeyError("missing input")

    study = optuna.create_study()
    with pytest.raises(KeyError), calibration.job("fit") as job:
        study.optimize(traced(objective, job), n_trials=3)
    (span,) = modeltel_capture.spans("calibration.iteration")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "KeyError"


def test_traced_with_the_callback_records_each_trial_once(modeltel_capture: Capture) -> None:
    study = optuna.create_study(study_name="both")
    with calibration.job("fit") as job:
        study.optimize(traced(_traced_objective, job), n_trials=4, callbacks=[OptunaCallback(job)])
    its = modeltel_capture.spans("calibration.iteration")
    assert sorted(s.attributes[semconv.CALIBRATION_ITERATION] for s in its) == [0, 1, 2, 3]
    assert modeltel_capture.span("calibration.job").attributes[semconv.CALIBRATION_ITERATIONS] == 4


def test_traced_without_a_job_parents_to_the_context_it_was_made_in(modeltel_capture: Capture) -> None:
    study = optuna.create_study(study_name="bare", sampler=optuna.samplers.RandomSampler(seed=2))
    with simulation.job("outer"):
        objective = traced(_traced_objective)
    study.optimize(objective, n_trials=3, n_jobs=2)
    outer = modeltel_capture.span("simulation.job")
    its = modeltel_capture.spans("calibration.iteration")
    assert len(its) == 3 and {s.parent.span_id for s in its} == {outer.context.span_id}
    best = min(t.value for t in study.trials)
    attrs = {semconv.CALIBRATION_JOB_NAME: "bare", semconv.CALIBRATION_ALGORITHM: "RandomSampler"}
    assert modeltel_capture.value(semconv.METRIC_CALIBRATION_BEST_LOSS, **attrs) == best
