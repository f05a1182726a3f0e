"""The data dir's layout: every folder and file name modeltel writes, and which files a reader reads.

No other module spells a name under the data dir (docs/data-format.md shows the tree). A folder is
a data dir when it holds one of the signal folders or ``summaries.jsonl``; inside it each signal
has ``<signal>/<YYYY-MM-DD>/<service>-<pid>-<unix_start>.jsonl`` files, one per process.

Discovery reads only what modeltel (or a Collector) could have written: inside any folder only
regular files are taken and symlinks are not followed, so a FIFO named ``x.jsonl`` cannot hang a
command and a link planted as ``traces/<day>/passwd.jsonl`` cannot make one read ``/etc/passwd``.
A path named explicitly on the command line is the user's choice and may be a symlink.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

Signal = Literal["traces", "metrics", "logs"]
SIGNALS: tuple[Signal, ...] = ("traces", "metrics", "logs")
"""Each signal's folder directly under the data dir is named after it."""
SUMMARIES_FILE = "summaries.jsonl"
"""One RunSummary per finished job or process, shared by every process of the data dir."""
RUNNING_DIR = "running"
"""``running/<pid>-<span_id>.json``: one progress record per open job, removed when it ends."""
REPLAY_CURSOR_FILE = "replay-cursor.json"
"""How far ``modeltel replay`` got in each file, per endpoint."""
SUMMARY_SCHEMA_VERSION = 1
PROGRESS_SCHEMA_VERSION = 1
CURSOR_SCHEMA_VERSION = 1
"""The ``schema_version`` of a summary line, a progress record and the replay cursor (their models
are in store/schemas.py; the numbers are here so that a writer needs no pydantic to stamp them)."""
DATA_SUFFIXES = (".jsonl", ".json")
"""What a data file may be called: OTLP/JSON lines, or OTLP/JSON documents."""
_NOT_DATA_FILES = frozenset({SUMMARIES_FILE, REPLAY_CURSOR_FILE})
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class SourceError(FileNotFoundError):
    """A path given to a reading command does not exist or is not something that can be read."""


class UnsafeDataDir(PermissionError):
    """A data dir (or something in it) that another user owns or may write: not used."""


def check_private(info: os.stat_result, path: Path) -> None:
    """Raise :class:`UnsafeDataDir` unless ``info`` (of ``path``) is ours and only we may write it."""
    if info.st_uid != os.geteuid():
        raise UnsafeDataDir(f"{path} is owned by uid {info.st_uid}, not by this user (uid {os.geteuid()})")
    if info.st_mode & 0o022:
        mode = stat.S_IMODE(info.st_mode)
        raise UnsafeDataDir(f"{path} is writable by group or others (mode {mode:04o}; chmod go-w it)")


def unsafe_reason(root: Path) -> str | None:
    """Why the existing parts of data dir ``root`` must not be written to, or None. Creates nothing.

    Looks at the root, its folders (signal folders, their day folders, ``running/``) and its shared
    files (summaries, replay cursor); a part that does not exist yet will be made private.
    """
    parts = [root]
    for name in (*SIGNALS, RUNNING_DIR):
        folder = root / name
        if folder.is_dir() and not folder.is_symlink():
            parts.append(folder)
            if name != RUNNING_DIR:
                parts.extend(day for day in sorted(folder.iterdir()) if day.is_dir() and not day.is_symlink())
    parts.extend(p for p in (root / SUMMARIES_FILE, root / REPLAY_CURSOR_FILE) if p.exists())
    for part in parts:
        try:
            check_private(os.stat(part), part)
        except UnsafeDataDir as exc:
            return str(exc)
        except FileNotFoundError:
            continue
    return None


def file_safe(name: str) -> str:
    """``name`` reduced to characters that are safe in a file name."""
    return _UNSAFE.sub("_", name).strip("._") or "unknown_service"


