"""The attribute keys and name suffix the readers match, as plain strings.

:mod:`modeltel._internal.semconv` is where they are defined, but importing it imports the
``opentelemetry.semconv`` modules it re-exports GenAI names from (and ``opentelemetry.metrics``
with them): tens of milliseconds that ``modeltel show`` would pay for these few strings. They
are repeated here instead; a test checks each against semconv's.
"""

from __future__ import annotations

from typing import Final

RESOURCE_RUN_ID: Final = "modeltel.run.id"
HPC_ARRAY_TASK_ID: Final = "modeltel.hpc.array.task_id"
HPC_NODE: Final = "modeltel.hpc.node"
PARALLEL_RANK: Final = "modeltel.parallel.rank"
PROCESS_PID: Final = "process.pid"
JOB_SPAN_SUFFIX: Final = ".job"
