"""What ``modeltel run`` starts a Python program with: its own ``sitecustomize``, in :data:`HOOK_DIRECTORY`.

The stock ``opentelemetry-instrument`` hook finds a distro and a configurator through entry-point
scans and checks every instrumentor's requirements with ``packaging`` before modeltel is even
asked; modeltel already knows it is the distro, so its hook configures directly and loads the
installed instrumentors itself (:mod:`.instrumentors`), at a fraction of the start-up.

The hook directory holds nothing but ``sitecustomize.py``: everything in it becomes importable
under a top-level name in the program, so the code lives here, one package above it.
"""

from __future__ import annotations

import contextlib
import os
import sys

HOOK_DIRECTORY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hook")
"""Put first on the program's PYTHONPATH; computed from this file, so finding it imports nothing."""


def warn(line: str) -> None:
    """One line on stderr, straight: the logging tree may hold only modeltel's bridge by now."""
    with contextlib.suppress(Exception):  # no usable stderr (closed, None under pythonw): never fail
        print(line, file=sys.stderr)
