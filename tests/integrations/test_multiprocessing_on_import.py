"""configure() leaves multiprocessing unimported; the patches and the fork-child flush arrive with it.

Each program imports multiprocessing (or ProcessPoolExecutor) only after ``modeltel.configure()``,
so whatever context its workers run under got there through the post-import hook. The batch
processor's timer is off: what a worker wrote got there through modeltel's flushes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from process_traces import Trace, run_script

UNIMPORTED = (
    "multiprocessing",
    "multiprocessing.util",
    "multiprocessing.pool",
    "multiprocessing.connection",
    "concurrent.futures.process",
    "pickle",
    "tempfile",
    "shutil",
    "bz2",
    "lzma",
)

WORK = """
import os, sys
from opentelemetry import trace
import modeltel

def work(i):
    with trace.get_tracer("worker").start_as_current_span("task") as span:
        span.set_attribute("i", i)
    return os.getpid()
"""


@pytest.mark.timeout(60)
def test_configure_imports_no_multiprocessing(tmp_path: Path) -> None:
    result = run_script(
        tmp_path,
        f"""
import sys
import modeltel
modeltel.configure()
print(" ".join(name for name in {UNIMPORTED!r} if name in sys.modules))
""",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == []


@pytest.mark.timeout(120)
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_pool_imported_after_configure_runs_its_tasks_under_the_submitting_span(
    tmp_path: Path, method: str
) -> None:
    result = run_script(
        tmp_path,
        WORK
        + f"""
if __name__ == "__main__":
    modeltel.configure()
    assert "multiprocessing" not in sys.modules
    import multiprocessing as mp
    with mp.get_context("{method}").Pool(2) as pool:
        with trace.get_tracer("driver").start_as_current_span("map"):
            pids = set(pool.map(work, range(8), chunksize=2))
        pool.close(); pool.join()
    print(" ".join(map(str, sorted(pids))))
""",
    )
    assert result.returncode == 0, result.stderr
    found = Trace(tmp_path / "data")
    found.assert_sound()
    found.assert_children("task", found.one("map"), 8)
    assert {s.pid for s in found.named("task")} == {int(p) for p in result.stdout.split()}


@pytest.mark.timeout(120)
def test_a_process_pool_executor_imported_after_configure_takes_the_context(tmp_path: Path) -> None:
    result = run_script(
        tmp_path,
        WORK
        + """
if __name__ == "__main__":
    modeltel.configure()
    assert "concurrent.futures.process" not in sys.modules
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(2) as executor:
        with trace.get_tracer("driver").start_as_current_span("submit"):
            futures = [executor.submit(work, i) for i in range(5)]
        [f.result(30) for f in futures]
""",
    )
    assert result.returncode == 0, result.stderr
    found = Trace(tmp_path / "data")
    found.assert_sound()
    found.assert_children("task", found.one("submit"), 5)


@pytest.mark.timeout(120)
def test_a_pool_module_imported_after_configure_is_patched_when_multiprocessing_was_before(
    tmp_path: Path,
) -> None:
    result = run_script(
        tmp_path,
        WORK
        + """
import multiprocessing
if __name__ == "__main__":
    modeltel.configure()
    assert "multiprocessing.pool" not in sys.modules
    from multiprocessing.pool import Pool
    with Pool(2) as pool:
        with trace.get_tracer("driver").start_as_current_span("map"):
            pool.map(work, range(4), chunksize=1)
        pool.close(); pool.join()
""",
    )
    assert result.returncode == 0, result.stderr
    Trace(tmp_path / "data").assert_children("task", Trace(tmp_path / "data").one("map"), 4)


@pytest.mark.timeout(120)
def test_a_fork_child_of_multiprocessing_imported_after_configure_flushes_at_exit(tmp_path: Path) -> None:
    # The child ends its spans right before multiprocessing's os._exit: with the batch timer off,
    # only the finalizer registered through the post-import hook gets them to disk.
    result = run_script(
        tmp_path,
        WORK
        + """
def child():
    for i in range(3):
        work(i)

