"""The entry point imports only the chosen command, and ``--help`` still lists every command."""

from __future__ import annotations

import re
import subprocess
import sys

from modeltel.cli.main import COMMANDS
from reading_data import modeltel


def _modules_after(*argv: str) -> set[str]:
    """The ``modeltel.cli.*`` modules loaded after ``main(argv)``, in a fresh interpreter."""
    code = (
        "import sys\nfrom modeltel.cli.main import main\n"
        f"try:\n    main({list(argv)!r})\nexcept SystemExit:\n    pass\n"
        "print('LOADED', *sorted(m for m in sys.modules if m.startswith('modeltel.cli.')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.rsplit("LOADED", 1)[1].split())


def test_a_command_imports_only_its_own_module() -> None:
    loaded = _modules_after("show", "--help")
    assert "modeltel.cli.show" in loaded
    assert not loaded & {f"modeltel.cli.{name}" for name in COMMANDS if name != "show"}
    assert "modeltel.cli.demo" not in _modules_after("replay", "--help")
    assert {f"modeltel.cli.{name}" for name in COMMANDS} <= _modules_after("--help")


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
