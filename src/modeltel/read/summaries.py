"""``summaries.jsonl``: one :class:`~modeltel.store.schemas.RunSummary` per finished job or process.

Read line by line; a line that is not JSON or not a RunSummary is reported like a bad trace line
and skipped. A newer ``schema_version`` is read for the fields this version knows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from modeltel.read.files import BadLine, iter_records, line_number
from modeltel.read.query import OnBadLine, warn_bad_line

if TYPE_CHECKING:
    from modeltel.store.schemas import RunSummary


def iter_summaries(files: Sequence[Path], *, on_bad_line: OnBadLine | None = None) -> Iterator[RunSummary]:
    """Every summary in ``files``, in file order."""
    from pydantic import ValidationError

    from modeltel.store.schemas import RunSummary  # pydantic: only when there are summaries

    report = on_bad_line or warn_bad_line
    for path in files:
        for record in iter_records(path):
            if not record.data.strip() and record.reason is None:
                continue
            try:
                if record.reason is not None:
                    raise ValueError(record.reason)
                # pydantic's own JSON parser: bounded nesting, where json.loads would recurse out
                yield RunSummary.model_validate_json(record.data)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(part) for part in first["loc"])
                reason = f"{where}: {first['msg']}" if where else first["msg"]
                report(BadLine(path, line_number(path, record.offset), f"not a RunSummary: {reason}"))
            except ValueError as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                report(BadLine(path, line_number(path, record.offset), f"not a RunSummary: {reason}"))


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
