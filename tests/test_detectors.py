"""Batch schedulers and parallel launchers: resource attributes, run id and which ranks export.

Every case runs a real program in a fresh interpreter with the scheduler's variables set as the
scheduler would set them, and reads the resource back from the JSONL it wrote (decoded with the
official protos), or, for the stock SDK route, from the SDK's own ``Resource.create()``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from launch_env import clean_env
from otlp_files import attrs, trace_requests

APP = """
import modeltel
from opentelemetry import trace
modeltel.configure(service_name="cluster-app")
with trace.get_tracer("t").start_as_current_span("work"):
    pass
"""


def run_app(data: Path, source: str = APP, **env: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)],
        env=clean_env(data, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result


def resources(data: Path) -> list[dict[str, Any]]:
    """The resource of every span in ``data``'s trace files."""
    return [
        attrs(rs.resource.attributes)
        for request in trace_requests(data)
        for rs in request.resource_spans
        for _ in (s for ss in rs.scope_spans for s in ss.spans)
    ]


def only_resource(data: Path) -> dict[str, Any]:
    (found,) = resources(data)
    return found


SLURM_ARRAY_TASK = {
    "SLURM_JOB_ID": "4242",
    "SLURM_ARRAY_JOB_ID": "4240",
    "SLURM_ARRAY_TASK_ID": "2",
    "SLURM_JOB_NAME": "sir-sweep",
    "SLURM_CLUSTER_NAME": "hpc1",
    "SLURMD_NODENAME": "node017",
    "SLURM_PROCID": "3",
    "SLURM_LOCALID": "1",
    "SLURM_NTASKS": "8",
}


