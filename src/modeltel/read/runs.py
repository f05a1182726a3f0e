"""Runs: the spans that share a ``modeltel.run.id`` resource attribute, across processes and files.

A run is what one ``MODELTEL_RUN_ID`` covers: a program and every process it started (pool workers,
MPI ranks, array tasks), each writing its own file. The id is on the resource of every line, so a
run is selected line by line from bytes, with no span decoded: a line holds exactly one run when
each of its resources names the run (:func:`select_line`), and only a line that mixes runs (a
Collector's file batches several resources in one request) is decoded to tell its spans apart.
A file holds a run when its bytes contain the run's id as a resource attribute value; the files
modeltel writes are one process each, so their first line names their run (:func:`file_run`).

Each process of a run is counted apart (:class:`RunProcess`), with the array task, rank and node
its resource names (``modeltel.hpc.array.task_id``, ``modeltel.parallel.rank``,
``modeltel.hpc.node``), so a cluster's run can be read per task and per rank (:meth:`RunInfo.positions`).
"""

from __future__ import annotations

import enum
import functools
import json
import mmap
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modeltel._internal import semconv
from modeltel.formats.status import STATUS_ERROR
from modeltel.read.files import ByteRange, iter_lines, read_blocks
from modeltel.read.layout import ERROR_CODES, MARK, STATUS, STRING

if TYPE_CHECKING:
    from modeltel.formats.otlp import Span
    from modeltel.store.schemas import RunSummary

RUN_KEY = semconv.RESOURCE_RUN_ID
_KEY = b'{"key":"' + RUN_KEY.encode() + b'","value":{"stringValue":'
_RUN_ID = re.compile(re.escape(_KEY) + STRING + rb"\}")
_SERVICE = b'{"key":"service.name","value":{"stringValue":'
_INSTANCE = b'{"key":"service.instance.id","value":{"stringValue":'
_RESOURCE = b'"resource":'
_TASK = b'{"key":"' + semconv.HPC_ARRAY_TASK_ID.encode() + b'","value":{"intValue":'
_RANK = b'{"key":"' + semconv.PARALLEL_RANK.encode() + b'","value":{"intValue":'
_NODE = b'{"key":"' + semconv.HPC_NODE.encode() + b'","value":{"stringValue":'
_INT = re.compile(rb'"?(-?\d+)"?\}')
_STRING = re.compile(STRING)
_START = re.compile(rb'"startTimeUnixNano":"?(\d+)')
_END = re.compile(rb'"endTimeUnixNano":"?(\d+)')
_JOB_NAME_ENDS = tuple(semconv.JOB_SPAN_SUFFIX.encode() + b'",' + after for after in (b'"kind":', MARK))
"""A span name ending in ``.job``, then its next field: a value is followed by ``"}``, never these."""


def _strings_after(data: bytes, prefix: bytes, value: re.Pattern[bytes] = _STRING) -> list[bytes]:
    """The raw JSON values (``value``'s group) that follow each ``prefix`` in ``data`` (found with
    ``bytes.find``: a resource key appears once per resource, so this is a handful of C-level
    searches)."""
    found, position = [], data.find(prefix)
    while position >= 0:
        match = value.match(data, position + len(prefix))
        if match is not None:
            found.append(match[1])
        position = data.find(prefix, position + len(prefix))
    return found


class Selection(enum.Enum):
    """What a line holds of one run."""

    NONE = "none"
    ALL = "all"
    SOME = "some"
    """Several resources, not all of this run: decode the line and keep the run's spans."""


_LOOSE_KEY = (
    rb'"key"\s*:\s*"' + re.escape(RUN_KEY.encode()) + rb'"\s*,\s*"value"\s*:\s*\{\s*"stringValue"\s*:\s*'
)


@functools.lru_cache(maxsize=8)
def _loose_mark(mark: bytes) -> re.Pattern[bytes]:
    """The run's key and id with any JSON whitespace between the tokens (a re-indented file)."""
    return re.compile(_LOOSE_KEY + re.escape(_run_id(mark)) + rb"\s*\}")


def _run_id(mark: bytes) -> bytes:
    """The run's id as a JSON string, the part of ``mark`` every layout spells alike."""
    return mark[len(_KEY) : -1]


def run_mark(run_id: str) -> bytes:
    """The bytes a line holds when one of its resources names ``run_id`` (as modeltel encodes it)."""
    return _KEY + json.dumps(run_id, ensure_ascii=False).encode() + b"}"


