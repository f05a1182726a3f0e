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
