"""Every span name, attribute key, metric name, unit and bucket list modeltel emits.

One definition per name: the domain layer, the JSONL pipeline, the reader, the collector config
tests and the dashboards all take names from here. The OpenTelemetry ones (``gen_ai.*``,
``error.type``, ``exception.*``, ``server.*``, ...) are written out as strings rather than imported
from ``opentelemetry-semantic-conventions``: its generated modules cost every configured process
~5 ms to import for a few dozen strings. tests/test_semconv_upstream.py holds each copy equal to
the upstream constant it stands for, so they still follow the spec.
"""

from __future__ import annotations

from typing import Final

GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_CLIENT_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
GEN_AI_CLIENT_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
ERROR_TYPE: Final = "error.type"

SEMCONV_VERSION: Final = "1.41.0"
"""OpenTelemetry semantic-conventions release whose names, units and bucket advice modeltel follows
(GenAI ones included); ``modeltel doctor`` prints it so a dashboard can be matched to the data."""

INSTRUMENTATION_SCOPE: Final = "modeltel"
"""Scope name of every tracer and meter the domain layer creates."""

# --- resource -------------------------------------------------------------------------------------
RESOURCE_RUN_ID: Final = "modeltel.run.id"
"""Resource attribute grouping the traces of one logical run across processes (MODELTEL_RUN_ID)."""

# --- resource: batch scheduler (modeltel.hpc.*), set by modeltel._internal.detectors ---------------------
HPC_SCHEDULER: Final = "modeltel.hpc.scheduler"
"""``slurm``, ``pbs`` (PBS Pro, Torque, OpenPBS), ``lsf`` or ``sge``."""
HPC_JOB_ID: Final = "modeltel.hpc.job.id"
"""This process's job as the scheduler names it (an array task's own id: ``1234[3]``, ``31337.4``)."""
HPC_JOB_NAME: Final = "modeltel.hpc.job.name"
HPC_ARRAY_JOB_ID: Final = "modeltel.hpc.array.job_id"
"""The array's job id, shared by all its tasks; the default run id of an array task."""
HPC_ARRAY_TASK_ID: Final = "modeltel.hpc.array.task_id"
"""Integer index of this task in its array."""
HPC_CLUSTER: Final = "modeltel.hpc.cluster"
HPC_NODE: Final = "modeltel.hpc.node"
"""The node the scheduler runs this process on, in the scheduler's own name for it."""

# --- resource: parallel launch (modeltel.parallel.*): mpirun, srun, torchrun ----------------------
PARALLEL_LAUNCHER: Final = "modeltel.parallel.launcher"
"""Whose variables gave the rank: ``openmpi``, ``pmi`` (MPICH, Intel MPI), ``torchrun``, ``slurm``."""
PARALLEL_RANK: Final = "modeltel.parallel.rank"
PARALLEL_LOCAL_RANK: Final = "modeltel.parallel.local_rank"
"""Rank among the processes of the same node."""
PARALLEL_WORLD_SIZE: Final = "modeltel.parallel.world_size"
"""Integers: rank in ``[0, world_size)``."""

# --- span names -----------------------------------------------------------------------------------
SPAN_SIMULATION_JOB: Final = "simulation.job"
SPAN_SIMULATION_RUN: Final = "simulation.run"
SPAN_SIMULATION_PHASE: Final = "simulation.phase"
SPAN_CALIBRATION_JOB: Final = "calibration.job"
SPAN_CALIBRATION_ITERATION: Final = "calibration.iteration"
SPAN_CALIBRATION_ASK: Final = "calibration.ask"
SPAN_CALIBRATION_EVALUATE: Final = "calibration.evaluate"
SPAN_CALIBRATION_TELL: Final = "calibration.tell"
SPAN_INFERENCE_JOB: Final = "inference.job"
SPAN_INFERENCE_PREDICT: Final = "inference.predict"
JOB_SPAN_SUFFIX: Final = ".job"
"""A span whose name ends with this closes a job: the pipeline writes a RunSummary for it."""

