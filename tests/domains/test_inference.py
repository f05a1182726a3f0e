"""inference.predict / job / generate / instrument: quality attributes, GenAI semconv, bad input."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import numpy as np
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from modeltel import inference
from modeltel._internal import semconv
from modeltel._internal.domains.calibration import HISTOGRAM_SAMPLE_MAX
from modeltel.testing import Capture, capture


def _batch(n: int, k: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    names = np.array(["cat", "dog", "bird", "fish"][:k])
    labels = np.where(probs.max(axis=1) < 0.5, "unknown", names[probs.argmax(axis=1)])
    return probs, labels


def test_predict_records_quality_attributes_and_metrics(modeltel_capture: Capture) -> None:
    probs, labels = _batch(5000)
    features = np.ones((5000, 3))
    features[:500, 1] = np.nan
    with inference.predict(model="clf-v3", framework="sklearn", batch="b1") as p:
        p.outputs(probs, labels=labels, reject_label="unknown", features=features)
    span = modeltel_capture.span("inference.predict")
    a = span.attributes
    confidence = probs.max(axis=1)
    assert a[semconv.INFERENCE_MODEL] == "clf-v3" and a[semconv.INFERENCE_FRAMEWORK] == "sklearn"
    assert a["modeltel.inference.batch"] == "b1"
    assert a[semconv.INFERENCE_BATCH_SIZE] == 5000
    assert a[semconv.INFERENCE_CONFIDENCE_MEAN] == pytest.approx(confidence.mean())
    assert a[semconv.INFERENCE_CONFIDENCE_MEDIAN] == pytest.approx(np.median(confidence))
    assert a[semconv.INFERENCE_CONFIDENCE_P5] == pytest.approx(np.percentile(confidence, 5))
    rejects = int((labels == "unknown").sum())
    assert a[semconv.INFERENCE_REJECTS] == rejects
    assert a[semconv.INFERENCE_REJECT_RATE] == pytest.approx(rejects / 5000)
    assert a[semconv.INFERENCE_CLASS_NAMES][0] in {"unknown", "cat", "dog", "bird", "fish"}
    assert sum(a[semconv.INFERENCE_CLASS_FRACTIONS]) == pytest.approx(1.0)
    assert a[semconv.INFERENCE_MISSING_COLUMNS] == ("1",)
    assert a[semconv.INFERENCE_MISSING_RATES] == (0.1,)
    model = {semconv.INFERENCE_MODEL: "clf-v3"}
    assert modeltel_capture.value(semconv.METRIC_INFERENCE_PREDICTIONS, **model) == 5000
    assert modeltel_capture.value(semconv.METRIC_INFERENCE_REJECTS, **model) == rejects
    confidence_points = modeltel_capture.histogram(semconv.METRIC_INFERENCE_CONFIDENCE, **model)
    assert confidence_points.count == HISTOGRAM_SAMPLE_MAX
    assert tuple(confidence_points.explicit_bounds) == semconv.CONFIDENCE_BUCKETS
    assert modeltel_capture.histogram(semconv.METRIC_INFERENCE_ENTROPY, **model).count == HISTOGRAM_SAMPLE_MAX
    duration = modeltel_capture.histogram(semconv.METRIC_INFERENCE_DURATION, **model)
    assert duration.attributes[semconv.INFERENCE_STATUS] == "ok"
    for point in modeltel_capture.points(semconv.METRIC_INFERENCE_CONFIDENCE):
        assert set(point.attributes) == {semconv.INFERENCE_MODEL, semconv.INFERENCE_FRAMEWORK}


def test_job_snapshot_folds_every_batch(modeltel_capture: Capture) -> None:
    batches = [_batch(2000, seed=s) for s in range(3)]
    with inference.job("nightly", model="clf") as job:
        for probs, labels in batches[:2]:
            with inference.predict(model="clf") as p:  # found through the context
                p.outputs(probs, labels=labels, reject_label="unknown")
        with job.predict() as p:  # or explicitly
            p.outputs(batches[2][0], labels=batches[2][1], reject_label="unknown")
    span = modeltel_capture.span("inference.job")
    all_conf = np.concatenate([b[0].max(axis=1) for b in batches])
    all_labels = np.concatenate([b[1] for b in batches])
    a = span.attributes
    assert a[semconv.INFERENCE_BATCH_SIZE] == 6000
    assert a[semconv.INFERENCE_CONFIDENCE_MEAN] == pytest.approx(all_conf.mean())
    assert a[semconv.INFERENCE_CONFIDENCE_STD] == pytest.approx(all_conf.std())
    assert a[semconv.INFERENCE_CONFIDENCE_MEDIAN] == pytest.approx(np.median(all_conf), abs=1e-3)
    assert a[semconv.INFERENCE_CONFIDENCE_P95] == pytest.approx(np.percentile(all_conf, 95), abs=1e-3)
    assert a[semconv.INFERENCE_REJECT_RATE] == pytest.approx((all_labels == "unknown").mean())


def test_million_by_ten_matrix_well_under_a_second(modeltel_capture: Capture) -> None:
    import time

    rng = np.random.default_rng(1)
    probs = rng.random((1_000_000, 10))
    probs /= probs.sum(axis=1, keepdims=True)
    with inference.predict(model="big") as p:
        start = time.perf_counter()
        p.outputs(probs)
        elapsed = time.perf_counter() - start
    assert elapsed < 1.0, elapsed
    assert modeltel_capture.span("inference.predict").attributes[semconv.INFERENCE_BATCH_SIZE] == 1_000_000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"probs": [[0.9, 0.9]]}, "probs: 1 of 1 rows do not sum to 1"),
        ({"probs": [[3.0, -2.0]]}, r"probs: values must lie in \[0, 1\]"),
        ({"probs": np.zeros((0, 3))}, "probs: empty batch"),
        ({"probs": np.zeros((2, 2, 2))}, "probs: expected shape"),
        ({"probs": [["a", "b"]]}, "probs: expected a numeric array"),
        ({"probs": [[0.5, 0.5]], "labels": ["a", "b"]}, "labels: expected 1 labels"),
        ({"probs": [[0.5, 0.5]], "reject_label": "x"}, "reject_label: needs labels"),
        ({"probs": [[0.5, 0.5]], "features": np.ones((3, 2))}, "features: 3 rows, but probs has 1"),
    ],
)
def test_wrong_outputs_are_a_value_error_naming_the_argument(
    modeltel_capture: Capture, kwargs: dict[str, object], message: str
) -> None:
    with inference.predict(model="m") as p, pytest.raises(ValueError, match=message):
        p.outputs(**kwargs)


def test_nan_rows_are_left_out_with_a_warning(modeltel_capture: Capture) -> None:
    probs = np.array([[0.2, 0.8], [np.nan, 0.5], [0.6, 0.4]])
    with inference.predict(model="m") as p:
        p.outputs(probs)
    a = modeltel_capture.span("inference.predict").attributes
    assert a[semconv.INFERENCE_BATCH_SIZE] == 2
    assert a[semconv.INFERENCE_CONFIDENCE_MEAN] == pytest.approx(0.7)
    assert a[semconv.WARNING] == ("probs: 1 of 3 rows contain NaN and are left out",)


def test_generate_follows_genai_semconv(modeltel_capture: Capture) -> None:
    with inference.generate(model="llama3.1", provider="ollama", operation="chat", stream=True) as g:
        g.usage(
            input_tokens=812, output_tokens=95, ttft_s=0.21, cost_usd=0.0004, response_model="llama3.1:8b"
        )
        g.content(prompt="secret prompt", completion="secret answer")
    span = modeltel_capture.span("chat llama3.1")
    assert span.kind is SpanKind.CLIENT
    a = span.attributes
    assert a[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert a[semconv.GEN_AI_PROVIDER_NAME] == "ollama"
    assert a[semconv.GEN_AI_REQUEST_MODEL] == "llama3.1"
    assert a[semconv.GEN_AI_RESPONSE_MODEL] == "llama3.1:8b"
    assert a[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 812
    assert a[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 95
    assert a[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] == 0.21
    assert a[semconv.INFERENCE_COST_USD] == 0.0004
    assert a[semconv.INFERENCE_THROUGHPUT] > 0
    assert semconv.GEN_AI_INPUT_MESSAGES not in a and semconv.GEN_AI_OUTPUT_MESSAGES not in a
    base = {
        semconv.GEN_AI_OPERATION_NAME: "chat",
        semconv.GEN_AI_PROVIDER_NAME: "ollama",
        semconv.GEN_AI_REQUEST_MODEL: "llama3.1",
    }
    duration = modeltel_capture.histogram(semconv.GEN_AI_CLIENT_OPERATION_DURATION, **base)
    assert tuple(duration.explicit_bounds) == semconv.GEN_AI_DURATION_BUCKETS_S
    assert duration.explicit_bounds[0] == 0.01 and duration.explicit_bounds[-1] == 81.92
    tokens_in = modeltel_capture.histogram(
        semconv.GEN_AI_CLIENT_TOKEN_USAGE, **base, **{semconv.GEN_AI_TOKEN_TYPE: "input"}
    )
    tokens_out = modeltel_capture.histogram(
        semconv.GEN_AI_CLIENT_TOKEN_USAGE, **base, **{semconv.GEN_AI_TOKEN_TYPE: "output"}
    )
    assert (tokens_in.sum, tokens_out.sum) == (812, 95)
    assert tokens_in.explicit_bounds[0] == 1 and tokens_in.explicit_bounds[-1] == 67108864
    ttft = modeltel_capture.histogram(semconv.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK, **base)
    assert ttft.sum == pytest.approx(0.21)


def test_content_only_with_capture_content() -> None:
    with capture(capture_content=True) as cap, inference.generate(model="m", provider="p") as g:
        g.content(prompt="hello", completion="world")
    a = cap.span("chat m").attributes
    assert json.loads(a[semconv.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"] == "hello"
    assert json.loads(a[semconv.GEN_AI_OUTPUT_MESSAGES])[0]["role"] == "assistant"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_tokens": -1}, "input_tokens=-1: must not be negative"),
        ({"output_tokens": 2.5}, "output_tokens=2.5: expected a whole number"),
        ({"output_tokens": "ten"}, "output_tokens='ten': expected a number"),
        ({"ttft_s": float("nan")}, "ttft_s=nan: expected a finite number"),
        ({"cost_usd": -0.1}, "cost_usd=-0.1: must not be negative"),
    ],
)
def test_bad_usage_is_a_value_error_naming_the_argument(
    modeltel_capture: Capture, kwargs: dict[str, object], message: str
) -> None:
    with inference.generate(model="m", provider="p") as g, pytest.raises(ValueError, match=message):
        g.usage(**kwargs)  # type: ignore[arg-type]


def test_generate_error_adds_error_type_to_the_duration_metric(modeltel_capture: Capture) -> None:
    with pytest.raises(TimeoutError), inference.generate(model="m", provider="p"):
        raise TimeoutError("upstream")
    span = modeltel_capture.span("chat m")
    assert span.status.status_code is StatusCode.ERROR
    point = modeltel_capture.histogram(semconv.GEN_AI_CLIENT_OPERATION_DURATION)
    assert point.attributes[semconv.ERROR_TYPE] == "TimeoutError"


def test_instrument_decorator_sync_predict_and_async_generate(modeltel_capture: Capture) -> None:
    @inference.instrument
    def classify(x: np.ndarray) -> np.ndarray:
        return np.tile([0.25, 0.75], (len(x), 1))

    @inference.instrument(model="gpt-x", provider="openai")
    async def ask(prompt: str) -> dict[str, object]:
        return {"text": "hi", "usage": {"prompt_tokens": 12, "completion_tokens": 3}}

    @inference.instrument(model="regressor")
    def regress(x: np.ndarray) -> np.ndarray:
        return np.array([[3.5, -1.0]])  # not probabilities: a warning, never a crash

    assert classify(np.zeros(4)).shape == (4, 2)
    assert asyncio.run(ask("hello"))["text"] == "hi"
    assert regress(np.zeros(1)).shape == (1, 2)
    predict_span, regress_span = modeltel_capture.spans("inference.predict")
    assert predict_span.attributes[semconv.INFERENCE_MODEL].endswith("classify")
    assert predict_span.attributes[semconv.INFERENCE_CONFIDENCE_MEAN] == 0.75
    chat = modeltel_capture.span("chat gpt-x")
    assert chat.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 12
    assert chat.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 3
    assert regress_span.attributes[semconv.WARNING][0].startswith("outputs not recorded: probs:")


def test_instrument_reads_usage_objects(modeltel_capture: Capture) -> None:
    @inference.instrument(model="claude", provider="anthropic")
    def call() -> SimpleNamespace:
        return SimpleNamespace(usage=SimpleNamespace(input_tokens=7, output_tokens=2))

    call()
    assert modeltel_capture.span("chat claude").attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 2


def test_job_collects_predictions_from_a_context_copying_thread_pool(modeltel_capture: Capture) -> None:
    import contextvars
    from concurrent.futures import ThreadPoolExecutor

    def work(i: int) -> None:
        with inference.predict(model="clf") as p:
            p.outputs(np.full((10 * (i + 1), 2), 0.5))

    with inference.job("pool", model="clf"), ThreadPoolExecutor(3) as pool:
        for f in [pool.submit(contextvars.copy_context().run, work, i) for i in range(3)]:
            f.result()
    with inference.predict(model="clf") as p:  # after the job: counts for nobody's snapshot
        p.outputs(np.full((7, 2), 0.5))
    assert modeltel_capture.span("inference.job").attributes[semconv.INFERENCE_BATCH_SIZE] == 60


SPEC_TTFT_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
"""gen_ai.client.operation.time_to_first_chunk's advice in semantic conventions v1.41, typed out."""


