"""``modeltel runs`` and ``show --run`` on a cluster's output: array tasks and ranks of one run.

Each case starts four real processes with the variables a scheduler or launcher sets (a SLURM
array's tasks under ``modeltel run``, Open MPI ranks calling ``modeltel.configure()``), all at once
into one data dir, and reads the commands' real output back.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from launch_env import clean_env
from otlp_files import BIN
from reading_data import modeltel

ARRAY_JOB = "7301"

TASK_APP = """
import os
from modeltel import simulation

task = int(os.environ["SLURM_ARRAY_TASK_ID"])
with simulation.job("sweep", n_tasks=task + 1):
    for seed in range(task + 1):
        try:
            with simulation.run(model="sir", param_id=f"p{task}", seed=seed):
                if task == 3 and seed == 0:
                    raise ValueError("diverged")
        except ValueError:
            pass
"""
"""Task ``i`` writes one job span and ``i + 1`` run spans; task 3's first run fails."""

RANK_APP = """
import os
import modeltel
from modeltel import simulation

modeltel.configure(service_name="ranks")
rank = int(os.environ["OMPI_COMM_WORLD_RANK"])
with simulation.job("ranked"):
    for step in range(2 * rank + 1):
        with simulation.run(model="heat", seed=step):
            pass
"""
"""Rank ``r`` writes one job span and ``2r + 1`` run spans."""


def start_all(commands: list[list[str]], envs: list[dict[str, str]], cwd: Path, data: Path) -> None:
    """Start every process before waiting for any (the tasks of an array run side by side); each
    must have written its own trace file."""
    running = [
        subprocess.Popen(c, env=e, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for c, e in zip(commands, envs, strict=True)
    ]
    errors = []
    for process in running:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        errors.append(err)
    assert len(list(data.glob("traces/*/*.jsonl"))) == len(commands), "".join(errors)


def slurm_task(task: int) -> dict[str, str]:
    return {
        "SLURM_JOB_ID": str(int(ARRAY_JOB) + 1 + task),
        "SLURM_ARRAY_JOB_ID": ARRAY_JOB,
        "SLURM_ARRAY_TASK_ID": str(task),
        "SLURM_JOB_NAME": "sir-sweep",
        "SLURMD_NODENAME": f"node{task % 2:03d}",
        "OTEL_SERVICE_NAME": "sweep",
    }


@pytest.fixture(scope="module")
def array_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SLURM array of four tasks, each ``modeltel run -- python task.py`` as an sbatch script runs it."""
    root = tmp_path_factory.mktemp("array")
    app = root / "task.py"
    app.write_text(textwrap.dedent(TASK_APP))
    data = root / "data"
    command = [str(BIN / "modeltel"), "run", "--", sys.executable, str(app)]
    start_all([command] * 4, [clean_env(data, **slurm_task(t)) for t in range(4)], root, data)
    return data


@pytest.fixture(scope="module")
def ranks_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four Open MPI ranks of one ``mpirun`` on two nodes, each configuring modeltel itself."""
    root = tmp_path_factory.mktemp("ranks")
    data = root / "data"
    envs = [
        clean_env(
            data,
            OMPI_COMM_WORLD_RANK=str(rank),
            OMPI_COMM_WORLD_SIZE="4",
            OMPI_COMM_WORLD_LOCAL_RANK=str(rank % 2),
            PMIX_NAMESPACE="prterun-login1-52817@1",
        )
        for rank in range(4)
    ]
    start_all([[sys.executable, "-c", textwrap.dedent(RANK_APP)]] * 4, envs, root, data)
    return data


@pytest.fixture(scope="module")
def array_of_ranks_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two tasks of a SLURM array, each an ``srun -n 2`` step: four processes, two tasks of two ranks."""
    root = tmp_path_factory.mktemp("array-ranks")
    data = root / "data"
    envs = [
        clean_env(
            data,
            **slurm_task(task),
            SLURM_PROCID=str(rank),
            SLURM_LOCALID=str(rank),
            SLURM_NTASKS="2",
            OMPI_COMM_WORLD_RANK=str(rank),
        )
        for task in range(2)
        for rank in range(2)
    ]
    start_all([[sys.executable, "-c", textwrap.dedent(RANK_APP)]] * 4, envs, root, data)
    return data


def json_of(*args: str) -> dict[str, Any]:
    result = modeltel(*args, "--format", "json")
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def cells(line: str) -> list[str]:
    """A table line's cells: columns are two spaces apart or more, a cell holds single spaces."""
    return re.split(r" {2,}", line.strip())


def table_rows(text: str, first_header: str) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the table whose header starts with ``first_header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if cells(line)[0] == first_header)
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        rows.append(cells(line))
    return cells(lines[start]), rows


def test_an_array_of_four_tasks_is_one_run_of_four_tasks(array_dir: Path) -> None:
    (run,) = json_of("runs", "--data-dir", str(array_dir))["runs"]
    assert run["run_id"] == ARRAY_JOB
    assert run["processes"] == 4 and run["tasks"] == 4 and run["ranks"] == 0
    assert run["spans"] == sum(t + 2 for t in range(4)) and run["errors"] == 1
    assert run["status"] == "ok"
    table = modeltel("runs", "--data-dir", str(array_dir))
    assert table.returncode == 0, table.stderr
    header, (row,) = table_rows(table.stdout, "run id")
    shown = dict(zip(header, row, strict=True))
    assert shown.pop("started (UTC)") and shown.pop("duration")
    assert shown == {
        "run id": ARRAY_JOB,
        "services": "sweep",
        "processes": "4",
        "tasks": "4",
        "ranks": "-",
        "spans": "14",
        "errors": "1",
        "jobs": "4",
        "status": "ok",
    }


