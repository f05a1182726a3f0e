"""Columns of span data (group, start, end, error, numeric attributes) pulled from blocks of lines.

This is the hot path of ``show`` and ``stats``: they need a handful of fields per span, not the
whole tree, so a line in the canonical OTLP/JSON layout (ours, and the Collector's ``file``
exporter's, which both follow the protobuf field order) is not parsed at all. Blocks written
exactly as modeltel writes them are read by byte offsets found with numpy (in
:mod:`modeltel.read.offsets`, about 3x less CPU than regexes); other canonical blocks have their
fields located with a few C-level regex passes over the whole block (``re.findall``), and the
times decoded with numpy from fixed-width digits. Either way no dependency is needed, and per CPU
second it reads several times as many spans as ``orjson.loads`` of the same lines (bench/read.py).

Why locating fields by pattern is safe here: inside a JSON string every ``"`` is escaped, so a
pattern made of quoted keys (``"startTimeUnixNano":``) only ever matches real keys. The fast path
then checks its own work: a block is used only if every line looks complete (starts as a trace
request, ends with ``}``, braces and brackets balance) and the number of spans found equals the
number of ``startTimeUnixNano`` keys and of ``status`` objects. Anything else - another field
order, a missing status, a nested ``kvlistValue`` that could hold a look-alike key, a last line
without its newline (the one a crash can tear) - goes through ``json.loads`` and the full decoder,
which also decides whether the line is valid at all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import TYPE_CHECKING

import numpy as np

from modeltel.formats.status import STATUS_ERROR
from modeltel.read.files import Block
from modeltel.read.layout import ERROR_CODES, MARK, STATUS, STRING, KeyHits, Located, number
from modeltel.read.offsets import VALUE_KINDS, hit_numbers, hit_raw, locate_by_offsets
from modeltel.read.runs import Selection, run_mark, select_line, span_run

if TYPE_CHECKING:
    import numpy.typing as npt

    from modeltel.formats.otlp import AttributeValue, Span
    from modeltel.read.layout import BoolArray, FloatArray, Int64Array, IntArray

_REQUEST_START = b'{"resourceSpans":['
# One group from the span name to the end time, so findall returns flat bytes, not tuples; the
# fixed-width tail (kind and the two 19-digit times) is then decoded for the whole block by numpy.
_HEADER = re.compile(
    rb'"name":"([^"\\]*(?:\\.[^"\\]*)*",(?:"kind":\d+,)?"startTimeUnixNano":"?\d+"?,"endTimeUnixNano":"?\d+)"?'
)
_HEADER_FIELDS = re.compile(
    rb'"name":' + STRING + rb',(?:"kind":\d+,)?"startTimeUnixNano":"?(\d+)"?,"endTimeUnixNano":"?(\d+)"?'
)
_NEXT_FIELD = rb',"(?:droppedAttributesCount|events|droppedEventsCount|links|droppedLinksCount|status|flags)"'
_ATTRIBUTES = rb',"attributes":\[([^\]]*(?:\](?!' + _NEXT_FIELD + rb")[^\]]*)*)\](?=" + _NEXT_FIELD + rb")"
"""A span's attribute list, up to the ``]`` that a span field follows (a ``]`` in a value is not)."""
_HEADER_ATTRIBUTES = re.compile(_HEADER.pattern + _ATTRIBUTES)
_NESTED = b'"kvlistValue"'


@dataclass(frozen=True, slots=True)
class Query:
    """What a scan extracts and keeps.

    ``group_keys`` empty groups spans by name; otherwise by the first of these span attributes
    present, and spans with none of them are left out. ``numeric_keys`` become float columns (NaN
    where absent). ``since_ns``/``until_ns`` keep spans that started in ``[since, until)``.
    ``trace_id`` (lowercase hex) keeps one trace. Keys named in ``fallbacks`` and ``rate`` must be
    in ``numeric_keys``.
    """

    group_keys: tuple[str, ...] = ()
    numeric_keys: tuple[str, ...] = ()
    since_ns: int | None = None
    until_ns: int | None = None
    trace_id: str | None = None
    fallbacks: tuple[tuple[str, str], ...] = ()
    """``(key, other key)`` pairs: where a span lacks ``key``, use its ``other key``."""
    rate: tuple[str, str] | None = None
    """``(rate key, amount key)``: where a span lacks the rate, use amount / duration (tokens/s)."""
    skip_suffixes: tuple[str, ...] = ()
    """Spans whose name ends with one of these are left out (``stats``: a ``*.job`` span is no call)."""
    run_id: str | None = None
    """Keeps the spans whose resource's ``modeltel.run.id`` is this (lines chosen by bytes, see
    :mod:`modeltel.read.runs`)."""


