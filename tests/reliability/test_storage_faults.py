"""A disk that stops answering (every write sleeps 8 s, or never returns): the app barely notices.

Guarantees tested (the README states them with the figures this suite prints):
- a span call waits for a stalled writer at most ``PRESSURE_TIMEOUT_S``, and only once: after
  that the spans that do not fit in the queue are dropped and counted, without waiting again;
- normal exit and SIGTERM end within ``EXIT_BOUND_S``, even with writes that never return, and
  one line on stderr says how many spans were not written; what is on disk plus that count is
  every span the app made;
- a SIGTERM that lands while the main thread is stuck in a flush to that disk still ends the
  process, within the deferral limit plus the exit bound.
"""

from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import pytest

from otlp_files import base_env, spans

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]

APP = Path(__file__).with_name("storage_app.py")
PRESSURE_TIMEOUT_S = 5.0
"""How long a span call may wait for room in the local copy's queue (export/processor.py)."""
EXIT_BOUND_S = 5.0 + 3.0
"""The local files get 5 s at exit (README); 3 s of slack for a loaded 2-core machine."""
DEFER_LIMIT_S = 5.0
"""How long a SIGTERM waits for the flush it interrupted (modeltel/_internal/sigterm.py)."""
SPANS = 6000
"""Three queues' worth: the app runs into back-pressure and on past it."""
LOST = re.compile(r"^modeltel: spans lost: ([^;\n]*)", re.MULTILINE)  # the spans part of the line


class Lines:
    """The child's stdout lines, read on a thread so a hung child is a failed wait, not a hung test."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))

    def next(self, timeout: float, what: str) -> str:
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no {what} within {timeout:.0f} s: the app hung") from None


def start(data: Path, mode: str, count: int, then: str) -> tuple[subprocess.Popen[str], Lines]:
    process = subprocess.Popen(
        [sys.executable, str(APP), mode, str(count), then],
        env=base_env(data, OTEL_SERVICE_NAME="disk"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, Lines(process.stdout)


def ended(process: subprocess.Popen[str], timeout: float, what: str) -> tuple[int, str, float]:
    """Wait for the child to end: its exit status, its stderr and how long it took."""
    begun = time.monotonic()
    try:
        code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"{what}: still running {timeout:.0f} s later") from None
    took = time.monotonic() - begun
    assert process.stderr is not None
    return code, process.stderr.read(), took


def lost_by_exporter(err: str) -> dict[str, int]:
    """The one ``modeltel: spans lost: jsonl N (...), otlp M (...)`` line, as counts."""
    lines = LOST.findall(err)
    assert len(lines) == 1, err
    return {name: int(count) for name, count in re.findall(r"(\w+) (\d+) \(", lines[0])}


@pytest.mark.parametrize("mode", ["slow", "hang"])
def test_a_disk_that_stops_answering_costs_one_wait_and_a_bounded_exit(
    tmp_path: Path, mode: str, figures: Any
) -> None:
    process, out = start(tmp_path, mode, SPANS, "exit")
    try:
        result = json.loads(out.next(60, "end of the span loop"))
        code, err, exit_s = ended(process, 60, "exit")
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 0, err
    assert "Traceback" not in err, err
    assert result["slow_calls"] <= 1, result  # waited once, then dropped without waiting again
    assert result["max_stall_s"] < PRESSURE_TIMEOUT_S + 1.0, result
    assert exit_s < EXIT_BOUND_S, f"exit took {exit_s:.1f} s"
    on_disk = len(spans(tmp_path))
    lost = lost_by_exporter(err)
    assert on_disk + lost["jsonl"] == SPANS, (on_disk, lost)
    figures(
        fault=f"disk stops answering ({'every write 8 s' if mode == 'slow' else 'writes never return'})",
        runs=1,
        sent=SPANS,
        on_disk=on_disk,
        dropped=lost["jsonl"],
        max_stall_s=result["max_stall_s"],
        note=f"{result['slow_calls']} span call waited; exit {exit_s:.1f} s (bound {EXIT_BOUND_S:.0f} s)",
    )


def test_sigterm_with_writes_that_never_return(tmp_path: Path, figures: Any) -> None:
    process, out = start(tmp_path, "hang", SPANS, "wait")
    try:
        result = json.loads(out.next(60, "end of the span loop"))
        assert out.next(10, "ready") == "ready"
        process.send_signal(signal.SIGTERM)
        code, err, exit_s = ended(process, 60, "SIGTERM")
    finally:
        if process.poll() is None:
            process.kill()
    assert code == -signal.SIGTERM, err
    assert exit_s < EXIT_BOUND_S, f"SIGTERM took {exit_s:.1f} s to end the process"
    lost = lost_by_exporter(err)
    assert lost["jsonl"] == SPANS, lost  # nothing reached the disk, every span is counted
    figures(
        fault="SIGTERM, writes never return",
        runs=1,
        sent=SPANS,
        on_disk=len(spans(tmp_path)),
        dropped=lost["jsonl"],
        max_stall_s=result["max_stall_s"],
        note=f"ended by SIGTERM in {exit_s:.1f} s (bound {EXIT_BOUND_S:.0f} s)",
    )


def test_sigterm_inside_a_flush_stuck_on_the_disk(tmp_path: Path, figures: Any) -> None:
    # Fewer spans than a batch: the flush itself starts the write that never returns.
    process, out = start(tmp_path, "hang", 100, "flush")
    try:
        out.next(60, "end of the span loop")
        assert out.next(10, "flushing") == "flushing"
        time.sleep(1.0)  # the main thread is inside force_flush, SIGTERM deferred from here
        process.send_signal(signal.SIGTERM)
        bound = DEFER_LIMIT_S + EXIT_BOUND_S
        code, err, exit_s = ended(process, 60, "SIGTERM inside a stuck flush")
    finally:
        if process.poll() is None:
            process.kill()
    assert code == -signal.SIGTERM, err
    assert exit_s < bound, f"SIGTERM took {exit_s:.1f} s to end the process"
    assert lost_by_exporter(err)["jsonl"] == 100
    figures(
        fault="SIGTERM inside a flush stuck on the disk",
        runs=1,
        sent=100,
        on_disk=len(spans(tmp_path)),
        dropped=100,
        note=f"ended by SIGTERM in {exit_s:.1f} s (bound {bound:.0f} s)",
    )
