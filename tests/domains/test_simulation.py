"""simulation.job / run / phase / cache / record: spans, attributes and low-cardinality metrics."""

from __future__ import annotations

from modeltel import simulation
from modeltel._internal import semconv
from modeltel.testing import Capture


def test_run_phase_cache_record(modeltel_capture: Capture) -> None:
    with (
        simulation.job("sir-sweep", n_tasks=2, owner="lab"),
        simulation.run(model="sir", param_id="a1b2", seed=7) as run,
    ):
        run.cache(hit=False)
        with run.phase("bundle.resolve") as phase:
            phase.record(files=3)
        run.record(steps=10_000, final_infected=0.31)
    job = modeltel_capture.span("simulation.job")
    run_span = modeltel_capture.span("simulation.run")
    phase_span = modeltel_capture.span("simulation.phase")
    assert dict(job.attributes) == {
        semconv.SIMULATION_JOB_NAME: "sir-sweep",
        semconv.SIMULATION_N_TASKS: 2,
        "modeltel.simulation.owner": "lab",
    }
    assert dict(run_span.attributes) == {
        semconv.SIMULATION_MODEL: "sir",
        semconv.SIMULATION_PARAM_ID: "a1b2",
        semconv.SIMULATION_SEED: 7,
        semconv.SIMULATION_CACHE_HIT: False,
        "modeltel.simulation.steps": 10_000,
        "modeltel.simulation.final_infected": 0.31,
    }
    assert phase_span.attributes[semconv.SIMULATION_PHASE] == "bundle.resolve"
    assert phase_span.attributes["modeltel.simulation.files"] == 3
    assert phase_span.parent.span_id == run_span.context.span_id
    assert run_span.parent.span_id == job.context.span_id
    # Numbers given to record are span attributes, never metric series.
    assert set(modeltel_capture.metrics()) == {
        semconv.METRIC_SIMULATION_RUN_DURATION,
        semconv.METRIC_SIMULATION_CACHE_REQUESTS,
    }


def test_duration_histogram_uses_the_domain_buckets_in_seconds(modeltel_capture: Capture) -> None:
    with simulation.run(model="sir"):
        pass
    metric = modeltel_capture.metrics()[semconv.METRIC_SIMULATION_RUN_DURATION]
    assert metric.unit == "s"
    (point,) = metric.data.data_points
    assert tuple(point.explicit_bounds) == semconv.DURATION_BUCKETS_S
    assert point.count == 1 and 0 < point.sum < 1
    assert point.bucket_counts[0] + point.bucket_counts[1] + point.bucket_counts[2] == 1  # sub-ms run


def test_ten_thousand_runs_make_one_series_per_model_status_and_hit(modeltel_capture: Capture) -> None:
    with simulation.job("big", n_tasks=10_000):
        for i in range(10_000):
            with simulation.run(model="sir" if i % 2 else "seir", param_id=f"p{i}", seed=i) as run:
                run.cache(hit=i % 3 == 0)
    durations = modeltel_capture.points(semconv.METRIC_SIMULATION_RUN_DURATION)
    cache = modeltel_capture.points(semconv.METRIC_SIMULATION_CACHE_REQUESTS)
    assert len(durations) == 2  # two models, status ok
    assert len(cache) == 4  # two models, hit and miss
    for point in [*durations, *cache]:
        assert set(point.attributes) <= {
            semconv.SIMULATION_MODEL,
            semconv.SIMULATION_STATUS,
            semconv.SIMULATION_CACHE_HIT,
        }
    assert sum(p.count for p in durations) == 10_000
    hits = modeltel_capture.value(
        semconv.METRIC_SIMULATION_CACHE_REQUESTS,
        **{semconv.SIMULATION_MODEL: "sir", semconv.SIMULATION_CACHE_HIT: True},
    )
    assert hits == sum(1 for i in range(1, 10_000, 2) if i % 3 == 0)


def test_methods_after_the_run_ended_do_nothing(modeltel_capture: Capture) -> None:
    with simulation.run(model="sir") as run:
        pass
    run.record(late=1)
    run.cache(hit=True)
    assert "modeltel.simulation.late" not in modeltel_capture.span("simulation.run").attributes
    assert modeltel_capture.points(semconv.METRIC_SIMULATION_CACHE_REQUESTS) == []


def test_phase_opened_on_a_bare_thread_is_still_the_runs_child(modeltel_capture: Capture) -> None:
    import threading

    with simulation.run(model="sir") as run:
        thread = threading.Thread(target=lambda: run.phase("io").__enter__().__exit__(None, None, None))
        thread.start()
        thread.join()
    run_span = modeltel_capture.span("simulation.run")
    assert modeltel_capture.span("simulation.phase").parent.span_id == run_span.context.span_id
