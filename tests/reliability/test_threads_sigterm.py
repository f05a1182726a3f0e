"""SIGTERM loses nothing finished, whichever thread configured telemetry."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from otlp_files import base_env, spans

POOL = """
import sys, threading
from concurrent.futures import ThreadPoolExecutor
from modeltel import simulation
def work(i):
    with simulation.run(model="m", seed=i):
        pass
with ThreadPoolExecutor(4) as pool:
    list(pool.map(work, range(300)))
print("ready", flush=True)
threading.Event().wait()
"""

CONFIGURE = """
import sys, threading
import modeltel
from opentelemetry import trace
def work():
    modeltel.configure()
    tracer = trace.get_tracer("t")
    for i in range(100):
        with tracer.start_as_current_span("w"):
            pass
threads = [threading.Thread(target=work) for _ in range(3)]
for t in threads: t.start()
for t in threads: t.join()
print("ready", flush=True)
threading.Event().wait()
"""


@pytest.mark.parametrize(("app", "name", "count"), [(POOL, "simulation.run", 300), (CONFIGURE, "w", 300)])
def test_sigterm_after_configuring_in_a_thread(tmp_path: Path, app: str, name: str, count: int) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", app], env=base_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"ready\n"
        child.send_signal(signal.SIGTERM)
        assert child.wait(30) == -signal.SIGTERM
    finally:
        child.kill()
        child.wait()
    assert len([s for s, _, _ in spans(tmp_path) if s.name == name]) == count
