"""``modeltel timeline``: the HTML opened in headless Chromium (rendered DOM and a screenshot), the PNG."""

from __future__ import annotations

import html
from html.parser import HTMLParser
from pathlib import Path

import pytest

from reading_data import COLLECTOR_TRACE, collector_file, example_run, modeltel
from timeline_pages import PNG_SIGNATURE, chromium


class Rows(HTMLParser):
    """``(css class, indent style, name)`` of each timeline row in a rendered DOM."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_name = False
        self.feed(dom)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        css = found.get("class") or ""
        if tag == "div" and css.split()[:1] == ["row"]:
            self.rows.append([css, "", ""])
        elif tag == "div" and css == "label":
            self.rows[-1][1] = found.get("style") or ""
        self._in_name = tag == "span" and css == "name"

    def handle_data(self, data: str) -> None:
        if self._in_name:
            self.rows[-1][2] += data

    def handle_endtag(self, tag: str) -> None:
        self._in_name = False


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return example_run(tmp_path_factory.mktemp("run") / "data")


def test_html_renders_every_span_in_chromium(run_dir: Path, tmp_path: Path) -> None:
    page = tmp_path / "trace.html"
    result = modeltel("timeline", "--data-dir", str(run_dir), "-o", str(page))
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("modeltel timeline: 6 spans of trace ")
    source = page.read_text()
    assert "http://" not in source and "https://" not in source and "<link" not in source  # opens offline
    dom = chromium(page, tmp_path / "profile", "--dump-dom")
    assert dom.returncode == 0, dom.stderr
    rendered = dom.stdout
    for name in ("sweep", "task", "report", "failing"):
        assert f'<span class="name">{name}</span>' in rendered
    assert rendered.count('class="row error"') == 1  # "failing", in red
    assert rendered.count('class="row"') == 5
    assert "sweep.label" in html.unescape(rendered)  # the hover's attributes ride on the row
    shot = tmp_path / "shot.png"
    screenshot = chromium(page, tmp_path / "profile", f"--screenshot={shot}")
    assert screenshot.returncode == 0, screenshot.stderr
    assert shot.read_bytes().startswith(PNG_SIGNATURE) and shot.stat().st_size > 10_000


def test_collector_trace_nesting_and_errors(tmp_path: Path) -> None:
    collector_file(tmp_path / "in")
    page = tmp_path / "c.html"
    result = modeltel("timeline", str(tmp_path / "in"), "--trace", COLLECTOR_TRACE.upper(), "-o", str(page))
    assert result.returncode == 0, result.stderr
    rendered = chromium(page, tmp_path / "profile", "--dump-dom").stdout
    rows = Rows(rendered).rows
    assert rows == [  # children under their parent, by start; errors in red
        ["row", "padding-left:0px", "chat gpt-4o"],
        ["row error", "padding-left:16px", "retrieve"],
        ["row", "padding-left:16px", "chat gpt-4o"],
    ]


def test_png_through_matplotlib(run_dir: Path, tmp_path: Path) -> None:
    picture = tmp_path / "trace.png"
    result = modeltel("timeline", "--data-dir", str(run_dir), "-o", str(picture))
    assert result.returncode == 0, result.stderr
    assert picture.read_bytes().startswith(PNG_SIGNATURE) and picture.stat().st_size > 5_000


def test_bad_output_and_unknown_trace(run_dir: Path, tmp_path: Path) -> None:
    result = modeltel("timeline", "--data-dir", str(run_dir), "-o", str(tmp_path / "t.svg"))
    assert (result.returncode, result.stderr) == (
        2,
        f"modeltel timeline: -o: {tmp_path / 't.svg'} must end in .html or .png\n",
    )
    result = modeltel(
        "timeline", "--data-dir", str(run_dir), "--trace", "a" * 32, "-o", str(tmp_path / "t.html")
    )
    assert (
        result.returncode == 1
        and result.stderr == f"modeltel timeline: trace {'a' * 32} not found in {run_dir}\n"
    )
