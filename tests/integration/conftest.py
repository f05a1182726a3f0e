"""Fixtures that start real backends (Phoenix, rotel) on loopback; helpers live in ``backends.py``.

- ``phoenix`` (session): one Phoenix for the whole run (~10-15 s to start). Isolate tests with a
  fresh project per test (``phoenix_project``) and/or by trace id.
- ``rotel_to_phoenix`` (session): rotel forwarding traces to ``phoenix`` over OTLP/gRPC.
- ``rotel_metrics_sink`` (function): a fresh rotel per test printing received metrics to its log.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .backends import (
    BackendError,
    PhoenixServer,
    RotelAgent,
    RotelMetricsSink,
    phoenix_bin,
    rotel_forwarding_env,
)


@pytest.fixture(scope="session")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PhoenixServer]:
    """A Phoenix server on 127.0.0.1 (HTTP + OTLP/gRPC, both loopback only), stopped by PID."""
    try:
        executable = phoenix_bin()
    except BackendError as exc:
        pytest.fail(str(exc), pytrace=False)
    server = PhoenixServer.start(tmp_path_factory.mktemp("phoenix"), executable)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def phoenix_project(request: pytest.FixtureRequest) -> str:
    """A project name no other test uses; send it as resource attribute ``openinference.project.name``."""
    # Only [A-Za-z0-9_.-]: Phoenix's REST route cannot address names containing "/" (%2F is decoded).
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:40].strip("-")
    return f"{stem}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def rotel_to_phoenix(
    tmp_path_factory: pytest.TempPathFactory, phoenix: PhoenixServer
) -> Iterator[RotelAgent]:
    """rotel receiving OTLP gRPC + HTTP on 127.0.0.1 and forwarding traces to ``phoenix`` (gRPC)."""
    agent = RotelAgent.start(
        tmp_path_factory.mktemp("rotel-phoenix"), rotel_forwarding_env(phoenix.grpc_endpoint)
    )
    try:
        yield agent
    finally:
        agent.stop()


@pytest.fixture
def rotel_metrics_sink(tmp_path: Path) -> Iterator[RotelMetricsSink]:
    """A fresh rotel (blackhole exporter, detailed debug log) whose log holds only this test's data."""
    sink = RotelMetricsSink.start(tmp_path / "rotel-metrics")
    try:
        yield sink
    finally:
        sink.stop()
