"""Inference telemetry: batch ``predict`` with quality statistics, LLM ``generate`` (GenAI semconv).

::

    from modeltel import inference

    with inference.predict(model="clf-v3", framework="sklearn") as p:
        probs = clf.predict_proba(X)
        p.outputs(probs, labels=labels, reject_label="unknown")

    with inference.generate(model="llama3.1", provider="ollama", operation="chat") as g:
        g.usage(input_tokens=812, output_tokens=95, ttft_s=0.21, cost_usd=0.0004)

``job`` groups predictions into one quality snapshot; ``instrument`` is the decorator form of both.
"""

from modeltel._internal.domains.hardware import enable_process_metrics
from modeltel._internal.domains.inference import (
    Generate,
    InferenceJob,
    InferencePredict,
    generate,
    instrument,
    job,
    predict,
)

__all__ = [
    "Generate",
    "InferenceJob",
    "InferencePredict",
    "enable_process_metrics",
    "generate",
    "instrument",
    "job",
    "predict",
]
