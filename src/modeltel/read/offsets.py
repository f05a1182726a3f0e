"""Spans located by byte offsets with numpy, for blocks written exactly in modeltel's own layout.

Why this exists: ``show`` and ``stats`` spend most of their time finding a few fields per span,
and for blocks written exactly as modeltel writes them (key order, quoted 19-digit times, one
status per span) those fields can be found by byte offsets with numpy, at about 3x less CPU than
the regex locator of :mod:`modeltel.read.scan`. The price is strictness: anything this module
cannot vouch for - another layout, an odd name, a time out of range - makes
:func:`locate_by_offsets` return None, and the caller falls back to the regexes (and then to the
full decoder), which decide what such a block holds.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import numpy as np

from modeltel.formats.status import STATUS_ERROR
from modeltel.read.layout import ERROR_CODES, MARK, STATUS, STRING, KeyHits, Located, number

if TYPE_CHECKING:
    import numpy.typing as npt

    from modeltel.read.layout import BoolArray, FloatArray, Int64Array, IntArray


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
_MARK_KEY = _Key(MARK)
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


def locate_by_offsets(data: bytes, wanted: bool, keys: tuple[str, ...] = ()) -> Located | None:
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
    candidates = candidates[(candidates >= 0) & (candidates + len(MARK) <= size)]
    candidates = candidates[view[candidates + 5] == ord("t")]  # "startTimeU, not "endTimeU
    marks = candidates[_is(data, words, candidates, _MARK_KEY)]
    count = len(marks)
    after = marks + len(MARK) + len(_TIMES)
    if count == 0 or marks[0] < _NAME_WINDOW + 16 or after[-1] > size:
        return None
    if not (
        (view[marks + len(MARK)] == ord('"'))
        & _is(data, words, marks + len(MARK) + 20, _BETWEEN_TIMES_KEY)
        & (view[after - 1] == ord('"'))
    ).all():
        return None
    start = _nineteen_digits(view, words, marks + len(MARK) + 1)
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
        match = STATUS.match(data, int(statuses[index]))
        error[index] = match is not None and match.group(1) in ERROR_CODES
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
            return Located(names, start, end, error, texts, group, hits)
        texts = list(map(data.__getitem__, map(slice, first.tolist(), last.tolist())))
    return Located(names, start, end, error, texts, group)


# --- wanted attributes by offsets: every {"key":" of the block at once, mapped to spans ---------------
_ATTRIBUTE_KEY = _Key(b'{"key":"')
VALUE_KINDS = (b"stringValue", b"intValue", b"doubleValue", b"boolValue")
_KIND_KEYS = tuple(_Key(kind + b'":') for kind in VALUE_KINDS)
_STRING_KIND, _INT_KIND, _DOUBLE_KIND, _BOOL_KIND = range(4)
_VALUE = re.compile(rb"(?:" + STRING + rb"|([^,}\]]+))")
"""A value as :func:`modeltel.read.scan._attribute_pattern` reads it (a string's raw text, or bare bytes)."""
_NUMBER_WIDTH = 32
"""Numbers up to this many bytes are parsed by numpy in one go; longer ones one by one."""
_NUMBER_BYTES = np.zeros(256, bool)
_NUMBER_BYTES[list(b"0123456789.-+eE")] = True
_BARE_ENDS = np.zeros(256, bool)
_BARE_ENDS[list(b",}]")] = True
_NEEDLES: dict[str, tuple[bytes, _Key]] = {}


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
) -> dict[str, KeyHits]:
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
        maybe = np.flatnonzero(lead == VALUE_KINDS[code][0])
        maybe = maybe[_is(data, words, kind_at[maybe], kind_key)]
        kind[maybe] = code
        value[maybe] += len(kind_key.text)
    result: dict[str, KeyHits] = {}
    bounds = np.cumsum([0, *sizes]).tolist()
    for key, low, high in zip(unique, bounds[:-1], bounds[1:], strict=True):
        part = slice(low, high)
        known = kind[part] >= 0
        hit_span = span[part][known]
        result[key] = KeyHits(hit_span, kind[part][known], value[part][known], last[hit_span])
    return result


def hit_raw(data: bytes, value: int, last: int) -> bytes | None:
    """The raw value at ``value`` as the attribute regex reads it, or None where it matches none."""
    match = _VALUE.match(data, value, last)
    if match is None:
        return None
    quoted, bare = match.groups()
    raw: bytes = quoted if quoted is not None else bare
    return raw


def hit_numbers(data: bytes, view: npt.NDArray[np.uint8], hits: KeyHits) -> tuple[FloatArray, BoolArray]:
    """Each hit's number (strings NaN, booleans 0/1) and whether the attribute regex matches it.

    Plain numbers of up to :data:`_NUMBER_WIDTH` bytes (quoted or bare) are cut out as rows of a
    byte matrix and converted by numpy at once; anything else goes through :func:`hit_raw`.
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
        raw = hit_raw(data, int(hits.value[index]), int(hits.last[index]))
        if raw is not None:
            numbers[index] = number(VALUE_KINDS[hits.kind[index]], raw)
            valid[index] = True
    return numbers, valid
