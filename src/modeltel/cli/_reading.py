"""What the reading commands (show, stats, export, timeline) share: arguments, sources, errors, output.

Errors a person can fix (a missing path, a bad time, a malformed trace id) are raised as
:class:`CommandError` and printed as one line with exit code 2; runtime failures exit 1. Skipped
lines are printed once each as warnings naming file and line. Progress goes to stderr and only on
a terminal, and only once a command has run for a moment, so pipes and quick runs stay quiet.

The readers (``modeltel.read``, with numpy) are imported by the functions that read, here and in
each command's module, never at module level: a command's ``--help`` then costs argparse alone
(tests/cli/test_main.py counts the modules it loads).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import stat
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modeltel.read.files import BadLine

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
_TRACE_ID = re.compile(r"^[0-9a-fA-F]{32}$")


class CommandError(Exception):
    """A one-line error for the user, with the exit code to leave with."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def add_source_arguments(parser: argparse.ArgumentParser, *, files: str = "trace files") -> None:
    """``PATH...`` (``files``, e.g. "log files", or folders) and ``--data-dir``."""
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help=f"{files} or folders, any OTLP/JSON (a Collector file exporter's too); default: the data dir",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="D",
        help="modeltel data dir (default: $MODELTEL_DATA_DIR or ./modeltel-data)",
    )


def add_window_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since", metavar="T", help="spans started at or after T (ISO 8601, or 30m/2h/1d ago)"
    )
    parser.add_argument("--until", metavar="T", help="spans started before T (ISO 8601, or 30m/2h/1d ago)")


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``--run ID`` / ``--last-run``: one run's spans (and summaries) out of a dir that holds several."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--run", metavar="ID", help="one run: its id or a unique prefix (`modeltel runs` lists them)"
    )
    group.add_argument("--last-run", action="store_true", help="the most recent run")


