"""Start real telemetry backends (Arize Phoenix, rotel) for integration tests and read data back.

Plain helpers with no pytest dependency; ``conftest.py`` wraps them in fixtures. Every server binds
127.0.0.1 on a free port, runs in its own process group with a temp working dir, and is stopped by
its own PID (SIGTERM, bounded wait, SIGKILL of the whole group). When ``setpriv`` is available the
server also gets a parent-death signal, so it exits even if the test process is killed outright.
"""

from __future__ import annotations

import contextlib
import importlib.util
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "BLACKHOLE_DEBUG_ENV",
    "ENV_MODELTEL_PHOENIX_BIN",
    "PHOENIX_PROJECT_ATTRIBUTE",
    "BackendError",
    "ListeningSocket",
    "ManagedProcess",
    "MetricPoint",
    "PhoenixServer",
    "RotelAgent",
    "RotelMetricsSink",
    "assert_loopback_only",
    "free_port",
    "latest_points",
    "listening_sockets",
    "parse_rotel_metrics_log",
    "phoenix_bin",
    "rotel_bin",
    "rotel_forwarding_env",
    "wait_until",
]

REPO_ROOT = Path(__file__).resolve().parents[2]

ENV_MODELTEL_PHOENIX_BIN = "MODELTEL_PHOENIX_BIN"
"""Path of the ``phoenix`` executable used by the integration tests.

Default: ``<repo>/.tools-phoenix/bin/phoenix``. Phoenix lives in its own venv on purpose: its heavy
dependencies must not leak into the project's environment.
"""

PHOENIX_PROJECT_ATTRIBUTE = "openinference.project.name"
"""Resource attribute Phoenix uses to pick the project a span lands in (default project: "default")."""

LOOPBACK = "127.0.0.1"

# Environment variables of the test process that would change how a backend behaves; they are
# removed from the backend's environment so each server sees only what the helper sets.
_HERMETIC_PREFIXES = ("PHOENIX_", "ROTEL_", "OTEL_", "PYTHONPATH", "PYTHONSTARTUP")

# Phoenix's OTLP gRPC server calls `server.add_insecure_port(f"[::]:{port}")` (phoenix 20.x,
# phoenix/server/grpc_server.py) and has no setting for the gRPC host, so PHOENIX_HOST does not
# reach it. This sitecustomize, put first on the Phoenix process's PYTHONPATH, wraps the public
# `grpc.aio.server` factory so that wildcard binds become 127.0.0.1 binds, in that process only.
# gRPC then opens a dual-stack socket bound to ::ffff:127.0.0.1, which `ss` prints as
# [::ffff:127.0.0.1] and which accepts loopback connections only.
_PHOENIX_LOOPBACK_SITECUSTOMIZE = '''\
"""modeltel integration tests: bind Phoenix's gRPC server to 127.0.0.1 instead of [::]."""
import sys

import grpc.aio

_WILDCARDS = ("[::]:", "0.0.0.0:", ":::")
_original_server = grpc.aio.server


def _loopback(address):
    for wildcard in _WILDCARDS:
        if address.startswith(wildcard):
            rebound = "127.0.0.1:" + address[len(wildcard):]
            print(f"modeltel-tests: gRPC bind {address} -> {rebound}", file=sys.stderr, flush=True)
            return rebound
    return address


def _server(*args, **kwargs):
    server = _original_server(*args, **kwargs)
    add_insecure_port = server.add_insecure_port
    add_secure_port = server.add_secure_port
    server.add_insecure_port = lambda address: add_insecure_port(_loopback(address))
    server.add_secure_port = lambda address, credentials: add_secure_port(_loopback(address), credentials)
    return server


grpc.aio.server = _server
'''

T = TypeVar("T")


class BackendError(RuntimeError):
    """A backend could not start, did not become ready, or returned something unexpected."""


# --------------------------------------------------------------------------------------------------
# small helpers


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


