"""Hooks on ``logging`` that stay out of the call stacks logging prints.

When one of the app's handlers fails, ``Handler.handleError`` prints the call stack from the first
frame outside the ``logging`` package's folder: a hook of modeltel's in the chain would add its own
frames (and the logging frames above it) to what the app prints without modeltel. A hook whose code
is named as a file in that folder, ``<modeltel bridge>``, is passed over like logging's own frames,
and a traceback through one still says what it is.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any


def as_logging_frames(*functions: Callable[..., Any]) -> None:
    """Name the code of ``functions`` as if it lived in the ``logging`` package (imported by now)."""
    folder = os.path.dirname(sys.modules["logging"].__file__ or "")
    for function in functions:
        function.__code__ = function.__code__.replace(co_filename=os.path.join(folder, "<modeltel bridge>"))
