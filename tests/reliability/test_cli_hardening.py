"""The CLI against hostile data and hostile surroundings: it never crashes, leaks or lies.

Hostile data: span names holding lone surrogates (a name decoded from a file name that is not
UTF-8) and terminal escape sequences, written by a real program under ``modeltel run``. Hostile
surroundings: a strict UTF-8 stdout, a closed pipe, an ``-o`` that is a device or a FIFO, a password
in the endpoint URL, and an unexpected error inside a command.
"""

from __future__ import annotations

import json
import os
import select
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from otlp_files import BIN, base_env

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]

SURROGATE = "a\ud800b"
UNDECODABLE = os.fsdecode(b"data-\xff.csv")
ESCAPES = {
    "clear": "\x1b[2Jcleared",
    "title": "\x1b]0;pwned\x07title",
    "overwrite": "fake\roverwritten",
    "tab": "tab\tname",
    "c1": "c1\x9bcsi",
}
NAMES = [SURROGATE, UNDECODABLE, *ESCAPES.values()]
APP = f"""
from opentelemetry import trace
tracer = trace.get_tracer("hostile")
for name in {NAMES!r}:
    with tracer.start_as_current_span(name, attributes={{"gen_ai.request.model": name,
                                                         "gen_ai.usage.input_tokens": 5}}):
        pass
"""


def cli(*args: str, data: Path | None = None, stdout: Any = subprocess.PIPE, **env: str) -> Any:
    """The real ``modeltel`` in a clean environment; stdout as bytes (what the terminal gets)."""
    environment = base_env(data or Path("unused-data-dir"), **env)
    if data is None:
        environment.pop("MODELTEL_DATA_DIR")
    return subprocess.run(
        [str(BIN / "modeltel"), *args], env=environment, stdout=stdout, stderr=subprocess.PIPE, timeout=120
    )


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir written by a real program whose span names and models are hostile."""
    data = tmp_path_factory.mktemp("hostile") / "data"
    app = data.parent / "app.py"
    app.write_text(APP)
    result = cli("run", "--", sys.executable, str(app), data=data)
    assert result.returncode == 0, result.stderr.decode()
    return data


READING = {
    "show": ["show"],
    "show json": ["show", "--format", "json"],
    "stats": ["stats", "--by", "model"],
    "stats name": ["stats", "--by", "name"],
    "stats csv": ["stats", "--format", "csv"],
    "stats json": ["stats", "--format", "json"],
    "export csv": ["export", "--format", "csv", "-o", "-"],
    "export json": ["export", "--format", "json", "-o", "-"],
    "export otlp-json": ["export", "--format", "otlp-json", "-o", "-"],
    "export jaeger": ["export", "--format", "jaeger", "-o", "-"],
}


def no_traceback(result: Any) -> str:
    err: str = result.stderr.decode("utf-8", "backslashreplace")
    assert "Traceback" not in err and "Exception ignored" not in err, err
    return err


@pytest.mark.parametrize("command", list(READING), ids=list(READING))
def test_lone_surrogates_print_escaped_on_a_strict_utf8_stdout(hostile: Path, command: str) -> None:
    result = cli(*READING[command], "--data-dir", str(hostile), PYTHONIOENCODING="utf-8:strict")
    no_traceback(result)
    assert result.returncode == 0
    text = result.stdout.decode("utf-8")  # valid UTF-8: nothing unencodable reached the stream
    if command.startswith("export ") and command != "export csv":
        # JSON outputs keep the exact name: the escape is JSON's own \ud800.
        found = json.dumps(json.loads(text.splitlines()[0] if "otlp" in command else text))
        assert json.dumps(SURROGATE) in found and json.dumps(UNDECODABLE) in found
    else:
        assert "a\\ud800b" in text and "data-\\udcff.csv" in text


@pytest.mark.parametrize("command", ["show", "stats", "stats name"])
def test_tables_escape_terminal_control_characters(hostile: Path, command: str) -> None:
    result = cli(*READING[command], "--data-dir", str(hostile))
    no_traceback(result)
    assert result.returncode == 0
    text = result.stdout.decode("utf-8")
    controls = sorted({c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) < 0xA0})
    assert controls == [], f"raw control characters reached the terminal: {controls!r}"
    for shown in (
        "\\x1b[2Jcleared",
        "\\x1b]0;pwned\\x07title",
        "fake\\roverwritten",
        "tab\\tname",
        "c1\\x9bcsi",
    ):
        assert shown in text, (shown, text)


CLOSED_PIPE = {
    **READING,
    "doctor": ["doctor"],
    "doctor json": ["doctor", "--format", "json"],
    "show running": ["show", "--running"],
}


@pytest.mark.parametrize("command", list(CLOSED_PIPE), ids=list(CLOSED_PIPE))
def test_every_command_exits_quietly_into_a_closed_pipe(hostile: Path, command: str) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # `| head -1` that has already gone: every write is EPIPE
    try:
        args = CLOSED_PIPE[command]
        if not command.startswith("doctor"):
            args = [*args, "--data-dir", str(hostile)]
        result = cli(*args, data=hostile, stdout=write_end)
    finally:
        os.close(write_end)
    err = no_traceback(result)
    assert result.returncode == 1, err  # what Python's own recipe for EPIPE exits with
    assert "Broken pipe" not in err


@pytest.fixture
def fifo_reader(tmp_path: Path) -> Iterator[tuple[Path, list[bytes], threading.Event]]:
    """A FIFO with a reader already waiting on it, as a shell's ``<(...)`` or a log shipper would."""
    fifo = tmp_path / "pipe.html"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # open now, so the writer's open never blocks
    chunks: list[bytes] = []
    done = threading.Event()

    def drain() -> None:
        while True:
            ready, _, _ = select.select([fd], [], [], 0.05)
            data = os.read(fd, 1 << 16) if ready else b""
            if data:
                chunks.append(data)
            elif done.is_set():
                return
            elif ready:
                done.wait(0.05)  # writer gone (EOF): wait for the command to end

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    yield fifo, chunks, done
    done.set()
    thread.join(10)
    os.close(fd)


