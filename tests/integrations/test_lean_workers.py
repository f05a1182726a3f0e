"""Under ``modeltel run``, a spawned worker that records nothing imports no more than modeltel's hook.

A pool of ten spawned workers pays every module each worker imports ten times over (and on two
cores, half of that in wall time), so the hook of a worker that has not recorded anything yet, and
the unpickling of its ``Process`` object, import only modeltel's small deferral modules: not the
settings, not ``logging``, not the instrumentor scanner. The resource tracker multiprocessing starts
beside the pool runs no app code and is deferred like a worker.
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from modeltel._internal import deferred
from otlp_files import run_under_modeltel

POOL = """
import json, multiprocessing, sys
def modules(_):
    return sorted(sys.modules)
if __name__ == "__main__":
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        print(json.dumps(pool.map(modules, [0])[0]))
"""


def _worker_modules(tmp_path: Path, hooked: bool) -> set[str]:
    app = tmp_path / "pool.py"
    app.write_text(POOL)
    if hooked:
        result = run_under_modeltel(tmp_path / "d", str(app))
    else:
        import subprocess

        result = subprocess.run([sys.executable, str(app)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout))


def test_a_worker_that_records_nothing_imports_only_the_hook_and_the_deferral(tmp_path: Path) -> None:
    plain = _worker_modules(tmp_path, hooked=False)
    hooked = _worker_modules(tmp_path, hooked=True)
    assert "modeltel._internal.deferred" in hooked  # the hook ran and armed the worker
    extra = {
        m for m in hooked - plain if not m.startswith("modeltel") and m not in ("sitecustomize", "__future__")
    }
    assert not extra, sorted(extra)
    unwanted = {"modeltel._internal.config", "modeltel._internal.bootstrap.instrumentors", "modeltel.store"}
    assert not unwanted & hooked, sorted(unwanted & hooked)


def test_the_resource_tracker_counts_as_a_multiprocessing_child(monkeypatch: pytest.MonkeyPatch) -> None:
    command = [sys.executable, "-c", "from multiprocessing.resource_tracker import main;main(5)"]
    monkeypatch.setattr(sys, "orig_argv", command)
    assert deferred.is_multiprocessing_child()


def test_the_providers_entry_points_are_found_as_importlib_metadata_finds_them() -> None:
    found = all(
        entry_points(group=g, name=deferred.ENTRY_POINT) for g in deferred.PROVIDER_VARIABLES.values()
    )
    assert deferred.providers_entry_points() is found is True  # modeltel is installed in the test venv


def test_a_modeltel_dist_info_without_them_is_answered_no(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = tmp_path / "modeltel-9.9.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.4\nName: modeltel\nVersion: 9.9\n")
    (info / "entry_points.txt").write_text("[opentelemetry_tracer_provider]\nmodeltel = x:y\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    listed = [entry_points(group=g, name=deferred.ENTRY_POINT) for g in deferred.PROVIDER_VARIABLES.values()]
    assert not all(listed)  # importlib.metadata also takes the first modeltel on the path
    deferred.providers_entry_points.cache_clear()  # asked once per process: this path asks anew
    try:
        assert deferred.providers_entry_points() is False
    finally:
        deferred.providers_entry_points.cache_clear()  # the next asker sees the real path's answer


def test_the_settings_a_worker_gets_are_plain_values_that_rebuild_the_parents() -> None:
    import pickle

    from modeltel._internal.config import load_settings
    from modeltel.integrations.multiprocessing import worker_overrides

    environ = {
        "OTEL_TRACES_EXPORTER": "otlp,jsonl",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer s3cret",
        "MODELTEL_DATA_DIR": "/tmp/d",
    }
    parent = load_settings(environ)
    overrides = worker_overrides(parent)
    plain = (str, int, float, bool, type(None), tuple, dict, list)

    def only_plain(value: object) -> bool:
        if isinstance(value, dict):
            return all(only_plain(k) and only_plain(v) for k, v in value.items())
        if isinstance(value, tuple | list):
            return all(only_plain(v) for v in value)
        return isinstance(value, plain)

    assert only_plain(overrides), {k: type(v) for k, v in overrides.items()}
    child = load_settings({}, **pickle.loads(pickle.dumps(overrides)))
    assert child.data_dir == parent.data_dir.absolute() and child.run_id == parent.run_id
    assert child.otlp.keys() == parent.otlp.keys()
    for signal, otlp in parent.otlp.items():
        rebuilt = child.otlp[signal]
        assert (rebuilt.endpoint, rebuilt.protocol, rebuilt.timeout_s) == (
            otlp.endpoint,
            otlp.protocol,
            otlp.timeout_s,
        )
        assert rebuilt.header_values() == otlp.header_values() == {"authorization": "Bearer s3cret"}
        assert "s3cret" not in repr(rebuilt)