class BlackHole:
    """A TCP listener on 127.0.0.1 that accepts connections and never sends a byte."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections: list[socket.socket] = []
        self._stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.server.settimeout(0.2)
        while not self._stop:
            try:
                connection, _ = self.server.accept()
            except OSError:
                continue
            self.connections.append(connection)

    def close(self) -> None:
        self._stop = True
        self.thread.join(5)
        for connection in self.connections:
            connection.close()
        self.server.close()


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float,
    interval: float = 0.1,
    message: str | Callable[[], str] = "condition",
) -> T:
    """Call ``predicate`` until it returns a truthy value and return that value.

    Bounded: raises ``TimeoutError`` (naming ``message``) after ``timeout`` seconds. The predicate
    is always called at least once, and once more at the deadline.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {text}")
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def _hermetic_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_HERMETIC_PREFIXES)}
    env.update(extra)
    return env


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").replace("\x00", "")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


def _http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET ``url``; return (status, body) for any HTTP status, raise OSError if unreachable."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())


# --------------------------------------------------------------------------------------------------
# processes


def _process_group_members(pgid: int) -> list[int]:
    """PIDs of live (non-zombie) processes in process group ``pgid``, read from /proc."""
    members: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # /proc/<pid>/stat: "pid (comm) state ppid pgrp ..."; comm may contain spaces and parens.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


