"""What a killed replay may send twice: at most one request per SIGKILL, and nothing is lost.

The cursor is fsync-ed after every acknowledged request, so a replay killed after the receiver
acknowledged a request and before the cursor recorded it sends that request again when resumed:
delivery is at least once. The README states exactly this bound; the test holds both to it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from otlp_files import BIN, base_env
from otlp_receiver import running_receiver

SPANS, PER_LINE, BATCH, KILLS = 20_000, 50, 200, 3
README = Path(__file__).resolve().parents[2] / "README.md"


def _data_dir(root: Path) -> Path:
    day = root / "traces" / "2026-01-01"
    day.mkdir(parents=True)
    lines = []
    for first in range(0, SPANS, PER_LINE):
        spans = [
            {
                "traceId": f"{1:032x}",
                "spanId": f"{i + 1:016x}",
                "name": "op",
                "startTimeUnixNano": "1700000000000000000",
                "endTimeUnixNano": "1700000000000001000",
            }
            for i in range(first, first + PER_LINE)
        ]
        lines.append(json.dumps({"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": spans}]}]}))
    (day / "w-1-1.jsonl").write_text("\n".join(lines) + "\n")
    return root


def test_three_kills_resend_at_most_one_request_each(tmp_path: Path, figures: Any) -> None:
    data = _data_dir(tmp_path / "data")
    with running_receiver() as receiver:
        command = [
            str(BIN / "modeltel"), "replay", "--endpoint", receiver.endpoint,
            "--protocol", "http/protobuf", "--batch", str(BATCH), str(data),
        ]  # fmt: skip
        for kill in range(KILLS):
            child = subprocess.Popen(
                command, env=base_env(data), stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            wanted = len(receiver.bodies) + 5 + kill * 7
            deadline = time.monotonic() + 60
            while len(receiver.bodies) < wanted and child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.001)
            child.send_signal(signal.SIGKILL)
            child.wait(10)
        done = subprocess.run(command, env=base_env(data), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        seen = Counter(
            span.span_id
            for request in receiver.requests("/v1/traces")
            for block in request.resource_spans
            for scope in block.scope_spans
            for span in scope.spans
        )
    assert len(seen) == SPANS  # nothing lost
    resent = sum(seen.values()) - SPANS
    figures(
        fault="replay SIGKILLed 3x, then resumed",
        runs=1,
        sent=SPANS,
        over_otlp=len(seen),
        note=f"{resent} resent",
    )
    assert resent <= KILLS * BATCH, f"{resent} spans sent twice over {KILLS} kills"
    guide = README.read_text()
    assert "nothing twice" not in guide
    assert "at most one request" in guide