def test_time_to_first_chunk_has_the_spec_buckets_and_only_streaming_calls(modeltel_capture: Capture) -> None:
    with inference.generate(model="m", provider="p", stream=True) as g:
        g.usage(output_tokens=3, ttft_s=0.05)
    with inference.generate(model="m", provider="p", stream=False) as g:
        g.usage(output_tokens=3, ttft_s=0.07)
    with inference.generate(model="m", provider="p") as g:
        g.usage(output_tokens=3, ttft_s=0.09)
    (point,) = modeltel_capture.points(semconv.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK)
    assert point.count == 1 and point.sum == pytest.approx(0.05)
    assert tuple(point.explicit_bounds) == SPEC_TTFT_BUCKETS
    streamed = [s for s in modeltel_capture.spans("chat m") if s.attributes.get("gen_ai.request.stream")]
    assert len(streamed) == 1


def test_response_model_is_on_every_client_metric_point(modeltel_capture: Capture) -> None:
    with inference.generate(model="gpt-x", provider="openai", stream=True) as g:
        g.usage(input_tokens=5, output_tokens=7, ttft_s=0.1, response_model="gpt-x-2025-01-01")
    with inference.generate(model="gpt-x", provider="openai") as g:
        g.response(model="gpt-x-2025-02-02")
    with inference.generate(model="gpt-x", provider="openai"):
        pass
    for name in (
        semconv.GEN_AI_CLIENT_OPERATION_DURATION,
        semconv.GEN_AI_CLIENT_TOKEN_USAGE,
        semconv.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK,
    ):
        points = modeltel_capture.points(name, **{"gen_ai.response.model": "gpt-x-2025-01-01"})
        assert points, name
    durations = modeltel_capture.points(semconv.GEN_AI_CLIENT_OPERATION_DURATION)
    assert sorted(str(p.attributes.get("gen_ai.response.model")) for p in durations) == [
        "None",
        "gpt-x-2025-01-01",
        "gpt-x-2025-02-02",
    ]


