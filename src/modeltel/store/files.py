"""The file primitives under the data dir: the one place modeltel creates files.

Append-only files hold the data (traces, metrics, summaries); small state files (a running job's
progress record, the replay cursor) are replaced whole and atomically.

Directories are 0700 and files 0600 (a stricter umask still applies). A directory or file in the
data dir that another user owns, or that group or others may write, is refused
(:class:`~modeltel.store.layout.UnsafeDataDir`): whoever could write there could read the data or
move it away. Below the data dir every
directory is opened relative to its parent with ``O_NOFOLLOW``, and files with ``O_NOFOLLOW`` too,
so a symlink planted inside the data dir cannot redirect a write elsewhere. A line is one ``writev``
on an ``O_APPEND`` descriptor: concurrent writers never interleave within a line, and a crash tears
at most the last one.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from modeltel.store.layout import DataDir, Signal, UnsafeDataDir, check_private

_logger = logging.getLogger(__name__)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
LOCK_TIMEOUT_S = 5.0
"""How long a :class:`ProcessFile` waits for a write in progress before giving up on it."""


def private_dir(path: Path) -> None:
    """Create ``path`` and any missing parents with mode 0700 (``mkdir -p`` gives parents 0777)."""
    if path.is_dir():
        return
    if path.parent != path:
        private_dir(path.parent)
    with contextlib.suppress(FileExistsError):  # another process made it first
        path.mkdir(mode=0o700)


def open_dir(root: Path, parts: Sequence[str]) -> int:
    """A descriptor of ``root/parts...``, creating what is missing; no part may be a symlink.

    ``root`` is the user's choice (it may itself be a link); everything below it is modeltel's.
    """
    private_dir(root)
    fd = os.open(root, _DIR_FLAGS)
    try:
        check_private(os.fstat(fd), root)
        where = root
        for part in parts:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o700, dir_fd=fd)
            child = os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd, where = child, where / part
            check_private(os.fstat(fd), where)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_append(root: Path, parts: Sequence[str], name: str) -> int:
    """An ``O_APPEND`` descriptor of ``root/parts.../name``, created 0600."""
    directory = open_dir(root, parts)
    try:
        fd = os.open(name, _FILE_FLAGS, 0o600, dir_fd=directory)
    finally:
        os.close(directory)
    try:
        check_private(os.fstat(fd), root.joinpath(*parts, name))
    except UnsafeDataDir:
        os.close(fd)
        raise
    return fd


def write_line(fd: int, data: bytes) -> None:
    """``data`` and a newline in one ``writev`` (no copy of a large batch to add one byte).

    A short write (full disk, signal) is finished with plain writes.
    """
    written = os.writev(fd, (data, b"\n"))
    if written < len(data) + 1:
        view = memoryview(data + b"\n")[written:]
        while view:
            view = view[os.write(fd, view) :]


def replace_file(root: Path, parts: Sequence[str], name: str, data: bytes, *, durable: bool = False) -> None:
    """Make ``root/parts.../name`` hold ``data``, atomically: a reader sees the old or the new file.

    Written to a private temporary name beside it, then renamed over it (a symlink planted at
    ``name`` is replaced, never followed). ``durable`` adds an ``fsync`` before the rename, for
    state that must survive a power cut (the replay cursor); progress records skip it.
    """
    directory = open_dir(root, parts)
    temporary = f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        try:
            fd = os.open(temporary, _NEW_FILE_FLAGS, 0o600, dir_fd=directory)
        except FileExistsError:  # left by a killed writer whose pid and thread id we now have
            os.unlink(temporary, dir_fd=directory)
            fd = os.open(temporary, _NEW_FILE_FLAGS, 0o600, dir_fd=directory)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temporary, name, src_dir_fd=directory, dst_dir_fd=directory)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=directory)
        raise
    finally:
        os.close(directory)


def remove_file(root: Path, parts: Sequence[str], name: str) -> None:
    """Remove ``root/parts.../name`` if it is there (a missing directory creates nothing)."""
    try:
        fd = os.open(root, _DIR_FLAGS)
    except FileNotFoundError:
        return
    try:
        for part in parts:
            child = os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = child
        os.unlink(name, dir_fd=fd)
    except FileNotFoundError:
        return
    finally:
        os.close(fd)


def append_line(root: Path, name: str, line: str) -> None:
    """Append one line to ``root/name`` (e.g. ``summaries.jsonl``), shared by all processes.

    Other processes append to the same file, so a line torn by a failed write cannot be cut back;
    the next line this process appends starts with a newline instead, so only the torn one is lost.
    """
    key = str(root / name)
    data = line.encode("utf-8", "backslashreplace")
    fd = open_append(root, (), name)
    try:
        write_line(fd, b"\n" + data if key in _TORN else data)
        _TORN.discard(key)
    except OSError:
        _TORN.add(key)
        raise
    finally:
        os.close(fd)


_TORN: set[str] = set()
"""Shared files whose last write from this process failed part-way."""


class ProcessFile:
    """The append-only file of one signal for the current process, opened on first write.

    Named ``<signal>/<YYYY-MM-DD>/<service>-<pid>-<unix_start>.jsonl``. A forked child opens its
    own. If the file is deleted under a running process (a cleanup script, a removed data dir), the
    next write notices (link count 0), warns once and starts a new file instead of writing into the
    void. ``backslashreplace`` keeps lone surrogates, possible only inside JSON strings, as valid
    JSON escapes.

    A write to a disk that stopped answering (an NFS server gone) can block for as long as the
    disk does, holding this file's lock. So the lock is never waited for without a bound: a write
    that cannot get it within ``lock_timeout_s`` fails with :class:`TimeoutError` (an ``OSError``,
    counted as a loss like any write error), and :meth:`close` leaves a descriptor in use by a
    stuck write open rather than wait (the process's exit closes it).
    """

    def __init__(self, data_dir: Path, signal: Signal, lock_timeout_s: float = LOCK_TIMEOUT_S) -> None:
        self.data_dir = data_dir
        self.signal = signal
        self.lock_timeout_s = lock_timeout_s
        self._fd: int | None = None
        self._pid = 0
        self.path: Path | None = None
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        # The parent's descriptor and lock state are not ours: a child writes its own file.
        self._lock = threading.Lock()
        if self._fd is not None:
            os.close(self._fd)
        self._fd = None
        self.path = None

    def _open(self, service: str) -> int:
        pid = os.getpid()
        parts, name = DataDir.process_file(self.signal, service, pid, time.time())
        self._fd = open_append(self.data_dir, parts, name)
        self._pid, self.path = pid, self.data_dir.joinpath(*parts, name)
        return self._fd

    def _current(self, service: str) -> tuple[int, int]:
        """The descriptor to write to and the file's size now (where the next line begins)."""
        fd = self._fd
        if fd is None or self._pid != os.getpid():
            fd = self._open(service)
            return fd, os.fstat(fd).st_size
        info = os.fstat(fd)
        if info.st_nlink == 0:
            _logger.warning("modeltel: %s was deleted while in use; writing a new file", self.path)
            os.close(fd)
            fd = self._open(service)
            return fd, os.fstat(fd).st_size
        return fd, info.st_size

    def write(self, line: str, service: str) -> None:
        """Append ``line``; if that fails part-way (a full disk), the file is cut back to where the
        line began, so the next line starts clean and only this one is lost."""
        data = line.encode("utf-8", "backslashreplace")
        if not self._lock.acquire(timeout=self.lock_timeout_s):
            raise TimeoutError(
                errno.ETIMEDOUT, f"an earlier write has not returned for {self.lock_timeout_s:g} s"
            )
        try:
            fd, end = self._current(service)  # this process is the file's only writer
            try:
                write_line(fd, data)
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, end)
                raise
        finally:
            self._lock.release()

    def close(self) -> None:
        """Close the descriptor, unless a write still holds it after ``lock_timeout_s``."""
        if not self._lock.acquire(timeout=self.lock_timeout_s):
            _logger.warning("modeltel: %s: a write has not returned; the file is left open", self.path)
            return
        try:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None
        finally:
            self._lock.release()