def select_line(data: bytes, mark: bytes, start: int = 0, stop: int | None = None) -> Selection:
    """How much of the line ``data[start:stop]`` belongs to the run whose :func:`run_mark` is
    ``mark``, from bytes alone (nothing copied).

    A ``modeltel.run.id`` key counted beyond the resources (a span attribute of that name) or a
    resource without the run sends the line to the decoder, which reads resources only.
    """
    stop = len(data) if stop is None else stop
    if data.find(_run_id(mark), start, stop) < 0:
        return Selection.NONE  # another run's line, the common case: one search decides it
    if data.find(mark, start, stop) < 0:  # not the compact layout (re-indented, spaced)?
        return Selection.SOME if _loose_mark(mark).search(data, start, stop) else Selection.NONE
    marks = data.count(mark, start, stop)
    if marks == data.count(_KEY, start, stop) == data.count(_RESOURCE, start, stop):
        return Selection.ALL
    return Selection.SOME


def span_run(span: Span) -> str | None:
    value = span.resource.attributes.get(RUN_KEY)
    return value if isinstance(value, str) else None


def _unescape(raw: bytes) -> str:
    if b"\\" in raw:
        text: str = json.loads(b'"' + raw + b'"')
        return text
    return raw.decode("utf-8", "replace")


def file_run(path: Path) -> str | None:
    """The run named by the first line's first resource (one process per file: the file's run)."""
    with open(path, "rb") as handle:
        match = _RUN_ID.search(handle.readline(1 << 20))
    return _unescape(match[1]) if match else None


def file_contains(path: Path, needles: Iterable[bytes]) -> bool:
    """Whether ``path`` holds one of ``needles`` (at memory speed, the file mapped, not read in)."""
    with open(path, "rb") as handle:
        if handle.seek(0, 2) == 0:
            return False
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return any(data.find(needle) >= 0 for needle in needles)


def file_has_run(path: Path, mark: bytes) -> bool:
    """Whether any line of ``path`` names the run (one pass, nothing decoded), compact or not."""
    with open(path, "rb") as handle:
        if handle.seek(0, 2) == 0:
            return False
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            if data.find(_run_id(mark)) < 0:
                return False  # another run's file: one pass over it
            return data.find(mark) >= 0 or _loose_mark(mark).search(data) is not None


def run_files(files: Sequence[Path], run_id: str) -> list[Path]:
    """The files holding spans of ``run_id``, in the order given."""
    mark = run_mark(run_id)
    return [path for path in files if file_has_run(path, mark)]


def newest_run(files: Sequence[Path]) -> str | None:
    """The run of the most recently written file that names one."""
    for path in sorted(files, key=lambda p: p.stat().st_mtime, reverse=True):
        run = file_run(path)
        if run is not None:
            return run
    return None


def known_runs(files: Sequence[Path]) -> list[str]:
    """The runs the files' first lines name, newest file first (each once)."""
    seen: dict[str, None] = {}
    for path in sorted(files, key=lambda p: p.stat().st_mtime, reverse=True):
        run = file_run(path)
        if run is not None:
            seen.setdefault(run)
    return list(seen)


def _earliest(first: int | None, other: int | None) -> int | None:
    return other if first is None else first if other is None else min(first, other)


def _latest(first: int | None, other: int | None) -> int | None:
    return other if first is None else first if other is None else max(first, other)


@dataclass(slots=True)
class RunProcess:
    """One process of a run: where the scheduler and the launcher put it, and what it wrote."""

    task: int | None = None
    """``modeltel.hpc.array.task_id`` of its resource: its task in a job array."""
    rank: int | None = None
    """``modeltel.parallel.rank`` of its resource: its rank in an MPI, srun or torchrun launch."""
    node: str | None = None
    spans: int = 0
    errors: int = 0
    start_ns: int | None = None
    end_ns: int | None = None

    def add_times(self, start: int | None, end: int | None) -> None:
        self.start_ns, self.end_ns = _earliest(self.start_ns, start), _latest(self.end_ns, end)


@dataclass(slots=True)
class Position:
    """The processes of a run at one array task and rank (either may be None): one row of the
    per-task, per-rank table of ``show --run``."""

    task: int | None
    rank: int | None
    nodes: set[str] = field(default_factory=set)
    processes: int = 0
    spans: int = 0
    errors: int = 0
    start_ns: int | None = None
    end_ns: int | None = None

    @property
    def duration_s(self) -> float:
        """From its first span's start to its last span's end."""
        if self.start_ns is None or self.end_ns is None:
            return 0.0
        return (self.end_ns - self.start_ns) / 1e9

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "rank": self.rank,
            "nodes": sorted(self.nodes),
            "processes": self.processes,
            "spans": self.spans,
            "errors": self.errors,
            "start_unix_nano": self.start_ns,
            "end_unix_nano": self.end_ns,
            "duration_s": self.duration_s,
        }


