"""Helpers for the cross-process tests (tests/integrations/): run a script, read its trace back.

Every script runs in a fresh interpreter with a clean environment (``otlp_files.base_env``), a
schedule delay long enough that the batch processor's timer never fires (so what reaches disk got
there through a flush the code under test made), and a bounded timeout.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.json_format import ParseDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from modeltel.store.layout import file_pid
from otlp_files import BIN, attrs, base_env, hex_to_base64, jsonl_files

NO_TIMER = {"OTEL_BSP_SCHEDULE_DELAY": "600000"}


def run_script(
    tmp_path: Path, source: str, *args: str, timeout: float = 90, modeltel_run: bool = False, **env: str
) -> subprocess.CompletedProcess[str]:
    """Write ``source`` to ``tmp_path/app.py`` and run it (under ``modeltel run`` if asked).

    The program gets its own process group. Past ``timeout`` every process in it gets SIGABRT
    (``PYTHONFAULTHANDLER`` makes each print where its threads were stuck), then SIGKILL, and the
    test fails with that output: no worker outlives a test.
    """
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(source))
    command = [sys.executable, str(script), *args]
    if modeltel_run:
        command = [str(BIN / "modeltel"), "run", "--", *command]
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=base_env(tmp_path / "data", PYTHONFAULTHANDLER="1", **{**NO_TIMER, **env}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _signal_group(process.pid, signal.SIGABRT)
        try:
            stdout, stderr = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            stdout, stderr = "", ""
        _signal_group(process.pid, signal.SIGKILL)
        process.wait(10)
        raise AssertionError(
            f"timed out after {timeout}s\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
        ) from None
    finally:
        _signal_group(process.pid, signal.SIGKILL)  # workers a finished program left behind
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


@dataclass
class Found:
    """One span read back from the files, with its resource attributes and the writing pid."""

    span: Any
    resource: dict[str, Any]
    pid: int

    @property
    def name(self) -> str:
        return str(self.span.name)

    @property
    def attributes(self) -> dict[str, Any]:
        return attrs(self.span.attributes)


def writer_pid(path: Path) -> int:
    """The pid of the process that wrote ``path``, from its name (the store's own reading of it)."""
    pid = file_pid(path)
    assert pid is not None, f"not a process file's name: {path.name}"
    return pid


class Trace:
    """Every span under a data dir, indexed by name; asserts the cross-process invariants."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.files = jsonl_files(data_dir, "traces")
        self.spans: list[Found] = []
        for path in self.files:
            pid = writer_pid(path)
            for span, resource, _ in spans_in(path):
                self.spans.append(Found(span, attrs(resource.attributes), pid))

    def named(self, name: str) -> list[Found]:
        return [s for s in self.spans if s.name == name]

    def one(self, name: str) -> Found:
        (found,) = self.named(name)
        return found

    def counts(self) -> Counter[str]:
        return Counter(s.name for s in self.spans)

    def pids(self) -> set[int]:
        """Pids that wrote a trace file."""
        return {writer_pid(p) for p in self.files}

    def assert_sound(self) -> None:
        """One trace id for everything, no span written twice, every parent present."""
        assert len({s.span.trace_id for s in self.spans}) == 1, "more than one trace"
        ids = [s.span.span_id for s in self.spans]
        assert len(ids) == len(set(ids)), "a span was written twice"
        known = set(ids)
        orphans = [s.name for s in self.spans if s.span.parent_span_id and s.span.parent_span_id not in known]
        assert not orphans, f"spans whose parent is missing: {orphans}"

    def assert_children(self, child: str, parent: Found, count: int) -> list[Found]:
        """Exactly ``count`` spans named ``child``, each a direct child of ``parent``."""
        found = [s for s in self.named(child) if s.span.parent_span_id == parent.span.span_id]
        assert len(found) == count, (child, len(found), count, self.counts())
        for s in found:
            assert s.span.trace_id == parent.span.trace_id
        return found


def spans_in(path: Path) -> list[tuple[Any, Any, Any]]:
    """The spans of one file, decoded with the official protos like ``otlp_files.spans``."""
    found: list[tuple[Any, Any, Any]] = []
    for line in path.read_text().splitlines():
        request = ParseDict(hex_to_base64(json.loads(line)), ExportTraceServiceRequest())
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                found.extend((span, rs.resource, ss.scope) for span in ss.spans)
    return found
