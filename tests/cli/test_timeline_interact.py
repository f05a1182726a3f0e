"""``modeltel timeline`` as a person uses it in Chromium: collapse, filter, and pick a trace of a run."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from reading_data import modeltel, sdk_file
from timeline_pages import demo_run, look, root_traces


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_run(tmp_path_factory.mktemp("demo") / "data")


@pytest.fixture(scope="module")
def calibration_page(demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    page = tmp_path_factory.mktemp("page") / "calibration.html"
    trace = root_traces(demo)["calibration.job"]
    result = modeltel("timeline", "--data-dir", str(demo), "--trace", trace, "-o", str(page))
    assert result.returncode == 0, result.stderr
    return page


def test_a_click_on_a_toggle_collapses_and_expands_the_subtree(
    calibration_page: Path, tmp_path: Path
) -> None:
    before = look(calibration_page, tmp_path)
    assert Counter(before.rows)["calibration.ask"] == 30 and before.collapsed == []

    one = look(calibration_page, tmp_path, "toggle('calibration.iteration #3');")
    assert one.collapsed == ["calibration.iteration #3"]
    assert Counter(one.rows)["calibration.ask"] == 29
    three = one.rows.index("calibration.iteration #3")
    assert one.rows[three + 1] == "calibration.iteration #4"  # its children are gone, nothing else

    root = look(
        calibration_page, tmp_path, "toggle('calibration.iteration #3'); toggle('calibration.job fit-sir');"
    )
    assert root.rows == ["calibration.job fit-sir"] and root.collapsed == ["calibration.job fit-sir"]

    twice = "toggle('calibration.job fit-sir');" * 2
    again = look(calibration_page, tmp_path, f"toggle('calibration.iteration #3'); {twice}")
    assert again.rows == one.rows  # the root opens again; iteration #3 is still folded
    assert again.collapsed == ["calibration.iteration #3"]


def test_the_filter_keeps_matching_rows_and_their_ancestors(calibration_page: Path, tmp_path: Path) -> None:
    total = len(look(calibration_page, tmp_path).rows)

    seven = look(calibration_page, tmp_path, "type('#7');")
    assert seven.rows == ["calibration.job fit-sir", "calibration.iteration #7"]
    assert seven.matches == f"1 of {total} spans match"

    by_attribute = look(calibration_page, tmp_path, "type('n_losses');")  # an attribute key, not a label
    assert Counter(by_attribute.rows) == {
        "calibration.job fit-sir": 1,
        **{f"calibration.iteration #{i}": 1 for i in range(30)},
        "calibration.tell": 30,
    }

    nothing = look(calibration_page, tmp_path, "type('no such thing');")
    assert nothing.rows == [] and nothing.matches == f"0 of {total} spans match"

    cleared = look(calibration_page, tmp_path, "type('#7'); type('');")
    assert len(cleared.rows) == total and cleared.matches == ""


def test_a_run_page_switches_between_the_runs_traces(demo: Path, tmp_path: Path) -> None:
    page = tmp_path / "run.html"
    result = modeltel("timeline", "--data-dir", str(demo), "--last-run", "-o", str(page))
    assert result.returncode == 0, result.stderr
    drawn = re.search(r"of trace ([0-9a-f]{32}) drawn", result.stderr)
    assert drawn, result.stderr
    assert "index of 7 traces of run" in result.stderr
    traces = root_traces(demo)

    first = look(page, tmp_path)
    assert len(first.options) == 7 and not any(disabled for _, _, disabled in first.options)
    labels = {value: text for value, text, _ in first.options}
    assert labels[traces["simulation.job"]].startswith("simulation.job sir-sweep · 147 spans")
    assert labels[traces["inference.job"]].startswith("inference.job classifier-nightly · 9 spans")
    assert drawn[1] in first.title  # the run's last trace, as without --run

    sweep = look(page, tmp_path, f"pick('{traces['simulation.job']}');")
    assert traces["simulation.job"] in sweep.title
    assert sweep.rows[0] == "simulation.job sir-sweep" and len(sweep.rows) == 147
    assert "simulation.phase integrate" in sweep.rows

    filtered = look(page, tmp_path, f"type('centroid'); pick('{traces['inference.job']}');")
    assert filtered.rows[0] == "inference.job classifier-nightly" and len(filtered.rows) == 9
    assert filtered.matches == "9 of 9 spans match"  # the filter carries over to the next trace


def test_a_large_run_embeds_what_fits_and_says_so(demo: Path, tmp_path: Path) -> None:
    page = tmp_path / "capped.html"
    result = modeltel(
        "timeline", "--data-dir", str(demo), "--last-run", "--max-spans", "200", "-o", str(page)
    )
    assert result.returncode == 0, result.stderr
    seen = look(page, tmp_path)
    embedded = [value for value, _, disabled in seen.options if not disabled]
    left_out = [text for _, text, disabled in seen.options if disabled]
    assert len(seen.options) == 7 and left_out and len(embedded) + len(left_out) == 7
    assert all("not in this page" in text for text in left_out)
    assert seen.notes == [
        f"{len(embedded)} of 7 traces are in this page (at most 200 spans); "
        "draw another with modeltel timeline --trace ID"
    ]
    assert seen.rows  # the drawn trace is always in


def test_hostile_names_and_values_are_shown_as_text(tmp_path: Path) -> None:
    span = {
        "traceId": "ab" * 16,
        "spanId": "cd" * 8,
        "name": "</script><img src=x onerror=alert(1)>",
        "startTimeUnixNano": "1000000000",
        "endTimeUnixNano": "2000000000",
        "attributes": [{"key": "loss", "value": {"doubleValue": "NaN"}}],
    }
    source = tmp_path / "in" / "spans.json"
    source.parent.mkdir()
    source.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}) + "\n")
    page = tmp_path / "t.html"
    result = modeltel("timeline", str(source.parent), "-o", str(page))
    assert result.returncode == 0, result.stderr
    assert look(page, tmp_path).rows == ["</script><img src=x onerror=alert(1)>"]


def test_bad_choices_are_one_line_errors(demo: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "t.html")
    zero = modeltel("timeline", "--data-dir", str(demo), "--last-run", "--max-spans", "0", "-o", out)
    assert zero.returncode == 2
    assert zero.stderr.endswith("modeltel timeline: error: argument --max-spans: must be at least 1\n")
    word = modeltel("timeline", "--data-dir", str(demo), "--max-spans", "many", "-o", out)
    assert word.returncode == 2
    assert word.stderr.endswith("argument --max-spans: not a whole number: 'many'\n")
    other = "ab" * 16
    run = modeltel("timeline", "--data-dir", str(demo), "--last-run", "--trace", other, "-o", out)
    assert run.returncode == 1
    assert re.fullmatch(rf"modeltel timeline: trace {other} not found in run \w+ in {demo}\n", run.stderr)


def test_a_trace_read_in_part_is_named_by_its_earliest_span(tmp_path: Path) -> None:
    """A trace whose root is in no file read (another host's, a lost line) still has a name in the index."""

    def span(trace: str, span_id: str, name: str, start_s: int, parent: str = "") -> dict[str, object]:
        return {
            "traceId": trace, "spanId": span_id, "parentSpanId": parent, "name": name,
            "startTimeUnixNano": str(start_s * 10**9), "endTimeUnixNano": str((start_s + 1) * 10**9),
        }  # fmt: skip

    resource = {"attributes": [{"key": "modeltel.run.id", "value": {"stringValue": "run-p"}}]}
    spans = [
        span("aa" * 16, "01" * 8, "simulation.job", 10),
        span("bb" * 16, "03" * 8, "later child", 21, parent="ff" * 8),
        span("bb" * 16, "02" * 8, "earliest child", 20, parent="ff" * 8),
    ]
    source = tmp_path / "in" / "spans.json"
    source.parent.mkdir()
    request = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]}
    source.write_text(json.dumps(request, separators=(",", ":")) + "\n")
    page = tmp_path / "t.html"
    result = modeltel("timeline", str(source.parent), "--run", "run-p", "--trace", "aa" * 16, "-o", str(page))
    assert result.returncode == 0, result.stderr
    labels = [text.split(" · ")[0] for _, text, _ in look(page, tmp_path).options]
    assert labels == ["simulation.job", "earliest child"]


def test_a_trace_past_the_row_cap_draws_the_first_rows_and_says_so(tmp_path: Path) -> None:
    sdk_file(tmp_path / "data", 5_010)
    page = tmp_path / "big.html"
    result = modeltel("timeline", "--data-dir", str(tmp_path / "data"), "-o", str(page))
    assert result.returncode == 0, result.stderr
    seen = look(page, tmp_path, "type('#2');")  # the filter searches the drawn rows
    assert "showing the first 5,000 of 5,010 spans" in seen.notes
    assert seen.rows[0] == "simulation.job" and "calibration.iteration #2" in seen.rows
    assert re.fullmatch(r"\d+ of 5,000 spans match", seen.matches)
