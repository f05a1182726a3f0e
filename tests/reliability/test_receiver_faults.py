"""OTLP receivers that go away, come back, or never answer: the host never notices.

Guarantees tested (stated in the README with the figures this suite prints):
- a span call on the app thread never stalls longer than ``STALL_BOUND_S`` (it only enqueues);
- the app sees no exception; the JSONL copy holds every span the app created;
- OTLP export resumes once the receiver is back, and what was lost is counted
  (``modeltel._internal.export.dropped`` by reason: ``queue_full``, ``export_failed``);
- with a receiver that accepts and never answers, shutdown ends within ``shutdown_bound``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from integration.backends import BLACKHOLE_DEBUG_ENV, BlackHole, RotelAgent, free_port
from otlp_files import base_env, metric_requests, spans

pytestmark = [pytest.mark.integration, pytest.mark.reliability, pytest.mark.timeout(300)]

APP = Path(__file__).with_name("fault_app.py")
STALL_BOUND_S = 0.25
"""App-thread bound for one span call while receivers fail (it only appends to a queue)."""


def start_app(tmp_path: Path, threads: int = 1, interval_s: float = 0.001, **env: str) -> tuple[Any, Path]:
    control = tmp_path / "phase"
    control.write_text("before")
    process = subprocess.Popen(
        [sys.executable, str(APP), str(control), str(threads), str(interval_s)],
        env=base_env(tmp_path / "data", **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return process, control


def finish(process: Any, control: Path, timeout: float = 120) -> tuple[dict[str, Any], str, float]:
    control.write_text("stop")
    stopped = time.monotonic()
    out, err = process.communicate(timeout=timeout)
    elapsed = time.monotonic() - stopped
    assert process.returncode == 0, err
    assert "Traceback" not in err, err
    return json.loads(out.strip().splitlines()[-1]), err, elapsed


def dropped_by_reason(data: Path) -> Counter[str]:
    """Last cumulative ``modeltel._internal.export.dropped`` per reason, from the metrics JSONL."""
    found: Counter[str] = Counter()
    for request in metric_requests(data):
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == "modeltel._internal.export.dropped":
                        for point in metric.sum.data_points:
                            kinds = {kv.key: kv.value.string_value for kv in point.attributes}
                            found[kinds["modeltel.drop.reason"]] = point.as_int
    return found


def received_phases(*agents: RotelAgent) -> Counter[str]:
    """Spans per ``phase`` attribute (the root span as ``root``) in the receivers' debug logs."""
    counts: Counter[str] = Counter()
    for agent in agents:
        text = agent.log_text()
        counts.update(re.findall(r"phase: Str\((\w+)\)", text))
        counts["root"] += len(re.findall(r"Name\s+: fault\.run$", text, re.MULTILINE))
    return counts


def test_receiver_down_at_start_down_mid_run_and_back(tmp_path: Path, figures: Any) -> None:
    ports = (free_port(), free_port())
    process, control = start_app(
        tmp_path,
        OTEL_SERVICE_NAME="fault",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{ports[0]}",
        OTEL_EXPORTER_OTLP_TIMEOUT="2000",
        OTEL_BSP_SCHEDULE_DELAY="200",
        OTEL_METRICS_EXPORTER="jsonl",
        OTEL_METRIC_EXPORT_INTERVAL="1000",
    )
    receivers: list[RotelAgent] = []
    try:
        time.sleep(3)  # receiver down at start
        receivers.append(RotelAgent.start(tmp_path / "rotel1", BLACKHOLE_DEBUG_ENV, ("traces",), ports=ports))
        control.write_text("up")
        time.sleep(4)
        control.write_text("down")
        receivers[-1].stop()  # receiver goes down mid-run
        time.sleep(3)
        receivers.append(RotelAgent.start(tmp_path / "rotel2", BLACKHOLE_DEBUG_ENV, ("traces",), ports=ports))
        control.write_text("after")  # and comes back
        time.sleep(5)
        result, _, _ = finish(process, control)
    finally:
        if process.poll() is None:
            process.kill()
        for receiver in receivers:
            receiver.stop()
    local = [s for s, _, _ in spans(tmp_path / "data")]
    created = sum(result["counts"].values()) + 1  # + the fault.run root
    assert len(local) == created, "the JSONL copy must hold every span"
    by_phase = received_phases(*receivers)
    assert by_phase["after"] == result["counts"]["after"], (by_phase, result["counts"])
    assert by_phase["up"] > 0, "export must recover after a receiver that was down at start"
    assert result["max_stall_s"] < STALL_BOUND_S
    lost = dropped_by_reason(tmp_path / "data")
    failed, dropped = lost["export_failed"], lost["queue_full"]
    delivered = sum(by_phase.values())
    assert failed + dropped > 0, lost
    # The books balance: every span the app made was delivered or counted as lost.
    assert delivered + failed + dropped == created
    figures(
        fault="OTLP receiver down at start, down mid-run, back",
        runs=1,
        sent=created,
        on_disk=len(local),
        over_otlp=delivered,
        dropped=failed + dropped,
        max_stall_s=result["max_stall_s"],
        note=f"export failed {failed}, queue_full {dropped}",
    )


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_receiver_that_never_answers(tmp_path: Path, protocol: str, figures: Any) -> None:
    hole = BlackHole()
    timeout_ms = 1000
    try:
        process, control = start_app(
            tmp_path,
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{hole.port}",
            OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
            OTEL_EXPORTER_OTLP_TIMEOUT=str(timeout_ms),
            OTEL_BSP_SCHEDULE_DELAY="200",
            OTEL_METRIC_EXPORT_INTERVAL="1000",
        )
        time.sleep(4)
        result, _, shutdown_s = finish(process, control)
    finally:
        hole.close()
    local = [s for s, _, _ in spans(tmp_path / "data")]
    created = sum(result["counts"].values()) + 1
    assert len(local) == created
    assert result["max_stall_s"] < STALL_BOUND_S
    assert len(hole.connections) >= 1, "the exporter never even connected"
    # Shutdown drains at most queue/batch batches, each bounded by the export timeout (+ the
    # metric reader's final export, also bounded): stated bound 4 x timeout + 10 s of slack.
    shutdown_bound = 4 * timeout_ms / 1000 + 10
    assert shutdown_s < shutdown_bound
    lost = sum(dropped_by_reason(tmp_path / "data").values())
    assert lost == created  # nothing delivered, everything counted
    figures(
        fault=f"OTLP receiver accepts, never answers ({protocol})",
        runs=1,
        sent=created,
        on_disk=len(local),
        over_otlp=0,
        dropped=lost,
        max_stall_s=result["max_stall_s"],
        note=f"shutdown {shutdown_s:.1f} s (bound {shutdown_bound:.0f} s)",
    )