# --- attributes -----------------------------------------------------------------------------------
SIMULATION_JOB_NAME: Final = "modeltel.simulation.job"
SIMULATION_N_TASKS: Final = "modeltel.simulation.n_tasks"
SIMULATION_MODEL: Final = "modeltel.simulation.model"
SIMULATION_PARAM_ID: Final = "modeltel.simulation.param_id"
SIMULATION_SEED: Final = "modeltel.simulation.seed"
SIMULATION_CACHE_HIT: Final = "modeltel.simulation.cache_hit"
SIMULATION_PHASE: Final = "modeltel.simulation.phase"
SIMULATION_STATUS: Final = "modeltel.simulation.status"

CALIBRATION_JOB_NAME: Final = "modeltel.calibration.job"
CALIBRATION_ALGORITHM: Final = "modeltel.calibration.algorithm"
CALIBRATION_MAX_ITERATIONS: Final = "modeltel.calibration.max_iterations"
CALIBRATION_ITERATION: Final = "modeltel.calibration.iteration"
CALIBRATION_N_PARAMS: Final = "modeltel.calibration.n_params"
CALIBRATION_N_EVALUATIONS: Final = "modeltel.calibration.n_evaluations"
CALIBRATION_MIN_LOSS: Final = "modeltel.calibration.min_loss"
CALIBRATION_BEST_LOSS: Final = "modeltel.calibration.best_loss"
CALIBRATION_IMPROVED: Final = "modeltel.calibration.improved"
CALIBRATION_STATUS: Final = "modeltel.calibration.status"

INFERENCE_MODEL: Final = "modeltel.inference.model"
INFERENCE_FRAMEWORK: Final = "modeltel.inference.framework"
INFERENCE_BATCH_SIZE: Final = "modeltel.inference.batch_size"
INFERENCE_CONFIDENCE_MEAN: Final = "modeltel.inference.confidence.mean"
INFERENCE_CONFIDENCE_MEDIAN: Final = "modeltel.inference.confidence.median"
INFERENCE_CONFIDENCE_P5: Final = "modeltel.inference.confidence.p5"
INFERENCE_CONFIDENCE_P95: Final = "modeltel.inference.confidence.p95"
INFERENCE_CONFIDENCE_STD: Final = "modeltel.inference.confidence.std"
INFERENCE_REJECT_RATE: Final = "modeltel.inference.reject_rate"
INFERENCE_ENTROPY_MEAN: Final = "modeltel.inference.entropy.mean"
INFERENCE_STATUS: Final = "modeltel.inference.status"
INFERENCE_TTFT: Final = "modeltel.inference.ttft_s"
INFERENCE_COST_USD: Final = "modeltel.inference.cost_usd"
INFERENCE_THROUGHPUT: Final = "modeltel.inference.tokens_per_s"

ERROR_MESSAGE_MAX_CHARS: Final = 200
"""Exception messages recorded on spans are cut to this many characters (README: Instrumenting your code)."""

# --- metric instruments (name, unit per UCUM) ------------------------------------------------------
METRIC_SIMULATION_RUN_DURATION: Final = "modeltel.simulation.run.duration"
METRIC_SIMULATION_CACHE_REQUESTS: Final = "modeltel.simulation.cache.requests"
METRIC_CALIBRATION_ITERATION_DURATION: Final = "modeltel.calibration.iteration.duration"
METRIC_CALIBRATION_LOSS: Final = "modeltel.calibration.loss"
METRIC_CALIBRATION_BEST_LOSS: Final = "modeltel.calibration.best_loss"
METRIC_INFERENCE_DURATION: Final = "modeltel.inference.duration"
METRIC_INFERENCE_CONFIDENCE: Final = "modeltel.inference.confidence"
METRIC_INFERENCE_REJECTS: Final = "modeltel.inference.rejects"
METRIC_INFERENCE_ENTROPY: Final = "modeltel.inference.entropy"
METRIC_EXPORT_DROPPED: Final = "modeltel._internal.export.dropped"
EXPORTER_NAME: Final = "modeltel.exporter"
"""Attribute of modeltel._internal.export.dropped: the OTEL_TRACES_EXPORTER name (otlp, console, ...)."""
DROP_REASON: Final = "modeltel.drop.reason"
"""Attribute of modeltel._internal.export.dropped: ``queue_full``, ``export_failed`` or ``exit_timeout``."""

UNIT_SECONDS: Final = "s"
UNIT_ONE: Final = "1"
UNIT_REQUESTS: Final = "{request}"
UNIT_PREDICTIONS: Final = "{prediction}"
UNIT_SPANS: Final = "{span}"
UNIT_TOKENS: Final = "{token}"