@dataclass(frozen=True, slots=True)
class DataDir:
    """One data dir: where each file lives. It creates nothing; :mod:`modeltel.store.files` does."""

    root: Path

    def signal_dir(self, signal: Signal) -> Path:
        return self.root / signal

    @property
    def summaries(self) -> Path:
        return self.root / SUMMARIES_FILE

    @property
    def running(self) -> Path:
        return self.root / RUNNING_DIR

    @property
    def replay_cursor(self) -> Path:
        return self.root / REPLAY_CURSOR_FILE

    @staticmethod
    def process_file(signal: Signal, service: str, pid: int, started_s: float) -> tuple[tuple[str, str], str]:
        """``((signal, day), name)`` of a process's file for ``signal``, relative to the data dir."""
        day = datetime.fromtimestamp(started_s, UTC).strftime("%Y-%m-%d")
        return (signal, day), f"{file_safe(service)}-{pid}-{int(started_s)}.jsonl"

    def files(self, signal: Signal) -> list[Path]:
        """The files of ``signal``, sorted per folder."""
        return _files_under(self.signal_dir(signal), skip_dirs=frozenset())

    def exists(self) -> bool:
        return is_data_dir(self.root)


_PROCESS_FILE = re.compile(r"^.+-(\d+)-\d+\.jsonl$")


def file_pid(path: Path) -> int | None:
    """The pid in a process file's name (``<service>-<pid>-<unix_start>.jsonl``), else None.

    The SDK puts no ``process.pid`` on the resource unless its process detector is asked for, and a
    forked child shares its parent's resource; the name is that of the process that wrote the file.
    """
    match = _PROCESS_FILE.match(path.name)
    return int(match[1]) if match else None


def is_data_dir(path: Path) -> bool:
    """True for a modeltel data dir: it holds a signal folder or ``summaries.jsonl``."""
    return any((path / signal).is_dir() for signal in SIGNALS) or (path / SUMMARIES_FILE).is_file()


def is_regular(path: Path) -> bool:
    """A regular file, not a symlink, FIFO, socket or device (nothing that can block or redirect a read)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _files_under(folder: Path, skip_dirs: frozenset[str]) -> list[Path]:
    found = []
    for root, dirs, names in os.walk(folder):  # os.walk does not descend into linked folders
        dirs[:] = sorted(d for d in dirs if d not in skip_dirs and not d.startswith("."))
        for name in sorted(names):
            path = Path(root) / name
            if name.endswith(DATA_SUFFIXES) and name not in _NOT_DATA_FILES and is_regular(path):
                found.append(path)
    return found


def data_files(paths: Sequence[Path], data_dir: Path | None, signal: Signal | None) -> list[Path]:
    """The files holding ``signal`` (None: any signal) among ``paths``, or else in ``data_dir``.

    A data dir contributes its signal folder; any other folder is searched for ``*.jsonl`` and
    ``*.json`` (a Collector ``file`` exporter's output folder works as it is), leaving out other
    signals' folders and open jobs' progress records. Raises :class:`SourceError` for a path that
    does not exist or is not a file or folder. Order is stable and a file named twice is read once.
    """
    roots = list(paths) if paths else ([data_dir] if data_dir is not None else [])
    skip = frozenset({RUNNING_DIR, *(s for s in SIGNALS if signal is not None and s != signal)})
    found: list[Path] = []
    for root in roots:
        if not root.exists():
            raise SourceError(f"no such file or directory: {root}")
        if root.is_file():
            found.append(root)
        elif not root.is_dir():
            raise SourceError(f"not a regular file or folder: {root}")
        elif is_data_dir(root):
            for wanted in SIGNALS if signal is None else (signal,):
                found.extend(DataDir(root).files(wanted))
        else:
            found.extend(_files_under(root, skip))
    return list(dict.fromkeys(p.resolve() for p in found))


def summary_files(paths: Sequence[Path], data_dir: Path | None = None) -> list[Path]:
    """``summaries.jsonl`` of each data dir among ``paths`` (or of ``data_dir``), and any given directly."""
    roots = list(paths) if paths else ([data_dir] if data_dir is not None else [])
    found = []
    for root in roots:
        if root.is_file() and root.name == SUMMARIES_FILE:
            found.append(root)
        elif is_regular(root / SUMMARIES_FILE):
            found.append(root / SUMMARIES_FILE)
    return list(dict.fromkeys(p.resolve() for p in found))
