"""``modeltel`` entry point. Exit codes: 0 ok, 1 runtime failure, 2 usage or config error.

Only the chosen command's module is imported: ``modeltel show`` does not pay for what ``run`` or
``demo`` import. Every command's parser is built only when no command is named (``modeltel``,
``modeltel --help``, a typo), so the help still lists them all.

No command ends in a traceback. Whatever a command did not expect becomes one line
``modeltel <command>: <error>`` and exit 1 (``MODELTEL_DEBUG=1`` prints the traceback too). A
reader that went away (``modeltel show | head -1``) ends the command quietly with exit 1, as
Python's own recipe for a broken pipe does. Text that the terminal's encoding cannot hold (a lone
surrogate from a file name that was not UTF-8) is printed escaped instead of failing the command.
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import sys
from collections.abc import Sequence

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

COMMANDS = ("run", "demo", "runs", "show", "stats", "metrics", "export", "timeline", "replay", "doctor")
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
    tolerate_unencodable_output()
    command = "?"
    try:
        try:
            arguments = list(sys.argv[1:] if argv is None else argv)
            chosen = arguments[0] if arguments and arguments[0] in COMMANDS else None
            parser = build_parser((chosen,) if chosen is not None else COMMANDS)
            args = parser.parse_args(arguments)
            command = args.command
            code: int = args.func(args)
        finally:
            sys.stdout.flush()  # inside the try: a reader gone by now is still a broken pipe
    except BrokenPipeError:
        return reader_gone()
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        return unexpected(command, exc)
    return code


def tolerate_unencodable_output() -> None:
    """Escape (``\\ud800``) what stdout's or stderr's encoding cannot hold instead of raising."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors != "backslashreplace":
            stream.reconfigure(errors="backslashreplace")


def reader_gone() -> int:
    """Leave quietly after a broken pipe: stdout now goes to devnull, so the final flush at exit
    cannot fail a second time with "Exception ignored ... BrokenPipeError"."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_FAILURE


def unexpected(command: str, exc: Exception) -> int:
    """One line on stderr for an error no command expected; the traceback with ``MODELTEL_DEBUG``."""
    from modeltel._internal.config import debug_enabled
    from modeltel.cli._reading import printable

    try:
        message = " ".join(str(exc).split())
    except Exception:
        message = "<unprintable error>"
    detail = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    line = printable(f"modeltel {command}: {detail}")
    try:
        if debug_enabled():
            import traceback

            traceback.print_exception(exc, file=sys.stderr)
        print(line, file=sys.stderr)
    except OSError:  # stderr itself may be the closed pipe
        pass
    return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
