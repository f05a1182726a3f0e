"""calibration.job / iteration / ask / evaluate / tell: numbering, best-loss tracking, bad losses."""

from __future__ import annotations

import numpy as np
import pytest

from modeltel import calibration
from modeltel._internal import semconv
from modeltel._internal.domains.calibration import HISTOGRAM_SAMPLE_MAX, TRAJECTORY_MAX_POINTS
from modeltel.testing import Capture

LOSSES = [[5.0, 7.0], [6.0, 9.0], [2.0, 3.0], [2.5, 8.0], [1.0, 4.0]]


def _fit(losses: list[list[float]], **job_kwargs: object) -> None:
    with calibration.job("fit-sir", algorithm="tpe", max_iterations=len(losses), **job_kwargs) as job:
        for batch in losses:
            with job.iteration() as it:
                with it.ask() as a:
                    a.record(n_params=len(batch))
                with it.evaluate(n=len(batch)):
                    pass
                with it.tell() as t:
                    t.losses(np.array(batch))


def test_iterations_carry_number_params_min_best_improved(modeltel_capture: Capture) -> None:
    _fit(LOSSES)
    its = modeltel_capture.spans("calibration.iteration")
    rows = [
        (
            s.attributes[semconv.CALIBRATION_ITERATION],
            s.attributes[semconv.CALIBRATION_N_PARAMS],
            s.attributes[semconv.CALIBRATION_MIN_LOSS],
            s.attributes[semconv.CALIBRATION_BEST_LOSS],
            s.attributes[semconv.CALIBRATION_IMPROVED],
        )
        for s in its
    ]
    assert rows == [
        (0, 2, 5.0, 5.0, True),
        (1, 2, 6.0, 5.0, False),
        (2, 2, 2.0, 2.0, True),
        (3, 2, 2.5, 2.0, False),
        (4, 2, 1.0, 1.0, True),
    ]
    job = modeltel_capture.span("calibration.job")
    assert job.attributes[semconv.CALIBRATION_ALGORITHM] == "tpe"
    assert job.attributes[semconv.CALIBRATION_MAX_ITERATIONS] == 5
    assert job.attributes[semconv.CALIBRATION_ITERATIONS] == 5
    assert job.attributes[semconv.CALIBRATION_BEST_LOSS] == 1.0
    assert job.attributes[semconv.CALIBRATION_ITERATIONS_TO_BEST] == 5
    assert job.attributes[semconv.CALIBRATION_TRAJECTORY_ITERATION] == (0, 2, 4)
    assert job.attributes[semconv.CALIBRATION_TRAJECTORY_BEST_LOSS] == (5.0, 2.0, 1.0)
    tell = modeltel_capture.spans("calibration.tell")[2]
    assert tell.attributes[semconv.CALIBRATION_MIN_LOSS] == 2.0
    assert (
        modeltel_capture.spans("calibration.evaluate")[0].attributes[semconv.CALIBRATION_N_EVALUATIONS] == 2
    )
    assert modeltel_capture.spans("calibration.ask")[0].attributes[semconv.CALIBRATION_N_PARAMS] == 2


def test_metrics_iteration_duration_loss_histogram_best_gauge(modeltel_capture: Capture) -> None:
    _fit(LOSSES)
    attrs = {semconv.CALIBRATION_ALGORITHM: "tpe", semconv.CALIBRATION_JOB_NAME: "fit-sir"}
    duration = modeltel_capture.histogram(
        semconv.METRIC_CALIBRATION_ITERATION_DURATION, **attrs, **{semconv.CALIBRATION_STATUS: "ok"}
    )
    assert duration.count == 5
    loss = modeltel_capture.histogram(semconv.METRIC_CALIBRATION_LOSS, **attrs)
    assert loss.count == 10 and loss.sum == pytest.approx(sum(map(sum, LOSSES)))
    assert loss.min == 1.0 and loss.max == 9.0
    assert tuple(loss.explicit_bounds) == semconv.LOSS_BUCKETS
    assert modeltel_capture.value(semconv.METRIC_CALIBRATION_BEST_LOSS, **attrs) == 1.0