def test_request_parameters_and_response_facts_use_genai_names(modeltel_capture: Capture) -> None:
    with inference.generate(
        model="gpt-x",
        provider="openai",
        temperature=0.2,
        max_tokens=256,
        top_p=0.9,
        top_k=40,
        frequency_penalty=0.1,
        presence_penalty=0.3,
        stop_sequences=["\n\n", "END"],
        seed=7,
        stream=True,
        server_address="api.example.test",
        server_port=443,
    ) as g:
        g.response(id="chatcmpl-123", model="gpt-x-1", finish_reasons=["stop"])
    a = modeltel_capture.span("chat gpt-x").attributes
    assert a["gen_ai.request.temperature"] == 0.2
    assert a["gen_ai.request.max_tokens"] == 256
    assert a["gen_ai.request.top_p"] == 0.9
    assert a["gen_ai.request.top_k"] == 40
    assert a["gen_ai.request.frequency_penalty"] == 0.1
    assert a["gen_ai.request.presence_penalty"] == 0.3
    assert a["gen_ai.request.stop_sequences"] == ("\n\n", "END")
    assert a["gen_ai.request.seed"] == 7
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.response.id"] == "chatcmpl-123"
    assert a["gen_ai.response.model"] == "gpt-x-1"
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["server.address"] == "api.example.test" and a["server.port"] == 443
    assert not [k for k in a if k.startswith("modeltel.inference.")]
    (point,) = modeltel_capture.points(semconv.GEN_AI_CLIENT_OPERATION_DURATION)
    assert point.attributes["server.address"] == "api.example.test"
    assert point.attributes["server.port"] == 443
    assert "gen_ai.request.temperature" not in point.attributes  # metric attributes stay low-cardinality


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"temperature": "hot"}, "temperature='hot': expected a number"),
        ({"max_tokens": 2.5}, "max_tokens=2.5: expected a whole number"),
        ({"server_port": -1}, "server_port=-1: must not be negative"),
        ({"stream": "yes"}, "stream='yes': expected True or False"),
        ({"stop_sequences": "END"}, "stop_sequences='END': expected a list of strings"),
    ],
)
def test_bad_request_parameters_are_a_value_error_naming_the_argument(
    modeltel_capture: Capture, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        inference.generate(model="m", provider="p", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("response", "finish_reasons"),
    [
        (  # OpenAI chat completion
            {
                "id": "chatcmpl-9",
                "model": "gpt-x-0613",
                "choices": [{"finish_reason": "stop"}, {"finish_reason": "length"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 9},
            },
            ("stop", "length"),
        ),
        (  # Anthropic message
            SimpleNamespace(
                id="chatcmpl-9",
                model="gpt-x-0613",
                stop_reason="end_turn",
                usage=SimpleNamespace(input_tokens=5, output_tokens=9),
            ),
            ("end_turn",),
        ),
        (  # Ollama chat
            {
                "model": "gpt-x-0613",
                "done_reason": "stop",
                "prompt_eval_count": 5,
                "eval_count": 9,
                "id": "chatcmpl-9",
            },
            ("stop",),
        ),
    ],
)
def test_instrument_reads_the_response_model_id_and_finish_reasons(
    modeltel_capture: Capture, response: object, finish_reasons: tuple[str, ...]
) -> None:
    @inference.instrument(model="gpt-x", provider="openai", temperature=0.5)
    def call() -> object:
        return response

    call()
    a = modeltel_capture.span("chat gpt-x").attributes
    assert a[semconv.GEN_AI_RESPONSE_MODEL] == "gpt-x-0613" and a["gen_ai.response.id"] == "chatcmpl-9"
    assert a["gen_ai.response.finish_reasons"] == finish_reasons
    assert a["gen_ai.request.temperature"] == 0.5
    point = modeltel_capture.histogram(semconv.GEN_AI_CLIENT_OPERATION_DURATION)
    assert point.attributes[semconv.GEN_AI_RESPONSE_MODEL] == "gpt-x-0613"