# --- bucket boundaries ----------------------------------------------------------------------------
DURATION_BUCKETS_S: Final[tuple[float, ...]] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    900.0,
    3600.0,
)
"""Run/iteration/inference durations: sub-millisecond tasks up to hour-long runs."""

CONFIDENCE_BUCKETS: Final[tuple[float, ...]] = tuple(round(0.05 * i, 2) for i in range(1, 20))
"""0.05 … 0.95: confidence is a probability."""

ENTROPY_BUCKETS: Final[tuple[float, ...]] = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0)
"""Nats; a 100-class uniform prediction is ~4.6 nats."""

LOSS_BUCKETS: Final[tuple[float, ...]] = tuple(10.0**e for e in range(-6, 7))
"""Losses span orders of magnitude: decades from 1e-6 to 1e6."""

GEN_AI_DURATION_BUCKETS_S: Final[tuple[float, ...]] = tuple(0.01 * 2**i for i in range(14))
"""Semantic-convention advice for gen_ai.client.operation.duration: 0.01 … 81.92 s, doubling."""

GEN_AI_TOKEN_BUCKETS: Final[tuple[float, ...]] = tuple(float(4**i) for i in range(14))
"""Semantic-convention advice for gen_ai.client.token.usage: 1 … 67108864, times 4."""


# --- domain layer: further names (issue 3) --------------------------------------------------------
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.operation.time_to_first_chunk"
EXCEPTION_MESSAGE: Final = "exception.message"
EXCEPTION_TYPE: Final = "exception.type"

EXCEPTION_EVENT: Final = "exception"
"""Span event name the OTel exception convention uses; modeltel's carries type and cut message only."""

GEN_AI_OPERATION_CHAT: Final = "chat"
GEN_AI_TOKEN_TYPE_INPUT: Final = "input"
GEN_AI_TOKEN_TYPE_OUTPUT: Final = "output"

SPAN_CALIBRATION_EPOCH: Final = "calibration.epoch"
SPAN_CALIBRATION_STEP: Final = "calibration.step"
"""Training-style loops (``modeltel.callbacks``): one span per epoch and per step."""

SIMULATION_PREFIX: Final = "modeltel.simulation."
CALIBRATION_PREFIX: Final = "modeltel.calibration."
INFERENCE_PREFIX: Final = "modeltel.inference."
"""Keyword attributes and ``record(**numbers)`` keys become ``<prefix><key>`` on the domain's spans."""

STATUS_OK: Final = "ok"
STATUS_ERROR: Final = "error"
"""Values of the ``*.status`` metric attributes."""

WARNING: Final = "modeltel.warning"
"""String array on a span: odd data the telemetry noticed (NaN losses, NaN probability rows, ...)."""

INFERENCE_JOB_NAME: Final = "modeltel.inference.job"
INFERENCE_REJECTS: Final = "modeltel.inference.rejects"
INFERENCE_CLASS_NAMES: Final = "modeltel.inference.class.names"
INFERENCE_CLASS_FRACTIONS: Final = "modeltel.inference.class.fractions"
"""Predicted class distribution of a batch or job: parallel arrays, most frequent first."""
INFERENCE_MISSING_COLUMNS: Final = "modeltel.inference.missing.columns"
INFERENCE_MISSING_RATES: Final = "modeltel.inference.missing.rates"
"""Feature missingness: parallel arrays of the columns with missing values, worst first."""
INFERENCE_MISSING_MAX: Final = "modeltel.inference.missing.max"
INFERENCE_GPU_UTILIZATION: Final = "modeltel.inference.gpu.utilization"
INFERENCE_GPU_MEMORY_USED: Final = "modeltel.inference.gpu.memory_used_bytes"
INFERENCE_GPU_POWER: Final = "modeltel.inference.gpu.power_w"
INFERENCE_GPU_ENERGY: Final = "modeltel.inference.gpu.energy_j"
"""GPU 0 as NVML reports it at the end of an inference; energy is the difference over the call."""

