"""Settings from the environment: the one place modeltel reads ``os.environ``.

Every variable modeltel reads or validates has one row in :data:`ENV_VARS` (name, default, what it
does). :func:`load_settings` turns an environment mapping into a typed :class:`Settings`; a bad value
becomes a :class:`ConfigProblem` naming the variable and the value. In strict mode (``modeltel run``,
``modeltel doctor``) problems raise :class:`ConfigError`; inside an application each problem is one
warning and the default is used, so a typo in an env var never takes the host down.

Standard SDK variables are validated here and then handed to the SDK as explicit arguments, so the
value the SDK uses is the value that was checked.
"""

from __future__ import annotations

import os
import re
import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple
from urllib.parse import unquote, urlparse

from modeltel._internal.cluster import (
    RANKS_CHOICES,
    exports_remotely,
    launch_run_id,
    parallel_position,
    parse_ranks,
)
from modeltel._internal.switch import FALSE_WORDS, TRUE_WORDS
from modeltel.store.layout import unsafe_reason

Signal = Literal["traces", "metrics", "logs"]
SIGNALS: tuple[Signal, ...] = ("traces", "metrics", "logs")
OtlpProtocol = Literal["grpc", "http/protobuf"]

BUILTIN_EXPORTERS = frozenset({"otlp", "jsonl", "console", "none"})
"""Exporter names modeltel builds itself; any other name must be a registered entry point."""

_KNOWN_SAMPLERS = frozenset(
    {
        "always_on",
        "always_off",
        "traceidratio",
        "parentbased_always_on",
        "parentbased_always_off",
        "parentbased_traceidratio",
    }
)


class EnvVar(NamedTuple):
    """One environment variable: its name, default (as the user would write it) and meaning.

    The rows, the integer settings and the problems are named tuples, not frozen dataclasses: every
    configured process imports this module, and a frozen dataclass costs ~1 ms to build.
    """

    name: str
    default: str | None
    doc: str


