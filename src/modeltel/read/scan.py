"""Columns of span data (group, start, end, error, numeric attributes) pulled from blocks of lines.

This is the hot path of ``show`` and ``stats``: they need a handful of fields per span, not the
whole tree, so a line in the canonical OTLP/JSON layout (ours, and the Collector's ``file``
exporter's, which both follow the protobuf field order) is not parsed at all. Blocks written
exactly as modeltel writes them are read by byte offsets found with numpy
(:func:`_locate_by_offsets`, about 3x less CPU than regexes); other canonical blocks have their
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

import numpy as np
import numpy.typing as npt

from modeltel.read.files import Block
from modeltel.read.otlp import STATUS_ERROR, AttributeValue, InvalidRequest, Span, decode_line

Int64Array = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int32]

_STRING = rb'"([^"\\]*(?:\\.[^"\\]*)*)"'
_MARK = b'"startTimeUnixNano":'
_REQUEST_START = b'{"resourceSpans":['
# One group from the span name to the end time, so findall returns flat bytes, not tuples; the
# fixed-width tail (kind and the two 19-digit times) is then decoded for the whole block by numpy.
_HEADER = re.compile(
    rb'"name":"([^"\\]*(?:\\.[^"\\]*)*",(?:"kind":\d+,)?"startTimeUnixNano":"?\d+"?,"endTimeUnixNano":"?\d+)"?'
)
_HEADER_FIELDS = re.compile(
    rb'"name":' + _STRING + rb',(?:"kind":\d+,)?"startTimeUnixNano":"?(\d+)"?,"endTimeUnixNano":"?(\d+)"?'
)
_NEXT_FIELD = rb',"(?:droppedAttributesCount|events|droppedEventsCount|links|droppedLinksCount|status|flags)"'
_ATTRIBUTES = rb',"attributes":\[([^\]]*(?:\](?!' + _NEXT_FIELD + rb")[^\]]*)*)\](?=" + _NEXT_FIELD + rb")"
"""A span's attribute list, up to the ``]`` that a span field follows (a ``]`` in a value is not)."""
_HEADER_ATTRIBUTES = re.compile(_HEADER.pattern + _ATTRIBUTES)
_STATUS = re.compile(rb'"status":\{(?:"message":"[^"\\]*(?:\\.[^"\\]*)*",?)?(?:"code":"?([0-9A-Z_]+))?')
_ERROR_CODES = (str(STATUS_ERROR).encode(), b"STATUS_CODE_ERROR")
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
        rb"(?:" + _STRING + rb"|([^,}\]]+))"
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
        values = np.array([_number(k, r) for k, r in zip(kinds, raws, strict=True)], dtype=np.float64)
    kind = np.array(kinds, dtype=np.bytes_)
    values[kind == b"stringValue"] = np.nan
    booleans = kind == b"boolValue"
    if booleans.any():
        values[booleans] = np.array(raws, dtype=np.bytes_)[booleans] == b"true"
    return values


def _number(kind: bytes, raw: bytes) -> float:
    if kind == b"stringValue":
        return float("nan")
    if kind == b"boolValue":
        return 1.0 if raw == b"true" else 0.0
    try:
        return float(raw)
    except ValueError:
        return float("nan")


def _label(kind: bytes, raw: bytes) -> bytes:
    if kind == b"stringValue":
        return raw
    if kind == b"doubleValue":
        try:
            return repr(float(raw)).encode()
        except ValueError:
            return raw
    return raw


def _empty() -> Columns:
    nothing = np.zeros(0, np.int64)
    return Columns([], np.zeros(0, np.int32), nothing, nothing, np.zeros(0, bool))


@dataclass(slots=True)
class _Located:
    """Per span of a block: raw name, start, end, error flag, raw attribute text (when wanted)."""

    names: list[bytes]
    start: Int64Array
    end: Int64Array
    error: BoolArray
    texts: list[bytes]
    group: IntArray | None = None
    """When set, ``names`` holds each distinct name once and ``group`` indexes it per span."""
    hits: dict[str, _KeyHits] | None = None
    """When set (the offsets locator given keys), the wanted attributes, found without ``texts``."""


