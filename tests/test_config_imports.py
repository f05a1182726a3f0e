"""What importing the settings costs every configured process, counted in a fresh interpreter.

A frozen dataclass costs ~1 ms to build (its methods are generated and compiled at import), so
only the types every ``configure()`` instantiates are dataclasses: the settings, their OTLP part,
and a parallel position. The rows of the variable table, the integer settings and the problems
(config's and the launcher's) are named tuples, and so is a scheduler job.
"""

from __future__ import annotations

import subprocess
import sys

COUNT_DATACLASSES = """
import dataclasses
built = []
process_class = dataclasses._process_class
def counting(cls, *args, **kwargs):
    if cls.__module__ in ("modeltel._internal.config", "modeltel._internal.cluster"):
        built.append(cls.__qualname__)
    return process_class(cls, *args, **kwargs)
dataclasses._process_class = counting
import modeltel._internal.config
print("BUILT", *sorted(built))
"""


def test_importing_config_builds_only_the_dataclasses_configure_instantiates() -> None:
    result = subprocess.run(
        [sys.executable, "-c", COUNT_DATACLASSES], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    built = result.stdout.rsplit("BUILT", 1)[1].split()
    assert built == ["OtlpSignalSettings", "ParallelPosition", "Settings"]
