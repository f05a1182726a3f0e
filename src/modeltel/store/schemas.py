"""The schemas of the files modeltel writes beside the OTLP/JSON data, each with a version.

:class:`RunSummary` (``summaries.jsonl``), :class:`ProgressRecord` (``running/``) and
:class:`ReplayCursor` (``replay-cursor.json``). Here rather than beside their writers so that a
reader validates a summary without importing the OpenTelemetry SDK. They are the readers'
contract: pydantic costs ~165 ms, paid by every short process that imports it, so the progress
writer builds its record and the process and job summaries their lines as plain dicts, and tests
hold what they write to :class:`ProgressRecord` and :class:`RunSummary`. Readers validate
strictly (a bool is not a count, a time must be finite), so a damaged or hostile file is reported
with what is wrong and skipped; a record with a newer ``schema_version`` is read for the fields
this version knows.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

from modeltel.store.layout import CURSOR_SCHEMA_VERSION as CURSOR_SCHEMA_VERSION
from modeltel.store.layout import PROGRESS_SCHEMA_VERSION as PROGRESS_SCHEMA_VERSION
from modeltel.store.layout import SUMMARY_SCHEMA_VERSION as SUMMARY_SCHEMA_VERSION


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    return value


Seconds = Annotated[StrictFloat | StrictInt, AfterValidator(_finite)]
Count = Annotated[StrictInt, Field(ge=0)]


class ProgressRecord(BaseModel):
    """``running/<pid>-<span_id>.json``: one open job, replaced as it advances, removed when it ends.

    Times are Unix seconds. ``pid_start`` is the process's start in clock ticks since boot (Linux),
    so a reused pid is not taken for the job's process.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: StrictInt = PROGRESS_SCHEMA_VERSION
    kind: StrictStr
    job_name: StrictStr | None = None
    service: StrictStr | None = None
    trace_id: StrictStr
    span_id: StrictStr
    pid: Count
    pid_start: StrictStr | None = None
    host: StrictStr
    started: Seconds
    updated: Seconds
    iterations: Count | None = None
    max_iterations: Count | None = None
    best_loss: Seconds | None = None
    direction: StrictStr | None = None
    runs: Count | None = None
    n_tasks: Count | None = None
    batches: Count | None = None


class CursorEntry(BaseModel):
    """How far one file went to one endpoint: every byte before ``offset`` was acknowledged."""

    model_config = ConfigDict(extra="ignore")

    offset: Count
    head: StrictStr | None = None
    """SHA-256 of the file's first bytes up to ``offset`` (at most 4 KiB): a replaced file starts again."""
    updated: Seconds | None = None


class ReplayCursor(BaseModel):
    """``replay-cursor.json``: endpoint key (signal, protocol, URL) → file → :class:`CursorEntry`.

    A file inside the data dir is keyed by its path relative to it, so a copied data dir keeps its
    cursor.
    """

    model_config = ConfigDict(extra="ignore")

    schema_version: StrictInt = CURSOR_SCHEMA_VERSION
    endpoints: dict[str, dict[str, CursorEntry]]


class DurationStats(BaseModel):
    """Durations of the spans of one name, in seconds."""

    count: int
    errors: int
    total_s: float
    mean_s: float
    min_s: float
    p50_s: float
    p95_s: float
    max_s: float


class NumericStats(BaseModel):
    """A numeric span attribute over every span that carried it."""

    count: int
    sum: float
    mean: float
    min: float
    max: float


class TrajectoryPoint(BaseModel):
    """An iteration that improved the best loss, and the best loss after it."""

    iteration: int
    best_loss: float


class CalibrationSummary(BaseModel):
    """What a calibration job found and where its time went (ask / evaluate / tell, seconds)."""

    direction: Literal["minimize", "maximize"] = "minimize"
    iterations: int = 0
    best_loss: float | None = None
    iterations_to_best: int | None = None
    trajectory: list[TrajectoryPoint] = Field(default_factory=list)
    phase_seconds: dict[str, float] = Field(default_factory=dict)


class QualitySnapshot(BaseModel):
    """An inference job's output quality over all its predictions (confidence, rejects, classes)."""

    predictions: int = 0
    confidence_mean: float | None = None
    confidence_median: float | None = None
    confidence_p5: float | None = None
    confidence_p95: float | None = None
    confidence_std: float | None = None
    reject_rate: float | None = None
    entropy_mean: float | None = None
    class_distribution: dict[str, float] = Field(default_factory=dict)
    """Fraction of predictions per class, most frequent first (at most 64 classes)."""
    feature_missingness: dict[str, float] = Field(default_factory=dict)
    """Fraction of missing values per feature column that had any, worst first (at most 64)."""


class RunSummary(BaseModel):
    """What one process (kind ``process``) or one job recorded. ``schema_version`` guards readers."""

    schema_version: int = SUMMARY_SCHEMA_VERSION
    kind: Literal["process", "simulation", "calibration", "inference"]
    service: str
    run_id: str
    pid: int
    job_name: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    start: datetime
    end: datetime
    duration_s: float
    status: Literal["ok", "error"]
    span_count: int
    dropped_spans: int = 0
    """Spans this process recorded that never reached its JSONL file (write errors, stalls)."""
    by_name: dict[str, DurationStats] = Field(default_factory=dict)
    numeric: dict[str, NumericStats] = Field(default_factory=dict)
    calibration: CalibrationSummary | None = None
    """Calibration jobs only."""
    quality: QualitySnapshot | None = None
    """Inference jobs only."""
