"""The installed distributions' metadata, read from their ``*.dist-info`` directories on ``sys.path``.

``importlib.metadata`` answers the same questions, but importing it and letting it read every
distribution's files costs 25-50 ms, paid by each process that asks: ``modeltel run``'s hook
(which instrumentors are installed) and a configured parent's first ``Process.start()`` (whether
modeltel's lazy-provider entry points are). These functions read only directory listings and the
one or two small files asked for; the tests hold them to ``importlib.metadata``.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator


def distributions() -> Iterator[tuple[str, str]]:
    """``(normalized name, metadata directory)`` of each distribution, in ``sys.path`` order.

    A name can come more than once (the same distribution on two path entries); the first one is
    the one the import system uses.
    """
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:  # a zip, a missing directory
            continue
        for name in names:
            if name.endswith((".dist-info", ".egg-info")):
                yield normalized(name.rpartition(".")[0].partition("-")[0]), os.path.join(entry or ".", name)


def entries(text: str, group: str) -> Iterator[tuple[str, str]]:
    """``name = value`` lines of section ``[group]`` of an ``entry_points.txt`` (extras dropped)."""
    inside = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("["):
            inside = line == f"[{group}]"
        elif inside and "=" in line and not line.startswith(("#", ";")):
            name, _, value = line.partition("=")
            yield name.strip(), value.partition("[")[0].strip()  # "[extras]" play no part in loading


def entry_points_text(info: str) -> str | None:
    """The ``entry_points.txt`` of metadata directory ``info``, or None when it has none."""
    try:
        with open(os.path.join(info, "entry_points.txt"), encoding="utf-8") as file:
            return file.read()
    except OSError:
        return None


def normalized(name: str) -> str:
    """A distribution name as packaging compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()