ENV_VARS: tuple[EnvVar, ...] = (
    EnvVar("MODELTEL_ENABLED", "true", "`false` makes every modeltel call a no-op"),
    EnvVar("MODELTEL_DATA_DIR", "./modeltel-data", "where local JSONL goes"),
    EnvVar(
        "MODELTEL_JSONL",
        "true",
        "write local JSONL (traces, metrics and logs) in addition to other exporters",
    ),
    EnvVar("MODELTEL_CAPTURE_CONTENT", "false", "record prompts, completions and raw inputs"),
    EnvVar(
        "MODELTEL_RUN_ID",
        None,
        "groups the traces of one logical run across processes; default: the batch scheduler's job "
        "(array) id, else the launcher's, else generated",
    ),
    EnvVar(
        "MODELTEL_RANKS",
        "all",
        "which ranks of a parallel job send over OTLP and other remote exporters: all, first, "
        "first-per-node or sample:N; every rank keeps its local JSONL",
    ),
    EnvVar("MODELTEL_DEBUG", "false", "`true` makes the CLI print the traceback of an unexpected error"),
    EnvVar(
        "MODELTEL_REDACT_KEYS",
        "password,passwd,pwd,secret,token,authorization,credential,credentials,cookie,"
        "api_key,apikey,private_key,access_key",
        "attribute-key words whose values are replaced by `<redacted>` before any export",
    ),
    EnvVar("OTEL_SDK_DISABLED", "false", "`true` disables telemetry like MODELTEL_ENABLED=false"),
    EnvVar("OTEL_SERVICE_NAME", None, "resource `service.name`; also names the JSONL files"),
    EnvVar("OTEL_RESOURCE_ATTRIBUTES", None, "extra resource attributes, `k=v,k2=v2`"),
    EnvVar("OTEL_TRACES_EXPORTER", None, "comma list: otlp, jsonl, console, none, or an entry point"),
    EnvVar("OTEL_METRICS_EXPORTER", None, "comma list: otlp, jsonl, console, none, or an entry point"),
    EnvVar("OTEL_LOGS_EXPORTER", None, "comma list: otlp, jsonl, console, none, or an entry point"),
    EnvVar(
        "MODELTEL_LOG_LEVEL",
        None,
        "level from which `logging` records are captured (DEBUG, INFO, WARNING, ERROR, CRITICAL or a "
        "number), whatever the app's logger levels; the app's own handlers see what they saw; "
        "default: what the app's loggers let through",
    ),
    EnvVar(
        "MODELTEL_LOG_WARNINGS", "false", "`true` captures `warnings.warn` as log records (stderr unchanged)"
    ),
    EnvVar("OTEL_EXPORTER_OTLP_ENDPOINT", None, "OTLP endpoint for every signal"),
    EnvVar("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "`grpc` or `http/protobuf`"),
    EnvVar("OTEL_EXPORTER_OTLP_HEADERS", None, "`k=v,k2=v2`, URL-encoded; never written anywhere"),
    EnvVar("OTEL_EXPORTER_OTLP_TIMEOUT", "10000", "OTLP export timeout, milliseconds"),
    EnvVar("OTEL_TRACES_SAMPLER", "parentbased_always_on", "sampler name"),
    EnvVar("OTEL_TRACES_SAMPLER_ARG", None, "ratio in [0, 1] for the `traceidratio` samplers"),
    EnvVar("OTEL_BSP_SCHEDULE_DELAY", "5000", "batch span processor delay, milliseconds"),
    EnvVar("OTEL_BSP_MAX_QUEUE_SIZE", "2048", "batch span processor queue size"),
    EnvVar("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "512", "batch span processor batch size"),
    EnvVar("OTEL_BSP_EXPORT_TIMEOUT", "30000", "batch span processor export timeout, milliseconds"),
    EnvVar("OTEL_METRIC_EXPORT_INTERVAL", "60000", "metric export interval, milliseconds"),
    EnvVar("OTEL_METRIC_EXPORT_TIMEOUT", "30000", "metric export timeout, milliseconds"),
)
"""Every variable modeltel reads, with its default: the README's table is generated from it.

Per-signal forms (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` etc.) are honoured too and override the
generic ones, as the OTLP exporter specification says.
"""


class IntegerSetting(NamedTuple):
    """A whole-number setting: its variable, default, and the least value the SDK accepts."""

    variable: str
    default: int
    minimum: int


INTEGER_SETTINGS: dict[str, IntegerSetting] = {
    "bsp_schedule_delay_ms": IntegerSetting("OTEL_BSP_SCHEDULE_DELAY", 5000, 1),
    "bsp_max_queue_size": IntegerSetting("OTEL_BSP_MAX_QUEUE_SIZE", 2048, 1),
    "bsp_max_export_batch_size": IntegerSetting("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512, 1),
    "bsp_export_timeout_ms": IntegerSetting("OTEL_BSP_EXPORT_TIMEOUT", 30000, 0),
    "metric_export_interval_ms": IntegerSetting("OTEL_METRIC_EXPORT_INTERVAL", 60000, 1),
    "metric_export_timeout_ms": IntegerSetting("OTEL_METRIC_EXPORT_TIMEOUT", 30000, 0),
}
"""The :class:`Settings` fields read from a whole-number variable. A ``configure()`` keyword for one
of them is checked by the same rule as its variable: the SDK refuses a batch processor whose queue
or batch is 0 or whose batch exceeds its queue, and a bad value there would stall every span."""

_USER_INFO = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.-]*:)?//)?([^/?#]*)@")


def mask_url(value: str) -> str:
    """``value`` with the password (or a lone user name, often a token) of a URL masked.

    ``http://user:S3CR@host:4318`` is shown as ``http://user:****@host:4318``; whatever names an
    endpoint in a message, a warning or ``modeltel doctor`` goes through here first.
    """

    def masked(match: re.Match[str]) -> str:
        user, sep, _ = match.group(2).partition(":")
        return f"{match.group(1) or ''}{user}:****@" if sep else f"{match.group(1) or ''}****@"

    return _USER_INFO.sub(masked, value, count=1)


DEFAULT_REDACT_KEYS = next(str(v.default) for v in ENV_VARS if v.name == "MODELTEL_REDACT_KEYS").split(",")


class ConfigProblem(NamedTuple):
    """One bad variable: which, the offending value (secrets masked), and why it is bad."""

    variable: str
    value: str
    reason: str

    def __str__(self) -> str:
        return f"{self.variable}={self.value!r}: {self.reason}"


class ConfigError(ValueError):
    """Raised in strict mode when the environment holds bad values; lists every problem."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class ConfigWarning(UserWarning):
    """Issued once per bad variable when an application runs on with the default."""


class SecretStr:
    """A header value that never shows: ``repr`` and ``str`` are asterisks, and only
    :meth:`get_secret_value` gives the value (to the exporter, never to a log or a file)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretStr('**********')"

    def __str__(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretStr) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class OtlpSignalSettings:
    """Resolved OTLP exporter arguments for one signal."""

    endpoint: str | None = None
    protocol: OtlpProtocol = "grpc"
    headers: dict[str, SecretStr] = field(default_factory=dict)
    timeout_s: float = 10.0

    def header_values(self) -> dict[str, str]:
        """The real header values, for the exporter only: never log or write these."""
        return {k: v.get_secret_value() for k, v in self.headers.items()}


@dataclass(frozen=True)
class Settings:
    """Effective configuration. Built by :func:`load_settings`; passed to everything that needs it.

    Plain dataclasses, not pydantic models: every process that configures telemetry builds one, and
    pydantic's import and model building cost more than the trace SDK's import; the values are
    checked by :func:`load_settings` before they get here.
    """

    enabled: bool = True
    data_dir: Path = Path("./modeltel-data")
    jsonl: bool = True
    capture_content: bool = False
    redact_keys: tuple[str, ...] = tuple(DEFAULT_REDACT_KEYS)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    ranks: str = "all"
    """MODELTEL_RANKS, validated; ranks it does not pick export to JSONL only."""
    service_name: str | None = None
    traces_exporters: tuple[str, ...] = ()
    metrics_exporters: tuple[str, ...] = ()
    logs_exporters: tuple[str, ...] = ()
    log_level: int | None = None
    """MODELTEL_LOG_LEVEL as a number: the capture threshold; None captures what the app's loggers pass."""
    log_warnings: bool = False
    otlp: dict[Signal, OtlpSignalSettings] = field(default_factory=dict)
    sampler: str = "parentbased_always_on"
    sampler_arg: float | None = None
    bsp_schedule_delay_ms: int = 5000
    bsp_max_queue_size: int = 2048
    bsp_max_export_batch_size: int = 512
    bsp_export_timeout_ms: int = 30000
    metric_export_interval_ms: int = 60000
    metric_export_timeout_ms: int = 30000
    sources: dict[str, str] = field(default_factory=dict)
    """Where each setting came from (variable name or "default"), for ``modeltel doctor``."""


_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


class _Reader:
    """Reads and validates variables, collecting problems instead of raising at the first."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[ConfigProblem] = []
        self.sources: dict[str, str] = {}

    def raw(self, name: str) -> str | None:
        value = self.environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def problem(self, name: str, value: str, reason: str) -> None:
        found = ConfigProblem(variable=name, value=value, reason=reason)
        if found not in self.problems:  # generic OTLP variables are read once per signal
            self.problems.append(found)

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        self.sources[name] = name
        lowered = value.lower()
        if lowered in TRUE_WORDS:
            return True
        if lowered in FALSE_WORDS:
            return False
        self.problem(name, value, f"expected true or false; using {str(default).lower()}")
        return default

    def integer(self, name: str, default: int, minimum: int = 0) -> int:
        value = self.raw(name)
        if value is None:
            return default
        self.sources[name] = name
        try:
            number = int(value)
        except ValueError:
            self.problem(name, value, f"expected a whole number; using {default}")
            return default
        if number < minimum:
            self.problem(name, value, f"must be >= {minimum}; using {default}")
            return default
        return number

    def first(self, *names: str) -> tuple[str, str] | None:
        for name in names:
            value = self.raw(name)
            if value is not None:
                return name, value
        return None


def _parse_exporters(
    reader: _Reader,
    signal: Signal,
    known: Callable[[Signal], frozenset[str]],
    otlp_endpoint_set: bool,
    jsonl: bool,
) -> tuple[str, ...]:
    """Exporter names for ``signal``: the documented defaults, ``jsonl`` added unless disabled."""
    name = f"OTEL_{signal.upper()}_EXPORTER"
    value = reader.raw(name)
    if value is None:
        chosen = ["otlp"] if otlp_endpoint_set else []
    else:
        reader.sources[name] = name
        chosen = []
        for item in (part.strip().lower() for part in value.split(",")):
            if not item:
                continue
            if item not in known(signal):
                choices = ", ".join(sorted(known(signal)))
                reader.problem(name, value, f"unknown exporter {item!r} (known: {choices}); ignoring it")
                continue
            chosen.append(item)
        if chosen == ["none"]:
            return ()
        chosen = [c for c in chosen if c != "none"]
    if jsonl and "jsonl" not in chosen:
        chosen.append("jsonl")
    return tuple(dict.fromkeys(chosen))


def _parse_headers(reader: _Reader, name: str, value: str) -> dict[str, SecretStr]:
    headers: dict[str, SecretStr] = {}
    entries = [e for e in value.split(",") if e.strip()]
    for index, entry in enumerate(entries, start=1):
        key, sep, header_value = entry.partition("=")
        key = unquote(key).strip().lower()
        if not sep or not _HEADER_NAME.match(key):
            shown = f"entry {index} of {len(entries)}"
            reader.problem(
                name, "<hidden>", f"{shown} is not name=value (header values are secret and not shown)"
            )
            continue
        headers[key] = SecretStr(unquote(header_value).strip())
    return headers


def parse_header_list(value: str, name: str) -> dict[str, SecretStr]:
    """OTLP headers from ``k=v,k2=v2`` (URL-encoded) given as option ``name`` (e.g. ``--headers``).

    Parsed exactly like ``OTEL_EXPORTER_OTLP_HEADERS``; raises :class:`ConfigError` naming the
    entry that is not ``name=value``, never showing a value.
    """
    reader = _Reader({})
    headers = _parse_headers(reader, name, value)
    if reader.problems:
        raise ConfigError(reader.problems)
    return headers


def _parse_endpoint(reader: _Reader, name: str, value: str, protocol: OtlpProtocol) -> str | None:
    shown = mask_url(value)
    try:
        parsed = urlparse(value)
        parsed.port  # noqa: B018 - raises on a non-numeric port
    except ValueError:
        reader.problem(name, shown, "the port is not a number; ignoring it")
        return None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        reader.problem(name, shown, "expected a URL like http://host:4317; ignoring it")
        return None
    if protocol == "grpc" and "@" in parsed.netloc:
        # gRPC takes no credentials from the URL: it would try to resolve "user:password@host" as
        # a host name, fail on every export and print the password in each failure message.
        reason = "gRPC takes no credentials in the URL (use OTEL_EXPORTER_OTLP_HEADERS); dropping them"
        reader.problem(name, shown, reason)
        return parsed._replace(netloc=parsed.netloc.rpartition("@")[2]).geturl()
    return value


def _otlp_signal(reader: _Reader, signal: Signal) -> OtlpSignalSettings:
    upper = signal.upper()
    protocol: OtlpProtocol = "grpc"
    found = reader.first(f"OTEL_EXPORTER_OTLP_{upper}_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
    if found:
        if found[1] in ("grpc", "http/protobuf"):
            protocol = "grpc" if found[1] == "grpc" else "http/protobuf"
        else:
            reader.problem(found[0], found[1], "expected grpc or http/protobuf; using grpc")
    endpoint: str | None = None
    specific = f"OTEL_EXPORTER_OTLP_{upper}_ENDPOINT"
    found = reader.first(specific, "OTEL_EXPORTER_OTLP_ENDPOINT")
    if found:
        reader.sources[found[0]] = found[0]
        endpoint = _parse_endpoint(reader, *found, protocol)
        if endpoint is not None and protocol == "http/protobuf" and found[0] != specific:
            # The generic HTTP endpoint is a base URL; per-signal ones are used as given (OTLP spec).
            endpoint = endpoint.rstrip("/") + f"/v1/{signal}"
    headers: dict[str, SecretStr] = {}
    for name in ("OTEL_EXPORTER_OTLP_HEADERS", f"OTEL_EXPORTER_OTLP_{upper}_HEADERS"):
        value = reader.raw(name)
        if value is not None:
            headers.update(_parse_headers(reader, name, value))
    timeout_ms = reader.integer("OTEL_EXPORTER_OTLP_TIMEOUT", 10000)
    timeout_ms = reader.integer(f"OTEL_EXPORTER_OTLP_{upper}_TIMEOUT", timeout_ms)
    return OtlpSignalSettings(
        endpoint=endpoint, protocol=protocol, headers=headers, timeout_s=timeout_ms / 1e3
    )


def _parse_sampler(reader: _Reader) -> tuple[str, float | None]:
    name = reader.raw("OTEL_TRACES_SAMPLER")
    sampler = "parentbased_always_on"
    if name is not None:
        if name.lower() in _KNOWN_SAMPLERS:
            sampler = name.lower()
        else:
            choices = ", ".join(sorted(_KNOWN_SAMPLERS))
            reader.problem(
                "OTEL_TRACES_SAMPLER", name, f"unknown sampler (known: {choices}); using {sampler}"
            )
    arg: float | None = None
    raw_arg = reader.raw("OTEL_TRACES_SAMPLER_ARG")
    if raw_arg is not None and sampler.endswith("traceidratio"):
        try:
            arg = float(raw_arg)
        except ValueError:
            arg = None
        if arg is None or not 0.0 <= arg <= 1.0:
            reader.problem("OTEL_TRACES_SAMPLER_ARG", raw_arg, "expected a ratio between 0 and 1; using 1.0")
            arg = 1.0
    return sampler, arg


def _service_name(reader: _Reader) -> str | None:
    name = reader.raw("OTEL_SERVICE_NAME")
    if name is not None:
        return name
    attributes = reader.raw("OTEL_RESOURCE_ATTRIBUTES") or ""
    for pair in attributes.split(","):
        key, _, value = pair.partition("=")
        if key.strip() == "service.name" and value.strip():
            return unquote(value.strip())
    return None


_LOG_LEVELS = {"DEBUG": 10, "INFO": 20, "WARN": 30, "WARNING": 30, "ERROR": 40, "CRITICAL": 50, "FATAL": 50}


def _log_level(reader: _Reader) -> int | None:
    """MODELTEL_LOG_LEVEL: a level name (any case) or a whole number >= 0; None when unset."""
    value = reader.raw("MODELTEL_LOG_LEVEL")
    if value is None:
        return None
    reader.sources["MODELTEL_LOG_LEVEL"] = "MODELTEL_LOG_LEVEL"
    level = _LOG_LEVELS.get(value.upper())
    if level is None and value.isdigit():
        level = int(value)
    if level is None:
        choices = "DEBUG, INFO, WARNING, ERROR, CRITICAL or a whole number"
        reader.problem(
            "MODELTEL_LOG_LEVEL", value, f"expected {choices}; capturing what the app's loggers pass"
        )
    return level


def _ranks(reader: _Reader) -> str:
    value = reader.raw("MODELTEL_RANKS")
    if value is None:
        return "all"
    reader.sources["MODELTEL_RANKS"] = "MODELTEL_RANKS"
    parsed = parse_ranks(value)
    if parsed is None:
        reader.problem("MODELTEL_RANKS", value, f"expected {RANKS_CHOICES}; using all")
        return "all"
    return parsed


def _keep_local_only_unless_picked(values: dict[str, object], environ: Mapping[str, str]) -> None:
    """A rank MODELTEL_RANKS does not pick keeps only its JSONL exporters (after overrides, so a
    forwarded exporter list cannot bring the remote ones back in a rank's child processes)."""
    ranks = values["ranks"]
    if not isinstance(ranks, str) or exports_remotely(ranks, parallel_position(environ)):
        return
    for key in ("traces_exporters", "metrics_exporters", "logs_exporters"):
        exporters = values.get(key)
        if isinstance(exporters, tuple | list):
            values[key] = tuple(e for e in exporters if e == "jsonl")


def process_environment() -> Mapping[str, str]:
    """This process's environment, for readers of variables that belong to someone else (the
    resource detectors read the scheduler's and the launcher's): config stays the one reader."""
    return os.environ


def check_data_dir(path: Path) -> str | None:
    """Why ``path`` cannot hold modeltel's files, or None when it can. Creates nothing."""
    probe = path.absolute()
    while not probe.exists():
        if probe.parent == probe:
            return "no existing parent directory"
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} exists and is not a directory"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable"
    return None


def _data_dir(reader: _Reader, check: bool) -> tuple[Path, bool]:
    """The data dir, and whether local files may be written there."""
    default = Path("./modeltel-data")
    value = reader.raw("MODELTEL_DATA_DIR")
    if value is None:
        return default, True
    reader.sources["MODELTEL_DATA_DIR"] = "MODELTEL_DATA_DIR"
    path = Path(value).expanduser()
    reason = check_data_dir(path) if check else None
    if reason is not None:
        reader.problem("MODELTEL_DATA_DIR", value, f"{reason}; using {default}")
        return default, True
    unsafe = unsafe_reason(path) if check and path.is_dir() else None
    if unsafe is not None:
        # Not the default instead: the user asked for this place; writing elsewhere would surprise.
        reader.problem("MODELTEL_DATA_DIR", value, f"{unsafe}; no local files are written")
    return path, unsafe is None


def installed_exporters(signal: Signal) -> frozenset[str]:
    """Exporter names usable for ``signal``: modeltel's own plus registered entry points."""
    from importlib.metadata import entry_points

    group = f"opentelemetry_{signal}_exporter"
    return BUILTIN_EXPORTERS | {ep.name for ep in entry_points(group=group)}


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    strict: bool = False,
    check_dirs: bool = True,
    known_exporters: Callable[[Signal], frozenset[str]] = installed_exporters,
    **overrides: object,
) -> Settings:
    """Read settings from ``environ`` (default ``os.environ``), then apply keyword ``overrides``.

    Strict: raise :class:`ConfigError` listing every bad variable. Lenient: one
    :class:`ConfigWarning` per bad variable, and its default is used.
    """
    reader = _Reader(os.environ if environ is None else environ)
    disabled = reader.boolean("OTEL_SDK_DISABLED", False)
    enabled = reader.boolean("MODELTEL_ENABLED", True) and not disabled
    data_dir, private = _data_dir(reader, check_dirs and enabled)
    jsonl = reader.boolean("MODELTEL_JSONL", True) and private
    otlp = {signal: _otlp_signal(reader, signal) for signal in SIGNALS}
    exporters = {
        signal: _parse_exporters(reader, signal, known_exporters, otlp[signal].endpoint is not None, jsonl)
        for signal in SIGNALS
    }
    if not private:
        exporters = {signal: tuple(e for e in chosen if e != "jsonl") for signal, chosen in exporters.items()}
    sampler, sampler_arg = _parse_sampler(reader)
    values: dict[str, object] = {
        "enabled": enabled,
        "data_dir": data_dir,
        "jsonl": jsonl,
        "capture_content": reader.boolean("MODELTEL_CAPTURE_CONTENT", False),
        "service_name": _service_name(reader),
        "traces_exporters": exporters["traces"],
        "metrics_exporters": exporters["metrics"],
        "logs_exporters": exporters["logs"],
        "log_level": _log_level(reader),
        "log_warnings": reader.boolean("MODELTEL_LOG_WARNINGS", False),
        "otlp": otlp,
        "sampler": sampler,
        "sampler_arg": sampler_arg,
    }
    overrides = dict(overrides)
    overrides_given = set(overrides)
    named: dict[str, str] = {}  # where each integer came from, for the message: keyword or variable
    for field_name, setting in INTEGER_SETTINGS.items():
        named[field_name] = setting.variable
        values[field_name] = reader.integer(setting.variable, setting.default, setting.minimum)
        if field_name in overrides:
            named[field_name] = field_name
            values[field_name] = _integer_override(reader, field_name, overrides.pop(field_name), setting)
    queue, batch = values["bsp_max_queue_size"], values["bsp_max_export_batch_size"]
    if isinstance(queue, int) and isinstance(batch, int) and batch > queue:
        batch_source = named["bsp_max_export_batch_size"]
        if batch_source in overrides_given or reader.raw(batch_source) is not None:
            fallback = min(INTEGER_SETTINGS["bsp_max_export_batch_size"].default, queue)
            reader.problem(
                batch_source,
                str(batch),
                f"must not exceed {named['bsp_max_queue_size']} ({queue}); using {fallback}",
            )
            values["bsp_max_export_batch_size"] = fallback
        else:  # only the queue was set small: the default batch shrinks with it, nobody asked for 512
            values["bsp_max_export_batch_size"] = queue
    redact = reader.raw("MODELTEL_REDACT_KEYS")
    if redact is not None:
        values["redact_keys"] = tuple(k.strip() for k in redact.split(",") if k.strip())
    run_id = reader.raw("MODELTEL_RUN_ID") or launch_run_id(reader.environ)
    if run_id is not None:
        values["run_id"] = run_id
    values["ranks"] = _ranks(reader)
    values.update(overrides)
    _keep_local_only_unless_picked(values, reader.environ)
    values["sources"] = reader.sources
    if reader.problems:
        if strict:
            raise ConfigError(reader.problems)
        for problem in reader.problems:
            warnings.warn(f"modeltel: {problem}", ConfigWarning, stacklevel=2)
    return _settings(values)