def test_maximize_tracks_the_highest_value(modeltel_capture: Capture) -> None:
    _fit([[0.2], [0.9], [0.5]], direction="maximize")
    job = modeltel_capture.span("calibration.job")
    assert job.attributes[semconv.CALIBRATION_BEST_LOSS] == 0.9
    assert job.attributes[semconv.CALIBRATION_ITERATIONS_TO_BEST] == 2
    assert [
        s.attributes[semconv.CALIBRATION_IMPROVED] for s in modeltel_capture.spans("calibration.iteration")
    ] == [
        True,
        True,
        False,
    ]


def test_nan_and_inf_losses_are_a_warning_not_an_error(modeltel_capture: Capture) -> None:
    with calibration.job("fit") as job:
        with job.iteration() as it, it.tell() as t:
            t.losses([np.nan, 3.0, np.inf])
        with job.iteration() as it, it.tell() as t:
            assert t.losses([np.nan]) is None
    first, second = modeltel_capture.spans("calibration.iteration")
    assert first.attributes[semconv.CALIBRATION_MIN_LOSS] == 3.0
    assert first.attributes[semconv.WARNING] == ("losses: 2 of 3 values are NaN or infinite",)
    assert semconv.CALIBRATION_MIN_LOSS not in second.attributes
    assert second.attributes[semconv.CALIBRATION_BEST_LOSS] == 3.0
    assert second.attributes[semconv.CALIBRATION_IMPROVED] is False
    assert modeltel_capture.spans("calibration.tell")[0].attributes[semconv.WARNING]
    assert modeltel_capture.histogram(semconv.METRIC_CALIBRATION_LOSS).count == 1


@pytest.mark.parametrize(
    ("losses", "message"),
    [([], "losses: empty"), ("abc", "losses: expected numbers"), ([[1.0, 2.0]], "losses: expected a scalar")],
)
def test_wrong_losses_are_a_value_error_naming_the_argument(
    modeltel_capture: Capture, losses: object, message: str
) -> None:
    with (
        calibration.job("fit") as job,
        job.iteration() as it,
        it.tell() as t,
        pytest.raises(ValueError, match=message),
    ):
        t.losses(losses)  # type: ignore[arg-type]


def test_bad_direction_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="direction="):
        calibration.job("fit", direction="sideways")  # type: ignore[arg-type]


def test_big_loss_arrays_feed_a_bounded_histogram_sample(modeltel_capture: Capture) -> None:
    losses = np.linspace(1.0, 2.0, 100_000)
    with calibration.job("fit") as job, job.iteration() as it, it.tell() as t:
        assert t.losses(losses) == 1.0
    point = modeltel_capture.histogram(semconv.METRIC_CALIBRATION_LOSS)
    assert point.count == HISTOGRAM_SAMPLE_MAX and point.min == 1.0 and point.max == 2.0
    assert modeltel_capture.span("calibration.tell").attributes[semconv.CALIBRATION_N_LOSSES] == 100_000


def test_trajectory_is_bounded_and_keeps_the_latest(modeltel_capture: Capture) -> None:
    n = TRAJECTORY_MAX_POINTS + 50
    with calibration.job("fit") as job:
        for i in range(n):
            with job.iteration() as it:
                it.losses([float(n - i)])
    span = modeltel_capture.span("calibration.job")
    iterations = span.attributes[semconv.CALIBRATION_TRAJECTORY_ITERATION]
    assert len(iterations) == TRAJECTORY_MAX_POINTS
    assert iterations[0] == 0 and iterations[-1] == n - 1
    assert span.attributes[semconv.CALIBRATION_TRAJECTORY_BEST_LOSS][-1] == 1.0


def test_explicit_iteration_numbers_and_error_in_iteration(modeltel_capture: Capture) -> None:
    with calibration.job("fit") as job:
        with pytest.raises(RuntimeError), job.iteration(number=41) as it:
            raise RuntimeError("sim crashed")
        with job.iteration() as it:
            pass
    first, second = modeltel_capture.spans("calibration.iteration")
    assert first.attributes[semconv.CALIBRATION_ITERATION] == 41
    assert second.attributes[semconv.CALIBRATION_ITERATION] == 0
    assert (
        modeltel_capture.histogram(
            semconv.METRIC_CALIBRATION_ITERATION_DURATION, **{semconv.CALIBRATION_STATUS: "error"}
        ).count
        == 1
    )
    assert it.number == 0
