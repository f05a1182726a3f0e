"""Ray: tasks and actor methods join the driver's trace; Tune trials become calibration iterations.

One real local Ray cluster per module (``ray.init(num_cpus=2, include_dashboard=False)`` in a
holder process, ~8 s to start here), stopped by its process group at teardown. Each test's driver is
a fresh interpreter that connects to it, so its workers are fresh processes that configure modeltel
from what the driver forwards: the cluster's own environment has no MODELTEL_ variable at all.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from launch_env import clean_env
from process_traces import Trace, run_script

pytest.importorskip("ray")
pytestmark = pytest.mark.integration

RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
"""Bound to 127.0.0.1 only, so no token: the tests' drivers need no credentials file."""

HOLDER = """
import sys, ray
ray.init(num_cpus=2, include_dashboard=False, _temp_dir=sys.argv[1], _node_ip_address="127.0.0.1")
print(ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.read()   # until the fixture closes stdin
ray.shutdown()
"""


@pytest.fixture(scope="module")
def ray_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The GCS address of a local 2-CPU Ray cluster shared by this module's tests."""
    where = tmp_path_factory.mktemp("ray")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(where)],
        env=clean_env(where / "unused-data", **RAY_ENV),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        address = holder.stdout.readline().strip()
        assert address, "the Ray holder process printed no address"
        yield address
        holder.stdin.close()
        holder.wait(60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(holder.pid, signal.SIGKILL)
        holder.wait(10)


def driver(tmp_path: Path, address: str, source: str) -> subprocess.CompletedProcess[str]:
    result = run_script(
        tmp_path,
        source,
        timeout=150,
        RAY_ADDRESS=address,
        RAY_USAGE_STATS_ENABLED="0",
        OTEL_SERVICE_NAME="drv",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result


TASKS = """
import os, time, glob
import ray
from opentelemetry import trace
from modeltel import simulation
from modeltel.integrations import ray as modeltel_ray

modeltel_ray.instrument()
ray.init()

@ray.remote
def simulate(seed):
    with simulation.run(model="sir", seed=seed) as run:
        time.sleep(0.2)
        run.record(steps=10)
    return os.getpid()

@ray.remote
class Counter:
    def __init__(self):
        self.n = 0

    def add(self, k):
        with trace.get_tracer("actor").start_as_current_span("counter.add") as span:
            span.set_attribute("k", k)
            self.n += k
        return os.getpid()

with simulation.job("ray-sweep", n_tasks=8):
    task_pids = ray.get([simulate.remote(s) for s in range(8)])
    counter = Counter.remote()
    actor_pids = ray.get([counter.add.remote(k) for k in range(3)])
    on_disk = sum(
        open(path).read().count('"name":"simulation.run"')
        for path in glob.glob(os.environ["MODELTEL_DATA_DIR"] + "/traces/*/*.jsonl")
    )
print(on_disk)
print(" ".join(map(str, task_pids)))
print(" ".join(map(str, actor_pids)))
"""


@pytest.mark.timeout(240)
def test_tasks_and_actor_methods_join_the_drivers_trace(tmp_path: Path, ray_address: str) -> None:
    result = driver(tmp_path, ray_address, TASKS)
    on_disk, tasks, actors = result.stdout.splitlines()[-3:]
    task_pids = {int(p) for p in tasks.split()}
    actor_pids = {int(p) for p in actors.split()}
    assert int(on_disk) == 8  # every task's spans were on disk when its result came back
    assert len(task_pids) >= 2 and len(actor_pids) == 1
    found = Trace(tmp_path / "data")
    found.assert_sound()
    job = found.one("simulation.job")
    runs = found.assert_children("simulation.run", job, 8)
    adds = found.assert_children("counter.add", job, 3)
    assert {s.pid for s in runs} == task_pids and {s.pid for s in adds} == actor_pids
    assert job.pid not in task_pids | actor_pids
    run_id = job.resource["modeltel.run.id"]
    for span in [*runs, *adds]:
        assert span.resource["modeltel.run.id"] == run_id
        assert span.resource["service.name"] == "drv"
        assert span.resource["ray.worker.process_type"] == "worker"
        assert span.resource["ray.job.id"]
    assert {s.resource["ray.actor.id"] for s in adds} != {None}


TUNE = """
import ray
from ray import tune
from modeltel import calibration
from modeltel.integrations import ray as modeltel_ray

modeltel_ray.instrument()
ray.init()

def trainable(config):
    tune.report({"loss": (config["x"] - 3) ** 2})

with calibration.job("fit-x", algorithm="grid", max_iterations=8) as job:
    tuner = tune.Tuner(
        trainable,
        param_space={"x": tune.grid_search([0, 1, 2, 3, 4, 5, 6, 7])},
        tune_config=tune.TuneConfig(metric="loss", mode="min"),
        run_config=tune.RunConfig(
            storage_path=__import__("os").path.abspath("tune-results"),
            callbacks=[modeltel_ray.TuneCallback(job, metric="loss")],
            verbose=0,
        ),
    )
    results = tuner.fit()
print(results.get_best_result().config["x"])
"""


@pytest.mark.timeout(300)
def test_a_tune_run_of_eight_trials_is_eight_iterations(tmp_path: Path, ray_address: str) -> None:
    result = driver(tmp_path, ray_address, TUNE)
    assert result.stdout.split()[-1] == "3"
    found = Trace(tmp_path / "data")
    job = found.one("calibration.job")
    iterations = found.assert_children("calibration.iteration", job, 8)
    by_x = {s.attributes["modeltel.calibration.param.x"]: s.attributes for s in iterations}
    assert sorted(by_x) == list(range(8))
    assert all(a["modeltel.calibration.min_loss"] == (x - 3) ** 2 for x, a in by_x.items())
    assert sorted(a["modeltel.calibration.iteration"] for a in by_x.values()) == list(range(8))
    assert job.attributes["modeltel.calibration.best_loss"] == 0
    assert job.attributes["modeltel.calibration.iterations"] == 8
    assert all(s.span.end_time_unix_nano > s.span.start_time_unix_nano for s in iterations)


KILLED = """
import os, signal
import ray
from modeltel import simulation
from modeltel.integrations import ray as modeltel_ray

modeltel_ray.instrument()
ray.init()

@ray.remote(max_restarts=0, max_task_retries=0)
class Worker:
    def work(self, seed):
        with simulation.run(model="m", seed=seed):
            pass
        return os.getpid()

    def die(self):
        with simulation.run(model="m", seed=999):
            with simulation.run(model="m", seed=998):
                pass
            os.kill(os.getpid(), signal.SIGKILL)

@ray.remote
def after(seed):
    with simulation.run(model="m", seed=seed):
        pass
    return os.getpid()

with simulation.job("killed", n_tasks=7):
    worker = Worker.remote()
    pids = {ray.get(worker.work.remote(seed)) for seed in range(5)}
    try:
        ray.get(worker.die.remote())
    except ray.exceptions.RayActorError:
        print("died")
    pids.add(ray.get(after.remote(5)))
print(" ".join(map(str, sorted(pids))))
"""


@pytest.mark.timeout(240)
def test_a_worker_killed_mid_task_loses_only_that_tasks_spans(tmp_path: Path, ray_address: str) -> None:
    result = driver(tmp_path, ray_address, KILLED)
    assert "died" in result.stdout
    found = Trace(tmp_path / "data")
    found.assert_sound()
    job = found.one("simulation.job")
    runs = found.assert_children("simulation.run", job, 6)
    assert sorted(s.attributes["modeltel.simulation.seed"] for s in runs) == list(range(6))
    killed_pid = next(s.pid for s in runs if s.attributes["modeltel.simulation.seed"] == 0)
    assert {s.pid for s in runs if s.attributes["modeltel.simulation.seed"] < 5} == {killed_pid}
    assert not [s for s in found.spans if s.attributes.get("modeltel.simulation.seed") in (998, 999)]
