"""The timeline page's inline style and script (kept apart from the Python that fills in the data).

The script draws the trace picked in the index from the JSON the page embeds, and keeps the rows'
state: collapsed subtrees, the filter (a row shows when it, a descendant or one of its log records
matches, and
while a filter is typed collapsing is set aside so no match hides), the hover card. It reads no
URL and loads nothing, so the page works from a file with no network.
"""

from __future__ import annotations

STYLE = """
body{font:13px/1.35 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2433;background:#fff}
header{padding:14px 18px 8px;border-bottom:1px solid #e3e7ee}
h1{font-size:16px;margin:0 0 4px;overflow-wrap:anywhere}
header p{margin:0;color:#5b6475}
.controls{display:flex;gap:10px;align-items:center;flex-wrap:wrap;padding:8px 18px;
border-bottom:1px solid #e3e7ee}
.controls select{max-width:min(70ch,100%)}
#filter{width:26ch}
#matches{color:#5b6475}
#legend{display:flex;gap:14px;flex-wrap:wrap;padding:6px 18px 0}
#legend:empty{display:none}
.entry{display:inline-flex;align-items:center;gap:6px;color:#5b6475}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px}
.grid{display:grid;grid-template-columns:minmax(220px,32%) 1fr;padding:0 18px 24px}
.axis{position:sticky;top:0;background:#fff;z-index:2;height:26px;border-bottom:1px solid #e3e7ee}
.axis .tick{position:absolute;top:6px;font-size:11px;color:#5b6475;transform:translateX(-50%);
white-space:nowrap}
.axis .tick::after{content:"";position:absolute;left:50%;top:16px;height:6px;border-left:1px solid #c5ccd8}
.axis .tick.start{transform:none}.axis .tick.start::after{left:0}
.axis .tick.end{transform:translateX(-100%)}.axis .tick.end::after{left:100%}
.label{white-space:nowrap;overflow:hidden;text-overflow:ellipsis;padding:3px 8px 3px 0;
border-bottom:1px solid #f1f3f7}
.toggle{all:unset;cursor:pointer;display:inline-block;width:14px;text-align:center;color:#5b6475}
.toggle::before{content:"\\25BE"}
.row.collapsed .toggle::before{content:"\\25B8"}
.toggle:focus-visible{outline:2px solid #4c7bd9}
.leaf{display:inline-block;width:14px}
.label .tag{color:#2e5bb8}
.label .svc{color:#8a93a6;margin-left:6px;font-size:11px}
.track{position:relative;border-bottom:1px solid #f1f3f7;min-height:22px}
.bar{position:absolute;top:5px;height:12px;min-width:2px;border-radius:2px;background:#4c7bd9}
.dur{position:absolute;top:3px;font-size:11px;color:#5b6475;white-space:nowrap;padding-left:4px}
.dur.inside{color:#fff;padding:0 4px 0 0;top:4px;font-size:10px}
.mark{position:absolute;top:3px;width:2px;height:16px;margin-left:-1px;background:#1d2433;
box-shadow:0 0 0 1px #fff;z-index:1;cursor:help}
.mark.bad{background:#d93b3b}
.row.error .bar{background:#d93b3b}
.row.error .name{color:#b42323;font-weight:600}
.row:hover .label,.row:hover .track{background:#f4f7fd}
.row{display:contents}
.row.hidden{display:none}
#tip{position:fixed;display:none;max-width:520px;background:#1d2433;color:#f5f7fa;padding:8px 10px;
border-radius:6px;font-size:12px;z-index:5;pointer-events:none;box-shadow:0 4px 16px rgba(0,0,0,.25)}
#tip table{border-collapse:collapse}#tip td{padding:1px 6px;vertical-align:top;word-break:break-all}
#tip td:first-child{color:#a9b4c8;white-space:nowrap}
#tip{white-space:pre-wrap}#tip table{white-space:normal}
.note{padding:8px 18px;margin:0;color:#8a5a00}
"""

