"""``modeltel show`` imports only what the data needs: a plain trace needs no pydantic, no schemas,
no semantic-conventions package; a job summary brings in its models, and is still shown."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from otlp_files import base_env

PLAIN_APP = """
from opentelemetry import trace
import modeltel

modeltel.configure()
tracer = trace.get_tracer("x")
with tracer.start_as_current_span("outer"):
    with tracer.start_as_current_span("inner"):
        pass
"""

CALIBRATION_APP = """
import modeltel
from modeltel import calibration

modeltel.configure(service_name="study")
with calibration.job("fit", algorithm="tpe", max_iterations=2) as job:
    for loss in (3.0, 1.0):
        with job.iteration() as it:
            with it.tell() as t:
                t.losses([loss])
"""

SHOW = """
import atexit, sys
atexit.register(lambda: print("LOADED", *sorted(sys.modules)))
from modeltel.cli.main import main
sys.exit(main(["show", *sys.argv[1:]]))
"""

UNNEEDED = ("pydantic", "modeltel.store.schemas", "opentelemetry.semconv", "multiprocessing", "numpy.ma")
"""What a few spans need none of: the models, the GenAI names, a worker pool (a small file is read
in-process), numpy's masked arrays (which its ``percentile`` imports)."""


def _data_dir(tmp_path: Path, app: str) -> Path:
    data = tmp_path / "data"
    ran = subprocess.run(
        [sys.executable, "-c", app], env=base_env(data), capture_output=True, text=True, timeout=120
    )
    assert ran.returncode == 0, ran.stderr
    assert (data / "summaries.jsonl").is_file()  # the process summary any configured app writes
    return data


def _show(data: Path, *args: str) -> tuple[str, set[str]]:
    """``show``'s stdout (without the module list) and the modules loaded when it exits."""
    ran = subprocess.run(
        [sys.executable, "-c", SHOW, *args], env=base_env(data), capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 0, ran.stderr
    assert "Traceback" not in ran.stderr, ran.stderr
    shown, loaded = ran.stdout.rsplit("LOADED", 1)
    return shown, set(loaded.split())


def _imported(loaded: set[str], package: str) -> bool:
    return any(name == package or name.startswith(package + ".") for name in loaded)


def test_a_plain_trace_is_shown_without_pydantic_schemas_or_semconv(tmp_path: Path) -> None:
    shown, loaded = _show(_data_dir(tmp_path, PLAIN_APP))
    assert "2 spans in 1 file" in shown
    assert "outer" in shown and "inner" in shown
    assert [package for package in UNNEEDED if _imported(loaded, package)] == []


def test_a_plain_trace_shown_as_json_still_lists_its_process(tmp_path: Path) -> None:
    import json

    shown, _ = _show(_data_dir(tmp_path, PLAIN_APP), "--format", "json")
    document = json.loads(shown)
    assert sorted(row["name"] for row in document["spans"]) == ["inner", "outer"]
    assert [process["kind"] for process in document["processes"]] == ["process"]


def test_a_calibration_job_summary_is_still_shown(tmp_path: Path) -> None:
    shown, loaded = _show(_data_dir(tmp_path, CALIBRATION_APP))
    assert "calibration.job" in shown
    assert "best loss 1" in shown, shown
    assert "modeltel.store.schemas" in loaded  # the job's summary needs its model


def test_the_percentiles_are_numpys_to_the_bit() -> None:
    import numpy as np

    from modeltel.read.aggregate import linear_percentiles

    rng = np.random.default_rng(13)
    samples = [rng.random(n) for n in (1, 2, 3, 10, 57)]
    samples += [rng.lognormal(0, 5, 40), np.round(rng.random(30), 2), np.zeros(5), np.array([7.0])]
    for values in samples:
        for qs in ((50, 95), (0, 100), (50, 95, 10, 25, 50, 75, 90), (1, 33.3, 99.9)):
            assert linear_percentiles(values, qs) == [float(v) for v in np.percentile(values, qs)]
    assert all(np.isnan(linear_percentiles(np.array([1.0, np.nan]), (50, 95))))


def test_the_lazy_package_keeps_its_names() -> None:
    code = (
        "import modeltel.read.aggregate, modeltel.read.query\n"
        "import modeltel.read as read\n"
        "from modeltel.read import aggregate, Query, __all__\n"
        "assert aggregate is modeltel.read.query.aggregate, aggregate\n"
        "assert all(getattr(read, name) is not None for name in __all__)\n"
        "print(sorted(set(__all__) - set(dir(read))))"
    )
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["[]"]


def test_a_plain_trace_is_shown_without_the_span_decoder_or_numpy_typing(tmp_path: Path) -> None:
    """The fast path reads a modeltel-written line by bytes: the full OTLP decoder and numpy's
    annotation module (both ~15 ms of import) are needed only when a line has to be decoded."""
    shown, loaded = _show(_data_dir(tmp_path, PLAIN_APP))
    assert "2 spans in 1 file" in shown
    assert [name for name in ("modeltel.formats.otlp", "numpy.typing") if name in loaded] == []


def test_one_trace_still_decodes_its_spans_in_full(tmp_path: Path) -> None:
    data = _data_dir(tmp_path, PLAIN_APP)
    (trace_file,) = (data / "traces").rglob("*.jsonl")
    trace_id = re.search(r'"traceId":"([0-9a-f]{32})"', trace_file.read_text()).group(1)  # type: ignore[union-attr]
    shown, loaded = _show(data, "--trace", trace_id)
    assert "outer" in shown and "inner" in shown
    assert "modeltel.formats.otlp" in loaded  # the tree needs whole spans