def _locate_by_regex(data: bytes, wanted: bool) -> _Located | None:
    """Spans located with regexes: any field layout with the protobuf order, times of any width."""
    if wanted:
        pairs = _HEADER_ATTRIBUTES.findall(data)
        items, texts = [p[0] for p in pairs], [p[1] for p in pairs]
    else:
        items, texts = _HEADER.findall(data), []
    count = len(items)
    if count != data.count(_MARK):
        return None
    codes = _STATUS.findall(data)
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
    error = (codes_array == _ERROR_CODES[0]) | (codes_array == _ERROR_CODES[1])
    return _Located(names, start, end, error, texts)


# --- the offsets locator: numpy over the bytes, no regex over the whole block -------------------------
class _Key:
    """Bytes to check for at many offsets at once, as little-endian 8-byte words (and masks)."""

    __slots__ = ("text", "width", "words")

    def __init__(self, text: bytes) -> None:
        self.text = text
        self.width = max(len(text), 8)
        padded = text.ljust(8, b"\0")
        offsets = [*range(0, len(text) - 7, 8), len(text) - 8] if len(text) >= 8 else [0]
        self.words = []
        for offset in dict.fromkeys(offsets):
            chunk = padded[offset : offset + 8]
            mask = int.from_bytes(bytes(0xFF if offset + i < len(text) else 0 for i in range(8)), "little")
            self.words.append((offset, np.uint64(int.from_bytes(chunk, "little")), np.uint64(mask)))


def _words(data: bytes) -> npt.NDArray[np.uint64]:
    """``words[i]`` = the 8 bytes of ``data`` from offset ``i`` (an overlapping view, nothing copied)."""
    return np.ndarray((len(data) - 7,), np.dtype("<u8"), data, 0, (1,))


def _is(data: bytes, words: npt.NDArray[np.uint64], at: Int64Array, key: _Key) -> BoolArray:
    """Whether ``key`` is in ``data`` at each of the offsets ``at`` (one word compare per 8 bytes)."""
    size = len(data)
    if len(at) and at.min() >= 0 and at.max() + key.width <= size:  # the usual case: no edge
        result: BoolArray | None = None
        for offset, value, mask in key.words:
            word = words[at + offset] if offset else words[at]
            same = (word & mask if mask != _ALL else word) == value
            if result is None:
                result = same
            else:
                result &= same
        assert result is not None
        return result
    inside = (at >= 0) & (at + key.width <= size)
    found = np.zeros(len(at), bool)
    where = at[inside]
    hits = np.ones(len(where), bool)
    for offset, value, mask in key.words:
        word = words[where + offset]
        hits &= (word & mask if mask != _ALL else word) == value
    found[inside] = hits
    for index in np.flatnonzero(~inside & (at >= 0) & (at + len(key.text) <= size)).tolist():
        found[index] = data.startswith(key.text, int(at[index]))  # the last few bytes of the block
    return found


_ALL = np.uint64(2**64 - 1)


def _rows(view: npt.NDArray[np.uint8], at: Int64Array, width: int) -> npt.NDArray[np.uint8]:
    """``view[at[i] : at[i] + width]`` for each ``i``, as rows (``at`` inside ``[0, len - width]``)."""
    return np.lib.stride_tricks.sliding_window_view(view, width)[at]


