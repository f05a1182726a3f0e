"""What every domain scope shares: span lifetime, error recording, decorator form, the no-op.

A scope is a context manager that opens one span, makes it current, and on exit records the
exception (if any), lets the subclass set its final attributes and metric points, and ends the span.
The same object is a decorator for sync and async functions: each call runs in a fresh copy, so a
decorated function is safe to call concurrently.
"""

from __future__ import annotations

import copy
import functools
import inspect
import math
import reprlib
from collections.abc import Callable, Mapping
from time import perf_counter
from types import TracebackType
from typing import Any, Self, TypeVar, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from modeltel._internal import semconv as sc
from modeltel._internal.domains import _runtime
from modeltel._internal.domains._runtime import Runtime

F = TypeVar("F", bound=Callable[..., Any])

MAX_WARNINGS = 16
"""A span keeps at most this many warnings; odd data must not grow a span without bound."""


def exception_type(exc: BaseException) -> str:
    """``error.type`` of an exception: its fully qualified class name (bare for builtins)."""
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module in (None, "builtins") else f"{module}.{cls.__qualname__}"


def exception_message(exc: BaseException) -> str:
    """``str(exc)`` cut to :data:`~modeltel._internal.semconv.ERROR_MESSAGE_MAX_CHARS` characters."""
    try:
        message = str(exc)
    except Exception:
        # A broken __str__ must not replace the user's exception with one from the telemetry path.
        message = f"<unprintable {type(exc).__name__}>"
    return message[: sc.ERROR_MESSAGE_MAX_CHARS]


def record_error(span: Span, exc: BaseException) -> None:
    """Status ERROR, ``error.type``, and an ``exception`` event with the cut message (no stack)."""
    kind, message = exception_type(exc), exception_message(exc)
    span.set_attribute(sc.ERROR_TYPE, kind)
    span.add_event(sc.EXCEPTION_EVENT, {sc.EXCEPTION_TYPE: kind, sc.EXCEPTION_MESSAGE: message})
    span.set_status(Status(StatusCode.ERROR, message))


_DESCRIBE = reprlib.Repr()
_DESCRIBE.maxlevel, _DESCRIBE.maxstring, _DESCRIBE.maxother = 3, 60, 60


def describe(value: object) -> str:
    """A short repr of a caller's value for an error message, whatever the value does.

    The message must name the argument even when the value's ``__repr__`` raises or it is a list
    nested 10,000 deep: the error is about the caller's value, not one from inside the message.
    """
    try:
        return _DESCRIBE.repr(value)
    except Exception:
        return f"<{type(value).__name__} object>"


def text(argument: str, value: object) -> str:
    """A name the caller gave (model, provider, job name), as ``str``, or a ValueError naming it.

    Anything ``str()`` accepts is taken, as before; a value whose ``__str__`` fails (or recurses
    without end) is the caller's error here, not an exception from deep in the SDK later.
    """
    if isinstance(value, str):
        return value
    try:
        return str(value)
    except Exception as exc:
        raise ValueError(
            f"{argument}: expected a str, got {type(value).__name__} whose str() fails ({type(exc).__name__})"
        ) from None


def whole(argument: str, value: object) -> int:
    """A whole number the caller gave (an iteration number, a count), or a ValueError naming it."""
    found = number(argument, value)
    if isinstance(found, float) and not found.is_integer():
        raise ValueError(f"{argument}={describe(value)}: expected a whole number")
    return int(found)


def _scalar(value: object) -> AttributeValue | None:
    if isinstance(value, str | bool | int | float):
        return value
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        item = value.item()
        if isinstance(item, str | bool | int | float):
            return item
    return None


def attribute_value(key: str, value: object) -> AttributeValue:
    """``value`` as an OTel attribute value (numpy scalars unwrapped), or a ValueError naming ``key``."""
    found = _scalar(value)
    if found is not None:
        return found
    if isinstance(value, list | tuple):
        items = [_scalar(v) for v in value]
        kinds = {type(i) for i in items}
        if type(None) not in kinds and len(kinds) <= 1:
            return cast(AttributeValue, tuple(items))
    raise ValueError(
        f"{key}={describe(value)}: an attribute must be a str, bool, int or float, or a list of one of them"
    )


def prefixed(prefix: str, attrs: Mapping[str, object], into: dict[str, AttributeValue]) -> None:
    """Add keyword attributes as ``<prefix><key>``; None values are skipped."""
    for key, value in attrs.items():
        if value is not None:
            into[prefix + key] = attribute_value(key, value)


