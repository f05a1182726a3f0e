"""``modeltel`` entry point. Exit codes (DESIGN §6): 0 ok, 1 runtime failure, 2 usage or config error."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from modeltel.cli import demo, doctor, export, run, show, stats, timeline

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

COMMANDS = (run, demo, show, stats, export, timeline, doctor)
"""Each module offers ``register(subparsers)``, which sets ``func`` on its parser."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modeltel", description="OpenTelemetry for simulation, calibration and inference workloads."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
