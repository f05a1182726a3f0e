"""``modeltel`` entry point. Exit codes: 0 ok, 1 runtime failure, 2 usage or config error.

Only the chosen command's module is imported: ``modeltel show`` does not pay for what ``run`` or
``demo`` import. When no command is named (``modeltel``, ``modeltel --help``, a typo) the list of
commands comes from :data:`SUMMARIES` and no command module is imported at all: the commands read
data with numpy, validate settings with pydantic and load the SDK, and a help screen needs none of
that (measured in ``bench/startup.py``).

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

COMMANDS = (
    "run", "demo", "runs", "show", "stats", "metrics", "logs", "export", "timeline", "replay", "doctor",
)  # fmt: skip
"""Modules of ``modeltel.cli``, in help order; each offers ``register(subparsers)``, which sets ``func``."""

SUMMARIES: dict[str, str] = {
    "run": "run a program with telemetry configured from the environment",
    "demo": "run the bundled example and print its summary",
    "runs": "the runs in a data dir: id, services, start, duration, processes, spans, errors, jobs",
    "show": "per-span-name durations and job summaries",
    "stats": "calls, tokens, latency, ttft, cost and throughput per model / engine / name / attribute",
    "metrics": "every instrument: last values, counter totals, histogram count/sum/percentiles",
    "logs": "log records in time order, with their level, logger, trace and span",
    "export": "spans as CSV/JSON rows, spans and metrics as merged OTLP/JSON, or Jaeger UI JSON",
    "timeline": "a Gantt view of one trace (or a run's traces) as a self-contained HTML page or a PNG",
    "replay": "send stored traces, metrics and logs to an OTLP endpoint, resuming where the last one stopped",
    "doctor": "check configuration, data dir health and endpoint reachability",
}
"""Each command's one-line help for ``modeltel --help``, so listing the commands imports none of them.
A test checks it against the ``help=`` each module's ``register`` passes."""


def build_parser(commands: Sequence[str] = COMMANDS, *, light: bool = False) -> argparse.ArgumentParser:
    """The parser with the subcommands ``commands`` (default: all of them).

    ``light`` declares each subcommand from :data:`SUMMARIES` only (no arguments, no module
    imported): enough to print the list of commands or reject an unknown one.
    """
    parser = argparse.ArgumentParser(
        prog="modeltel", description="OpenTelemetry for simulation, calibration and inference workloads."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in commands:
        if light:
            subparsers.add_parser(name, help=SUMMARIES[name], add_help=False)
        else:
            importlib.import_module(f"modeltel.cli.{name}").register(subparsers)
    return parser


def parse(arguments: list[str]) -> argparse.Namespace:
    """Parse with the chosen command's module only, or with the light table when none is first."""
    chosen = arguments[0] if arguments and arguments[0] in COMMANDS else None
    if chosen is not None:
        return build_parser((chosen,)).parse_args(arguments)
    args = build_parser(light=True).parse_args(arguments)
    # Reached only when the command was not the first word (``modeltel -- show``): parse again
    # with that command's real parser.
    return build_parser((args.command,)).parse_args(arguments)


def main(argv: Sequence[str] | None = None) -> int:
    tolerate_unencodable_output()
    command = "?"
    try:
        try:
            args = parse(list(sys.argv[1:] if argv is None else argv))
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
