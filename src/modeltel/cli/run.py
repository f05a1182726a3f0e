"""``modeltel run [--service NAME] [--data-dir DIR] -- CMD ...``: auto-instrument a program.

Python programs are configured by modeltel's own ``sitecustomize``
(:mod:`modeltel._internal.bootstrap`): :func:`modeltel.configure`, then the installed
``opentelemetry-instrumentation-*`` packages, without the stock hook's distro, configurator and
dependency-check machinery. The distro variables are still set, so a program that starts
``opentelemetry-instrument`` itself gets modeltel there too. The environment is validated first: a
bad variable stops here with exit 2 instead of a warning inside the program.

With telemetry switched off (``MODELTEL_ENABLED=false`` or ``OTEL_SDK_DISABLED=true``) CMD is
exec'd with no ``sitecustomize`` and nothing validated beyond the switch: the program starts as if
``modeltel run`` were not there. The settings (pydantic) and the auto-instrumentation package are
imported only when telemetry is on, so ``modeltel run --help`` and the switched-off path stay cheap.
"""

from __future__ import annotations

import argparse
import os
import sys

from modeltel._internal.switch import switched_off

TYPE_CHECKING = False  # not typing's: this module is on the switched-off path, which must stay cheap
if TYPE_CHECKING:
    from typing import Any

# pathlib, shutil and uuid are left out on purpose: together they cost about a third of the
# switched-off path's start-up (bench/startup.py), and os.path and os.execvpe do the same here.


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a program with telemetry configured from the environment",
        description="Run CMD with OpenTelemetry configured by modeltel (traces, metrics, JSONL files).",
    )
    parser.add_argument("--service", help="service name (sets OTEL_SERVICE_NAME)")
    parser.add_argument("--data-dir", help="where JSONL goes (sets MODELTEL_DATA_DIR)")
    parser.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ...")
    parser.set_defaults(func=main)


def child_environment(environ: dict[str, str], service: str | None, data_dir: str | None) -> dict[str, str]:
    """The environment CMD runs with: modeltel selected, paths absolute, one run id for all children.

    The run id is the scheduler's job (array) id when there is one, as in a process that configures
    itself: every task of an array run under ``modeltel run`` is then one run, not one run each.
    """
    import uuid

    from modeltel._internal.bootstrap import HOOK_DIRECTORY
    from modeltel._internal.cluster import launch_run_id
    from modeltel._internal.config import DISTRO_VARIABLES

    env = plain_environment(environ, service, data_dir)
    env.setdefault("MODELTEL_RUN_ID", launch_run_id(env) or uuid.uuid4().hex)
    env.update(DISTRO_VARIABLES)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != HOOK_DIRECTORY]
    cwd = os.getcwd()
    if cwd not in paths:
        paths.insert(0, cwd)
    env["PYTHONPATH"] = os.pathsep.join([HOOK_DIRECTORY, *paths])
    return env


def plain_environment(environ: dict[str, str], service: str | None, data_dir: str | None) -> dict[str, str]:
    """``environ`` with the options applied and the data dir absolute; no hook, no run id."""
    env = dict(environ)
    if service:
        env["OTEL_SERVICE_NAME"] = service
    # Children that chdir elsewhere must still write to the directory the user launched from.
    chosen = data_dir if data_dir is not None else env.get("MODELTEL_DATA_DIR", "modeltel-data")
    env["MODELTEL_DATA_DIR"] = os.path.realpath(os.path.expanduser(chosen))
    return env


def main(args: argparse.Namespace) -> int:
    command = list(args.cmd)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        print("modeltel run: missing command (usage: modeltel run [OPTIONS] -- CMD ...)", file=sys.stderr)
        return 2
    environ = dict(os.environ)
    if switched_off(environ):
        env = plain_environment(environ, args.service, args.data_dir)
    else:
        env = child_environment(environ, args.service, args.data_dir)
        from modeltel._internal.config import ConfigError, load_settings

        try:
            load_settings(env, strict=True)
        except ConfigError as exc:
            for problem in exc.problems:
                print(f"modeltel run: {problem}", file=sys.stderr)
            return 2
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(command[0], command, env)  # searches env's PATH, as the program's shell would
    except FileNotFoundError:
        print(f"modeltel run: command not found: {command[0]!r}", file=sys.stderr)
    except OSError as exc:
        print(f"modeltel run: cannot run {command[0]!r}: {exc.strerror}", file=sys.stderr)
    return 1
