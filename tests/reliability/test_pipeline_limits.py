"""Queue and batch sizes that make no sense, and SIGTERM while a flush never ends: never a hang.

- Whatever sizes reach the local copy's processor (a batch larger than the queue, a queue of 0, a
  batch of 0, a schedule delay of 0), the app's span calls return, every span reaches the disk,
  the writer does not spin while idle, and the process exits.
- A SIGTERM that lands while modeltel holds it off (the main thread inside a flush) ends the
  process within ``DEFER_LIMIT_S`` plus the exit, however long that flush would take; a second
  SIGTERM ends it at once.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from otlp_files import base_env, spans

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]

HANG_S = 40.0
"""A child still running after this long is hung (each run below takes about a second)."""
DEFER_LIMIT_S = 5.0
"""How long a SIGTERM waits for the flush it interrupted (modeltel/_internal/sigterm.py)."""


def run_child(code: str, data: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code), *args],
            env=base_env(data, **env),
            capture_output=True,
            text=True,
            timeout=HANG_S,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running after {HANG_S:.0f} s: hung") from None


CONFIGURED = """
import sys
import modeltel
from opentelemetry import trace
modeltel.configure(**{sys.argv[1]: int(sys.argv[2])})
tracer = trace.get_tracer("limits")
for i in range(3000):
    with tracer.start_as_current_span("work"):
        pass
"""


@pytest.mark.parametrize(
    ("override", "value"), [("bsp_max_export_batch_size", 4096), ("bsp_max_queue_size", 0)]
)
def test_configure_with_sizes_that_make_no_sense(tmp_path: Path, override: str, value: int) -> None:
    result = run_child(CONFIGURED, tmp_path, override, str(value))
    assert result.returncode == 0, result.stderr
    assert len(spans(tmp_path)) == 3000


DIRECT = """
import sys, time
from pathlib import Path
from opentelemetry.sdk.trace import TracerProvider
from modeltel._internal.config import Settings
from modeltel._internal.export.jsonl import JsonlSpanExporter
from modeltel._internal.export.processor import BackPressureSpanProcessor

exporter = JsonlSpanExporter(Settings(data_dir=Path(sys.argv[1]), service_name="limits"))
processor = BackPressureSpanProcessor(exporter, **{sys.argv[2]: int(sys.argv[3])})
provider = TracerProvider()
provider.add_span_processor(processor)
tracer = provider.get_tracer("limits")
for i in range(3000):
    tracer.start_span("work").end()
assert processor.force_flush(10_000)
idle = time.process_time()
time.sleep(1.0)
print(time.process_time() - idle)  # CPU the process used while the app did nothing
provider.shutdown()
"""


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("max_export_batch_size", 4096),
        ("max_queue_size", 0),
        ("max_queue_size", -5),
        ("max_export_batch_size", 0),
        ("schedule_delay_millis", 0),
        ("schedule_delay_millis", -1),
    ],
)
def test_processor_with_sizes_that_make_no_sense(
    tmp_path: Path, argument: str, value: int, figures: Any
) -> None:
    begun = time.monotonic()
    result = run_child(DIRECT, tmp_path, str(tmp_path), argument, str(value))
    took = time.monotonic() - begun
    assert result.returncode == 0, result.stderr
    assert len(spans(tmp_path)) == 3000
    idle_cpu_s = float(result.stdout.strip())
    assert idle_cpu_s < 0.1, "the writer spins while there is nothing to write"
    figures(
        fault=f"local copy's processor given {argument}={value}",
        runs=1,
        sent=3000,
        on_disk=3000,
        dropped=0,
        note=f"process {took:.2f} s; {idle_cpu_s * 1000:.1f} ms CPU in 1 s idle",
    )


HELD = """
import sys, threading
import modeltel
from modeltel._internal import sigterm
from opentelemetry import trace
modeltel.configure()
with trace.get_tracer("held").start_as_current_span("before"):
    pass
with sigterm.deferred():  # as a flush that never returns would hold it
    print("held", flush=True)  # inside: a SIGTERM sent on this line is deferred, not before it
    threading.Event().wait()
"""


def _held_child(data: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HELD)],
        env=base_env(data),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == "held\n"
    return child


def _wait_dead(child: subprocess.Popen[str], timeout: float) -> float:
    begun = time.monotonic()
    try:
        child.wait(timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        raise AssertionError(f"still alive {timeout:.0f} s after SIGTERM") from None
    return time.monotonic() - begun


def test_sigterm_held_off_by_a_flush_that_never_ends_is_not_deferred_forever(
    tmp_path: Path, figures: Any
) -> None:
    child = _held_child(tmp_path)
    child.send_signal(signal.SIGTERM)
    took = _wait_dead(child, DEFER_LIMIT_S + 10)
    assert child.returncode == -signal.SIGTERM
    assert took > DEFER_LIMIT_S - 0.5, "the flush in progress was not given its time"
    assert [s.name for s, _, _ in spans(tmp_path)] == ["before"]  # the shutdown still ran
    figures(
        fault="SIGTERM while a flush never ends",
        runs=1,
        sent=1,
        on_disk=1,
        note=f"ended {took:.1f} s after SIGTERM (deferral limit {DEFER_LIMIT_S:.0f} s)",
    )


def test_a_second_sigterm_ends_a_deferred_process_at_once(tmp_path: Path) -> None:
    child = _held_child(tmp_path)
    child.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert child.poll() is None, "the first SIGTERM must wait for the flush in progress"
    child.send_signal(signal.SIGTERM)
    took = _wait_dead(child, DEFER_LIMIT_S + 10)
    assert child.returncode == -signal.SIGTERM
    assert took < 3.0, f"a second SIGTERM took {took:.1f} s"
    assert [s.name for s, _, _ in spans(tmp_path)] == ["before"]
