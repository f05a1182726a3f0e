"""Sending one request to an OTLP receiver over gRPC or HTTP/protobuf, with bounded retries.

The retry rules are the OpenTelemetry SDK exporters' (``opentelemetry-exporter-otlp-proto-grpc``
and ``-http`` 1.45): gRPC CANCELLED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, OUT_OF_RANGE,
UNAVAILABLE and DATA_LOSS, HTTP 429, 502, 503 and 504, and connection errors are retried; the wait
is ``2**attempt`` seconds with ±20 % jitter, or what the receiver asks for (gRPC ``RetryInfo``,
HTTP ``Retry-After``), capped at :data:`MAX_DELAY_S`. Anything else is permanent. The timeout
bounds each whole attempt (gRPC's deadline; over HTTP, a timer that cuts the socket), not each
read, so a receiver that trickles its answer costs one timeout per attempt.

Only the endpoint given is ever contacted: gRPC's proxy variables are switched off, HTTP uses no
proxy and follows no redirect. Header values are secret: they go on the wire and nowhere else,
and any text a receiver sends back is scrubbed of them before it is shown.
"""

from __future__ import annotations

import contextlib
import http.client
import random
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import grpc  # type: ignore[import-untyped]
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc import LogsServiceStub
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2_grpc import MetricsServiceStub
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from modeltel.formats.protobuf import Signal

MAX_DELAY_S = 60.0
"""The longest single wait between attempts, whatever a receiver asks for."""
MAX_RESPONSE_BYTES = 1 << 20
USER_AGENT = "modeltel-replay"

