"""The health of a data dir, for ``modeltel doctor``: files, size, lines that cannot be read, jobs.

Read-only, and the same reader every command uses: trace lines go through the parallel scan (so a
torn or invalid line here is exactly one that ``show`` would skip), metric lines are checked to be
JSON objects holding ``resourceMetrics``, summaries are validated as RunSummary lines.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modeltel.read.files import BadLine, file_blocks, iter_lines, line_number
from modeltel.read.query import aggregate
from modeltel.read.running import running_jobs
from modeltel.read.scan import Query
from modeltel.read.summaries import iter_summaries
from modeltel.store.layout import DataDir

MAX_BAD_LINES_SHOWN = 5


@dataclass
class DataDirHealth:
    """What :func:`data_dir_health` found."""

    path: Path
    exists: bool
    trace_files: int = 0
    metric_files: int = 0
    bytes: int = 0
    spans: int = 0
    summaries: int = 0
    bad_lines: list[BadLine] = field(default_factory=list)
    running: dict[str, int] = field(default_factory=dict)
    replay_cursor: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "exists": self.exists,
            "trace_files": self.trace_files,
            "metric_files": self.metric_files,
            "bytes": self.bytes,
            "spans": self.spans,
            "summaries": self.summaries,
            "bad_lines": len(self.bad_lines),
            "bad_line_examples": [str(bad) for bad in self.bad_lines[:MAX_BAD_LINES_SHOWN]],
            "running_jobs": self.running,
            "replay_cursor": self.replay_cursor,
        }


def data_dir_health(data_dir: Path) -> DataDirHealth:
    """Count and check everything under ``data_dir``; a missing dir is reported, not an error."""
    health = DataDirHealth(data_dir, data_dir.is_dir())
    if not health.exists:
        return health
    layout = DataDir(data_dir)
    traces, metrics = layout.files("traces"), layout.files("metrics")
    health.trace_files, health.metric_files = len(traces), len(metrics)
    summaries = layout.summaries
    health.bytes = sum(p.stat().st_size for p in (*traces, *metrics)) + (
        summaries.stat().st_size if summaries.is_file() else 0
    )
    found = aggregate(traces, Query(), on_bad_line=health.bad_lines.append)
    health.spans = found.table.span_count
    for path in metrics:
        _check_metric_lines(path, health.bad_lines.append)
    if summaries.is_file():
        health.summaries = sum(1 for _ in iter_summaries([summaries], on_bad_line=health.bad_lines.append))
    for job in running_jobs(data_dir, on_bad_file=health.bad_lines.append):
        health.running[job.status] = health.running.get(job.status, 0) + 1
    health.replay_cursor = layout.replay_cursor.is_file()
    return health


def _check_metric_lines(path: Path, report: Callable[[BadLine], None]) -> None:
    for block in file_blocks(path, report):
        for offset, line in iter_lines(block):
            reason: str | None = None
            try:
                document = json.loads(line)
            except (ValueError, RecursionError):
                torn = block.at_eof and offset + len(line) == block.offset + len(block.data)
                reason = "torn last line" if torn else "not JSON"
            else:
                if not isinstance(document, dict) or not (
                    "resourceMetrics" in document or "resource_metrics" in document
                ):
                    reason = "not an OTLP/JSON metrics request"
            if reason is not None:
                report(BadLine(path, line_number(path, offset), reason))
