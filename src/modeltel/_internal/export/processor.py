"""The processors in front of the JSONL files: batching with back-pressure instead of drops.

The SDK's ``BatchSpanProcessor`` drops the newest span when its queue is full. For the local copy
that is the wrong trade: under the GIL, sixteen threads creating spans can starve the export thread
long enough to overflow a 2,048-span queue (measured: ~2% of spans lost in tests/reliability).
This processor batches the same way (``OTEL_BSP_*`` settings: queue size, batch size, schedule
delay), but a thread that ends a span into a full queue waits for the writer to make room, which
also hands the writer the GIL it was starved of. Memory stays bounded by the queue size (plus the
batch being written) and, while the disk answers, nothing is dropped.

:class:`BackPressureBatcher` is that mechanism for any item; :class:`BackPressureSpanProcessor` is
it for spans, and the log file has its twin (``BackPressureLogProcessor`` in ``export/logs.py``,
which imports the logs SDK only when logs are on), with the same ``OTEL_BSP_*`` sizes.

Only the writer thread touches the disk. Every other thread only waits for it, and every wait is
bounded, because a disk can stop answering (an NFS server gone away: ``writev`` sleeps or never
returns) and the application must not stop with it:

- a span call waits for room at most :data:`PRESSURE_TIMEOUT_S`, once. If that passes, or the
  writer has been inside one write for that long, the disk counts as stalled: spans that do not
  fit in the queue are dropped and counted (the process summary's ``dropped_spans``, the report at
  exit) without waiting, until a write completes quickly again;
- :meth:`force_flush` waits at most its timeout, and gives up early once the disk is stalled;
- :meth:`shutdown` waits at most :data:`EXIT_TIMEOUT_S` for the writer to drain the queue and
  write the summaries; what it had not written by then is counted as dropped.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any, Generic, Protocol, TypeVar

from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, Context, attach, detach, set_value
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from modeltel._internal import sigterm
from modeltel._internal.config import Settings
from modeltel._internal.export.local import LocalSpanExporter

PRESSURE_TIMEOUT_S = 5.0
"""The longest a span call waits for room in a full queue, and the time after which a write that
has not returned marks the disk as stalled. A local write of a batch takes milliseconds."""
EXIT_TIMEOUT_S = 5.0
"""The longest shutdown waits for the local copy. A fixed bound rather than OTEL_BSP_EXPORT_TIMEOUT
(30 s by default): schedulers and Kubernetes give 30 s between SIGTERM and SIGKILL, and waiting
that long on a dead disk would leave no time for the other exporters or the report of the loss."""
MIN_DELAY_S = 0.001
"""A schedule delay of 0 or less would make the writer spin; the SDK requires at least 1 ms too."""
IDLE_POLL_S = 0.05
"""With an empty queue the writer wakes at most this often, whatever the schedule delay."""

_logger = logging.getLogger(__name__)
_T = TypeVar("_T")
_T_contra = TypeVar("_T_contra", contravariant=True)
_E = TypeVar("_E", bound="LocalExporter[Any]")


def batch_sizes(settings: Settings) -> dict[str, int]:
    """The ``OTEL_BSP_*`` queue size, schedule delay and batch size as a batch processor's keywords:
    every batching processor modeltel builds (each signal's local copy, each network exporter's)
    takes them."""
    return {
        "max_queue_size": settings.bsp_max_queue_size,
        "schedule_delay_millis": settings.bsp_schedule_delay_ms,
        "max_export_batch_size": settings.bsp_max_export_batch_size,
    }


class LocalExporter(Protocol[_T_contra]):
    """What a :class:`BackPressureBatcher` writes through: the local copy's exporter of a signal."""

    @property
    def settings(self) -> Settings: ...

    def export(self, batch: Sequence[_T_contra], /) -> object: ...

    def shutdown(self) -> None: ...

    def count_dropped(self, count: int, reason: str) -> None: ...


