"""One span the OTLP/JSON encoding cannot hold never costs its batch: it is written coerced, once warned."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from otlp_files import base_env, spans, summaries

APP = """
import time
from opentelemetry import trace
import modeltel
handle = modeltel.configure()
tracer = trace.get_tracer("bad")
deep = [1]
for _ in range(480):
    deep = [deep]
for i in range(200):
    with tracer.start_as_current_span("good", attributes={"i": i}):
        pass
    if i == 50:
        tracer.start_span("float-start", start_time=time.time()).end()
    if i == 100:
        with tracer.start_as_current_span("deep") as span:
            span.set_attribute("nested", "x")
            span._attributes._dict["nested"] = deep  # the SDK refuses it; a processor could set it
    if i == 150:
        span = tracer.start_span("float-event")
        span.add_event("e", timestamp=time.time())
        span.end()
print(handle.force_flush())
"""


def test_a_bad_span_is_written_coerced_and_its_batch_kept(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", APP], env=base_env(tmp_path), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
    names = [span.name for span, _, _ in spans(tmp_path)]  # every line decodes with the official protos
    assert names.count("good") == 200
    assert {"float-start", "deep", "float-event"} <= set(names)
    assert done.stderr.count("had a field OTLP/JSON cannot hold") == 1, done.stderr
    process = [s for s in summaries(tmp_path) if s["kind"] == "process"]
    assert process and process[0]["dropped_spans"] == 0
    (start,) = [s.start_time_unix_nano for s, _, _ in spans(tmp_path) if s.name == "float-start"]
    assert start < 10**10 < time.time_ns()  # the float seconds taken as the nanoseconds it says
    for path in tmp_path.glob("traces/*/*.jsonl"):
        for line in path.read_text().splitlines():
            json.loads(line)
