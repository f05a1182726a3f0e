"""TrainingCallback: epoch and step spans, numeric logs only, out-of-order hooks, errors."""

from __future__ import annotations

import numpy as np
from opentelemetry.trace import StatusCode

from modeltel._internal import semconv
from modeltel.callbacks import TrainingCallback
from modeltel.testing import Capture


def test_epochs_and_steps_nest_with_numeric_logs(modeltel_capture: Capture) -> None:
    cb = TrainingCallback("train-net", algorithm="adam")
    cb.on_train_begin()
    for epoch in range(2):
        cb.on_epoch_begin(epoch)
        for step in range(3):
            cb.on_step_begin(step)
            cb.on_step_end(step, {"loss": 1.0 / (step + 1), "lr": np.float32(0.5), "tag": "x", "flag": True})
        cb.on_epoch_end(epoch, {"val_loss": np.array(0.25), "obj": object()})
    cb.on_train_end({"final_loss": 0.1})
    job = modeltel_capture.span("calibration.job")
    epochs = modeltel_capture.spans("calibration.epoch")
    steps = modeltel_capture.spans("calibration.step")
    assert len(epochs) == 2 and len(steps) == 6
    assert job.attributes[semconv.CALIBRATION_ALGORITHM] == "adam"
    assert job.attributes["modeltel.calibration.final_loss"] == 0.1
    assert {e.parent.span_id for e in epochs} == {job.context.span_id}
    assert [s.parent.span_id for s in steps] == [epochs[0].context.span_id] * 3 + [
        epochs[1].context.span_id
    ] * 3
    first = steps[0].attributes
    assert first[semconv.CALIBRATION_STEP] == 0 and first[semconv.CALIBRATION_EPOCH] == 0
    assert first["modeltel.calibration.loss"] == 1.0 and first["modeltel.calibration.lr"] == 0.5
    assert "modeltel.calibration.tag" not in first and "modeltel.calibration.flag" not in first
    assert epochs[1].attributes["modeltel.calibration.val_loss"] == 0.25
    assert "modeltel.calibration.obj" not in epochs[1].attributes


def test_auto_numbering_and_out_of_order_hooks_do_not_crash(modeltel_capture: Capture) -> None:
    cb = TrainingCallback()
    cb.on_step_end(logs={"loss": 1.0})  # no begin: ignored
    cb.on_epoch_end()  # no begin: ignored
    cb.on_epoch_begin()
    cb.on_step_begin()
    cb.on_step_begin()  # previous step left open: it is ended first
    cb.on_epoch_begin()  # previous epoch (and its open step) ended first
    cb.on_epoch_end()
    assert [s.attributes[semconv.CALIBRATION_STEP] for s in modeltel_capture.spans("calibration.step")] == [
        0,
        1,
    ]
    assert [e.attributes[semconv.CALIBRATION_EPOCH] for e in modeltel_capture.spans("calibration.epoch")] == [
        0,
        1,
    ]


def test_on_error_records_and_closes_open_spans(modeltel_capture: Capture) -> None:
    cb = TrainingCallback("train")
    cb.on_train_begin()
    cb.on_epoch_begin(0)
    cb.on_step_begin(0)
    cb.on_error(FloatingPointError("loss is nan"))
    for name in ("calibration.step", "calibration.epoch", "calibration.job"):
        span = modeltel_capture.span(name)
        assert span.status.status_code is StatusCode.ERROR, name
        assert span.attributes[semconv.ERROR_TYPE] == "FloatingPointError"
