"""read_metrics on files built with the official OTLP messages: known numbers, merged as documented."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb

from modeltel.read import Instrument, read_metrics
from modeltel.read.metrics import RunNotFound, bucket_percentile

CUMULATIVE = pb.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = pb.AGGREGATION_TEMPORALITY_DELTA


def _kv(**values: str) -> list[KeyValue]:
    return [KeyValue(key=k.replace("_", "."), value=AnyValue(string_value=v)) for k, v in values.items()]


def _request(resource: dict[str, str], metrics: list[pb.Metric]) -> dict[str, Any]:
    """One request as the Collector's file exporter writes it: protobuf's own JSON mapping."""
    request = ExportMetricsServiceRequest()
    block = request.resource_metrics.add()
    block.resource.attributes.extend(_kv(**resource))
    block.scope_metrics.add().metrics.extend(metrics)
    return MessageToDict(request)


def _counter(value: int, t: int, temporality: int = CUMULATIVE, name: str = "jobs") -> pb.Metric:
    point = pb.NumberDataPoint(as_int=value, time_unix_nano=t, attributes=_kv(model="sir"))
    return pb.Metric(
        name=name,
        unit="{job}",
        sum=pb.Sum(data_points=[point], aggregation_temporality=temporality, is_monotonic=True),
    )


def _gauge(value: float, t: int) -> pb.Metric:
    point = pb.NumberDataPoint(as_double=value, time_unix_nano=t)
    return pb.Metric(name="temperature", unit="Cel", gauge=pb.Gauge(data_points=[point]))


def _histogram(counts: list[int], total: float, low: float, high: float, t: int) -> pb.Metric:
    point = pb.HistogramDataPoint(
        count=sum(counts),
        sum=total,
        min=low,
        max=high,
        bucket_counts=counts,
        explicit_bounds=[1, 2, 5],
        time_unix_nano=t,
    )
    return pb.Metric(
        name="latency",
        unit="s",
        histogram=pb.Histogram(data_points=[point], aggregation_temporality=CUMULATIVE),
    )


def _exponential(scale: int, offset: int, counts: list[int], low: float, high: float, t: int) -> pb.Metric:
    point = pb.ExponentialHistogramDataPoint(
        count=sum(counts),
        sum=10.0,
        scale=scale,
        positive=pb.ExponentialHistogramDataPoint.Buckets(offset=offset, bucket_counts=counts),
        min=low,
        max=high,
        time_unix_nano=t,
    )
    histogram = pb.ExponentialHistogram(data_points=[point], aggregation_temporality=CUMULATIVE)
    return pb.Metric(name="size", unit="By", exponential_histogram=histogram)


def _write(path: Path, requests: list[dict[str, Any]], tail: str = "") -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in requests) + tail)
    return path


@pytest.fixture
def two_processes(tmp_path: Path) -> Path:
    a = {"service_name": "sweep", "service_instance_id": "a", "modeltel_run_id": "run-1"}
    b = {"service_name": "sweep", "service_instance_id": "b", "modeltel_run_id": "run-1"}
    requests = [
        _request(a, [_counter(5, 10), _gauge(1.5, 10), _counter(2, 10, DELTA, "spans")]),
        _request(b, [_counter(3, 11), _histogram([0, 1, 1, 2], 20.0, 1.5, 9.0, 11)]),
        _request(a, [_counter(12, 20), _histogram([1, 2, 1, 0], 8.0, 0.5, 4.0, 20)]),
        _request(a, [_counter(3, 30, DELTA, "spans"), _exponential(0, 0, [2, 2], 1.1, 3.9, 30)]),
        _request(b, [_counter(7, 31), _gauge(2.5, 40), _exponential(1, 2, [4], 2.1, 2.8, 31)]),
    ]
    return _write(tmp_path / "collector.jsonl", requests)


def _by_name(instruments: list[Instrument]) -> dict[str, Instrument]:
    return {i.name: i for i in instruments}


def test_cumulative_points_take_each_process_last_then_add_up(two_processes: Path) -> None:
    report = read_metrics([two_processes])
    found = _by_name(report.instruments)
    assert report.processes == 2 and report.runs == ["run-1"]
    (jobs,) = found["jobs"].series
    assert (found["jobs"].kind, found["jobs"].unit, found["jobs"].temporality) == (
        "sum",
        "{job}",
        "cumulative",
    )
    assert jobs.attributes == {"model": "sir"} and jobs.value == 12 + 7 and jobs.processes == 2
    (spans,) = found["spans"].series
    assert found["spans"].temporality == "delta" and spans.value == 2 + 3
    (gauge,) = found["temperature"].series
    assert found["temperature"].kind == "gauge" and gauge.value == 2.5 and gauge.processes == 2


def test_histogram_count_sum_and_percentiles_from_buckets(two_processes: Path) -> None:
    (latency,) = _by_name(read_metrics([two_processes]).instruments)["latency"].series
    # merged buckets (-inf,1]:1 (1,2]:3 (2,5]:2 (5,inf]:2, min 0.5, max 9
    assert (latency.count, latency.sum, latency.min, latency.max) == (8, 28.0, 0.5, 9.0)
    assert latency.percentiles[50] == pytest.approx(1 + 1 * (4 - 1) / 3)
    assert latency.percentiles[95] == pytest.approx(5 + 4 * (7.6 - 6) / 2)
    assert latency.percentiles[99] == pytest.approx(5 + 4 * (7.92 - 6) / 2)


def test_exponential_histograms_merge_at_the_coarser_scale(two_processes: Path) -> None:
    (size,) = _by_name(read_metrics([two_processes]).instruments)["size"].series
    # scale 0: (1,2]:2 (2,4]:2; scale 1 bucket 2 = (2, 2.83] -> scale 0 bucket 1 = (2,4]: 4 more
    assert (size.count, size.min, size.max) == (8, 1.1, 3.9)
    # the top bucket's edge is clamped to the recorded max, 3.9
    assert size.percentiles[50] == pytest.approx(2 + 1.9 * (4 - 2) / 6)
    assert size.percentiles[99] == pytest.approx(2 + 1.9 * (7.92 - 2) / 6)


def test_processes_without_instance_id_are_told_apart_by_file(tmp_path: Path) -> None:
    resource = {"service_name": "worker"}
    files = [_write(tmp_path / f"w{i}.jsonl", [_request(resource, [_counter(4, 10 + i)])]) for i in range(2)]
    report = read_metrics(files)
    (jobs,) = report.instruments[0].series
    assert jobs.value == 8 and jobs.processes == 2 and report.processes == 2


def test_runs_names_and_bad_lines(tmp_path: Path) -> None:
    old = {"service_instance_id": "x", "modeltel_run_id": "20260101-aaaa"}
    new = {"service_instance_id": "y", "modeltel_run_id": "20260102-bbbb"}
    path = _write(
        tmp_path / "m.jsonl",
        [_request(old, [_counter(1, 10), _gauge(3.0, 10)]), _request(new, [_counter(2, 20)])],
        tail='not json\n{"resourceMetrics": [',
    )
    bad: list[str] = []
    report = read_metrics([path], on_bad=lambda b: bad.append(str(b)))
    assert [b.split(": ")[0] for b in bad] == [f"{path}:3", f"{path}:4"]
    assert report.instruments[0].series[0].value == 3 and report.runs == ["20260101-aaaa", "20260102-bbbb"]
    assert read_metrics([path], last_run=True).instruments[0].series[0].value == 2
    only = read_metrics([path], run="20260101", names="te*")
    assert [i.name for i in only.instruments] == ["temperature"] and only.runs == ["20260101-aaaa"]
    with pytest.raises(RunNotFound, match="matches 2 runs"):
        read_metrics([path], run="2026")
    with pytest.raises(RunNotFound, match="no metrics of that run"):
        read_metrics([path], run="nope")


def test_open_buckets_take_min_and_max_as_their_edge() -> None:
    assert bucket_percentile([10.0], [4, 0], 0.5, 2.0, 8.0) == pytest.approx(5.0)
    assert bucket_percentile([10.0], [0, 4], 0.5, 12.0, 20.0) == pytest.approx(16.0)
    assert bucket_percentile([1.0, 2.0], [0, 0, 0], 0.5, None, None) is None


def test_pretty_printed_documents_read_like_lines(tmp_path: Path) -> None:
    resource = {"service_instance_id": "p"}
    requests = [_request(resource, [_counter(1, 10)]), _request(resource, [_counter(6, 20)])]
    path = tmp_path / "export.json"
    path.write_text("\n".join(json.dumps(r, indent=2) for r in requests))
    assert read_metrics([path]).instruments[0].series[0].value == 6


SDK_APP = r"""
import json, sys
import numpy as np
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