_TUPLE_FIELDS = ("redact_keys", "traces_exporters", "metrics_exporters", "logs_exporters")


def _settings(values: dict[str, object]) -> Settings:
    """``Settings(**values)``, taking what ``configure()`` keywords may give loosely: a data dir as
    a string, a tuple as a list, a signal's OTLP settings as a dict; a keyword that names no
    setting is ignored."""
    names = Settings.__dataclass_fields__
    kept = {name: value for name, value in values.items() if name in names}
    data_dir = kept.get("data_dir")
    if isinstance(data_dir, str | os.PathLike) and not isinstance(data_dir, Path):
        kept["data_dir"] = Path(data_dir)
    for name in _TUPLE_FIELDS:
        if isinstance(kept.get(name), list):
            kept[name] = tuple(kept[name])  # type: ignore[arg-type]
    otlp = kept.get("otlp")
    if isinstance(otlp, dict):
        kept["otlp"] = {signal: _otlp_settings(given) for signal, given in otlp.items()}
    return Settings(**kept)  # type: ignore[arg-type]


def _otlp_settings(given: object) -> object:
    """One signal's OTLP settings as given: the object itself, or the plain dict a worker gets
    from its parent (headers as strings, wrapped again here so they never show)."""
    if not isinstance(given, dict):
        return given
    headers = {key: SecretStr(value) for key, value in given.get("headers", {}).items()}
    return OtlpSignalSettings(**{**given, "headers": headers})


