"""``modeltel replay [PATH...] [--data-dir D] [--endpoint URL] [--protocol P] [--headers K=V,...]``.

Sends stored traces, metrics and logs (``--signals`` picks some) to an OTLP endpoint, in batches,
and remembers in ``<data_dir>/replay-cursor.json`` how far each file went to each endpoint, so a
second replay sends only what is new and an interrupted one resumes; a killed one repeats at most
its last request (:mod:`modeltel.replay.cursor`).

Where to: ``--endpoint`` / ``--protocol`` / ``--headers``, else the usual
``OTEL_EXPORTER_OTLP_*`` variables (per signal), else the OTLP defaults on localhost. Headers
from the environment go only to the endpoint from the environment: with ``--endpoint`` only
``--headers`` are sent, so a key meant for one backend never reaches another. Plain ``http://``
to a host that is not loopback is refused unless ``--insecure`` is given.

Exit 0 when everything new was sent, 1 when a receiver failed or refused (the cursor keeps what
was sent; run again to resume), 2 for a usage or configuration error, 128 + the signal number
when interrupted (SIGINT, SIGTERM: the request in flight finishes and is recorded first).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from modeltel.cli import _reading as reading

if TYPE_CHECKING:
    from modeltel._internal.config import Settings
    from modeltel.formats.protobuf import Signal
    from modeltel.replay.shipping import SignalReport
    from modeltel.replay.transport import SendError, Target

DEFAULT_BATCH = 512
"""Items (spans, data points or log records) per request, as the SDK's default export batch; a
line is never split."""
DEFAULT_RETRIES = 5


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="send stored traces, metrics and logs to an OTLP endpoint, resuming where the last one stopped",
        description=(
            "Send stored traces, metrics and logs to an OTLP endpoint in batches. "
            "A cursor in the data dir records what each endpoint acknowledged: a second replay sends "
            "only what is new, and a killed one repeats at most its last request."
        ),
    )
    reading.add_source_arguments(parser)
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        help="OTLP endpoint (gRPC: http://host:4317; HTTP: the base URL, /v1/<signal> is added); "
        "default: OTEL_EXPORTER_OTLP_[TRACES_|METRICS_|LOGS_]ENDPOINT, else localhost",
    )
    parser.add_argument(
        "--protocol",
        choices=("grpc", "http/protobuf"),
        help="default: OTEL_EXPORTER_OTLP_PROTOCOL, else grpc",
    )
    parser.add_argument(
        "--headers",
        metavar="K=V,...",
        help="request headers, URL-encoded like OTEL_EXPORTER_OTLP_HEADERS; values are never printed",
    )
    parser.add_argument(
        "--insecure", action="store_true", help="allow plain http:// to a host that is not loopback"
    )
    parser.add_argument(
        "--batch",
        type=_positive,
        default=DEFAULT_BATCH,
        metavar="N",
        help=f"spans, data points or log records per request (default {DEFAULT_BATCH}; "
        "a stored line is never split)",
    )
    parser.add_argument(
        "--signals",
        default="traces,metrics,logs",
        metavar="LIST",
        help="which to send, a comma list of traces, metrics, logs (default all three: a traces-only "
        "backend such as Phoenix refuses the others, so name what it takes)",
    )
    parser.add_argument(
        "--retries",
        type=_not_negative,
        default=DEFAULT_RETRIES,
        metavar="N",
        help=f"retries of a failed request when retrying may help, after 1, 2, 4, ... s "
        f"(default {DEFAULT_RETRIES})",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(func=main)


def _positive(text: str) -> int:
    value = _not_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _not_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def main(args: argparse.Namespace) -> int:
    return reading.run("replay", _replay, args)


def _replay(args: argparse.Namespace) -> int:
    from modeltel.read.files import SourceError
    from modeltel.replay.cursor import Cursor, CursorError
    from modeltel.replay.shipping import Shipper, replay_files
    from modeltel.replay.transport import Retrying, transport

    signals = _signals(args.signals)
    settings = _settings()
    targets = {name: _target(name, args, settings) for name in signals}
    paths: list[Path] = list(args.paths or [])
    data_dir = None if paths else (args.data_dir or settings.data_dir)
    if data_dir is not None and not data_dir.is_dir():
        raise reading.CommandError(f"no such data dir: {data_dir} (run something under `modeltel run` first)")
    try:
        files = replay_files(paths, data_dir)
    except SourceError as exc:
        raise reading.CommandError(str(exc)) from None
    cursor_dir = _cursor_dir(args, paths, data_dir)
    if cursor_dir is None:
        print(
            "modeltel replay: note: no data dir, so no cursor: these files will be sent again next time "
            "(pass --data-dir D to keep one there)",
            file=sys.stderr,
        )
    try:
        cursor = Cursor(cursor_dir)
    except CursorError as exc:
        raise reading.CommandError(str(exc), reading.EXIT_FAILURE) from None
    bad = reading.BadLines("replay")
    total = sum(path.stat().st_size for name in signals for path in files[name])
    reports: list[SignalReport] = []
    with _stop_signals() as stop, reading.ProgressBar(total, "replaying") as bar:

        def retrying(target: Target) -> Callable[[SendError, float, int], None]:
            def on_retry(error: SendError, delay: float, attempt: int) -> None:
                bar.close()
                retry = f"retry {attempt} of {args.retries} in {delay:.1f} s"
                print(f"modeltel replay: {target.signal}: {error}; {retry}", file=sys.stderr)

            return on_retry

        shipper = Shipper(cursor, args.batch, bar.advance, bad, stop.is_set)
        try:
            with cursor.locked():
                for name in signals:
                    target = targets[name]
                    sender = Retrying(
                        transport(target),
                        retries=args.retries,
                        stopped=stop.is_set,
                        on_retry=retrying(target),
                    )
                    try:
                        reports.append(shipper.replay(name, files[name], target, sender))
                    finally:
                        sender.transport.close()
                    if stop.is_set():
                        break
        except CursorError as exc:
            raise reading.CommandError(str(exc), reading.EXIT_FAILURE) from None
    for warning in cursor.warnings:
        print(f"modeltel replay: warning: {warning}", file=sys.stderr)
    _print(args.format, reports, stop.signal, cursor_dir)
    if stop.signal is not None:
        print(
            "modeltel replay: interrupted; what was sent is recorded, run the same command to resume",
            file=sys.stderr,
        )
        return 128 + stop.signal
    failed = [r for r in reports if r.error is not None]
    for report in failed:
        print(
            f"modeltel replay: {report.signal} to {report.endpoint}: {report.error}"
            + (f" (gave up after {args.retries} retries)" if report.retried else "")
            + "; what was sent is recorded, run again to resume",
            file=sys.stderr,
        )
    return reading.EXIT_FAILURE if failed else reading.EXIT_OK


def _signals(text: str) -> list[Signal]:
    from modeltel.formats.protobuf import SIGNALS

    chosen = [part.strip() for part in text.split(",") if part.strip()]
    if not chosen or any(name not in SIGNALS for name in chosen):
        raise reading.CommandError(f"--signals: expected a comma list of traces, metrics, logs, got {text!r}")
    return [name for name in SIGNALS if name in chosen]


def _settings() -> Settings:
    from modeltel._internal.config import ConfigError, load_settings

    try:
        return load_settings(strict=True, check_dirs=False)
    except ConfigError as exc:
        raise reading.CommandError("; ".join(str(p) for p in exc.problems)) from None


def _target(signal_name: Signal, args: argparse.Namespace, settings: Settings) -> Target:
    """Where one signal goes; refuses plain text off the machine without ``--insecure``."""
    from modeltel._internal.config import ConfigError, parse_header_list
    from modeltel.replay.transport import Target, is_loopback

    otlp = settings.otlp[signal_name]
    protocol: str = args.protocol or otlp.protocol
    headers: dict[str, str] = {}
    if args.endpoint is not None:
        url = _given_endpoint(args.endpoint, protocol, signal_name)
    else:
        url = otlp.endpoint or ("http://localhost:4317" if protocol == "grpc" else "http://localhost:4318")
        if protocol == "http/protobuf" and urlsplit(url).path in ("", "/"):
            url = url.rstrip("/") + f"/v1/{signal_name}"
        headers.update(otlp.header_values())  # the environment's headers, for the environment's endpoint
    if args.headers:
        try:
            parsed = parse_header_list(args.headers, "--headers")
        except ConfigError as exc:
            raise reading.CommandError("; ".join(str(p) for p in exc.problems)) from None
        headers.update({key: value.get_secret_value() for key, value in parsed.items()})
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        raise reading.CommandError("the endpoint holds credentials; pass them with --headers instead")
    if parts.scheme == "http" and not is_loopback(parts.hostname or "") and not args.insecure:
        raise reading.CommandError(
            f"refusing to send {signal_name} in plain text to {url}: use https://, "
            "or pass --insecure if this network is trusted"
        )
    return Target(signal_name, url, protocol, headers, otlp.timeout_s)


def _given_endpoint(value: str, protocol: str, signal_name: str) -> str:
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
        raise reading.CommandError(
            f"--endpoint: expected a URL like http://host:4317, got {_no_credentials(value)!r}"
        )
    if protocol == "grpc":
        return value.rstrip("/")
    base = value.rstrip("/")
    for suffix in ("/v1/traces", "/v1/metrics", "/v1/logs"):
        base = base.removesuffix(suffix)
    return f"{base}/v1/{signal_name}"


def _no_credentials(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="<credentials>@" + parts.netloc.rsplit("@", 1)[1]).geturl()


def _cursor_dir(args: argparse.Namespace, paths: list[Path], data_dir: Path | None) -> Path | None:
    """The data dir that keeps the cursor: ``--data-dir``, the one replayed, or a single PATH that is one."""
    if args.data_dir is not None:
        if not args.data_dir.is_dir():
            raise reading.CommandError(f"no such data dir: {args.data_dir}")
        return Path(args.data_dir)
    if data_dir is not None:
        return data_dir
    from modeltel.store.layout import is_data_dir

    return paths[0] if len(paths) == 1 and paths[0].is_dir() and is_data_dir(paths[0]) else None


class _Stop:
    """Set by SIGINT / SIGTERM: the replay stops between requests and saves its cursor."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def is_set(self) -> bool:
        return self.signal is not None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.signal = signum