def test_show_run_breaks_an_array_down_per_task(array_dir: Path) -> None:
    shown = json_of("show", "--data-dir", str(array_dir), "--run", ARRAY_JOB)
    rows = shown["by_task_rank"]
    assert [(r["task"], r["rank"]) for r in rows] == [(t, None) for t in range(4)]
    assert [r["processes"] for r in rows] == [1, 1, 1, 1]
    assert [r["spans"] for r in rows] == [2, 3, 4, 5]
    assert [r["errors"] for r in rows] == [0, 0, 0, 1]
    assert all(0 < r["duration_s"] < 60 for r in rows)
    assert [r["nodes"] for r in rows] == [["node000"], ["node001"], ["node000"], ["node001"]]
    assert sum(r["spans"] for r in rows) == sum(row["count"] for row in shown["spans"])
    table = modeltel("show", "--data-dir", str(array_dir), "--run", ARRAY_JOB)
    assert table.returncode == 0, table.stderr
    header, rows_shown = table_rows(table.stdout, "task")
    assert header == ["task", "node", "processes", "spans", "errors", "duration"]
    assert [r[:5] for r in rows_shown] == [
        ["0", "node000", "1", "2", "0"],
        ["1", "node001", "1", "3", "0"],
        ["2", "node000", "1", "4", "0"],
        ["3", "node001", "1", "5", "1"],
    ]


def test_four_ranks_are_one_run_of_four_ranks(ranks_dir: Path) -> None:
    (run,) = json_of("runs", "--data-dir", str(ranks_dir))["runs"]
    assert run["run_id"] == "prterun-login1-52817@1"
    assert run["processes"] == 4 and run["tasks"] == 0 and run["ranks"] == 4
    shown = json_of("show", "--data-dir", str(ranks_dir), "--last-run")
    rows = shown["by_task_rank"]
    assert [(r["task"], r["rank"]) for r in rows] == [(None, r) for r in range(4)]
    assert [r["spans"] for r in rows] == [2 * r + 2 for r in range(4)]
    assert [r["errors"] for r in rows] == [0] * 4
    table = modeltel("show", "--data-dir", str(ranks_dir), "--last-run")
    header, rows_shown = table_rows(table.stdout, "rank")
    assert header == ["rank", "node", "processes", "spans", "errors", "duration"]
    assert [r[:5] for r in rows_shown] == [[str(r), "-", "1", str(2 * r + 2), "0"] for r in range(4)]


def test_an_array_of_parallel_steps_is_broken_down_per_task_and_rank(array_of_ranks_dir: Path) -> None:
    (run,) = json_of("runs", "--data-dir", str(array_of_ranks_dir))["runs"]
    assert run["run_id"] == ARRAY_JOB
    assert (run["processes"], run["tasks"], run["ranks"]) == (4, 2, 2)
    rows = json_of("show", "--data-dir", str(array_of_ranks_dir), "--run", ARRAY_JOB)["by_task_rank"]
    assert [(r["task"], r["rank"], r["spans"]) for r in rows] == [(0, 0, 2), (0, 1, 4), (1, 0, 2), (1, 1, 4)]
    table = modeltel("show", "--data-dir", str(array_of_ranks_dir), "--run", ARRAY_JOB)
    header, rows_shown = table_rows(table.stdout, "task")
    assert header[:3] == ["task", "rank", "node"]
    assert [r[:4] for r in rows_shown] == [
        ["0", "0", "node000", "1"],
        ["0", "1", "node000", "1"],
        ["1", "0", "node001", "1"],
        ["1", "1", "node001", "1"],
    ]


def test_a_collector_file_mixing_the_tasks_gives_the_same_breakdown(array_dir: Path, tmp_path: Path) -> None:
    """A Collector's file batches the resources of several processes into one line: each task's
    spans still land on that task."""
    resource_spans = [
        part
        for path in sorted((array_dir / "traces").glob("*/*.jsonl"))
        for text in path.read_text().splitlines()
        for part in json.loads(text)["resourceSpans"]
    ]
    collector = tmp_path / "collector-out.json"
    collector.write_text(json.dumps({"resourceSpans": resource_spans}, separators=(",", ":")) + "\n")
    (run,) = json_of("runs", str(collector))["runs"]
    assert run["processes"] == 4 and run["tasks"] == 4
    mixed = json_of("show", str(collector), "--run", ARRAY_JOB)["by_task_rank"]
    alone = json_of("show", "--data-dir", str(array_dir), "--run", ARRAY_JOB)["by_task_rank"]
    assert [(r["task"], r["spans"], r["errors"]) for r in mixed] == [
        (r["task"], r["spans"], r["errors"]) for r in alone
    ]


def test_show_without_a_run_has_no_breakdown(array_dir: Path) -> None:
    shown = json_of("show", "--data-dir", str(array_dir))
    assert "by_task_rank" not in shown
