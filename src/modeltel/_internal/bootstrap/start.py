"""The hook's work: arm the configuration (or configure at once), then apply the installed instrumentors.

Like the stock hook, it takes its directory off PYTHONPATH while it works, so a subprocess started
meanwhile (by an instrumentor, say) is not hooked into a loop, and puts it back after, so the
program's own subprocesses are configured too.

The program is configured when it first has something to record (``deferred``): its first use of
the OpenTelemetry API (an instrumentor asking for a tracer counts), of modeltel's domain API, or
its first log record. Importing the SDK is most of what configuring costs, and a program that
records nothing (a job-array step that stops at its input check, a ``--help``) pays none of it; one
that records ends with the same files. A program started inside a trace (``TRACEPARENT``) is
configured at once. A multiprocessing worker (spawn, forkserver) is armed the same way, and its
instrumentors are applied only once it configures.
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
    if _inside_a_trace():
        from modeltel._internal.providers import configure

        configure()  # lenient: a bad variable is one warning and its default (modeltel run checked it)
    else:
        deferred.arm(lazy_providers=deferred.providers_entry_points())
    _apply_installed()  # an instrumentor that asks for a tracer now configures now


def _inside_a_trace() -> bool:
    """A program started with a trace context in its environment will record, and that context
    must become its main thread's starting context, which configure() attaches on its caller."""
    # Read here rather than through config.context_carrier: importing the settings is a tenth of what
    # a program that records nothing would otherwise pay.
    return bool(os.environ.get("TRACEPARENT", "").strip())


def _apply_installed() -> None:
    """The scanner is imported when applied: a worker applies it only once it configures, and a
    worker that never records must not pay for it at its start."""
    from modeltel._internal.bootstrap.instrumentors import apply_installed

    apply_installed()