@dataclass
class ManagedProcess:
    """A server started in its own process group (pgid == pid), logging to ``log_path``."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    def start(
        cls, name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path, log_path: Path
    ) -> ManagedProcess:
        """Start ``argv`` with stdout and stderr appended to ``log_path``.

        The log is opened in append mode on purpose: a file truncated under a writer that does not
        use O_APPEND fills with NUL bytes up to the writer's old offset.
        """
        command = list(argv)
        setpriv = shutil.which("setpriv")
        if setpriv is not None:
            # setpriv execs the command, so the PID stays the server's; PDEATHSIG survives exec.
            command = [setpriv, "--pdeathsig", "TERM", "--", *command]
        with open(log_path, "ab") as log:
            popen = subprocess.Popen(
                command,
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return cls(name=name, popen=popen, log_path=log_path)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def group_pids(self) -> list[int]:
        """PIDs of the live processes in this server's process group (the server and its children)."""
        return _process_group_members(self.pid)

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the process group, wait up to ``timeout`` s, then SIGKILL what is left of it.

        Idempotent. Raises ``BackendError`` if anything in the group survives SIGKILL.
        """
        if self.popen.poll() is not None and not self.group_pids():
            return  # already gone and reaped: do not signal a group id that may be reused
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=timeout)
        try:
            wait_until(lambda: not self.group_pids(), timeout=2.0, interval=0.05, message="group to exit")
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5.0)
        try:
            wait_until(lambda: not self.group_pids(), timeout=5.0, interval=0.05, message="SIGKILL")
        except TimeoutError as exc:
            raise BackendError(
                f"{self.name} (pgid {self.pid}) survived SIGKILL: {self.group_pids()}"
            ) from exc


# --------------------------------------------------------------------------------------------------
# listening sockets


@dataclass(frozen=True)
class ListeningSocket:
    address: str
    port: int
    pid: int


def listening_sockets(pids: Sequence[int]) -> list[ListeningSocket]:
    """TCP sockets in LISTEN state owned by any of ``pids``, as reported by ``ss -ltnpH``."""
    wanted = set(pids)
    output = subprocess.run(["ss", "-ltnpH"], check=True, capture_output=True, text=True, timeout=10).stdout
    found: list[ListeningSocket] = []
    for line in output.splitlines():
        columns = line.split()
        if len(columns) < 6:
            continue
        local = columns[3]
        address, _, port = local.rpartition(":")
        for pid_text in re.findall(r"pid=(\d+)", " ".join(columns[5:])):
            if int(pid_text) in wanted:
                found.append(ListeningSocket(address=address, port=int(port), pid=int(pid_text)))
    return sorted(set(found), key=lambda s: (s.port, s.address))


def _is_loopback(address: str) -> bool:
    host = address.strip("[]").split("%", 1)[0]
    if host == "*":
        return False
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def assert_loopback_only(pids: Sequence[int], expected_ports: Sequence[int] = ()) -> list[ListeningSocket]:
    """Check with ``ss -ltn`` that ``pids`` listen on loopback addresses only.

    Also checks that each of ``expected_ports`` is among the listening ports. Returns the sockets.
    """
    sockets = listening_sockets(pids)
    exposed = [s for s in sockets if not _is_loopback(s.address)]
    if exposed:
        raise AssertionError(f"non-loopback listeners for pids {list(pids)}: {exposed}")
    missing = set(expected_ports) - {s.port for s in sockets}
    if missing:
        raise AssertionError(f"pids {list(pids)} do not listen on ports {sorted(missing)}: {sockets}")
    return sockets


# --------------------------------------------------------------------------------------------------
# Phoenix


def phoenix_bin() -> Path:
    """The ``phoenix`` executable: $MODELTEL_PHOENIX_BIN or ``<repo>/.tools-phoenix/bin/phoenix``.

    Raises ``BackendError`` naming the path and how to install it when it is missing.
    """
    configured = os.environ.get(ENV_MODELTEL_PHOENIX_BIN)
    path = Path(configured) if configured else REPO_ROOT / ".tools-phoenix" / "bin" / "phoenix"
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise BackendError(
            f"Phoenix executable not found at {path} "
            f"({'from $' + ENV_MODELTEL_PHOENIX_BIN if configured else 'default location'}). "
            f"Install it in its own venv: python -m venv {REPO_ROOT / '.tools-phoenix'} && "
            f"{REPO_ROOT / '.tools-phoenix' / 'bin' / 'pip'} install arize-phoenix; "
            f"or set {ENV_MODELTEL_PHOENIX_BIN} to an existing phoenix executable."
        )
    return path


@dataclass
class PhoenixServer:
    """A running ``phoenix serve`` on 127.0.0.1 (HTTP + OTLP/gRPC), with a SQLite DB in ``workdir``.

    Phoenix keeps span attributes, parent ids and events, but drops resource attributes
    (``service.name``) and the instrumentation scope, and refuses metrics.
    """

    process: ManagedProcess
    http_port: int
    grpc_port: int
    workdir: Path
    startup_seconds: float = 0.0

    @classmethod
    def start(
        cls, workdir: Path, executable: Path | None = None, ready_timeout: float = 90.0
    ) -> PhoenixServer:
        """Start Phoenix and return once ``/healthz`` answers 200 and it listens on loopback only."""
        executable = executable or phoenix_bin()
        workdir.mkdir(parents=True, exist_ok=True)
        site_dir = workdir / "sitecustomize"
        site_dir.mkdir(exist_ok=True)
        (site_dir / "sitecustomize.py").write_text(_PHOENIX_LOOPBACK_SITECUSTOMIZE)
        http_port, grpc_port = free_port(), free_port()
        while grpc_port == http_port:
            grpc_port = free_port()
        env = _hermetic_env(
            {
                "PYTHONPATH": str(site_dir),
                "PHOENIX_WORKING_DIR": str(workdir / "data"),
                "PHOENIX_HOST": LOOPBACK,
                "PHOENIX_PORT": str(http_port),
                "PHOENIX_GRPC_PORT": str(grpc_port),
                "PHOENIX_TELEMETRY_ENABLED": "false",
                "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
                # Not needed by tests; keep the server's surface small.
                "PHOENIX_DISABLE_AGENT_ASSISTANT": "true",
                "PHOENIX_AGENTS_DISABLE_BASH": "true",
            }
        )
        started = time.monotonic()
        process = ManagedProcess.start(
            "phoenix", [str(executable), "serve"], env=env, cwd=workdir, log_path=workdir / "phoenix.log"
        )
        server = cls(process=process, http_port=http_port, grpc_port=grpc_port, workdir=workdir)
        try:
            wait_until(
                server._healthy,
                timeout=ready_timeout,
                interval=0.25,
                message=lambda: f"Phoenix /healthz on {server.http_url}; log tail:\n{process.log_tail()}",
            )
            # /healthz answers once the app's lifespan (which starts the gRPC server) has run; the
            # wait below only guards against reading `ss` before the socket shows up.
            wait_until(
                lambda: grpc_port in {s.port for s in listening_sockets(process.group_pids())},
                timeout=10.0,
                message=f"Phoenix gRPC listener on port {grpc_port}",
            )
            server.startup_seconds = time.monotonic() - started
            server.assert_loopback_only()
        except BaseException:
            server.stop()
            raise
        return server

    def _healthy(self) -> bool:
        if not self.process.alive():
            raise BackendError(
                f"Phoenix exited with code {self.process.popen.returncode}; "
                f"log tail:\n{self.process.log_tail()}"
            )
        try:
            status, _ = _http_get(f"{self.http_url}/healthz", timeout=2.0)
        except OSError:
            return False
        return status == 200

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def http_url(self) -> str:
        """Base URL of the web app and REST API, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://{LOOPBACK}:{self.http_port}"

    @property
    def traces_url(self) -> str:
        """OTLP/HTTP (protobuf) traces endpoint: ``<http_url>/v1/traces``."""
        return f"{self.http_url}/v1/traces"

    @property
    def grpc_endpoint(self) -> str:
        """OTLP/gRPC endpoint, e.g. ``http://127.0.0.1:PORT`` (plaintext)."""
        return f"http://{LOOPBACK}:{self.grpc_port}"

    def assert_loopback_only(self) -> list[ListeningSocket]:
        """Check with ``ss`` that the Phoenix process group listens on loopback only (HTTP + gRPC)."""
        return assert_loopback_only(
            self.process.group_pids(), expected_ports=(self.http_port, self.grpc_port)
        )

    def fetch_spans(self, project: str = "default", trace_id: str | None = None) -> list[dict[str, Any]]:
        """One read of ``GET /v1/projects/{project}/spans`` (all pages), oldest first.

        Returns [] while the project does not exist (Phoenix answers 404 until its first span).
        """
        if "/" in project:
            # Starlette decodes %2F before routing, so such a project is unreachable over REST.
            raise BackendError(
                f"Phoenix's REST API cannot address a project name containing '/': {project!r}"
            )
        spans: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query: list[tuple[str, str]] = [("limit", "1000"), ("sort", "start_time"), ("order", "asc")]
            if trace_id is not None:
                query.append(("trace_id", trace_id))
            if cursor is not None:
                query.append(("cursor", cursor))
            url = (
                f"{self.http_url}/v1/projects/{urllib.parse.quote(project, safe='')}/spans?"
                f"{urllib.parse.urlencode(query)}"
            )
            status, body = _http_get(url)
            if status == 404:
                return []
            if status != 200:
                raise BackendError(f"GET {url} -> {status}: {body[:500]!r}")
            try:
                page = json.loads(body)
            except ValueError as exc:
                raise BackendError(f"GET {url} -> {status} but not JSON: {body[:200]!r}") from exc
            spans.extend(page["data"])
            cursor = page.get("next_cursor")
            if not cursor:
                return spans

    def spans(
        self,
        project: str = "default",
        trace_id: str | None = None,
        timeout: float = 30.0,
        *,
        min_count: int = 1,
        interval: float = 0.25,
    ) -> list[dict[str, Any]]:
        """Poll until ``project`` (optionally only ``trace_id``) holds ``min_count`` spans; return them.

        Each span is Phoenix's REST dict: ``name``, ``context.trace_id``/``context.span_id`` (hex),
        ``parent_id`` (hex or None), ``span_kind``, ``start_time``/``end_time`` (ISO 8601),
        ``status_code``, ``status_message``, ``attributes`` (flat, OTel keys), ``events``.
        Sorted by start time. Spans land asynchronously (Phoenix inserts in batches), hence
        ``min_count``. Raises ``TimeoutError`` with what was seen if the count is not reached.
        """
        seen: list[dict[str, Any]] = []

        def enough() -> list[dict[str, Any]] | None:
            nonlocal seen
            seen = self.fetch_spans(project, trace_id)
            return seen if len(seen) >= min_count else None

        return wait_until(
            enough,
            timeout=timeout,
            interval=interval,
            message=lambda: (
                f"{min_count} span(s) in Phoenix project {project!r}"
                f"{f' trace {trace_id}' if trace_id else ''}; saw {[s.get('name') for s in seen]}"
            ),
        )

    def stop(self, timeout: float = 20.0) -> None:
        self.process.stop(timeout=timeout)


