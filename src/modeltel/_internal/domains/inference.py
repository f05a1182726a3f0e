"""Inference scopes: batch predictions with quality statistics, and LLM calls per GenAI semconv.

``predict`` spans carry the batch's confidence, entropy, reject and missingness figures (computed by
:mod:`modeltel._internal.quality`) and feed histograms and counters whose attributes are the model and
framework only. An ``inference.job`` folds its predictions into a quality snapshot on its own span.
``generate`` follows the OpenTelemetry GenAI conventions: span ``{operation} {model}``, the
``gen_ai.*`` attributes (request parameters as ``gen_ai.request.*``, response facts as
``gen_ai.response.*``), ``gen_ai.client.operation.duration``, ``gen_ai.client.token.usage`` and, for
streaming calls only, ``gen_ai.client.operation.time_to_first_chunk``; the metric points carry the
response model and server once known, as the spec recommends.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast, overload

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind
from opentelemetry.util.types import AttributeValue

from modeltel._internal import semconv as sc
from modeltel._internal.domains import _runtime
from modeltel._internal.domains._runtime import Runtime
from modeltel._internal.domains._scope import (
    NOOP,
    Scope,
    describe,
    exception_type,
    number,
    prefixed,
    text,
    whole,
)
from modeltel._internal.domains.calibration import histogram_sample
from modeltel._internal.quality import QualityAccumulator, QualityStats, quality_stats

F = TypeVar("F", bound=Callable[..., Any])

MAX_LISTED = 64
"""Class-distribution and missingness arrays on a span list at most this many entries."""

_JOB_KEY = otel_context.create_key("modeltel.inference.job")
"""Context key of the open inference job, set in the same context as the job's span."""


def quality_attributes(stats: QualityStats) -> dict[str, AttributeValue]:
    """Span attributes of a batch's (or a job's) quality figures."""
    values: dict[str, AttributeValue] = {sc.INFERENCE_BATCH_SIZE: stats.n}
    for key, value in (
        (sc.INFERENCE_CONFIDENCE_MEAN, stats.confidence_mean),
        (sc.INFERENCE_CONFIDENCE_MEDIAN, stats.confidence_median),
        (sc.INFERENCE_CONFIDENCE_P5, stats.confidence_p5),
        (sc.INFERENCE_CONFIDENCE_P95, stats.confidence_p95),
        (sc.INFERENCE_CONFIDENCE_STD, stats.confidence_std),
        (sc.INFERENCE_ENTROPY_MEAN, stats.entropy_mean),
        (sc.INFERENCE_REJECT_RATE, stats.reject_rate),
        (sc.INFERENCE_REJECTS, stats.rejects),
    ):
        if value is not None:
            values[key] = value
    fractions = list(stats.class_fractions.items())[:MAX_LISTED]
    if fractions:
        values[sc.INFERENCE_CLASS_NAMES] = tuple(k for k, _ in fractions)
        values[sc.INFERENCE_CLASS_FRACTIONS] = tuple(v for _, v in fractions)
    if stats.feature_missing:
        values[sc.INFERENCE_MISSING_MAX] = max(stats.feature_missing.values())
        worst = sorted(((v, k) for k, v in stats.feature_missing.items() if v > 0), reverse=True)
        if worst:
            values[sc.INFERENCE_MISSING_COLUMNS] = tuple(k for _, k in worst[:MAX_LISTED])
            values[sc.INFERENCE_MISSING_RATES] = tuple(v for v, _ in worst[:MAX_LISTED])
    if stats.warnings:
        values[sc.WARNING] = stats.warnings
    return values


