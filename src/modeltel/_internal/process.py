"""Is the process that wrote a record still running? Shared by the writer and the reader of records.

A pid alone is not an identity: after a crash the pid can be reused by an unrelated process. On
Linux the process's start time (``/proc/<pid>/stat`` field 22, clock ticks since boot) is recorded
beside the pid, and a live pid with another start time counts as gone. A zombie (killed, not yet
reaped by its parent) counts as gone too.
"""

from __future__ import annotations

import os


def _stat_fields(pid: int | str) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    # Fields from 3 (state) on; the command name before them may hold spaces and parentheses.
    return stat[stat.rfind(b")") + 2 :].split()


def start_ticks(pid: int | str = "self") -> str | None:
    """When process ``pid`` started, in clock ticks since boot; None where there is no ``/proc``."""
    fields = _stat_fields(pid)
    return fields[19].decode() if fields is not None and len(fields) > 19 else None


def is_alive(pid: int, started: str | None = None) -> bool:
    """True if ``pid`` runs on this host and (when known) is the process that started at ``started``."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    fields = _stat_fields(pid)
    if fields is None:
        return True  # no /proc: the signal check is all there is
    if fields[:1] in ([b"Z"], [b"X"]):
        return False
    return started is None or len(fields) <= 19 or fields[19].decode() == started