def number(argument: str, value: object) -> int | float:
    """A real number given by the caller, or a ValueError naming the argument."""
    found = _scalar(value)
    if isinstance(found, int | float):
        return found
    raise ValueError(f"{argument}={describe(value)}: expected a number")


class Scope:
    """Base of every domain scope (see the module docstring)."""

    __slots__ = ("_rt", "_span", "_t0", "_token", "_warnings")

    _span_name: str = ""

    def __init__(self, rt: Runtime | None) -> None:
        self._rt = rt
        self._span: Span | None = None
        self._warnings: list[str] | None = None

    # --- for subclasses ------------------------------------------------------------------------
    def _attributes(self) -> dict[str, AttributeValue]:
        """Attributes the span starts with."""
        return {}

    def _parent(self) -> Context | None:
        """Explicit parent context (child scopes name their parent; others use the current one)."""
        return None

    def _begin(self, rt: Runtime) -> Span:
        return rt.tracer.start_span(self._span_name, self._parent(), attributes=self._attributes())

    def _end(self, rt: Runtime, span: Span, seconds: float, exc: BaseException | None) -> None:
        """Set final attributes and record metric points; runs before the span ends."""

    def _current(self, span: Span) -> Context:
        """The context made current while the scope is open: its span (subclasses may add values)."""
        return trace.set_span_in_context(span)

    def _warn(self, message: str) -> None:
        """Note odd data on the span (as ``modeltel.warning``) instead of failing the caller."""
        warnings = self._warnings
        if warnings is None:
            warnings = self._warnings = []
        if len(warnings) < MAX_WARNINGS and message not in warnings:
            warnings.append(message)
            if self._span is not None:
                self._span.set_attribute(sc.WARNING, tuple(warnings))

    # --- context manager ---------------------------------------------------------------------------
    def __enter__(self) -> Self:
        rt = self._rt
        if rt is None:
            rt = self._rt = _runtime.resolve()
        if not rt.enabled:
            return cast(Self, NOOP)
        span = self._span = self._begin(rt)
        self._token = otel_context.attach(self._current(span))
        self._t0 = perf_counter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        span = self._span
        if span is None:
            return None
        seconds = perf_counter() - self._t0
        otel_context.detach(self._token)
        if exc is not None:
            record_error(span, exc)
        self._end(cast(Runtime, self._rt), span, seconds, exc)
        self._span = None
        span.end()
        return None

    async def __aenter__(self) -> Self:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    # --- decorator ---------------------------------------------------------------------------------
    def _fresh(self) -> Self:
        """A copy for one call of a decorated function, on the runtime active now."""
        clone = copy.copy(self)
        clone._rt = _runtime.active
        clone._span = None
        clone._warnings = None
        return clone

    def __call__(self, fn: F) -> F:
        """Decorate ``fn``: every call runs inside a fresh copy of this scope."""
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with self._fresh():
                    return await fn(*args, **kwargs)

            return cast(F, async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._fresh():
                return fn(*args, **kwargs)

        return cast(F, wrapper)

    # --- shared helpers ------------------------------------------------------------------------------
    def _record_numbers(self, prefix: str, numbers: Mapping[str, object]) -> None:
        span = self._span
        values: dict[str, AttributeValue] = {}
        for key, value in numbers.items():
            found = number(key, value)
            if isinstance(found, float) and not math.isfinite(found):
                self._warn(f"{key} is {found}")
            values[prefix + key] = found
        if span is not None:
            span.set_attributes(values)

    @property
    def span(self) -> Span:
        """The scope's span while it is open (``INVALID_SPAN`` otherwise), for the OTel API."""
        return self._span if self._span is not None else trace.INVALID_SPAN

    def _context(self) -> Context | None:
        """A context whose current span is this scope's span: children parent to it on any thread."""
        span = self._span
        return trace.set_span_in_context(span) if span is not None else None


class _Noop:
    """The one object every domain call returns when telemetry is disabled: does nothing, cheaply."""

    __slots__ = ()

    def __enter__(self) -> _Noop:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    async def __aenter__(self) -> _Noop:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def __call__(self, fn: F) -> F:
        return fn

    def _self(self, *args: object, **kwargs: object) -> _Noop:
        return self

    def _nothing(self, *args: object, **kwargs: object) -> None:
        return None

    phase = iteration = ask = evaluate = tell = predict = generate = _self
    cache = record = losses = outputs = usage = response = content = observe = _nothing

    @property
    def span(self) -> Span:
        return trace.INVALID_SPAN

    best_loss = None
    number = None
    iterations = 0

    def __repr__(self) -> str:
        return "<modeltel no-op>"


NOOP = _Noop()
"""The shared no-op: telemetry is disabled, so every call on it does nothing."""
