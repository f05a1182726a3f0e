"""``modeltel timeline`` rows as a person sees them in Chromium: labels, process colours, the axis."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from otlp_files import run_under_modeltel
from reading_data import modeltel
from timeline_pages import demo_run, look, root_traces

DEFAULT_BLUE = "rgb(76, 123, 217)"
ERROR_RED = "rgb(217, 59, 59)"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_run(tmp_path_factory.mktemp("demo") / "data")


def draw(data_dir: Path, tmp_path: Path, *args: str) -> Path:
    page = tmp_path / "trace.html"
    result = modeltel("timeline", "--data-dir", str(data_dir), *args, "-o", str(page))
    assert result.returncode == 0, result.stderr
    return page


def test_rows_name_the_iteration_model_and_phase(demo: Path, tmp_path: Path) -> None:
    traces = root_traces(demo)
    calibration = look(draw(demo, tmp_path, "--trace", traces["calibration.job"]), tmp_path).rows
    assert calibration[0] == "calibration.job fit-sir"
    iterations = [row for row in calibration if row.startswith("calibration.iteration")]
    assert iterations == [f"calibration.iteration #{i}" for i in range(30)]
    assert any(re.fullmatch(r"simulation\.run sir-ode batch-\d+", row) for row in calibration), calibration

    classifier = look(draw(demo, tmp_path, "--trace", traces["inference.job"]), tmp_path).rows
    assert classifier[0] == "inference.job classifier-nightly"
    assert Counter(classifier[1:]) == {"inference.predict centroid-v1 20,000 rows": 8}

    sweep = look(draw(demo, tmp_path, "--trace", traces["simulation.job"]), tmp_path).rows
    assert sweep[0] == "simulation.job sir-sweep"
    assert "simulation.phase integrate" in sweep
    assert any(re.fullmatch(r"simulation\.run sir \S+ seed \d+ cached", row) for row in sweep), sweep


def test_a_trace_across_processes_is_coloured_by_process_with_a_legend(demo: Path, tmp_path: Path) -> None:
    traces = root_traces(demo)
    shot = tmp_path / "shot.png"
    seen = look(draw(demo, tmp_path, "--trace", traces["calibration.job"]), tmp_path, screenshot=shot)
    processes = [entry for entry in seen.legend if entry[0] != "error"]
    assert len(processes) == 3, seen.legend  # the demo's main process and its two pool workers
    assert all(re.fullmatch(r"modeltel-demo \w{8} · \d+ spans", name) for name, _ in processes), processes
    colours = {colour for _, colour in processes}
    assert len(colours) == 3 and ERROR_RED not in colours  # red stays for errors
    assert set(seen.bars) <= colours | {ERROR_RED}
    assert set(seen.bars) >= colours  # every process has bars in its colour
    assert sum(int(name.split(" · ")[1].split()[0]) for name, _ in processes) == len(seen.rows)
    pixels = {rgb: count for count, rgb in Image.open(shot).convert("RGB").getcolors(1 << 24) or []}
    for colour in colours:
        rgb = tuple(int(part) for part in re.findall(r"\d+", colour))
        assert pixels.get(rgb, 0) > 30, f"{colour} is in the legend but hardly on screen"

    single = look(draw(demo, tmp_path, "--trace", traces["inference.job"]), tmp_path)
    assert single.legend == []  # one process: no legend, today's colours
    assert set(single.bars) == {DEFAULT_BLUE}


def test_the_last_axis_label_stays_on_one_line_inside_the_axis(demo: Path, tmp_path: Path) -> None:
    seen = look(draw(demo, tmp_path, "--trace", root_traces(demo)["calibration.job"]), tmp_path)
    assert len(seen.ticks) >= 3
    heights = {round(height) for _, _, _, height in seen.ticks}
    assert len(heights) == 1, seen.ticks  # a wrapped label is two lines high
    left, right = seen.axis
    for text, tick_left, tick_right, _ in seen.ticks:
        assert left - 0.5 <= tick_left and tick_right <= right + 0.5, (text, tick_left, tick_right, right)


OPTUNA_APP = """
import optuna
from modeltel import calibration, simulation
from modeltel.integrations.optuna import traced

optuna.logging.set_verbosity(optuna.logging.ERROR)

def objective(trial):
    x = trial.suggest_float("x", -1, 1)
    if trial.number == 1:
        raise ValueError("diverged")
    with simulation.run(model="sir", param_id=f"t{trial.number}", seed=trial.number):
        pass
    return x * x

with calibration.job("fit-optuna", algorithm="tpe", max_iterations=3) as job:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(traced(objective, job), n_trials=3, catch=(ValueError,))
"""


def test_an_optuna_trial_row_says_its_number_and_a_failure(tmp_path: Path) -> None:
    pytest.importorskip("optuna")
    app = tmp_path / "study.py"
    app.write_text(OPTUNA_APP)
    result = run_under_modeltel(tmp_path / "data", str(app))
    assert result.returncode == 0, result.stderr
    seen = look(draw(tmp_path / "data", tmp_path), tmp_path)
    assert seen.rows == [
        "calibration.job fit-optuna",
        "calibration.iteration #0",
        "simulation.run sir t0 seed 0",
        "calibration.iteration #1 FAIL",
        "calibration.iteration #2",
        "simulation.run sir t2 seed 2",
    ]


def test_services_of_one_trace_are_named_in_the_legend(tmp_path: Path) -> None:
    trace = "ab" * 16

    def resource_spans(service: str, spans: list[dict[str, object]]) -> dict[str, object]:
        resource = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
        return {"resource": resource, "scopeSpans": [{"spans": spans}]}

    def span(span_id: str, name: str, start_s: int, parent: str = "") -> dict[str, object]:
        return {
            "traceId": trace, "spanId": span_id, "parentSpanId": parent, "name": name,
            "startTimeUnixNano": str(start_s * 10**9), "endTimeUnixNano": str((start_s + 2) * 10**9),
        }  # fmt: skip

    request = {
        "resourceSpans": [
            resource_spans("api", [span("01" * 8, "handle", 10)]),
            resource_spans(
                "worker", [span("02" * 8, "fetch", 10, "01" * 8), span("03" * 8, "parse", 11, "01" * 8)]
            ),
        ]
    }
    source = tmp_path / "in" / "spans.json"
    source.parent.mkdir()
    source.write_text(json.dumps(request) + "\n")
    page = tmp_path / "t.html"
    assert modeltel("timeline", str(source.parent), "-o", str(page)).returncode == 0
    seen = look(page, tmp_path)
    assert seen.rows == ["handle api", "fetch worker", "parse worker"]
    (api, api_colour), (worker, worker_colour) = seen.legend
    assert (api, worker) == ("api · 1 span", "worker · 2 spans") and api_colour != worker_colour
    assert seen.bars == [api_colour, worker_colour, worker_colour]