# --------------------------------------------------------------------------------------------------
# rotel


def rotel_bin() -> Path:
    """The ``rotel-agent`` binary shipped inside the ``rotel`` pip package of this venv."""
    spec = importlib.util.find_spec("rotel")
    if spec is None or not spec.submodule_search_locations:
        raise BackendError("the 'rotel' package is not installed in this venv (pip install rotel)")
    path = Path(next(iter(spec.submodule_search_locations))) / "rotel-agent"
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise BackendError(f"rotel-agent binary not found or not executable at {path}")
    return path


@dataclass
class RotelAgent:
    """A running ``rotel-agent start`` receiving OTLP on 127.0.0.1 (gRPC + HTTP).

    Stdout (startup line plus ``--debug-log`` dumps) goes to ``process.log_path``. rotel exits on
    SIGTERM in ~1.5 s (it drains its pipeline first).
    """

    process: ManagedProcess
    grpc_port: int
    http_port: int
    workdir: Path

    @classmethod
    def start(
        cls,
        workdir: Path,
        exporter_env: Mapping[str, str],
        debug_logs: Sequence[str] = ("traces", "metrics"),
        ready_timeout: float = 15.0,
        ports: tuple[int, int] | None = None,
    ) -> RotelAgent:
        """Start rotel with ``exporter_env`` (``ROTEL_EXPORTER*`` settings); return once it listens.

        ``ports`` (gRPC, HTTP) restarts a receiver where a stopped one listened.
        """
        workdir.mkdir(parents=True, exist_ok=True)
        if ports is not None:
            grpc_port, http_port = ports
        else:
            grpc_port, http_port = free_port(), free_port()
            while http_port == grpc_port:
                http_port = free_port()
        env = _hermetic_env(
            {
                "ROTEL_OTLP_GRPC_ENDPOINT": f"{LOOPBACK}:{grpc_port}",
                "ROTEL_OTLP_HTTP_ENDPOINT": f"{LOOPBACK}:{http_port}",
                # Only used with --daemon, but keep the default /tmp/rotel-agent.pid out of play.
                "ROTEL_PID_FILE": str(workdir / "rotel.pid"),
                "ROTEL_LOG_FILE": str(workdir / "rotel-daemon.log"),
                "NO_COLOR": "1",
                **exporter_env,
            }
        )
        argv = [str(rotel_bin()), "start"]
        for signal_name in debug_logs:  # rotel rejects a comma list; repeat the flag
            argv += ["--debug-log", signal_name]
        process = ManagedProcess.start("rotel", argv, env=env, cwd=workdir, log_path=workdir / "rotel.log")
        agent = cls(process=process, grpc_port=grpc_port, http_port=http_port, workdir=workdir)
        try:
            wait_until(
                agent._listening,
                timeout=ready_timeout,
                interval=0.05,
                message=lambda: f"rotel listening on {grpc_port}/{http_port}; log:\n{process.log_tail()}",
            )
            assert_loopback_only(process.group_pids(), expected_ports=(grpc_port, http_port))
        except BaseException:
            agent.stop()
            raise
        return agent

    def _listening(self) -> bool:
        if not self.process.alive():
            raise BackendError(
                f"rotel exited with code {self.process.popen.returncode}; log:\n{self.process.log_tail()}"
            )
        ports = {s.port for s in listening_sockets(self.process.group_pids())}
        return {self.grpc_port, self.http_port} <= ports

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    @property
    def grpc_endpoint(self) -> str:
        """OTLP/gRPC endpoint, e.g. ``http://127.0.0.1:PORT`` (plaintext)."""
        return f"http://{LOOPBACK}:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        """OTLP/HTTP base URL (what OTEL_EXPORTER_OTLP_ENDPOINT takes), e.g. ``http://127.0.0.1:PORT``."""
        return f"http://{LOOPBACK}:{self.http_port}"

    @property
    def traces_url(self) -> str:
        return f"{self.http_endpoint}/v1/traces"

    @property
    def metrics_url(self) -> str:
        return f"{self.http_endpoint}/v1/metrics"

    def log_text(self) -> str:
        """The whole log so far, NUL bytes removed."""
        return self.log_path.read_text(encoding="utf-8", errors="replace").replace("\x00", "")

    def stop(self, timeout: float = 10.0) -> None:
        self.process.stop(timeout=timeout)


