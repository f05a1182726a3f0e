"""The write primitives after a failed write: the next line starts clean and only the failed one is lost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

WRITER = """
import json, resource, sys
from pathlib import Path
from modeltel.store.files import ProcessFile, append_line
root = Path(sys.argv[1])
file = ProcessFile(root, "traces")
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
failed = 0
for i in range(1000):
    if i == 300:
        resource.setrlimit(resource.RLIMIT_FSIZE, (file.path.stat().st_size + 50_000, hard))  # the disk fills
    if i == 700:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space comes back
    line = json.dumps({"i": i, "pad": "x" * 1000})
    try:
        file.write(line, "svc")
    except OSError:
        failed += 1
    if i in (350, 750):
        try:
            append_line(root, "summaries.jsonl", json.dumps({"i": i, "pad": "y" * 600_000}))
        except OSError:
            failed += 1000
print(failed, file.path)
"""


def test_a_full_disk_then_space_loses_only_the_failed_lines(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WRITER, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    failed, path = done.stdout.split()
    summaries_failed, lines_failed = divmod(int(failed), 1000)
    assert 300 < lines_failed < 700  # the disk stayed full until line 700
    numbers = [json.loads(line)["i"] for line in Path(path).read_text().splitlines()]
    assert len(numbers) == 1000 - lines_failed  # every line on disk is whole; nothing else was lost
    assert numbers[-300:] == list(range(700, 1000))
    assert summaries_failed == 1
    summary_lines = (tmp_path / "summaries.jsonl").read_text().splitlines()
    assert json.loads(summary_lines[-1])["i"] == 750  # the line after the torn one starts clean