@pytest.mark.parametrize("command", ["export", "timeline"])
def test_output_to_a_fifo_writes_into_it(
    hostile: Path, fifo_reader: tuple[Path, list[bytes], threading.Event], command: str
) -> None:
    fifo, chunks, done = fifo_reader
    if command == "export":
        args = ["export", "--format", "csv", "-o", str(fifo), "--data-dir", str(hostile)]
    else:
        args = ["timeline", "-o", str(fifo), "--data-dir", str(hostile)]
    result = cli(*args)
    done.set()
    no_traceback(result)
    assert result.returncode == 0
    received = b"".join(chunks)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was replaced by a regular file"
    assert len(received) > 200, f"the FIFO's reader got {len(received)} bytes"
    first = received.split(b"\n", 1)[0].lower()
    assert b"trace_id" in first if command == "export" else first.startswith(b"<!doctype html>")


def _restore_dev_null() -> None:
    """Only reached if modeltel replaced the system's /dev/null (the bug); put a device back."""
    os.unlink("/dev/null")
    os.mknod("/dev/null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.chmod("/dev/null", 0o666)


@pytest.fixture(params=["mknod", "/dev/null"])
def null_device(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """A character device to write to: a private null device (needs root), or the system's own."""
    if request.param == "/dev/null":
        assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
        yield Path("/dev/null")
        if not stat.S_ISCHR(os.lstat("/dev/null").st_mode):
            if os.geteuid() == 0:
                _restore_dev_null()
            pytest.fail("modeltel replaced /dev/null with a regular file")
        return
    device = tmp_path / "null.html"
    try:
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device node needs root")
    yield device


@pytest.mark.parametrize("command", ["export", "timeline"])
def test_output_to_a_device_writes_into_it(hostile: Path, null_device: Path, command: str) -> None:
    if command == "timeline" and null_device.suffix != ".html":
        pytest.skip("timeline wants FILE.html or FILE.png")
    if command == "export":
        args = ["export", "--format", "jaeger", "-o", str(null_device), "--data-dir", str(hostile)]
    else:
        args = ["timeline", "-o", str(null_device), "--data-dir", str(hostile)]
    result = cli(*args)
    err = no_traceback(result)
    assert result.returncode == 0, err
    mode = os.lstat(null_device).st_mode
    assert stat.S_ISCHR(mode), f"{null_device} is now {stat.filemode(mode)}"
    assert not [p for p in null_device.parent.iterdir() if p.name.startswith(f".{null_device.name}.")]


def test_output_to_dev_stdout_reaches_the_pipe(hostile: Path) -> None:
    assert os.path.islink("/dev/stdout")
    result = cli("export", "--format", "csv", "-o", "/dev/stdout", "--data-dir", str(hostile))
    err = no_traceback(result)
    assert result.returncode == 0, err
    assert b"trace_id" in result.stdout.split(b"\n", 1)[0]
    assert os.path.islink("/dev/stdout"), "/dev/stdout was replaced"


def test_output_to_a_regular_file_is_still_atomic_and_private(hostile: Path, tmp_path: Path) -> None:
    target = tmp_path / "spans.csv"
    target.write_text("old contents\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    result = cli("export", "--format", "csv", "-o", str(link), "--data-dir", str(hostile))
    no_traceback(result)
    assert result.returncode == 0
    assert link.is_symlink(), "the symlink was replaced instead of the file it points to"
    assert b"trace_id" in target.read_bytes().split(b"\n", 1)[0]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.csv", "spans.csv"]


SECRET = "S3CR"
ENDPOINT = f"http://user:{SECRET}@127.0.0.1:4318"


@pytest.mark.parametrize("form", ["table", "json"])
def test_doctor_masks_the_password_in_an_endpoint(tmp_path: Path, form: str) -> None:
    result = cli(
        "doctor", "--format", form, data=tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=ENDPOINT,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
    )  # fmt: skip
    out, err = result.stdout.decode(), no_traceback(result)
    assert result.returncode == 1, err  # nothing listens there: doctor says so and exits 1
    assert SECRET not in out + err
    assert "http://user:****@127.0.0.1:4318" in out
    if form == "json":
        document = json.loads(out)
        assert document["otlp"]["traces"]["endpoint"] == "http://user:****@127.0.0.1:4318/v1/traces"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://user:{SECRET}@127.0.0.1:43x8"),  # port not a number
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"user:{SECRET}@127.0.0.1:4318"),  # no scheme
        ("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://user:{SECRET}@127.0.0.1:4317"),  # gRPC: no URL credentials
    ],
)
def test_run_and_the_app_warning_mask_the_password(tmp_path: Path, variable: str, value: str) -> None:
    run = cli("run", "--", sys.executable, "-c", "pass", data=tmp_path, **{variable: value})
    err = no_traceback(run)
    assert run.returncode == 2 and variable in err, err
    assert SECRET not in err and "****" in err, err
    app = subprocess.run(
        [sys.executable, "-c", "import modeltel; modeltel.configure().shutdown()"],
        env=base_env(tmp_path, **{variable: value}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert app.returncode == 0, app.stderr
    assert variable in app.stderr and "****" in app.stderr, app.stderr
    assert SECRET not in app.stderr, app.stderr


INDUCED = """
import sys
import modeltel.read.reports as reports

def broken(table):
    raise ZeroDivisionError("induced fault")

reports.name_rows = broken
from modeltel.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(hostile: Path) -> None:
    command = [sys.executable, "-c", INDUCED, "show", "--data-dir", str(hostile)]
    result = subprocess.run(command, env=base_env(hostile), capture_output=True, timeout=120)
    err = no_traceback(result)
    assert result.returncode == 1
    assert err.splitlines() == ["modeltel show: ZeroDivisionError: induced fault"], err
    debug = subprocess.run(
        command, env=base_env(hostile, MODELTEL_DEBUG="1"), capture_output=True, timeout=120
    )
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr.decode() and "induced fault" in debug.stderr.decode()
