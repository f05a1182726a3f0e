"""``modeltel`` entry point. Exit codes (DESIGN §6): 0 ok, 1 runtime failure, 2 usage or config error.

Only the chosen command's module is imported: ``modeltel show`` does not pay for what ``run`` or
``demo`` import. Every command's parser is built only when no command is named (``modeltel``,
``modeltel --help``, a typo), so the help still lists them all.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

COMMANDS = ("run", "demo", "show", "stats", "export", "timeline", "replay", "doctor")
"""Modules of ``modeltel.cli``, in help order; each offers ``register(subparsers)``, which sets ``func``."""


def build_parser(commands: Sequence[str] = COMMANDS) -> argparse.ArgumentParser:
    """The parser with the subcommands ``commands`` (default: all of them)."""
    parser = argparse.ArgumentParser(
        prog="modeltel", description="OpenTelemetry for simulation, calibration and inference workloads."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in commands:
        importlib.import_module(f"modeltel.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    chosen = arguments[0] if arguments and arguments[0] in COMMANDS else None
    parser = build_parser((chosen,) if chosen is not None else COMMANDS)
    args = parser.parse_args(arguments)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
