"""Run selection and durations on input that is valid OTLP/JSON but not laid out as modeltel writes it.

A hand-edited or re-indented file (spaces after ``:`` and ``,``, one value per line) is read by every
command; selecting a run in it must give what it gives on the compact original.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modeltel.read.reports import format_seconds
from otlp_files import jsonl_files
from reading_data import example_run, modeltel


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("loose")
    data_dir = example_run(root / "data", MODELTEL_RUN_ID="run-loose")
    (original,) = jsonl_files(data_dir, "traces")
    lines = [json.loads(line) for line in original.read_text().splitlines()]
    spaced = root / "spaced.jsonl"
    spaced.write_text("".join(json.dumps(line) + "\n" for line in lines))
    pretty = root / "pretty.json"
    pretty.write_text("".join(json.dumps(line, indent=2) + "\n" for line in lines))
    return {"compact": original, "spaced": spaced, "pretty": pretty}


@pytest.mark.parametrize("layout", ["spaced", "pretty"])
def test_a_run_is_selected_in_a_file_not_laid_out_compactly(layouts: dict[str, Path], layout: str) -> None:
    expected = modeltel("show", str(layouts["compact"]), "--run", "run-loose", "--format", "json")
    assert expected.returncode == 0, expected.stderr
    found = modeltel("show", str(layouts[layout]), "--run", "run-loose", "--format", "json")
    assert found.returncode == 0, found.stderr
    rows = json.loads(expected.stdout)["spans"]
    assert rows and json.loads(found.stdout)["spans"] == rows


@pytest.mark.parametrize("layout", ["spaced", "pretty"])
def test_a_trace_of_the_run_is_found_in_a_file_not_laid_out_compactly(
    layouts: dict[str, Path], layout: str
) -> None:
    trace = json.loads(layouts["compact"].read_text().splitlines()[0])["resourceSpans"][0]["scopeSpans"][0]
    trace_id = trace["spans"][0]["traceId"]

    def shown(source: Path) -> list[object]:
        done = modeltel("show", str(source), "--run", "run-loose", "--trace", trace_id, "--format", "json")
        assert done.returncode == 0, done.stderr
        rows: list[object] = json.loads(done.stdout)["spans"]
        return rows

    expected = shown(layouts["compact"])
    assert expected and shown(layouts[layout]) == expected


@pytest.mark.parametrize("layout", ["spaced", "pretty"])
def test_export_selects_the_run_in_a_file_not_laid_out_compactly(
    layouts: dict[str, Path], layout: str, tmp_path: Path
) -> None:
    def exported(source: Path) -> list[str]:
        out = tmp_path / f"{source.stem}.jsonl"
        done = modeltel("export", str(source), "--run", "run-loose", "--format", "otlp-json", "-o", str(out))
        assert done.returncode == 0, done.stderr
        return sorted(
            span["spanId"]
            for line in out.read_text().splitlines()
            for rs in json.loads(line)["resourceSpans"]
            for ss in rs["scopeSpans"]
            for span in ss["spans"]
        )

    expected = exported(layouts["compact"])
    assert expected and exported(layouts[layout]) == expected


@pytest.mark.parametrize("layout", ["spaced", "pretty"])
def test_another_run_still_selects_nothing(layouts: dict[str, Path], layout: str) -> None:
    found = modeltel("show", str(layouts[layout]), "--run", "run-other")
    assert found.returncode != 0
    assert "no spans of run run-other" in found.stderr


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.0009996, "1 ms"), (0.9999, "1 s"), (59.99, "1 min"), (999.6e-9, "1 µs"), (0.0012, "1.2 ms")],
)
def test_a_duration_that_rounds_up_takes_the_next_unit(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text
