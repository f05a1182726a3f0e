"""A real OTLP/HTTP receiver on 127.0.0.1 for tests: answers 200 and keeps every request body.

Shared by the tests that check what modeltel sends (replay, the secrets suite, the codec round
trip), so each asserts on the bytes that crossed the socket.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

MESSAGES: dict[str, type[Message]] = {
    "/v1/traces": ExportTraceServiceRequest,
    "/v1/metrics": ExportMetricsServiceRequest,
    "/v1/logs": ExportLogsServiceRequest,
}


class Receiver(ThreadingHTTPServer):
    """Keeps ``(path, body)`` of every POST, bodies un-gzipped."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.bodies: list[tuple[str, bytes]] = []
        self.endpoint = f"http://127.0.0.1:{self.server_address[1]}"

    def requests(self, path: str) -> list[Any]:
        """The bodies POSTed to ``path`` (e.g. ``/v1/metrics``), parsed with the official protos."""
        found = []
        for where, body in self.bodies:
            if where == path:
                message = MESSAGES[path]()
                message.ParseFromString(body)
                found.append(message)
        return found


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.server.bodies.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    """A receiver serving on a thread for the ``with`` block, then shut down and closed."""
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
