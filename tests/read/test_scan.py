"""The fast columnar scan against the full decoder, on the canonical layout and off it."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from modeltel.formats import otlp
from modeltel.read import query, scan
from modeltel.read.aggregate import DURATION, GroupTable
from modeltel.read.files import Block, ByteRange, read_blocks
from modeltel.read.layout import Located
from modeltel.read.offsets import locate_by_offsets
from modeltel.read.reports import stats_query
from modeltel.read.scan import Columns, Query, columns_of, concat, scan_block
from reading_data import COLLECTOR_LINES, sdk_file

NUMERIC = ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "modeltel.inference.cost_usd")
QUERIES = {
    "by name": Query(),
    "by name with numbers": Query(numeric_keys=NUMERIC),
    "by model": Query(group_keys=("gen_ai.request.model", "modeltel.simulation.model"), numeric_keys=NUMERIC),
    "by int attribute": Query(group_keys=("modeltel.calibration.iteration",)),
    "stats": stats_query("engine"),
}


@pytest.fixture(scope="module")
def sdk_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sdk_file(tmp_path_factory.mktemp("sdk"), 3000)


def _scan(path: Path, q: Query) -> Columns:
    parts = []
    for block in read_blocks(ByteRange(path, 0, path.stat().st_size), block_size=50_000):
        result = scan_block(block, q)
        assert result.bad == []
        parts.extend(result.columns)
    return concat(parts)


def _oracle(path: Path, q: Query) -> Columns:
    spans = [s for line in path.read_bytes().splitlines() for s in otlp.decode_line(line)]
    return scan._finish(columns_of(spans, q), q)


def _by_row(columns: Columns) -> list[tuple[object, ...]]:
    rows = []
    for i in range(len(columns)):
        values = tuple(
            None if np.isnan(columns.values[k][i]) else round(float(columns.values[k][i]), 9)
            for k in sorted(columns.values)
        )
        rows.append(
            (
                columns.labels[columns.group[i]],
                int(columns.start[i]),
                int(columns.end[i]),
                bool(columns.error[i]),
                values,
            )
        )
    return sorted(rows, key=repr)


@pytest.mark.parametrize("name", QUERIES)
def test_fast_path_equals_the_full_decoder(sdk_path: Path, name: str) -> None:
    q = QUERIES[name]
    fast, oracle = _scan(sdk_path, q), _oracle(sdk_path, q)
    assert len(fast) == len(oracle) > 0
    assert _by_row(fast) == _by_row(oracle)


def test_the_fast_path_is_taken_for_canonical_lines(sdk_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[bytes] = []
    real = scan.decode_line

    def spy(line: bytes) -> list[otlp.Span]:
        decoded.append(line)
        return real(line)

    monkeypatch.setattr(scan, "decode_line", spy)
    lines = sdk_path.read_bytes().count(b"\n")
    columns = _scan(sdk_path, QUERIES["by model"])
    assert len(columns) > 1000
    # Only lines with unbalanced braces in a string ("{unbalanced" on error spans) are decoded.
    unbalanced = sum(1 for line in sdk_path.read_bytes().splitlines() if line.count(b"{") != line.count(b"}"))
    assert 0 < len(decoded) == unbalanced < lines


def test_event_attributes_and_resource_attributes_are_not_span_attributes(sdk_path: Path) -> None:
    table = GroupTable()
    table.add(_scan(sdk_path, Query(numeric_keys=NUMERIC)))
    tokens = table.groups["calibration.iteration"].metrics.get("gen_ai.usage.input_tokens")
    assert tokens is None  # only their "checkpoint" events carry the key
    by_service = _scan(sdk_path, Query(group_keys=("service.name",)))
    assert len(by_service) == 0


def test_escaped_names_and_values_are_decoded(sdk_path: Path) -> None:
    names = set(_scan(sdk_path, Query()).labels)
    assert 'odd "name" \\ with\ttab' in names
    models = set(_scan(sdk_path, Query(group_keys=("gen_ai.request.model",))).labels)
    assert models == {"llama3.1", "gpt-4o-mini", 'quote"model', "ünïcode-✓"}


def test_other_layouts_go_through_the_decoder(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text("".join(json.dumps(line) + "\n" for line in COLLECTOR_LINES))
    columns = _scan(path, QUERIES["by model"])
    assert _by_row(columns) == _by_row(_oracle(path, QUERIES["by model"]))
    assert sorted(columns.labels) == ["gpt-4o"]
    assert sorted(columns.values["gen_ai.usage.input_tokens"].tolist()) == [80.0, 120.0]


def test_a_look_alike_key_inside_a_kvlist_value_is_not_an_attribute(tmp_path: Path) -> None:
    nested = {"kvlistValue": {"values": [{"key": "gen_ai.request.model", "value": {"stringValue": "fake"}}]}}
    span = {
        "traceId": "0" * 31 + "1",
        "spanId": "0" * 15 + "1",
        "name": "s",
        "kind": 1,
        "startTimeUnixNano": "1000000000000000000",
        "endTimeUnixNano": "1000000000500000000",
        "attributes": [{"key": "meta", "value": nested}],
        "status": {"code": 0},
    }
    line = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {}, "spans": [span]}]}]}
    path = tmp_path / "k.jsonl"
    path.write_text(json.dumps(line, separators=(",", ":")) + "\n")
    assert len(_scan(path, Query(group_keys=("gen_ai.request.model",)))) == 0
    assert _scan(path, Query()).labels == ["s"]


def test_torn_and_garbage_lines_are_reported_and_the_rest_read(sdk_path: Path, tmp_path: Path) -> None:
    lines = sdk_path.read_bytes().splitlines()
    damaged = tmp_path / "d.jsonl"
    damaged.write_bytes(b"\n".join([lines[0], b"garbage {", *lines[1:], lines[1][:500]]))
    result = query.aggregate([damaged], Query(), workers=1, on_bad_line=lambda bad: None)
    assert [(b.line, b.reason.split(":")[0]) for b in result.bad_lines] == [
        (2, "not JSON"),
        (len(lines) + 2, "not JSON"),
    ]
    assert result.table.span_count == sum(line.count(b'"startTimeUnixNano"') for line in lines)


def test_parallel_aggregate_equals_serial(sdk_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(query, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(query, "MIN_RANGE", 20_000)
    q = QUERIES["stats"]
    serial = query.aggregate([sdk_path], q, workers=1)
    parallel = query.aggregate([sdk_path], q, workers=2)
    assert len(query.split_ranges([sdk_path], 20_000)) > 4
    assert sorted(serial.table.groups) == sorted(parallel.table.groups)
    for label, group in serial.table.groups.items():
        other = parallel.table.groups[label]
        assert (group.count, group.errors) == (other.count, other.errors)
        assert group.metric(DURATION).percentiles([50, 95]) == other.metric(DURATION).percentiles([50, 95])
        assert group.metric(DURATION).total == pytest.approx(other.metric(DURATION).total)


def test_time_window_keeps_spans_started_inside_it(sdk_path: Path) -> None:
    everything = _scan(sdk_path, Query())
    middle = int(np.median(everything.start))
    before = _scan(sdk_path, Query(until_ns=middle))
    after = _scan(sdk_path, Query(since_ns=middle))
    assert len(before) + len(after) == len(everything)
    assert (before.start < middle).all() and (after.start >= middle).all()


def test_times_of_other_widths_and_numbers(tmp_path: Path) -> None:
    def span(name: str, start: object, end: object) -> dict[str, object]:
        return {
            "traceId": "ab" * 16,
            "spanId": "cd" * 8,
            "name": name,
            "kind": 1,
            "startTimeUnixNano": start,
            "endTimeUnixNano": end,
            "attributes": [],
            "status": {"code": 0},
        }

    spans_ = [span("long", "1800000000000000000", "1800000000500000000"), span("", "5", "1000000005")]
    lines = [
        {"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {}, "spans": spans_}]}]},
        {"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {}, "spans": [span("n", 7, 9)]}]}]},
    ]
    path = tmp_path / "widths.jsonl"
    path.write_text("".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines))
    fast = _scan(path, Query())
    assert _by_row(fast) == _by_row(_oracle(path, Query()))
    durations = sorted(int(e - s) for s, e in zip(fast.start, fast.end, strict=True))
    assert durations == [2, 500_000_000, 1_000_000_000]


def _located_rows(located: Located | None) -> list[tuple[object, ...]] | None:
    if located is None:
        return None
    names = located.names if located.group is None else [located.names[g] for g in located.group.tolist()]
    return list(
        zip(
            names,
            located.start.tolist(),
            located.end.tolist(),
            located.error.tolist(),
            located.texts or [b""] * len(names),
            strict=True,
        )
    )


def _line(*spans: dict[str, object]) -> bytes:
    request = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {}, "spans": list(spans)}]}]}
    return json.dumps(request, separators=(",", ":")).encode()


def _canonical(name: str = "run", **fields: object) -> dict[str, object]:
    span: dict[str, object] = {
        "traceId": "ab" * 16,
        "spanId": "cd" * 8,
        "name": name,
        "kind": 1,
        "startTimeUnixNano": "1800000000000000000",
        "endTimeUnixNano": "1800000000500000000",
        "attributes": [{"key": "gen_ai.usage.input_tokens", "value": {"intValue": "12"}}],
        "status": {"code": 0},
        "flags": 256,
    }
    span.update(fields)
    return {k: v for k, v in span.items() if v is not None}


def test_offsets_locator_reads_its_own_layout() -> None:
    long_name = "a long span name of more than thirty-two bytes"
    line = _line(
        _canonical(),
        _canonical("x", status={"message": "boom", "code": 2}),
        _canonical(kind=None, status={"code": 2}),
        _canonical(long_name, attributes=[], status={}),
        _canonical("", attributes=None),
        _canonical("café \\ tab\t", status={"code": "STATUS_CODE_ERROR"}),
    )
    located = locate_by_offsets(line, True)
    assert located is not None
    rows = _located_rows(located)
    assert rows is not None
    decoded = [(s.name, s.start_ns, s.end_ns) for s in otlp.decode_line(line)]
    assert [(scan._unescape(r[0]), r[1], r[2]) for r in rows] == decoded  # type: ignore[arg-type]
    assert [row[3] for row in rows] == [False, True, True, False, False, True]
    assert rows[0][4] == b'{"key":"gen_ai.usage.input_tokens","value":{"intValue":"12"}}'
    assert rows[4][4] == b""
    columns = scan._fast(line, Query())
    assert columns is not None
    assert sorted(columns.labels) == sorted(["run", "x", long_name, "", "café \\ tab\t"])


@pytest.mark.parametrize(
    "span",
    [
        _canonical(startTimeUnixNano=1800000000000000000),  # a number, not a string
        _canonical(startTimeUnixNano="180000000000000000"),  # 18 digits
        _canonical(startTimeUnixNano="9300000000000000000"),  # beyond int64
        _canonical(kind="SPAN_KIND_CLIENT"),
        _canonical(status=None),
        _canonical(links=[{"traceId": "ef" * 16, "spanId": "01" * 8}]),
        {"status": {"code": 2}, **_canonical()},  # the status before the name
        _canonical('odd "quoted" name'),
        _canonical("ends in a backslash \\"),
        {**_canonical(status=None), "events": [{"timeUnixNano": "1", "name": "e"}], "status": {"code": 2}},
    ],
)
def test_offsets_locator_leaves_other_layouts_to_the_regexes(span: dict[str, object]) -> None:
    line = _line(_canonical(), span)
    assert locate_by_offsets(line, True) is None
    path_rows = _by_row(
        scan.concat(scan_block(Block(Path("x"), 0, line + b"\n", True), QUERIES["stats"]).columns)
    )
    oracle = scan._finish(columns_of(otlp.decode_line(line), QUERIES["stats"]), QUERIES["stats"])
    assert path_rows == _by_row(oracle)


def _random_spans(rng: random.Random, count: int) -> list[dict[str, object]]:
    names = ["simulation.run", "calibration.ask", "chat llama3.1", "x", "", "a" * 40, "ünï ✓"]
    spans = []
    for _ in range(count):
        start = rng.randrange(10**18, 9 * 10**18)
        attributes = [
            {"key": rng.choice(NUMERIC), "value": {"intValue": str(rng.randrange(1000))}}
            for _ in range(rng.randrange(3))
        ]
        status = rng.choice([{"code": 0}, {}, {"code": 2}, {"code": 2, "message": "bad ] {"}, {"code": 1}])
        span = _canonical(
            rng.choice(names),
            kind=rng.choice([1, 3, None]),
            startTimeUnixNano=str(start),
            endTimeUnixNano=str(start + rng.randrange(10**9)),
            attributes=attributes if rng.random() < 0.9 else None,
            status=status,
        )
        spans.append(span)
    return spans


@pytest.mark.parametrize("wanted", [False, True])
def test_offsets_locator_equals_the_decoder_and_the_regex_locator(wanted: bool) -> None:
    rng = random.Random(5)
    for _ in range(20):
        line = _line(*_random_spans(rng, rng.randrange(1, 60)))
        rows = _located_rows(locate_by_offsets(line, wanted))
        assert rows is not None
        decoded = [
            (s.name, s.start_ns, s.end_ns, s.status_code == otlp.STATUS_ERROR) for s in otlp.decode_line(line)
        ]
        assert [(scan._unescape(r[0]), *r[1:4]) for r in rows] == decoded  # type: ignore[arg-type]
        by_regex = _located_rows(scan._locate_by_regex(line, wanted))
        if by_regex is not None:  # it needs an attribute list on every span
            assert rows == by_regex


def test_the_offsets_locator_is_taken_for_modeltel_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(6)
    data = b"".join(_line(*_random_spans(rng, 50)) + b"\n" for _ in range(30))
    monkeypatch.setattr(scan, "_locate_by_regex", None)  # would raise if it were called
    for q in QUERIES.values():
        columns = concat(scan_block(Block(Path("x"), 0, data, True), q).columns)
        oracle = scan._finish(
            columns_of([s for line in data.splitlines() for s in otlp.decode_line(line)], q), q
        )
        assert _by_row(columns) == _by_row(oracle)


PREFIX_KEYS = ("tok", "tok.in", "tok.in_total", "gen_ai.usage.input_tokens", "gen_ai.usage.input_tokens.x")
"""Keys that are prefixes of one another, short ones (under one 8-byte word) among them."""


def _random_value(rng: random.Random) -> dict[str, object]:
    look_alike = '{"key":"tok","value":{"intValue":"99"}}'
    choice = rng.randrange(12)
    if choice == 0:
        return {"stringValue": rng.choice(["12", "x", 'say "hi" \\ there', look_alike, "", "ünï ✓", "1e3"])}
    if choice in (1, 2):
        return {"intValue": str(rng.randrange(-(10**6), 10**6))}
    if choice == 3:
        return {"intValue": str(rng.randrange(10**40))}  # longer than one row of the number matrix
    if choice in (4, 5, 6):
        return {
            "doubleValue": rng.choice([rng.random(), -rng.random() * 1e-7, rng.random() * 1e300, 2.5, 0.0])
        }
    if choice == 7:
        return {"boolValue": rng.random() < 0.5}
    if choice == 8:
        return {"arrayValue": {"values": [{"stringValue": look_alike}, {"intValue": "3"}]}}
    if choice == 9:
        return {}
    return {"intValue": str(rng.randrange(1000))}


def _attribute_spans(rng: random.Random, count: int) -> list[dict[str, object]]:
    spans = []
    for span in _random_spans(rng, count):
        keys = rng.sample((*PREFIX_KEYS, "other", "gen_ai.request.model"), rng.randrange(5))
        attributes = [{"key": key, "value": _random_value(rng)} for key in keys]
        if attributes or rng.random() < 0.5:
            span["attributes"] = attributes
        spans.append(span)
    return spans


ATTRIBUTE_QUERIES = [
    Query(numeric_keys=PREFIX_KEYS),
    Query(group_keys=("tok.in", "gen_ai.request.model"), numeric_keys=PREFIX_KEYS[::2]),
    Query(group_keys=("tok",), numeric_keys=("tok", "gen_ai.usage.input_tokens.x")),
    Query(group_keys=("gen_ai.usage.input_tokens", "tok.in_total")),
]


@pytest.mark.parametrize("q", ATTRIBUTE_QUERIES)
def test_attributes_by_offsets_equal_the_decoder(q: Query, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(7)
    monkeypatch.setattr(scan, "_locate_by_regex", None)  # would raise if it were called
    monkeypatch.setattr(scan, "_span_attributes", None)  # the per-span texts are not read either
    keys = q.group_keys + q.numeric_keys
    for _ in range(40):
        lines = [_line(*_attribute_spans(rng, rng.randrange(1, 40))) for _ in range(rng.randrange(1, 4))]
        data = b"".join(line + b"\n" for line in lines)
        located = locate_by_offsets(data[:-1], True, keys)
        assert located is not None and located.hits is not None
        result = scan_block(Block(Path("x"), 0, data, True), q)
        assert result.bad == []
        oracle = scan._finish(columns_of([s for line in lines for s in otlp.decode_line(line)], q), q)
        assert _by_row(concat(result.columns)) == _by_row(oracle)


def test_attribute_hits_are_mapped_to_their_spans() -> None:
    look_alike = '{"key":"tok","value":{"intValue":"99"}}'
    line = _line(
        _canonical(attributes=[{"key": "note", "value": {"stringValue": look_alike}}]),
        _canonical(attributes=[{"key": "tok", "value": {"intValue": "5"}}, {"key": "tok.in", "value": {}}]),
        _canonical(attributes=None),
        _canonical(attributes=[{"key": "tok", "value": {"stringValue": "7"}}]),  # an int as a string: NaN
        _canonical(attributes=[{"key": "tok", "value": {"doubleValue": 1.5e-7}}]),
    )
    located = locate_by_offsets(line, True, ("tok", "tok.in"))
    assert located is not None and located.hits is not None
    assert located.texts == []
    assert located.hits["tok"].span.tolist() == [1, 3, 4]
    assert located.hits["tok.in"].span.tolist() == []  # an empty value is no value
    columns = scan._fast(line, Query(numeric_keys=("tok",)))
    assert columns is not None
    assert [None if np.isnan(v) else v for v in columns.values["tok"].tolist()] == [
        None,
        5.0,
        None,
        None,
        1.5e-7,
    ]


@pytest.mark.parametrize(
    "span",
    [
        {"status": {"code": 2}, **_canonical()},  # the status before the name: the regex locator
        {**_canonical(status=None), "events": [{"timeUnixNano": "1", "name": "e"}], "status": {"code": 2}},
        _canonical(
            attributes=[{"key": "m", "value": {"kvlistValue": {"values": [{"key": "tok", "value": {}}]}}}]
        ),
    ],
)
def test_unusual_blocks_still_fall_back(span: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    line = _line(_canonical(attributes=[{"key": "tok", "value": {"intValue": "3"}}]), span)
    q = Query(group_keys=("tok",), numeric_keys=("tok", "gen_ai.usage.input_tokens"))
    assert locate_by_offsets(line, True, ("tok",)) is None or b"kvlistValue" in line
    offsets: list[object] = []
    real = scan._fast_by_offsets

    def spy(*args: object) -> object:
        offsets.append(args)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(scan, "_fast_by_offsets", spy)
    columns = concat(scan_block(Block(Path("x"), 0, line + b"\n", True), q).columns)
    assert offsets == []
    oracle = scan._finish(columns_of(otlp.decode_line(line), q), q)
    assert _by_row(columns) == _by_row(oracle)