@dataclass(slots=True)
class Columns:
    """Spans of one block as parallel arrays; ``group`` indexes ``labels``."""

    labels: list[str]
    group: IntArray
    start: Int64Array
    end: Int64Array
    error: BoolArray
    values: dict[str, FloatArray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.group)

    def select(self, mask: BoolArray) -> Columns:
        return Columns(
            self.labels,
            self.group[mask],
            self.start[mask],
            self.end[mask],
            self.error[mask],
            {k: v[mask] for k, v in self.values.items()},
        )


@dataclass(slots=True)
class ScanResult:
    columns: list[Columns] = field(default_factory=list)
    bad: list[tuple[int, str]] = field(default_factory=list)
    """``(byte offset, reason)`` of each skipped line; line numbers are computed by the caller."""


class _Labels(dict[bytes, int]):
    """Raw label bytes → dense index, growing on first sight (``map(labels.__getitem__, ...)``)."""

    def __missing__(self, key: bytes) -> int:
        index = self[key] = len(self)
        return index

    def decoded(self) -> list[str]:
        return [_unescape(raw) for raw in self]


def _unescape(raw: bytes) -> str:
    if b"\\" in raw:
        decoded: str = json.loads(b'"' + raw + b'"')
        return decoded
    return raw.decode("utf-8", "replace")


def _complete_lines(data: bytes, lines: list[tuple[int, int]]) -> list[bool]:
    """For each line: does it look like one whole trace request in the canonical layout?

    A torn line is a prefix of a request, so it has more ``{`` than ``}``: the balance catches it
    (a string with unbalanced braces in it only sends its line down the slow path). Braces are
    counted by numpy per line, or once for a block of many short lines when that balances.
    """
    shape = [
        data.startswith(_REQUEST_START, start) and data.endswith((b"}", b"}\r"), start, stop)
        for start, stop in lines
    ]
    if len(lines) > 512 and data.count(b"{") == data.count(b"}"):
        return shape
    view = np.frombuffer(data, np.uint8)
    return [
        ok and np.count_nonzero(view[start:stop] == 123) == np.count_nonzero(view[start:stop] == 125)
        for ok, (start, stop) in zip(shape, lines, strict=True)
    ]


def _digits(tail: npt.NDArray[np.uint8], first: int, width: int) -> Int64Array:
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (tail[:, first : first + width].astype(np.int64) - 48) @ powers


def _split_headers(items: list[bytes]) -> tuple[list[bytes], Int64Array, Int64Array] | None:
    """Names, starts and ends from ``_HEADER`` matches, when their tails share one fixed layout."""
    first = items[0]
    cut = first.rfind(b'","kind":')
    if cut < 0:
        return None
    size = len(first) - cut
    joined = b"".join([item[-size:] for item in items])
    if len(joined) != len(items) * size:  # a shorter item: not one fixed layout
        return None
    tail = np.frombuffer(joined, np.uint8).reshape(len(items), size)
    template = tail[0]
    is_digit = (template >= 48) & (template <= 57)
    if not (tail[:, ~is_digit] == template[~is_digit]).all() or ((tail[:, is_digit] - 48) > 9).any():
        return None
    runs = np.flatnonzero(np.diff(np.concatenate(([0], is_digit.view(np.int8), [0]))))
    if len(runs) != 6:  # kind, start, end
        return None
    (_, _), (s0, s1), (e0, e1) = runs.reshape(3, 2)
    if s1 - s0 > 19 or e1 - e0 > 19:
        return None
    names = [item[:-size] for item in items]
    return names, _digits(tail, s0, s1 - s0), _digits(tail, e0, e1 - e0)


