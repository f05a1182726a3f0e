"""Crashes, full disks, vanishing directories and heavy concurrency: what is on disk stays whole."""

from __future__ import annotations

import json
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from integration.backends import BlackHole
from otlp_files import BIN, base_env, jsonl_files, spans

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(600)]

APP = Path(__file__).with_name("fault_app.py")


def launch(data: Path, control: Path, threads: int, interval_s: float = 0.0, **env: str) -> Any:
    control.write_text("before")
    return subprocess.Popen(
        [sys.executable, str(APP), str(control), str(threads), str(interval_s)],
        env=base_env(data, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(process: Any, control: Path, timeout: float = 120) -> tuple[dict[str, Any], str]:
    control.write_text("stop")
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err
    assert "Traceback" not in err, err
    return json.loads(out.strip().splitlines()[-1]), err


def lines_of(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Parsed complete lines, and how many lines were torn (only the unterminated last may be)."""
    raw = path.read_bytes()
    parts = raw.split(b"\n")
    complete, tail = parts[:-1], parts[-1]
    parsed = [json.loads(line) for line in complete]  # a torn line in the middle fails here
    return parsed, int(bool(tail))


def span_count(lines: list[dict[str, Any]]) -> int:
    return sum(len(ss["spans"]) for line in lines for rs in line["resourceSpans"] for ss in rs["scopeSpans"])


def _kill_once(tmp: Path, seed: int) -> tuple[int, int, int]:
    rng = random.Random(seed)
    data, control = tmp / f"d{seed}", tmp / f"c{seed}"
    process = launch(
        data, control, threads=2, OTEL_BSP_SCHEDULE_DELAY="2", OTEL_BSP_MAX_EXPORT_BATCH_SIZE="64"
    )
    deadline = time.monotonic() + 30
    while not jsonl_files(data, "traces") and time.monotonic() < deadline:
        time.sleep(0.01)  # writing has begun: now kill at a random point of it
    time.sleep(rng.uniform(0.0, 0.8))
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    files = jsonl_files(data, "traces")
    whole = torn = 0
    for path in files:
        parsed, torn_here = lines_of(path)
        whole += span_count(parsed)
        torn += torn_here
    shown = subprocess.run(
        [str(BIN / "modeltel"), "show", str(data), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=base_env(data),
    )
    assert shown.returncode == 0, shown.stderr
    if torn:
        (path,) = files
        line_number = len(path.read_bytes().split(b"\n"))
        assert f"{path.name}:{line_number}" in shown.stderr, shown.stderr
    return whole, torn, len(files)


def test_sigkill_at_random_points_loses_at_most_the_last_line(tmp_path: Path, figures: Any) -> None:
    runs = 50
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda seed: _kill_once(tmp_path, seed), range(runs)))
    assert all(torn <= 1 for _, torn, _ in results)
    assert all(files == 1 for _, _, files in results)
    figures(
        fault="SIGKILL mid-write, random points",
        runs=runs,
        on_disk=sum(w for w, _, _ in results),
        note=f"{sum(t for _, t, _ in results)} torn last lines, all skipped by the reader with file:line",
    )


def test_disk_full_warns_once_and_the_app_runs_on(tmp_path: Path, figures: Any) -> None:
    limit = 256 * 1024

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    control = tmp_path / "c"
    control.write_text("before")
    process = subprocess.Popen(
        [sys.executable, str(APP), str(control), "2", "0.0002"],
        env=base_env(tmp_path / "d"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=small_files,
    )
    time.sleep(3)
    result, err = stop(process, control)
    created = sum(result["counts"].values()) + 1
    (path,) = jsonl_files(tmp_path / "d", "traces")
    assert path.stat().st_size <= limit
    parsed, torn = lines_of(path)
    assert torn <= 1 and span_count(parsed) < created
    warnings = [line for line in err.splitlines() if "cannot write" in line]
    assert 1 <= len(warnings) <= 2, err  # once for traces (and once for the summary line)
    assert "File too large" in warnings[0]
    figures(
        fault="disk full (RLIMIT_FSIZE 256 KiB)",
        runs=1,
        sent=created,
        on_disk=span_count(parsed),
        dropped=created - span_count(parsed),
        max_stall_s=result["max_stall_s"],
        note=f"{len(warnings)} warning(s), app exit 0",
    )


def test_data_dir_deleted_mid_run(tmp_path: Path, figures: Any) -> None:
    data, control = tmp_path / "d", tmp_path / "c"
    process = launch(data, control, threads=1, interval_s=0.0005, OTEL_BSP_SCHEDULE_DELAY="50")
    time.sleep(2.5)
    shutil.rmtree(data)
    control.write_text("after")
    time.sleep(2)
    result, err = stop(process, control)
    assert "deleted while in use" in err
    after = [s for s, _, _ in spans(data) if any(kv.value.string_value == "after" for kv in s.attributes)]
    assert len(after) == result["counts"]["after"]
    figures(
        fault="data dir deleted mid-run",
        runs=1,
        sent=sum(result["counts"].values()) + 1,
        on_disk=len(spans(data)),
        max_stall_s=result["max_stall_s"],
        note="recreated with one warning; every later span kept",
    )


def test_sixteen_threads_in_four_processes_for_ten_seconds(tmp_path: Path, figures: Any) -> None:
    data = tmp_path / "d"
    controls = [tmp_path / f"c{i}" for i in range(4)]
    processes = [launch(data, control, threads=16) for control in controls]
    time.sleep(10)
    results = [stop(p, c)[0] for p, c in zip(processes, controls, strict=True)]
    files = jsonl_files(data, "traces")
    assert len(files) == 4
    ids: set[str] = set()
    per_pid: dict[int, int] = {}
    for path in files:
        parsed, torn = lines_of(path)
        assert torn == 0
        pid = int(path.stem.rsplit("-", 2)[1])
        per_pid[pid] = span_count(parsed)
        for line in parsed:
            for rs in line["resourceSpans"]:
                for ss in rs["scopeSpans"]:
                    ids.update(s["spanId"] for s in ss["spans"])
    for result in results:
        assert per_pid[result["pid"]] == sum(result["counts"].values()) + 1
    total = sum(per_pid.values())
    assert len(ids) == total  # no span written twice
    figures(
        fault="16 threads x 4 processes, 10 s",
        runs=1,
        sent=total,
        on_disk=total,
        dropped=0,
        max_stall_s=max(r["max_stall_s"] for r in results),
        note="no torn or interleaved line",
    )


def test_memory_stays_bounded_against_a_stalled_exporter(tmp_path: Path, figures: Any) -> None:
    code = """
import modeltel
from opentelemetry import trace
modeltel.configure()
tracer = trace.get_tracer("bound")
for i in range(1_000_000):
    with tracer.start_as_current_span("tight") as s:
        s.set_attribute("i", i)
# VmHWM, not ru_maxrss: Linux carries the parent's high-water mark into ru_maxrss across
# fork + exec, so a child of a grown pytest process would report pytest's peak.
print(next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) // 1024)
"""
    # A receiver that accepts and never answers holds the exporter in one export for its whole
    # timeout; JSONL is off, so the OTLP queue is the only buffer and must stay at its bound.
    hole = BlackHole()
    try:
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=500,
            env=base_env(
                tmp_path,
                MODELTEL_JSONL="false",
                OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{hole.port}",
                OTEL_EXPORTER_OTLP_TIMEOUT="5000",
                OTEL_METRICS_EXPORTER="none",
            ),
        )
    finally:
        hole.close()
    assert result.returncode == 0, result.stderr[-2000:]
    rss_mib = int(result.stdout.strip().splitlines()[-1])
    assert rss_mib < 150  # about 85 MiB measured here: the interpreter, the SDK, gRPC, a full queue
    figures(
        fault="1,000,000 spans, stalled OTLP receiver",
        runs=1,
        sent=1_000_000,
        max_rss_mib=rss_mib,
        note="receiver accepts, never answers; queue bounded at OTEL_BSP_MAX_QUEUE_SIZE",
    )