@dataclass(slots=True)
class RunInfo:
    """One row of ``modeltel runs``."""

    run_id: str | None
    """None for spans whose resource names no run (written without modeltel)."""
    services: set[str] = field(default_factory=set)
    processes: dict[str, RunProcess] = field(default_factory=dict)
    """By ``service.instance.id`` of each process, else its file."""
    files: set[Path] = field(default_factory=set)
    jobs: int = 0
    job_errors: int = 0
    finished_processes: int = 0
    """Processes of the run whose ``process`` summary (written at a clean shutdown) was found."""
    has_summaries: bool = False

    def process(self, key: str, task: int | None, rank: int | None, node: str | None) -> RunProcess:
        found = self.processes.get(key)
        if found is None:
            found = self.processes[key] = RunProcess(task, rank, node)
        return found

    @property
    def spans(self) -> int:
        return sum(p.spans for p in self.processes.values())

    @property
    def errors(self) -> int:
        return sum(p.errors for p in self.processes.values())

    @property
    def start_ns(self) -> int | None:
        return min((p.start_ns for p in self.processes.values() if p.start_ns is not None), default=None)

    @property
    def end_ns(self) -> int | None:
        return max((p.end_ns for p in self.processes.values() if p.end_ns is not None), default=None)

    @property
    def tasks(self) -> int:
        """The array tasks its processes ran as (0: not an array)."""
        return len({p.task for p in self.processes.values() if p.task is not None})

    @property
    def ranks(self) -> int:
        """The ranks its processes ran as (0: no parallel launch)."""
        return len({p.rank for p in self.processes.values() if p.rank is not None})

    @property
    def duration_s(self) -> float:
        start, end = self.start_ns, self.end_ns
        if start is None or end is None:
            return 0.0
        return (end - start) / 1e9

    @property
    def status(self) -> str:
        """``error`` (a job failed), ``ok`` (every process shut down cleanly), ``unfinished``
        (a process still running, killed or crashed), or ``-`` (no summaries to tell: files
        from elsewhere)."""
        if self.job_errors:
            return "error"
        if not self.has_summaries:
            return "-"
        return "ok" if self.finished_processes >= len(self.processes) else "unfinished"

    def positions(self) -> list[Position]:
        """Its processes grouped by array task and rank, in task then rank order (unknown last)."""
        rows: dict[tuple[int | None, int | None], Position] = {}
        for process in self.processes.values():
            key = (process.task, process.rank)
            row = rows.get(key)
            if row is None:
                row = rows[key] = Position(process.task, process.rank)
            if process.node is not None:
                row.nodes.add(process.node)
            row.processes += 1
            row.spans += process.spans
            row.errors += process.errors
            row.start_ns = _earliest(row.start_ns, process.start_ns)
            row.end_ns = _latest(row.end_ns, process.end_ns)

        def order(key: tuple[int | None, int | None]) -> tuple[bool, int, bool, int]:
            task, rank = key
            return (task is None, task or 0, rank is None, rank or 0)

        return [rows[key] for key in sorted(rows, key=order)]

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "services": sorted(self.services),
            "start_unix_nano": self.start_ns,
            "end_unix_nano": self.end_ns,
            "duration_s": self.duration_s,
            "processes": len(self.processes),
            "tasks": self.tasks,
            "ranks": self.ranks,
            "files": sorted(str(p) for p in self.files),
            "spans": self.spans,
            "errors": self.errors,
            "jobs": self.jobs,
            "status": self.status,
        }


def _one_value(
    data: bytes, prefix: bytes, value: re.Pattern[bytes], resources: int
) -> tuple[bool, bytes | None]:
    """``(True, raw)`` when every resource of ``data`` gives the key of ``prefix`` the same value
    (``raw`` None: none gives it one); ``(False, None)`` when the key is counted beyond the
    resources or its values differ."""
    found = _strings_after(data, prefix, value)
    if not found:
        return data.find(prefix) < 0, None
    return (len(found) == resources and len(set(found)) == 1), found[0]