class InferenceJob(Scope):
    """Span ``inference.job``: a batch-inference run; its end carries the job's quality snapshot."""

    __slots__ = ("_accumulator", "_attrs", "_lock", "_model")
    _span_name = sc.SPAN_INFERENCE_JOB

    def __init__(self, rt: Runtime | None, model: str | None, attrs: dict[str, AttributeValue]) -> None:
        super().__init__(rt)
        self._model = model
        self._attrs = attrs

    def _attributes(self) -> dict[str, AttributeValue]:
        return self._attrs

    def _begin(self, rt: Runtime) -> Span:
        self._accumulator = QualityAccumulator()
        self._lock = threading.Lock()
        return super()._begin(rt)

    def _current(self, span: Span) -> Context:
        return otel_context.set_value(_JOB_KEY, self, super()._current(span))

    def _end(self, rt: Runtime, span: Span, seconds: float, exc: BaseException | None) -> None:
        with self._lock:
            snapshot = self._accumulator.snapshot()
        span.set_attributes(quality_attributes(snapshot))

    def _add(self, stats: QualityStats) -> None:
        with self._lock:
            self._accumulator.add(stats)

    def predict(
        self, model: str | None = None, framework: str | None = None, **attrs: object
    ) -> InferencePredict:
        """A ``predict`` scope whose outputs count towards this job (model defaults to the job's)."""
        chosen = model if model is not None else self._model
        if chosen is None:
            raise ValueError("model: needed when the job was opened without one")
        return _predict(chosen, framework, self, attrs)


class InferencePredict(Scope):
    """Span ``inference.predict``: one batch through one model.

    Metrics (attributes: model, framework): ``modeltel.inference.duration`` (plus status),
    ``modeltel.inference.predictions``, ``modeltel.inference.rejects``, and the
    ``modeltel.inference.confidence`` and ``.entropy`` histograms, fed from at most 1,024 evenly
    spaced rows per batch (the exact batch statistics are on the span).
    """

    __slots__ = ("_attrs", "_energy", "_job", "_metric_attrs")
    _span_name = sc.SPAN_INFERENCE_PREDICT

    def __init__(
        self,
        rt: Runtime | None,
        attrs: dict[str, AttributeValue],
        metric_attrs: dict[str, AttributeValue],
        job: InferenceJob | None,
    ) -> None:
        super().__init__(rt)
        self._attrs = attrs
        self._metric_attrs = metric_attrs
        self._job = job

    def _attributes(self) -> dict[str, AttributeValue]:
        return self._attrs

    def _begin(self, rt: Runtime) -> Span:
        if self._job is None:
            found = otel_context.get_value(_JOB_KEY)
            self._job = found if isinstance(found, InferenceJob) else None
        self._energy = rt.gpu.energy_mj() if rt.gpu is not None else None
        return super()._begin(rt)

    def _end(self, rt: Runtime, span: Span, seconds: float, exc: BaseException | None) -> None:
        if rt.gpu is not None:
            span.set_attributes(rt.gpu.attributes(self._energy))
        attrs = dict(self._metric_attrs)
        attrs[sc.INFERENCE_STATUS] = sc.STATUS_OK if exc is None else sc.STATUS_ERROR
        rt.inst.inf_duration.record(seconds, attrs)

    def outputs(self, probs: Any, labels: Any = None, reject_label: Any = None, features: Any = None) -> None:
        """Record a batch's quality statistics (see :func:`modeltel._internal.quality.quality_stats`).

        ``labels`` are the labels finally assigned per row; rows equal to ``reject_label`` count
        as rejects. Wrong input is a ValueError naming the argument; NaN rows become a warning.
        """
        span, rt = self._span, self._rt
        if span is None or rt is None:
            return
        stats = quality_stats(probs, labels=labels, reject_label=reject_label, features=features)
        span.set_attributes(quality_attributes(stats))
        for message in stats.warnings:
            self._warn(message)
        inst, attrs = rt.inst, self._metric_attrs
        inst.inf_predictions.add(stats.n, attrs)
        if stats.rejects is not None:
            inst.inf_rejects.add(stats.rejects, attrs)
        record = inst.inf_confidence.record
        for value in histogram_sample(stats.confidence):
            record(value, attrs)
        record = inst.inf_entropy.record
        for value in histogram_sample(stats.entropy):
            record(value, attrs)
        if self._job is not None:
            self._job._add(stats)


