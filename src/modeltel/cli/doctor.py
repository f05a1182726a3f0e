"""``modeltel doctor``: the effective configuration, where each value came from, bad variables,
the data dir's health and whether each OTLP endpoint in use can be reached.

Exit 2 when a variable is bad, so scripts and CI can gate on it. The data dir is only read (a
missing one is reported, not created); an endpoint is probed with a TCP connect and nothing else,
so no data is ever sent. Unreachable endpoints and unreadable lines are reported, not failures:
telemetry never stops an application, and the doctor says what it would meet.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from modeltel.config import SIGNALS, ConfigError, Settings, load_settings, mask_url
from modeltel.semconv import SEMCONV_VERSION

CONNECT_TIMEOUT_S = 1.0
"""How long a TCP connect to an endpoint may take before it counts as unreachable."""
DEFAULT_PORTS = {"grpc": 4317, "http/protobuf": 4318}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "doctor", help="check configuration, data dir health and endpoint reachability"
    )
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(func=main)


def report(settings: Settings) -> dict[str, Any]:
    """Effective settings with their sources; header values and URL passwords are never included."""
    return {
        "enabled": settings.enabled,
        "data_dir": str(settings.data_dir.resolve()),
        "jsonl": settings.jsonl,
        "capture_content": settings.capture_content,
        "service_name": settings.service_name,
        "run_id": settings.run_id,
        "traces_exporters": list(settings.traces_exporters),
        "metrics_exporters": list(settings.metrics_exporters),
        "logs_exporters": list(settings.logs_exporters),
        "otlp": {
            signal: {
                "endpoint": None if otlp.endpoint is None else mask_url(otlp.endpoint),
                "protocol": otlp.protocol,
                "headers": sorted(otlp.headers),
                "timeout_s": otlp.timeout_s,
            }
            for signal, otlp in settings.otlp.items()
        },
        "sampler": settings.sampler,
        "sources": settings.sources,
        "semconv": SEMCONV_VERSION,
    }


def endpoints_in_use(settings: Settings) -> list[dict[str, Any]]:
    """Each distinct OTLP host:port that an exporter would contact, with the signals using it.

    A signal counts when ``otlp`` is among its exporters (an endpoint variable alone selects it for
    traces and metrics); with no endpoint the OTLP default on localhost is what the SDK would use.
    """
    exporters = {
        "traces": settings.traces_exporters,
        "metrics": settings.metrics_exporters,
        "logs": settings.logs_exporters,
    }
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for signal in SIGNALS:
        if "otlp" not in exporters[signal]:
            continue
        otlp = settings.otlp[signal]
        url = otlp.endpoint or f"http://localhost:{DEFAULT_PORTS[otlp.protocol]}"
        parts = urlsplit(url)
        host, port = parts.hostname or "localhost", parts.port or DEFAULT_PORTS[otlp.protocol]
        entry = found.setdefault((host, port), {"host": host, "port": port, "signals": [], "urls": []})
        entry["signals"].append(signal)
        if mask_url(url) not in entry["urls"]:
            entry["urls"].append(mask_url(url))
    return list(found.values())


def probe(host: str, port: int, timeout: float = CONNECT_TIMEOUT_S) -> dict[str, Any]:
    """A TCP connect, closed at once: reachable or not, how long it took, and why not."""
    started = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__)
        return {"reachable": False, "error": reason}
    return {"reachable": True, "connect_ms": round((time.perf_counter() - started) * 1e3, 1), "error": None}


def reachability(settings: Settings) -> list[dict[str, Any]]:
    """:func:`endpoints_in_use`, each probed (in parallel, so the wait is one timeout at most)."""
    endpoints = endpoints_in_use(settings)
    if not endpoints:
        return []
    with ThreadPoolExecutor(len(endpoints)) as pool:
        results = list(pool.map(lambda e: probe(e["host"], e["port"]), endpoints))
    return [{**endpoint, **result} for endpoint, result in zip(endpoints, results, strict=True)]


def main(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(strict=True)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"modeltel doctor: {problem}", file=sys.stderr)
        return 2
    from modeltel.read.health import data_dir_health

    data = report(settings)
    health = data_dir_health(settings.data_dir)
    endpoints = reachability(settings)
    if args.format == "json":
        data["data_dir_health"] = health.to_json()
        data["endpoints"] = endpoints
        print(json.dumps(data, indent=2))
        return 0
    from modeltel.cli._reading import printable

    for key, value in data.items():
        print(printable(f"{key:18} {value}"))
    print()
    print("\n".join(printable(line) for line in _health_text(health.to_json()).splitlines()))
    print()
    print(_endpoints_text(endpoints))
    return 0


def _health_text(health: dict[str, Any]) -> str:
    if not health["exists"]:
        return f"data dir           {health['path']}: does not exist yet (created on first write)"
    jobs = ", ".join(f"{n} {status}" for status, n in sorted(health["running_jobs"].items())) or "none"
    lines = [
        f"data dir           {health['path']}",
        f"  files            {health['trace_files']} trace, {health['metric_files']} metric, "
        f"{health['bytes'] / 1e6:,.1f} MB",
        f"  spans            {health['spans']:,}",
        f"  summaries        {health['summaries']:,}",
        f"  unreadable lines {health['bad_lines']:,}",
        *(f"    {example}" for example in health["bad_line_examples"]),
        f"  open jobs        {jobs}",
        f"  replay cursor    {'yes' if health['replay_cursor'] else 'no'}",
    ]
    return "\n".join(lines)


def _endpoints_text(endpoints: list[dict[str, Any]]) -> str:
    if not endpoints:
        return "endpoints          none in use (no otlp exporter)"
    lines = ["endpoints"]
    for endpoint in endpoints:
        address = f"{endpoint['host']}:{endpoint['port']}"
        if endpoint["reachable"]:
            state = f"reachable, {endpoint['connect_ms']} ms"
        else:
            state = f"unreachable: {endpoint['error']}"
        lines.append(f"  {address:<24} {state:<36} for {', '.join(endpoint['signals'])}")
    return "\n".join(lines)