@contextlib.contextmanager
def _stop_signals() -> Iterator[_Stop]:
    stop = _Stop()
    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _print(output: str, reports: list[SignalReport], stopped: int | None, cursor_dir: Path | None) -> None:
    from modeltel.store.layout import DataDir

    if output == "json":
        document = {
            "signals": [report.to_json() for report in reports],
            "interrupted": stopped is not None,
            "cursor": None if cursor_dir is None else str(DataDir(cursor_dir).replay_cursor),
        }
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    from modeltel.replay.shipping import ITEM_NAMES

    for report in reports:
        unit = ITEM_NAMES[report.signal]
        head = f"{report.signal} → {report.endpoint} ({report.protocol}): "
        if report.requests:
            head += (
                f"{report.items:,} {unit} sent in {_count(report.requests, 'request')} "
                f"({_count(report.lines, 'line')} from {_count(report.files - report.up_to_date, 'file')})"
            )
        else:
            head += f"0 {unit} sent"
        notes = []
        if not report.files:
            notes.append("no files")
        if report.up_to_date:
            notes.append(f"{report.up_to_date:,} of {report.files:,} files had nothing new")
        if report.rejected:
            reason = f": {report.rejected_reason}" if report.rejected_reason else ""
            notes.append(f"{report.rejected:,} {unit} rejected by the receiver{reason}")
        if report.skipped:
            notes.append(f"{report.skipped:,} invalid lines skipped")
        if report.incomplete:
            notes.append(f"{report.incomplete:,} incomplete last lines left for later")
        if report.error:
            notes.append(f"stopped: {report.error}")
        print(head + (f"; {'; '.join(notes)}" if notes else ""))


def _count(number: int, word: str) -> str:
    return f"{number:,} {word}{'' if number == 1 else 's'}"
