"""The hook's work: configure modeltel (leniently), then apply the installed instrumentors.

Like the stock hook, it takes its directory off PYTHONPATH while it works, so a subprocess started
meanwhile (by an instrumentor, say) is not hooked into a loop, and puts it back after, so the
program's own subprocesses are configured too.

A multiprocessing worker (spawn, forkserver) is not configured at start: it may never make a span,
and the configuration would then be paid for nothing in every worker. ``deferred`` configures it on
first use, and the instrumentors are applied right after.
"""

from __future__ import annotations

import os

from modeltel._internal.bootstrap import HOOK_DIRECTORY, warn


def start() -> None:
    """Never raises: a program must run the same whether or not its telemetry could be set up."""
    python_path = os.environ.get("PYTHONPATH")
    entries = python_path.split(os.pathsep) if python_path is not None else []
    if python_path is not None:
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in entries if p != HOOK_DIRECTORY)
    try:
        _configure_and_instrument()
    except Exception as exc:  # the program runs untraced rather than not at all
        warn(f"modeltel: telemetry not set up ({type(exc).__name__}: {exc}); the program runs without it")
    finally:
        if HOOK_DIRECTORY in entries:
            current = os.environ.get("PYTHONPATH", "")
            if HOOK_DIRECTORY not in current.split(os.pathsep):
                os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (HOOK_DIRECTORY, current) if p)


def _configure_and_instrument() -> None:
    from modeltel._internal import deferred

    if deferred.is_multiprocessing_child():
        deferred.arm(on_configure=_apply_installed)
        return
    from modeltel._internal.providers import configure

    configure()  # lenient: a bad variable is one warning and its default (modeltel run checked it)
    _apply_installed()


def _apply_installed() -> None:
    """Imported when applied: a worker that never records must not pay for the scanner (and the
    settings and dataclasses it imports) at its start."""
    from modeltel._internal.bootstrap.instrumentors import apply_installed

    apply_installed()
