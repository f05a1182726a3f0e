"""Dask: a real LocalCluster(n_workers=2, processes=True); task spans join the submitting span."""

from __future__ import annotations

from pathlib import Path

import pytest

from process_traces import Trace, run_script

pytest.importorskip("distributed")

CLUSTER = """
import os, sys
from dask.distributed import Client, LocalCluster
from opentelemetry import trace
import modeltel
from modeltel.integrations.dask import instrument

def simulate(p):
    with trace.get_tracer("worker").start_as_current_span("simulate") as span:
        span.set_attribute("p", p)
        with trace.get_tracer("worker").start_as_current_span("step"):
            pass
    return p * p

def start():
    cluster = LocalCluster(n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None)
    client = instrument(Client(cluster))
    client.wait_for_workers(2, timeout=60)
    return cluster, client
"""


@pytest.mark.timeout(180)
def test_client_map_and_submit_run_under_the_submitting_span(tmp_path: Path) -> None:
    result = run_script(
        tmp_path,
        CLUSTER
        + """
if __name__ == "__main__":
    modeltel.configure(service_name="sweep")
    cluster, client = start()
    tracer = trace.get_tracer("driver")
    with tracer.start_as_current_span("job"):
        with tracer.start_as_current_span("map"):
            futures = client.map(simulate, range(30))
            assert all(f.key.startswith("simulate-") for f in futures)
            assert client.gather(futures) == [p * p for p in range(30)]
        with tracer.start_as_current_span("submit"):
            assert client.submit(simulate, 100).result(60) == 10000
    workers = client.run(os.getpid)   # {address: pid}
    print(" ".join(f"{address}={pid}" for address, pid in workers.items()))
    client.close(); cluster.close()
""",
        timeout=150,
    )
    assert result.returncode == 0, result.stderr
    workers = dict(item.split("=") for item in result.stdout.split())
    found = Trace(tmp_path / "data")
    found.assert_sound()
    mapped = found.assert_children("simulate", found.one("map"), 30)
    (submitted,) = found.assert_children("simulate", found.one("submit"), 1)
    assert sorted(s.attributes["p"] for s in mapped) == list(range(30))
    assert len(found.named("step")) == 31 and len(found.spans) == 31 * 2 + 3
    for span in [*mapped, submitted, *found.named("step")]:
        address = span.attributes["modeltel.dask.worker.address"]
        assert workers[address] == str(span.pid)  # written by that worker's own process
        assert span.resource["service.name"] == "sweep"
    assert {str(pid) for pid in found.pids()} >= {str(s.pid) for s in mapped}
    assert "modeltel.dask.worker.address" not in found.one("job").attributes


@pytest.mark.timeout(180)
def test_calibration_evaluate_fans_out_to_dask_workers_in_one_trace(tmp_path: Path) -> None:
    result = run_script(
        tmp_path,
        """
from dask.distributed import Client, LocalCluster
from modeltel import calibration, simulation
from modeltel.integrations.dask import instrument

def simulate(seed):
    with simulation.run(model="sir", seed=seed) as run:
        run.record(final_infected=seed / 100)
    return (seed - 3) ** 2

if __name__ == "__main__":
    with LocalCluster(n_workers=2, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            instrument(client)
            with calibration.job("fit-sir", algorithm="grid", max_iterations=2) as job:
                for _ in range(2):
                    with job.iteration() as it:
                        with it.ask() as ask:
                            seeds = list(range(8))
                            ask.record(n_params=len(seeds))
                        with it.evaluate(n=len(seeds)):
                            losses = client.gather(client.map(simulate, seeds))
                        with it.tell() as tell:
                            tell.losses(losses)
""",
        timeout=150,
    )
    assert result.returncode == 0, result.stderr
    found = Trace(tmp_path / "data")
    found.assert_sound()
    evaluations = found.named("calibration.evaluate")
    assert len(evaluations) == 2
    for evaluate in evaluations:
        runs = found.assert_children("simulation.run", evaluate, 8)
        assert all(s.pid != evaluate.pid for s in runs)
        assert all(s.attributes["modeltel.dask.worker.address"].startswith("tcp://") for s in runs)
    assert len(found.named("simulation.run")) == 16