def rotel_forwarding_env(grpc_endpoint: str) -> dict[str, str]:
    """rotel settings that forward traces (only) over OTLP/gRPC to ``grpc_endpoint``."""
    return {
        "ROTEL_EXPORTERS": "phx:otlp",
        "ROTEL_EXPORTER_PHX_ENDPOINT": grpc_endpoint,
        "ROTEL_EXPORTER_PHX_PROTOCOL": "grpc",
        "ROTEL_EXPORTERS_TRACES": "phx",
        # Print each forwarded span (trace id, ids, attributes) to the log, for debugging failures.
        "ROTEL_DEBUG_LOG_VERBOSITY": "detailed",
    }


BLACKHOLE_DEBUG_ENV = {"ROTEL_EXPORTER": "blackhole", "ROTEL_DEBUG_LOG_VERBOSITY": "detailed"}
"""rotel settings that drop everything but print each received item in detail to the log."""


# --------------------------------------------------------------------------------------------------
# rotel metrics debug log


@dataclass
class MetricPoint:
    """One data point of one metric as rotel's detailed debug log printed it.

    ``temporality`` is "CUMULATIVE", "DELTA" or None (gauges). Explicit-bucket histograms fill
    ``count``/``sum``/``min``/``max``/``explicit_bounds``/``bucket_counts`` (len(bounds) + 1 counts);
    exponential histograms fill ``exponential_buckets`` with rotel's range text and count.
    Numbers are int when printed without a fraction, else float (rotel prints 50.0 as "50").
    """

    name: str
    description: str = ""
    unit: str = ""
    data_type: str = ""
    is_monotonic: bool | None = None
    temporality: str | None = None
    resource: dict[str, Any] = field(default_factory=dict)
    scope_name: str = ""
    scope_version: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    start_time_unix_nano: int | None = None
    time_unix_nano: int | None = None
    value: int | float | None = None
    count: int | None = None
    sum: int | float | None = None
    min: int | float | None = None
    max: int | float | None = None
    explicit_bounds: list[float] = field(default_factory=list)
    bucket_counts: list[int] = field(default_factory=list)
    exponential_buckets: list[tuple[str, int]] = field(default_factory=list)
    exemplars: list[dict[str, Any]] = field(default_factory=list)

    @property
    def service_name(self) -> str | None:
        value = self.resource.get("service.name")
        return value if isinstance(value, str) else None


