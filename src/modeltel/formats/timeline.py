"""A Gantt view of traces: a self-contained HTML page, or a PNG through matplotlib (``[viz]``).

Rows are spans in tree order (a child under its parent, siblings by start time, indented by
depth), each labelled with its name and the attribute that tells it from its siblings
(``calibration.iteration #7``); bars sit on a shared time axis; error spans are red. When a trace
ran in several processes, bars take their process's colour and a legend names them. A log record
logged in a span is a tick on that span's row at the record's time, red from ERROR up, its
message in the tick's title.

The page is one file with no external resource: the traces ride in it as JSON and an inline
script draws the one picked in its index, collapses subtrees and filters rows. A run's page holds
at most ``max_spans`` spans across its traces; the index still lists every trace, and says which
ones to draw with ``--trace``.
"""

from __future__ import annotations

import html
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modeltel._internal import semconv as sc
from modeltel.formats._timeline_labels import process_key, process_names, span_tag
from modeltel.formats._timeline_page import SCRIPT, STYLE
from modeltel.formats.flat import iso_time
from modeltel.formats.otlp import KIND_NAMES, STATUS_NAMES, LogRecord, Span
from modeltel.read.logs import LEVELS, level_name, log_message, severity
from modeltel.read.reports import format_seconds

MAX_ROWS = 5_000
"""Beyond this a trace is unreadable and slow to draw: the earliest spans in tree order are kept."""
MAX_INDEX = 2_000
"""Traces listed in a run page's index; beyond this a select list is no way to find one."""
PNG_MAX_ROWS = 200
MAX_MARKS = 5_000
"""Log ticks drawn per trace; past this the earliest are kept and the page says so."""
MAX_MARK_CHARS = 500
"""A tick's title (level, time and message) is cut here: a record's body can be a whole document."""
ERROR_COLOUR = "#d93b3b"
MARK_COLOUR = "#1d2433"
PROCESS_COLOURS = (
    "#4c7bd9", "#2a9d8f", "#e09f3e", "#8e6bbf", "#5a9e3a",
    "#d46ba3", "#3aa6c9", "#b5832a", "#6b7a8f", "#9aa83a",
)  # fmt: skip
"""Bar colours of a trace's processes, in order of first span; none is red, which marks errors."""


@dataclass(frozen=True, slots=True)
class Row:
    span: Span
    depth: int
    parent: int
    """Index of the parent's row, ``-1`` for a root."""


def tree_rows(spans: Sequence[Span]) -> list[Row]:
    """Spans depth-first from the roots; a span whose parent is absent is a root, and so is one
    caught in a parent cycle (it would otherwise never be reached)."""
    ids = {s.span_id for s in spans}
    children: dict[str, list[Span]] = {}
    roots = []
    for span in spans:
        if span.parent_span_id and span.parent_span_id in ids and span.parent_span_id != span.span_id:
            children.setdefault(span.parent_span_id, []).append(span)
        else:
            roots.append(span)
    out: list[Row] = []
    seen: set[str] = set()

    def walk(tops: list[Span]) -> None:
        stack = [(s, 0, -1) for s in sorted(tops, key=lambda s: (s.start_ns, s.name), reverse=True)]
        while stack:
            span, depth, parent = stack.pop()
            if span.span_id in seen:
                continue
            seen.add(span.span_id)
            out.append(Row(span, depth, parent))
            here = len(out) - 1
            kids = sorted(children.get(span.span_id, []), key=lambda s: (s.start_ns, s.name), reverse=True)
            stack.extend((kid, depth + 1, here) for kid in kids)

    walk(roots)
    if len(seen) < len(ids):
        walk([s for s in spans if s.span_id not in seen])
    return out


def _ticks(total_s: float) -> list[float]:
    if total_s <= 0:
        return [0.0]
    raw = total_s / 8
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(int(total_s / step) + 1)]


