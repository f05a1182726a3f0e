"""Retry rules (the SDK exporters'), bounded; loopback detection; header values scrubbed."""

from __future__ import annotations

import pytest
from google.protobuf.message import Message

from modeltel.replay.transport import (
    MAX_DELAY_S,
    Delivery,
    Interrupted,
    Retrying,
    SendError,
    Target,
    is_loopback,
)


class Script:
    """A transport that fails as scripted, then succeeds."""

    def __init__(self, *failures: SendError) -> None:
        self.failures = list(failures)
        self.calls = 0

    def export(self, request: Message) -> Delivery:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return Delivery()

    def close(self) -> None:
        pass


def _retrying(transport: Script, retries: int = 5) -> tuple[Retrying, list[float]]:
    waits: list[float] = []
    retrying = Retrying(
        transport, retries=retries, on_retry=lambda e, d, a: waits.append(d), sleep=lambda s: None
    )
    return retrying, waits


def test_retryable_failures_back_off_exponentially_with_jitter() -> None:
    transport = Script(*(SendError("gRPC UNAVAILABLE", retryable=True) for _ in range(3)))
    retrying, waits = _retrying(transport)
    assert retrying.send(Message()) == Delivery()
    assert transport.calls == 4
    for attempt, wait in enumerate(waits):
        assert 0.8 * 2**attempt <= wait <= 1.2 * 2**attempt


def test_the_receivers_delay_is_honoured_and_capped() -> None:
    transport = Script(
        SendError("HTTP 429", retryable=True, retry_after=3.0),
        SendError("x", retryable=True, retry_after=1e6),
    )
    retrying, waits = _retrying(transport)
    retrying.send(Message())
    assert waits == [3.0, MAX_DELAY_S]


def test_permanent_failures_are_not_retried() -> None:
    transport = Script(SendError("HTTP 400 Bad Request", retryable=False))
    retrying, waits = _retrying(transport)
    with pytest.raises(SendError, match="400"):
        retrying.send(Message())
    assert transport.calls == 1 and waits == []


def test_retries_are_bounded() -> None:
    transport = Script(*(SendError("gRPC UNAVAILABLE", retryable=True) for _ in range(10)))
    retrying, waits = _retrying(transport, retries=2)
    with pytest.raises(SendError):
        retrying.send(Message())
    assert transport.calls == 3 and len(waits) == 2


def test_a_stop_request_ends_the_wait() -> None:
    transport = Script(SendError("gRPC UNAVAILABLE", retryable=True))
    retrying = Retrying(transport, stopped=lambda: True)
    with pytest.raises(Interrupted):
        retrying.send(Message())


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LOCALHOST", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("api.localhost", True),
        ("10.0.0.1", False),
        ("example.com", False),
        ("localhost.example.com", False),
        ("0.0.0.0", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_scrub_hides_header_values() -> None:
    target = Target("traces", "https://x:4317", "grpc", {"authorization": "Bearer s3cret"})
    assert target.scrub("denied: Bearer s3cret is not valid") == "denied: <hidden> is not valid"
    assert "s3cret" not in repr(target)
