"""What a timeline row says after the span name, and which process a span ran in.

Thirty rows named ``calibration.iteration`` tell a person nothing; the attribute that tells
siblings apart does (the iteration number, the model, the phase, the seed). Each modeltel span
name has its telling attributes here; any other span shows its model when its name does not
already say it (``chat gpt-4o`` does).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from modeltel._internal import semconv as sc
from modeltel.formats.otlp import Span

MAX_TAG_CHARS = 80
"""A tag longer than this is cut with an ellipsis: the row's hover card has the whole value."""

Attributes = Mapping[str, Any]


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, list | tuple | dict):
        return None
    return str(value)


def _iteration(a: Attributes) -> list[str | None]:
    number = _text(a.get(sc.CALIBRATION_ITERATION))
    state = _text(a.get(sc.CALIBRATION_TRIAL_STATE))
    return [f"#{number}" if number is not None else None, state if state != "COMPLETE" else None]


def _simulation_run(a: Attributes) -> list[str | None]:
    seed = _text(a.get(sc.SIMULATION_SEED))
    return [
        _text(a.get(sc.SIMULATION_MODEL)),
        _text(a.get(sc.SIMULATION_PARAM_ID)),
        f"seed {seed}" if seed is not None else None,
        "cached" if a.get(sc.SIMULATION_CACHE_HIT) is True else None,
    ]


def _predict(a: Attributes) -> list[str | None]:
    rows = a.get(sc.INFERENCE_BATCH_SIZE)
    counted = f"{rows:,} rows" if isinstance(rows, int) and not isinstance(rows, bool) else None
    return [_text(a.get(sc.INFERENCE_MODEL)), counted]


def _numbered(key: str, word: str) -> Callable[[Attributes], list[str | None]]:
    def tag(a: Attributes) -> list[str | None]:
        value = _text(a.get(key))
        return [f"{word} {value}" if value is not None else None]

    return tag


def _plain(key: str) -> Callable[[Attributes], list[str | None]]:
    return lambda a: [_text(a.get(key))]


_TAGS: dict[str, Callable[[Attributes], list[str | None]]] = {
    sc.SPAN_SIMULATION_JOB: _plain(sc.SIMULATION_JOB_NAME),
    sc.SPAN_SIMULATION_RUN: _simulation_run,
    sc.SPAN_SIMULATION_PHASE: _plain(sc.SIMULATION_PHASE),
    sc.SPAN_CALIBRATION_JOB: _plain(sc.CALIBRATION_JOB_NAME),
    sc.SPAN_CALIBRATION_ITERATION: _iteration,
    sc.SPAN_CALIBRATION_EPOCH: _numbered(sc.CALIBRATION_EPOCH, "epoch"),
    sc.SPAN_CALIBRATION_STEP: lambda a: [
        *_numbered(sc.CALIBRATION_EPOCH, "epoch")(a),
        *_numbered(sc.CALIBRATION_STEP, "step")(a),
    ],
    sc.SPAN_INFERENCE_JOB: _plain(sc.INFERENCE_JOB_NAME),
    sc.SPAN_INFERENCE_PREDICT: _predict,
    sc.SPAN_MPI_RANK: _numbered(sc.PARALLEL_RANK, "rank"),
}


def span_tag(span: Span) -> str:
    """The words after the span's name on its row (``#7``, ``resnet50 512 rows``); may be empty."""
    rule = _TAGS.get(span.name)
    if rule is not None:
        parts = [part for part in rule(span.attributes) if part]
    else:
        models = (_text(span.attributes.get(key)) for key in sc.STATS_MODEL_KEYS)
        parts = [next((m for m in models if m and m not in span.name), "")]
    tag = " ".join(part for part in parts if part)
    return tag if len(tag) <= MAX_TAG_CHARS else tag[: MAX_TAG_CHARS - 1] + "…"


def process_key(span: Span) -> tuple[str, str]:
    """``(service, process)``: the pid when the resource has one, else the SDK's per-process instance id."""
    resource = span.resource.attributes
    process = resource.get(sc.PROCESS_PID) or resource.get(sc.SERVICE_INSTANCE_ID) or ""
    return span.resource.service_name, str(process)


def process_names(keys: list[tuple[str, str]]) -> list[str]:
    """Legend names of ``keys``: the service alone when it ran in one process, else with the process."""
    per_service: dict[str, int] = {}
    for service, _ in keys:
        per_service[service] = per_service.get(service, 0) + 1
    names = []
    for service, process in keys:
        if per_service[service] == 1 or not process:
            names.append(service)
        else:
            names.append(f"{service} {'pid ' + process if process.isdigit() else process[:8]}")
    return names
