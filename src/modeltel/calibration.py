"""Calibration telemetry: a ``job`` of ask → evaluate → tell iterations with best-loss tracking.

::

    from modeltel import calibration

    with calibration.job("fit-sir", algorithm="tpe", max_iterations=50) as job:
        for _ in range(50):
            with job.iteration() as it:
                with it.ask() as a:
                    params = propose()
                    a.record(n_params=len(params))
                with it.evaluate(n=len(params)):
                    losses = evaluate(params)
                with it.tell() as t:
                    t.losses(losses)

Each iteration span carries its number, n_params, min loss, best loss so far and whether it
improved; the job span carries the best-loss trajectory.
"""

from modeltel._internal.domains.calibration import (
    CalibrationIteration,
    CalibrationJob,
    CalibrationPhase,
    Direction,
    job,
)

__all__ = ["CalibrationIteration", "CalibrationJob", "CalibrationPhase", "Direction", "job"]
