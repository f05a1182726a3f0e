"""Telemetry's cost per task on Ray and per rank-task in an MPI job, against the same work without it.

Run by hand (``.venv/bin/python bench/cluster.py``, ``--quick`` for a smaller run); it prints two
tables and never fails on timing.

Every variant is a fresh interpreter (``modeltel.configure()`` is once per process) and the variants
alternate (off, on, off, on, ...), each row the median of the repeats, so load from other work on
the machine hits both alike. Each task spins the same calibrated ~1 ms of arithmetic inside one
``simulation.run`` span: ``off`` is ``MODELTEL_ENABLED=false`` (the no-op API, and
``instrument()`` patches nothing), ``on`` is modeltel with its defaults (JSONL, the per-task flush,
one trace). After every ``on`` run the spans on disk are counted: a run that lost any says so.

- Ray: one local cluster (``ray.init(num_cpus=2)``) shared by every driver. Each driver first runs a
  warm-up batch (workers start and, when on, configure modeltel), then times one batch of tasks
  from the first ``.remote()`` to the last result.
- MPI: ``mpirun -n 2``; each rank times its loop of tasks plus the end of the job (rank spans end,
  barrier, flush), between two barriers; the whole ``mpirun`` is timed too (start-up included).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe

HERE = Path(__file__).resolve()
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "OMPI_MCA_btl": "self,vader"}
RANKS = 2


def spin(loops: int) -> float:
    total = 0.0
    for i in range(loops):
        total += (i % 7) * 0.5
    return total


def calibrate(seconds: float = 0.001) -> int:
    loops = 1000
    while True:
        start = time.perf_counter()
        spin(loops)
        took = time.perf_counter() - start
        if took > 0.02:
            return max(1, int(loops * seconds / took))
        loops *= 2


def spans_on_disk(data_dir: str) -> int:
    return sum(Path(p).read_text().count('"spanId":') for p in glob.glob(f"{data_dir}/traces/*/*.jsonl"))


# --- children -------------------------------------------------------------------------------------


def ray_driver(tasks: int, loops: int) -> None:
    import ray

    from modeltel import simulation
    from modeltel.integrations import ray as modeltel_ray

    modeltel_ray.instrument()
    ray.init()

    @ray.remote
    def task(seed: int) -> float:
        with simulation.run(model="bench", seed=seed):
            return spin(loops)

    ray.get([task.remote(-i - 1) for i in range(8)])  # warm-up: workers start (and configure)
    start = time.perf_counter()
    ray.get([task.remote(i) for i in range(tasks)])
    print(json.dumps({"seconds": time.perf_counter() - start}))


def mpi_rank(tasks: int, loops: int) -> None:
    from mpi4py import MPI

    from modeltel import simulation
    from modeltel.integrations import mpi

    comm = MPI.COMM_WORLD
    job = mpi.instrument(comm)
    comm.Barrier()
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(tasks):
        with simulation.run(model="bench", seed=i):
            spin(loops)
    job.end()
    comm.Barrier()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    total_cpu = comm.reduce(cpu, root=0)
    if comm.Get_rank() == 0:
        print(json.dumps({"seconds": seconds, "cpu": total_cpu}))


# --- parent ---------------------------------------------------------------------------------------


def child_env(data_dir: str, variant: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MODELTEL_"))}
    env.update(MODELTEL_DATA_DIR=data_dir, MODELTEL_ENABLED="true" if variant == "on" else "false", **extra)
    return env


@contextlib.contextmanager
def ray_cluster(where: str):  # type: ignore[no-untyped-def]
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, ray; ray.init(num_cpus=2, include_dashboard=False, _temp_dir=sys.argv[1]); "
            "print(ray.get_runtime_context().gcs_address, flush=True); sys.stdin.read(); ray.shutdown()",
            where,
        ],
        env={**os.environ, **RAY_ENV},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        yield holder.stdout.readline().strip()
        holder.stdin.close()
        holder.wait(60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(holder.pid, signal.SIGKILL)


def run_child(command: list[str], env: dict[str, str]) -> tuple[float, float, float | None]:
    """(seconds the child reported, wall seconds of the whole command, CPU seconds if reported)."""
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"child failed: {command}\n{done.stderr[-3000:]}")
    line = [s for s in done.stdout.splitlines() if s.startswith("{")][-1]
    found = json.loads(line)
    return float(found["seconds"]), wall, found.get("cpu")


def measure(kind: str, tasks: int, loops: int, repeats: int, address: str) -> list[str]:
    timed: dict[str, list[float]] = {"off": [], "on": []}
    walls: dict[str, list[float]] = {"off": [], "on": []}
    cpus: dict[str, list[float]] = {"off": [], "on": []}
    lost: list[int] = []
    # Ray: the timed tasks and the warm-up; MPI: each rank's tasks and mpi.rank span, one mpi.job.
    expected = tasks + 8 if kind == "ray" else RANKS * (tasks + 1) + 1
    for _ in range(repeats):
        for variant in ("off", "on"):
            with tempfile.TemporaryDirectory() as data:
                if kind == "ray":
                    command = [sys.executable, str(HERE), "--ray-driver", str(tasks), str(loops)]
                    env = child_env(data, variant, RAY_ADDRESS=address, **RAY_ENV)
                else:
                    command = ["mpirun", "--oversubscribe", "-n", str(RANKS), sys.executable, str(HERE)]
                    command += ["--mpi-rank", str(tasks), str(loops)]
                    env = child_env(data, variant, **MPI_ENV)
                seconds, wall, cpu = run_child(command, env)
                if cpu is not None:
                    cpus[variant].append(cpu)
                timed[variant].append(seconds)
                walls[variant].append(wall)
                if variant == "on":
                    lost.append(expected - spans_on_disk(data))
    off, on = statistics.median(timed["off"]), statistics.median(timed["on"])
    wall_off, wall_on = statistics.median(walls["off"]), statistics.median(walls["on"])
    per_task = (on - off) / tasks * 1e6  # MPI: per task of one rank (the ranks run side by side)
    cpu_note = ""
    if cpus["on"]:
        cpu_off, cpu_on = statistics.median(cpus["off"]), statistics.median(cpus["on"])
        cpu_note = f"; CPU {(cpu_on - cpu_off) / (RANKS * tasks) * 1e6:+.0f} µs"
    label = "Ray, 2 CPUs" if kind == "ray" else f"MPI, {RANKS} ranks"
    unit = "batch" if kind == "ray" else "loop + end"
    return [
        f"| {label} | {tasks:,} x ~1 ms | {unit}: {off:.3f} s | {on:.3f} s | {on / off:.3f} | "
        f"{per_task:+.0f} µs{cpu_note} | whole run: {wall_off:.2f} s → {wall_on:.2f} s | "
        f"{'every span on disk' if not any(lost) else f'LOST {lost}'} |"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=("ray", "mpi"))
    parser.add_argument("--ray-driver", nargs=2, type=int, metavar=("TASKS", "LOOPS"))
    parser.add_argument("--mpi-rank", nargs=2, type=int, metavar=("TASKS", "LOOPS"))
    args = parser.parse_args()
    if args.ray_driver:
        ray_driver(*args.ray_driver)
        return
    if args.mpi_rank:
        mpi_rank(*args.mpi_rank)
        return
    print(describe(("opentelemetry-sdk", "modeltel", "ray", "mpi4py")))
    loops = calibrate()
    repeats = 3 if args.quick else 5
    ray_tasks, mpi_tasks = (500, 1000) if args.quick else (2000, 4000)
    rows = [
        "| job | tasks | off | on | ratio | per task | wall (off → on) | spans |",
        "|---|---|---|---|---|---|---|---|",
    ]
    if args.only != "mpi":
        with tempfile.TemporaryDirectory() as where, ray_cluster(where) as address:
            rows += measure("ray", ray_tasks, loops, repeats, address)
    if args.only != "ray":
        rows += measure("mpi", mpi_tasks, loops, repeats, "")
    print(f"medians of {repeats} interleaved runs; task body {loops} loops (~1 ms)")
    print("\n".join(rows))
    print(f"load average at end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
