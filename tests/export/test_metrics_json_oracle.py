"""The hand-written OTLP/JSON metrics encoder against OpenTelemetry's protobuf encoder, byte for byte.

The oracle is what the metric file held before the encoder was written by hand: the OTLP
exporter's ``encode_metrics`` printed by protobuf's ``MessageToDict`` (integer enums, exemplar ids
as hex) and ``json.dumps``. Byte equality, not only equal messages, so every reader of the files
sees exactly the lines it was written against.
"""

from __future__ import annotations

import base64
import json
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from google.protobuf.json_format import MessageToDict, ParseDict
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics as proto_metrics
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Buckets,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    Gauge,
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.metrics.export import Histogram as HistogramData
from opentelemetry.sdk.metrics.view import (
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    View,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from modeltel.formats.sdk_json import encode_metrics
from otlp_files import base_env, metric_requests

DELTA = AggregationTemporality.DELTA
CUMULATIVE = AggregationTemporality.CUMULATIVE


def _hex_ids(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: base64.b64decode(v).hex() if k in ("traceId", "spanId") and isinstance(v, str) else _hex_ids(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids(v) for v in node]
    return node


def _oracle(data: MetricsData) -> str:
    message = MessageToDict(proto_metrics(data), use_integers_for_enums=True)
    return json.dumps(_hex_ids(message), separators=(",", ":"), ensure_ascii=False)


def _assert_same(data: MetricsData) -> str:
    line = encode_metrics(data)
    assert line == _oracle(data)
    return line


def _sdk_metrics(temporality: AggregationTemporality) -> list[MetricsData]:
    """Two collections of every instrument kind, measured partly inside a sampled span (exemplars)."""
    kinds = (Counter, UpDownCounter, Histogram, ObservableCounter, ObservableUpDownCounter, ObservableGauge)
    reader = InMemoryMetricReader(preferred_temporality=dict.fromkeys(kinds, temporality))
    views = [
        View(instrument_name="exp", aggregation=ExponentialBucketHistogramAggregation(max_size=20)),
        View(instrument_name="buckets", aggregation=ExplicitBucketHistogramAggregation([0.0, 1.0, 10.0])),
        View(instrument_name="*"),
    ]
    resource = Resource(
        {"service.name": "oracle", "cores": 8, "ratio": 0.5, "tags": ("a", "b")}, "https://r/1"
    )
    provider = MeterProvider(resource=resource, metric_readers=[reader], views=views)
    meter = provider.get_meter("oracle.scope", "2.0", schema_url="https://s/1", attributes={"lib": "x"})
    other = provider.get_meter("other")
    tracer = TracerProvider().get_tracer("t")

    def observe(value: float) -> Any:
        def callback(options: CallbackOptions) -> list[Observation]:
            return [Observation(value, {"gpu": 0}), Observation(value * 2, {"gpu": 1})]

        return callback

    counter = meter.create_counter("tasks", unit="{task}", description='tasks done ✓ "quoted"')
    updown = meter.create_up_down_counter("queue")
    histogram = meter.create_histogram("buckets", unit="s")
    exponential = meter.create_histogram("exp")
    gauge = other.create_gauge("temperature")
    meter.create_observable_counter("obs.counter", [observe(3)])
    meter.create_observable_up_down_counter("obs.updown", [observe(-1.5)])
    meter.create_observable_gauge("obs.gauge", [observe(0.25)])
    collections = []
    for round_ in range(2):
        with tracer.start_as_current_span("step"):
            counter.add(2, {"model": "sir", "ok": True})
            histogram.record(0.5, {"model": "sir"})
            exponential.record(-3.0)
        counter.add(1, {"model": "seir", "ok": False, "n": -(2**63)})
        updown.add(-2 - round_)
        updown.add(1.5, {"f": 1.5})
        for value in (0.0, 0.001, 5, 12.5, 1e9):
            histogram.record(value, {"model": "seir"})
            exponential.record(value)
        exponential.record(-0.25)
        gauge.set(21.5 + round_, {"room": "a"})
        gauge.set(3, {"room": "b"})
        data = reader.get_metrics_data()
        assert data is not None
        collections.append(data)
    return collections


def _kinds(line: str) -> set[str]:
    metrics = json.loads(line)["resourceMetrics"][0]["scopeMetrics"]
    return {key for scope in metrics for metric in scope["metrics"] for key in metric} - {
        "name",
        "unit",
        "description",
    }


def test_every_instrument_kind_cumulative_equals_the_protobuf_encoding() -> None:
    for data in _sdk_metrics(CUMULATIVE):
        line = _assert_same(data)
        assert _kinds(line) == {"sum", "gauge", "histogram", "exponentialHistogram"}
        assert '"traceId":"' in line and '"spanId":"' in line  # exemplars of the sampled span, as hex
        assert '"aggregationTemporality":2' in line and '"isMonotonic":true' in line


def test_every_instrument_kind_delta_equals_the_protobuf_encoding() -> None:
    for data in _sdk_metrics(DELTA):
        line = _assert_same(data)
        assert '"aggregationTemporality":1' in line and '"negative":{' in line


def _point(value: float, **fields: Any) -> NumberDataPoint:
    attributes, start, time = fields.pop("attributes", {}), fields.pop("start", 0), fields.pop("time", 5)
    return NumberDataPoint(attributes, start, time, value, **fields)


def _data(
    *metrics: Metric, resource: Resource | None = None, scope: InstrumentationScope | None = None
) -> MetricsData:
    scope = scope or InstrumentationScope("s")
    return MetricsData(
        [ResourceMetrics(resource or Resource({}), [ScopeMetrics(scope, list(metrics), "")], "")]
    )


def test_non_finite_values_unset_fields_and_edge_points_equal_the_protobuf_encoding() -> None:
    from opentelemetry.sdk.metrics._internal.exemplar import Exemplar

    exemplars = [
        Exemplar({"k": "v"}, 2.5, 7, span_id=0xF067AA0BA902B7, trace_id=0xAF7651916CD43DD8448EB211C80319C),
        Exemplar({}, 3, 8),  # no span: no ids
        Exemplar({"x": math.nan}, math.inf, 9, span_id=1, trace_id=None),  # half a context: no ids
    ]
    histogram_points = [
        HistogramDataPoint({"a": 1}, 1, 2, 3, math.inf, [1, 0, 2], [-math.inf, math.nan], -math.inf, math.nan,
                           exemplars),
        HistogramDataPoint({}, 0, 0, 0, 0, [], [], 0.0, 0.0),  # zeros: the optional sum/min/max stay
        HistogramDataPoint({}, 0, 1, 2, 7, [2], [], None, None),  # type: ignore[arg-type]
    ]  # fmt: skip
    exponential_points = [
        ExponentialHistogramDataPoint({"b": True}, 1, 2, 9, -1.5, -3, 4, Buckets(2, [1, 0, 3]),
                                      Buckets(-1, [1]), 1, -2.0, 7.0, exemplars),
        ExponentialHistogramDataPoint({}, 0, 0, 0, 0, 0, 0, Buckets(0, []), Buckets(0, []), 0, 0.0, 0.0),
        ExponentialHistogramDataPoint({}, 1, 2, 1, 5, 2, 0, Buckets(0, [1]), Buckets(5, []), 0, 5, 5),
    ]  # fmt: skip
    metrics = [
        Metric("nan", None, None, Sum([_point(math.nan), _point(-1.0, exemplars=exemplars)], DELTA, True)),
        Metric("sum.int", "", "", Sum([_point(0, start=1), _point(-(2**63))], DELTA, False)),
        Metric("gauge", "d", "u", Gauge([_point(math.inf), _point(-0.0), _point(1e-300), _point(2**53)])),
        Metric("histogram", "", "ms", HistogramData(histogram_points, DELTA)),
        Metric("exponential", "", "", ExponentialHistogram(exponential_points, CUMULATIVE)),
        Metric("empty.sum", "", "", Sum([], CUMULATIVE, True)),  # no points: no data at all
        Metric("empty.gauge", "", "", Gauge([])),
        Metric("", "", "", HistogramData([], CUMULATIVE)),
        Metric("unknown", "", "", SimpleNamespace(data_points=[_point(1)])),  # type: ignore[arg-type]
    ]  # fmt: skip
    line = _assert_same(_data(*metrics))
    assert '"asDouble":"NaN"' in line and '"max":"NaN"' in line and '"sum":"Infinity"' in line


def test_empty_collections_and_scopes_equal_the_protobuf_encoding() -> None:
    assert _assert_same(MetricsData([])) == "{}"
    _assert_same(MetricsData([ResourceMetrics(Resource({}), [], "")]))
    _assert_same(MetricsData([ResourceMetrics(Resource({"a": 1}, "https://r"), [], "")]))
    for scope in (
        InstrumentationScope(""),
        InstrumentationScope("n", None, None, None),
        InstrumentationScope("n", "1", "https://s", {"k": (1, 2)}),
    ):
        _assert_same(_data(resource=Resource({}, "https://r"), scope=scope))
        _assert_same(_data(Metric("m", "", "", Gauge([_point(1)])), scope=scope))
    two_resources = MetricsData(
        [
            ResourceMetrics(Resource({"r": 1}), [ScopeMetrics(InstrumentationScope("a"), [], "")], ""),
            ResourceMetrics(
                Resource({"r": 2}),
                [
                    ScopeMetrics(InstrumentationScope("b"), [Metric("m", "", "", Gauge([_point(1)]))], ""),
                    ScopeMetrics(InstrumentationScope("c"), [Metric("m", "", "", Gauge([_point(2)]))], ""),
                ],
                "",
            ),
        ]
    )
    _assert_same(two_resources)


_int64 = st.integers(-(2**63), 2**63 - 1)
_scalars = st.one_of(st.none(), st.text(), st.booleans(), _int64, st.floats(), st.binary(max_size=8))
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(tuple), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
_attributes = st.dictionaries(st.text(max_size=8), _values, max_size=4)


def _without_empty_fields(node: Any) -> Any:
    """``node`` without ``"key":""`` and ``"values":[]``: protobuf's printer leaves these proto3
    defaults out, the attribute encoder (shared with the spans) writes them. Same message."""
    if isinstance(node, dict):
        return {
            k: _without_empty_fields(v)
            for k, v in node.items()
            if not ((k == "key" and v == "") or (k == "values" and v == []))
        }
    if isinstance(node, list):
        return [_without_empty_fields(v) for v in node]
    return node


@settings(max_examples=150, deadline=None)
@given(point=_attributes, exemplar=_attributes, resource=_attributes, scope=_attributes)
def test_attributes_of_every_value_type_equal_the_protobuf_encoding(
    point: dict[str, Any], exemplar: dict[str, Any], resource: dict[str, Any], scope: dict[str, Any]
) -> None:
    from opentelemetry.sdk.metrics._internal.exemplar import Exemplar

    exemplars = [Exemplar(exemplar, 1.0, 3, span_id=2, trace_id=1)]
    metric = Metric("m", "", "", Sum([_point(1, attributes=point, exemplars=exemplars)], CUMULATIVE, True))
    # Built without the SDK's validation, which would drop nested values from the resource.
    res = Resource({})
    res._attributes = resource  # type: ignore[assignment]
    data = _data(metric, resource=res, scope=InstrumentationScope("s", attributes=scope))
    ours = _without_empty_fields(json.loads(encode_metrics(data)))
    assert json.dumps(ours, separators=(",", ":"), ensure_ascii=False) == _oracle(data)


def test_values_protobuf_refuses_are_written_as_what_they_say() -> None:
    """The OTLP encoder raises for an int beyond int64 or a bool (and so lost the whole line)."""
    from opentelemetry.sdk.metrics._internal.exemplar import Exemplar

    exemplars = [Exemplar({}, 2**70, 3)]
    data = _data(
        Metric("m", "", "", Sum([_point(2**64, exemplars=exemplars), _point(True)], CUMULATIVE, True))
    )
    request = ParseDict(json.loads(encode_metrics(data)), ExportMetricsServiceRequest())
    big, flag = request.resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points
    assert (big.as_double, big.exemplars[0].as_double, flag.as_int) == (2.0**64, 2.0**70, 1)


def test_an_empty_key_or_sequence_is_the_same_message() -> None:
    attributes = {"": "v", "k": {"": 1}, "t": (), "d": {}}
    data = _data(Metric("m", "", "", Gauge([_point(1, attributes=attributes)])))
    line = encode_metrics(data)
    assert line != _oracle(data) and '"key":""' in line and '"values":[]' in line
    parsed = ParseDict(json.loads(line), ExportMetricsServiceRequest())
    assert parsed == ParseDict(json.loads(_oracle(data)), ExportMetricsServiceRequest())


EXIT_APP = """
import atexit, sys
atexit.register(lambda: print("LOADED", *sorted(sys.modules), flush=True))  # runs after modeltel's shutdown
from opentelemetry import metrics, trace
import modeltel
modeltel.configure()
tracer = trace.get_tracer("t")
meter = metrics.get_meter("m")
steps = meter.create_counter("steps")
loss = meter.create_histogram("loss")
for i in range(50):
    with tracer.start_as_current_span("step"):
        steps.add(1, {"phase": "train"})
        loss.record(i / 3)
"""


def test_the_final_metrics_flush_imports_no_protobuf(tmp_path: Path) -> None:
    """protobuf's JSON printer and the OTLP encoder with its generated modules cost ~20-30 ms of a
    short app's exit when the last collection was encoded through them."""
    data_dir = tmp_path / "data"
    env = base_env(data_dir, OTEL_TRACES_EXPORTER="jsonl", OTEL_METRICS_EXPORTER="jsonl")
    result = subprocess.run(
        [sys.executable, "-c", EXIT_APP], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    loaded = result.stdout.rsplit("LOADED", 1)[1].split()
    assert "opentelemetry.sdk.metrics" in loaded  # metrics were on
    heavy = ("google.protobuf", "opentelemetry.proto", "opentelemetry.exporter.otlp.proto")
    unwanted = {m for m in loaded if m.startswith(heavy)}
    assert not unwanted, sorted(unwanted)
    metrics = {
        m.name: m
        for request in metric_requests(data_dir)
        for rm in request.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert metrics["steps"].sum.data_points[0].as_int == 50
    assert metrics["loss"].histogram.data_points[0].count == 50