SCRIPT = """
(() => {
const data = JSON.parse(document.getElementById('data').textContent);
const $ = id => document.getElementById(id);
const grid = $('grid'), tip = $('tip'), filter = $('filter'), picker = $('traces');
const esc = s => String(s).replace(/[&<>"']/g, c =>
  ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));
let trace = null, rows = [], folded = new Set(), haystack = null;

function rowHtml(r, i) {
  const toggle = r.kids ? '<button class="toggle" aria-expanded="true" aria-label="collapse"></button>'
    : '<span class="leaf"></span>';
  const tag = r.tag ? ' <span class="tag">' + esc(r.tag) + '</span>' : '';
  const svc = r.svc ? ' <span class="svc">' + esc(r.svc) + '</span>' : '';
  const colour = r.proc >= 0 && !r.error ? ';background:' + trace.legend[r.proc].colour : '';
  const marks = r.logs.map(([x, text, bad]) =>
    '<span class="mark' + (bad ? ' bad' : '') + '" style="left:' + x + '%" title="' + esc(text) + '"></span>'
  ).join('');
  const end = r.x + r.w;
  const dur = end > 85
    ? '<span class="dur inside" style="right:' + (100 - end).toFixed(4) + '%">' + esc(r.dur) + '</span>'
    : '<span class="dur" style="left:' + end.toFixed(4) + '%">' + esc(r.dur) + '</span>';
  return '<div class="row' + (r.error ? ' error' : '') + '" data-i="' + i + '" data-span-id="' + esc(r.id)
    + '"><div class="label" style="padding-left:' + r.depth * 16 + 'px">' + toggle
    + '<span class="name">' + esc(r.name) + '</span>' + tag + svc + '</div><div class="track">'
    + '<div class="bar" style="left:' + r.x + '%;width:' + r.w + '%' + colour + '"></div>' + marks + dur
    + '</div></div>';
}

function fitTicks() {
  const axis = grid.querySelectorAll('.axis')[1];
  if (!axis) return;
  const box = axis.getBoundingClientRect();
  axis.querySelectorAll('.tick').forEach(t => {
    t.classList.remove('start', 'end');
    const r = t.getBoundingClientRect();
    if (r.left < box.left) t.classList.add('start');
    else if (r.right > box.right) t.classList.add('end');
  });
}

function draw(k) {
  trace = data.traces[k];
  folded = new Set();
  haystack = null;
  $('title').textContent = trace.title;
  $('summary').textContent = trace.summary;
  document.title = trace.title + ' \\u00b7 modeltel timeline';
  const note = $('rows-note');
  note.textContent = trace.note || '';
  note.hidden = !trace.note;
  $('legend').innerHTML = trace.legend.map(e => '<span class="entry"><span class="swatch" style="background:'
    + e.colour + '"></span>' + esc(e.label) + '</span>').join('');
  const ticks = trace.ticks.map(([x, text]) =>
    '<span class="tick" style="left:' + x + '%">' + esc(text) + '</span>').join('');
  grid.innerHTML = '<div class="axis"></div><div class="axis">' + ticks + '</div>'
    + trace.rows.map(rowHtml).join('');
  rows = [...grid.querySelectorAll('.row')];
  fitTicks();
  update();
}

function matching() {
  if (haystack === null) {
    haystack = trace.rows.map(r => [r.name, r.tag || '', ...Object.entries(r.info).flat(),
      ...r.logs.map(m => m[1])].join('\\n').toLowerCase());
  }
  return haystack;
}

function update() {
  const query = filter.value.trim().toLowerCase();
  const all = trace.rows, show = new Array(all.length).fill(false);
  let hits = 0;
  if (query) {
    const texts = matching();
    for (let i = 0; i < all.length; i++) {
      if (!texts[i].includes(query)) continue;
      hits++;
      for (let j = i; j >= 0 && !show[j]; j = all[j].parent) show[j] = true;
    }
  } else {
    for (let i = 0; i < all.length; i++) {
      const p = all[i].parent;
      show[i] = p < 0 || (show[p] && !folded.has(p));
    }
  }
  rows.forEach((el, i) => el.classList.toggle('hidden', !show[i]));
  const n = x => x.toLocaleString('en');
  $('matches').textContent = query ? n(hits) + ' of ' + n(all.length) + ' spans match' : '';
}

function setFolded(i, on) {
  if (!trace.rows[i].kids) return;
  if (on) folded.add(i); else folded.delete(i);
  rows[i].classList.toggle('collapsed', on);
  const button = rows[i].querySelector('.toggle');
  button.setAttribute('aria-expanded', String(!on));
  button.setAttribute('aria-label', on ? 'expand' : 'collapse');
}

grid.addEventListener('click', e => {
  const button = e.target.closest('.toggle');
  if (!button) return;
  const i = +button.closest('.row').dataset.i;
  setFolded(i, !folded.has(i));
  update();
});
function foldAll(on) {
  trace.rows.forEach((_, i) => setFolded(i, on));
  update();
}
$('fold-all').addEventListener('click', () => foldAll(true));
$('unfold-all').addEventListener('click', () => foldAll(false));
filter.addEventListener('input', update);
addEventListener('resize', fitTicks);

grid.addEventListener('mousemove', e => {
  const row = e.target.closest('.row');
  if (!row) { tip.style.display = 'none'; return; }
  const mark = e.target.closest('.mark');
  if (mark) {
    tip.textContent = mark.title;
  } else {
    const info = trace.rows[+row.dataset.i].info;
    tip.innerHTML = '<table>' + Object.entries(info).map(([k, v]) =>
      '<tr><td>' + esc(k) + '</td><td>' + esc(v) + '</td></tr>').join('') + '</table>';
  }
  tip.style.display = 'block';
  tip.style.left = Math.min(e.clientX + 14, innerWidth - tip.offsetWidth - 8) + 'px';
  tip.style.top = Math.min(e.clientY + 14, innerHeight - tip.offsetHeight - 8) + 'px';
});
grid.addEventListener('mouseleave', () => { tip.style.display = 'none'; });

if (data.index.length > 1) {
  picker.innerHTML = data.index.map(t => '<option value="' + esc(t.id) + '"' + (t.embedded ? '' : ' disabled')
    + '>' + esc(t.label) + '</option>').join('');
  picker.value = data.traces[data.initial].id;
  picker.addEventListener('change', () => draw(data.traces.findIndex(t => t.id === picker.value)));
} else {
  picker.remove();
}
draw(data.initial);
})();
"""
