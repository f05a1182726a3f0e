"""modeltel's internals: configuration, names, providers and the write pipeline.

Nothing here is public API; the facade is ``modeltel``, ``simulation``, ``calibration``,
``inference``, ``callbacks``, ``testing``, ``integrations``, ``read``, ``store`` (and ``formats``).
docs/architecture.md maps each concern to its module.
"""