def _integer_override(reader: _Reader, name: str, value: object, setting: IntegerSetting) -> int:
    """A ``configure(name=value)`` integer, held to its variable's rule; the default if it breaks it."""
    if isinstance(value, bool) or not isinstance(value, int):
        reader.problem(name, _shown(value), f"expected a whole number; using {setting.default}")
        return setting.default
    if value < setting.minimum:
        reader.problem(name, str(value), f"must be >= {setting.minimum}; using {setting.default}")
        return setting.default
    reader.sources[name] = "configure()"
    return value


def _shown(value: object) -> str:
    try:
        return repr(value)[:80]
    except Exception:
        return f"<{type(value).__name__}>"


def debug_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """``MODELTEL_DEBUG``: whether the CLI prints the traceback of an error it did not expect."""
    value = (os.environ if environ is None else environ).get("MODELTEL_DEBUG", "")
    return value.strip().lower() in TRUE_WORDS


DISTRO_VARIABLES = {"OTEL_PYTHON_DISTRO": "modeltel", "OTEL_PYTHON_CONFIGURATOR": "modeltel"}
"""Set by ``modeltel run``: with the stock distro also installed, it would otherwise win."""


def log_correlation_requested(environ: Mapping[str, str] | None = None) -> bool:
    """``OTEL_PYTHON_LOG_CORRELATION`` (the logging instrumentation's own variable): whether the app
    asked for trace ids on its ``logging`` records, for its own format."""
    source = os.environ if environ is None else environ
    return source.get("OTEL_PYTHON_LOG_CORRELATION", "").strip().lower() == "true"


