"""A clean environment for cluster tests: no scheduler or launcher variable of the machine leaks in.

A test that sets ``SLURM_JOB_ID`` must see only what it set, also when the suite itself runs inside
a SLURM job or under mpirun.
"""

from __future__ import annotations

from pathlib import Path

from otlp_files import base_env

LAUNCH_PREFIXES = ("SLURM", "PBS_", "LSB_", "LSF_", "SGE_", "OMPI_", "PMI_", "PMIX_", "MPI_LOCALRANKID")
LAUNCH_NAMES = ("JOB_ID", "JOB_NAME", "RANK", "WORLD_SIZE", "LOCAL_RANK", "HOSTNAME", "TORCHELASTIC_RUN_ID")


def clean_env(data: Path, **extra: str) -> dict[str, str]:
    """``base_env`` without any scheduler or launcher variable, plus ``extra``."""
    env = {
        k: v for k, v in base_env(data).items() if not k.startswith(LAUNCH_PREFIXES) and k not in LAUNCH_NAMES
    }
    env.update(extra)
    return env
