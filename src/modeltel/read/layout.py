"""What both span locators share: :mod:`modeltel.read.scan` (regexes) and :mod:`modeltel.read.offsets`.

Both read the same canonical OTLP/JSON layout and return the same :class:`Located`, so the few
patterns, constants and types they share live here, in a module that imports neither of them
(``scan`` imports ``offsets``; ``offsets`` imports only this).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modeltel.formats.status import STATUS_ERROR

if TYPE_CHECKING:  # numpy.typing costs ~12 ms of import; the aliases only annotate
    import numpy as np
    import numpy.typing as npt

    Int64Array = npt.NDArray[np.int64]
    FloatArray = npt.NDArray[np.float64]
    BoolArray = npt.NDArray[np.bool_]
    IntArray = npt.NDArray[np.int32]

STRING = rb'"([^"\\]*(?:\\.[^"\\]*)*)"'
"""A JSON string; the group is its raw text, escapes left in."""
MARK = b'"startTimeUnixNano":'
"""The key both locators count spans by."""
STATUS = re.compile(rb'"status":\{(?:"message":"[^"\\]*(?:\\.[^"\\]*)*",?)?(?:"code":"?([0-9A-Z_]+))?')
ERROR_CODES = (str(STATUS_ERROR).encode(), b"STATUS_CODE_ERROR")


def number(kind: bytes, raw: bytes) -> float:
    """An attribute value as a number: strings NaN, booleans 0/1, anything unparsable NaN."""
    if kind == b"stringValue":
        return float("nan")
    if kind == b"boolValue":
        return 1.0 if raw == b"true" else 0.0
    try:
        return float(raw)
    except ValueError:
        return float("nan")


@dataclass(slots=True)
class KeyHits:
    """The attributes of one wanted key in a block, in byte order: span, value kind, value offset."""

    span: Int64Array
    kind: npt.NDArray[np.int8]
    value: Int64Array
    """Offset of the value's first byte (the opening quote of a string)."""
    last: Int64Array
    """Offset of the end of the span's attribute list (values are read no further)."""


@dataclass(slots=True)
class Located:
    """Per span of a block: raw name, start, end, error flag, raw attribute text (when wanted)."""

    names: list[bytes]
    start: Int64Array
    end: Int64Array
    error: BoolArray
    texts: list[bytes]
    group: IntArray | None = None
    """When set, ``names`` holds each distinct name once and ``group`` indexes it per span."""
    hits: dict[str, KeyHits] | None = None
    """When set (the offsets locator given keys), the wanted attributes, found without ``texts``."""
