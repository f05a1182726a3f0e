"""What the batch scheduler and the parallel launcher say about this process, from its environment.

Pure functions of an environment mapping (SDK-free, so ``modeltel._internal.config`` can take the run id from
here without importing the SDK): :func:`scheduler_job` reads SLURM, PBS/Torque/PBS Pro, LSF and SGE,
:func:`parallel_position` reads the rank variables of Open MPI, MPICH/Intel MPI (PMI), torchrun and
srun, and :func:`exports_remotely` decides whether a rank is one of those ``MODELTEL_RANKS`` picks.

A value that cannot be what the scheduler documents (a rank that is not a whole number) is a
:class:`LaunchProblem`, not an exception: telemetry must never stop a job that is already running on
a cluster. The resource detectors (:mod:`modeltel._internal.detectors`) warn once per problem; the run id
never needs the values that can be bad.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

# semconv (with OpenTelemetry's semantic-convention modules) is imported by the functions that name
# attributes: the parent of `modeltel run` reads the job id here and names none.


__all__ = [
    "RANKS_CHOICES",
    "LaunchProblem",
    "ParallelPosition",
    "SchedulerJob",
    "exports_remotely",
    "launch_run_id",
    "parallel_position",
    "parse_ranks",
    "scheduler_job",
]


class LaunchProblem(NamedTuple):
    """A scheduler or launcher variable whose value was ignored, and why.

    This and :class:`SchedulerJob` are named tuples, not frozen dataclasses: every configured
    process imports this module, most outside any scheduler, and a frozen dataclass costs ~1 ms to build.
    """

    variable: str
    value: str
    reason: str

    def __str__(self) -> str:
        return f"{self.variable}={self.value!r}: {self.reason}; ignoring it"


class SchedulerJob(NamedTuple):
    """The batch job this process belongs to (one array task, for an array)."""

    scheduler: str
    job_id: str
    name: str | None = None
    array_job_id: str | None = None
    array_task_id: int | None = None
    cluster: str | None = None
    node: str | None = None

    @property
    def run_id(self) -> str:
        """One id for every task and rank of one submission: the array's job id for an array task."""
        return self.array_job_id or self.job_id

    def attributes(self) -> dict[str, str | int]:
        """The ``modeltel.hpc.*`` resource attributes; absent facts are left out, never empty."""
        from modeltel._internal import semconv as sc

        values: dict[str, str | int | None] = {
            sc.HPC_SCHEDULER: self.scheduler,
            sc.HPC_JOB_ID: self.job_id,
            sc.HPC_JOB_NAME: self.name,
            sc.HPC_ARRAY_JOB_ID: self.array_job_id,
            sc.HPC_ARRAY_TASK_ID: self.array_task_id,
            sc.HPC_CLUSTER: self.cluster,
            sc.HPC_NODE: self.node,
        }
        return {k: v for k, v in values.items() if v is not None}


@dataclass(frozen=True)
class ParallelPosition:
    """Where this process sits in a parallel launch: its rank among ``world_size``."""

    launcher: str
    rank: int | None = None
    local_rank: int | None = None
    world_size: int | None = None
    job_id: str | None = field(default=None, compare=False)
    """The launcher's own id for the launch, shared by its ranks (a run id without a scheduler)."""

    def attributes(self) -> dict[str, str | int]:
        """The ``modeltel.parallel.*`` resource attributes; unknown numbers are left out."""
        from modeltel._internal import semconv as sc

        values: dict[str, str | int | None] = {
            sc.PARALLEL_LAUNCHER: self.launcher,
            sc.PARALLEL_RANK: self.rank,
            sc.PARALLEL_LOCAL_RANK: self.local_rank,
            sc.PARALLEL_WORLD_SIZE: self.world_size,
        }
        return {k: v for k, v in values.items() if v is not None}


class _Reader:
    def __init__(self, environ: Mapping[str, str], problems: list[LaunchProblem] | None) -> None:
        self.environ = environ
        self.problems = problems if problems is not None else []

    def text(self, *names: str) -> str | None:
        for name in names:
            value = self.environ.get(name, "").strip()
            if value:
                return value
        return None

    def number(self, name: str, minimum: int = 0, absent: frozenset[str] = frozenset()) -> int | None:
        """A whole number >= ``minimum`` from ``name``; values in ``absent`` mean "not set"."""
        value = self.text(name)
        if value is None or value.lower() in absent:
            return None
        try:
            number = int(value)
        except ValueError:
            self.problems.append(LaunchProblem(name, value, "not a whole number"))
            return None
        if number < minimum:
            self.problems.append(LaunchProblem(name, value, f"must be >= {minimum}"))
            return None
        return number


def _slurm(r: _Reader) -> SchedulerJob | None:
    job_id = r.text("SLURM_JOB_ID", "SLURM_JOBID")
    if job_id is None:
        return None
    return SchedulerJob(
        "slurm",
        job_id,
        name=r.text("SLURM_JOB_NAME"),
        array_job_id=r.text("SLURM_ARRAY_JOB_ID"),
        array_task_id=r.number("SLURM_ARRAY_TASK_ID"),
        cluster=r.text("SLURM_CLUSTER_NAME"),
        node=r.text("SLURMD_NODENAME"),
    )


_PBS_SUBJOB = re.compile(r"\[\d+\]")