def _value(value: Any) -> str | int | float | bool:
    """A hover-card value JSON.parse can read: NaN and infinities become text, nested values JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, str | int | float | bool):
        return value
    return json.dumps(value, default=str)


def _describe(span: Span) -> dict[str, Any]:
    info: dict[str, Any] = {
        "name": span.name,
        "service": span.resource.service_name,
        "duration": format_seconds(span.duration_s),
        "start": iso_time(span.start_ns),
        "status": STATUS_NAMES.get(span.status_code, str(span.status_code)),
        "kind": KIND_NAMES.get(span.kind, str(span.kind)),
        "span id": span.span_id,
    }
    if span.status_message:
        info["message"] = span.status_message
    for key, value in span.attributes.items():
        info[key] = _value(value)
    for event in span.events:
        info[f"event @{format_seconds((event.time_ns - span.start_ns) / 1e9)}"] = event.name
    return info


def _counted(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _colour(index: int) -> str:
    return PROCESS_COLOURS[index % len(PROCESS_COLOURS)]


def _legend(spans: Sequence[Span]) -> tuple[dict[tuple[str, str], int], list[dict[str, str]]]:
    """Process -> colour index, and the legend; both empty when the trace ran in one process."""
    counts = Counter(process_key(s) for s in sorted(spans, key=lambda s: s.start_ns))
    if len(counts) < 2:
        return {}, []
    keys = list(counts)
    legend = [
        {
            "label": f"{name} · {_counted(counts[key], 'span')}",
            "colour": PROCESS_COLOURS[i % len(PROCESS_COLOURS)],
        }
        for i, (key, name) in enumerate(zip(keys, process_names(keys), strict=True))
    ]
    errors = sum(1 for s in spans if s.is_error)
    if errors:
        legend.append({"label": f"error · {_counted(errors, 'span')}", "colour": ERROR_COLOUR})
    return {key: i for i, key in enumerate(keys)}, legend


def row_label(span: Span) -> str:
    """The span's name and its tag, as its row reads: ``calibration.iteration #7``."""
    tag = span_tag(span)
    return f"{span.name} {tag}" if tag else span.name


def _marks(
    logs: Sequence[LogRecord], rows: Sequence[Row], begin: int, total_s: float
) -> tuple[dict[int, list[list[Any]]], str]:
    """Row index -> its ticks ``[x %, title, ERROR or above]``, and a note on records not drawn."""
    where = {row.span.span_id: index for index, row in enumerate(rows)}
    placed = [record for record in sorted(logs, key=lambda r: r.when_ns) if record.span_id in where]
    drawn = placed[:MAX_MARKS]
    marks: dict[int, list[list[Any]]] = {}
    for record in drawn:
        x = min(max(100 * (record.when_ns - begin) / 1e9 / total_s, 0.0), 100.0)
        offset = (record.when_ns - begin) / 1e9  # below 0 when another process's clock runs behind
        sign = "+" if offset >= 0 else "-"
        at = f"{sign}{format_seconds(abs(offset))}" if record.when_ns else "an unknown time"
        text = f"{level_name(record)} at {at}: {_logged(record)}"
        if len(text) > MAX_MARK_CHARS:
            text = text[: MAX_MARK_CHARS - 1] + "…"
        marks.setdefault(where[record.span_id], []).append(
            [round(x, 4), text, severity(record) >= LEVELS["ERROR"]]
        )
    notes = []
    if len(drawn) < len(placed):
        notes.append(f"showing the first {len(drawn):,} of {len(placed):,} log records")
    if len(placed) < len(logs):
        notes.append(f"{_counted(len(logs) - len(placed), 'log record')} of this trace not on a drawn span")
    return marks, "; ".join(notes)


def _logged(record: LogRecord) -> str:
    """The record's message, and the exception it carries (type: message) on the next line."""
    kind = record.attributes.get(sc.EXCEPTION_TYPE)
    message = record.attributes.get(sc.EXCEPTION_MESSAGE)
    if not isinstance(kind, str):
        return log_message(record)
    return f"{log_message(record)}\n{kind}: {message if isinstance(message, str) else ''}"


def trace_title(root: Span | None, trace_id: str) -> str:
    return f"{row_label(root)} · trace {trace_id}" if root is not None else f"trace {trace_id}"


