"""``modeltel doctor [--format table|json]``: the effective configuration, where each value came
from, bad variables, the data dir's health and whether each OTLP endpoint in use can be reached.

Exit 2 when a variable is bad, 1 when an endpoint in use cannot be reached, so scripts and CI can
gate on either. The data dir is only read (a missing one is reported, not created); an endpoint
is probed with a TCP connect and nothing else, so no data is ever sent. The table is one table
per section (settings with value and source, every OTEL_/MODELTEL_ variable modeltel does not
read, the data dir, the endpoints); ``--format json`` holds the same for scripts.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from modeltel._internal.config import Settings

CONNECT_TIMEOUT_S = 1.0
"""How long a TCP connect to an endpoint may take before it counts as unreachable."""
DEFAULT_PORTS = {"grpc": 4317, "http/protobuf": 4318}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "doctor", help="check configuration, data dir health and endpoint reachability"
    )
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(func=main)


@dataclass(frozen=True, slots=True)
class Row:
    """One setting as doctor shows it: a name for people, its value as text, where it came from."""

    setting: str
    value: str
    source: str
    field: str
    """The :class:`~modeltel._internal.config.Settings` field (the JSON report's ``sources`` keys)."""


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _source(environ: Mapping[str, str], *variables: str, otherwise: str = "default") -> str:
    """The first of ``variables`` set (non-empty) in ``environ``, the one that decided the value."""
    return next((name for name in variables if environ.get(name, "").strip()), otherwise)


def setting_rows(settings: Settings, environ: Mapping[str, str]) -> list[Row]:
    """Every effective setting, its value and the variable it came from (``default`` if none).

    The precedence is the loader's: a per-signal OTLP variable before the generic one,
    ``OTEL_SERVICE_NAME`` before ``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES``, and an
    endpoint variable alone selects the ``otlp`` exporter for traces and metrics.
    """
    from modeltel._internal.cluster import launch_run_id
    from modeltel._internal.config import INTEGER_SETTINGS, SIGNALS, mask_url
    from modeltel._internal.semconv import SEMCONV_VERSION

    run_source = _source(environ, "MODELTEL_RUN_ID", otherwise="")
    if not run_source:
        run_source = "scheduler/launcher job id" if launch_run_id(environ) else "generated"
    rows = [
        Row(
            "enabled",
            _yes(settings.enabled),
            _source(environ, "MODELTEL_ENABLED", "OTEL_SDK_DISABLED"),
            "enabled",
        ),
        Row("data dir", str(settings.data_dir.resolve()), _source(environ, "MODELTEL_DATA_DIR"), "data_dir"),
        Row("local jsonl", _yes(settings.jsonl), _source(environ, "MODELTEL_JSONL"), "jsonl"),
        Row(
            "capture content",
            _yes(settings.capture_content),
            _source(environ, "MODELTEL_CAPTURE_CONTENT"),
            "capture_content",
        ),
        Row(
            "service name",
            settings.service_name or "- (the program's name)",
            _source(environ, "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"),
            "service_name",
        ),
        Row("run id", settings.run_id, run_source, "run_id"),
        Row("ranks", settings.ranks, _source(environ, "MODELTEL_RANKS"), "ranks"),
        Row(
            "redact keys",
            f"{len(settings.redact_keys)} words",
            _source(environ, "MODELTEL_REDACT_KEYS"),
            "redact_keys",
        ),
    ]
    chosen = {
        "traces": settings.traces_exporters,
        "metrics": settings.metrics_exporters,
        "logs": settings.logs_exporters,
    }
    for signal in SIGNALS:
        upper = signal.upper()
        endpoint_vars = (f"OTEL_EXPORTER_OTLP_{upper}_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
        by_endpoint = signal != "logs" and settings.otlp[signal].endpoint is not None
        exporter_source = _source(
            environ,
            f"OTEL_{upper}_EXPORTER",
            otherwise=_source(environ, *endpoint_vars) if by_endpoint else "default",
        )
        rows.append(
            Row(
                f"{signal} exporters",
                ", ".join(chosen[signal]) or "none",
                exporter_source,
                f"{signal}_exporters",
            )
        )
        if "otlp" not in chosen[signal]:
            continue
        otlp = settings.otlp[signal]
        endpoint = (
            mask_url(otlp.endpoint) if otlp.endpoint else f"- (localhost:{DEFAULT_PORTS[otlp.protocol]})"
        )
        field = f"otlp.{signal}"
        rows += [
            Row(f"{signal} endpoint", endpoint, _source(environ, *endpoint_vars), f"{field}.endpoint"),
            Row(
                f"{signal} protocol",
                otlp.protocol,
                _source(environ, f"OTEL_EXPORTER_OTLP_{upper}_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"),
                f"{field}.protocol",
            ),
            Row(
                f"{signal} headers",
                ", ".join(sorted(otlp.headers)) or "none",  # names only: values are secrets
                _source(environ, f"OTEL_EXPORTER_OTLP_{upper}_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"),
                f"{field}.headers",
            ),
            Row(
                f"{signal} timeout",
                f"{otlp.timeout_s:g} s",
                _source(environ, f"OTEL_EXPORTER_OTLP_{upper}_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"),
                f"{field}.timeout_s",
            ),
        ]
    sampler = settings.sampler + (f" ({settings.sampler_arg:g})" if settings.sampler_arg is not None else "")
    rows.append(Row("sampler", sampler, _source(environ, "OTEL_TRACES_SAMPLER"), "sampler"))
    for field_name, integer in INTEGER_SETTINGS.items():
        label = _INTEGER_LABELS.get(field_name, field_name)
        value = getattr(settings, field_name)
        shown = f"{value} ms" if field_name.endswith("_ms") else str(value)
        rows.append(Row(label, shown, _source(environ, integer.variable), field_name))
    rows.append(Row("semconv", SEMCONV_VERSION, "modeltel", "semconv"))
    return rows


_INTEGER_LABELS = {
    "bsp_schedule_delay_ms": "span batch delay",
    "bsp_max_queue_size": "span queue size",
    "bsp_max_export_batch_size": "span batch size",
    "bsp_export_timeout_ms": "span export timeout",
    "metric_export_interval_ms": "metric interval",
    "metric_export_timeout_ms": "metric export timeout",
}


def other_variables(rows: list[Row], environ: Mapping[str, str]) -> list[Row]:
    """OTEL_/MODELTEL_ variables set that modeltel does not read (the SDK's or an
    instrumentation's, or a misspelling): shown so that none is silently ignored."""
    from modeltel._internal.config import ENV_VARS, SIGNALS, mask_url

    read = {v.name for v in ENV_VARS} | {row.source for row in rows}
    for signal in SIGNALS:
        upper = signal.upper()
        read |= {
            f"OTEL_EXPORTER_OTLP_{upper}_{part}" for part in ("ENDPOINT", "PROTOCOL", "HEADERS", "TIMEOUT")
        }
    shown = []
    for name in sorted(environ):
        if name.startswith(("OTEL_", "MODELTEL_")) and name not in read and environ[name].strip():
            value = environ[name]
            hidden = "HEADERS" in name or any(
                word in name.lower() for word in ("secret", "token", "password", "key")
            )
            shown.append(Row(name, "(set)" if hidden else mask_url(value), "not read by modeltel", ""))
    return shown


def report(settings: Settings, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Effective settings with their sources; header values and URL passwords are never included."""
    from modeltel._internal.config import mask_url, process_environment
    from modeltel._internal.semconv import SEMCONV_VERSION

    environ = process_environment() if environ is None else environ
    rows = setting_rows(settings, environ)
    return {
        "settings": [{"setting": r.setting, "value": r.value, "source": r.source} for r in rows],
        "other_variables": [
            {"variable": r.setting, "value": r.value} for r in other_variables(rows, environ)
        ],
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
        "sources": {r.field: r.source for r in rows if r.field},
        "semconv": SEMCONV_VERSION,
    }


def endpoints_in_use(settings: Settings) -> list[dict[str, Any]]:
    """Each distinct OTLP host:port that an exporter would contact, with the signals using it.

    A signal counts when ``otlp`` is among its exporters (an endpoint variable alone selects it for
    traces and metrics); with no endpoint the OTLP default on localhost is what the SDK would use.
    """
    from modeltel._internal.config import SIGNALS, mask_url

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
    from modeltel._internal.config import ConfigError, load_settings

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
    unreachable = [e for e in endpoints if not e["reachable"]]
    if args.format == "json":
        data["data_dir_health"] = health.to_json()
        data["endpoints"] = endpoints
        print(json.dumps(data, indent=2))
    else:
        _print_tables(data, health.to_json(), endpoints)
    for endpoint in unreachable:
        print(
            f"modeltel doctor: {endpoint['host']}:{endpoint['port']} unreachable ({endpoint['error']}), "
            f"for {', '.join(endpoint['signals'])}: what it should get stays local (`modeltel replay`)",
            file=sys.stderr,
        )
    return 1 if unreachable else 0


def _print_tables(data: dict[str, Any], health: dict[str, Any], endpoints: list[dict[str, Any]]) -> None:
    from modeltel.cli._reading import render_table

    settings = [(row["setting"], row["value"], row["source"]) for row in data["settings"]]
    print(render_table(("setting", "value", "source"), settings, left=3))
    others = data["other_variables"]
    if others:
        print()
        rows = [(row["variable"], row["value"], "not read by modeltel") for row in others]
        print(render_table(("other variable", "value", "note"), rows, left=3))
    print()
    print(_health_text(health))
    print()
    print(_endpoints_text(endpoints))


def _health_text(health: dict[str, Any]) -> str:
    from modeltel.cli._reading import printable, render_table

    if not health["exists"]:
        path = Path(health["path"]).absolute()
        return printable(f"data dir {path}: does not exist yet (created on first write)")
    jobs = ", ".join(f"{n} {status}" for status, n in sorted(health["running_jobs"].items())) or "none"
    rows = [
        ("path", str(Path(health["path"]).absolute())),
        (
            "files",
            f"{health['trace_files']} trace, {health['metric_files']} metric, "
            f"{health['bytes'] / 1e6:,.1f} MB",
        ),
        ("spans", f"{health['spans']:,}"),
        ("summaries", f"{health['summaries']:,}"),
        ("unreadable lines", f"{health['bad_lines']:,}"),
        ("open jobs", jobs),
        ("replay cursor", "yes" if health["replay_cursor"] else "no"),
    ]
    lines = [render_table(("data dir", "health"), rows, left=2)]
    lines += [printable(f"    {example}") for example in health["bad_line_examples"]]
    return "\n".join(lines)


def _endpoints_text(endpoints: list[dict[str, Any]]) -> str:
    from modeltel.cli._reading import render_table

    if not endpoints:
        return "endpoints: none in use (no otlp exporter)"
    rows = []
    for endpoint in endpoints:
        address = f"{endpoint['host']}:{endpoint['port']}"
        if endpoint["reachable"]:
            state, took = "reachable", f"{endpoint['connect_ms']} ms"
        else:
            state, took = f"unreachable: {endpoint['error']}", "-"
        rows.append((address, ", ".join(endpoint["signals"]), state, took))
    return render_table(("endpoint", "signals", "state", "connect"), rows, left=3)
