"""Job summary lines, written without pydantic, against the pydantic models readers hold them to.

A job's span often ends at exit, and importing pydantic there held a short app's end up, so the
writer builds each line as a plain dict. :func:`model_based` is the writer as it was, the models
built field by field and dumped by pydantic, kept here as the oracle: every line must equal its
output, key order included, and read back through :class:`RunSummary` exactly as that output does.
The jobs run through the real domain API and the real :class:`JobSummaries`, marking at span start
and summarising at export, as in an app.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Status, StatusCode
from pydantic import ValidationError

from modeltel import calibration, inference, simulation
from modeltel._internal import semconv as sc
from modeltel._internal.config import Settings, load_settings
from modeltel._internal.export.jobs import JOB_NAME_ATTRIBUTE, PHASE_SPANS, JobSummaries
from modeltel._internal.export.summary import SpanStats
from modeltel.store.layout import SUMMARIES_FILE
from modeltel.store.schemas import (
    CalibrationSummary,
    NumericStats,
    QualitySnapshot,
    RunSummary,
    TrajectoryPoint,
)
from modeltel.testing import Capture
from otlp_files import base_env
from summary_models import duration_stats

# --- the oracle: the model-based writer as it was --------------------------------------------------


def _floats(attributes: Mapping[str, Any], key: str) -> tuple[Any, ...]:
    value = attributes.get(key)
    return tuple(value) if isinstance(value, tuple | list) else ()


def _number(attributes: Mapping[str, Any], key: str) -> Any:
    value = attributes.get(key)
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def model_based(kind: str, span: ReadableSpan, stats: SpanStats, settings: Settings, service: str) -> str:
    """The summary line of a job as the model-based writer made it."""
    attributes: Mapping[str, Any] = span.attributes or {}
    calibration_summary = quality = None
    if kind == "calibration":
        iterations = _floats(attributes, sc.CALIBRATION_TRAJECTORY_ITERATION)
        losses = _floats(attributes, sc.CALIBRATION_TRAJECTORY_BEST_LOSS)
        calibration_summary = CalibrationSummary(
            direction="maximize" if attributes.get(sc.CALIBRATION_DIRECTION) == "maximize" else "minimize",
            iterations=_number(attributes, sc.CALIBRATION_ITERATIONS) or 0,
            best_loss=_number(attributes, sc.CALIBRATION_BEST_LOSS),
            iterations_to_best=_number(attributes, sc.CALIBRATION_ITERATIONS_TO_BEST),
            trajectory=[
                TrajectoryPoint(iteration=i, best_loss=b) for i, b in zip(iterations, losses, strict=False)
            ],
            phase_seconds={
                phase: duration_stats(stats, name).total_s
                for phase, name in PHASE_SPANS.items()
                if name in stats.by_name
            },
        )
    if kind == "inference":
        names = _floats(attributes, sc.INFERENCE_CLASS_NAMES)
        fractions = _floats(attributes, sc.INFERENCE_CLASS_FRACTIONS)
        columns = _floats(attributes, sc.INFERENCE_MISSING_COLUMNS)
        rates = _floats(attributes, sc.INFERENCE_MISSING_RATES)
        quality = QualitySnapshot(
            predictions=_number(attributes, sc.INFERENCE_BATCH_SIZE) or 0,
            confidence_mean=_number(attributes, sc.INFERENCE_CONFIDENCE_MEAN),
            confidence_median=_number(attributes, sc.INFERENCE_CONFIDENCE_MEDIAN),
            confidence_p5=_number(attributes, sc.INFERENCE_CONFIDENCE_P5),
            confidence_p95=_number(attributes, sc.INFERENCE_CONFIDENCE_P95),
            confidence_std=_number(attributes, sc.INFERENCE_CONFIDENCE_STD),
            reject_rate=_number(attributes, sc.INFERENCE_REJECT_RATE),
            entropy_mean=_number(attributes, sc.INFERENCE_ENTROPY_MEAN),
            class_distribution=dict(zip(map(str, names), fractions, strict=False)),
            feature_missingness=dict(zip(map(str, columns), rates, strict=False)),
        )
    start_ns, end_ns = span.start_time or 0, span.end_time or 0
    context = span.context
    name = attributes.get(JOB_NAME_ATTRIBUTE[kind])
    return RunSummary(
        kind=kind,  # type: ignore[arg-type]
        service=service,
        run_id=settings.run_id,
        pid=os.getpid(),
        job_name=None if name is None else str(name),
        trace_id=None if context is None else format(context.trace_id, "032x"),
        span_id=None if context is None else format(context.span_id, "016x"),
        start=datetime.fromtimestamp(start_ns / 1e9, UTC),
        end=datetime.fromtimestamp(end_ns / 1e9, UTC),
        duration_s=(end_ns - start_ns) / 1e9,
        status="error" if span.status.status_code is StatusCode.ERROR else "ok",
        span_count=stats.span_count,
        by_name={n: duration_stats(stats, n) for n in sorted(stats.by_name)},
        numeric={
            k: NumericStats(count=n.count, sum=n.sum, mean=n.sum / n.count, min=n.min, max=n.max)
            for k, n in sorted(stats.numeric.items())
        },
        calibration=calibration_summary,
        quality=quality,
    ).model_dump_json()


# --- the real writer, fed by the real domain API ---------------------------------------------------


class _Forward(SpanExporter):
    """Hands each exported span to the job summaries, as the local copy does with its batches."""

    def __init__(self, jobs: JobSummaries) -> None:
        self.jobs = jobs
        self.exported: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exported.extend(spans)
        self.jobs.add(spans)
        return SpanExportResult.SUCCESS


def _job_spans(job: ReadableSpan, exported: list[ReadableSpan]) -> list[ReadableSpan]:
    """The job span and its descendants, in export order: what the writer folded for it."""
    assert job.context is not None
    mine = {job.context.span_id}
    found = []
    for span in sorted(exported, key=lambda s: s.start_time or 0):  # a parent starts first
        if span.parent is not None and span.parent.span_id in mine and span.context is not None:
            mine.add(span.context.span_id)
    for span in exported:
        if span.context is not None and span.context.span_id in mine:
            found.append(span)
    return found


def assert_as_the_models_wrote(data_dir: Path, app: Callable[[Capture], None]) -> list[dict[str, Any]]:
    """Run ``app`` under a capture whose spans reach a real JobSummaries; hold each line to the oracle."""
    job_settings = load_settings({}, data_dir=data_dir)
    jobs = JobSummaries(job_settings)
    with Capture() as cap:
        forward = _Forward(jobs)
        cap.tracer_provider.add_span_processor(jobs)
        cap.tracer_provider.add_span_processor(SimpleSpanProcessor(forward))
        app(cap)
    path = data_dir / SUMMARIES_FILE
    lines = path.read_text(encoding="utf-8").split("\n") if path.exists() else [""]
    assert lines[-1] == "", lines  # every line ends with a newline (a name may hold U+2028)
    by_id = {format(s.context.span_id, "016x"): s for s in forward.exported if s.context is not None}
    written = []
    for line in lines[:-1]:
        parsed = json.loads(line)
        span = by_id[parsed["span_id"]]
        stats = SpanStats()
        stats.add(_job_spans(span, forward.exported))
        reference = model_based(parsed["kind"], span, stats, job_settings, "modeltel-test")
        assert json.dumps(parsed) == json.dumps(json.loads(reference))  # same keys, order and values
        try:
            expected = RunSummary.model_validate_json(reference)
        except ValidationError:  # a NaN the model dumped as null: readers refuse both alike
            with pytest.raises(ValidationError):
                RunSummary.model_validate_json(line)
        else:
            assert RunSummary.model_validate_json(line).model_dump_json() == expected.model_dump_json()
        written.append(parsed)
    return written


def _calibrate(name: str, batches: list[list[float]], direction: str = "minimize") -> None:
    with calibration.job(name, algorithm="tpe", max_iterations=len(batches), direction=direction) as job:  # type: ignore[arg-type]
        for batch in batches:
            with job.iteration() as it:
                with it.ask() as a:
                    a.record(n_params=len(batch))
                with it.evaluate(n=len(batch)), simulation.run(model="sir", seed=len(batch)) as run:
                    run.record(steps=100, residual=float("nan"), growth=float("inf"))
                with it.tell() as t:
                    t.losses(np.array(batch))


def test_a_calibration_job_with_a_best_loss_trajectory(tmp_path: Path) -> None:
    batches = [[5.0, 7.0], [6.0, float("nan")], [2.0, 3.0], [float("inf"), 8.0], [1.0, 4.0], [0.5, 1e-7]]
    (fit,) = assert_as_the_models_wrote(tmp_path, lambda _: _calibrate("fit-σίρ-模型", batches))
    cal = fit["calibration"]
    assert fit["job_name"] == "fit-σίρ-模型"
    assert [p["iteration"] for p in cal["trajectory"]] == [0, 2, 4, 5]
    assert set(cal["phase_seconds"]) == {"ask", "evaluate", "tell"}
    assert fit["numeric"]["modeltel.simulation.steps"]["count"] == 6
    assert "modeltel.simulation.residual" not in fit["numeric"]  # NaN only: no stats


def test_a_maximising_calibration_with_no_finite_loss(tmp_path: Path) -> None:
    def app(_: Capture) -> None:
        _calibrate("scores", [[1.0, 3.0], [2.0]], direction="maximize")
        _calibrate("all-nan", [[float("nan")], [float("-inf")]])

    scores, nothing = assert_as_the_models_wrote(tmp_path, app)
    assert scores["calibration"]["direction"] == "maximize" and scores["calibration"]["best_loss"] == 3.0
    assert nothing["calibration"]["best_loss"] is None and nothing["calibration"]["trajectory"] == []


def test_simulation_jobs_nested_and_failing(tmp_path: Path) -> None:
    def app(_: Capture) -> None:
        with simulation.job("sweep-é☃", n_tasks=3):
            for seed in range(3):
                with simulation.run(model="sir", seed=seed) as run:
                    run.record(steps=10 * seed, dt=0.1)
            with simulation.job("inner\u2028line", n_tasks=1), simulation.run(model="seir"):
                pass
        try:
            with simulation.job("broken"), simulation.run(model="sir"):
                raise RuntimeError("diverged")
        except RuntimeError:
            pass

    inner, outer, broken = assert_as_the_models_wrote(tmp_path, app)
    assert (inner["job_name"], outer["job_name"]) == ("inner\u2028line", "sweep-é☃")
    assert outer["span_count"] == 1 + 3 + 2 and outer["numeric"]["modeltel.simulation.steps"]["sum"] == 30.0
    assert broken["status"] == "error" and broken["by_name"]["simulation.run"]["errors"] == 1


def test_an_inference_job_with_its_quality_snapshot(tmp_path: Path) -> None:
    def app(_: Capture) -> None:
        probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.5, 0.5], [0.2, 0.8]])
        with inference.job("nightly-ночь", model="clf"):
            for _batch in range(2):
                with inference.predict(model="clf") as p:
                    p.outputs(
                        probs,
                        labels=["a", "b", "inconnu", "类"],
                        reject_label="inconnu",
                        features=np.array([[1.0, np.nan], [np.nan, 2.0], [1.0, 2.0], [1.0, np.nan]]),
                    )
        with inference.job("empty"):
            pass

    nightly, empty = assert_as_the_models_wrote(tmp_path, app)
    assert nightly["quality"]["predictions"] == 8 and nightly["quality"]["reject_rate"] == 0.25
    assert set(nightly["quality"]["class_distribution"]) == {"a", "b", "inconnu", "类"}
    assert nightly["quality"]["feature_missingness"] == {"1": 0.5, "0": 0.25}
    assert empty["quality"]["predictions"] == 0 and empty["quality"]["confidence_mean"] is None


# --- job spans whose attributes are set by hand: every number a field can be given -------------------

_reals = st.one_of(
    st.floats(),  # NaN and the infinities included: the model dumps them as null
    st.sampled_from([1e308, 5e-324, 1e-05, 1e16, 0.0, -0.0]),
    st.integers(min_value=-(2**53), max_value=2**53),  # an int where a float goes is dumped as one
)
_counts = st.integers(min_value=0, max_value=2**62)
_names = st.text(max_size=6)


@st.composite
def _job_attributes(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    kind = draw(st.sampled_from(sorted(JOB_NAME_ATTRIBUTE)))
    attributes: dict[str, Any] = {JOB_NAME_ATTRIBUTE[kind]: draw(_names)}
    optional: dict[str, st.SearchStrategy[Any]] = {
        sc.CALIBRATION_DIRECTION: st.sampled_from(["minimize", "maximize", "sideways"]),
        sc.CALIBRATION_ITERATIONS: _counts,
        sc.CALIBRATION_BEST_LOSS: _reals,
        sc.CALIBRATION_ITERATIONS_TO_BEST: _counts,
        sc.CALIBRATION_TRAJECTORY_ITERATION: st.lists(_counts, max_size=4).map(tuple),
        sc.CALIBRATION_TRAJECTORY_BEST_LOSS: st.lists(st.floats(), max_size=5).map(tuple),
        sc.INFERENCE_BATCH_SIZE: _counts,
        sc.INFERENCE_CONFIDENCE_MEAN: _reals,
        sc.INFERENCE_CONFIDENCE_P5: _reals,
        sc.INFERENCE_REJECT_RATE: _reals,
        sc.INFERENCE_ENTROPY_MEAN: _reals,
        sc.INFERENCE_CLASS_NAMES: st.lists(_names, max_size=4).map(tuple),
        sc.INFERENCE_CLASS_FRACTIONS: st.lists(st.floats(), max_size=4).map(tuple),
        sc.INFERENCE_MISSING_COLUMNS: st.lists(_names, max_size=3).map(tuple),
        sc.INFERENCE_MISSING_RATES: st.lists(st.floats(), max_size=3).map(tuple),
        "modeltel.x": _reals,
    }
    for key in draw(st.sets(st.sampled_from(sorted(optional)))):
        attributes[key] = draw(optional[key])
    return kind, attributes


@given(_job_attributes(), st.booleans(), st.integers(min_value=0, max_value=2**62))
@example(
    (
        "calibration",
        {
            sc.CALIBRATION_TRAJECTORY_ITERATION: (0, 3),
            sc.CALIBRATION_TRAJECTORY_BEST_LOSS: (math.nan, math.inf),
        },
    ),
    False,
    1_700_000_000_000_000_000,
)
@example(("inference", {sc.INFERENCE_BATCH_SIZE: 3, sc.INFERENCE_CONFIDENCE_MEAN: 1}), True, 0)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_hand_set_job_span_is_what_the_models_wrote(
    job: tuple[str, dict[str, Any]], error: bool, start: int
) -> None:
    kind, attributes = job

    def app(cap: Capture) -> None:
        tracer = cap.tracer_provider.get_tracer("hand")
        span = tracer.start_span(f"{kind}{sc.JOB_SPAN_SUFFIX}", start_time=start, attributes=attributes)
        if error:
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=start + 1234567)

    with tempfile.TemporaryDirectory() as data_dir:
        (line,) = assert_as_the_models_wrote(Path(data_dir), app)
        assert line["kind"] == kind


# --- an app's exit: the job summaries are written and pydantic is never imported --------------------

EXIT_APP = """
import atexit, os, sys
def report():  # registered before configure(): atexit runs it after modeltel's shutdown
    path = os.path.join(os.environ["MODELTEL_DATA_DIR"], "summaries.jsonl")
    kinds = [line.split('"kind":"')[1].split('"')[0] for line in open(path)] if os.path.exists(path) else []
    print("KINDS", *kinds, "LOADED", *sorted(sys.modules), flush=True)
