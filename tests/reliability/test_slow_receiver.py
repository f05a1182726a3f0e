"""An OTLP/HTTP receiver that reads each request whole, then answers one byte per second.

Every socket read succeeds, so a per-read timeout never fires: only a deadline on the whole
request ends it. Guarantees tested (stated in the README with the figures this suite prints):
- the app's books balance: every span was answered by the receiver or counted as dropped
  (``modeltel._internal.export.dropped``; the one-line report on stderr says the same);
- shutdown stays inside the bound of the receiver that never answers (test_receiver_faults.py);
- ``modeltel replay`` to that receiver fails within its timeout (plus its retries) instead of
  waiting for the trickle.
"""

from __future__ import annotations

import contextlib
import gzip
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otlp_files import BIN, base_env, spans
from reliability.test_receiver_faults import STALL_BOUND_S, dropped_by_reason, finish, start_app

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n"
"""77 bytes: 77 s at one byte per second, far beyond any timeout below."""
LOST = re.compile(r"^modeltel: spans lost: ([^;\n]*)", re.MULTILINE)  # the spans part of the line


class SlowReceiver:
    """OTLP/HTTP on 127.0.0.1: keeps every request body, then sends :data:`ANSWER` a byte a second.

    ``received`` holds ``(path, body)`` of every request read whole (un-gzipped); ``answered``
    those whose answer went out in full. Stopped by :meth:`close`, which closes every socket.
    """

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.received: list[tuple[str, bytes]] = []
        self.answered: list[tuple[str, bytes]] = []
        self._stop = threading.Event()
        self._connections: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        self.server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                connection, _ = self.server.accept()
            except OSError:
                continue
            self._connections.append(connection)
            thread = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, connection: socket.socket) -> None:
        reader = connection.makefile("rb")
        try:
            while not self._stop.is_set():
                request = reader.readline()
                if not request:
                    return
                headers: dict[str, str] = {}
                while (line := reader.readline()) not in (b"\r\n", b"\n", b""):
                    key, _, value = line.decode("latin-1").partition(":")
                    headers[key.strip().lower()] = value.strip()
                body = reader.read(int(headers.get("content-length", "0")))
                if headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                path = request.split()[1].decode()
                self.received.append((path, body))
                for byte in ANSWER:
                    connection.sendall(bytes([byte]))
                    if self._stop.wait(1.0):
                        return
                self.answered.append((path, body))
        except OSError:
            return  # the client gave up and closed: the answer never went out in full

    def spans_in(self, bodies: list[tuple[str, bytes]]) -> int:
        count = 0
        for path, body in bodies:
            if path == "/v1/traces":
                request = ExportTraceServiceRequest.FromString(body)
                count += sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        return count

    def close(self) -> None:
        self._stop.set()
        self.server.close()
        for connection in self._connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()
        for thread in self._threads:
            thread.join(5)


def test_receiver_that_answers_one_byte_per_second(tmp_path: Path, figures: Any) -> None:
    receiver = SlowReceiver()
    timeout_ms = 2000
    try:
        process, control = start_app(
            tmp_path,
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_EXPORTER_OTLP_TIMEOUT=str(timeout_ms),
            OTEL_BSP_SCHEDULE_DELAY="200",
            OTEL_METRIC_EXPORT_INTERVAL="1000",
        )
        try:
            time.sleep(4)
            result, err, shutdown_s = finish(process, control)
        finally:
            if process.poll() is None:
                process.kill()
        answered = receiver.spans_in(receiver.answered)
        received = receiver.spans_in(receiver.received)
    finally:
        receiver.close()
    created = sum(result["counts"].values()) + 1
    assert len(spans(tmp_path / "data")) == created  # the local copy is untouched by all this
    assert result["max_stall_s"] < STALL_BOUND_S
    assert received > 0, "the exporter never sent a request"
    lost = sum(dropped_by_reason(tmp_path / "data").values())
    assert answered + lost == created, (answered, lost, created)  # delivered or counted, each span
    (line,) = LOST.findall(err)
    reported = dict((name, int(n)) for name, n in re.findall(r"(\w+) (\d+) \(", line))
    assert reported["otlp"] == lost, (line, lost)
    bound = 4 * timeout_ms / 1000 + 10  # as for the receiver that never answers
    assert shutdown_s < bound, f"shutdown took {shutdown_s:.1f} s"
    figures(
        fault="OTLP/HTTP receiver answers 1 byte/s",
        runs=1,
        sent=created,
        on_disk=created,
        over_otlp=answered,
        dropped=lost,
        max_stall_s=result["max_stall_s"],
        note=f"shutdown {shutdown_s:.1f} s (bound {bound:.0f} s); {received} spans reached it unanswered",
    )


APP = """
from opentelemetry import trace
import modeltel
modeltel.configure()
tracer = trace.get_tracer("replayed")
for i in range(600):
    with tracer.start_as_current_span("work"):
        pass
"""


@pytest.mark.parametrize("retries", [0, 1])
def test_replay_to_a_receiver_that_answers_one_byte_per_second(
    tmp_path: Path, retries: int, figures: Any
) -> None:
    data = tmp_path / "data"
    made = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(APP)], env=base_env(data), capture_output=True, timeout=60
    )
    assert made.returncode == 0, made.stderr
    timeout_s = 2.0
    # Each attempt is cut at the timeout; the retries wait 1 s (±20 %) in between.
    bound = (retries + 1) * timeout_s + retries * 1.2 + 4.0  # + 4 s to start the interpreter
    receiver = SlowReceiver()
    try:
        command = [str(BIN / "modeltel"), "replay", "--data-dir", str(data), "--signals", "traces"]
        command += ["--endpoint", receiver.endpoint, "--protocol", "http/protobuf", "--retries", str(retries)]
        begun = time.monotonic()
        try:
            replay = subprocess.run(
                command,
                env=base_env(data, OTEL_EXPORTER_OTLP_TIMEOUT=str(int(timeout_s * 1000))),
                capture_output=True,
                text=True,
                timeout=60,
            )
        except subprocess.TimeoutExpired:
            raise AssertionError("replay still waiting for the receiver after 60 s") from None
        took = time.monotonic() - begun
    finally:
        receiver.close()
    assert replay.returncode == 1, replay.stderr
    assert f"within {timeout_s:g} s" in replay.stderr, replay.stderr
    assert took < bound, f"replay took {took:.1f} s"
    figures(
        fault=f"replay to a receiver answering 1 byte/s (--retries {retries})",
        runs=1,
        sent=600,
        over_otlp=0,
        note=f"exit 1 after {took:.1f} s (bound {bound:.0f} s)",
    )
