"""The entry point imports only the chosen command, ``--help`` imports none and still lists every command."""

from __future__ import annotations

import argparse
import importlib
import re
import subprocess
import sys

import pytest

from modeltel.cli.main import COMMANDS, SUMMARIES
from reading_data import modeltel

HEAVY = ("numpy", "pydantic", "opentelemetry.sdk", "opentelemetry.instrumentation.auto_instrumentation")
"""Packages a help screen must not import: each costs tens to hundreds of milliseconds at start-up."""


def _modules_after(*argv: str, prefix: str = "modeltel.cli.") -> set[str]:
    """The modules starting with ``prefix`` loaded after ``main(argv)``, in a fresh interpreter."""
    code = (
        "import sys\nfrom modeltel.cli.main import main\n"
        f"try:\n    main({list(argv)!r})\nexcept SystemExit:\n    pass\n"
        f"print('LOADED', *sorted(m for m in sys.modules if m.startswith({prefix!r})))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.rsplit("LOADED", 1)[1].split())


def test_a_command_imports_only_its_own_module() -> None:
    loaded = _modules_after("show", "--help")
    assert "modeltel.cli.show" in loaded
    assert not loaded & {f"modeltel.cli.{name}" for name in COMMANDS if name != "show"}
    assert "modeltel.cli.demo" not in _modules_after("replay", "--help")
    assert not _modules_after("--help") & {f"modeltel.cli.{name}" for name in COMMANDS}


def test_the_help_screen_imports_nothing_heavy() -> None:
    for argv in (("--help",), ("sho",), ()):
        loaded = _modules_after(*argv, prefix="")
        assert not {m for m in loaded if m.startswith(HEAVY)}, argv


def test_run_help_imports_nothing_heavy() -> None:
    loaded = _modules_after("run", "--help", prefix="")
    assert "modeltel.cli.run" in loaded
    assert not {m for m in loaded if m.startswith(HEAVY)}


READING = ("runs", "show", "stats", "metrics", "logs", "export", "timeline", "replay", "doctor")
"""The commands that read a data dir: their readers (numpy, pydantic models, ``modeltel.read``) load
when the command runs, not to print its help."""


@pytest.mark.parametrize("name", READING)
def test_a_reading_command_help_imports_no_reader(name: str) -> None:
    loaded = _modules_after(name, "--help", prefix="")
    assert f"modeltel.cli.{name}" in loaded
    heavy = {m for m in loaded if m.startswith((*HEAVY, "modeltel.read", "modeltel.store.schemas"))}
    assert not heavy, sorted(heavy)
    if name != "doctor":  # its report rows are a dataclass; the others need none to parse arguments
        assert "dataclasses" not in loaded  # with inspect, about 10 ms


def test_the_help_table_matches_each_command() -> None:
    assert list(SUMMARIES) == list(COMMANDS)
    for name in COMMANDS:
        subparsers = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(f"modeltel.cli.{name}").register(subparsers)
        (action,) = subparsers._choices_actions
        assert action.help == SUMMARIES[name], name


def test_help_lists_every_command() -> None:
    result = modeltel("--help")
    assert result.returncode == 0
    block = result.stdout.split("COMMAND\n", 1)[1].split("\noptions:", 1)[0]
    listed = [line.split()[0] for line in block.splitlines() if re.match(r"^    \w", line)]
    assert listed == list(COMMANDS)
    assert modeltel().returncode == 2  # no command: usage error


def test_an_unknown_command_is_a_usage_error() -> None:
    result = modeltel("sho")
    assert result.returncode == 2 and "invalid choice: 'sho'" in result.stderr
