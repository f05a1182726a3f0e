"""``modeltel demo``: runs in well under 20 s, writes valid OTLP/JSON, prints what it wrote."""

from __future__ import annotations

import collections
import json
import re
import subprocess
import time
from pathlib import Path

from modeltel._internal import semconv
from otlp_files import BIN, attrs, base_env, jsonl_files, metric_requests, spans, summaries


def _demo(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "modeltel"), "demo", *args],
        env=base_env(tmp_path / "ignored", **env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_demo_writes_files_and_prints_the_summary_read_from_them(tmp_path: Path) -> None:
    data = tmp_path / "out"
    started = time.perf_counter()
    result = _demo(tmp_path, "--data-dir", str(data))
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    assert elapsed < 20, elapsed
    assert not (tmp_path / "ignored").exists()  # --data-dir wins over MODELTEL_DATA_DIR

    exported = spans(data)  # parsed with the official OTLP protobuf messages
    counts = collections.Counter(s.name for s, _, _ in exported)
    # 81 sweep runs (one fails) and one batch run per calibration evaluation
    assert counts["simulation.run"] == 81 + 30 and counts["calibration.iteration"] == 30
    assert counts["inference.predict"] == 8 and counts["chat demo-llm-8b"] == 4
    service = {
        kv.value.string_value for _, r, _ in exported for kv in r.attributes if kv.key == "service.name"
    }
    assert service == {"modeltel-demo"}

    table = {}
    for line in result.stdout.splitlines():
        match = re.match(r"^(\S+(?: demo-llm-8b)?)\s+(\d+)\s+(\d+)\s+[\d.]+", line)
        if match:
            table[match[1]] = (int(match[2]), int(match[3]))
    for name, count in counts.items():
        errors = sum(1 for s, _, _ in exported if s.name == name and s.status.code == 2)
        assert table[name] == (count, errors), name
    assert table["simulation.run"] == (111, 1)

    jobs = [s for s in summaries(data) if s["kind"] != "process"]
    assert [(j["kind"], j["job_name"]) for j in jobs] == [
        ("simulation", "sir-sweep"),
        ("inference", "classifier-nightly"),
        ("calibration", "fit-sir"),
    ]
    for job in jobs:
        assert re.search(
            rf"^{job['kind']}\s+{job['job_name']}\s+ok\s+1\s+{job['span_count']}\s", result.stdout, re.M
        )
    fit = jobs[2]["calibration"]
    assert fit["iterations"] == 30 and fit["best_loss"] < 1e-4
    assert fit["trajectory"][-1]["best_loss"] == fit["best_loss"]
    assert 0 < jobs[1]["quality"]["reject_rate"] < 0.2
    assert f"best loss {fit['best_loss']:.3g}" in result.stdout

    metric_names = {
        m.name
        for r in metric_requests(data)
        for rm in r.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert {
        semconv.METRIC_SIMULATION_RUN_DURATION,
        semconv.METRIC_SIMULATION_CACHE_REQUESTS,
        semconv.METRIC_CALIBRATION_BEST_LOSS,
        semconv.METRIC_INFERENCE_CONFIDENCE,
        semconv.GEN_AI_CLIENT_TOKEN_USAGE,
    } <= metric_names
    assert len(jsonl_files(data, "traces")) == 1


def test_prompts_are_not_written_unless_content_capture_is_on(tmp_path: Path) -> None:
    off, on = tmp_path / "off", tmp_path / "on"
    assert _demo(tmp_path, "--data-dir", str(off)).returncode == 0
    assert _demo(tmp_path, "--data-dir", str(on), MODELTEL_CAPTURE_CONTENT="true").returncode == 0
    text_off = jsonl_files(off, "traces")[0].read_text()
    text_on = jsonl_files(on, "traces")[0].read_text()
    assert "Summarise the calibration" not in text_off
    assert "Summarise the calibration" in text_on


def test_workers_put_every_worker_in_the_calibration_trace_that_show_last_shows(tmp_path: Path) -> None:
    data = tmp_path / "out"
    result = _demo(tmp_path, "--data-dir", str(data), "--workers", "2")
    assert result.returncode == 0, result.stderr
    files = jsonl_files(data, "traces")
    assert len(files) == 3  # the parent and its two workers, each its own file
    exported = spans(data)
    by_id = {s.span_id: s for s, _, _ in exported}
    # service.instance.id is one per process: it says which process wrote a span
    writer = {s.span_id: attrs(r.attributes)["service.instance.id"] for s, r, _ in exported}
    parent = writer[next(s.span_id for s, _, _ in exported if s.name == "calibration.job")]
    runs = [s for s, _, _ in exported if s.name == "simulation.run"]
    assert len(runs) == 81 + 60 and len({s.span_id for s in runs}) == len(runs)  # none lost, none twice
    batch_runs = [s for s in runs if by_id[s.parent_span_id].name == "calibration.evaluate"]
    assert len(batch_runs) == 60  # two batches per evaluation, each a child of its evaluate span
    workers = {writer[s.span_id] for s in batch_runs}
    assert len(workers) == 2 and parent not in workers

    shown = subprocess.run(
        [str(BIN / "modeltel"), "show", "--last", "--data-dir", str(data), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    rows = {row["name"]: row["count"] for row in report["spans"]}
    assert rows["calibration.iteration"] == 30 and rows["simulation.run"] == 60
    job = next(s for s, _, _ in exported if s.name == "calibration.job")
    assert report["trace_id"] == job.trace_id.hex()


def test_too_many_workers_is_a_usage_error(tmp_path: Path) -> None:
    result = _demo(tmp_path, "--workers", "65")
    assert result.returncode == 2
    assert "--workers 65" in result.stderr
    assert not (tmp_path / "ignored").exists()


def test_disabled_telemetry_is_a_config_error(tmp_path: Path) -> None:
    result = _demo(tmp_path, "--data-dir", str(tmp_path / "d"), MODELTEL_ENABLED="false")
    assert result.returncode == 2 and "disabled" in result.stderr
    assert not (tmp_path / "d").exists()


def test_bad_environment_is_a_config_error_naming_the_variable(tmp_path: Path) -> None:
    result = _demo(tmp_path, OTEL_TRACES_EXPORTER="bogus")
    assert result.returncode == 2
    assert "OTEL_TRACES_EXPORTER" in result.stderr and "bogus" in result.stderr


def test_with_workers_the_jobs_count_every_process_and_the_counts_agree(tmp_path: Path) -> None:
    result = _demo(tmp_path, "--data-dir", "out", "--workers", "2")  # relative: printed absolute
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # the job lines count the job's spans in the workers' files too, not the job process's only
    sweep = next(line for line in out.splitlines() if line.startswith("simulation "))
    assert "81 runs (16 from cache), 1 failed" in sweep, out
    fit = next(line for line in out.splitlines() if line.startswith("calibration "))
    assert "30 iterations, 60 evaluation batches" in fit, out
    assert re.search(r"^simulation\s+sir-sweep\s+ok\s+3\s+147\s", out, re.M), out
    assert re.search(r"^calibration\s+fit-sir\s+ok\s+3\s+181\s", out, re.M), out
    # the span table's count is said: what each part of it is
    assert re.search(r"^simulation\.run\s+141\s+1\s", out, re.M), out
    assert "simulation.run 141 = 81 runs of sir-sweep + 60 evaluation batches of fit-sir" in out, out
    assert "most missing feature tail_cm (2.0%)" in out, out
    paths = re.findall(r"^  (?:traces|summaries):\s+(\S+)$", out, re.M)
    assert len(paths) == 4 and all(Path(p).is_absolute() and Path(p).exists() for p in paths), out
    data = (tmp_path / "out").resolve()
    tail = out.rstrip().splitlines()[-6:]
    assert tail[0] == "next:"
    assert f"  modeltel show --last --data-dir {data}" in "\n".join(tail)
    assert f"  modeltel timeline -o trace.html --data-dir {data}" in "\n".join(tail)