RETRYABLE_GRPC = frozenset(
    {
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
RETRYABLE_HTTP = frozenset({429, 502, 503, 504})
_STUBS: dict[Signal, Any] = {
    "traces": TraceServiceStub,
    "metrics": MetricsServiceStub,
    "logs": LogsServiceStub,
}
_RESPONSES: dict[Signal, Any] = {
    "traces": ExportTraceServiceResponse,
    "metrics": ExportMetricsServiceResponse,
    "logs": ExportLogsServiceResponse,
}
_REJECTED: dict[Signal, str] = {
    "traces": "rejected_spans",
    "metrics": "rejected_data_points",
    "logs": "rejected_log_records",
}
"""Each signal's gRPC service, response message and partial-success count of refused items."""


@dataclass(frozen=True)
class Target:
    """Where one signal goes: full URL (HTTP: with ``/v1/<signal>``), protocol, headers, timeout."""

    signal: Signal
    url: str
    protocol: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout_s: float = 10.0

    @property
    def shown(self) -> str:
        """The URL as printed and as the cursor's key (replay refuses URLs with credentials)."""
        return self.url

    def scrub(self, text: str) -> str:
        """``text`` with every header value replaced, for messages that come from a receiver."""
        for value in self.headers.values():
            if value:
                text = text.replace(value, "<hidden>")
        return text


@dataclass(frozen=True)
class Delivery:
    """A receiver accepted a request; it may still have rejected some items (partial success)."""

    rejected: int = 0
    message: str = ""


class SendError(Exception):
    """A request failed: ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class Interrupted(Exception):
    """The replay was asked to stop while waiting to retry."""


class Transport(Protocol):
    def export(self, request: Message) -> Delivery: ...

    def close(self) -> None: ...


def _host_port(url: str, default_port: int) -> tuple[str, int, bool]:
    parts = urlsplit(url)
    return parts.hostname or "localhost", parts.port or default_port, parts.scheme == "https"


class GrpcTransport:
    """The OTLP/gRPC ``Export`` call of one signal, on a channel rebuilt after UNAVAILABLE."""

    def __init__(self, target: Target) -> None:
        self.target = target
        host, port, secure = _host_port(target.url, 4317)
        self._address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._secure = secure
        self._metadata = tuple(target.headers.items())
        self._channel: grpc.Channel | None = None
        self._call: Callable[..., Any] | None = None

    def _connect(self) -> Callable[..., Any]:
        options = [("grpc.enable_http_proxy", 0), ("grpc.primary_user_agent", USER_AGENT)]
        if self._secure:
            channel = grpc.secure_channel(self._address, grpc.ssl_channel_credentials(), options=options)
        else:
            channel = grpc.insecure_channel(self._address, options=options)
        stub = _STUBS[self.target.signal](channel)
        self._channel, self._call = channel, stub.Export
        return stub.Export  # type: ignore[no-any-return]

    def export(self, request: Message) -> Delivery:
        call = self._call or self._connect()
        try:
            response = call(request, metadata=self._metadata, timeout=self.target.timeout_s)
        except grpc.RpcError as error:
            code: grpc.StatusCode = error.code()
            details = self.target.scrub(str(error.details() or ""))[:300]
            if code == grpc.StatusCode.UNAVAILABLE:
                self.close()  # a fresh channel next time, without the old one's reconnect backoff
            raise SendError(
                f"gRPC {code.name}" + (f": {details}" if details else ""),
                retryable=code in RETRYABLE_GRPC,
                retry_after=_grpc_retry_delay(error),
            ) from None
        return _delivery(self.target, response)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
        self._channel, self._call = None, None


def _grpc_retry_delay(error: grpc.RpcError) -> float | None:
    try:
        from google.rpc.error_details_pb2 import RetryInfo  # type: ignore[import-untyped]

        metadata = dict(error.trailing_metadata() or ())
        raw = metadata.get("google.rpc.retryinfo-bin")
        if raw is None:
            return None
        info = RetryInfo()
        info.ParseFromString(raw)
        return float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)
    except Exception:  # no details, or details we cannot read: the default backoff applies
        return None


class HttpTransport:
    """``POST`` of the protobuf request to the signal's URL, one kept-alive connection."""

    def __init__(self, target: Target) -> None:
        self.target = target
        host, port, secure = _host_port(target.url, 4318)
        self._host, self._port, self._secure = host, port, secure
        parts = urlsplit(target.url)
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._headers = {
            **target.headers,
            "Content-Type": "application/x-protobuf",
            "User-Agent": USER_AGENT,
        }
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        timeout = self.target.timeout_s
        if self._secure:
            self._connection = http.client.HTTPSConnection(self._host, self._port, timeout=timeout)
        else:
            self._connection = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        return self._connection

    def export(self, request: Message) -> Delivery:
        """One request, answered in full within the timeout or cut off then.

        The socket timeout bounds each read, not the request: a receiver that answers one byte per
        second would hold it for as long as its answer is long. So a timer shuts the socket down
        at the timeout, which ends whatever read or write is waiting on it.
        """
        connection = self._connection or self._connect()
        cut = threading.Event()
        timer = threading.Timer(self.target.timeout_s, self._cut, (connection, cut))
        timer.daemon = True
        timer.start()
        try:
            connection.request("POST", self._path, body=request.SerializeToString(), headers=self._headers)
            response = connection.getresponse()
            body = response.read(MAX_RESPONSE_BYTES)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            if cut.is_set():
                raise SendError(
                    f"no complete answer within {self.target.timeout_s:g} s", retryable=True
                ) from None
            reason = self.target.scrub(str(exc) or type(exc).__name__)[:300]
            raise SendError(f"connection failed: {reason}", retryable=True) from None
        finally:
            timer.cancel()
        if cut.is_set():  # the timer fired just as the answer ended: the socket is unusable
            self.close()
        status = response.status
        if response.getheader("Connection", "").lower() == "close" or response.will_close:
            self.close()
        if 200 <= status < 300:
            try:
                return _delivery(self.target, _RESPONSES[self.target.signal].FromString(body))
            except DecodeError:
                return Delivery()  # accepted; a body we cannot read says nothing about rejects
        text = self.target.scrub(body[:300].decode("utf-8", "replace").strip())
        message = f"HTTP {status} {response.reason}" + (f": {text}" if text else "")
        if 300 <= status < 400:
            raise SendError(
                f"{message} (redirects are not followed: replay sends only where told)", retryable=False
            )
        retry_after = _retry_after(response.getheader("Retry-After"))
        raise SendError(message, retryable=status in RETRYABLE_HTTP, retry_after=retry_after)

    @staticmethod
    def _cut(connection: http.client.HTTPConnection, cut: threading.Event) -> None:
        cut.set()
        sock = connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection = None


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _delivery(target: Target, response: Any) -> Delivery:
    partial = response.partial_success
    rejected = int(getattr(partial, _REJECTED[target.signal]))
    return Delivery(rejected, target.scrub(partial.error_message)[:300])


def transport(target: Target) -> Transport:
    return GrpcTransport(target) if target.protocol == "grpc" else HttpTransport(target)


@dataclass
class Retrying:
    """Sends with the SDK exporters' retry rules (module docstring), at most ``retries`` times more.

    ``stopped`` is polled while waiting, so an interrupt never waits out a long backoff.
    ``on_retry(error, delay, attempt)`` is told about each retry before its wait.
    """

    transport: Transport
    retries: int = 5
    stopped: Callable[[], bool] = lambda: False
    on_retry: Callable[[SendError, float, int], None] = lambda error, delay, attempt: None
    sleep: Callable[[float], None] = time.sleep

    def send(self, request: Message) -> Delivery:
        attempt = 0
        while True:
            try:
                return self.transport.export(request)
            except SendError as error:
                if not error.retryable or attempt >= self.retries:
                    raise
                delay = error.retry_after
                if delay is None:
                    delay = 2**attempt * random.uniform(0.8, 1.2)
                delay = min(delay, MAX_DELAY_S)
                attempt += 1
                self.on_retry(error, delay, attempt)
                self._wait(delay)

    def _wait(self, seconds: float) -> None:
        left = seconds
        while left > 0:
            if self.stopped():
                raise Interrupted
            step = min(left, 0.1)
            self.sleep(step)
            left -= step


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address: plain text never leaves the machine."""
    import ipaddress

    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
