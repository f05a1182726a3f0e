"""Helpers of the logs tests: the test app, running it with and without modeltel, reading the log
files back with the official protos.

The app is a small package written to a temporary folder: ``logging.basicConfig(level=INFO)`` in
``main``, a logger per module (``__main__``, ``shop.load``, ``shop.fit``), spans from the
OpenTelemetry API, and ``logger.exception`` inside a span that fails. Each message says which span it
is logged in (``[in load] ...``, ``[no span] ...``), so the test can check the record's ids against
the span of that name in the trace files.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.json_format import ParseDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from otlp_files import BIN, attrs, base_env, hex_to_base64, jsonl_files, spans

APP = {
    "shop/__init__.py": "",
    "shop/load.py": """
        import logging

        from opentelemetry import trace

        logger = logging.getLogger(__name__)
        tracer = trace.get_tracer(__name__)


        def load():
            with tracer.start_as_current_span("load"):
                logger.info("[in load] loaded %d rows", 3)
                logger.debug("[in load] cache miss seed=%s", 7)
                logger.warning("[in load] 1 row had no label")
    """,
    "shop/fit.py": """
        import logging

        from opentelemetry import trace

        logger = logging.getLogger(__name__)
        tracer = trace.get_tracer(__name__)


        def fit():
            with tracer.start_as_current_span("fit"):
                logger.info("[in fit] fitting %s", "model-a")
                try:
                    with tracer.start_as_current_span("step"):
                        logger.info("[in step] step %d", 1)
                        1 / 0
                except ZeroDivisionError:
                    logger.exception("[in fit] fit failed")
    """,
    "shop/main.py": """
        import logging
        import sys

        from opentelemetry import trace

        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr
        )
        logger = logging.getLogger(__name__)
        tracer = trace.get_tracer(__name__)


        def main():
            from shop.fit import fit
            from shop.load import load

            logger.info("[no span] starting")
            with tracer.start_as_current_span("job"):
                logger.info("[in job] job open")
                load()
                fit()
                logger.error("[in job] %d error(s)", 1)
            logger.critical("[no span] done")


        if __name__ == "__main__":
            main()
    """,
}
EXPECTED_INFO_AND_UP = 9
"""Records of level INFO or higher the app logs (the DEBUG one it does not print)."""
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ", re.MULTILINE)


def write_app(folder: Path, files: dict[str, str] | None = None) -> Path:
    for name, source in (files or APP).items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    return folder


def run(
    folder: Path, how: str, *args: str, module: str = "shop.main", timeout: float = 90, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m module`` in ``folder``: ``plain`` (no modeltel: the OTel API alone),
    ``modeltel`` (``modeltel run``) or ``instrument`` (plain ``opentelemetry-instrument``)."""
    command = [sys.executable, "-m", module, *args]
    if how == "modeltel":
        command = [str(BIN / "modeltel"), "run", "--", *command]
    elif how == "instrument":
        command = [str(BIN / "opentelemetry-instrument"), *command]
    else:
        assert how == "plain", how
    environment = base_env(folder / "data", **{"MODELTEL_ENABLED": "false", **env} if how == "plain" else env)
    return subprocess.run(
        command, cwd=folder, env=environment, capture_output=True, text=True, timeout=timeout
    )


def normal(stderr: str, folder: Path) -> str:
    """``stderr`` with timestamps and the app's folder (in tracebacks) replaced."""
    return _TIMESTAMP.sub("<time> ", stderr.replace(str(folder), "<app>"))


@dataclass
class Record:
    """One log record read back, with its scope (the logger's name) and resource attributes."""

    record: Any
    scope: str
    resource: dict[str, Any]
    path: Path

    @property
    def body(self) -> Any:
        value = self.record.body
        kind = value.WhichOneof("value")
        return getattr(value, kind) if kind else None

    @property
    def attributes(self) -> dict[str, Any]:
        return attrs(self.record.attributes)

    @property
    def trace_id(self) -> str:
        return bytes(self.record.trace_id).hex()

    @property
    def span_id(self) -> str:
        return bytes(self.record.span_id).hex()


def log_requests(path: Path) -> list[ExportLogsServiceRequest]:
    """Every line of one log file, decoded with the official protos (a bad line fails here)."""
    return [
        ParseDict(hex_to_base64(json.loads(line)), ExportLogsServiceRequest())
        for line in path.read_text().splitlines()
    ]


def records(data_dir: Path) -> list[Record]:
    found = []
    for path in jsonl_files(data_dir, "logs"):
        for request in log_requests(path):
            for resource_logs in request.resource_logs:
                resource = attrs(resource_logs.resource.attributes)
                for scope_logs in resource_logs.scope_logs:
                    found += [
                        Record(r, scope_logs.scope.name, resource, path) for r in scope_logs.log_records
                    ]
    return found


def span_ids(data_dir: Path) -> dict[str, tuple[str, str]]:
    """Span name -> (trace id, span id) in hex, from the trace files (each name once)."""
    found: dict[str, tuple[str, str]] = {}
    for span, _, _ in spans(data_dir):
        assert span.name not in found, f"two spans named {span.name}"
        found[span.name] = (bytes(span.trace_id).hex(), bytes(span.span_id).hex())
    return found


def assert_in_their_spans(data_dir: Path, found: list[Record]) -> None:
    """Each ``[in X]`` record carries span X's trace id, span id and sampled flag; ``[no span]`` none."""
    ids = span_ids(data_dir)
    for item in found:
        where = re.match(r"\[(in (\w+)|no span)\]", str(item.body))
        assert where is not None, item.body
        if where.group(2) is None:
            assert not item.record.trace_id and not item.record.span_id, item.body
            continue
        assert (item.trace_id, item.span_id) == ids[where.group(2)], item.body
        assert item.record.flags & 0x01, item.body  # sampled
