"""The replay cursor: how far each file has been sent to each endpoint, so a replay resumes there.

``<data_dir>/replay-cursor.json`` maps an endpoint key (signal and URL) and a file (relative to the
data dir when inside it, so a data dir copied off an air-gapped node keeps its cursor) to the byte
offset just past the last line the receiver acknowledged, plus a fingerprint of the file's first
bytes: a file replaced by another of the same name starts again from 0, with a warning.

The cursor is replaced atomically and ``fsync``-ed after every acknowledged request: a replay that
is killed resends at most the one request that was acknowledged and not yet recorded, and an
interrupted one (SIGINT, SIGTERM) resends nothing. Two replays of one data dir at once would send
the same lines twice, so a replay holds an exclusive ``flock`` on the data dir while it runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from modeltel.store.files import replace_file
from modeltel.store.layout import REPLAY_CURSOR_FILE
from modeltel.store.schemas import CURSOR_SCHEMA_VERSION, ReplayCursor

FINGERPRINT_BYTES = 4096


class CursorError(Exception):
    """The cursor cannot be read or locked; sending anyway could send data twice."""


def fingerprint(path: Path, upto: int) -> str:
    """SHA-256 of the first ``min(upto, FINGERPRINT_BYTES)`` bytes of ``path``."""
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read(min(upto, FINGERPRINT_BYTES))).hexdigest()


class Cursor:
    """Offsets per endpoint and file; with no data dir it lives in memory for one run only."""

    def __init__(self, data_dir: Path | None) -> None:
        self.data_dir = data_dir
        self.warnings: list[str] = []
        self._entries: dict[str, dict[str, dict[str, Any]]] = {}
        self._root = data_dir.resolve() if data_dir is not None else None
        self._lock_fd: int | None = None
        if data_dir is not None:
            self._load(data_dir / REPLAY_CURSOR_FILE)

    @property
    def path(self) -> Path | None:
        return None if self.data_dir is None else self.data_dir / REPLAY_CURSOR_FILE

    def _load(self, path: Path) -> None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise CursorError(f"cannot read the cursor {path}: {exc}") from None
        try:
            cursor = ReplayCursor.model_validate_json(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "document"
            raise CursorError(
                f"the cursor {path} is damaged ({where}: {first['msg']}); "
                "move it away to send everything again"
            ) from None
        self._entries = {
            endpoint: {name: entry.model_dump() for name, entry in files.items()}
            for endpoint, files in cursor.endpoints.items()
        }

    @contextlib.contextmanager
    def locked(self) -> Iterator[Cursor]:
        """Hold the data dir's replay lock (nothing to lock without a data dir)."""
        if self.data_dir is None:
            yield self
            return
        fd = os.open(self.data_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise CursorError(f"another replay of {self.data_dir} is running") from None
            yield self
        finally:
            os.close(fd)  # releases the lock

    def file_key(self, path: Path) -> str:
        resolved = path.resolve()
        if self._root is not None and resolved.is_relative_to(self._root):
            return resolved.relative_to(self._root).as_posix()
        return str(resolved)

    def offset(self, endpoint: str, path: Path) -> int:
        """Where to resume ``path`` for ``endpoint``: 0 for a new or replaced file."""
        key = self.file_key(path)
        entry = self._entries.get(endpoint, {}).get(key)
        if entry is None:
            return 0
        offset: int = entry["offset"]
        size = path.stat().st_size
        if offset > size or entry.get("head") != fingerprint(path, offset) or not _ends_line(path, offset):
            self.warnings.append(
                f"{path} changed since it was sent to {endpoint}; sending it again from the start"
            )
            return 0
        return offset

    def advance(self, endpoint: str, path: Path, offset: int) -> None:
        """Record that ``path`` was sent to ``endpoint`` up to byte ``offset``, durably."""
        self._entries.setdefault(endpoint, {})[self.file_key(path)] = {
            "offset": offset,
            "head": fingerprint(path, offset),
            "updated": time.time(),
        }
        if self.data_dir is not None:
            document = {"schema_version": CURSOR_SCHEMA_VERSION, "endpoints": self._entries}
            data = json.dumps(document, indent=1, sort_keys=True).encode()
            replace_file(self.data_dir, (), REPLAY_CURSOR_FILE, data, durable=True)


def _ends_line(path: Path, offset: int) -> bool:
    if offset == 0:
        return True
    with open(path, "rb") as handle:
        handle.seek(offset - 1)
        return handle.read(1) == b"\n"
