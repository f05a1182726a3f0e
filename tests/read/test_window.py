"""``--since`` / ``--until`` values."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modeltel.read.window import parse_time

NOW = 1_800_000_000 * 10**9


@pytest.mark.parametrize(
    "text,seconds_ago",
    [("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400), ("1w", 604800), ("1.5h", 5400)],
)
def test_relative_times_are_before_now(text: str, seconds_ago: int) -> None:
    assert parse_time(text, now_ns=NOW) == NOW - seconds_ago * 10**9


def test_iso_times_with_offsets_and_dates() -> None:
    assert (
        parse_time("2026-11-24T15:30:00Z")
        == int(datetime(2026, 11, 24, 15, 30, tzinfo=UTC).timestamp()) * 10**9
    )
    assert parse_time("2026-11-24T17:30:00+02:00") == parse_time("2026-11-24T15:30:00Z")
    local = datetime(2026, 11, 24).astimezone()
    assert parse_time("2026-11-24") == int(local.timestamp()) * 10**9


def test_nonsense_is_an_error_that_says_what_works() -> None:
    with pytest.raises(ValueError, match=r"ISO 8601 .* 30m"):
        parse_time("yesterday-ish")