def trace_view(
    spans: Sequence[Span], *, title: str | None = None, logs: Sequence[LogRecord] = ()
) -> dict[str, Any]:
    """One trace as the page's script draws it: title, summary, axis ticks, legend, rows and the
    ticks of ``logs`` (the trace's log records) on their spans' rows."""
    rows = tree_rows(spans)
    shown = rows[:MAX_ROWS]
    begin = min(s.start_ns for s in spans)
    total_s = max((max(s.end_ns for s in spans) - begin) / 1e9, 1e-9)
    services = sorted({s.resource.service_name for s in spans})
    process, legend = _legend(spans)
    kids = Counter(row.parent for row in shown)
    trace_id = spans[0].trace_id
    errors = sum(1 for s in spans if s.is_error)
    marks, marks_note = _marks(logs, shown, begin, total_s)
    if marks:
        legend = [
            *legend,
            {"label": "log record", "colour": MARK_COLOUR},
            {"label": "log record, ERROR or above", "colour": ERROR_COLOUR},
        ]
    view_rows = []
    for index, row in enumerate(shown):
        span = row.span
        left = 100 * (span.start_ns - begin) / 1e9 / total_s
        width = 100 * max(span.end_ns - span.start_ns, 0) / 1e9 / total_s
        view_rows.append(
            {
                "id": span.span_id,
                "parent": row.parent,
                "depth": row.depth,
                "kids": kids.get(index, 0),
                "name": span.name,
                "tag": span_tag(span),
                "svc": span.resource.service_name if len(services) > 1 else "",
                "proc": process.get(process_key(span), -1),
                "x": round(left, 4),
                "w": round(width, 4),
                "dur": format_seconds(span.duration_s),
                "error": span.is_error,
                "info": _describe(span),
                "logs": marks.get(index, []),
            }
        )
    return {
        "id": trace_id,
        "title": title or trace_title(rows[0].span if rows else None, trace_id),
        "summary": (
            f"{_counted(len(spans), 'span')} · {_counted(errors, 'error')} · {format_seconds(total_s)} · "
            f"{', '.join(services)} · started {iso_time(begin)}"
        ),
        "note": "; ".join(
            part
            for part in (
                f"showing the first {len(shown):,} of {len(rows):,} spans" if len(rows) > len(shown) else "",
                marks_note,
            )
            if part
        ),
        "ticks": [[round(100 * t / total_s, 4), format_seconds(t)] for t in _ticks(total_s)],
        "legend": legend,
        "rows": view_rows,
    }


@dataclass
class TraceGroup:
    """One trace of a run: what its index entry says, and its spans when the page holds them."""

    trace_id: str
    count: int = 0
    errors: int = 0
    start_ns: int = 0
    end_ns: int = 0
    root: Span | None = None
    """The earliest span without a parent, else (a trace read in part) the earliest span."""
    spans: list[Span] | None = field(default_factory=list)
    """``None`` once the trace was left out of the page (its count pushed past ``max_spans``)."""

    def add(self, span: Span) -> None:
        self.start_ns = span.start_ns if self.count == 0 else min(self.start_ns, span.start_ns)
        self.end_ns = max(self.end_ns, span.end_ns)
        self.count += 1
        self.errors += span.is_error
        if self.root is None or _root_rank(span) > _root_rank(self.root):
            self.root = span

    def label(self) -> str:
        root = row_label(self.root) if self.root is not None else "?"
        parts = [root, _counted(self.count, "span"), format_seconds((self.end_ns - self.start_ns) / 1e9)]
        if self.errors:
            parts.append(_counted(self.errors, "error"))
        parts.append(iso_time(self.start_ns)[:19].replace("T", " "))
        if self.spans is None:
            parts.append("not in this page")
        return " · ".join(parts)


def _root_rank(span: Span) -> tuple[bool, int]:
    """Higher for a span without a parent, then for an earlier one."""
    return not span.parent_span_id, -span.start_ns


def group_traces(spans: Iterable[Span], *, keep: str, max_spans: int) -> list[TraceGroup]:
    """The traces of ``spans`` by start time, holding at most about ``max_spans`` spans in all.

    Trace ``keep`` always keeps its spans. Any other trace keeps them while the total stays within
    ``max_spans``; the first span that would pass it drops that whole trace's spans (a trace is
    drawn whole or not at all), so memory stays bounded on a run of any size.
    """
    groups: dict[str, TraceGroup] = {}
    held = 0
    for span in spans:
        group = groups.get(span.trace_id)
        if group is None:
            group = groups[span.trace_id] = TraceGroup(span.trace_id)
        group.add(span)
        if group.spans is None:
            continue
        if span.trace_id != keep and held >= max_spans:
            held -= len(group.spans)
            group.spans = None
            continue
        group.spans.append(span)
        held += 1
    return sorted(groups.values(), key=lambda g: (g.start_ns, g.trace_id))


def _page(data: dict[str, Any], heading: str) -> str:
    # In a <script> element only "</" could end it early; escaping every <, > and & in the JSON
    # (they only occur inside strings there) keeps any span name or value inert.
    embedded = (
        json.dumps(data, ensure_ascii=True, separators=(",", ":"))
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )
    esc = html.escape
    note = f"<p class='note' id='capped'>{esc(data['note'])}</p>" if data["note"] else ""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{esc(heading)} · modeltel timeline</title><style>{STYLE}</style></head><body>"
        f"<header><h1 id='title'>{esc(heading)}</h1><p id='summary'></p></header>"
        "<div class='controls'><select id='traces' aria-label='trace'></select>"
        "<input id='filter' type='search' placeholder='filter: name, label, attribute' aria-label='filter'>"
        "<span id='matches'></span><button id='fold-all' type='button'>collapse all</button>"
        "<button id='unfold-all' type='button'>expand all</button></div>"
        f"{note}<div id='legend'></div><p class='note' id='rows-note' hidden></p>"
        "<noscript><p class='note'>This page draws its traces with JavaScript.</p></noscript>"
        "<div class='grid' id='grid'></div><div id='tip'></div>"
        f"<script type='application/json' id='data'>{embedded}</script><script>{SCRIPT}</script>"
        "</body></html>\n"
    )


