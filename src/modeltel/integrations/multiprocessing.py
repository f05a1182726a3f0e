"""One trace across ``multiprocessing`` (fork, spawn, forkserver) and ``ProcessPoolExecutor``.

Installed by :func:`modeltel.configure` (so by ``modeltel run`` too), never at import. The user's
worker function does not change: spans it opens are children of the span that was current where
the work was handed over, in the same trace, written by the worker to its own file.

Nor does configure import multiprocessing (about 20 modules, 10-15 ms) for an app that never uses
it: each class is patched when the module defining it is imported (:mod:`modeltel._internal.on_import`),
at configure if it already is. This module imports none of them at its top.

How the context travels (always as a W3C carrier made by the OpenTelemetry propagation API, a
``dict`` of short strings pickled with the work, never as inherited memory):

* ``Process.start()`` records the carrier of the current span on the process object. The child
  attaches it around ``run()``, so a plain ``Process(target=f)`` is covered whatever its start
  method. With spawn and forkserver the same object also carries the parent's effective settings
  (service name, run id, data dir, exporters): unpickling it in the fresh interpreter arms
  :mod:`modeltel._internal.deferred` with them, so the child configures modeltel when it first has
  something to record (a task or a process started inside a sampled span, the OpenTelemetry API,
  a log record) and writes its own file of the same run even when the parent was configured from
  code rather than from the environment. A worker that records nothing never imports the SDK:
  nothing this module imports at the top needs it.
* ``Pool.apply_async`` / ``map`` / ``starmap`` / ``imap`` / ``imap_unordered`` (and their sync
  forms) and ``ProcessPoolExecutor.submit`` / ``map`` wrap the task function in :class:`TracedCall`
  at submit time, capturing the context *then*, not when the pool was created. A worker process
  is long-lived and runs tasks from many spans; each task runs under its own submitter's context.
  ``Pool.map`` wraps the chunk (one attach and one flush per chunk, not per item).

Durability (for log records as for spans, the log file is flushed with the trace file): a worker's
batch span processor would hold finished spans for up to ``OTEL_BSP_SCHEDULE_DELAY`` (5 s), all
lost if the worker is SIGKILLed (OOM killer, a pool's ``terminate()``, a cluster scheduler). So
when a task ran in another process than its submitter, :class:`TracedCall` flushes the *JSONL* span
processors after the task, before its result goes back to the parent: once the parent holds a
result, that task's spans are on disk, and a killed worker
loses only the spans of the task it was running. The flush is synchronous in the worker (it hands
the spans to the local copy's writer thread and waits for the write, at most 5 s if the disk has
stalled: export/processor.py): an empty queue costs a length check (about 1 µs), so a task that
opened no span pays nothing; a task that ended spans pays one export call (encode, one ``write``)
for all of them, plus the hand-over to the writer thread (about 55 µs more CPU than writing in the
calling thread, measured on a shared 2-core VM). ``bench/pool.py`` measures it: on a shared 2-core VM
about 50-100 µs per flushed task, against 30-50 µs for the span itself. ``Pool.map`` pays it once
per chunk, ``ProcessPoolExecutor.submit`` once per task; both keep the guarantee above, which
batching by time could not give. OTLP processors are not flushed per task (a network round trip
per task would dominate small tasks); they keep batching and a SIGKILL can cost them the last
batch, which the JSONL file still has for ``modeltel replay``. Metrics are never flushed per task:
they aggregate in the process and leave at the export interval and at exit.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from modeltel._internal import deferred, on_import

if TYPE_CHECKING:
    import multiprocessing.process

    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import SpanProcessor

    from modeltel._internal.config import Settings
    from modeltel._internal.providers import Handle

__all__ = ["TracedCall", "install", "traced", "uninstall"]

P = ParamSpec("P")
R = TypeVar("R")

_lock = threading.Lock()
_originals: dict[tuple[type, str], Any] = {}
_worker_overrides: dict[str, Any] = {}
_PROCESS_ATTRIBUTE = "_modeltel_context"


def worker_overrides(settings: Settings) -> dict[str, Any]:
    """The parent's effective settings as :func:`modeltel.configure` keyword overrides for a child.

    Plain values only (the data dir as a string, each signal's OTLP settings as a dict), the loose
    forms ``configure()`` takes: unpickling them in a worker imports nothing, where a ``Path`` and
    the settings' own classes would import the settings module and its paths (~15 ms) in every
    worker, also in the many that never record and so never configure.
    """
    import dataclasses  # here: a worker imports this module, and only a configured parent calls this

    values = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings) if f.name != "sources"}
    values["data_dir"] = str(settings.data_dir.absolute())
    values["otlp"] = {
        signal: {**dataclasses.asdict(otlp), "headers": otlp.header_values()}
        for signal, otlp in settings.otlp.items()
    }
    return values


def _current_handle() -> Handle | None:
    """This process's handle, without importing the SDK where nothing configured modeltel."""
    providers = sys.modules.get("modeltel._internal.providers")
    return None if providers is None else providers.current()


def _configure_if_recording(ctx: Context | None) -> Handle | None:
    """The handle, configuring first when ``ctx`` holds a sampled span: its work will make spans."""
    handle = _current_handle()
    if handle is None and ctx is not None:
        from opentelemetry import trace

        span_context = trace.get_current_span(ctx).get_span_context()
        if span_context.is_valid and span_context.trace_flags.sampled:
            handle = deferred.configure_now()
    return handle


# --- per-task wrapper ---------------------------------------------------------------------------

_last_context: tuple[Mapping[str, str], Context | None] | None = None
_jsonl_processors: tuple[int, Handle | None, tuple[SpanProcessor, ...]] = (0, None, ())


def _context_for(carrier: Mapping[str, str]) -> Context | None:
    """The context ``carrier`` holds; None for an empty one where no context was ever attached.

    An empty carrier means a fresh empty context, and in a process that has not even imported the
    context API there is nothing current to replace: the task runs as it is, at no cost.
    """
    # Pool.map sends one carrier per chunk and a sweep submits thousands of tasks from one span:
    # remembering the last one saves the parse. A race only means parsing twice.
    global _last_context
    if not carrier and "opentelemetry.context" not in sys.modules:
        return None
    last = _last_context
    if last is not None and last[0] == carrier:
        return last[1]
    from modeltel._internal.propagation import extract

    ctx = extract(carrier)
    _last_context = (carrier, ctx)
    return ctx


def _jsonl_processors_of(handle: Handle) -> tuple[SpanProcessor, ...]:
    global _jsonl_processors
    pid, known, found = _jsonl_processors
    if known is handle and pid == os.getpid():
        return found
    found = tuple(handle.local_copies)  # the trace file's and the log file's
    _jsonl_processors = (os.getpid(), handle, found)
    return found


def flush_finished_spans(handle: Handle | None = None) -> None:
    """Write every span this process has finished, and every record it has logged, to its JSONL
    files now (see the module docstring).

    The processors' flush holds off modeltel's SIGTERM handler meanwhile (``modeltel/_internal/sigterm.py``):
    a pool's ``terminate()`` arriving mid-flush would otherwise flush again under the same locks.
    """
    handle = _current_handle() if handle is None else handle
    if handle is None or not handle.enabled:
        return
    processors = _jsonl_processors_of(handle)
    if not processors:
        return
    for processor in processors:
        processor.force_flush()


class TracedCall(Generic[P, R]):
    """``fn`` that runs under the context captured when it was wrapped, in whatever process.

    Picklable whenever ``fn`` is (it pickles as ``fn``, the carrier and the submitting pid). In a
    process where modeltel is not configured yet (a spawned worker), calling it configures modeltel
    first when the carrier holds a sampled span (with the parent's settings the worker was armed
    with, else from the environment); a task handed over outside any span leaves the worker as it
    was. In a configured process other than the submitter's, the task's finished spans are flushed
    to the JSONL file before the call returns.
    """

    __slots__ = ("carrier", "fn", "origin_pid")

    def __init__(
        self, fn: Callable[P, R], carrier: Mapping[str, str] | None = None, origin_pid: int | None = None
    ) -> None:
        self.fn = fn
        if carrier is None:
            from modeltel._internal.propagation import capture

            carrier = capture()
        self.carrier: Mapping[str, str] = carrier
        self.origin_pid = os.getpid() if origin_pid is None else origin_pid

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        remote = os.getpid() != self.origin_pid
        ctx = _context_for(self.carrier)
        if remote:
            _configure_if_recording(ctx)
        try:
            if ctx is None:
                return self.fn(*args, **kwargs)
            from opentelemetry import context as otel_context

            token = otel_context.attach(ctx)
            try:
                return self.fn(*args, **kwargs)
            finally:
                otel_context.detach(token)
        finally:
            if remote:
                flush_finished_spans()  # configured by now if the task recorded anything

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.fn, self.carrier, self.origin_pid))

    @property
    def __name__(self) -> str:
        """The wrapped function's name: what pools, Dask keys and tracebacks show."""
        return str(getattr(self.fn, "__name__", type(self.fn).__name__))

    def __repr__(self) -> str:
        return f"TracedCall({self.fn!r})"


