"""The data-dir contract: where every file lives, what each holds, and how it is written.

Imports no OpenTelemetry SDK, so reading commands and other tools can use it cheaply:

- :mod:`modeltel.store.layout`: :class:`DataDir` (every path and file name), :func:`is_data_dir`,
  and the discovery of the files a reader takes (:func:`data_files`, :func:`summary_files`).
- :mod:`modeltel.store.files`: the write primitives (a line in one ``write``, atomic replace,
  private modes, no symlink followed).

docs/data-format.md describes the files themselves.
"""

from modeltel.store.layout import (
    REPLAY_CURSOR_FILE,
    RUNNING_DIR,
    SIGNALS,
    SUMMARIES_FILE,
    DataDir,
    Signal,
    SourceError,
    data_files,
    is_data_dir,
    summary_files,
)

__all__ = [
    "REPLAY_CURSOR_FILE",
    "RUNNING_DIR",
    "SIGNALS",
    "SUMMARIES_FILE",
    "DataDir",
    "Signal",
    "SourceError",
    "data_files",
    "is_data_dir",
    "summary_files",
]