_TIMES = b'"' + b"0" * 19 + b'","endTimeUnixNano":"' + b"0" * 19 + b'"'
"""What follows ``"startTimeUnixNano":`` in our layout: both times quoted, 19 digits each."""
_BETWEEN_TIMES_KEY = _Key(b'","endTimeUnixNano":"')
_NAME_WINDOW = 32
"""Bytes before a name's closing quote searched for its opening one (longer names: one rfind each)."""
_NAME_WORDS = 4
"""Names up to 8 x this many bytes are grouped by their bytes as words; longer ones are sliced."""
_U64 = np.uint64
_LOW_BYTES = np.array([(1 << (8 * i)) - 1 for i in range(8)] + [2**64 - 1], dtype=np.uint64)
_MARK_KEY = _Key(_MARK)
_TRACE_KEY = _Key(b'{"traceId":"')
_KIND_KEY = _Key(b'"kind":')
_NAME_KEY = _Key(b'"name":"')
_STATUS_KEY = _Key(b'"status":{')
_CODE_KEY = _Key(b'"code":')
_CLOSE_KEY = _Key(b"}")
_ATTRIBUTES_KEY = _Key(b',"attributes":[')
_LIST_END_KEY = _Key(b"],")
_STATUS_NEXT_KEY = _Key(b',"status":{')


def _all_digits(word: npt.NDArray[np.uint64]) -> BoolArray:
    """Whether all 8 bytes of each word are ASCII digits (no byte carries into the next: SWAR)."""
    high = _U64(0xF0F0F0F0F0F0F0F0)
    threes = _U64(0x3030303030303030)
    result: BoolArray = ((word & high) == threes) & (((word + _U64(0x0606060606060606)) & high) == threes)
    return result


