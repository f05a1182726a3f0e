"""Reading modeltel's files (and any OTLP/JSON) with no server: the layer under every reading command.

Two routes over the same files, both streaming, both skipping a bad line with a :class:`BadLine`
report (default: a :class:`ReadWarning`) and reading every other line:

- :func:`aggregate` groups spans (by name or by attributes) into a :class:`GroupTable` on every
  core, reading only the fields it needs; memory is bounded by the number of groups.
- :func:`iter_spans` / :func:`iter_batches` stream full :class:`Span` objects (attributes, events,
  links, resource) for export, timelines and replay.
- :func:`read_logs` / :func:`iter_logs` give the :class:`LogRecord` objects a :class:`LogQuery`
  keeps (trace, run, level, time window, text), in time order / in file order.

Example::

    from pathlib import Path
    from modeltel.read import Query, aggregate, name_rows, trace_files

    files = trace_files([], data_dir=Path("modeltel-data"))
    for row in name_rows(aggregate(files, Query()).table):
        print(row.name, row.count, row.p95_s)
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modeltel.formats.otlp import (
        Event,
        InvalidRequest,
        Link,
        LogRecord,
        Resource,
        Scope,
        Span,
        decode_line,
        decode_logs_line,
        encode_logs_request,
        encode_request,
    )
    from modeltel.read.aggregate import DURATION, Distribution, Group, GroupTable
    from modeltel.read.files import (
        BadLine,
        ByteRange,
        ReadWarning,
        SourceError,
        summary_files,
        trace_files,
    )
    from modeltel.read.logs import LogQuery, iter_logs, last_logged_trace, parse_level, read_logs
    from modeltel.read.metrics import Instrument, MetricsReport, Series, read_metrics
    from modeltel.read.query import (
        Aggregate,
        Batch,
        aggregate,
        iter_batches,
        iter_spans,
        last_trace_id,
    )
    from modeltel.read.reports import NameRow, Spread, StatsRow, name_rows, stats_query, stats_rows
    from modeltel.read.scan import Query
    from modeltel.read.summaries import iter_summaries, select_summaries
    from modeltel.read.window import parse_time
    from modeltel.store.layout import is_data_dir

_MODULES: dict[str, str] = {
    "Event": "modeltel.formats.otlp",
    "InvalidRequest": "modeltel.formats.otlp",
    "Link": "modeltel.formats.otlp",
    "LogRecord": "modeltel.formats.otlp",
    "Resource": "modeltel.formats.otlp",
    "Scope": "modeltel.formats.otlp",
    "Span": "modeltel.formats.otlp",
    "decode_line": "modeltel.formats.otlp",
    "decode_logs_line": "modeltel.formats.otlp",
    "encode_logs_request": "modeltel.formats.otlp",
    "encode_request": "modeltel.formats.otlp",
    "DURATION": "modeltel.read.aggregate",
    "Distribution": "modeltel.read.aggregate",
    "Group": "modeltel.read.aggregate",
    "GroupTable": "modeltel.read.aggregate",
    "BadLine": "modeltel.read.files",
    "ByteRange": "modeltel.read.files",
    "ReadWarning": "modeltel.read.files",
    "SourceError": "modeltel.read.files",
    "summary_files": "modeltel.read.files",
    "trace_files": "modeltel.read.files",
    "LogQuery": "modeltel.read.logs",
    "iter_logs": "modeltel.read.logs",
    "last_logged_trace": "modeltel.read.logs",
    "parse_level": "modeltel.read.logs",
    "read_logs": "modeltel.read.logs",
    "Instrument": "modeltel.read.metrics",
    "MetricsReport": "modeltel.read.metrics",
    "Series": "modeltel.read.metrics",
    "read_metrics": "modeltel.read.metrics",
    "Aggregate": "modeltel.read.query",
    "Batch": "modeltel.read.query",
    "aggregate": "modeltel.read.query",
    "iter_batches": "modeltel.read.query",
    "iter_spans": "modeltel.read.query",
    "last_trace_id": "modeltel.read.query",
    "NameRow": "modeltel.read.reports",
    "Spread": "modeltel.read.reports",
    "StatsRow": "modeltel.read.reports",
    "name_rows": "modeltel.read.reports",
    "stats_query": "modeltel.read.reports",
    "stats_rows": "modeltel.read.reports",
    "Query": "modeltel.read.scan",
    "iter_summaries": "modeltel.read.summaries",
    "select_summaries": "modeltel.read.summaries",
    "parse_time": "modeltel.read.window",
    "is_data_dir": "modeltel.store.layout",
}
"""Public name → the module defining it. Imported on first use (PEP 562): ``show`` imports
``modeltel.read.query``, which would otherwise import every reader here (logs, metrics, the
codecs) and what they import."""


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain one
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


class _Package(types.ModuleType):
    """Keeps a public name from being replaced by the submodule of the same name (``aggregate``,
    the function, and ``modeltel.read.aggregate``): the import system binds each submodule it
    loads on its package, which used to happen before this file bound the function over it."""

    def __setattr__(self, name: str, value: object) -> None:
        if name in _MODULES and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


__all__ = [
    "DURATION",
    "Aggregate",
    "BadLine",
    "Batch",
    "ByteRange",
    "Distribution",
    "Event",
    "Group",
    "GroupTable",
    "Instrument",
    "InvalidRequest",
    "Link",
    "LogQuery",
    "LogRecord",
    "MetricsReport",
    "NameRow",
    "Query",
    "ReadWarning",
    "Resource",
    "Scope",
    "Series",
    "SourceError",
    "Span",
    "Spread",
    "StatsRow",
    "aggregate",
    "decode_line",
    "decode_logs_line",
    "encode_logs_request",
    "encode_request",
    "is_data_dir",
    "iter_batches",
    "iter_logs",
    "iter_spans",
    "iter_summaries",
    "last_logged_trace",
    "last_trace_id",
    "name_rows",
    "parse_level",
    "parse_time",
    "read_logs",
    "read_metrics",
    "select_summaries",
    "stats_query",
    "stats_rows",
    "summary_files",
    "trace_files",
]