def _number(text: str) -> int | float:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        return float(text)


def _split_top_level(text: str) -> Iterator[str]:
    depth, start = 0, 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            yield text[start:index].strip()
            start = index + 1
    if text[start:].strip():
        yield text[start:].strip()


def _attribute_value(text: str) -> Any:
    """Decode rotel's ``Str(x)`` / ``Int(1)`` / ``Double(1.5)`` / ``Bool(true)`` / ``Slice(...)``."""
    match = re.fullmatch(r"(\w+)\((.*)\)", text.strip(), re.DOTALL)
    if match is None:
        return text
    kind, inner = match.groups()
    if kind == "Str":
        return inner
    if kind == "Int":
        return int(inner)
    if kind == "Double":
        return float(inner)
    if kind == "Bool":
        return inner == "true"
    if kind == "Slice":
        return [_attribute_value(part) for part in _split_top_level(inner)]
    return text


_ARROW = re.compile(r"^\s+-> ([^:]+): ?(.*)$")
_POINTS_HEADER = re.compile(r"^(Number|Histogram|ExponentialHistogram|Summary)DataPoints #\d+$")
_BOUND = re.compile(r"^ExplicitBounds #\d+: (.+)$")
_BUCKET = re.compile(r"^Buckets #\d+, Count: (\d+)$")
_EXP_BUCKET = re.compile(r"^Bucket ([\[(].*[\])]), Count: (\d+)$")
_FIELD = re.compile(r"^(StartTimestamp|Timestamp|Value|Count|Sum|Min|Max): (.*)$")


