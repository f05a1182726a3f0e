"""The reading commands on what ``modeltel demo`` wrote: the numbers they print must be the run's."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from otlp_files import BIN, base_env
from reading_data import modeltel


def demo(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``modeltel demo --data-dir data_dir`` in a clean environment."""
    result = subprocess.run(
        [str(BIN / "modeltel"), "demo", "--data-dir", str(data_dir), *args],
        env=base_env(data_dir),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def one_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("demo") / "data"
    demo(data_dir)
    return data_dir


def test_show_names_the_iteration_that_found_the_best_loss(one_run: Path) -> None:
    shown = modeltel("show", "--data-dir", str(one_run))
    assert shown.returncode == 0, shown.stderr
    best = re.search(r"best loss (\S+) at iteration (\d+)", shown.stdout)
    last_point = re.search(r"trajectory .*→ (\d+):(\S+)", shown.stdout)
    assert best and last_point, shown.stdout
    assert best[2] == last_point[1]  # the trajectory's last improvement is the best iteration
    (job,) = [
        j
        for j in json.loads(modeltel("show", "--data-dir", str(one_run), "--format", "json").stdout)["jobs"]
        if j["kind"] == "calibration"
    ]
    assert int(best[2]) == job["calibration"]["trajectory"][-1]["iteration"]
    assert int(best[2]) == job["calibration"]["iterations_to_best"] - 1
    assert f"after {job['calibration']['iterations_to_best']} of 30 iterations" in shown.stdout


def test_stats_by_model_counts_calls_not_the_job_span(one_run: Path) -> None:
    result = modeltel("stats", "--data-dir", str(one_run), "--by", "model", "--format", "json")
    assert result.returncode == 0, result.stderr
    groups = {g["group"]: g for g in json.loads(result.stdout)["groups"]}
    assert groups["centroid-v1"]["calls"] == 8  # eight inference.predict; inference.job is no call
    assert groups["centroid-v1"]["latency_s"]["count"] == 8
    by_name = json.loads(
        modeltel("stats", "--data-dir", str(one_run), "--by", "name", "--format", "json").stdout
    )["groups"]
    names = {g["group"]: g["calls"] for g in by_name}
    assert names["inference.job"] == 1 and names["inference.predict"] == 8  # --by name keeps every span


def test_stats_with_nothing_to_show_fails_with_its_prefix(one_run: Path) -> None:
    result = modeltel("stats", "--data-dir", str(one_run), "--by", "no.such.key")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == f"modeltel stats: no spans with no.such.key in {one_run}\n"


def test_show_last_agrees_in_number(one_run: Path) -> None:
    result = modeltel("show", "--data-dir", str(one_run), "--last")
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert re.search(r": [\d,]+ spans in 1 file \(", first), first
    single = modeltel("show", "--data-dir", str(one_run), "--last", "--format", "json")
    trace = json.loads(single.stdout)["trace_id"]
    assert trace in first


def run_id_of(result: subprocess.CompletedProcess[str]) -> str:
    match = re.search(r"run id (\S+)", result.stdout)
    assert match, result.stdout
    return match[1]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """One dir, two demo runs: the first in one process, the second with two pool workers."""
    data_dir = tmp_path_factory.mktemp("two") / "data"
    first = run_id_of(demo(data_dir))
    second = run_id_of(demo(data_dir, "--workers", "2"))
    return data_dir, first, second


def _show_json(*args: str) -> dict[str, object]:
    result = modeltel("show", *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    document: dict[str, object] = json.loads(result.stdout)
    return document


def _span_count(document: dict[str, object]) -> int:
    return sum(row["count"] for row in document["spans"])  # type: ignore[attr-defined]


def test_runs_lists_each_run_newest_first(two_runs: tuple[Path, str, str]) -> None:
    data_dir, first, second = two_runs
    result = modeltel("runs", "--data-dir", str(data_dir), "--format", "json")
    assert result.returncode == 0, result.stderr
    runs = json.loads(result.stdout)["runs"]
    assert [r["run_id"] for r in runs] == [second, first]
    assert [r["processes"] for r in runs] == [3, 1]  # the pool's two workers wrote their own files
    assert [r["jobs"] for r in runs] == [3, 3] and [r["status"] for r in runs] == ["ok", "ok"]
    assert [r["services"] for r in runs] == [["modeltel-demo"]] * 2
    for run in runs:
        shown = _show_json("--data-dir", str(data_dir), "--run", run["run_id"])
        assert _span_count(shown) == run["spans"]
        assert shown["run_id"] == run["run_id"]
        errors = sum(row["errors"] for row in shown["spans"])  # type: ignore[attr-defined]
        assert errors == run["errors"] == 2  # the failing sweep run and its phase
        assert run["start_unix_nano"] < run["end_unix_nano"]
    table = modeltel("runs", "--data-dir", str(data_dir))
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0] == f"{data_dir}: 2 runs"
    assert lines[2].split()[:3] == ["run", "id", "services"]
    assert lines[3].split()[0] == second and lines[4].split()[0] == first


def test_reading_commands_select_a_run(two_runs: tuple[Path, str, str], tmp_path: Path) -> None:
    data_dir, first, second = two_runs
    together = modeltel("show", "--data-dir", str(data_dir))
    assert together.returncode == 0
    assert together.stderr == (
        f"modeltel show: note: 2 runs in {data_dir}, read together; "
        "pick one with --last-run or --run ID (`modeltel runs` lists them)\n"
    )
    last = _show_json("--data-dir", str(data_dir), "--last-run")
    assert last["run_id"] == second
    by_prefix = _show_json("--data-dir", str(data_dir), "--run", first[:8])
    assert by_prefix["run_id"] == first
    both = _show_json("--data-dir", str(data_dir))
    assert _span_count(both) == _span_count(last) + _span_count(by_prefix)
    jobs = by_prefix["jobs"]
    assert [j["run_id"] for j in jobs] == [first] * 3  # type: ignore[attr-defined]
    assert "note:" not in modeltel("show", "--data-dir", str(data_dir), "--last-run").stderr

    stats = json.loads(
        modeltel("stats", "--data-dir", str(data_dir), "--run", first, "--format", "json").stdout
    )
    groups = {g["group"]: g["calls"] for g in stats["groups"]}
    assert groups["sir"] == 81 and groups["centroid-v1"] == 8

    exported = tmp_path / "spans.json"
    result = modeltel(
        "export", "--data-dir", str(data_dir), "--last-run", "--format", "json", "-o", str(exported)
    )
    assert result.returncode == 0, result.stderr
    assert f"wrote {_span_count(last):,} spans" in result.stderr

    page = tmp_path / "trace.html"
    drawn = modeltel("timeline", "--data-dir", str(data_dir), "--run", first, "-o", str(page))
    assert drawn.returncode == 0, drawn.stderr
    last_of_first = _show_json("--data-dir", str(data_dir), "--run", first, "--last")["trace_id"]
    assert f"of trace {last_of_first} drawn" in drawn.stderr

    unknown = modeltel("show", "--data-dir", str(data_dir), "--run", "nosuchrun")
    assert unknown.returncode == 1
    assert unknown.stderr == f"modeltel show: no spans of run nosuchrun in {data_dir}\n"


def test_a_line_mixing_runs_is_split_by_resource(two_runs: tuple[Path, str, str], tmp_path: Path) -> None:
    """A Collector batches resources of several processes into one request line: each run keeps
    only its own spans of that line."""
    data_dir, first, second = two_runs
    requests: dict[str, list[dict[str, object]]] = {first: [], second: []}
    for path in sorted((data_dir / "traces").glob("*/*.jsonl")):
        for text in path.read_text().splitlines():
            request = json.loads(text)
            (resource_spans,) = request["resourceSpans"]
            keys = {a["key"]: a["value"] for a in resource_spans["resource"]["attributes"]}
            requests[keys["modeltel.run.id"]["stringValue"]].append(resource_spans)
    merged = {"resourceSpans": [*requests[first], *requests[second]]}
    collector = tmp_path / "collector-out.json"
    collector.write_text(json.dumps(merged, separators=(",", ":")) + "\n")
    for run in (first, second):
        alone = _span_count(_show_json("--data-dir", str(data_dir), "--run", run))
        mixed = _span_count(_show_json(str(collector), "--run", run))
        assert mixed == alone
        stats = json.loads(
            modeltel("stats", str(collector), "--run", run, "--by", "name", "--format", "json").stdout
        )
        assert sum(g["calls"] for g in stats["groups"]) == alone
    runs = json.loads(modeltel("runs", str(collector), "--format", "json").stdout)["runs"]
    assert {r["run_id"]: r["spans"] for r in runs} == {
        run: _span_count(_show_json("--data-dir", str(data_dir), "--run", run)) for run in (first, second)
    }


def test_show_counts_a_jobs_spans_in_every_process(two_runs: tuple[Path, str, str]) -> None:
    data_dir, _, second = two_runs
    document = _show_json("--data-dir", str(data_dir), "--run", second)
    jobs = {j["job_name"]: j for j in document["jobs"]}  # type: ignore[attr-defined]
    assert jobs["sir-sweep"]["span_count"] < 147  # the job process's own spans only
    assert (jobs["sir-sweep"]["spans_in_run"], jobs["fit-sir"]["spans_in_run"]) == (147, 181)
    table = modeltel("show", "--data-dir", str(data_dir), "--run", second).stdout
    assert re.search(
        r"^sir-sweep\s+simulation\s+modeltel-demo\s+\S+ \S+\s+\S+ \S+\s+ok\s+147$", table, re.M
    ), table


def test_one_trace_needs_no_run_note(two_runs: tuple[Path, str, str]) -> None:
    data_dir, _, second = two_runs
    result = modeltel("show", "--data-dir", str(data_dir), "--last")
    assert result.returncode == 0 and result.stderr == ""
    assert (
        _show_json("--data-dir", str(data_dir), "--last")["trace_id"]
        == _show_json("--data-dir", str(data_dir), "--run", second, "--last")["trace_id"]
    )


def test_otlp_export_of_one_run_keeps_its_spans_and_metrics(
    two_runs: tuple[Path, str, str], tmp_path: Path
) -> None:
    data_dir, first, _ = two_runs
    out = tmp_path / "run.jsonl"
    result = modeltel(
        "export", "--data-dir", str(data_dir), "--run", first, "--format", "otlp-json", "-o", str(out)
    )
    assert result.returncode == 0, result.stderr
    runs: set[str] = set()
    spans = 0
    for line in out.read_text().splitlines():
        request = json.loads(line)
        for block in request.get("resourceSpans", []) + request.get("resourceMetrics", []):
            keys = {a["key"]: a["value"] for a in block["resource"]["attributes"]}
            runs.add(keys["modeltel.run.id"]["stringValue"])
        spans += sum(len(s["spans"]) for b in request.get("resourceSpans", []) for s in b["scopeSpans"])
    assert runs == {first}
    assert spans == _span_count(_show_json("--data-dir", str(data_dir), "--run", first))
    assert '"resourceMetrics"' in out.read_text()