def _eight_digits(word: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """The value of 8 ASCII digits held little-endian in each word (the first digit the highest)."""
    word = ((word & _U64(0x0F0F0F0F0F0F0F0F)) * _U64(2561)) >> _U64(8)
    word = ((word & _U64(0x00FF00FF00FF00FF)) * _U64(6553601)) >> _U64(16)
    result: npt.NDArray[np.uint64] = ((word & _U64(0x0000FFFF0000FFFF)) * _U64(42949672960001)) >> _U64(32)
    return result


def _nineteen_digits(
    view: npt.NDArray[np.uint8], words: npt.NDArray[np.uint64], at: Int64Array
) -> Int64Array | None:
    """The 19-digit numbers starting at offsets ``at``, or None if any is not 19 digits below 9e18."""
    first, second, third = words[at], words[at + 8], words[at + 11]
    if not (_all_digits(first) & _all_digits(second) & _all_digits(third)).all():
        return None
    if (view[at] > ord("8")).any():
        return None  # from 9e18 up, int64 would overflow
    value = _eight_digits(first) * _U64(10**11) + _eight_digits(second) * _U64(1000)
    value += _eight_digits(third) % _U64(1000)
    return value.astype(np.int64)


def _group_names(
    data: bytes, words: npt.NDArray[np.uint64], opens: Int64Array, close: Int64Array
) -> tuple[list[bytes], IntArray] | None:
    """Distinct names and a group index per span, from the names' bytes read as words.

    A name of up to 32 bytes is its length and four masked words, exactly; spans are grouped by a
    hash of those, and every span is then checked equal, word for word, to its group's first span
    (so a hash collision cannot merge two names: it only returns None, and the names are sliced).
    """
    length = close - opens - 1
    if len(length) == 0 or length.max() > 8 * _NAME_WORDS:
        return None
    keys = [length.astype(np.uint64)]
    for index in range(_NAME_WORDS):
        valid = np.clip(length - 8 * index, 0, 8)
        keys.append(words[opens + 1 + 8 * index] & _LOW_BYTES[valid])
    digest = keys[0]
    for key in keys[1:]:
        digest = (digest ^ key) * _U64(0x9E3779B97F4A7C15)
        digest ^= digest >> _U64(29)
    _, first, group = np.unique(digest, return_index=True, return_inverse=True)
    representative = first[group]
    for key in keys:
        if not (key == key[representative]).all():
            return None
    names = [data[int(opens[i]) + 1 : int(close[i])] for i in first.tolist()]
    return names, group.astype(np.int32)


def _locate_by_offsets(data: bytes, wanted: bool, keys: tuple[str, ...] = ()) -> _Located | None:
    """Spans located by byte offsets, for blocks written exactly in modeltel's own layout.

    Why not regexes: ``re`` looks for a pattern by stepping through the block from every ``"``
    (about 1 ns a byte, per pass), while numpy compares a whole block with one byte value an order
    of magnitude faster. So the rare bytes of the keys are found with numpy (the ``U`` of
    ``"startTimeUnixNano":``, the ``{`` of ``{"traceId":`` and ``"status":{``), every key is then
    checked in full at those offsets (8 bytes per compare), and the names are the only per-span
    Python objects (with ``wanted`` but no ``keys``, the attribute lists too, as ``texts``).

    What it vouches for, for every span of the block, or else it returns None (the regex locator
    then tries, and the decoder after it): each span object starts with ``{"traceId":"``; right
    before its start time comes ``"name":"<no quote, no final backslash>","kind":<digit>,`` (kind
    may be left out); both times are quoted, 19 digits, below 9e18 (int64); exactly one
    ``"status":{`` lies between its start time and the next span; with ``wanted``, its
    ``"attributes":[...]`` (if any) follow the end time and run up to the status with no other span
    field between. Every real ``"startTimeUnixNano":`` key has its ``U`` found, and a ``"`` inside
    a JSON string is always escaped, so a key checked in full is a real key: none is missed and
    none is invented.

    With ``keys`` (and ``wanted``), the attributes of those keys are found in the whole block at
    once (:func:`_attribute_hits`) instead of slicing each span's attribute text.
    """
    size = len(data)
    if size < 64:
        return None
    view = np.frombuffer(data, np.uint8)
    words = _words(data)
    candidates = np.flatnonzero(view == ord("U")) - 10  # the U of "startTimeUnixNano":
    candidates = candidates[(candidates >= 0) & (candidates + len(_MARK) <= size)]
    candidates = candidates[view[candidates + 5] == ord("t")]  # "startTimeU, not "endTimeU
    marks = candidates[_is(data, words, candidates, _MARK_KEY)]
    count = len(marks)
    after = marks + len(_MARK) + len(_TIMES)
    if count == 0 or marks[0] < _NAME_WINDOW + 16 or after[-1] > size:
        return None
    if not (
        (view[marks + len(_MARK)] == ord('"'))
        & _is(data, words, marks + len(_MARK) + 20, _BETWEEN_TIMES_KEY)
        & (view[after - 1] == ord('"'))
    ).all():
        return None
    start = _nineteen_digits(view, words, marks + len(_MARK) + 1)
    end = _nineteen_digits(view, words, after - 20)
    if start is None or end is None:
        return None
    # The name: its closing quote is followed by ,"kind":D, or (kind left out) by the start time.
    has_kind = _is(data, words, marks - 9, _KIND_KEY) & (view[marks - 1] == ord(","))
    has_kind &= view[marks - 2] - 48 < 10
    close = np.where(has_kind, marks - 11, marks - 2)
    if not ((view[close] == ord('"')) & (view[close + 1] == ord(",")) & (view[close - 1] != ord("\\"))).all():
        return None
    window = _rows(view, close - _NAME_WINDOW, _NAME_WINDOW)[:, ::-1] == ord('"')
    back = window.argmax(axis=1) + 1  # the quote before the closing one: nothing but the name between
    opens = close - back
    for index in np.flatnonzero(~window.any(axis=1)).tolist():  # a long name
        opens[index] = data.rfind(b'"', 0, int(close[index]))
    if not _is(data, words, opens - len(_NAME_KEY.text) + 1, _NAME_KEY).all():
        return None
    # Span objects and their statuses: one "status":{ inside each span, after its start time.
    braces = np.flatnonzero(view == ord("{"))
    heads = braces[braces + 12 <= size]
    heads = heads[view[heads + 2] == ord("t")]
    heads = heads[_is(data, words, heads, _TRACE_KEY)]
    statuses = braces[braces >= 9]
    statuses = statuses[view[statuses - 3] == ord("s")] - 9
    statuses = statuses[_is(data, words, statuses, _STATUS_KEY)]
    if len(heads) != count or len(statuses) != count:
        return None
    if (heads >= marks).any() or (statuses <= marks).any() or (statuses[:-1] >= heads[1:]).any():
        return None
    inner = statuses + len(_STATUS_KEY.text)
    plain = _is(data, words, inner, _CODE_KEY) & _is(data, words, inner + 8, _CLOSE_KEY)
    code = view[inner[plain] + 7]
    if not (code - 48 < 10).all():
        return None
    error = np.zeros(count, bool)
    error[plain] = code == ord(str(STATUS_ERROR))
    empty = _is(data, words, inner, _CLOSE_KEY)
    for index in np.flatnonzero(~plain & ~empty).tolist():  # a message, or a code by name
        match = _STATUS.match(data, int(statuses[index]))
        error[index] = match is not None and match.group(1) in _ERROR_CODES
    grouped = _group_names(data, words, opens, close)
    if grouped is None:
        names, group = list(map(data.__getitem__, map(slice, (opens + 1).tolist(), close.tolist()))), None
    else:
        names, group = grouped
    texts: list[bytes] = []
    if wanted:
        listed = _is(data, words, after, _ATTRIBUTES_KEY)
        bare = _is(data, words, after, _STATUS_NEXT_KEY) & (statuses == after + 1)
        if not (listed | bare).all() or not (bare | _is(data, words, statuses - 2, _LIST_END_KEY)).all():
            return None
        first = np.where(listed, after + len(_ATTRIBUTES_KEY.text), statuses)
        last = np.where(listed, statuses - 2, statuses)
        # "]," and a quote end a list before a span field (events, links, a dropped count): inside
        # an attribute list a list ends "]}", and inside a string the quote would be escaped.
        ends = np.flatnonzero(view == ord("]"))
        ends = ends[ends + 3 <= size]
        ends = ends[(view[ends + 1] == ord(",")) & (view[ends + 2] == ord('"'))]
        span = np.searchsorted(first, ends, side="right") - 1
        if ((span >= 0) & (ends < last[np.maximum(span, 0)])).any():
            return None
        if keys:
            hits = _attribute_hits(data, view, words, braces, first, last, keys)
            return _Located(names, start, end, error, texts, group, hits)
        texts = list(map(data.__getitem__, map(slice, first.tolist(), last.tolist())))
    return _Located(names, start, end, error, texts, group)


# --- wanted attributes by offsets: every {"key":" of the block at once, mapped to spans ---------------
_ATTRIBUTE_KEY = _Key(b'{"key":"')
_KIND_NAMES = (b"stringValue", b"intValue", b"doubleValue", b"boolValue")
_KIND_KEYS = tuple(_Key(kind + b'":') for kind in _KIND_NAMES)
_STRING_KIND, _INT_KIND, _DOUBLE_KIND, _BOOL_KIND = range(4)
_VALUE = re.compile(rb"(?:" + _STRING + rb"|([^,}\]]+))")
"""A value as :func:`_attribute_pattern` reads it (a string's raw text, or bare bytes)."""
_NUMBER_WIDTH = 32
"""Numbers up to this many bytes are parsed by numpy in one go; longer ones one by one."""
_NUMBER_BYTES = np.zeros(256, bool)
_NUMBER_BYTES[list(b"0123456789.-+eE")] = True
_BARE_ENDS = np.zeros(256, bool)
_BARE_ENDS[list(b",}]")] = True
_NEEDLES: dict[str, tuple[bytes, _Key]] = {}


@dataclass(slots=True)
class _KeyHits:
    """The attributes of one wanted key in a block, in byte order: span, value kind, value offset."""

    span: Int64Array
    kind: npt.NDArray[np.int8]
    value: Int64Array
    """Offset of the value's first byte (the opening quote of a string)."""
    last: Int64Array
    """Offset of the end of the span's attribute list (values are read no further)."""


def _needle(key: str) -> tuple[bytes, _Key]:
    found = _NEEDLES.get(key)
    if found is None:
        text = b'{"key":"' + json.dumps(key)[1:-1].encode() + b'","value":{"'
        found = _NEEDLES[key] = (text, _Key(text))
    return found


def _attribute_hits(
    data: bytes,
    view: npt.NDArray[np.uint8],
    words: npt.NDArray[np.uint64],
    braces: Int64Array,
    first: Int64Array,
    last: Int64Array,
    keys: tuple[str, ...],
) -> dict[str, _KeyHits]:
    """Where each of ``keys`` is a span attribute, from the ``{"key":"`` offsets of the whole block.

    Every ``{`` that starts ``{"key":"`` is an attribute (a ``"`` in a string is escaped), and it
    is a span attribute when it lies inside a span's attribute list (``first``/``last``, whose
    lists hold no other span field), found by ``searchsorted``. Each key is then told apart by one
    8-byte word and checked in full on the few that match it.
    """
    size = len(data)
    at = braces[braces + 24 <= size]
    at = at[view[at + 2] == ord("k")]
    at = at[_is(data, words, at, _ATTRIBUTE_KEY)]
    span = np.searchsorted(first, at, side="right") - 1
    inside = (span >= 0) & (at < last[np.maximum(span, 0)])
    at, span = at[inside], span[inside]
    head = words[at + 8]
    unique = list(dict.fromkeys(keys))
    chosen, after, sizes = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], []
    for key in unique:
        text, needle = _needle(key)
        where = np.flatnonzero(head == _U64(int.from_bytes(text[8:16], "little")))
        where = where[_is(data, words, at[where], needle)]
        chosen.append(where)
        after.append(at[where] + len(text))
        sizes.append(len(where))
    span = span[np.concatenate(chosen)]
    kind_at = np.concatenate(after)
    where = np.flatnonzero(kind_at < size)
    kind = np.full(len(kind_at), -1, np.int8)
    value = kind_at.copy()
    lead = np.zeros(len(kind_at), np.uint8)
    lead[where] = view[kind_at[where]]
    for code, kind_key in enumerate(_KIND_KEYS):
        maybe = np.flatnonzero(lead == _KIND_NAMES[code][0])
        maybe = maybe[_is(data, words, kind_at[maybe], kind_key)]
        kind[maybe] = code
        value[maybe] += len(kind_key.text)
    result: dict[str, _KeyHits] = {}
    bounds = np.cumsum([0, *sizes]).tolist()
    for key, low, high in zip(unique, bounds[:-1], bounds[1:], strict=True):
        part = slice(low, high)
        known = kind[part] >= 0
        hit_span = span[part][known]
        result[key] = _KeyHits(hit_span, kind[part][known], value[part][known], last[hit_span])
    return result


