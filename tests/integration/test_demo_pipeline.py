"""`modeltel demo` end to end over OTLP: rotel as the collector hop into Phoenix, metrics to rotel.

The compose stack cannot run here (no Docker engine); this runs the same OTLP path through the real
pieces that can: traces demo → rotel (gRPC) → Phoenix, read back through Phoenix's API and seen in
its UI by headless Chromium; metrics demo → a second rotel whose detailed log shows every point.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from otlp_files import BIN, attrs, base_env, spans

from .backends import PhoenixServer, RotelAgent, RotelMetricsSink

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

JOBS = ("simulation.job", "calibration.job", "inference.job")
METRICS = {
    "modeltel.simulation.run.duration": "s",
    "modeltel.simulation.cache.requests": None,
    "modeltel.calibration.iteration.duration": "s",
    "modeltel.calibration.loss": None,
    "modeltel.calibration.best_loss": None,
    "modeltel.inference.duration": "s",
    "modeltel.inference.confidence": None,
    "gen_ai.client.operation.duration": "s",
    "gen_ai.client.token.usage": "{token}",
}


@pytest.fixture(scope="module")
def demo_run(
    tmp_path_factory: pytest.TempPathFactory,
    phoenix: PhoenixServer,
    rotel_to_phoenix: RotelAgent,
) -> dict[str, object]:
    """The demo run once; metrics go to a rotel sink started here, traces via rotel to Phoenix."""
    work = tmp_path_factory.mktemp("demo-e2e")
    sink = RotelMetricsSink.start(work / "rotel-metrics")
    project = "modeltel-demo-e2e"
    data = work / "data"
    env = base_env(
        data,
        OTEL_SERVICE_NAME="modeltel-demo",
        OTEL_RESOURCE_ATTRIBUTES=f"openinference.project.name={project}",
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=rotel_to_phoenix.grpc_endpoint,
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=sink.grpc_endpoint,
    )
    try:
        result = subprocess.run(
            [str(BIN / "modeltel"), "demo", "--data-dir", str(data)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        points = {
            name: sink.wait_for_metric(name, service_name="modeltel-demo", timeout=30) for name in METRICS
        }
    finally:
        sink.stop()
    return {"data": data, "project": project, "points": points, "work": work}


def test_every_job_trace_arrives_in_phoenix_with_names_parents_and_attributes(
    phoenix: PhoenixServer, demo_run: dict
) -> None:
    local = [s for s, _, _ in spans(demo_run["data"])]
    for job in JOBS:
        (root,) = [s for s in local if s.name == job]
        expected = {s.span_id.hex(): s for s in local if s.trace_id == root.trace_id}
        received = phoenix.spans(
            demo_run["project"], trace_id=root.trace_id.hex(), min_count=len(expected), timeout=60
        )
        assert len(received) == len(expected), job
        for span in received:
            mine = expected[span["context"]["span_id"]]
            assert span["name"] == mine.name
            assert (span["parent_id"] or "") == mine.parent_span_id.hex()
            for key, value in attrs(mine.attributes).items():
                if isinstance(value, float):
                    assert span["attributes"][key] == pytest.approx(value), (job, key)
                else:
                    assert span["attributes"][key] == value, (job, key)
    names = {s.name for s in local}
    assert {"simulation.run", "simulation.phase", "calibration.ask", "inference.predict"} <= names
    assert any(name.startswith("chat ") for name in names)


def test_demo_metrics_arrive_over_otlp(demo_run: dict) -> None:
    for name, unit in METRICS.items():
        points = demo_run["points"][name]
        assert points, name
        assert all(p.service_name == "modeltel-demo" for p in points)
        if unit is not None:
            assert points[0].unit == unit, name
    runs = demo_run["points"]["modeltel.simulation.run.duration"]
    assert sum(p.count for p in runs if p.attributes.get("modeltel.simulation.model") == "sir") > 0
    tokens = demo_run["points"]["gen_ai.client.token.usage"]
    assert {p.attributes.get("gen_ai.token.type") for p in tokens} >= {"input", "output"}


def _project_id(phoenix: PhoenixServer, project: str) -> str:
    query = json.dumps({"query": "{ projects { edges { node { id name } } } }"}).encode()
    request = urllib.request.Request(
        f"{phoenix.http_url}/graphql", data=query, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        edges = json.loads(response.read())["data"]["projects"]["edges"]
    (found,) = [e["node"]["id"] for e in edges if e["node"]["name"] == project]
    return str(found)


def test_a_person_sees_the_calibration_trace_in_phoenix(phoenix: PhoenixServer, demo_run: dict) -> None:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing: .ci/run installs it with apt-get install -y chromium"
    local = [s for s, _, _ in spans(demo_run["data"])]
    (root,) = [s for s in local if s.name == "calibration.job"]
    project_id = _project_id(phoenix, demo_run["project"])
    url = f"{phoenix.http_url}/projects/{project_id}/traces/{root.trace_id.hex()}"
    work: Path = demo_run["work"]
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--disable-quic",
        "--virtual-time-budget=20000",
        "--window-size=1400,900",
    ]
    png = work / "phoenix-calibration-trace.png"
    dom = subprocess.run(
        [chromium, *flags, f"--user-data-dir={work / 'chrome-dom'}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    shot = subprocess.run(
        [chromium, *flags, f"--user-data-dir={work / 'chrome-png'}", f"--screenshot={png}", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    for name in ("calibration.job", "calibration.iteration", "calibration.ask", "calibration.evaluate"):
        assert name in dom, name
    assert shot.returncode == 0 and png.stat().st_size > 10_000  # kept in the test's tmp dir