seed, max_scale, temporality = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
reader = InMemoryMetricReader(
    preferred_temporality={Histogram: getattr(AggregationTemporality, temporality.upper())}
)
view = View(instrument_type=Histogram, aggregation=ExponentialBucketHistogramAggregation(max_scale=max_scale))
provider = MeterProvider([reader], resource=Resource.create({"service.name": "sdk-app"}), views=[view])
latency = provider.get_meter("app").create_histogram("latency", unit="s")
values = np.random.default_rng(seed).lognormal(mean=-2.0, sigma=0.8, size=4000)
with open(sys.argv[4], "w") as out:
    for chunk in np.array_split(values, 4):  # four exports, as a periodic reader would write them
        for v in chunk:
            latency.record(float(v), {"model": "m"})
        out.write(json.dumps(MessageToDict(encode_metrics(reader.get_metrics_data()))) + "\n")
np.save(sys.argv[4] + ".npy", values)
"""


@pytest.mark.parametrize("temporality", ["cumulative", "delta"])
def test_exponential_histograms_written_by_the_sdk(tmp_path: Path, temporality: str) -> None:
    """Two SDK processes (max_scale 20 and 3), encoded by the OTLP exporter's own encoder."""
    import subprocess
    import sys

    import numpy as np

    app = tmp_path / "app.py"
    app.write_text(SDK_APP)
    files = []
    for seed, scale in ((1, 20), (2, 3)):
        out = tmp_path / f"p{seed}.jsonl"
        subprocess.run(
            [sys.executable, str(app), str(seed), str(scale), temporality, str(out)], check=True, timeout=60
        )
        files.append(out)
    values = np.concatenate([np.load(f"{f}.npy") for f in files])
    (instrument,) = read_metrics(files).instruments
    assert (instrument.kind, instrument.temporality) == ("exponential_histogram", temporality)
    (series,) = instrument.series
    assert series.count == len(values) == 8000 and series.processes == 2
    assert series.sum == pytest.approx(values.sum()) and series.max == pytest.approx(values.max())
    # merged at scale 3 at most: buckets are 2**(1/8) = 9% wide, so estimates are within 9%
    for q in (50, 95, 99):
        assert series.percentiles[q] == pytest.approx(np.percentile(values, q), rel=0.09)


def test_out_of_range_exponential_scales_do_not_stop_the_reader(tmp_path: Path) -> None:
    """The proto allows any sint32 scale; the spec's range is -10 … 20. A file with -12 or -2000
    (damage, or another producer) reads with the other instruments intact."""
    resource = {"service_instance_id": "s"}
    metrics = [_exponential(-12, 0, [1, 1], 1.0, 3.0, 10), _counter(4, 10)]
    path = _write(tmp_path / "m.jsonl", [_request(resource, metrics)])
    found = _by_name(read_metrics([path]).instruments)
    assert found["size"].series[0].count == 2 and found["jobs"].series[0].value == 4
    (size,) = _by_name(
        read_metrics(
            [_write(tmp_path / "n.jsonl", [_request(resource, [_exponential(-2000, 0, [3], 1.0, 3.0, 10)])])]
        ).instruments
    )["size"].series
    assert size.count == 3 and size.percentiles[50] is not None and 1.0 <= size.percentiles[50] <= 3.0
