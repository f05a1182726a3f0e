"""The ``modeltel`` command line: one module per command group, dispatched by :mod:`.main`."""