def parse_rotel_metrics_log(text: str) -> list[MetricPoint]:
    """Parse rotel's ``--debug-log metrics --debug-log-verbosity detailed`` output into data points.

    The format (rotel 0.0.1-alpha, text mode) is a block per exported batch::

        ResourceMetrics #0
        Resource attributes:
             -> service.name: Str(svc)
        ScopeMetrics #0
        InstrumentationScope <name> <version>
        Metric #0
        Descriptor:
             -> Name: requests
             -> Description: ...
             -> Unit: {request}
             -> DataType: Sum | Gauge | Histogram | ExponentialHistogram
             -> IsMonotonic: true
             -> AggregationTemporality: AGGREGATION_TEMPORALITY_CUMULATIVE
        NumberDataPoints #0 | HistogramDataPoints #0 | ExponentialHistogramDataPoints #0
        Data point attributes:
             -> key: Str(value)
        StartTimestamp: <ns>
        Timestamp: <ns>
        Value: 5                     (number points)
        Count: / Sum: / Min: / Max:  (histograms)
        ExplicitBounds #i: <bound>
        Buckets #i, Count: <n>
        Bucket (lo, hi], Count: <n>  (exponential)
        Exemplars:
        Exemplar #0
             -> Trace ID: ... / Span ID: ... / Timestamp: ... / Value: ...

    Other lines (rotel's own INFO lines, span dumps, a half-written last block) are skipped.
    """
    points: list[MetricPoint] = []
    resource: dict[str, Any] = {}
    scope_name = scope_version = ""
    metric: MetricPoint | None = None  # the descriptor currently in force
    point: MetricPoint | None = None
    section = ""
    exemplar: dict[str, Any] | None = None

    for raw_line in text.replace("\x00", "").splitlines():
        line = raw_line.rstrip("\r")
        if line.startswith("ResourceMetrics #"):
            resource, scope_name, scope_version = {}, "", ""
            metric = point = exemplar = None
            section = "resource"
            continue
        if line.startswith(("ResourceSpans #", "ResourceLogs #")):
            metric = point = exemplar = None
            section = "ignore"
            continue
        if section == "ignore":
            continue
        if line == "Resource attributes:":
            section = "resource"
            continue
        if line.startswith("InstrumentationScope "):
            scope_name, _, scope_version = line[len("InstrumentationScope ") :].partition(" ")
            scope_version = scope_version.strip()
            section = "scope"
            continue
        if line.startswith("ScopeMetrics"):
            section = "scope"
            continue
        if line.startswith("Metric #"):
            metric = MetricPoint(
                name="", resource=dict(resource), scope_name=scope_name, scope_version=scope_version
            )
            point = exemplar = None
            section = "metric"
            continue
        if line == "Descriptor:":
            section = "descriptor"
            continue
        if _POINTS_HEADER.match(line) and metric is not None:
            point = _new_point(metric)
            points.append(point)
            exemplar = None
            section = "point"
            continue
        if line == "Data point attributes:":
            section = "point_attributes"
            continue
        if line == "Exemplars:":
            section = "exemplars"
            continue
        if line.startswith("Exemplar #") and point is not None:
            exemplar = {}
            point.exemplars.append(exemplar)
            section = "exemplar"
            continue

        arrow = _ARROW.match(line)
        if arrow is not None:
            key, value = arrow.group(1), arrow.group(2)
            if section == "resource":
                resource[key] = _attribute_value(value)
            elif section == "descriptor" and metric is not None:
                _descriptor_field(metric, key, value)
            elif section == "point_attributes" and point is not None:
                point.attributes[key] = _attribute_value(value)
            elif section == "exemplar" and exemplar is not None:
                exemplar[key] = _number(value) if key in ("Timestamp", "Value") else value
            continue
        if section == "descriptor" and metric is not None and metric.data_type == "" and metric.name:
            # A description with newlines continues on unindented lines until "-> Unit:".
            metric.description += "\n" + line
            continue
        if point is None:
            continue
        _point_line(point, line)
    return points


def _new_point(metric: MetricPoint) -> MetricPoint:
    return MetricPoint(
        name=metric.name,
        description=metric.description,
        unit=metric.unit,
        data_type=metric.data_type,
        is_monotonic=metric.is_monotonic,
        temporality=metric.temporality,
        resource=dict(metric.resource),
        scope_name=metric.scope_name,
        scope_version=metric.scope_version,
    )


