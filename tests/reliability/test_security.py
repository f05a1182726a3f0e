"""Security properties that hold by construction, checked so a change cannot quietly break them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from otlp_files import REPO, base_env

pytestmark = pytest.mark.reliability


def test_nothing_read_from_a_file_is_ever_evaluated() -> None:
    """The reader and the CLI parse JSON only: no pickle, marshal, eval, exec or yaml.load.

    ``exec`` of a string literal (the SIGINT-status fix in sigterm.py) evaluates nothing read.
    """
    forbidden = re.compile(
        r"(import (pickle|marshal|shelve)|(pickle|marshal)\.loads?\("
        r"|\beval\((?![\"'])|\bexec\((?![\"'])|yaml\.(unsafe_)?load\()"
    )
    offenders = [
        f"{path.relative_to(REPO)}:{number}"
        for path in (REPO / "src" / "modeltel").rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if forbidden.search(line) and not line.lstrip().startswith("#")
    ]
    assert offenders == []


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o027])
def test_files_are_private_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    code = f"import os; os.umask({umask}); import modeltel; from opentelemetry import trace\n" + (
        "modeltel.configure()\nwith trace.get_tracer('t').start_as_current_span('s'): pass\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=base_env(tmp_path / "d"), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    for path in [tmp_path / "d", *(tmp_path / "d").rglob("*")]:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