CASES: dict[str, tuple[dict[str, str], dict[str, Any], str]] = {
    "slurm array task under srun": (
        SLURM_ARRAY_TASK,
        {
            "modeltel.hpc.scheduler": "slurm",
            "modeltel.hpc.job.id": "4242",
            "modeltel.hpc.job.name": "sir-sweep",
            "modeltel.hpc.array.job_id": "4240",
            "modeltel.hpc.array.task_id": 2,
            "modeltel.hpc.cluster": "hpc1",
            "modeltel.hpc.node": "node017",
            "modeltel.parallel.launcher": "slurm",
            "modeltel.parallel.rank": 3,
            "modeltel.parallel.local_rank": 1,
            "modeltel.parallel.world_size": 8,
        },
        "4240",
    ),
    "slurm plain job": (
        {"SLURM_JOB_ID": "77", "SLURM_JOB_NAME": "fit", "SLURMD_NODENAME": "n1"},
        {
            "modeltel.hpc.scheduler": "slurm",
            "modeltel.hpc.job.id": "77",
            "modeltel.hpc.job.name": "fit",
            "modeltel.hpc.node": "n1",
        },
        "77",
    ),
    "pbs pro array subjob": (
        {
            "PBS_JOBID": "1234[3].pbs01",
            "PBS_ARRAY_ID": "1234[].pbs01",
            "PBS_ARRAY_INDEX": "3",
            "PBS_JOBNAME": "sweep",
            "PBS_O_HOST": "login1",
            "PBS_QUEUE": "workq",
        },
        {
            "modeltel.hpc.scheduler": "pbs",
            "modeltel.hpc.job.id": "1234[3].pbs01",
            "modeltel.hpc.job.name": "sweep",
            "modeltel.hpc.array.job_id": "1234[].pbs01",
            "modeltel.hpc.array.task_id": 3,
            "modeltel.hpc.cluster": "pbs01",
        },
        "1234[].pbs01",
    ),
    "torque array job": (
        {"PBS_JOBID": "981[5].torque-head", "PBS_ARRAYID": "5", "PBS_JOBNAME": "t"},
        {
            "modeltel.hpc.scheduler": "pbs",
            "modeltel.hpc.job.id": "981[5].torque-head",
            "modeltel.hpc.job.name": "t",
            "modeltel.hpc.array.job_id": "981[].torque-head",
            "modeltel.hpc.array.task_id": 5,
            "modeltel.hpc.cluster": "torque-head",
        },
        "981[].torque-head",
    ),
    "lsf array element": (
        {"LSB_JOBID": "5555", "LSB_JOBINDEX": "7", "LSB_JOBNAME": "sweep[7]"},
        {
            "modeltel.hpc.scheduler": "lsf",
            "modeltel.hpc.job.id": "5555[7]",
            "modeltel.hpc.job.name": "sweep[7]",
            "modeltel.hpc.array.job_id": "5555",
            "modeltel.hpc.array.task_id": 7,
        },
        "5555",
    ),
    "lsf plain job (index 0)": (
        {"LSB_JOBID": "5556", "LSB_JOBINDEX": "0", "LSB_JOBNAME": "one"},
        {"modeltel.hpc.scheduler": "lsf", "modeltel.hpc.job.id": "5556", "modeltel.hpc.job.name": "one"},
        "5556",
    ),
    "sge array task": (
        {
            "JOB_ID": "31337",
            "SGE_TASK_ID": "4",
            "JOB_NAME": "grid",
            "SGE_CLUSTER_NAME": "sgec",
            "HOSTNAME": "exec9",
            "SGE_ROOT": "/opt/sge",
        },
        {
            "modeltel.hpc.scheduler": "sge",
            "modeltel.hpc.job.id": "31337.4",
            "modeltel.hpc.job.name": "grid",
            "modeltel.hpc.array.job_id": "31337",
            "modeltel.hpc.array.task_id": 4,
            "modeltel.hpc.cluster": "sgec",
            "modeltel.hpc.node": "exec9",
        },
        "31337",
    ),
    "sge plain job (task id undefined)": (
        {"JOB_ID": "31338", "SGE_TASK_ID": "undefined", "JOB_NAME": "once"},
        {"modeltel.hpc.scheduler": "sge", "modeltel.hpc.job.id": "31338", "modeltel.hpc.job.name": "once"},
        "31338",
    ),
    "torchrun": (
        {"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "TORCHELASTIC_RUN_ID": "tr-1"},
        {
            "modeltel.parallel.launcher": "torchrun",
            "modeltel.parallel.rank": 5,
            "modeltel.parallel.local_rank": 1,
            "modeltel.parallel.world_size": 8,
        },
        "tr-1",
    ),
    "mpich (PMI)": (
        {"PMI_RANK": "2", "PMI_SIZE": "4", "MPI_LOCALRANKID": "0"},
        {
            "modeltel.parallel.launcher": "pmi",
            "modeltel.parallel.rank": 2,
            "modeltel.parallel.local_rank": 0,
            "modeltel.parallel.world_size": 4,
        },
        "",
    ),
    "open mpi inside a slurm job": (
        {
            "SLURM_JOB_ID": "900",
            "SLURM_PROCID": "0",
            "SLURM_NTASKS": "1",
            "OMPI_COMM_WORLD_RANK": "6",
            "OMPI_COMM_WORLD_SIZE": "16",
            "OMPI_COMM_WORLD_LOCAL_RANK": "2",
            "PMIX_NAMESPACE": "7001",
        },
        {
            "modeltel.hpc.scheduler": "slurm",
            "modeltel.hpc.job.id": "900",
            "modeltel.parallel.launcher": "openmpi",
            "modeltel.parallel.rank": 6,
            "modeltel.parallel.local_rank": 2,
            "modeltel.parallel.world_size": 16,
        },
        "900",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_scheduler_and_launcher_attributes_and_run_id(tmp_path: Path, case: str) -> None:
    env, expected, run_id = CASES[case]
    run_app(tmp_path, **env)
    resource = only_resource(tmp_path)
    found = {k: v for k, v in resource.items() if k.startswith(("modeltel.hpc.", "modeltel.parallel."))}
    assert found == expected
    if run_id:
        assert resource["modeltel.run.id"] == run_id
    else:  # no scheduler and no launcher job id: a generated one
        assert len(resource["modeltel.run.id"]) == 32


def test_no_scheduler_no_attributes(tmp_path: Path) -> None:
    run_app(tmp_path)
    resource = only_resource(tmp_path)
    assert not [k for k in resource if k.startswith(("modeltel.hpc.", "modeltel.parallel."))]


def test_an_explicit_run_id_wins_and_otel_resource_attributes_override(tmp_path: Path) -> None:
    run_app(
        tmp_path,
        MODELTEL_RUN_ID="mine",
        OTEL_RESOURCE_ATTRIBUTES="modeltel.hpc.cluster=renamed",
        **SLURM_ARRAY_TASK,
    )
    resource = only_resource(tmp_path)
    assert resource["modeltel.run.id"] == "mine"
    assert resource["modeltel.hpc.cluster"] == "renamed"
    assert resource["modeltel.hpc.job.id"] == "4242"


def test_a_fake_slurm_array_of_four_tasks_is_one_run(tmp_path: Path) -> None:
    env = clean_env(tmp_path, SLURM_ARRAY_JOB_ID="8800", SLURM_JOB_NAME="arr", SLURM_CLUSTER_NAME="c")
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(APP)],
            env={**env, "SLURM_JOB_ID": str(8800 + task + 1), "SLURM_ARRAY_TASK_ID": str(task)},
            stderr=subprocess.PIPE,
            text=True,
        )
        for task in range(4)
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
    found = resources(tmp_path)
    assert len(found) == 4
    assert {r["modeltel.run.id"] for r in found} == {"8800"}
    assert sorted(r["modeltel.hpc.array.task_id"] for r in found) == [0, 1, 2, 3]
    assert sorted(r["modeltel.hpc.job.id"] for r in found) == ["8801", "8802", "8803", "8804"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [("OMPI_COMM_WORLD_RANK", "three"), ("SLURM_ARRAY_TASK_ID", "x1"), ("LOCAL_RANK", "-1")],
)
def test_a_bad_value_is_ignored_with_one_warning_naming_the_variable(
    tmp_path: Path, variable: str, value: str
) -> None:
    env = {
        "SLURM_JOB_ID": "12",
        "SLURM_ARRAY_JOB_ID": "10",
        "SLURM_ARRAY_TASK_ID": "2",
        "OMPI_COMM_WORLD_RANK": "1",
        "OMPI_COMM_WORLD_SIZE": "4",
        "RANK": "1",
        "WORLD_SIZE": "4",
        "LOCAL_RANK": "0",
    }
    if variable == "LOCAL_RANK":  # torchrun only
        env = {"RANK": "1", "WORLD_SIZE": "4"}
    env[variable] = value
    result = run_app(tmp_path, **env)
    warnings = [line for line in result.stderr.splitlines() if variable in line]
    assert len(warnings) == 1, result.stderr
    assert repr(value) in warnings[0]
    resource = only_resource(tmp_path)
    attribute = {
        "OMPI_COMM_WORLD_RANK": "modeltel.parallel.rank",
        "SLURM_ARRAY_TASK_ID": "modeltel.hpc.array.task_id",
        "LOCAL_RANK": "modeltel.parallel.local_rank",
    }[variable]
    assert attribute not in resource


def test_the_stock_sdk_finds_the_detectors_by_entry_point(tmp_path: Path) -> None:
    source = """
    import json
    from opentelemetry.sdk.resources import Resource
    print(json.dumps(dict(Resource.create().attributes)))
    """
    env = {"OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "slurm,pbs,lsf,sge,parallel", **SLURM_ARRAY_TASK}
    result = run_app(tmp_path, source, **env)
    found = json.loads(result.stdout)
    assert found["modeltel.hpc.job.id"] == "4242" and found["modeltel.hpc.array.task_id"] == 2
    assert found["modeltel.parallel.rank"] == 3
    without = json.loads(run_app(tmp_path, source, **SLURM_ARRAY_TASK).stdout)
    assert "modeltel.hpc.job.id" not in without  # only when asked for


def test_detectors_are_registered_for_the_sdk() -> None:
    from importlib.metadata import entry_points

    names = {ep.name: ep.value for ep in entry_points(group="opentelemetry_resource_detector")}
    assert {"slurm", "pbs", "lsf", "sge", "parallel"} <= set(names)
    assert all(names[n].startswith("modeltel.") for n in ("slurm", "pbs", "lsf", "sge", "parallel"))


def test_the_ray_detector_is_the_pinned_community_one() -> None:
    pytest.importorskip("opentelemetry.resource.detector.ray")
    from importlib.metadata import entry_points, version

    (ray,) = entry_points(group="opentelemetry_resource_detector", name="ray")
    assert ray.value == "opentelemetry.resource.detector.ray:RayResourceDetector"
    assert version("opentelemetry-resource-detector-ray") == "0.1.0"
