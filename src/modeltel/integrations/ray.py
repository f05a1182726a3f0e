"""Ray (the ``[ray]`` extra): tasks and actor methods join the caller's trace; Tune trials as iterations.

::

    import ray
    from modeltel import simulation
    from modeltel.integrations import ray as modeltel_ray

    modeltel_ray.instrument()          # before the first .remote() of each function or actor class
    ray.init()

    @ray.remote
    def simulate(seed): ...

    with simulation.job("sweep", n_tasks=100):
        ray.get([simulate.remote(s) for s in range(100)])

:func:`instrument` configures modeltel in the driver and patches Ray's submit paths
(``RemoteFunction._remote``, actor creation and ``ActorMethod._remote``). Each remote function and
each actor class is wrapped once, before Ray first exports it, so that it accepts one extra keyword
argument, ``_modeltel_context``: the W3C carrier of the span current at submit time (as for process
pools), plus the driver's effective settings, captured when the function was wrapped. In the
worker process the wrapper configures modeltel once with those settings (service name, run id,
data dir, exporters; the worker's resource gets Ray's ``ray.*`` attributes from the community
detector), runs the task under the submitter's context, and writes its finished spans to the
worker's JSONL file before the result goes back: a worker that dies loses only the task it was
running. Ray's own tracing hook is not needed and, when on, keeps working beside this.

Covered: ``@ray.remote`` functions and actor classes used after :func:`instrument`, ``.options()``,
actor constructors, handles passed to other tasks. Not covered (run untraced, never broken):
functions or actor classes already submitted before :func:`instrument`, ``async`` and generator
methods, cross-language actors, Ray Client (``ray://``) drivers.

:class:`TuneCallback` records each finished Tune trial as a ``calibration.iteration`` under a
:func:`modeltel.calibration.job`, like :class:`modeltel.integrations.optuna.OptunaCallback`.
"""

from __future__ import annotations

import functools
import inspect
import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import ray.actor
import ray.remote_function
from opentelemetry import context as otel_context
from ray._private.inspect_util import is_class_method, is_function_or_method, is_static_method

from modeltel._internal import providers
from modeltel._internal.propagation import capture, extract
from modeltel.integrations.multiprocessing import flush_finished_spans, worker_overrides

if TYPE_CHECKING:
    from modeltel.integrations.ray_tune import TuneCallback

__all__ = ["TuneCallback", "instrument", "uninstrument"]

KWARG = "_modeltel_context"
"""The keyword argument a wrapped task or actor method takes its submitter's carrier in."""

_MARK = "__modeltel_ray__"
_lock = threading.Lock()
_originals: dict[tuple[type, str], Any] = {}
_overrides: dict[str, Any] = {}


# --- worker side ---------------------------------------------------------------------------------

_configured: tuple[int, providers.Handle] | None = None


def _worker_handle(overrides: Mapping[str, Any]) -> providers.Handle:
    global _configured
    known = _configured
    if known is not None and known[0] == os.getpid():
        return known[1]
    handle = providers.current() or providers.configure(**overrides)
    _configured = (os.getpid(), handle)
    return handle


def _call(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    carrier: Mapping[str, str] | None,
    overrides: Mapping[str, Any],
    origin_pid: int,
) -> Any:
    remote = os.getpid() != origin_pid
    handle = _worker_handle(overrides) if remote else None
    token = otel_context.attach(extract(carrier or {}))
    try:
        return fn(*args, **kwargs)
    finally:
        otel_context.detach(token)
        if remote:
            flush_finished_spans(handle)


def _with_kwarg(parameters: list[inspect.Parameter]) -> list[inspect.Parameter]:
    """``parameters`` plus the keyword-only carrier argument, before any ``**kwargs``."""
    extra = inspect.Parameter(KWARG, inspect.Parameter.KEYWORD_ONLY, default=None)
    tail = [p for p in parameters if p.kind is inspect.Parameter.VAR_KEYWORD]
    head = [p for p in parameters if p.kind is not inspect.Parameter.VAR_KEYWORD]
    return [*head, extra, *tail]


def _wrap(fn: Callable[..., Any], overrides: Mapping[str, Any]) -> Callable[..., Any]:
    """``fn`` (a task function or an unbound actor method) taking its carrier in :data:`KWARG`."""
    origin_pid = os.getpid()
    frozen = dict(overrides)

    @functools.wraps(fn)
    def traced(*args: Any, _modeltel_context: Mapping[str, str] | None = None, **kwargs: Any) -> Any:
        return _call(fn, args, kwargs, _modeltel_context, frozen, origin_pid)

    signature = inspect.signature(fn)
    traced.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=_with_kwarg(list(signature.parameters.values()))
    )
    setattr(traced, _MARK, True)
    return traced