class BackPressureBatcher(Generic[_T, _E]):
    """Batches items for ``exporter`` on one writer thread; a full queue makes the calling thread
    wait for room (bounded, see the module docstring). Subclasses feed it from their processor's
    hook with :meth:`_put`.

    Sizes that make no sense are made to: the queue holds at least one item and a batch is between
    one item and the queue size, so no value can make a loop here run forever.
    """

    thread_name = "modeltel-jsonl-writer"

    def __init__(
        self,
        exporter: _E,
        *,
        max_queue_size: int = 2048,
        schedule_delay_millis: float = 5000,
        max_export_batch_size: int = 512,
        pressure_timeout_s: float = PRESSURE_TIMEOUT_S,
        exit_timeout_s: float = EXIT_TIMEOUT_S,
    ) -> None:
        self.exporter = exporter
        self.max_queue_size = max(1, int(max_queue_size))
        self.batch_size = min(max(1, int(max_export_batch_size)), self.max_queue_size)
        self.delay_s = max(schedule_delay_millis / 1e3, MIN_DELAY_S)
        self.pressure_timeout_s = pressure_timeout_s
        self.exit_timeout_s = exit_timeout_s
        self._stall_reason = (
            f"the disk under {exporter.settings.data_dir} has not finished a write within "
            f"{pressure_timeout_s:g} s"
        )
        self._shutdown = False
        self._start()
        os.register_at_fork(after_in_child=self._start)

    def _start(self) -> None:
        # Also the after-fork hook: the child starts empty (the parent writes what it queued),
        # with a fresh condition and its own writer thread.
        self._queue: collections.deque[_T] = collections.deque()
        self._changed = threading.Condition(threading.Lock())
        self._wake = threading.Event()
        self._taken = 0  # spans the writer took from the queue (writer only, under _changed)
        self._written = 0  # of those, the ones whose export has returned
        self._flush_to = 0  # the writer writes until _taken reaches this, whatever the batch size
        self._writing_since: float | None = None  # when the export in progress began
        self._slow = False  # the last export took longer than the pressure timeout
        self._abandoned = False  # shutdown gave up waiting: the writer must take nothing more
        self._closed = threading.Event()
        self._worker = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._worker.start()

    def _put(self, item: _T) -> None:
        """Queue ``item``, waiting for room if the queue is full (see :meth:`_room`)."""
        if self._shutdown:
            return
        queue = self._queue
        if len(queue) >= self.max_queue_size and not self._room():
            self.exporter.count_dropped(1, self._stall_reason)
            return
        queue.append(item)
        if len(queue) >= self.batch_size and not self._wake.is_set():
            self._wake.set()

    def stalled(self) -> bool:
        """Whether the disk stopped answering: the last write was slow, or one has not returned."""
        since = self._writing_since
        return self._slow or (since is not None and time.monotonic() - since >= self.pressure_timeout_s)

    def _room(self) -> bool:
        """Wait (bounded, once) until the queue has room; False if the disk is stalled.

        Under :func:`~modeltel._internal.sigterm.deferred`, as every main-thread section holding
        ``_changed``: a SIGTERM handler's shutdown takes it too, and it is not reentrant.
        """
        if self.stalled():
            return False
        self._wake.set()
        queue, limit = self._queue, self.max_queue_size
        with sigterm.deferred(), self._changed:
            if self._changed.wait_for(lambda: len(queue) < limit or self._shutdown, self.pressure_timeout_s):
                return not self._shutdown
            self._slow = True  # cleared by the next quick write
            return False

    # --- writer thread --------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._shutdown:
            # With nothing queued, a tiny schedule delay would only make the writer spin.
            idle = not self._queue
            woken = self._wake.wait(max(self.delay_s, IDLE_POLL_S) if idle else self.delay_s)
            self._wake.clear()
            if self._shutdown:
                break
            # Woken by a full batch or a flush: full batches and what the flush asked for;
            # the timer: everything.
            self._export_batches(everything=not woken)
        self._finish()

    def _export_batches(self, everything: bool) -> None:
        """Export oldest-first batches of what is queued now: all of it, or full batches plus what
        a flush asked for. Bounded by the length at the start, however fast items keep coming."""
        queue, size = self._queue, self.batch_size
        left = len(queue)
        token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            while left > 0 and not self._abandoned:
                if not everything and len(queue) < size and self._taken >= self._flush_to:
                    break
                with self._changed:
                    batch = [queue.popleft() for _ in range(min(size, len(queue)))]
                    if not batch:
                        break
                    self._taken += len(batch)
                    self._writing_since = time.monotonic()
                    self._changed.notify_all()  # room in the queue
                left -= len(batch)
                self._export(batch)
        finally:
            detach(token)

    def _export(self, batch: list[_T]) -> None:
        started = time.monotonic()
        try:
            self.exporter.export(batch)
        except Exception:
            _logger.exception("modeltel: the JSONL exporter failed; the app runs on")
        with self._changed:
            self._written += len(batch)
            self._writing_since = None
            self._slow = time.monotonic() - started >= self.pressure_timeout_s
            self._changed.notify_all()

    def _finish(self) -> None:
        """The last batches and the summaries, on the writer thread; shutdown waits for this."""
        try:
            self._export_batches(everything=True)
            if not self._abandoned:
                self.exporter.shutdown()
        except Exception:
            _logger.exception("modeltel: error while closing the JSONL files")
        finally:
            self._closed.set()

    # --- flush and shutdown (any thread) --------------------------------------------------------
    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Wait until every item queued before this call is written; False after ``timeout_millis``,
        or as soon as the disk is stalled (the items stay queued)."""
        queue = self._queue
        if not queue and self._written == self._taken:  # nothing queued, nothing being written
            return True
        if self._shutdown or self.stalled():
            return False
        deadline = time.monotonic() + max(timeout_millis, 0) / 1e3
        with sigterm.deferred(), self._changed:  # deferred: see _room
            target = self._taken + len(queue)
            self._flush_to = max(self._flush_to, target)
            self._wake.set()
            while self._written < target:
                now = time.monotonic()
                if now >= deadline or self.stalled():
                    return False
                since = self._writing_since
                recheck = since + self.pressure_timeout_s if since is not None else deadline
                self._changed.wait(max(min(deadline, recheck) - now, 0.001))
        return True

    def shutdown(self) -> None:
        """Write what is queued and the summaries, waiting at most :attr:`exit_timeout_s`; count
        what was not written by then (its summary line is lost with it)."""
        if self._shutdown:
            return
        self._shutdown = True
        with self._changed:
            self._changed.notify_all()  # a call waiting for room gives up now
        self._wake.set()
        if not self._worker.is_alive():  # the writer died with its process's fork, or never ran
            self._worker = threading.Thread(target=self._finish, name=self.thread_name, daemon=True)
            self._worker.start()
        if self._closed.wait(self.exit_timeout_s):
            return
        with self._changed:
            self._abandoned = True
            lost = len(self._queue) + (self._taken - self._written)
            self._queue.clear()
        self.exporter.count_dropped(lost, self._stall_reason)


class BackPressureSpanProcessor(BackPressureBatcher[ReadableSpan, LocalSpanExporter], SpanProcessor):
    """The trace file's processor: sampled spans, as they end, into a :class:`BackPressureBatcher`."""

    @property
    def span_exporter(self) -> LocalSpanExporter:
        return self.exporter

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if span.context.trace_flags.sampled:
            self._put(span)