def _attribute_pattern(keys: Sequence[str]) -> re.Pattern[bytes]:
    alternatives = b"|".join(re.escape(json.dumps(k)[1:-1].encode()) for k in keys)
    return re.compile(
        rb'\{"key":"(' + alternatives + rb')","value":\{"(stringValue|intValue|doubleValue|boolValue)":'
        rb"(?:" + STRING + rb"|([^,}\]]+))"
    )


_PATTERNS: dict[tuple[str, ...], re.Pattern[bytes]] = {}


@dataclass(slots=True)
class _Hits:
    """Wanted attributes found in a block's span attribute texts, as parallel lists."""

    span: npt.NDArray[np.int64]
    key: list[bytes]
    kind: list[bytes]
    raw: list[bytes]


def _span_attributes(texts: list[bytes], keys: tuple[str, ...]) -> _Hits:
    """The wanted attributes in the spans' attribute texts, with the index of the span of each.

    The texts are joined with newlines (never raw inside JSON text) and cut by ``re.split`` at the
    wanted attributes: the pieces between hits say, by their newline counts, how many spans each
    hit is past the previous one, and the captured groups come back as flat lists. No per-hit
    Python code runs, which matters: a span with tokens, cost and ttft has five hits.
    """
    pattern = _PATTERNS.get(keys)
    if pattern is None:
        pattern = _PATTERNS[keys] = _attribute_pattern(keys)
    parts = pattern.split(b"\n".join(texts))
    between = parts[0:-1:5]
    span = np.cumsum(np.fromiter(map(bytes.count, between, repeat(b"\n")), np.int64, len(between)))
    quoted, bare = parts[3::5], parts[4::5]
    raw = [q if q is not None else b for q, b in zip(quoted, bare, strict=True)]
    return _Hits(span, parts[1::5], parts[2::5], raw)


def _numbers(kinds: list[bytes], raws: list[bytes]) -> FloatArray:
    """Numeric attribute values; strings are NaN, booleans 0/1."""
    try:
        values: FloatArray = np.array(raws, dtype=np.bytes_).astype(np.float64)
    except ValueError:  # a stringValue that is not a number
        values = np.array([number(k, r) for k, r in zip(kinds, raws, strict=True)], dtype=np.float64)
    kind = np.array(kinds, dtype=np.bytes_)
    values[kind == b"stringValue"] = np.nan
    booleans = kind == b"boolValue"
    if booleans.any():
        values[booleans] = np.array(raws, dtype=np.bytes_)[booleans] == b"true"
    return values


def _label(kind: bytes, raw: bytes) -> bytes:
    if kind == b"stringValue":
        return raw
    if kind == b"doubleValue":
        try:
            return repr(float(raw)).encode()
        except ValueError:
            return raw
    return raw


def _skip(names: list[bytes], group: IntArray | None, count: int, suffixes: tuple[str, ...]) -> BoolArray:
    """Per span, whether its name ends with one of ``suffixes`` (``group`` indexes distinct ``names``)."""
    ends = tuple(json.dumps(suffix)[1:-1].encode() for suffix in suffixes)
    hit = np.fromiter((name.endswith(ends) for name in names), dtype=bool, count=len(names))
    if group is None:
        return hit
    return hit[group] if len(hit) else np.zeros(count, bool)


def _empty() -> Columns:
    nothing = np.zeros(0, np.int64)
    return Columns([], np.zeros(0, np.int32), nothing, nothing, np.zeros(0, bool))


