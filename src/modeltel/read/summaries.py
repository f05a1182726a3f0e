"""``summaries.jsonl``: one :class:`~modeltel.store.schemas.RunSummary` per finished job or process.

Read line by line; a line that is not JSON or not a RunSummary is reported like a bad trace line
and skipped. A newer ``schema_version`` is read for the fields this version knows.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from modeltel.read.files import BadLine, iter_records, line_number
from modeltel.read.query import OnBadLine, warn_bad_line

if TYPE_CHECKING:
    from modeltel.store.schemas import RunSummary


def iter_summaries(
    files: Sequence[Path], *, on_bad_line: OnBadLine | None = None, skip_kinds: Collection[str] = ()
) -> Iterator[RunSummary]:
    """Every summary in ``files``, in file order, but those of a kind in ``skip_kinds``.

    A line of a skipped kind is passed over on a plain JSON look at its ``kind``, never validated
    (so never reported either): ``show``'s table lists jobs, not the process summary every
    configured process writes, and validating needs the models, whose import (pydantic) is most
    of the command's start. The models are imported at the first line that needs them.
    """
    report = on_bad_line or warn_bad_line
    for path in files:
        for record in iter_records(path):
            if not record.data.strip() and record.reason is None:
                continue
            if skip_kinds and record.reason is None and _kind(record.data) in skip_kinds:
                continue
            summary, reason = _validate(record.data, record.reason)
            if summary is not None:
                yield summary
            else:
                report(BadLine(path, line_number(path, record.offset), f"not a RunSummary: {reason}"))


def _kind(data: bytes) -> object:
    """The line's ``kind``; None for a line that is no JSON object or is nested too deep to parse."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return document.get("kind") if isinstance(document, dict) else None


def _validate(data: bytes, reason: str | None) -> tuple[RunSummary | None, str]:
    """The line as a RunSummary, or None and why it is not one."""
    from pydantic import ValidationError

    from modeltel.store.schemas import RunSummary  # pydantic: only for a line to validate

    try:
        if reason is not None:
            raise ValueError(reason)
        # pydantic's own JSON parser: bounded nesting, where json.loads would recurse out
        return RunSummary.model_validate_json(data), ""
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return None, f"{where}: {first['msg']}" if where else first["msg"]
    except ValueError as exc:
        return None, str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def select_summaries(
    summaries: Sequence[RunSummary],
    *,
    trace_id: str | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
    run_id: str | None = None,
) -> list[RunSummary]:
    """The summaries of one trace and/or run and/or started in ``[since, until)``, oldest first."""
    chosen = []
    for summary in summaries:
        if trace_id is not None and (summary.trace_id or "").lower() != trace_id:
            continue
        if run_id is not None and summary.run_id != run_id:
            continue
        start_ns = int(summary.start.timestamp() * 1e9)
        if since_ns is not None and start_ns < since_ns:
            continue
        if until_ns is not None and start_ns >= until_ns:
            continue
        chosen.append(summary)
    return sorted(chosen, key=lambda s: s.start)