def traced(fn: Callable[P, R]) -> Callable[P, R]:
    """Wrap ``fn`` so it runs under the current context wherever it is called (another process too).

    The patches :func:`install` makes do this for multiprocessing and ``ProcessPoolExecutor``; use it
    directly for executors modeltel does not patch (``loky``, ``joblib``, a custom queue).
    """
    if isinstance(fn, TracedCall):
        return fn
    return TracedCall(fn)


# --- Process ------------------------------------------------------------------------------------


class _ProcessContext:
    """Attached to a ``Process`` at ``start()``: the carrier, and for spawn the parent's settings
    and whether the API's lazy providers can reach modeltel (:mod:`modeltel._internal.deferred`)."""

    __slots__ = ("carrier", "lazy_providers", "overrides")

    def __init__(
        self, carrier: Mapping[str, str], overrides: Mapping[str, Any] | None, lazy_providers: bool = False
    ) -> None:
        self.carrier = carrier
        self.overrides = overrides
        self.lazy_providers = lazy_providers

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore_process_context, (self.carrier, self.overrides, self.lazy_providers))


def _restore_process_context(
    carrier: Mapping[str, str], overrides: Mapping[str, Any] | None, lazy_providers: bool = False
) -> Any:
    # Runs while a spawn/forkserver child unpickles its Process object, before ``_bootstrap``:
    # arms the deferred configure and patches ``_bootstrap`` alone, so that it attaches ``carrier``.
    try:
        import multiprocessing.process  # unpickled by multiprocessing: imported already

        deferred.arm(overrides=overrides, lazy_providers=lazy_providers)
        with _lock:
            _patch(multiprocessing.process.BaseProcess, "_bootstrap", _bootstrap)
    except Exception:  # the child must start even if telemetry cannot
        import logging

        logging.getLogger(__name__).exception("modeltel: could not prepare a child process")
    return _ProcessContext(carrier, None)