def _locate_by_regex(data: bytes, wanted: bool) -> Located | None:
    """Spans located with regexes: any field layout with the protobuf order, times of any width."""
    if wanted:
        pairs = _HEADER_ATTRIBUTES.findall(data)
        items, texts = [p[0] for p in pairs], [p[1] for p in pairs]
    else:
        items, texts = _HEADER.findall(data), []
    count = len(items)
    if count != data.count(MARK):
        return None
    codes = STATUS.findall(data)
    if len(codes) != count:
        return None
    split = _split_headers(items) if count else None
    if split is None:
        fields = _HEADER_FIELDS.findall(data)
        if len(fields) != count:
            return None
        names = [f[0] for f in fields]
        start = np.array([int(f[1]) for f in fields], dtype=np.int64)
        end = np.array([int(f[2]) for f in fields], dtype=np.int64)
    else:
        names, start, end = split
    codes_array = np.array(codes, dtype=np.bytes_)
    error = (codes_array == ERROR_CODES[0]) | (codes_array == ERROR_CODES[1])
    return Located(names, start, end, error, texts)


def _fast(data: bytes, query: Query) -> Columns | None:
    """Columns for ``data`` (whole, complete lines) in the canonical layout, or None if it is not."""
    keys = query.group_keys + query.numeric_keys
    wanted = bool(keys) and any(json.dumps(k)[1:-1].encode() in data for k in keys)
    if wanted and _NESTED in data:
        return None  # a kvlistValue may hold a look-alike key: leave such lines to the decoder
    located = locate_by_offsets(data, wanted, keys if wanted else ()) or _locate_by_regex(data, wanted)
    if located is None:
        return None
    names, start, end, error, texts = located.names, located.start, located.end, located.error, located.texts
    count = len(start)
    if count == 0:
        return _empty()
    if located.hits is not None:
        return _fast_by_offsets(data, query, located, located.hits)
    hits = _span_attributes(texts, keys) if wanted else _Hits(np.zeros(0, np.int64), [], [], [])
    labels = _Labels()
    if query.group_keys:
        chosen: dict[int, tuple[int, bytes]] = {}
        rank = {json.dumps(key)[1:-1].encode(): r for r, key in enumerate(query.group_keys)}
        for index, hit_key, kind, raw in zip(hits.span.tolist(), hits.key, hits.kind, hits.raw, strict=True):
            r = rank.get(hit_key)
            if r is not None and (index not in chosen or r < chosen[index][0]):
                chosen[index] = (r, _label(kind, raw))
        group = np.full(count, -1, dtype=np.int32)
        for index, (_, raw) in chosen.items():
            group[index] = labels[raw]
    elif located.group is not None:
        group = located.group
        labels.update((name, index) for index, name in enumerate(names))
    else:
        group = np.fromiter(map(labels.__getitem__, names), dtype=np.int32, count=count)
    if query.skip_suffixes:
        group = np.where(_skip(names, located.group, count, query.skip_suffixes), -1, group).astype(np.int32)
    values = {key: np.full(count, np.nan) for key in query.numeric_keys}
    if len(hits.key):
        hit_keys = np.array(hits.key, dtype=np.bytes_)
        numbers = _numbers(hits.kind, hits.raw)
        for name in query.numeric_keys:
            mask = hit_keys == json.dumps(name)[1:-1].encode()
            values[name][hits.span[mask]] = numbers[mask]
    try:
        decoded = labels.decoded()
    except ValueError:  # a name with a broken escape: the decoder decides what the line is
        return None
    return Columns(decoded, group, start, end, error, values)


