"""The summary writers' old, model-based construction: the oracle the plain-dict writers are held to.

The writers (``_internal/export/summary.py``, ``jobs.py``) build their lines without pydantic; these
builders are how the pydantic models made the same numbers, kept for the tests alone.
"""

from __future__ import annotations

from modeltel._internal.export.summary import SpanStats, percentile
from modeltel.store.schemas import DurationStats


def duration_stats(stats: SpanStats, name: str) -> DurationStats:
    """One span name's durations as the model-based writer summarised them."""
    s = stats.by_name[name]
    ordered = sorted(s.reservoir)
    return DurationStats(
        count=s.count,
        errors=s.errors,
        total_s=s.total,
        mean_s=s.total / s.count,
        min_s=s.min,
        p50_s=percentile(ordered, 50),
        p95_s=percentile(ordered, 95),
        max_s=s.max,
    )