if __name__ == "__main__":
    modeltel.configure()
    import multiprocessing as mp
    p = mp.get_context("fork").Process(target=child)
    p.start(); p.join(30)
    assert p.exitcode == 0, p.exitcode
    print(p.pid)
""",
    )
    assert result.returncode == 0, result.stderr
    found = Trace(tmp_path / "data")
    assert {s.pid for s in found.named("task")} == {int(result.stdout)}
    assert len(found.named("task")) == 3


@pytest.mark.timeout(60)
def test_uninstall_removes_the_hook_and_restores_what_it_patched(tmp_path: Path) -> None:
    result = run_script(
        tmp_path,
        """
import sys
import modeltel
from modeltel._internal import on_import, propagation
modeltel.configure()
assert any(isinstance(f, on_import.Finder) for f in sys.meta_path)
import multiprocessing.process
assert multiprocessing.process.BaseProcess.start.__module__ == "modeltel.integrations.multiprocessing"
propagation.uninstall()
assert multiprocessing.process.BaseProcess.start.__module__ == "multiprocessing.process"
import concurrent.futures.process, multiprocessing.pool
assert concurrent.futures.process.ProcessPoolExecutor.submit.__module__ == "concurrent.futures.process"
assert multiprocessing.pool.Pool.apply_async.__module__ == "multiprocessing.pool"
assert not any(isinstance(f, on_import.Finder) for f in sys.meta_path), sys.meta_path
""",
    )
    assert result.returncode == 0, result.stderr


HOOKED = """
import importlib, sys, threading
from modeltel._internal import on_import
sys.path.insert(0, ".")
seen = []
def hooked():
    return any(isinstance(f, on_import.Finder) for f in sys.meta_path)
"""


@pytest.mark.timeout(60)
def test_the_hook_runs_after_the_body_once_and_leaves_when_nothing_is_awaited(tmp_path: Path) -> None:
    (tmp_path / "first.py").write_text("VALUE = 1\n")
    (tmp_path / "second.py").write_text("import first\nVALUE = 2\n")
    result = run_script(
        tmp_path,
        HOOKED
        + """
on_import.when_imported("first", lambda m: seen.append(("first", m.VALUE)))
on_import.when_imported("second", lambda m: seen.append(("second", m.VALUE)))
on_import.when_imported("os", lambda m: seen.append(("os", m.__name__)))  # already imported: now
assert seen == [("os", "os")] and hooked()
thread = threading.Thread(target=importlib.import_module, args=("second",))
thread.start(); thread.join()
assert seen == [("os", "os"), ("first", 1), ("second", 2)], seen
assert not hooked()
import first
assert type(first.__loader__).__name__ == "SourceFileLoader", first.__loader__
assert first.__spec__.loader is first.__loader__
importlib.reload(first)
assert len(seen) == 3
""",
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.timeout(60)
def test_a_module_that_fails_to_import_raises_and_stays_awaited(tmp_path: Path) -> None:
    (tmp_path / "flaky.py").write_text(
        "import os\nif not os.path.exists('ready'):\n    raise ImportError('not yet')\n"
    )
    result = run_script(
        tmp_path,
        HOOKED
        + """
on_import.when_imported("flaky", seen.append)
try:
    import flaky
except ImportError as error:
    assert str(error) == "not yet"
else:
    raise AssertionError("the ImportError was swallowed")
assert seen == [] and hooked()
open("ready", "w").close()
import flaky
assert seen == [flaky] and not hooked()
""",
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.timeout(60)
def test_a_failing_callback_does_not_break_the_import(tmp_path: Path) -> None:
    (tmp_path / "plain.py").write_text("VALUE = 3\n")
    result = run_script(
        tmp_path,
        HOOKED
        + """
def broken(module):
    raise RuntimeError("telemetry bug")
on_import.when_imported("plain", broken)
on_import.when_imported("plain", seen.append)
import plain
assert plain.VALUE == 3 and seen == [plain] and not hooked()
""",
    )
    assert result.returncode == 0, result.stderr
    assert "telemetry bug" in result.stderr