def _hit_raw(data: bytes, value: int, last: int) -> bytes | None:
    """The raw value at ``value`` as the attribute regex reads it, or None where it matches none."""
    match = _VALUE.match(data, value, last)
    if match is None:
        return None
    quoted, bare = match.groups()
    raw: bytes = quoted if quoted is not None else bare
    return raw


def _hit_numbers(data: bytes, view: npt.NDArray[np.uint8], hits: _KeyHits) -> tuple[FloatArray, BoolArray]:
    """Each hit's number (strings NaN, booleans 0/1) and whether the attribute regex matches it.

    Plain numbers of up to :data:`_NUMBER_WIDTH` bytes (quoted or bare) are cut out as rows of a
    byte matrix and converted by numpy at once; anything else goes through :func:`_hit_raw`.
    """
    count = len(hits.span)
    numbers = np.full(count, np.nan)
    valid = np.zeros(count, bool)
    size = len(data)
    inside = hits.value < hits.last
    # A string: NaN, and the regex matches unless the list ends or a bare-value end comes first.
    strings = np.flatnonzero((hits.kind == _STRING_KIND) & inside)
    valid[strings] = ~_BARE_ENDS[view[hits.value[strings]]]
    numeric = np.flatnonzero(((hits.kind == _INT_KIND) | (hits.kind == _DOUBLE_KIND)) & inside)
    quoted = view[hits.value[numeric]] == ord('"')
    content = hits.value[numeric] + quoted
    fits = content + _NUMBER_WIDTH <= size
    numeric, quoted, content = numeric[fits], quoted[fits], content[fits]
    rows = _rows(view, content, _NUMBER_WIDTH)
    ends = np.where(quoted[:, None], rows == ord('"'), _BARE_ENDS[rows])
    stop = ends.argmax(axis=1)
    before = np.arange(_NUMBER_WIDTH) < stop[:, None]
    plain = ends.any(axis=1) & (stop > 0) & (content + stop <= hits.last[numeric])
    plain &= (_NUMBER_BYTES[rows] | ~before).all(axis=1)
    easy = numeric[plain]
    if len(easy):
        cut = np.where(before[plain], rows[plain], 0).astype(np.uint8)
        try:
            numbers[easy] = np.ascontiguousarray(cut).view(f"S{_NUMBER_WIDTH}").ravel().astype(np.float64)
            valid[easy] = True
        except ValueError:  # "1e", "-": float() decides, one by one
            easy = easy[:0]
    done = np.zeros(count, bool)
    done[strings] = True
    done[easy] = True
    for index in np.flatnonzero(~done & inside).tolist():
        raw = _hit_raw(data, int(hits.value[index]), int(hits.last[index]))
        if raw is not None:
            numbers[index] = _number(_KIND_NAMES[hits.kind[index]], raw)
            valid[index] = True
    return numbers, valid


