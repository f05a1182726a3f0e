"""``--since`` / ``--until`` values: a moment as ISO 8601 or as a span of time before now."""

from __future__ import annotations

import re
import time
from datetime import datetime

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)\s*$", re.IGNORECASE)
_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str, *, now_ns: int | None = None) -> int:
    """Nanoseconds since the epoch for ``text``.

    ``30m``, ``2h``, ``1d``, ``1w``, ``90s``: that long before now. ``2026-11-24``,
    ``2026-11-24T15:30``, ``2026-11-24 15:30:00+02:00``: ISO 8601, local time unless an offset or
    ``Z`` is given. Raises ``ValueError`` with a message a person can act on.
    """
    now = time.time_ns() if now_ns is None else now_ns
    match = _RELATIVE.match(text)
    if match:
        return now - int(float(match.group(1)) * _SECONDS[match.group(2).lower()] * 1e9)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"not a time: {text!r} (use ISO 8601 like 2026-11-24T15:30, or 30m / 2h / 1d before now)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # naive means local time, as a person types it
    return int(moment.timestamp() * 1_000_000) * 1000
