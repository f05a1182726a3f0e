"""MPI (mpi4py on a real Open MPI): one trace per job, every rank's spans on disk before MPI_Finalize.

Each program is launched with a real ``mpirun -n 4`` in its own process group, with the batch
processor's timer off: whatever a rank wrote got there through modeltel's flush at the end of the
job, and each rank writes its own file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from launch_env import clean_env
from otlp_files import attrs
from otlp_receiver import running_receiver
from process_traces import NO_TIMER, Trace

pytest.importorskip("mpi4py")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("mpirun") is None, reason="needs Open MPI (.ci/run installs it)"),
]

RANKS = 4

APP = """
import os, sys
from mpi4py import MPI
from modeltel import simulation
from modeltel.integrations import mpi

comm = MPI.COMM_WORLD
job = mpi.instrument(comm)
for i in range(3):
    with simulation.run(model="heat", seed=comm.Get_rank() * 10 + i) as run:
        run.record(steps=100)
comm.Barrier()
if sys.argv[1] == "finalize-then-exit":
    MPI.Finalize()  # the user's own Finalize: modeltel must have flushed before it
    os._exit(0)     # and atexit never runs
if sys.argv[1] == "end":
    job.end()
"""


def mpirun(tmp_path: Path, mode: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    """``mpirun -n 4 python app.py mode`` as root on an oversubscribed 2-core machine, bounded."""
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    command = [
        "mpirun",
        "--oversubscribe",
        "-n",
        str(RANKS),
        sys.executable,
        str(tmp_path / "app.py"),
        mode,
    ]
    environment = clean_env(
        tmp_path / "data",
        OMPI_ALLOW_RUN_AS_ROOT="1",
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
        OMPI_MCA_btl="self,vader",  # loopback only: no network probing in tests
        **{**NO_TIMER, **env},
    )
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate(timeout=10)
        raise AssertionError(f"mpirun timed out\n{stdout}\n{stderr}") from None
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, stderr
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def assert_one_job_trace(found: Trace) -> None:
    """One trace, 4 files from 4 pids, job span on rank 0, each rank's runs under its rank span."""
    found.assert_sound()
    assert len(found.files) == RANKS and len(found.pids()) == RANKS
    job = found.one("mpi.job")
    assert job.resource["modeltel.parallel.rank"] == 0
    assert job.attributes["modeltel.parallel.world_size"] == RANKS
    rank_spans = found.assert_children("mpi.rank", job, RANKS)
    assert sorted(s.attributes["modeltel.parallel.rank"] for s in rank_spans) == list(range(RANKS))
    for rank_span in rank_spans:
        rank = rank_span.attributes["modeltel.parallel.rank"]
        assert rank_span.resource["modeltel.parallel.rank"] == rank
        runs = found.assert_children("simulation.run", rank_span, 3)
        assert sorted(s.attributes["modeltel.simulation.seed"] for s in runs) == [
            rank * 10 + i for i in range(3)
        ]
        assert {s.pid for s in runs} == {rank_span.pid}
        assert rank_span.span.end_time_unix_nano <= job.span.end_time_unix_nano
    assert len(found.spans) == 1 + RANKS + 3 * RANKS  # nothing lost, nothing twice
    assert len({s.resource["modeltel.run.id"] for s in found.spans}) == 1


@pytest.mark.timeout(180)
@pytest.mark.parametrize("mode", ["atexit", "end", "finalize-then-exit"])
def test_four_ranks_are_one_trace_under_rank_zeros_job_span(tmp_path: Path, mode: str) -> None:
    mpirun(tmp_path, mode)
    assert_one_job_trace(Trace(tmp_path / "data"))


@pytest.mark.timeout(180)
def test_ranks_first_sends_only_rank_zero_over_otlp_and_every_rank_keeps_jsonl(tmp_path: Path) -> None:
    with running_receiver() as receiver:
        mpirun(
            tmp_path,
            "atexit",
            MODELTEL_RANKS="first",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        )
        requests = receiver.requests("/v1/traces")
    assert_one_job_trace(Trace(tmp_path / "data"))
    sent = [
        (span.name, attrs(rs.resource.attributes))
        for request in requests
        for rs in request.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]
    assert sorted(name for name, _ in sent) == ["mpi.job", "mpi.rank", *["simulation.run"] * 3]
    assert {resource["modeltel.parallel.rank"] for _, resource in sent} == {0}