def _fast(data: bytes, query: Query) -> Columns | None:
    """Columns for ``data`` (whole, complete lines) in the canonical layout, or None if it is not."""
    keys = query.group_keys + query.numeric_keys
    wanted = bool(keys) and any(json.dumps(k)[1:-1].encode() in data for k in keys)
    if wanted and _NESTED in data:
        return None  # a kvlistValue may hold a look-alike key: leave such lines to the decoder
    located = _locate_by_offsets(data, wanted, keys if wanted else ()) or _locate_by_regex(data, wanted)
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


def _fast_by_offsets(
    data: bytes, query: Query, located: _Located, hits: dict[str, _KeyHits]
) -> Columns | None:
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
                raw = _hit_raw(data, value, last) if value < last else None
                if raw is not None:
                    spans.append(index)
                    ranks.append(rank)
                    offsets.append(value)
                    raws.append(_label(_KIND_NAMES[kind], raw))
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
    values = {key: np.full(count, np.nan) for key in query.numeric_keys}
    parts = [hits[key] for key in query.numeric_keys]
    if parts:
        joined = _KeyHits(
            *(np.concatenate([getattr(part, name) for part in parts]) for name in _KeyHits.__slots__)
        )
        numbers, valid = _hit_numbers(data, view, joined)
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
    if query.trace_id is not None:
        needles = (query.trace_id.encode(), query.trace_id.upper().encode())
        slow = [(a, b) for a, b in _line_spans(data) if any(data.find(n, a, b) >= 0 for n in needles)]
    else:
        torn = block.at_eof and not data.endswith(b"\n")
        lines = list(_line_spans(data))
        runs: list[list[tuple[int, int]]] = [[]]
        for (start, stop), complete in zip(lines, _complete_lines(data, lines), strict=True):
            if complete and not (torn and stop == len(data)):
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
        try:
            spans = decode_line(data[start:stop])
        except InvalidRequest as exc:
            result.bad.append((block.offset + start, str(exc)))
            continue
        result.columns.append(_finish(columns_of(spans, query), query))
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
