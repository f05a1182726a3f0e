"""Run a function right after a module's body has run, without importing the module first.

modeltel patches modules the app may never import (``multiprocessing`` and its pools cost about
20 modules and 10-15 ms): importing them at :func:`modeltel.configure` to patch them would make
every process pay for what few use. :func:`when_imported` calls back at once for a module already
imported, else the moment the app (or a library, from any thread) imports it.

How (PEP 451): a finder first on ``sys.meta_path`` answers only for awaited names. It asks the
finders behind it for the real spec and wraps that spec's loader, whose ``exec_module`` runs the
module's body, then the callbacks. The module keeps its real loader (``__loader__``,
``__spec__.loader``) so ``importlib.reload``, ``inspect`` and resource readers see nothing of this.
A body that raises propagates its error and the name stays awaited, for the next attempt. Once
nothing is awaited the finder leaves ``sys.meta_path``; imports then cost nothing more.

One race is left open: a thread that had found a module's spec, but not yet registered the module,
when :func:`when_imported` asked for it imports it without the callback (a window of microseconds,
against configure, which an app runs before handing work to processes).
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:  # importlib.abc imports importlib.resources, tempfile, shutil, bz2, lzma: 7 ms
    from importlib.abc import Loader
    from importlib.machinery import ModuleSpec

__all__ = ["Finder", "cancel", "when_imported"]

Callback = Callable[[ModuleType], None]

_lock = threading.Lock()
_awaited: dict[str, list[Callback]] = {}
_searching = threading.local()
"""Names this thread is looking up behind the finder: a finder that asks ``sys.meta_path`` itself
(as some import hooks do) must not bring the lookup back here."""


def when_imported(name: str, callback: Callback) -> None:
    """Call ``callback(module)`` once ``name`` is imported: now if it is, else after its body runs.

    Telemetry must not break an import: a callback that raises is logged, and the import goes on.
    """
    with _lock:
        _awaited.setdefault(name, []).append(callback)
        _insert_finder()
        if name not in sys.modules:
            return
        callbacks = _awaited.pop(name)
        _remove_finder_if_idle()
    # import_module waits while another thread is still running the body of a module it imports.
    _run(importlib.import_module(name), callbacks)


def cancel(name: str, callback: Callback) -> None:
    """Stop waiting to call ``callback`` for ``name`` (a no-op if it ran or was never awaited)."""
    with _lock:
        callbacks = _awaited.get(name, [])
        if callback in callbacks:
            callbacks.remove(callback)
        if not callbacks:
            _awaited.pop(name, None)
        _remove_finder_if_idle()


def _run(module: ModuleType, callbacks: Sequence[Callback]) -> None:
    for callback in callbacks:
        try:
            callback(module)
        except Exception:
            import logging  # on a failure path only: a worker that never logs does not import it

            logging.getLogger(__name__).exception("modeltel: could not instrument %s", module.__name__)


def _loaded(name: str, module: ModuleType) -> None:
    with _lock:
        callbacks = _awaited.pop(name, [])
        _remove_finder_if_idle()
    _run(module, callbacks)


class Finder:
    """The spec the other finders give for an awaited name, with a loader that calls back."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        searching: set[str] = _searching.__dict__.setdefault("names", set())
        if fullname not in _awaited or fullname in searching:
            return None
        searching.add(fullname)
        try:
            spec = self._real_spec(fullname, path, target)
        finally:
            searching.discard(fullname)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = cast("Loader", _CallingLoader(spec.loader))  # a Loader, duck-typed
        return spec

    def _real_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None
    ) -> ModuleSpec | None:
        for finder in list(sys.meta_path):
            find_spec = getattr(finder, "find_spec", None)
            if finder is self or find_spec is None:
                continue
            spec: ModuleSpec | None = find_spec(fullname, path, target)
            if spec is not None:
                return spec
        return None


class _CallingLoader:
    """The real loader, and the callbacks after its ``exec_module``."""

    def __init__(self, loader: Loader) -> None:
        self.loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        if getattr(module, "__loader__", None) is self:
            module.__loader__ = self.loader
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.loader is self:
            spec.loader = self.loader
        self.loader.exec_module(module)
        _loaded(module.__name__ if spec is None else spec.name, module)

    def __getattr__(self, name: str) -> Any:
        # What else importlib may ask of the loader mid-import (is_package, get_code, ...).
        return getattr(self.loader, name)


_finder = Finder()


def _insert_finder() -> None:
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def _remove_finder_if_idle() -> None:
    if not _awaited and _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