CALIBRATION_DIRECTION: Final = "modeltel.calibration.direction"
CALIBRATION_N_LOSSES: Final = "modeltel.calibration.n_losses"
CALIBRATION_ITERATIONS: Final = "modeltel.calibration.iterations"
CALIBRATION_ITERATIONS_TO_BEST: Final = "modeltel.calibration.iterations_to_best"
CALIBRATION_TRAJECTORY_ITERATION: Final = "modeltel.calibration.trajectory.iteration"
CALIBRATION_TRAJECTORY_BEST_LOSS: Final = "modeltel.calibration.trajectory.best_loss"
"""Best-loss trajectory on the job span: parallel arrays, one point per improvement."""
CALIBRATION_TRIAL_STATE: Final = "modeltel.calibration.trial_state"
CALIBRATION_PARAM_PREFIX: Final = "modeltel.calibration.param."
CALIBRATION_EPOCH: Final = "modeltel.calibration.epoch"
CALIBRATION_STEP: Final = "modeltel.calibration.step"

METRIC_INFERENCE_PREDICTIONS: Final = "modeltel.inference.predictions"
"""Counter of predictions (rows), so ``rejects / predictions`` is a reject rate in any backend."""

GEN_AI_TTFT_BUCKETS_S: Final[tuple[float, ...]] = tuple(0.01 * 2**i for i in range(14))
"""Semantic-convention advice for gen_ai.client.operation.time_to_first_chunk: 0.01 … 81.92 s, doubling.

The same list as the operation duration's; the spec's shorter millisecond list belongs to the
server-side ``gen_ai.server.time_to_first_token``, which modeltel does not emit.
"""


# --- distributed execution ------------------------------------------------------------------------
DASK_WORKER_ADDRESS: Final = "modeltel.dask.worker.address"
"""On every span a Dask worker process starts: the worker's address (``tcp://127.0.0.1:40123``)."""
SPAN_MPI_JOB: Final = "mpi.job"
"""Rank 0's span over a whole MPI job (``modeltel.integrations.mpi``); every rank's work is under it."""
SPAN_MPI_RANK: Final = "mpi.rank"
"""One per rank, a child of ``mpi.job``: the rank's lifetime in the job, parent of its work."""

# --- reading and exporting (modeltel show / stats / export, issue 4) ------------------------------
GEN_AI_SYSTEM: Final = "gen_ai.system"
OPENTRACING_REF_TYPE: Final = "opentracing.ref_type"
PROCESS_PID: Final = "process.pid"
SERVICE_INSTANCE_ID: Final = "service.instance.id"
OTEL_SCOPE_NAME: Final = "otel.scope.name"
OTEL_SCOPE_VERSION: Final = "otel.scope.version"
OTEL_STATUS_CODE: Final = "otel.status_code"
OTEL_STATUS_DESCRIPTION: Final = "otel.status_description"
SERVICE_NAME: Final = "service.name"

STATS_MODEL_KEYS: Final[tuple[str, ...]] = (
    GEN_AI_REQUEST_MODEL,
    GEN_AI_RESPONSE_MODEL,
    INFERENCE_MODEL,
    SIMULATION_MODEL,
)
"""``modeltel stats --by model``: a span's model is the first of these it carries."""
STATS_ENGINE_KEYS: Final[tuple[str, ...]] = (GEN_AI_PROVIDER_NAME, GEN_AI_SYSTEM, INFERENCE_FRAMEWORK)
"""``modeltel stats --by engine``: provider (``gen_ai.system`` before semconv 1.37), or framework."""

JAEGER_SPAN_KIND: Final = "span.kind"
JAEGER_ERROR: Final = "error"
JAEGER_TRACE_STATE: Final = "w3c.tracestate"
JAEGER_EVENT: Final = "event"
"""Tag and log-field names Jaeger's OTLP translator uses for kind, error status, trace state, event name."""


# --- GenAI client calls (gen_ai.*, server.*), semantic conventions SEMCONV_VERSION -----------------
GEN_AI_REQUEST_FREQUENCY_PENALTY: Final = "gen_ai.request.frequency_penalty"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_PRESENCE_PENALTY: Final = "gen_ai.request.presence_penalty"
GEN_AI_REQUEST_SEED: Final = "gen_ai.request.seed"
GEN_AI_REQUEST_STOP_SEQUENCES: Final = "gen_ai.request.stop_sequences"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_K: Final = "gen_ai.request.top_k"
GEN_AI_REQUEST_TOP_P: Final = "gen_ai.request.top_p"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
