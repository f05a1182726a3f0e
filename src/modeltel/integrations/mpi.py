"""MPI (mpi4py, the ``[mpi]`` extra): one trace per MPI job, every rank's spans on disk before Finalize.

::

    from mpi4py import MPI
    from modeltel import simulation
    from modeltel.integrations import mpi

    comm = MPI.COMM_WORLD
    mpi.instrument(comm)                       # collective: every rank calls it
    with simulation.run(model="heat", seed=comm.rank):
        ...

    $ mpirun -n 64 python app.py

:func:`instrument` is collective over ``comm``. Rank 0 opens the job span ``mpi.job`` (a child of
whatever is current there, e.g. the ``TRACEPARENT`` of ``modeltel run``) and broadcasts its W3C
carrier; every rank then opens ``mpi.rank`` under it and makes it current, so each rank's work is
in the one trace, written by that rank to its own file. Every rank carries its rank, local rank and
world size as resource attributes (``modeltel.parallel.*``), and ``MODELTEL_RANKS`` picks which
ranks also send over OTLP.

The job ends (collectively: the rank spans end, a barrier, then rank 0's job span) and every rank
flushes, at whichever comes first: :meth:`MpiJob.end` or leaving a ``with`` block, the program's
own ``MPI.Finalize()`` (wrapped to end the job first), or normal interpreter exit. mpi4py finalizes
MPI from a C-level exit hook that runs after every Python ``atexit`` handler, so the exit path
still has MPI for the barrier, and modeltel's flush has finished before ``MPI_Finalize`` starts:
a launcher that tears a job down once its ranks have finalized loses nothing.
"""

from __future__ import annotations

import atexit
import threading
from types import TracebackType
from typing import Any

from mpi4py import MPI
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from modeltel._internal import providers
from modeltel._internal import semconv as sc
from modeltel._internal.propagation import capture, extract

__all__ = ["MpiJob", "instrument"]

_lock = threading.Lock()
_open_jobs: list[MpiJob] = []
_original_finalize: Any = None


class MpiJob:
    """What :func:`instrument` opened on this rank: end it once, collectively, from any route."""

    def __init__(self, comm: MPI.Comm, job_span: Span | None, rank_span: Span, token: object) -> None:
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self._job_span = job_span
        self._rank_span = rank_span
        self._token = token
        self._ended = False
        self._lock = threading.Lock()

    def end(self) -> None:
        """End this rank's span, wait for every rank, end the job span on rank 0, flush; collective.

        A second call does nothing. After ``MPI_Finalize`` (the program finalized with no job
        open) there is no barrier to wait at: the spans end and flush all the same.
        """
        with self._lock:
            if self._ended:
                return
            self._ended = True
        with _lock:
            if self in _open_jobs:
                _open_jobs.remove(self)
        self._rank_span.end()
        if not MPI.Is_finalized():
            self.comm.Barrier()
        if self._job_span is not None:
            self._job_span.end()
        handle = providers.current()
        if handle is not None:
            handle.force_flush()

    def __enter__(self) -> MpiJob:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if error is not None:
            self._rank_span.set_attribute(sc.ERROR_TYPE, type(error).__qualname__)
            message = str(error)[: sc.ERROR_MESSAGE_MAX_CHARS]
            self._rank_span.set_status(Status(StatusCode.ERROR, message))
        try:
            otel_context.detach(self._token)  # type: ignore[arg-type]
        finally:
            self.end()


def instrument(comm: MPI.Comm | None = None) -> MpiJob:
    """Join every rank of ``comm`` (default ``COMM_WORLD``) to one trace; collective, see above.

    Configures modeltel on each rank if that was not done yet. The broadcast happens even where
    telemetry is disabled (an empty carrier), so ranks that disagree about it cannot deadlock.
    """
    comm = MPI.COMM_WORLD if comm is None else comm
    providers.configure()
    _wrap_finalize()
    tracer = trace.get_tracer(sc.INSTRUMENTATION_SCOPE)
    rank, size = comm.Get_rank(), comm.Get_size()
    job_span: Span | None = None
    carrier: dict[str, str] | None = None
    if rank == 0:
        job_span = tracer.start_span(sc.SPAN_MPI_JOB, attributes={sc.PARALLEL_WORLD_SIZE: size})
        carrier = capture(trace.set_span_in_context(job_span))
    carrier = comm.bcast(carrier, root=0)
    parent = extract(carrier or {})
    rank_span = tracer.start_span(
        sc.SPAN_MPI_RANK,
        context=parent,
        attributes={sc.PARALLEL_RANK: rank, sc.PARALLEL_WORLD_SIZE: size},
    )
    token = otel_context.attach(trace.set_span_in_context(rank_span, parent))
    job = MpiJob(comm, job_span, rank_span, token)
    with _lock:
        _open_jobs.append(job)
    # Registered after configure(): atexit runs it before modeltel's own shutdown hook.
    atexit.register(job.end)
    return job


def _end_open_jobs() -> None:
    with _lock:
        jobs = list(_open_jobs)
    for job in jobs:
        job.end()


def _finalize() -> None:
    _end_open_jobs()
    _original_finalize()


def _wrap_finalize() -> None:
    """Make ``MPI.Finalize()`` end the open jobs first (the barrier needs MPI, the flush must win)."""
    global _original_finalize
    with _lock:
        if _original_finalize is None:
            _original_finalize = MPI.Finalize
            MPI.Finalize = _finalize