def _plain(fn: object) -> bool:
    """Whether ``fn`` is a synchronous, non-generator function modeltel can wrap."""
    return not (
        inspect.iscoroutinefunction(fn)
        or inspect.isgeneratorfunction(fn)
        or inspect.isasyncgenfunction(fn)
        or getattr(fn, _MARK, False)
    )


def _accepts(parameters: object) -> bool:
    return isinstance(parameters, list) and any(getattr(p, "name", None) == KWARG for p in parameters)


# --- driver side: remote functions ---------------------------------------------------------------


def _function_remote(self: Any, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
    original = _originals[(ray.remote_function.RemoteFunction, "_remote")]
    with self._inject_lock:
        # Only before Ray extracts the signature and exports the function: a worker already
        # holding the unwrapped function would reject the extra argument.
        if self._function_signature is None and not self._is_cross_language and _plain(self._function):
            self._function = _wrap(self._function, _overrides)
    if getattr(self._function, _MARK, False):
        kwargs = {**(kwargs or {}), KWARG: capture()}
    return original(self, args, kwargs, **options)


# --- driver side: actors -------------------------------------------------------------------------


def _wrap_actor_class(meta: Any) -> None:
    cls = meta.modified_class
    if cls is None or meta.is_cross_language or getattr(cls, _MARK, False):
        return
    if meta.last_export_cluster_and_job is not None:  # exported unwrapped already
        return
    signatures = meta.method_meta.signatures
    for name, method in inspect.getmembers(cls, is_function_or_method):
        if name.startswith("__") and name != "__init__":
            continue
        if is_static_method(cls, name) or is_class_method(method) or not _plain(method):  # type: ignore[no-untyped-call]
            continue
        if name not in signatures:
            continue
        setattr(cls, name, _wrap(method, _overrides))
        signatures[name] = _with_kwarg(list(signatures[name]))
    setattr(cls, _MARK, True)


def _actor_create(self: Any, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
    original = _originals[(ray.actor.ActorClass, "_remote")]
    meta = self.__ray_metadata__
    with _lock:
        _wrap_actor_class(meta)
    if _accepts(meta.method_meta.signatures.get("__init__")):
        kwargs = {**(kwargs or {}), KWARG: capture()}
    return original(self, args, kwargs, **options)


def _actor_method_remote(self: Any, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
    original = _originals[(ray.actor.ActorMethod, "_remote")]
    if _accepts(getattr(self, "_signature", None)):
        kwargs = {**(kwargs or {}), KWARG: capture()}
    return original(self, args, kwargs, **options)


def instrument(*, forward_settings: bool = True) -> None:
    """Trace Ray tasks and actor methods into their submitter's trace; idempotent.

    Configures modeltel in this process if that was not done yet. With ``forward_settings=False``
    workers configure from their own environment (only the run id is forwarded): use it when the
    cluster's nodes have their own data dir or OTLP endpoint (a collector gateway per node).
    """
    global _overrides
    handle = providers.configure()
    if not handle.enabled:
        return
    settings = handle.settings
    with _lock:
        _overrides = worker_overrides(settings) if forward_settings else {"run_id": settings.run_id}
        if _originals:
            return
        patches: dict[tuple[type, str], Callable[..., Any]] = {
            (ray.remote_function.RemoteFunction, "_remote"): _function_remote,
            (ray.actor.ActorClass, "_remote"): _actor_create,
            (ray.actor.ActorMethod, "_remote"): _actor_method_remote,
        }
        for (cls, name), replacement in patches.items():
            _originals[(cls, name)] = cls.__dict__[name]
            setattr(cls, name, replacement)


def uninstrument() -> None:
    """Stop adding carriers at submit time (functions and classes already wrapped stay wrapped)."""
    with _lock:
        for (cls, name), original in _originals.items():
            setattr(cls, name, original)
        _originals.clear()


def __getattr__(name: str) -> Any:
    # Tune costs ~1.5 s to import, and every worker imports this module to run a wrapped task:
    # only a program that asks for the callback pays for it.
    if name == "TuneCallback":
        from modeltel.integrations.ray_tune import TuneCallback

        return TuneCallback
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
