"""The schemas of the small files modeltel writes beside the OTLP/JSON data, each with a version.

The writers build these records on hot or signal-time paths as plain dicts and ``json.dumps`` them;
the readers validate what they find against the models here, strictly (a bool is not a count, a
time must be finite), so a damaged or hostile file is reported with what is wrong and skipped.
A record with a newer ``schema_version`` is read for the fields this version knows.
"""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

PROGRESS_SCHEMA_VERSION = 1
CURSOR_SCHEMA_VERSION = 1


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