def _start(self: multiprocessing.process.BaseProcess) -> None:
    from multiprocessing.process import BaseProcess

    from modeltel._internal.propagation import capture

    marker = _ProcessContext(capture(), _worker_overrides, deferred.providers_entry_points())
    setattr(self, _PROCESS_ATTRIBUTE, marker)
    _originals[(BaseProcess, "start")](self)


def _bootstrap(self: multiprocessing.process.BaseProcess, *args: Any, **kwargs: Any) -> int:
    from multiprocessing.process import BaseProcess

    original = _originals.get((BaseProcess, "_bootstrap"))
    if original is None:  # uninstalled in the parent after this child was forked
        original = getattr(type(self), "_bootstrap")  # noqa: B009 - private, unknown to typeshed
    marker = self.__dict__.get(_PROCESS_ATTRIBUTE)
    if not isinstance(marker, _ProcessContext):
        return int(original(self, *args, **kwargs))
    ctx = _context_for(marker.carrier)
    _configure_if_recording(ctx)  # a process started inside a sampled span records from the start
    if ctx is None:
        return int(original(self, *args, **kwargs))
    from opentelemetry import context as otel_context

    token = otel_context.attach(ctx)
    try:
        return int(original(self, *args, **kwargs))
    finally:
        otel_context.detach(token)


