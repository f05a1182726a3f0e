"""The installed instrumentors (entry-point group ``opentelemetry_instrumentor``), applied cheaply.

Found by reading the distributions' own files on ``sys.path`` (each ``*.dist-info`` directory's
``entry_points.txt``, then an instrumentor's ``METADATA``) rather than through
``importlib.metadata``, whose import and scan cost tens of milliseconds of every start. An
instrumentor whose ``instruments`` requirements name a distribution that is not installed is
skipped without being imported: importing one imports ``BaseInstrumentor``, ``wrapt`` and
``packaging``, which a program with nothing to instrument would pay for nothing. When the libraries
are installed, the instrumentor's own ``instrument()`` still checks their versions.

:func:`instrument_options` holds modeltel's rules for the stock instrumentors it ships with, and
:class:`~modeltel._internal.distro.ModeltelDistro` applies the same rules under plain
``opentelemetry-instrument``.
"""

from __future__ import annotations

import importlib
import os
import re
from typing import Any, NamedTuple

from modeltel._internal import dist_info
from modeltel._internal.bootstrap import warn

GROUP = "opentelemetry_instrumentor"
THREADING = "threading"
"""Skipped by name before loading: :func:`modeltel.configure` carries context into threads itself."""
LOGGING = "logging"
"""``opentelemetry-instrumentation-logging``: only for ``OTEL_PYTHON_LOG_CORRELATION=true``."""
DISABLED_VARIABLE = "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"
EVERYTHING = "*"

_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA = re.compile(r"""^\s*extra\s*==\s*['"]([^'"]+)['"]\s*$""")
"""A marker that is the extra alone; one with more clauses (``and python_version < "3.12"``) is left
to the instrumentor's own check, since deciding it would need ``packaging``'s marker evaluation."""


class Instrumentor(NamedTuple):
    """One entry point: ``name = value`` from the distribution whose metadata is in ``info``."""

    name: str
    value: str
    info: str


def instrument_options(name: str) -> dict[str, Any] | None:
    """The keywords entry point ``name``'s ``instrument()`` gets, or None: modeltel skips it.

    The ``logging`` instrumentor (a dependency: modeltel's bridge translates records with its
    handler) would attach that handler to the root logger, which changes the app's logging and,
    beside modeltel's bridge, exports every record twice. So it is loaded only for the trace ids it
    puts on records for the app's own format (``OTEL_PYTHON_LOG_CORRELATION=true``), handler left out.
    """
    if name == THREADING:
        return None
    if name == LOGGING:
        from modeltel._internal.config import log_correlation_requested  # the settings: only here

        return {"enable_log_auto_instrumentation": False} if log_correlation_requested() else None
    return {}


def apply_installed() -> None:
    """Apply every installed instrumentor not disabled; one failing is one warning line, no more."""
    disabled = {part.strip() for part in os.environ.get(DISABLED_VARIABLE, "").split(",")}
    if EVERYTHING in disabled:
        return
    installed, found = _scan()
    for instrumentor in found:
        options = instrument_options(instrumentor.name)
        if (
            instrumentor.name in disabled
            or options is None
            or not _libraries_present(instrumentor, installed)
        ):
            continue
        try:
            _apply(instrumentor, options)
        except Exception as exc:
            if _quiet(exc):
                continue
            what = f"{instrumentor.name!r} ({instrumentor.value})"
            warn(f"modeltel: instrumentor {what} not applied ({type(exc).__name__}: {exc}); the app runs on")


def _scan() -> tuple[set[str], list[Instrumentor]]:
    """The installed distributions' names, and the instrumentors they declare, in sys.path order."""
    installed: set[str] = set()
    found: list[Instrumentor] = []
    for name, info in dist_info.distributions():
        if name in installed:
            continue  # shadowed by an earlier one of the same name, as for the import system
        installed.add(name)
        text = dist_info.entry_points_text(info)
        if text is not None and f"[{GROUP}]" in text:
            found.extend(Instrumentor(entry, value, info) for entry, value in dist_info.entries(text, GROUP))
    return installed, found


def _libraries_present(instrumentor: Instrumentor, installed: set[str]) -> bool:
    """False only when the metadata says a library it instruments is not installed."""
    required, any_of = [], []
    try:
        with open(os.path.join(instrumentor.info, "METADATA"), encoding="utf-8") as file:
            for line in file:
                if not line.strip():
                    break  # the headers end; the description follows
                if line.startswith("Requires-Dist:"):
                    requirement, _, marker = line[len("Requires-Dist:") :].partition(";")
                    extras, name = _EXTRA.findall(marker), _NAME.match(requirement)
                    if name and "instruments" in extras:
                        required.append(dist_info.normalized(name.group(1)))
                    elif name and "instruments-any" in extras:
                        any_of.append(dist_info.normalized(name.group(1)))
    except OSError:  # no METADATA (an egg-info): instrument() checks for itself
        return True
    return all(n in installed for n in required) and (not any_of or any(n in installed for n in any_of))


def _apply(instrumentor: Instrumentor, options: dict[str, Any]) -> None:
    module, _, attribute = instrumentor.value.partition(":")
    target: Any = importlib.import_module(module.strip())
    for part in attribute.strip().split(".") if attribute.strip() else ():
        target = getattr(target, part)
    applied = target()
    if not applied.is_instrumented_by_opentelemetry:
        applied.instrument(raise_exception_on_conflict=True, **options)


def _quiet(exc: Exception) -> bool:
    """A library that is simply not installed is no failure (the stock loader logs it at debug)."""
    if isinstance(exc, ModuleNotFoundError):
        return True
    conflict = getattr(exc, "conflict", None) if type(exc).__name__ == "DependencyConflictError" else None
    return conflict is not None and not (conflict.found or conflict.found_any)