def _fast_by_offsets(data: bytes, query: Query, located: Located, hits: dict[str, KeyHits]) -> Columns | None:
    """:func:`_fast`'s columns from attributes found by offsets (the same values, span for span)."""
    count = len(located.start)
    view = np.frombuffer(data, np.uint8)
    labels = _Labels()
    if query.group_keys:
        # Per span, the first attribute of the best-ranked group key the attribute regex matches.
        spans, ranks, offsets, raws = [], [], [], []
        for rank, key in enumerate(query.group_keys):
            found = hits[key]
            for index, kind, value, last in zip(
                found.span.tolist(),
                found.kind.tolist(),
                found.value.tolist(),
                found.last.tolist(),
                strict=True,
            ):
                raw = hit_raw(data, value, last) if value < last else None
                if raw is not None:
                    spans.append(index)
                    ranks.append(rank)
                    offsets.append(value)
                    raws.append(_label(VALUE_KINDS[kind], raw))
        group = np.full(count, -1, dtype=np.int32)
        if spans:
            span_array = np.array(spans, np.int64)
            order = np.lexsort((np.array(offsets, np.int64), np.array(ranks, np.int64), span_array))
            chosen = order[np.concatenate(([True], np.diff(span_array[order]) != 0))]
            for index in chosen.tolist():
                group[spans[index]] = labels[raws[index]]
    elif located.group is not None:
        group = located.group
        labels.update((name, index) for index, name in enumerate(located.names))
    else:
        group = np.fromiter(map(labels.__getitem__, located.names), dtype=np.int32, count=count)
    if query.skip_suffixes:
        skipped = _skip(located.names, located.group, count, query.skip_suffixes)
        group = np.where(skipped, -1, group).astype(np.int32)
    values = {key: np.full(count, np.nan) for key in query.numeric_keys}
    parts = [hits[key] for key in query.numeric_keys]
    if parts:
        joined = KeyHits(
            *(np.concatenate([getattr(part, name) for part in parts]) for name in KeyHits.__slots__)
        )
        numbers, valid = hit_numbers(data, view, joined)
        low = 0
        for key, part in zip(query.numeric_keys, parts, strict=True):  # in byte order within a key
            high = low + len(part.span)
            keep = valid[low:high]
            values[key][part.span[keep]] = numbers[low:high][keep]
            low = high
    try:
        decoded = labels.decoded()
    except ValueError:  # a name with a broken escape: the decoder decides what the line is
        return None
    return Columns(decoded, group, located.start, located.end, located.error, values)


def decode_line(line: bytes) -> list[Span]:
    """The full decoder, for a line the fast path could not read; imported on first use, so a
    block read by bytes alone never loads it (~15 ms of import)."""
    from modeltel.formats.otlp import decode_line as decode

    return decode(line)


def _numeric(value: AttributeValue) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    return float("nan")


def _group_label(value: AttributeValue) -> str | None:
    if value is None or isinstance(value, list | dict | bytes):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else repr(value)


def columns_of(spans: Iterable[Span], query: Query) -> Columns:
    """The same columns as the fast path, from decoded spans (the slow path and the tests' oracle)."""
    labels: dict[str, int] = {}
    group, start, end, error = [], [], [], []
    values: dict[str, list[float]] = {key: [] for key in query.numeric_keys}
    for span in spans:
        if query.trace_id is not None and span.trace_id != query.trace_id:
            continue
        if span.name.endswith(query.skip_suffixes):
            continue
        if query.run_id is not None and span_run(span) != query.run_id:
            continue
        if query.group_keys:
            label = None
            for key in query.group_keys:
                if key in span.attributes:
                    label = _group_label(span.attributes[key])
                    if label is not None:
                        break
            if label is None:
                continue
        else:
            label = span.name
        group.append(labels.setdefault(label, len(labels)))
        start.append(span.start_ns)
        end.append(span.end_ns)
        error.append(span.status_code == STATUS_ERROR)
        for key, column in values.items():
            column.append(_numeric(span.attributes.get(key)))
    return Columns(
        list(labels),
        np.array(group, dtype=np.int32),
        np.array(start, dtype=np.int64),
        np.array(end, dtype=np.int64),
        np.array(error, dtype=bool),
        {key: np.array(column, dtype=np.float64) for key, column in values.items()},
    )


def _finish(columns: Columns, query: Query) -> Columns:
    for key, other in query.fallbacks:
        target, source = columns.values[key], columns.values[other]
        missing = np.isnan(target)
        target[missing] = source[missing]
    if query.rate is not None and len(columns):
        rate, amount = (columns.values[key] for key in query.rate)
        missing = np.isnan(rate) & ~np.isnan(amount)
        if missing.any():
            seconds = (columns.end[missing] - columns.start[missing]) / 1e9
            with np.errstate(divide="ignore", invalid="ignore"):
                rate[missing] = np.where(seconds > 0, amount[missing] / seconds, np.nan)
    mask = columns.group >= 0
    if query.since_ns is not None:
        mask &= columns.start >= query.since_ns
    if query.until_ns is not None:
        mask &= columns.start < query.until_ns
    return columns if mask.all() else columns.select(mask)


