"""Jobs that are still open: the progress records under ``<data_dir>/running/``.

The JSONL pipeline writes one small JSON file per open ``*.job`` span (``modeltel._internal.export.progress``)
and removes it when the job ends. A file left behind by a process that died (SIGKILL, power loss,
``os._exit``) is reported as ``stale``; one written on another host (a data dir on a shared file
system) cannot be checked from here and is reported as ``remote``. Reading never writes or removes
anything.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from modeltel._internal.process import is_alive
from modeltel.read.files import BadLine
from modeltel.store.layout import RUNNING_DIR

if TYPE_CHECKING:
    from modeltel.store.schemas import ProgressRecord

MAX_RECORD_BYTES = 64 << 10
"""A record is a few hundred bytes; anything much larger is not one and is not read."""

Status = Literal["running", "stale", "remote"]


@dataclass(frozen=True, slots=True)
class RunningJob:
    """One open job as its record says, with whether its process still runs."""

    path: Path
    record: ProgressRecord
    status: Status
    now: float

    @property
    def elapsed_s(self) -> float:
        """Since the job started; for a stale job, until its last update."""
        end = self.now if self.status != "stale" else self.record.updated
        return max(0.0, end - self.record.started)

    @property
    def progress(self) -> tuple[int, int | None, str] | None:
        """``(done, total or None, unit)``: iterations, runs or predict batches."""
        record = self.record
        for done_key, total_key, unit in (
            ("iterations", "max_iterations", "iterations"),
            ("runs", "n_tasks", "runs"),
            ("batches", None, "batches"),
        ):
            done = getattr(record, done_key)
            if isinstance(done, int):
                total = getattr(record, total_key) if total_key else None
                return done, total if isinstance(total, int) and total > 0 else None, unit
        return None

    @property
    def fraction(self) -> float | None:
        progress = self.progress
        if progress is None or progress[1] is None:
            return None
        return min(1.0, progress[0] / progress[1])

    @property
    def eta_s(self) -> float | None:
        """Rough time left: the rate so far (steps per second up to the last update) over what is left.

        None without a total, before the first step, or for a job that is not running.
        """
        progress = self.progress
        if self.status == "stale" or progress is None:
            return None
        done, total, _ = progress
        if total is None or done <= 0:
            return None
        spent = self.record.updated - self.record.started
        if spent <= 0:
            return None
        left = (total - done) * spent / done - (self.now - self.record.updated)
        return max(0.0, left)

    def to_json(self) -> dict[str, Any]:
        progress = self.progress
        return {
            **self.record.model_dump(),
            "status": self.status,
            "path": str(self.path),
            "elapsed_s": self.elapsed_s,
            "done": None if progress is None else progress[0],
            "total": None if progress is None else progress[1],
            "unit": None if progress is None else progress[2],
            "fraction": self.fraction,
            "eta_s": self.eta_s,
        }


def parse_record(data: bytes) -> ProgressRecord:
    """A progress record from a file's bytes; ValueError naming what is wrong."""
    from pydantic import ValidationError

    from modeltel.store.schemas import ProgressRecord  # pydantic: only when a job is open

    try:
        return ProgressRecord.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "record"
        raise ValueError(f"{where}: {first['msg']}") from None


def status_of(record: ProgressRecord, host: str) -> Status:
    """``running`` if the writing process is alive on this host, ``stale`` if gone, else ``remote``."""
    if record.host != host:
        return "remote"
    return "running" if is_alive(record.pid, record.pid_start) else "stale"


def running_jobs(
    data_dir: Path,
    *,
    now: float | None = None,
    on_bad_file: Callable[[BadLine], None] | None = None,
) -> list[RunningJob]:
    """The progress records in ``data_dir``, oldest job first; unreadable ones go to ``on_bad_file``.

    A record that vanishes while being listed (its job just ended) is simply not there.
    """
    folder = data_dir / RUNNING_DIR
    try:
        names = sorted(p.name for p in folder.iterdir() if p.suffix == ".json" and not p.name.startswith("."))
    except (FileNotFoundError, NotADirectoryError):
        return []
    host = socket.gethostname()
    moment = time.time() if now is None else now
    found = []
    for name in names:
        path = folder / name
        try:
            if not path.is_file() or path.is_symlink():
                continue
            with open(path, "rb") as handle:
                data = handle.read(MAX_RECORD_BYTES + 1)
        except FileNotFoundError:
            continue
        try:
            if len(data) > MAX_RECORD_BYTES:
                raise ValueError(f"larger than {MAX_RECORD_BYTES} bytes")
            record = parse_record(data)
        except ValueError as exc:
            if on_bad_file is not None:
                on_bad_file(BadLine(path, 1, f"not a progress record: {exc}"))
            continue
        found.append(RunningJob(path, record, status_of(record, host), moment))
    found.sort(key=lambda job: job.record.started)
    return found
