"""The process summary line, written without pydantic, against the pydantic models readers hold it to.

The writer builds the line as a plain dict (importing pydantic at exit held a short app's end up);
:func:`model_based` is the writer as it was, the models built field by field and dumped by
pydantic, kept here as the oracle: every line must equal its output, key order included, and read
back through :class:`RunSummary` exactly as that output does.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from pydantic import ValidationError

from modeltel._internal.config import load_settings
from modeltel._internal.export.local import Losses
from modeltel._internal.export.summary import ProcessSummary, SpanStats
from modeltel.store.layout import SUMMARIES_FILE
from modeltel.store.schemas import NumericStats, RunSummary
from summary_models import duration_stats

SpanInput = tuple[str, int, int, bool, dict[str, Any]]

_EXPORTER = InMemorySpanExporter()
_PROVIDER = TracerProvider(resource=Resource({"service.name": "svc-é☃"}))
_PROVIDER.add_span_processor(SimpleSpanProcessor(_EXPORTER))
_TRACER = _PROVIDER.get_tracer("summary-test")


def real_spans(inputs: list[SpanInput]) -> tuple[ReadableSpan, ...]:
    """SDK spans, ended and exported, as the local copy is handed them."""
    _EXPORTER.clear()
    for name, start, duration, error, attributes in inputs:
        span = _TRACER.start_span(name, start_time=start, attributes=attributes)
        if error:
            span.set_status(StatusCode.ERROR)
        span.end(end_time=start + duration)
    return _EXPORTER.get_finished_spans()


def model_based(
    stats: SpanStats, start: datetime, end: datetime, *, service: str, run_id: str, pid: int, dropped: int
) -> str:
    """The summary line as the model-based writer made it."""
    by_name = {name: duration_stats(stats, name) for name in sorted(stats.by_name)}
    numeric = {
        key: NumericStats(count=n.count, sum=n.sum, mean=n.sum / n.count, min=n.min, max=n.max)
        for key, n in sorted(stats.numeric.items())
    }
    return RunSummary(
        kind="process",
        service=service,
        run_id=run_id,
        pid=pid,
        start=start,
        end=end,
        duration_s=(end - start).total_seconds(),
        status="error" if stats.errors else "ok",
        span_count=stats.span_count,
        dropped_spans=dropped,
        by_name=by_name,
        numeric=numeric,
    ).model_dump_json()


def written_summary(data_dir: Path, inputs: list[SpanInput], dropped: int = 0) -> tuple[str, ProcessSummary]:
    """The line the real writer appends at shutdown after the local copy handed it ``inputs``."""
    losses = Losses()
    losses.dropped = dropped
    summary = ProcessSummary(load_settings({}, data_dir=data_dir), losses)
    summary.add(real_spans(inputs))
    summary.close()
    text = (data_dir / SUMMARIES_FILE).read_text(encoding="utf-8")
    assert text.endswith("\n") and text.count("\n") == 1, text  # one line (a name may hold U+2028)
    return text[:-1], summary


def assert_as_the_models_wrote(data_dir: Path, inputs: list[SpanInput], dropped: int = 0) -> dict[str, Any]:
    line, summary = written_summary(data_dir, inputs, dropped)
    written = json.loads(line)
    start = datetime.fromtimestamp(summary._started_ns / 1e9, UTC)
    end = datetime.fromisoformat(written["end"])
    reference = model_based(
        summary.stats,
        start,
        end,
        service="svc-é☃",
        run_id=summary.settings.run_id,
        pid=summary._pid,
        dropped=dropped,
    )
    assert json.dumps(written) == json.dumps(json.loads(reference))  # same keys, order and values
    try:
        expected = RunSummary.model_validate_json(reference)
    except ValidationError:  # a sum past the float range is null: readers refuse both alike
        with pytest.raises(ValidationError):
            RunSummary.model_validate_json(line)
    else:
        assert RunSummary.model_validate_json(line).model_dump_json() == expected.model_dump_json()
    return dict(written)


_values = st.one_of(
    st.floats(),  # NaN and the infinities included: the writer skips them
    st.sampled_from([1e308, -1e308, 5e-324, 1e-05, 1e16, 0.0, -0.0]),
    st.integers(min_value=-(2**70), max_value=2**70),  # an int is written as a float, as the model did
    st.booleans(),  # not a number to add up
    st.text(max_size=5),
)
_spans = st.lists(
    st.tuples(
        st.one_of(st.sampled_from(["step", "load", "étape", "步骤", ""]), st.text(max_size=8)),
        st.integers(min_value=0, max_value=2**62),
        st.integers(min_value=0, max_value=10**13),
        st.booleans(),
        st.dictionaries(
            st.sampled_from(["loss", "n", "größe", "x.y"]) | st.text(min_size=1, max_size=6),
            _values,
            max_size=4,
        ),
    ),
    min_size=1,
    max_size=30,
)


@given(_spans, st.integers(min_value=0, max_value=10**6))
@example([("step", 1_700_000_000_000_000_000, 1500, False, {"loss": 0.5})], 0)
@example([("a", 0, 0, True, {"big": 1e308}), ("a", 5, 10**9, False, {"big": 1e308})], 3)
@example([("nan", 10, 1, False, {"v": float("nan"), "w": float("inf")})], 0)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_line_is_what_the_models_wrote(inputs: list[SpanInput], dropped: int) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        assert_as_the_models_wrote(Path(data_dir), inputs, dropped)


def test_many_names_errors_and_unicode_as_the_models_wrote(tmp_path: Path) -> None:
    inputs: list[SpanInput] = [
        (name, 1_700_000_000_000_000_000 + i * 1000, 1000 + i * 37, i % 7 == 0, {"loss": i / 3, "step": i})
        for i, name in enumerate(f"{stem}-{n}" for n in range(40) for stem in ("train", "évaluer", "预测"))
    ]
    written = assert_as_the_models_wrote(tmp_path, inputs)
    assert written["status"] == "error" and written["span_count"] == 120 and len(written["by_name"]) == 120


def test_a_sum_past_the_float_range_is_null_as_the_models_wrote_it(tmp_path: Path) -> None:
    written = assert_as_the_models_wrote(
        tmp_path, [("s", 0, 1, False, {"big": 1e308}), ("s", 1, 1, False, {"big": 1e308})]
    )
    assert written["numeric"]["big"] == {"count": 2, "sum": None, "mean": None, "min": 1e308, "max": 1e308}


def test_a_run_that_traced_nothing_writes_no_summary(tmp_path: Path) -> None:
    summary = ProcessSummary(load_settings({}, data_dir=tmp_path), Losses())
    summary.close()
    assert not (tmp_path / SUMMARIES_FILE).exists()
