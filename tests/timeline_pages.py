"""The timeline tests' pages: a demo run to draw, and headless Chromium to open, act on and read them.

``look(page, ...)`` runs ``actions`` (JavaScript: clicks, typing into the filter, picking a trace)
after the page's own script, then writes what is rendered into a ``<pre id="seen">`` that the test
reads back from Chromium's DOM: the text of every row whose label is laid out (a collapsed or
filtered row has no layout box, so it is not in the list), the legend with its swatch colours, the
bar colour and the log marks of each visible row. Everything comes from the browser's layout and
computed styles, not from the page's markup.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from modeltel.read.query import iter_spans
from otlp_files import BIN, base_env

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_REPORT = """
(() => {
  const shown = el => el.getClientRects().length > 0;
  const text = el => el.innerText.replace(/\\s+/g, ' ').trim();
  const rows = [...document.querySelectorAll('.row')].filter(r => shown(r.querySelector('.label')));
  const axis = document.querySelectorAll('.axis')[1];
  const ticks = axis ? [...axis.querySelectorAll('.tick')] : [];
  const box = axis ? axis.getBoundingClientRect() : null;
  const seen = {
    title: document.querySelector('h1') ? text(document.querySelector('h1')) : '',
    rows: rows.map(r => text(r.querySelector('.label'))),
    collapsed: rows.filter(r => r.classList.contains('collapsed')).map(r => text(r.querySelector('.label'))),
    bars: rows.map(r => getComputedStyle(r.querySelector('.bar')).backgroundColor),
    marks: rows.map(r => { const bar = r.querySelector('.bar').getBoundingClientRect();
      return [...r.querySelectorAll('.mark')].filter(shown).map(m => { const b = m.getBoundingClientRect();
        const x = (b.left + b.right) / 2;
        const inside = bar.left - 1 <= x && x <= bar.right + 1;
        return [m.title, getComputedStyle(m).backgroundColor, inside]; }); }),
    legend: [...document.querySelectorAll('#legend .entry')].filter(shown).map(e => [
      text(e), getComputedStyle(e.querySelector('.swatch')).backgroundColor]),
    notes: [...document.querySelectorAll('.note')].filter(shown).map(text),
    options: [...document.querySelectorAll('#traces option')].map(o => [o.value, text(o), o.disabled]),
    ticks: ticks.map(t => { const r = t.getBoundingClientRect();
      return [text(t), r.left, r.right, r.height]; }),
    axis: box ? [box.left, box.right] : [],
    matches: document.getElementById('matches') ? text(document.getElementById('matches')) : '',
    failed,
  };
  const out = document.createElement('pre');
  out.id = 'seen';
  out.textContent = JSON.stringify(seen);
  document.body.appendChild(out);
})();
"""

TYPE = """
function type(text) {
  const box = document.getElementById('filter');
  box.value = text;
  box.dispatchEvent(new Event('input', {bubbles: true}));
}
function pick(traceId) {
  const select = document.getElementById('traces');
  select.value = traceId;
  select.dispatchEvent(new Event('change', {bubbles: true}));
}
function toggle(label) {
  const row = [...document.querySelectorAll('.row')].find(
    r => r.querySelector('.label').innerText.replace(/\\s+/g, ' ').trim() === label);
  row.querySelector('.toggle').click();
}
"""
"""What the ``actions`` of :func:`look` may call: ``type(text)``, ``pick(traceId)``, ``toggle(label)``."""


@dataclass(frozen=True)
class Seen:
    """What Chromium showed after the actions (see the module docstring)."""

    title: str
    rows: list[str]
    collapsed: list[str]
    bars: list[str]
    marks: list[list[list[Any]]]
    """Per visible row, its log marks: ``[title, colour, centred within the row's bar]``."""
    legend: list[list[str]]
    notes: list[str]
    options: list[list[Any]]
    ticks: list[list[Any]]
    axis: list[float]
    matches: str
    failed: str
    """The error the actions threw, if one did (the report is written all the same)."""


class _Pre(HTMLParser):
    def __init__(self, dom: str) -> None:
        super().__init__()
        self.text = ""
        self._inside = False
        self.feed(dom)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._inside = tag == "pre" and dict(attrs).get("id") == "seen"

    def handle_data(self, data: str) -> None:
        if self._inside:
            self.text += data

    def handle_endtag(self, tag: str) -> None:
        self._inside = False


def chromium(page: Path, profile: Path, *mode: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium with everything that would reach the network switched off."""
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: `apt-get install -y chromium` (CI installs it in .ci/run)")
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,800",
        "--hide-scrollbars", *mode, page.as_uri(),
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def with_actions(page: Path, actions: str, name: str) -> Path:
    """A copy of ``page`` that runs ``actions`` after its own script, then reports what shows."""
    head, body, tail = page.read_text().rpartition("</body>")
    assert body, f"{page} has no </body>"
    acted = page.with_name(name)
    script = f"{TYPE}\nlet failed = '';\ntry {{ {actions} }} catch (e) {{ failed = String(e); }}\n{_REPORT}"
    acted.write_text(f"{head}<script>{script}</script>{body}{tail}")
    return acted


def look(page: Path, tmp_path: Path, actions: str = "", *, screenshot: Path | None = None) -> Seen:
    """Open ``page`` in Chromium, run ``actions``, and return what was visible (optionally a screenshot)."""
    acted = with_actions(page, actions, f"acted-{len(list(tmp_path.glob('acted-*')))}.html")
    dom = chromium(acted, tmp_path / "profile", "--dump-dom")
    assert dom.returncode == 0, dom.stderr
    found = _Pre(dom.stdout).text
    assert found, f"the page's script failed before the report: {dom.stderr[-2000:]}"
    if screenshot is not None:
        shot = chromium(acted, tmp_path / "profile", f"--screenshot={screenshot}")
        assert shot.returncode == 0, shot.stderr
        assert screenshot.read_bytes().startswith(PNG_SIGNATURE)
    seen = Seen(**json.loads(found))
    assert not seen.failed, f"the actions failed: {seen.failed}"
    return seen


def demo_run(data_dir: Path) -> Path:
    """``modeltel demo --workers 2``: one run, several traces, each job's spans in three processes."""
    result = subprocess.run(
        [str(BIN / "modeltel"), "demo", "--data-dir", str(data_dir), "--workers", "2"],
        env=base_env(data_dir),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    return data_dir


def root_traces(data_dir: Path) -> dict[str, str]:
    """Root span name -> trace id of each trace in ``data_dir`` (the last one of a repeated name)."""
    files = sorted((data_dir / "traces").glob("*/*.jsonl"))
    return {s.name: s.trace_id for s in iter_spans(files) if not s.parent_span_id}
