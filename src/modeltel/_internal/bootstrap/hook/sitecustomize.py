"""Run by the interpreter at start-up when ``modeltel run`` put this directory on PYTHONPATH."""

from modeltel._internal.bootstrap.start import start

start()
