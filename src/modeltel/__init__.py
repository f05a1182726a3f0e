"""modeltel: OpenTelemetry-native telemetry for simulation, calibration and inference workloads.

``import modeltel`` stays cheap: the SDK, exporters, numpy and pydantic load on first use.
"""

from __future__ import annotations

import importlib

from modeltel._internal import sigterm

TYPE_CHECKING = False  # not typing's: importing typing is a tenth of the CLI's own start-up
if TYPE_CHECKING:
    from typing import Any

    from modeltel._internal.providers import Handle

__version__ = "0.1.0"


def configure(**overrides: Any) -> Handle:
    """Configure OpenTelemetry from the environment (README: Configuration); idempotent and thread-safe.

    Keyword overrides take the names of :class:`modeltel._internal.config.Settings` fields, e.g.
    ``configure(service_name="sweep", data_dir="out")``. Returns a handle with ``force_flush()`` and
    ``shutdown()``. When SDK providers already exist, the JSONL exporters are added to them.
    """
    from modeltel._internal.providers import configure as _configure

    return _configure(**overrides)


_SUBMODULES = frozenset({"simulation", "calibration", "inference", "callbacks", "testing"})


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"modeltel.{name}")
    raise AttributeError(f"module 'modeltel' has no attribute {name!r}")


sigterm.install()  # here, not in configure(): see modeltel/_internal/sigterm.py

__all__ = ["__version__", "configure"]
