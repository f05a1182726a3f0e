"""The fault suite's figures: each test records what it sent, what landed, what was dropped.

They are printed as one table at the end of the run (the README's "what we test and what holds"
table is copied from that output, not written from memory).
"""

from __future__ import annotations

from typing import Any

import pytest

_FIGURES: list[dict[str, Any]] = []
COLUMNS = ("fault", "runs", "sent", "on_disk", "over_otlp", "dropped", "max_stall_s", "max_rss_mib", "note")


@pytest.fixture
def figures() -> Any:
    """Call with the columns above as keyword arguments; missing ones print as '-'."""

    def record(**row: Any) -> None:
        _FIGURES.append(row)

    return record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _FIGURES:
        return
    terminalreporter.section("modeltel reliability figures")
    terminalreporter.write_line("| " + " | ".join(COLUMNS) + " |")
    terminalreporter.write_line("|" + "---|" * len(COLUMNS))
    for row in _FIGURES:
        cells = []
        for column in COLUMNS:
            value = row.get(column, "-")
            cells.append(f"{value:.3f}" if isinstance(value, float) else str(value))
        terminalreporter.write_line("| " + " | ".join(cells) + " |")
