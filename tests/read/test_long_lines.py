"""A line longer than the reader's limit is skipped with a warning; memory follows the answer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from modeltel.read.files import ByteRange, iter_records, read_blocks
from reading_data import COLLECTOR_LINES

PEAK = """
import re, sys
from modeltel.cli.main import main
try:
    code = main(sys.argv[1:])
finally:
    status = open("/proc/self/status").read()
    print("VmHWM_kB", re.search(r"VmHWM:\\s+(\\d+)", status).group(1), file=sys.stderr)
sys.exit(code)
"""


def _line_with(size: int) -> bytes:
    """A valid OTLP/JSON trace line of about ``size`` bytes (one huge string attribute)."""
    request = json.loads(json.dumps(COLLECTOR_LINES[0]))
    span = request["resourceSpans"][0]["instrumentationLibrarySpans"][0]["spans"][0]
    span["attributes"].append({"key": "blob", "value": {"stringValue": "x" * size}})
    return json.dumps(request).encode()


def test_read_blocks_passes_over_a_line_past_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"short\n" + b"y" * 5000 + b"\nafter\n")
    blocks = list(read_blocks(ByteRange(path, 0, path.stat().st_size), block_size=64, max_line=1000))
    lines = [line for block in blocks for line in block.data.split(b"\n") if line]
    assert lines == [b"short", b"after"]
    assert [skip for block in blocks for skip in block.skipped] == [(6, "line longer than 1000 bytes")]


def test_records_pass_over_a_line_past_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from modeltel.read import files

    monkeypatch.setattr(files, "MAX_LINE_BYTES", 1000)
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"short\n" + b"y" * 5000 + b"\nafter\n")
    records = list(iter_records(path))
    assert [(r.offset, r.data, r.reason) for r in records] == [
        (0, b"short", None),
        (6, b"", "line longer than 1000 bytes"),
        (5007, b"after", None),
    ]
    assert records[1].end == 5007


@pytest.mark.parametrize("command", [["show"], ["export", "--format", "csv", "-o", "-"]])
def test_a_200_mb_line_costs_no_200_mb(tmp_path: Path, command: list[str]) -> None:
    path = tmp_path / "big.jsonl"
    good = json.dumps(COLLECTOR_LINES[0]).encode()
    with open(path, "wb") as out:
        out.write(good + b"\n" + _line_with(200 << 20) + b"\n" + good + b"\n")
    done = subprocess.run(
        [sys.executable, "-c", PEAK, *command, str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{path}:2: skipped invalid line (line longer than" in done.stderr
    peak_mib = int(done.stderr.split("VmHWM_kB")[1].split()[0]) / 1024
    assert peak_mib < 150, f"peak {peak_mib:.0f} MiB"
