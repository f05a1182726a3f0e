"""Step/epoch callbacks for training-style loops: ``calibration.epoch`` and ``calibration.step`` spans.

Hook names follow the common training-loop shape (``on_epoch_begin/end``, ``on_step_begin/end``,
``on_error``, optionally ``on_train_begin/end``), so the object can be called from a hand-written loop
or adapted to a framework's callback class. The ``logs`` mapping's numeric values become
``modeltel.calibration.<key>`` attributes; anything else in it is dropped, never a crash. Hooks called
out of order (an ``end`` without a ``begin``) are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from modeltel._internal import semconv as sc
from modeltel._internal.domains import _runtime
from modeltel._internal.domains._scope import record_error, whole
from modeltel._internal.domains.calibration import CalibrationJob
from modeltel._internal.domains.calibration import job as calibration_job


def numeric_attributes(logs: Mapping[Any, Any] | None) -> dict[str, AttributeValue]:
    """The numeric entries of ``logs`` as ``modeltel.calibration.<key>``; others are dropped."""
    found: dict[str, AttributeValue] = {}
    if not logs:
        return found
    for key, value in logs.items():
        if isinstance(value, bool) or not isinstance(key, str):
            continue
        if isinstance(value, int | float):
            found[sc.CALIBRATION_PREFIX + key] = value
        elif getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
            try:
                item = value.item()  # numpy scalars and 0-d arrays or tensors
            except Exception:
                # A foreign object whose item() fails is just not numeric context.
                continue
            if isinstance(item, int | float) and not isinstance(item, bool):
                found[sc.CALIBRATION_PREFIX + key] = item
    return found


class _Open:
    __slots__ = ("span", "token")

    def __init__(self, span: Span, token: Token[Context]) -> None:
        self.span = span
        self.token = token


class TrainingCallback:
    """Spans for a training loop: one per epoch, one per step, nested, with numeric logs attached.

    ``name`` (optional) opens a ``calibration.job`` at ``on_train_begin`` and ends it at
    ``on_train_end``, so the loop gets a job summary line.
    """

    def __init__(self, name: str | None = None, algorithm: str | None = None) -> None:
        self.name = name
        self.algorithm = algorithm
        self._job: CalibrationJob | None = None
        self._epoch: _Open | None = None
        self._step: _Open | None = None
        self._epoch_number = -1
        self._step_number = -1

    def _start(self, name: str, attributes: dict[str, AttributeValue]) -> _Open | None:
        rt = _runtime.resolve()
        if not rt.enabled:
            return None
        span = rt.tracer.start_span(name, attributes=attributes)
        return _Open(span, otel_context.attach(trace.set_span_in_context(span)))

    @staticmethod
    def _finish(opened: _Open, logs: Mapping[Any, Any] | None, exc: BaseException | None = None) -> None:
        opened.span.set_attributes(numeric_attributes(logs))
        if exc is not None:
            record_error(opened.span, exc)
        otel_context.detach(opened.token)
        opened.span.end()

    def on_train_begin(self, logs: Mapping[Any, Any] | None = None) -> None:
        if self.name is not None and self._job is None:
            self._job = calibration_job(self.name, algorithm=self.algorithm).__enter__()

    def on_train_end(self, logs: Mapping[Any, Any] | None = None) -> None:
        self._close_step(logs=None)
        self._close_epoch(logs=None)
        job, self._job = self._job, None
        if job is not None:
            job.span.set_attributes(numeric_attributes(logs))
            job.__exit__(None, None, None)

    def on_epoch_begin(self, epoch: int | None = None, logs: Mapping[Any, Any] | None = None) -> None:
        self._close_step(logs=None)
        self._close_epoch(logs=None)
        self._epoch_number = self._epoch_number + 1 if epoch is None else whole("epoch", epoch)
        attributes: dict[str, AttributeValue] = {sc.CALIBRATION_EPOCH: self._epoch_number}
        attributes.update(numeric_attributes(logs))
        self._epoch = self._start(sc.SPAN_CALIBRATION_EPOCH, attributes)

    def on_epoch_end(self, epoch: int | None = None, logs: Mapping[Any, Any] | None = None) -> None:
        self._close_step(logs=None)
        self._close_epoch(logs)

    def on_step_begin(self, step: int | None = None, logs: Mapping[Any, Any] | None = None) -> None:
        self._close_step(logs=None)
        self._step_number = self._step_number + 1 if step is None else whole("step", step)
        attributes: dict[str, AttributeValue] = {sc.CALIBRATION_STEP: self._step_number}
        if self._epoch_number >= 0:
            attributes[sc.CALIBRATION_EPOCH] = self._epoch_number
        attributes.update(numeric_attributes(logs))
        self._step = self._start(sc.SPAN_CALIBRATION_STEP, attributes)

    def on_step_end(self, step: int | None = None, logs: Mapping[Any, Any] | None = None) -> None:
        self._close_step(logs)

    def on_error(self, exc: BaseException) -> None:
        """Record ``exc`` on the open step and epoch (and job), and end them. Does not raise it."""
        for attr in ("_step", "_epoch"):
            opened: _Open | None = getattr(self, attr)
            if opened is not None:
                setattr(self, attr, None)
                self._finish(opened, None, exc)
        job, self._job = self._job, None
        if job is not None:
            job.__exit__(type(exc), exc, exc.__traceback__)

    def _close_step(self, logs: Mapping[Any, Any] | None) -> None:
        opened, self._step = self._step, None
        if opened is not None:
            self._finish(opened, logs)

    def _close_epoch(self, logs: Mapping[Any, Any] | None) -> None:
        opened, self._epoch = self._epoch, None
        if opened is not None:
            self._finish(opened, logs)