def _non_negative(argument: str, value: object, integer: bool = False) -> int | float:
    found = number(argument, value)
    if integer and (isinstance(found, bool) or not float(found).is_integer()):
        raise ValueError(f"{argument}={value!r}: expected a whole number")
    if isinstance(found, float) and not math.isfinite(found):
        raise ValueError(f"{argument}={value!r}: expected a finite number")
    if found < 0:
        raise ValueError(f"{argument}={value!r}: must not be negative")
    return int(found) if integer else found


def _stream(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"stream={describe(value)}: expected True or False")
    return value


def _strings(argument: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ValueError(f"{argument}={describe(value)}: expected a list of strings")
    return tuple(text(argument, item) for item in value)


def _finite(argument: str, value: object) -> float:
    found = float(number(argument, value))
    if not math.isfinite(found):
        raise ValueError(f"{argument}={describe(value)}: expected a finite number")
    return found


def request_attributes(
    temperature: object,
    max_tokens: object,
    top_p: object,
    top_k: object,
    frequency_penalty: object,
    presence_penalty: object,
    stop_sequences: object,
    seed: object,
    stream: object,
) -> dict[str, AttributeValue]:
    """The ``gen_ai.request.*`` span attributes of the parameters given (None ones left out)."""
    values: dict[str, AttributeValue] = {}
    for key, argument, value in (
        (sc.GEN_AI_REQUEST_TEMPERATURE, "temperature", temperature),
        (sc.GEN_AI_REQUEST_TOP_P, "top_p", top_p),
        (sc.GEN_AI_REQUEST_FREQUENCY_PENALTY, "frequency_penalty", frequency_penalty),
        (sc.GEN_AI_REQUEST_PRESENCE_PENALTY, "presence_penalty", presence_penalty),
    ):
        if value is not None:
            values[key] = _finite(argument, value)
    for key, argument, value in (
        (sc.GEN_AI_REQUEST_MAX_TOKENS, "max_tokens", max_tokens),
        (sc.GEN_AI_REQUEST_TOP_K, "top_k", top_k),
    ):
        if value is not None:
            values[key] = int(_non_negative(argument, value, integer=True))
    if seed is not None:
        values[sc.GEN_AI_REQUEST_SEED] = whole("seed", seed)
    if stop_sequences is not None:
        values[sc.GEN_AI_REQUEST_STOP_SEQUENCES] = _strings("stop_sequences", stop_sequences)
    if stream is not None:
        values[sc.GEN_AI_REQUEST_STREAM] = _stream(stream)
    return values


class Generate(Scope):
    """A GenAI client span ``{operation} {model}`` (kind CLIENT) with usage, TTFT, cost, throughput.

    The metric attributes grow as the call learns facts the spec puts on its metric points (the
    response model); the time to first chunk is a metric point only when the call streamed, since
    the spec reports it for streaming calls and for no others.
    """

    __slots__ = ("_attrs", "_energy", "_input", "_metric_attrs", "_name", "_output", "_streaming", "_ttft")

    def __init__(
        self,
        rt: Runtime | None,
        name: str,
        attrs: dict[str, AttributeValue],
        metric_attrs: dict[str, AttributeValue],
    ) -> None:
        super().__init__(rt)
        self._name = name
        self._attrs = attrs
        self._metric_attrs = metric_attrs
        self._streaming = attrs.get(sc.GEN_AI_REQUEST_STREAM) is True

    def _begin(self, rt: Runtime) -> Span:
        self._input: int | None = None
        self._output: int | None = None
        self._ttft: float | None = None
        self._metric_attrs = dict(self._metric_attrs)
        self._energy = rt.gpu.energy_mj() if rt.gpu is not None else None
        return rt.tracer.start_span(self._name, kind=SpanKind.CLIENT, attributes=self._attrs)

    def usage(
        self,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        ttft_s: float | None = None,
        cost_usd: float | None = None,
        response_model: str | None = None,
    ) -> None:
        """Token usage, time to first chunk (s), cost (USD) and the model that answered.

        Negative, fractional or non-numeric token counts and negative or non-finite times and costs
        are a ValueError naming the argument. ``ttft_s`` is on the span whatever the call; it feeds
        the time-to-first-chunk metric only when ``generate(..., stream=True)``.
        """
        values: dict[str, AttributeValue] = {}
        if input_tokens is not None:
            self._input = int(_non_negative("input_tokens", input_tokens, integer=True))
            values[sc.GEN_AI_USAGE_INPUT_TOKENS] = self._input
        if output_tokens is not None:
            self._output = int(_non_negative("output_tokens", output_tokens, integer=True))
            values[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = self._output
        if ttft_s is not None:
            self._ttft = float(_non_negative("ttft_s", ttft_s))
            values[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = self._ttft
        if cost_usd is not None:
            values[sc.INFERENCE_COST_USD] = float(_non_negative("cost_usd", cost_usd))
        if response_model is not None:
            values.update(self._response_model(response_model))
        if self._span is not None:
            self._span.set_attributes(values)

    def response(
        self,
        id: str | None = None,
        model: str | None = None,
        finish_reasons: list[str] | tuple[str, ...] | None = None,
    ) -> None:
        """What the answer said about itself: ``gen_ai.response.id``, ``.model``, ``.finish_reasons``.

        The model is also put on this call's metric points (the spec recommends it there).
        """
        values: dict[str, AttributeValue] = {}
        if id is not None:
            values[sc.GEN_AI_RESPONSE_ID] = text("id", id)
        if model is not None:
            values.update(self._response_model(model))
        if finish_reasons is not None:
            values[sc.GEN_AI_RESPONSE_FINISH_REASONS] = _strings("finish_reasons", finish_reasons)
        if self._span is not None:
            self._span.set_attributes(values)

    def _response_model(self, model: object) -> dict[str, AttributeValue]:
        name = text("response_model", model)
        if self._span is not None:
            self._metric_attrs[sc.GEN_AI_RESPONSE_MODEL] = name
        return {sc.GEN_AI_RESPONSE_MODEL: name}

    def content(self, prompt: str | None = None, completion: str | None = None) -> None:
        """Prompt and completion text, recorded only with ``MODELTEL_CAPTURE_CONTENT=true``."""
        span, rt = self._span, self._rt
        if span is None or rt is None or not rt.capture_content:
            return
        if prompt is not None:
            message = {"role": "user", "parts": [{"type": "text", "content": text("prompt", prompt)}]}
            span.set_attribute(sc.GEN_AI_INPUT_MESSAGES, json.dumps([message]))
        if completion is not None:
            answer = text("completion", completion)
            message = {"role": "assistant", "parts": [{"type": "text", "content": answer}]}
            span.set_attribute(sc.GEN_AI_OUTPUT_MESSAGES, json.dumps([message]))

    def _end(self, rt: Runtime, span: Span, seconds: float, exc: BaseException | None) -> None:
        if rt.gpu is not None:
            span.set_attributes(rt.gpu.attributes(self._energy))
        inst, attrs = rt.inst, self._metric_attrs
        if exc is not None:
            attrs = dict(attrs)
            attrs[sc.ERROR_TYPE] = exception_type(exc)
        inst.genai_duration.record(seconds, attrs)
        if self._ttft is not None and self._streaming:
            inst.genai_ttft.record(self._ttft, attrs)
        for tokens, kind in (
            (self._input, sc.GEN_AI_TOKEN_TYPE_INPUT),
            (self._output, sc.GEN_AI_TOKEN_TYPE_OUTPUT),
        ):
            if tokens is not None:
                token_attrs = dict(attrs)
                token_attrs[sc.GEN_AI_TOKEN_TYPE] = kind
                inst.genai_tokens.record(tokens, token_attrs)
        if self._output:
            generating = seconds - self._ttft if self._ttft is not None and self._ttft < seconds else seconds
            if generating > 0:
                span.set_attribute(sc.INFERENCE_THROUGHPUT, self._output / generating)


_NOOP_JOB = cast(InferenceJob, NOOP)
_NOOP_PREDICT = cast(InferencePredict, NOOP)
_NOOP_GENERATE = cast(Generate, NOOP)


def job(name: str, model: str | None = None, **attrs: object) -> InferenceJob:
    """Open an ``inference.job`` span; predictions inside it (any thread that copies context, or
    ``job.predict``) add to its quality snapshot."""
    rt = _runtime.active
    if rt is not None and not rt.enabled:
        return _NOOP_JOB
    values: dict[str, AttributeValue] = {sc.INFERENCE_JOB_NAME: text("name", name)}
    if model is not None:
        model = text("model", model)
        values[sc.INFERENCE_MODEL] = model
    prefixed(sc.INFERENCE_PREFIX, attrs, values)
    return InferenceJob(rt, model, values)


def predict(model: str, framework: str | None = None, **attrs: object) -> InferencePredict:
    """Open an ``inference.predict`` span (context manager or decorator); see :class:`InferencePredict`.

    Inside an ``inference.job`` (the current context's), the batch counts towards the job's snapshot.
    """
    return _predict(model, framework, None, attrs)


def _predict(
    model: str, framework: str | None, job: InferenceJob | None, attrs: dict[str, object]
) -> InferencePredict:
    rt = _runtime.active
    if rt is not None and not rt.enabled:
        return _NOOP_PREDICT
    metric_attrs: dict[str, AttributeValue] = {sc.INFERENCE_MODEL: text("model", model)}
    if framework is not None:
        metric_attrs[sc.INFERENCE_FRAMEWORK] = text("framework", framework)
    values = dict(metric_attrs)
    prefixed(sc.INFERENCE_PREFIX, attrs, values)
    return InferencePredict(rt, values, metric_attrs, job)


def generate(
    model: str,
    provider: str,
    operation: str = sc.GEN_AI_OPERATION_CHAT,
    *,
    temperature: float | None = None,
    max_tokens: int | None = None,
    top_p: float | None = None,
    top_k: int | None = None,
    frequency_penalty: float | None = None,
    presence_penalty: float | None = None,
    stop_sequences: list[str] | tuple[str, ...] | None = None,
    seed: int | None = None,
    stream: bool | None = None,
    server_address: str | None = None,
    server_port: int | None = None,
    **attrs: object,
) -> Generate:
    """Open a GenAI client span ``{operation} {model}`` (context manager or decorator).

    The request parameters become ``gen_ai.request.*`` span attributes under the spec's names, so
    any GenAI-aware backend reads them; ``server_address``/``server_port`` (``server.*``) are also on
    the metric points. Other keywords are ``modeltel.inference.<key>`` span attributes.
    """
    rt = _runtime.active
    if rt is not None and not rt.enabled:
        return _NOOP_GENERATE
    operation, model = text("operation", operation), text("model", model)
    metric_attrs: dict[str, AttributeValue] = {
        sc.GEN_AI_OPERATION_NAME: operation,
        sc.GEN_AI_PROVIDER_NAME: text("provider", provider),
        sc.GEN_AI_REQUEST_MODEL: model,
    }
    if server_address is not None:
        metric_attrs[sc.SERVER_ADDRESS] = text("server_address", server_address)
    if server_port is not None:
        metric_attrs[sc.SERVER_PORT] = int(_non_negative("server_port", server_port, integer=True))
    values = dict(metric_attrs)
    values.update(
        request_attributes(
            temperature,
            max_tokens,
            top_p,
            top_k,
            frequency_penalty,
            presence_penalty,
            stop_sequences,
            seed,
            stream,
        )
    )
    prefixed(sc.INFERENCE_PREFIX, attrs, values)
    return Generate(rt, f"{operation} {model}", values, metric_attrs)


def _usage_of(result: Any) -> tuple[int | None, int | None]:
    """Token counts from common client responses: ``.usage`` objects or dicts (OpenAI, Anthropic,
    Ollama field names)."""
    usage = result.get("usage", result) if isinstance(result, dict) else getattr(result, "usage", None)
    if usage is None:
        return None, None

    def field(*names: str) -> int | None:
        for name in names:
            value = usage.get(name) if isinstance(usage, dict) else getattr(usage, name, None)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                return value
        return None

    return (
        field("input_tokens", "prompt_tokens", "prompt_eval_count"),
        field("output_tokens", "completion_tokens", "eval_count"),
    )


def _field(node: Any, name: str) -> Any:
    return node.get(name) if isinstance(node, dict) else getattr(node, name, None)


def _response_of(result: Any) -> tuple[str | None, str | None, tuple[str, ...] | None]:
    """``(id, model, finish reasons)`` from common client responses: OpenAI's ``choices[].finish_reason``,
    Anthropic's ``stop_reason``, Ollama's ``done_reason``; what is absent or not a string is None."""
    found = [_field(result, "id"), _field(result, "model")]
    id_, model = (value if isinstance(value, str) else None for value in found)
    choices = _field(result, "choices")
    reasons: list[Any] = []
    if isinstance(choices, list | tuple):
        reasons = [_field(choice, "finish_reason") for choice in choices]
    else:
        reasons = [_field(result, "stop_reason") or _field(result, "done_reason")]
    kept = tuple(reason for reason in reasons if isinstance(reason, str))
    return id_, model, kept or None


def _observe(scope: Any, result: Any, is_generate: bool) -> None:
    if is_generate:
        tokens_in, tokens_out = _usage_of(result)
        if tokens_in is not None or tokens_out is not None:
            scope.usage(input_tokens=tokens_in, output_tokens=tokens_out)
        id_, model, reasons = _response_of(result)
        scope.response(id=id_, model=model, finish_reasons=reasons)
        return
    if getattr(result, "ndim", None) in (1, 2) and getattr(getattr(result, "dtype", None), "kind", "") == "f":
        try:
            scope.outputs(result)
        except ValueError as exc:
            # The function succeeded; output that is not probabilities becomes a warning, not a crash.
            scope._warn(f"outputs not recorded: {exc}")


@overload
def instrument(fn: F) -> F: ...
@overload
def instrument(
    fn: None = None,
    *,
    model: str | None = None,
    framework: str | None = None,
    provider: str | None = None,
    operation: str | None = None,
    **attrs: object,
) -> Callable[[F], F]: ...
def instrument(
    fn: Callable[..., Any] | None = None,
    *,
    model: str | None = None,
    framework: str | None = None,
    provider: str | None = None,
    operation: str | None = None,
    **attrs: object,
) -> Any:
    """Decorate a sync or async inference function; ``@instrument`` or ``@instrument(model=...)``.

    With ``provider`` or ``operation`` it is a GenAI call (``generate``; request parameters such as
    ``temperature=`` are passed on to it) and token usage, response id, model and finish reasons are
    read from the result when present (OpenAI, Anthropic and Ollama field names); otherwise a
    ``predict`` whose float array result (n, k) is recorded as outputs. ``model`` defaults to the
    function's qualified name.
    """

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        name = model if model is not None else func.__qualname__
        is_generate = provider is not None or operation is not None

        def scope() -> Any:
            if is_generate:
                # Request parameters (temperature=..., stream=...) pass through to generate's keywords.
                options: dict[str, Any] = attrs
                return generate(name, provider or "unknown", operation or sc.GEN_AI_OPERATION_CHAT, **options)
            return predict(name, framework, **attrs)

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with scope() as current:
                    result = await func(*args, **kwargs)
                    if current is not NOOP:
                        _observe(current, result, is_generate)
                    return result

            return async_wrapper

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with scope() as current:
                result = func(*args, **kwargs)
                if current is not NOOP:
                    _observe(current, result, is_generate)
                return result

        return wrapper

    return decorate(fn) if fn is not None else decorate
