"""OpenTelemetry resource detectors for batch schedulers and parallel launchers.

Registered under the SDK's ``opentelemetry_resource_detector`` entry-point group as ``slurm``,
``pbs``, ``lsf``, ``sge`` and ``parallel``, so any OpenTelemetry setup can ask for them::

    OTEL_EXPERIMENTAL_RESOURCE_DETECTORS=slurm,parallel python app.py

:func:`modeltel.configure` uses all of them without being asked (:func:`cluster_resource`), plus
the community Ray detector (``opentelemetry-resource-detector-ray``, the ``[ray]`` extra) in a
process where Ray is already running. The attribute names are in :mod:`modeltel._internal.semconv`
(``modeltel.hpc.*``, ``modeltel.parallel.*``); the variables each one reads are in
:mod:`modeltel._internal.cluster`. A detector that finds no scheduler returns an empty resource, and a bad
value is left out with one warning per variable and process: a job already running on a cluster
must never fail because of its telemetry.
"""

from __future__ import annotations

import logging
import sys
import threading
import warnings
from typing import ClassVar

from opentelemetry.sdk.resources import Resource, ResourceDetector

from modeltel._internal.cluster import LaunchProblem, parallel_position, scheduler_job
from modeltel._internal.config import ConfigWarning, process_environment

__all__ = [
    "LsfResourceDetector",
    "ParallelResourceDetector",
    "PbsResourceDetector",
    "SgeResourceDetector",
    "SlurmResourceDetector",
    "cluster_resource",
]

_logger = logging.getLogger(__name__)
_warned_lock = threading.Lock()
_warned: set[LaunchProblem] = set()


def _warn(problems: list[LaunchProblem]) -> None:
    for problem in problems:
        with _warned_lock:
            if problem in _warned:
                continue
            _warned.add(problem)
        warnings.warn(f"modeltel: {problem}", ConfigWarning, stacklevel=3)


class _SchedulerDetector(ResourceDetector):
    scheduler: ClassVar[str]

    def detect(self) -> Resource:
        problems: list[LaunchProblem] = []
        job = scheduler_job(process_environment(), problems, only=self.scheduler)
        _warn(problems)
        return Resource.get_empty() if job is None else Resource(job.attributes())


class SlurmResourceDetector(_SchedulerDetector):
    """``modeltel.hpc.*`` from ``SLURM_JOB_ID``, ``SLURM_ARRAY_*``, ``SLURM_JOB_NAME``, ...."""

    scheduler = "slurm"


class PbsResourceDetector(_SchedulerDetector):
    """``modeltel.hpc.*`` from PBS Pro, OpenPBS and Torque (``PBS_JOBID``, ``PBS_ARRAY_INDEX``, ...)."""

    scheduler = "pbs"


class LsfResourceDetector(_SchedulerDetector):
    """``modeltel.hpc.*`` from IBM Spectrum LSF (``LSB_JOBID``, ``LSB_JOBINDEX``, ``LSB_JOBNAME``)."""

    scheduler = "lsf"


class SgeResourceDetector(_SchedulerDetector):
    """``modeltel.hpc.*`` from (Sun, Son of, Univa) Grid Engine (``JOB_ID``, ``SGE_TASK_ID``, ...)."""

    scheduler = "sge"


class ParallelResourceDetector(ResourceDetector):
    """``modeltel.parallel.*`` (rank, local rank, world size) from mpirun, MPICH, torchrun or srun."""

    def detect(self) -> Resource:
        problems: list[LaunchProblem] = []
        position = parallel_position(process_environment(), problems)
        _warn(problems)
        return Resource.get_empty() if position is None else Resource(position.attributes())


_DETECTORS: tuple[type[ResourceDetector], ...] = (
    SlurmResourceDetector,
    PbsResourceDetector,
    LsfResourceDetector,
    SgeResourceDetector,
    ParallelResourceDetector,
)


def _ray_resource() -> Resource:
    # Only where Ray already runs: importing Ray costs ~0.7 s, and the detector warns when Ray is
    # installed but not initialised.
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return Resource.get_empty()
    try:
        from opentelemetry.resource.detector.ray import RayResourceDetector
    except ImportError:
        return Resource.get_empty()
    try:
        return RayResourceDetector().detect()
    except Exception:
        _logger.exception("modeltel: the Ray resource detector failed; spans carry no ray.* attributes")
        return Resource.get_empty()


def cluster_resource() -> Resource:
    """Every modeltel detector's resource merged, plus Ray's where Ray runs: what configure() adds.

    Called directly rather than through the SDK's detector pool: these only read the environment,
    and a thread pool per configure() would cost more than all of them.
    """
    resource = Resource.get_empty()
    for detector in _DETECTORS:
        resource = resource.merge(detector().detect())
    return resource.merge(_ray_resource())
