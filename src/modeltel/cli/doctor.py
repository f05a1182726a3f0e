"""``modeltel doctor``: the effective configuration, where each value came from, bad variables.

Exit 2 when a variable is bad, so scripts and CI can gate on it.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from modeltel.config import ConfigError, Settings, load_settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("doctor", help="check configuration and data dir")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(func=main)


def report(settings: Settings) -> dict[str, Any]:
    """Effective settings with their sources; header values are never included."""
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
                "endpoint": otlp.endpoint,
                "protocol": otlp.protocol,
                "headers": sorted(otlp.headers),
                "timeout_s": otlp.timeout_s,
            }
            for signal, otlp in settings.otlp.items()
        },
        "sampler": settings.sampler,
        "sources": settings.sources,
    }


def main(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(strict=True)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"modeltel doctor: {problem}", file=sys.stderr)
        return 2
    data = report(settings)
    if args.format == "json":
        print(json.dumps(data, indent=2))
    else:
        for key, value in data.items():
            print(f"{key:18} {value}")
    return 0