def add_trace_arguments(
    parser: argparse.ArgumentParser, *, last_help: str
) -> argparse._MutuallyExclusiveGroup:
    """``--trace ID`` / ``--last``; returns their group, for a command to add another choice."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--trace", metavar="ID", help="one trace (32 hex digits)")
    group.add_argument("--last", action="store_true", help=last_help)
    return group


class Sources:
    """What a reading command reads: trace files, summary files, and how to name them.

    A plain class, as :class:`BadLines`: ``dataclasses`` (with ``inspect``) would cost every
    command's ``--help`` about 10 ms.
    """

    def __init__(
        self,
        trace_files: list[Path],
        summary_files: list[Path],
        described: str,
        run_id: str | None = None,
        paths: list[Path] | None = None,
        data_dir: Path | None = None,
    ) -> None:
        self.trace_files = trace_files
        self.summary_files = summary_files
        self.described = described
        self.run_id = run_id
        """The run chosen with ``--run`` / ``--last-run``; ``trace_files`` are then the files holding it."""
        self.paths = paths if paths is not None else []
        self.data_dir = data_dir
        """What ``PATH...`` or else the data dir named, for a command that reads another signal too."""


def default_data_dir() -> Path:
    """The data dir from the environment; a bad unrelated variable is a warning, not a failure."""
    from modeltel._internal.config import load_settings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        settings = load_settings(check_dirs=False)
    for warning in caught:
        print(f"modeltel: warning: {str(warning.message).removeprefix('modeltel: ')}", file=sys.stderr)
    return settings.data_dir


def sources(args: argparse.Namespace) -> Sources:
    """The files named by ``PATH...`` or else by ``--data-dir`` / the environment."""
    from modeltel.read.files import SourceError, summary_files, trace_files

    paths: list[Path] = list(args.paths or [])
    data_dir = None if paths else (args.data_dir or default_data_dir())
    if data_dir is not None and not data_dir.exists():
        raise CommandError(f"no such data dir: {data_dir} (run something under `modeltel run` first)")
    try:
        traces = trace_files(paths, data_dir)
    except SourceError as exc:
        raise CommandError(str(exc)) from None
    summaries = summary_files(paths, data_dir)
    described = str(data_dir) if data_dir is not None else ", ".join(str(p) for p in paths)
    found = Sources(traces, summaries, described, paths=paths, data_dir=data_dir)
    if hasattr(args, "last_run"):
        choose_run(found, args)
    return found


def choose_run(found: Sources, args: argparse.Namespace) -> None:
    """Narrow ``found`` to the run of ``--run`` / ``--last-run``, or say on stderr that several
    runs are read together (one line, with the command that picks one)."""
    from modeltel.read.runs import known_runs, newest_run, run_files

    wanted: str | None = args.run
    if wanted is not None and not wanted.strip():
        raise CommandError("--run: empty run id")
    if args.last_run:
        run = newest_run(found.trace_files)
        if run is None:
            raise CommandError(f"no run in {found.described}", EXIT_FAILURE)
    elif wanted is not None:
        run = _resolve_run(wanted.strip(), known_runs(found.trace_files), found.described)
    else:
        if getattr(args, "trace", None) or getattr(args, "last", False):
            return  # one trace: the run it is in needs no choosing
        runs = known_runs(found.trace_files)
        if len(runs) > 1:
            print(
                f"modeltel {args.command}: note: {len(runs)} runs in {found.described}, read together; "
                f"pick one with --last-run or --run ID (`modeltel runs` lists them)",
                file=sys.stderr,
            )
        return
    found.run_id = run
    found.trace_files = run_files(found.trace_files, run)
    if not found.trace_files:
        raise CommandError(f"no spans of run {run} in {found.described}", EXIT_FAILURE)


def _resolve_run(wanted: str, runs: list[str], described: str) -> str:
    """``wanted`` itself, or the one run it is a prefix of; files whose first line names another
    run may still hold it (a Collector's), so an unknown id is looked for as given."""
    if wanted in runs:
        return wanted
    matches = [run for run in runs if run.startswith(wanted)]
    if len(matches) > 1:
        shown = ", ".join(matches[:4])
        raise CommandError(
            f"--run {wanted}: matches {len(matches)} runs in {described} ({shown}); give more of it"
        )
    return matches[0] if matches else wanted


def window(args: argparse.Namespace) -> tuple[int | None, int | None]:
    """``(since_ns, until_ns)`` from ``--since`` / ``--until``."""
    from modeltel.read.window import parse_time

    try:
        since = parse_time(args.since) if args.since else None
        until = parse_time(args.until) if args.until else None
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if since is not None and until is not None and since >= until:
        raise CommandError("--since must be before --until")
    return since, until


def trace_id(args: argparse.Namespace) -> str | None:
    """The ``--trace`` id, lowercase; a malformed one is a usage error."""
    value: str | None = getattr(args, "trace", None)
    if value is None:
        return None
    if not _TRACE_ID.match(value.strip()):
        raise CommandError(f"--trace: not a trace id: {value!r} (expected 32 hex digits)")
    return value.strip().lower()


class BadLines:
    """Collects skipped lines and prints each once: the fast and the full reader may both meet one."""

    def __init__(self, command: str, stream: IO[str] | None = None) -> None:
        self.command = command
        self.stream = stream if stream is not None else sys.stderr
        self.seen: dict[tuple[Path, int], BadLine] = {}

    def __call__(self, bad: BadLine) -> None:
        key = (bad.path, bad.line)
        if key in self.seen:
            return
        self.seen[key] = bad
        print(f"modeltel {self.command}: warning: {bad}", file=self.stream)

    def to_json(self) -> list[dict[str, Any]]:
        return [{"path": str(b.path), "line": b.line, "reason": b.reason} for b in self.seen.values()]


class ProgressBar:
    """A one-line bar on stderr, drawn only on a terminal and only after :attr:`DELAY_S`."""

    DELAY_S = 0.5
    INTERVAL_S = 0.1

    def __init__(self, total: int, label: str, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = total > 0 and self.stream.isatty()
        self.total = total
        self.label = label
        self.done = 0
        self.started = time.monotonic()
        self._drawn_at = 0.0
        self._visible = False

    def advance(self, amount: int) -> None:
        self.done += amount
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.started < self.DELAY_S or now - self._drawn_at < self.INTERVAL_S:
            return
        self._drawn_at = now
        width = max(10, min(40, shutil.get_terminal_size((80, 20)).columns - 50))
        fraction = min(1.0, self.done / self.total)
        filled = int(fraction * width)
        bar = "█" * filled + "░" * (width - filled)
        text = (
            f"\r{self.label} {bar} {fraction:4.0%} "
            f"{self.done / 1e6:,.0f}/{self.total / 1e6:,.0f} MB {now - self.started:4.1f}s"
        )
        self.stream.write(text)
        self.stream.flush()
        self._visible = True

    def close(self) -> None:
        if self._visible:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._visible = False

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run(command: str, body: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run ``body``, turning the errors a person meets into one line on stderr and an exit code."""
    try:
        return body(args)
    except CommandError as exc:
        print(f"modeltel {command}: {exc}", file=sys.stderr)
        return exc.code
    except BrokenPipeError:  # `modeltel show | head`: main() leaves quietly, the same for every command
        raise
    except OSError as exc:
        print(f"modeltel {command}: {exc}", file=sys.stderr)
        return EXIT_FAILURE


@contextlib.contextmanager
def output(target: str) -> Iterator[IO[str]]:
    """A text stream that becomes file ``target`` only if the command finishes (``-``: stdout).

    A regular file (or a new path) is written next to the target and renamed into place, so a
    failure never leaves half a file; the file is private (0600) like the data it comes from. A
    symlink's target is the one replaced, so the link survives. Anything else that exists (a FIFO
    a reader waits on, ``/dev/null``, a terminal) is opened and written where it is: renaming over
    it would replace the device or the pipe with a file nobody reads.
    """
    import tempfile

    if target == "-":
        yield sys.stdout
        return
    try:
        mode: int | None = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        raise CommandError(f"-o: {target} is a directory")
    if mode is not None and not stat.S_ISREG(mode):  # e.g. /dev/stdout, which is a link to a pipe
        with open(target, "w", encoding="utf-8", errors="backslashreplace", newline="") as stream:
            yield stream
        return
    path = Path(os.path.realpath(target))
    if not path.parent.is_dir():
        raise CommandError(f"-o: no such directory: {Path(target).parent}")
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace", newline="") as stream:
            yield stream
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


# --- tables ------------------------------------------------------------------------------------------


_UNPRINTABLE = "[\x00-\x1f\x7f-\x9f\ud800-\udfff]"
"""Compiled when first needed: the surrogate range makes it cost ~10 ms, a sixth of a ``--help``."""
_NAMED_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED_ESCAPES.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` safe for a terminal: control characters and lone surrogates escaped (``\\x1b``, ``\\r``).

    Span names and attribute values come from whatever wrote the files; printed raw, an escape
    sequence in one could clear the screen, retitle the window or overwrite a table row, and a lone
    surrogate cannot be encoded at all.
    """
    if text.isprintable():  # no control character, no surrogate: the common case, at C speed
        return text
    return re.sub(_UNPRINTABLE, _escape, text)


def use_color(stream: IO[str]) -> bool:
    return stream.isatty()


def render_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    color: bool = False,
    highlight: Callable[[int], bool] | None = None,
    details: Callable[[int], list[str]] | None = None,
    left: int = 1,
) -> str:
    """Aligned columns (the first ``left`` to the left, numbers to the right).

    With ``color``: bold header, a rule, red highlighted rows. ``details(i)`` gives indented lines
    to print under row ``i``. Every cell and detail goes through :func:`printable`.
    """
    shown = [[printable(cell) for cell in cells] for cells in rows]
    widths = [max(len(h), *(len(r[i]) for r in shown)) if shown else len(h) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    out = []
    if color:
        out.append(f"\033[1m{line(headers)}\033[0m")
        out.append("─" * len(line(headers)))
    else:
        out.append(line(headers))
    for index, cells in enumerate(shown):
        text = line(cells)
        if color and highlight is not None and highlight(index):
            text = f"\033[31m{text}\033[0m"
        out.append(text)
        if details is not None:
            out.extend(f"    {printable(detail)}" for detail in details(index))
    return "\n".join(out)


def count(value: int) -> str:
    return f"{value:,}"


def counted(value: int, noun: str, plural: str | None = None) -> str:
    """``1 span``, ``2 spans``, ``1,024 files``: a count with its noun in agreement."""
    return f"{value:,} {noun if value == 1 else plural or noun + 's'}"


def number(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "-"
    if value != value:  # NaN
        return "-"
    if abs(value) >= 1e6:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"