atexit.register(report)
import modeltel
from modeltel import calibration, simulation
modeltel.configure()
with calibration.job("fit", algorithm="random", max_iterations=3) as job:
    for losses in ([3.0, 2.0], [4.0], [1.0]):
        with job.iteration() as it:
            with it.ask():
                pass
            with it.evaluate(n=len(losses)):
                pass
            with it.tell() as t:
                t.losses(losses)
with simulation.job("sweep", n_tasks=2):
    for seed in range(2):
        with simulation.run(model="sir", seed=seed) as run:
            run.record(steps=5)
"""


def test_an_app_whose_jobs_end_at_exit_never_imports_pydantic(tmp_path: Path) -> None:
    """Importing pydantic and building the models costs ~165 ms, paid when a job span ends:
    often at exit, where it held a short app's end up."""
    env = base_env(tmp_path / "data", OTEL_TRACES_EXPORTER="jsonl", OTEL_METRICS_EXPORTER="jsonl")
    result = subprocess.run(
        [sys.executable, "-c", EXIT_APP], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    kinds, loaded = result.stdout.rsplit("KINDS", 1)[1].split("LOADED")
    assert sorted(kinds.split()) == ["calibration", "process", "simulation"]
    unwanted = {m for m in loaded.split() if m.startswith(("pydantic", "modeltel.store.schemas"))}
    assert not unwanted, sorted(unwanted)