def _add_process_data(info: RunInfo, data: bytes, path: Path) -> bool:
    """Count ``data`` (lines whose every span is of ``info``'s run) from bytes when it is one
    process's: its resources name one ``service.instance.id`` (or none) and one task, rank and
    node. False, with nothing counted, when it is not (a Collector's line of several processes)."""
    instances = set(_strings_after(data, _INSTANCE))
    resources = data.count(_RESOURCE)
    if len(instances) > 1 or (instances and data.count(_INSTANCE) != resources):
        return False
    facts = [
        _one_value(data, key, pattern, resources)
        for key, pattern in ((_TASK, _INT), (_RANK, _INT), (_NODE, _STRING))
    ]
    if not all(whole for whole, _ in facts):
        return False
    (_, task), (_, rank), (_, node) = facts
    key = _unescape(instances.pop()) if instances else str(path)
    process = info.process(
        key,
        None if task is None else int(task),
        None if rank is None else int(rank),
        None if node is None else _unescape(node),
    )
    info.files.add(path)
    info.services.update(_unescape(raw) for raw in _strings_after(data, _SERVICE))
    process.spans += data.count(MARK)
    process.errors += sum(code in ERROR_CODES for code in STATUS.findall(data))
    info.jobs += sum(data.count(end) for end in _JOB_NAME_ENDS)
    starts, ends = _START.findall(data), _END.findall(data)
    process.add_times(min(map(int, starts)) if starts else None, max(map(int, ends)) if ends else None)
    return True


def _int_attribute(span: Span, key: str) -> int | None:
    value = span.resource.attributes.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _add_span(info: RunInfo, span: Span, path: Path) -> None:
    attributes = span.resource.attributes
    instance, node = attributes.get("service.instance.id"), attributes.get(semconv.HPC_NODE)
    process = info.process(
        instance if isinstance(instance, str) else str(path),
        _int_attribute(span, semconv.HPC_ARRAY_TASK_ID),
        _int_attribute(span, semconv.PARALLEL_RANK),
        node if isinstance(node, str) else None,
    )
    info.files.add(path)
    info.services.add(span.resource.service_name)
    process.spans += 1
    process.errors += span.status_code == STATUS_ERROR
    info.jobs += span.name.endswith(semconv.JOB_SPAN_SUFFIX)
    process.add_times(span.start_ns, span.end_ns)


def _one_run(data: bytes) -> tuple[bool, str | None]:
    """``(True, run)`` when every span of ``data`` belongs to one run (``None``: spans whose
    resource names no run); ``(False, None)`` when it holds several runs, or resources that name
    none beside ones that do (then its lines, or its spans, are told apart one by one)."""
    found = _RUN_ID.findall(data)
    ids = set(found)
    named = data.count(_KEY)
    if len(ids) > 1 or named != len(found) or (named and named != data.count(_RESOURCE)):
        return False, None
    return True, (_unescape(ids.pop()) if ids else None)


def list_runs(files: Sequence[Path], summaries: Iterable[RunSummary] = ()) -> list[RunInfo]:
    """Every run in ``files``, newest (latest start) first; ``summaries`` give each run's status.

    Counted from bytes, a block at a time when a block is one process's (as a process's file is),
    so a line is never decoded unless it mixes runs or processes; a torn or invalid line is not checked here
    (``show`` and ``doctor`` name those), it adds what it holds.
    """
    runs: dict[str | None, RunInfo] = {}

    def info(run_id: str | None) -> RunInfo:
        found = runs.get(run_id)
        if found is None:
            found = runs[run_id] = RunInfo(run_id)
        return found

    for path in files:
        for block in read_blocks(ByteRange(path, 0, path.stat().st_size)):
            whole, run = _one_run(block.data)  # a process's file: every line of a block is one process's
            if whole and _add_process_data(info(run), block.data, path):
                continue
            for _, line in iter_lines(block):
                whole, run = _one_run(line)
                if whole and _add_process_data(info(run), line, path):
                    continue
                # Imported here, where a line is decoded: the decoder costs ~15 ms of import.
                from modeltel.formats.otlp import InvalidRequest, decode_line

                try:
                    spans = decode_line(line)
                except InvalidRequest:
                    continue
                for span in spans:
                    _add_span(info(span_run(span)), span, path)
    for summary in summaries:
        found = runs.get(summary.run_id)
        if found is None:
            continue
        found.has_summaries = True
        if summary.kind == "process":
            found.finished_processes += 1
        elif summary.status == "error":
            found.job_errors += 1
    return sorted(runs.values(), key=lambda r: r.start_ns or 0, reverse=True)


def run_positions(files: Sequence[Path], run_id: str) -> list[Position]:
    """The processes of ``run_id`` in ``files`` per array task and rank (:meth:`RunInfo.positions`)."""
    for info in list_runs(files):
        if info.run_id == run_id:
            return info.positions()
    return []
