"""Training-loop callbacks: ``on_epoch_begin/end``, ``on_step_begin/end``, ``on_error`` → spans.

::

    from modeltel.callbacks import TrainingCallback

    cb = TrainingCallback("train-resnet")
    cb.on_train_begin()
    for epoch in range(3):
        cb.on_epoch_begin(epoch)
        for step, batch in enumerate(loader):
            cb.on_step_begin(step)
            loss = train_step(batch)
            cb.on_step_end(step, {"loss": loss})
        cb.on_epoch_end(epoch, {"val_loss": validate()})
    cb.on_train_end()
"""

from modeltel._internal.domains.callbacks import TrainingCallback, numeric_attributes

__all__ = ["TrainingCallback", "numeric_attributes"]
