"""A host application for the fault suite: spans at a steady rate while the test breaks things.

It reads its phase from a control file (the test writes ``before``, ``down``, ``after``,
``stop``), tags every span with it, and times every span call on the app thread. At the end it
prints one JSON line: spans created per phase, the worst app-thread stall, and whether any
exception reached it. Only the OpenTelemetry API and ``modeltel.configure`` are used.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

from opentelemetry import trace

import modeltel


def run(control: Path, threads: int, interval_s: float) -> dict[str, object]:
    modeltel.configure()
    tracer = trace.get_tracer("fault.app")
    counts: dict[str, int] = {}
    stalls: list[float] = []
    lock = threading.Lock()
    state = {"phase": "before"}

    def watch() -> None:
        while state["phase"] != "stop":
            text = control.read_text().strip() if control.exists() else ""
            state["phase"] = text or state["phase"]
            time.sleep(0.02)

    def work() -> None:
        local: dict[str, int] = {}
        worst = 0.0
        while (phase := state["phase"]) != "stop":
            started = time.perf_counter()
            with tracer.start_as_current_span("fault.work", attributes={"phase": phase, "pid": os.getpid()}):
                pass
            worst = max(worst, time.perf_counter() - started)
            local[phase] = local.get(phase, 0) + 1
            if interval_s:
                time.sleep(interval_s)
        with lock:
            for key, value in local.items():
                counts[key] = counts.get(key, 0) + value
            stalls.append(worst)

    watcher = threading.Thread(target=watch)
    watcher.start()
    with tracer.start_as_current_span("fault.run"):
        workers = [threading.Thread(target=work) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    watcher.join()
    return {"counts": counts, "max_stall_s": max(stalls), "pid": os.getpid()}


if __name__ == "__main__":
    control_file, thread_count, interval = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    started = time.monotonic()
    result = run(control_file, thread_count, interval)
    exit_started = time.monotonic()
    result["run_s"] = exit_started - started
    print(json.dumps(result), flush=True)