def _descriptor_field(metric: MetricPoint, key: str, value: str) -> None:
    if key == "Name":
        metric.name = value
    elif key == "Description":
        metric.description = value
    elif key == "Unit":
        metric.unit = value
    elif key == "DataType":
        metric.data_type = value
    elif key == "IsMonotonic":
        metric.is_monotonic = value == "true"
    elif key == "AggregationTemporality":
        metric.temporality = value.removeprefix("AGGREGATION_TEMPORALITY_")


def _point_line(point: MetricPoint, line: str) -> None:
    if (match := _BOUND.match(line)) is not None:
        point.explicit_bounds.append(float(match.group(1)))
    elif (match := _BUCKET.match(line)) is not None:
        point.bucket_counts.append(int(match.group(1)))
    elif (match := _EXP_BUCKET.match(line)) is not None:
        point.exponential_buckets.append((match.group(1), int(match.group(2))))
    elif (match := _FIELD.match(line)) is not None:
        key, value = match.groups()
        if key == "StartTimestamp":
            point.start_time_unix_nano = int(value)
        elif key == "Timestamp":
            point.time_unix_nano = int(value)
        elif key == "Value":
            point.value = _number(value)
        elif key == "Count":
            point.count = int(value)
        elif key == "Sum":
            point.sum = _number(value)
        elif key == "Min":
            point.min = _number(value)
        elif key == "Max":
            point.max = _number(value)


@dataclass
class RotelMetricsSink:
    """A rotel that drops all data but prints every received metric data point to its log."""

    agent: RotelAgent

    @classmethod
    def start(cls, workdir: Path) -> RotelMetricsSink:
        return cls(RotelAgent.start(workdir, BLACKHOLE_DEBUG_ENV, debug_logs=("traces", "metrics")))

    @property
    def grpc_endpoint(self) -> str:
        return self.agent.grpc_endpoint

    @property
    def http_endpoint(self) -> str:
        return self.agent.http_endpoint

    @property
    def metrics_url(self) -> str:
        return self.agent.metrics_url

    @property
    def log_path(self) -> Path:
        return self.agent.log_path

    @property
    def pid(self) -> int:
        return self.agent.pid

    def points(self, name: str | None = None, service_name: str | None = None) -> list[MetricPoint]:
        """Every data point logged so far (optionally of metric ``name`` / service), in log order."""
        return [
            p
            for p in parse_rotel_metrics_log(self.agent.log_text())
            if (name is None or p.name == name) and (service_name is None or p.service_name == service_name)
        ]

    def wait_for_metric(
        self,
        name: str,
        timeout: float = 15.0,
        *,
        service_name: str | None = None,
        min_points: int = 1,
        interval: float = 0.1,
    ) -> list[MetricPoint]:
        """Wait until ``min_points`` data points of metric ``name`` are logged; return all of them.

        Waits for the log to stop growing for one ``interval`` too, so a block still being written
        is not returned half-parsed. Every export is logged, so a cumulative metric exported twice
        (e.g. by ``force_flush`` and then ``shutdown``) shows up twice: take the last point per
        attribute set when you want the final value.
        """
        last_size = -1

        def ready() -> list[MetricPoint] | None:
            nonlocal last_size
            size = self.log_path.stat().st_size
            stable, last_size = size == last_size, size
            if not self.agent.process.alive():
                raise BackendError(f"rotel metrics sink exited; log:\n{self.agent.process.log_tail()}")
            found = self.points(name, service_name)
            return found if stable and len(found) >= min_points else None

        return wait_until(
            ready,
            timeout=timeout,
            interval=interval,
            message=lambda: (
                f"{min_points} point(s) of metric {name!r}"
                f"{f' from service {service_name!r}' if service_name else ''} in {self.log_path}; "
                f"metrics seen: {sorted({p.name for p in self.points()})}"
            ),
        )

    def stop(self, timeout: float = 10.0) -> None:
        self.agent.stop(timeout=timeout)


def latest_points(points: Sequence[MetricPoint]) -> dict[tuple[tuple[str, Any], ...], MetricPoint]:
    """The last point per attribute set (attribute items sorted, list values as tuples)."""
    latest: dict[tuple[tuple[str, Any], ...], MetricPoint] = {}
    for point in points:
        key = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in point.attributes.items()))
        latest[key] = point
    return latest