def render_html(spans: Sequence[Span], *, title: str | None = None, logs: Sequence[LogRecord] = ()) -> str:
    """The whole page for one trace's ``spans`` (and its log records, ``logs``)."""
    view = trace_view(spans, title=title, logs=logs)
    data = {"traces": [view], "initial": 0, "index": [], "note": ""}
    return _page(data, view["title"])


def render_run_html(
    groups: Sequence[TraceGroup],
    chosen: str,
    *,
    max_spans: int,
    logs: Mapping[str, Sequence[LogRecord]] | None = None,
) -> str:
    """A run's page: ``chosen`` drawn first, the index switching to any other trace it holds;
    ``logs`` are the log records by trace id."""
    listed = [g for g in groups if g.trace_id == chosen] + [g for g in groups if g.trace_id != chosen][
        : MAX_INDEX - 1
    ]
    listed.sort(key=lambda g: (g.start_ns, g.trace_id))
    held = [g for g in listed if g.spans]
    logged = logs or {}
    traces = [trace_view(g.spans, logs=logged.get(g.trace_id, ())) for g in held if g.spans]
    initial = next(i for i, g in enumerate(held) if g.trace_id == chosen)
    notes = []
    if len(held) < len(groups):
        notes.append(
            f"{len(held)} of {len(groups)} traces are in this page (at most {max_spans:,} spans); "
            "draw another with modeltel timeline --trace ID"
        )
    if len(listed) < len(groups):
        notes.append(f"the index lists {len(listed):,} of them")
    data = {
        "traces": traces,
        "initial": initial,
        "index": [{"id": g.trace_id, "label": g.label(), "embedded": bool(g.spans)} for g in listed],
        "note": "; ".join(notes),
    }
    return _page(data, traces[initial]["title"])


class MissingViz(RuntimeError):
    """PNG output needs matplotlib, from the ``[viz]`` extra."""


def render_png(spans: Sequence[Span], path: Path, *, title: str | None = None) -> None:
    """Draw the timeline with matplotlib (``pip install 'modeltel[viz]'``) into ``path``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MissingViz("PNG timelines need matplotlib: pip install 'modeltel[viz]'") from exc
    rows = tree_rows(spans)[:PNG_MAX_ROWS]
    begin = min(s.start_ns for s in spans)
    scale, unit = _png_unit(max(s.end_ns for s in spans) - begin)
    process, legend = _legend(spans)
    height = max(2.5, 0.28 * len(rows) + 1.2)
    figure, axes = plt.subplots(figsize=(12, height))
    for index, row in enumerate(rows):
        span = row.span
        start = (span.start_ns - begin) / scale
        width = max((span.end_ns - span.start_ns) / scale, 0)
        which = process.get(process_key(span), -1)
        colour = legend[which]["colour"] if which >= 0 else PROCESS_COLOURS[0]
        axes.barh(index, width, left=start, height=0.6, color=ERROR_COLOUR if span.is_error else colour)
    axes.set_yticks(range(len(rows)))
    axes.set_yticklabels(["  " * row.depth + row_label(row.span) for row in rows], fontsize=8)
    axes.set_ylim(len(rows) - 0.5, -0.5)
    axes.set_xlabel(f"time since trace start ({unit})")
    axes.set_title(title or trace_title(rows[0].span if rows else None, spans[0].trace_id), fontsize=10)
    axes.grid(axis="x", color="#e3e7ee")
    axes.set_axisbelow(True)
    if legend:
        from matplotlib.patches import Patch

        handles = [Patch(color=entry["colour"], label=entry["label"]) for entry in legend]
        axes.legend(handles=handles, fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _png_unit(total_ns: int) -> tuple[float, str]:
    seconds = total_ns / 1e9
    if seconds < 1e-3:
        return 1e3, "µs"
    if seconds < 1:
        return 1e6, "ms"
    if seconds < 120:
        return 1e9, "s"
    return 60e9, "min"