# --- pools --------------------------------------------------------------------------------------


def _wrap_func_argument(cls: type, name: str) -> Callable[..., Any]:
    """A replacement for ``cls.name(self, func, ...)`` that wraps ``func`` in :class:`TracedCall`."""
    original = getattr(cls, name)

    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        if args:
            args = (traced(args[0]), *args[1:])
        elif "func" in kwargs:
            kwargs["func"] = traced(kwargs["func"])
        return original(self, *args, **kwargs)

    patched.__name__ = name
    patched.__doc__ = original.__doc__
    patched.__wrapped__ = original  # type: ignore[attr-defined]
    return patched


def _map_async(self: Any, func: Any, iterable: Any, mapper: Any, *args: Any, **kwargs: Any) -> Any:
    # Pool.map/starmap(_async) send (mapper, (func, chunk)) tasks: wrapping the mapper gives one
    # attach and one flush per chunk, which is also when the worker sends results back.
    import multiprocessing.pool  # not at the top, like every import only a configured process needs

    original = _originals[(multiprocessing.pool.Pool, "_map_async")]
    return original(self, func, iterable, traced(mapper), *args, **kwargs)


def _executor_submit(self: Any, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
    import concurrent.futures

    original = _originals[(concurrent.futures.ProcessPoolExecutor, "submit")]
    return original(self, traced(fn), *args, **kwargs)


def _process_patches(module: ModuleType) -> dict[tuple[type, str], Callable[..., Any]]:
    process = module.BaseProcess
    return {(process, "start"): _start, (process, "_bootstrap"): _bootstrap}


def _pool_patches(module: ModuleType) -> dict[tuple[type, str], Callable[..., Any]]:
    pool = module.Pool
    return {
        (pool, "apply_async"): _wrap_func_argument(pool, "apply_async"),
        (pool, "imap"): _wrap_func_argument(pool, "imap"),
        (pool, "imap_unordered"): _wrap_func_argument(pool, "imap_unordered"),
        (pool, "_map_async"): _map_async,
    }


def _executor_patches(module: ModuleType) -> dict[tuple[type, str], Callable[..., Any]]:
    return {(module.ProcessPoolExecutor, "submit"): _executor_submit}


def _patch_process(module: ModuleType) -> None:
    _patch_all(_process_patches(module))


def _patch_pool(module: ModuleType) -> None:
    _patch_all(_pool_patches(module))


def _patch_executor(module: ModuleType) -> None:
    _patch_all(_executor_patches(module))


_PATCHERS: dict[str, Callable[[ModuleType], None]] = {
    "multiprocessing.process": _patch_process,
    "multiprocessing.pool": _patch_pool,
    "concurrent.futures.process": _patch_executor,
}
"""Each module defining a patched class, and what patches it (when the app imports it)."""


def install(handle: Handle) -> None:
    """Patch Process, Pool and ProcessPoolExecutor for this configured process, each now if its
    module is imported, else when it is; idempotent."""
    global _worker_overrides
    with _lock:
        _worker_overrides = worker_overrides(handle.settings)
    for name, patcher in _PATCHERS.items():
        on_import.when_imported(name, patcher)


def _patch_all(patches: dict[tuple[type, str], Callable[..., Any]]) -> None:
    with _lock:
        for (cls, name), replacement in patches.items():
            _patch(cls, name, replacement)


def _patch(cls: type, name: str, replacement: Callable[..., Any]) -> None:
    """Replace ``cls.name`` unless done already (a spawned child patches ``_bootstrap`` first)."""
    if (cls, name) not in _originals:
        _originals[(cls, name)] = cls.__dict__[name]
        setattr(cls, name, replacement)


def uninstall() -> None:
    """Restore every patched method, and patch no module imported later."""
    for name, patcher in _PATCHERS.items():
        on_import.cancel(name, patcher)
    with _lock:
        for (cls, name), original in _originals.items():
            setattr(cls, name, original)
        _originals.clear()