def _pbs(r: _Reader) -> SchedulerJob | None:
    # PBS Pro and Torque name a subjob "1234[3].server" and its array "1234[].server".
    job_id = r.text("PBS_JOBID")
    if job_id is None:
        return None
    index_variable = "PBS_ARRAY_INDEX" if r.text("PBS_ARRAY_INDEX") is not None else "PBS_ARRAYID"
    task = r.number(index_variable)
    array_id = r.text("PBS_ARRAY_ID")
    if array_id is None and _PBS_SUBJOB.search(job_id):
        array_id = _PBS_SUBJOB.sub("[]", job_id, count=1)
    server = job_id.partition(".")[2] or None
    return SchedulerJob(
        "pbs",
        job_id,
        name=r.text("PBS_JOBNAME"),
        array_job_id=array_id,
        array_task_id=task,
        cluster=r.text("PBS_SERVER") or server,
    )


def _lsf(r: _Reader) -> SchedulerJob | None:
    # LSF gives every element of an array the array's LSB_JOBID; LSB_JOBINDEX is 0 outside arrays.
    job_id = r.text("LSB_JOBID")
    if job_id is None:
        return None
    index = r.number("LSB_JOBINDEX")
    if not index:
        return SchedulerJob("lsf", job_id, name=r.text("LSB_JOBNAME"))
    return SchedulerJob(
        "lsf", f"{job_id}[{index}]", name=r.text("LSB_JOBNAME"), array_job_id=job_id, array_task_id=index
    )


def _sge(r: _Reader) -> SchedulerJob | None:
    # JOB_ID alone is too common a name to mean Grid Engine: it must come with an SGE_ variable.
    job_id = r.text("JOB_ID")
    if job_id is None or r.text("SGE_TASK_ID", "SGE_ROOT", "SGE_CELL") is None:
        return None
    task = r.number("SGE_TASK_ID", absent=frozenset({"undefined"}))
    return SchedulerJob(
        "sge",
        job_id if task is None else f"{job_id}.{task}",
        name=r.text("JOB_NAME"),
        array_job_id=None if task is None else job_id,
        array_task_id=task,
        cluster=r.text("SGE_CLUSTER_NAME", "SGE_CELL"),
        node=r.text("HOSTNAME"),
    )


SCHEDULERS = {"slurm": _slurm, "pbs": _pbs, "lsf": _lsf, "sge": _sge}
"""Scheduler readers in the order they are tried: the first whose job id is set wins."""


def scheduler_job(
    environ: Mapping[str, str], problems: list[LaunchProblem] | None = None, only: str | None = None
) -> SchedulerJob | None:
    """The batch job ``environ`` belongs to, or None outside a scheduler; bad values go to ``problems``.

    ``only`` reads one scheduler (a detector per scheduler); by default the first one found.
    """
    reader = _Reader(environ, problems)
    for name, read in SCHEDULERS.items():
        if only is not None and name != only:
            continue
        found = read(reader)
        if found is not None:
            return found
    return None


_LAUNCHERS: tuple[tuple[str, str, str, str, str | None], ...] = (
    # launcher, rank, world size, local rank, the launch's own id
    (
        "openmpi",
        "OMPI_COMM_WORLD_RANK",
        "OMPI_COMM_WORLD_SIZE",
        "OMPI_COMM_WORLD_LOCAL_RANK",
        "PMIX_NAMESPACE",
    ),
    ("pmi", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", None),
    ("torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK", "TORCHELASTIC_RUN_ID"),
    ("slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", None),
)
"""Rank variables per launcher, most specific first: mpirun inside an allocation wins over srun."""


def parallel_position(
    environ: Mapping[str, str], problems: list[LaunchProblem] | None = None
) -> ParallelPosition | None:
    """This process's rank, local rank and world size from the first launcher that set a rank.

    torchrun's generic names count only together (``RANK`` and ``WORLD_SIZE``), so an unrelated
    ``RANK`` variable is not taken for a launch.
    """
    reader = _Reader(environ, problems)
    for launcher, rank, size, local, job in _LAUNCHERS:
        if reader.text(rank) is None or (launcher == "torchrun" and reader.text(size) is None):
            continue
        return ParallelPosition(
            launcher,
            rank=reader.number(rank),
            local_rank=reader.number(local),
            world_size=reader.number(size, minimum=1),
            job_id=reader.text(job) if job is not None else None,
        )
    return None


def launch_run_id(environ: Mapping[str, str]) -> str | None:
    """The default ``MODELTEL_RUN_ID``: the scheduler's job (array) id, else the launcher's own id."""
    job = scheduler_job(environ)
    if job is not None:
        return job.run_id
    position = parallel_position(environ)
    return position.job_id if position is not None else None


RANKS_CHOICES = "all, first, first-per-node or sample:N (N >= 1)"
_SAMPLE = re.compile(r"sample:([1-9]\d*)")


def parse_ranks(value: str) -> str | None:
    """``value`` normalised when it is a valid ``MODELTEL_RANKS``, else None."""
    lowered = value.strip().lower()
    if lowered in ("all", "first", "first-per-node") or _SAMPLE.fullmatch(lowered):
        return lowered
    return None


def exports_remotely(ranks: str, position: ParallelPosition | None) -> bool:
    """Whether the rank at ``position`` is one that ``ranks`` (a parsed ``MODELTEL_RANKS``) picks.

    A process with no known rank is rank 0 of 1. ``first-per-node`` takes local rank 0 (rank 0 when
    the launcher gives no local rank). ``sample:N`` takes N ranks spread evenly from rank 0
    (``floor(i * size / N)``), so every rank decides alone, with no message exchanged.
    """
    rank = position.rank if position is not None and position.rank is not None else 0
    if ranks == "all":
        return True
    if ranks == "first":
        return rank == 0
    if ranks == "first-per-node":
        local = position.local_rank if position is not None else None
        return (local if local is not None else rank) == 0
    match = _SAMPLE.fullmatch(ranks)
    assert match is not None, ranks
    wanted = int(match.group(1))
    size = position.world_size if position is not None and position.world_size else 1
    if wanted >= size:
        return True
    return rank in {i * size // wanted for i in range(wanted)}
