"""Simulation telemetry: ``job`` (a sweep), ``run`` (one run), ``run.phase``, ``run.cache``, ``run.record``.

::

    from modeltel import simulation

    with simulation.job("sir-sweep", n_tasks=100):
        with simulation.run(model="sir", param_id="a1b2", seed=7) as run:
            run.cache(hit=False)
            with run.phase("integrate"):
                ...
            run.record(steps=10_000, final_infected=0.31)

Every scope is also a decorator (sync and async). With telemetry disabled, every call returns one
shared no-op object.
"""

from modeltel._internal.domains.simulation import SimulationJob, SimulationPhase, SimulationRun, job, run

__all__ = ["SimulationJob", "SimulationPhase", "SimulationRun", "job", "run"]
