"""Dask (``distributed``, the ``[dask]`` extra): one trace from the submitting span into every task.

::

    from dask.distributed import Client, LocalCluster
    from modeltel import calibration
    from modeltel.integrations.dask import instrument

    client = instrument(Client(LocalCluster(n_workers=2, processes=True)))
    with calibration.job("fit", algorithm="abc") as job, job.iteration() as it:
        with it.evaluate(n=len(params)):
            losses = client.gather(client.map(simulate, params))

:func:`instrument` does two things:

* it registers :class:`ModeltelWorkerPlugin`, which configures modeltel in every worker process,
  present and future (with the client's effective settings: service name, run id, data dir,
  exporters), and stamps every span a worker process starts with
  ``modeltel.dask.worker.address`` (:data:`modeltel._internal.semconv.DASK_WORKER_ADDRESS`);
* it wraps this client's ``submit`` and ``map`` so each task function is a :class:`DaskTask`
  carrying the W3C carrier of the span current at submit time. On the worker the task runs under
  that context, so its spans are children of the submitting span, and its finished spans are
  flushed to the worker's JSONL file before the result is reported (a worker the nanny kills loses
  only what was still running). Task keys keep the function's name.

Covered: ``Client.submit`` and ``Client.map`` of a synchronous client, synchronous task functions.
Not covered: graphs built with ``dask.delayed`` / collections and ``client.compute`` (their tasks
are not wrapped: use :func:`modeltel.integrations.multiprocessing.traced` on the function), actors,
and ``async def`` tasks (the context would cover creating the coroutine, not running it).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from dask.tokenize import normalize_token
from distributed import Client, Worker, WorkerPlugin
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from modeltel._internal import providers
from modeltel._internal import semconv as sc
from modeltel.integrations.multiprocessing import TracedCall, flush_finished_spans, worker_overrides

__all__ = ["DaskTask", "ModeltelWorkerPlugin", "instrument", "uninstrument"]

PLUGIN_NAME = "modeltel"
_INSTRUMENTED = "_modeltel_instrumented"


class DaskTask(TracedCall[..., Any]):
    """A task function carrying its submitter's context; tokenizes as the function plus that context.

    Two submissions of the same pure function and arguments from the same span still share a key
    (Dask's deduplication is kept); from different spans they are different tasks, each traced.
    """

    __slots__ = ()

    def __dask_tokenize__(self) -> object:
        return (normalize_token(self.fn), sorted(self.carrier.items()))


class WorkerAddress(SpanProcessor):
    """Puts the worker's address on every span started in a Dask worker process."""

    def __init__(self) -> None:
        self.address: str | None = None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        address = self.address
        if address is not None:
            span.set_attribute(sc.DASK_WORKER_ADDRESS, address)

    def on_end(self, span: ReadableSpan) -> None:
        return None

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


_address_lock = threading.Lock()
_address: tuple[int, WorkerAddress] | None = None


def _worker_address_processor(handle: providers.Handle) -> WorkerAddress | None:
    global _address
    if handle.tracer_provider is None:
        return None
    with _address_lock:
        if _address is None or _address[0] != os.getpid():
            processor = WorkerAddress()
            handle.tracer_provider.add_span_processor(processor)
            _address = (os.getpid(), processor)
        return _address[1]


class ModeltelWorkerPlugin(WorkerPlugin):
    """Configures modeltel in each worker process and tags its spans with the worker's address.

    Workers running inside the client's own process (``processes=False``) are left alone: that
    process is configured already, and its spans are not a worker's.
    """

    name = PLUGIN_NAME

    def __init__(self, overrides: Mapping[str, Any] | None = None) -> None:
        self.overrides = dict(overrides or {})
        self.origin_pid = os.getpid()

    def setup(self, worker: Worker) -> None:
        if os.getpid() == self.origin_pid:
            return
        handle = providers.current() or providers.configure(**self.overrides)
        if not handle.enabled:
            return
        processor = _worker_address_processor(handle)
        if processor is not None:
            processor.address = str(worker.address)

    def teardown(self, worker: Worker) -> None:
        if os.getpid() != self.origin_pid:
            flush_finished_spans()


def _task(func: Callable[..., Any]) -> Callable[..., Any]:
    return func if isinstance(func, TracedCall) else DaskTask(func)


def instrument(client: Client, *, forward_settings: bool = True) -> Client:
    """Trace ``client``'s tasks into the submitting span's trace; returns the same client.

    Configures modeltel in this process if that was not done yet. With ``forward_settings=False``
    workers configure from their own environment (only the run id is forwarded): use it when the
    workers run on other machines whose data dir or OTLP endpoint differ from the client's.
    Calling it twice on one client does nothing more.
    """
    handle = providers.configure()
    if not handle.enabled or getattr(client, _INSTRUMENTED, False):
        return client
    settings = handle.settings
    overrides = worker_overrides(settings) if forward_settings else {"run_id": settings.run_id}
    client.register_plugin(ModeltelWorkerPlugin(overrides), name=PLUGIN_NAME)
    submit, map_ = client.submit, client.map

    def traced_submit(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not (kwargs.get("actor") or kwargs.get("actors")):
            func = _task(func)
        return submit(func, *args, **kwargs)

    def traced_map(func: Callable[..., Any], *iterables: Any, **kwargs: Any) -> Any:
        if not (kwargs.get("actor") or kwargs.get("actors")):
            func = _task(func)
        return map_(func, *iterables, **kwargs)

    traced_submit.__doc__, traced_map.__doc__ = submit.__doc__, map_.__doc__
    client.submit = traced_submit  # type: ignore[method-assign]
    client.map = traced_map  # type: ignore[method-assign]
    setattr(client, _INSTRUMENTED, True)
    return client


def uninstrument(client: Client) -> None:
    """Stop wrapping ``client``'s tasks (workers stay configured; their spans keep the address)."""
    if getattr(client, _INSTRUMENTED, False):
        for name in ("submit", "map", _INSTRUMENTED):
            client.__dict__.pop(name, None)