def _contains_trace(line: bytes, trace_id: str) -> bool:
    return trace_id.encode() in line or trace_id.upper().encode() in line


def _line_spans(data: bytes) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of each line of ``data`` (without its newline), blank ones left out."""
    position, size = 0, len(data)
    while position < size:
        newline = data.find(b"\n", position)
        stop = size if newline < 0 else newline
        if stop > position and (stop - position > 8 or data[position:stop].strip()):
            yield position, stop
        position = stop + 1


def scan_block(block: Block, query: Query) -> ScanResult:
    """Columns for the spans of ``block`` that ``query`` keeps, and the lines that had to be skipped."""
    data = block.data
    result = ScanResult()
    slow: list[tuple[int, int]] = []
    mark = run_mark(query.run_id) if query.run_id is not None else None
    if query.trace_id is not None:
        needles = (query.trace_id.encode(), query.trace_id.upper().encode())
        slow = [
            (a, b)
            for a, b in _line_spans(data)
            if any(data.find(n, a, b) >= 0 for n in needles)
            and (mark is None or select_line(data, mark, a, b) is not Selection.NONE)
        ]
    else:
        torn = block.at_eof and not data.endswith(b"\n")
        lines = list(_line_spans(data))
        runs: list[list[tuple[int, int]]] = [[]]
        for (start, stop), complete in zip(lines, _complete_lines(data, lines), strict=True):
            chosen = Selection.ALL if mark is None else select_line(data, mark, start, stop)
            if chosen is Selection.NONE:  # another run's line: not read at all
                runs.append([])
            elif chosen is Selection.SOME:
                slow.append((start, stop))
                runs.append([])
            elif complete and not (torn and stop == len(data)):
                runs[-1].append((start, stop))
            else:
                slow.append((start, stop))
                runs.append([])
        for run in runs:
            if not run:
                continue
            first, last = run[0][0], run[-1][1]
            whole = first == 0 and not data[last:].strip()
            columns = _fast(data if whole else data[first:last], query)
            if columns is not None:
                result.columns.append(_finish(columns, query))
                continue
            for start, stop in run:  # the run as a whole did not fit the layout: line by line
                single = _fast(data[start:stop], query) if len(run) > 1 else None
                if single is None:
                    slow.append((start, stop))
                else:
                    result.columns.append(_finish(single, query))
    for start, stop in sorted(slow):
        # Imported here, where a line is decoded: the decoder costs ~15 ms of import.
        from modeltel.formats.otlp import InvalidRequest

        try:
            spans = decode_line(data[start:stop])
            columns = columns_of(spans, query)
        except InvalidRequest as exc:
            result.bad.append((block.offset + start, str(exc)))
            continue
        except OverflowError:  # a valid fixed64 time past 2262: beyond the int64 columns' range
            result.bad.append((block.offset + start, "a time past 2262-04-11 cannot be aggregated"))
            continue
        result.columns.append(_finish(columns, query))
    return result


def concat(parts: Sequence[Columns]) -> Columns:
    """One :class:`Columns` from several, with their labels merged."""
    labels: dict[str, int] = {}
    groups = []
    for part in parts:
        remap = np.array([labels.setdefault(label, len(labels)) for label in part.labels] or [0], np.int32)
        groups.append(remap[part.group] if len(part) else part.group)
    keys = parts[0].values.keys() if parts else []
    return Columns(
        list(labels),
        np.concatenate(groups) if groups else np.zeros(0, np.int32),
        np.concatenate([p.start for p in parts]) if parts else np.zeros(0, np.int64),
        np.concatenate([p.end for p in parts]) if parts else np.zeros(0, np.int64),
        np.concatenate([p.error for p in parts]) if parts else np.zeros(0, bool),
        {k: np.concatenate([p.values[k] for p in parts]) for k in keys},
    )