def select_modeltel_configurator() -> None:
    """Make ``opentelemetry-instrument`` load modeltel's configurator unless one was chosen."""
    os.environ.setdefault("OTEL_PYTHON_CONFIGURATOR", "modeltel")


def publish_run_id(run_id: str) -> None:
    """Export the run id so every child process joins the same logical run."""
    os.environ.setdefault("MODELTEL_RUN_ID", run_id)


CONTEXT_CARRIER_VARS: tuple[EnvVar, ...] = (
    EnvVar("TRACEPARENT", None, "W3C trace context of the launching span; a child process joins its trace"),
    EnvVar("TRACESTATE", None, "W3C tracestate that goes with TRACEPARENT"),
    EnvVar("BAGGAGE", None, "W3C baggage that goes with TRACEPARENT"),
)
"""The OpenTelemetry environment-variable context carrier (read by :func:`context_carrier`).

Not settings: they say where in a trace this process starts, and modeltel sets them itself in the
environment of the subprocesses it launches while a span is current.
"""


def context_carrier(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The propagation carrier the environment holds, with the lower-case keys propagators use."""
    source = os.environ if environ is None else environ
    found = {var.name.lower(): source.get(var.name, "").strip() for var in CONTEXT_CARRIER_VARS}
    return {key: value for key, value in found.items() if value}


def child_environment(
    carrier: Mapping[str, str], run_id: str, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``base`` (default: this process's environment) with ``carrier`` as upper-case variables.

    Stale carrier variables inherited from ``base`` are dropped first, so a tracestate never ends up
    beside someone else's traceparent. ``MODELTEL_RUN_ID`` is added when missing, so the child
    groups its traces with this run.
    """
    env = dict(os.environ if base is None else base)
    for var in CONTEXT_CARRIER_VARS:
        env.pop(var.name, None)
    env.update({key.upper(): value for key, value in carrier.items()})
    env.setdefault("MODELTEL_RUN_ID", run_id)
    return env


def disabled_instrumentations(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """Names in ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` (``*`` means all), as the SDK reads them."""
    source = os.environ if environ is None else environ
    value = source.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "")
    return frozenset(part.strip() for part in value.split(",") if part.strip())
