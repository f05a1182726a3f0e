"""A Gantt view of one trace: a self-contained HTML page, or a PNG through matplotlib (``[viz]``).

Rows are spans in tree order (a child under its parent, siblings by start time, indented by
depth); bars sit on a shared time axis; error spans are red. The HTML has no external resource
(styles and the small hover script are inline), so it opens offline from a file and can be mailed
around; the names and times are in the markup itself, not drawn by script.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modeltel.formats.flat import iso_time
from modeltel.formats.otlp import KIND_NAMES, STATUS_NAMES, Span
from modeltel.read.reports import format_seconds

MAX_ROWS = 5_000
"""Beyond this a page is unreadable and slow to open: the earliest spans in tree order are kept."""
PNG_MAX_ROWS = 200


@dataclass(frozen=True, slots=True)
class Row:
    span: Span
    depth: int


def tree_rows(spans: Sequence[Span]) -> list[Row]:
    """Spans depth-first from the roots; a span whose parent is absent is a root."""
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
    stack = [(s, 0) for s in sorted(roots, key=lambda s: (s.start_ns, s.name), reverse=True)]
    while stack:
        span, depth = stack.pop()
        if span.span_id in seen:
            continue
        seen.add(span.span_id)
        out.append(Row(span, depth))
        kids = sorted(children.get(span.span_id, []), key=lambda s: (s.start_ns, s.name), reverse=True)
        stack.extend((kid, depth + 1) for kid in kids)
    return out


def _ticks(total_s: float) -> list[float]:
    if total_s <= 0:
        return [0.0]
    raw = total_s / 8
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(int(total_s / step) + 1)]


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
        info[key] = value if isinstance(value, str | int | float | bool) else json.dumps(value, default=str)
    for event in span.events:
        info[f"event @{format_seconds((event.time_ns - span.start_ns) / 1e9)}"] = event.name
    return info


_STYLE = """
body{font:13px/1.35 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2433;background:#fff}
header{padding:14px 18px 8px;border-bottom:1px solid #e3e7ee}
h1{font-size:16px;margin:0 0 4px}
header p{margin:0;color:#5b6475}
.grid{display:grid;grid-template-columns:minmax(220px,32%) 1fr;padding:0 18px 24px}
.axis{position:sticky;top:0;background:#fff;z-index:2;height:26px;border-bottom:1px solid #e3e7ee}
.axis .tick{position:absolute;top:6px;font-size:11px;color:#5b6475;transform:translateX(-50%)}
.axis .tick::after{content:"";position:absolute;left:50%;top:16px;height:6px;border-left:1px solid #c5ccd8}
.label{white-space:nowrap;overflow:hidden;text-overflow:ellipsis;padding:3px 8px 3px 0;
border-bottom:1px solid #f1f3f7}
.label .svc{color:#8a93a6;margin-left:6px;font-size:11px}
.track{position:relative;border-bottom:1px solid #f1f3f7;min-height:22px}
.bar{position:absolute;top:5px;height:12px;min-width:2px;border-radius:2px;background:#4c7bd9}
.dur{position:absolute;top:3px;font-size:11px;color:#5b6475;white-space:nowrap;padding-left:4px}
.dur.inside{color:#fff;padding:0 4px 0 0;top:4px;font-size:10px}
.row.error .bar{background:#d93b3b}
.row.error .name{color:#b42323;font-weight:600}
.row:hover .label,.row:hover .track{background:#f4f7fd}
.row{display:contents}
#tip{position:fixed;display:none;max-width:520px;background:#1d2433;color:#f5f7fa;padding:8px 10px;
border-radius:6px;font-size:12px;z-index:5;pointer-events:none;box-shadow:0 4px 16px rgba(0,0,0,.25)}
#tip table{border-collapse:collapse}#tip td{padding:1px 6px;vertical-align:top;word-break:break-all}
#tip td:first-child{color:#a9b4c8;white-space:nowrap}
.note{padding:8px 18px;color:#8a5a00}
"""

_SCRIPT = """
const tip=document.getElementById('tip');
function esc(s){return String(s).replace(/[&<>"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));}
document.querySelectorAll('.row').forEach(row=>{
  const info=JSON.parse(row.dataset.info);
  const show=e=>{tip.innerHTML='<table>'+Object.entries(info).map(([k,v])=>
    '<tr><td>'+esc(k)+'</td><td>'+esc(v)+'</td></tr>').join('')+'</table>';
    tip.style.display='block';
    tip.style.left=Math.min(e.clientX+14,innerWidth-tip.offsetWidth-8)+'px';
    tip.style.top=Math.min(e.clientY+14,innerHeight-tip.offsetHeight-8)+'px';};
  row.querySelectorAll('.label,.track').forEach(el=>{el.addEventListener('mousemove',show);
    el.addEventListener('mouseleave',()=>{tip.style.display='none';});});
});
"""


def render_html(spans: Sequence[Span], *, title: str | None = None) -> str:
    """The whole page for one trace's ``spans``."""
    rows = tree_rows(spans)
    shown = rows[:MAX_ROWS]
    begin = min(s.start_ns for s in spans)
    finish = max(s.end_ns for s in spans)
    total_s = max((finish - begin) / 1e9, 1e-9)
    errors = sum(1 for s in spans if s.is_error)
    services = sorted({s.resource.service_name for s in spans})
    trace_id = spans[0].trace_id
    heading = title or f"trace {trace_id}"
    summary = (
        f"{len(spans)} spans · {errors} errors · {format_seconds(total_s)} · "
        f"{', '.join(services)} · started {iso_time(begin)}"
    )
    esc = html.escape
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>{esc(heading)} · modeltel timeline</title><style>{_STYLE}</style></head><body>",
        f"<header><h1>{esc(heading)}</h1><p>{esc(summary)}</p></header>",
    ]
    if len(rows) > len(shown):
        parts.append(f"<p class='note'>showing the first {len(shown)} of {len(rows)} spans</p>")
    parts.append("<div class='grid'><div class='axis'></div><div class='axis'>")
    for tick in _ticks(total_s):
        parts.append(
            f"<span class='tick' style='left:{100 * tick / total_s:.4f}%'>{format_seconds(tick)}</span>"
        )
    parts.append("</div>")

    def service(span: Span) -> str:
        return f"<span class='svc'>{esc(span.resource.service_name)}</span>" if len(services) > 1 else ""

    def duration(left: float, width: float, span: Span) -> str:
        text = esc(format_seconds(span.duration_s))
        if left + width > 85:  # no room after the bar: inside it, at its end
            return f"<span class='dur inside' style='right:{100 - left - width:.4f}%'>{text}</span>"
        return f"<span class='dur' style='left:{left + width:.4f}%'>{text}</span>"

    for item in shown:
        span = item.span
        left = 100 * (span.start_ns - begin) / 1e9 / total_s
        width = 100 * max(span.end_ns - span.start_ns, 0) / 1e9 / total_s
        info = esc(json.dumps(_describe(span), ensure_ascii=False, default=str), quote=True)
        css = "row error" if span.is_error else "row"
        parts.append(
            f"<div class='{css}' data-info=\"{info}\" data-span-id='{span.span_id}'>"
            f"<div class='label' style='padding-left:{item.depth * 16}px'>"
            f"<span class='name'>{esc(span.name)}</span>"
            f"{service(span)}</div>"
            f"<div class='track'><div class='bar' style='left:{left:.4f}%;width:{width:.4f}%'></div>"
            f"{duration(left, width, span)}</div></div>"
        )
    parts.append(f"</div><div id='tip'></div><script>{_SCRIPT}</script></body></html>\n")
    return "".join(parts)


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
    height = max(2.5, 0.28 * len(rows) + 1.2)
    figure, axes = plt.subplots(figsize=(12, height))
    for index, row in enumerate(rows):
        span = row.span
        start = (span.start_ns - begin) / scale
        width = max((span.end_ns - span.start_ns) / scale, 0)
        color = "#d93b3b" if span.is_error else "#4c7bd9"
        axes.barh(index, width, left=start, height=0.6, color=color)
    axes.set_yticks(range(len(rows)))
    axes.set_yticklabels(["  " * row.depth + row.span.name for row in rows], fontsize=8)
    axes.set_ylim(len(rows) - 0.5, -0.5)
    axes.set_xlabel(f"time since trace start ({unit})")
    axes.set_title(title or f"trace {spans[0].trace_id}", fontsize=10)
    axes.grid(axis="x", color="#e3e7ee")
    axes.set_axisbelow(True)
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
