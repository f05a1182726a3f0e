"""Flush on SIGTERM without deadlocking on the locks the interrupted code holds; keep the exit
status of a program a signal ended (SIGTERM here, SIGINT in :func:`at_exit`).

Python runs a signal handler on the main thread between two bytecodes. Modeltel's handler flushes
and shuts telemetry down, which takes the span processors' locks, and those locks are not
reentrant. If the main thread was itself inside a flush, a shutdown or a wait for room in the
local copy's queue when the signal came, it may hold them, and the handler would wait for them
forever.

The handler is installed when ``modeltel`` is first imported on the main thread (:func:`install`),
not when telemetry is configured: Python lets only the main thread set a handler, and an app whose
first ``simulation.run`` happens in a thread pool configures there. At SIGTERM it shuts down
whatever configuration exists by then (none: it only dies of SIGTERM, as without modeltel). A
handler the app set before importing modeltel is left alone, as is one it sets after.

Those places run under :func:`deferred`. A SIGTERM arriving inside one is remembered and sent
again when the outermost one ends, so the handler then runs with no lock held. Other threads need
no deferral: the handler waits for their locks, and they go on and release them.

Deferral is bounded: a flush that never ends (a disk or a receiver that stopped answering, a
plug-in exporter that hangs) must not make the process immortal. A SIGTERM waits at most
:data:`DEFER_LIMIT_S` for the section it interrupted, and a second SIGTERM does not wait at all;
either way the handler then shuts down at once (every wait in the shutdown is bounded, so the
locks the interrupted section holds cost their timeouts, not forever) and the process dies of
SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType

TYPE_CHECKING = False  # not typing's: ``import modeltel`` (and so every CLI command) pays for typing
if TYPE_CHECKING:
    from typing import Any

DEFER_LIMIT_S = 5.0
"""The longest a SIGTERM waits for the flush it interrupted. Modeltel's flushes take milliseconds
and give up on a stalled disk after 5 s themselves; this is the bound for anything else, well
inside the 30 s schedulers and Kubernetes give between SIGTERM and SIGKILL."""

_held = 0
_pending = False
_deadline: threading.Timer | None = None


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold off modeltel's SIGTERM handler while the main thread is in here; no-op elsewhere."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    global _held, _pending
    _held += 1
    try:
        yield
    finally:
        _held -= 1
        if _held == 0 and _pending:
            _pending = False
            _cancel_deadline()
            os.kill(os.getpid(), signal.SIGTERM)


def handler(shutdown: Callable[[], None]) -> Callable[[int, FrameType | None], Any]:
    """A SIGTERM handler: ``shutdown()`` (flush), then die of SIGTERM as if modeltel were not there,
    so the exit status stays honest. Inside :func:`deferred` the first SIGTERM waits for the
    section to end, at most :data:`DEFER_LIMIT_S`; a second one (or that deadline) does not."""

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        global _pending
        if _held and not _pending:
            _pending = True
            _start_deadline()
            return
        _cancel_deadline()
        try:
            shutdown()
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    return on_sigterm


def _start_deadline() -> None:
    """Send SIGTERM again after :data:`DEFER_LIMIT_S`: the second one is not deferred."""
    global _deadline
    _deadline = threading.Timer(DEFER_LIMIT_S, os.kill, (os.getpid(), signal.SIGTERM))
    _deadline.name = "modeltel-sigterm-deadline"
    _deadline.daemon = True
    _deadline.start()


def _cancel_deadline() -> None:
    global _deadline
    if _deadline is not None:
        _deadline.cancel()
        _deadline = None


def at_exit(shutdown: Callable[[], None]) -> Callable[[], None]:
    """``shutdown`` for :mod:`atexit` that keeps the status of a program a Ctrl-C ended.

    A program ended by an uncaught KeyboardInterrupt dies of SIGINT (status -2, 130 in a shell):
    CPython sets a flag when the exception leaves ``__main__`` and kills itself with SIGINT after
    the exit handlers. But running any code from a string (``exec("...")``, which every
    ``dataclass`` and ``namedtuple`` definition does) clears that flag, and the flush at exit
    imports and defines such things, so the program exited 1 instead. Running one string that
    raises KeyboardInterrupt sets the flag again, and the handlers registered before this one
    still run, as they would without modeltel.
    """

    def shutdown_keeping_sigint() -> None:
        interrupted = isinstance(getattr(sys, "last_value", None), KeyboardInterrupt)
        try:
            shutdown()
        finally:
            if interrupted:
                with contextlib.suppress(KeyboardInterrupt):
                    exec("raise KeyboardInterrupt", {})  # a string: only that path sets the flag

    return shutdown_keeping_sigint


def install() -> None:
    """Put modeltel's handler on SIGTERM, from the main thread, where no handler is set yet."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, handler(_shutdown_configured))


def _shutdown_configured() -> None:
    providers = sys.modules.get("modeltel._internal.providers")  # not imported: nothing was configured
    current = getattr(providers, "_current", None)
    if current is not None:
        current.shutdown()
