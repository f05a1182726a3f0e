"""A sweep of 20,000 tiny tasks (about 1 ms of CPU each) on a process pool of 2: telemetry's cost.

Run by hand (``.venv/bin/python bench/pool.py``, or ``--quick`` for 2,000 tasks). It prints a table
and never fails on timing: the exit code is 0 whatever the numbers are.

Each run is a fresh interpreter of this same script (``--child``), because ``modeltel.configure()``
is once per process. The runs are interleaved (off, on, on-no-flush, ... then again) and every row
is the median of the repeats, so load from other work on the machine hits every variant alike.
Every task opens one span with one attribute around the same fixed amount of arithmetic,
calibrated once in the parent to about 1 ms, so the variants do identical work.

- ``off``           ``MODELTEL_ENABLED=false``: the same code through the no-op OpenTelemetry API.
- ``SDK floor``     no modeltel: a bare SDK ``TracerProvider`` + ``BatchSpanProcessor`` + an exporter
                    that discards, no propagation (each worker's spans are orphans): what any OTel
                    tracing costs before modeltel adds anything.
- ``on``            ``modeltel.configure()``: one trace, each task's span a child of the driver span,
                    each worker writing its own JSONL file, flushed after every task (chunk, for
                    ``Pool.map``) so a SIGKILLed worker loses only unfinished spans.
- ``on, no flush``  the same without the per-task flush: spans leave by the batch processor's timer
                    and at worker exit; what the flush costs.

``Pool.map`` uses the default chunking (one context attach and one flush per chunk);
``ProcessPoolExecutor.submit`` is one future per task (one attach and one flush per task), the worst
case. The wall time runs from creating the pool to the workers having exited, so start-up and the
final flushes are counted. CPU is user + system time of the driver and every worker over the same
interval (``getrusage``): on a machine shared with other work it is the steadier measure of what
telemetry adds. After each ``on`` run the spans on disk are counted: the table's "spans/s" is spans
that reached disk per second of wall time, and a run that lost spans shows it.

The second table does not need an idle machine: it runs the task body in ONE process, alternating
blocks of 250 tasks between the variants (40 rounds, medians), and reports the CPU each variant adds
per task over the no-op API. Blocks
end with a flush so background export is charged to the block that caused it. A per-task cost
``c`` means a pool of 1 ms tasks runs about ``c / 1 ms`` slower when the cores are not shared.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from machine import describe
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

TARGET_RATIO = 1.03
WORKERS = 2
VARIANTS = (
    ("map", "off"),
    ("map", "sdk"),
    ("map", "on"),
    ("map", "on-noflush"),
    ("submit", "off"),
    ("submit", "on"),
    ("submit", "on-noflush"),
)
LABELS = {
    "map": "Pool.map",
    "submit": "ProcessPoolExecutor.submit",
    "off": "telemetry off",
    "sdk": "SDK floor",
    "on": "telemetry on",
    "on-noflush": "on, no per-task flush",
}


def spin(loops: int) -> float:
    total = 0.0
    for i in range(loops):
        total += i * 0.5
    return total


TRACER = trace.get_tracer("bench.pool")
"""Module-level, as instrumented code should: ``get_tracer`` per call builds a tracer each time."""


def task(i: int, loops: int) -> float:
    with TRACER.start_as_current_span("task") as span:
        span.set_attribute("i", i)
        return spin(loops)


def calibrate(target_s: float = 0.001) -> int:
    """Loop count for about ``target_s`` of arithmetic on this machine (median of 25 timings)."""
    loops = 10_000
    timings = []
    for _ in range(25):
        start = time.perf_counter()
        spin(loops)
        timings.append(time.perf_counter() - start)
    return max(1, int(loops * target_s / statistics.median(timings)))


PAIRED = ("sdk", "batched", "flushed")
PAIRED_LABELS = {
    "sdk": "OTel SDK alone, discarding exporter",
    "batched": "modeltel, batched (Pool.map chunk)",
    "flushed": "modeltel, flushed after each task",
}


def paired_child(rounds: int, block: int, loops: int) -> None:
    """Per-task CPU of each variant over the no-op API, measured in this one process."""
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    import modeltel
    from modeltel.integrations.multiprocessing import flush_finished_spans

    bare_provider = TracerProvider(meter_provider=NoOpMeterProvider())
    bare_provider.add_span_processor(BatchSpanProcessor(Discard()))
    handle = modeltel.configure()
    tracers = {
        "off": trace.NoOpTracer(),
        "sdk": bare_provider.get_tracer("bench.pool"),
        "batched": trace.get_tracer("bench.pool"),
        "flushed": trace.get_tracer("bench.pool"),
    }
    flushes = {"sdk": bare_provider.force_flush, "batched": handle.force_flush}
    timings: dict[str, list[float]] = {name: [] for name in tracers}
    for _ in range(rounds):
        for name, tracer in tracers.items():
            start = time.process_time()
            for i in range(block):
                with tracer.start_as_current_span("task") as span:
                    span.set_attribute("i", i)
                    spin(loops)
                if name == "flushed":
                    flush_finished_spans(handle)
            if name in flushes:
                flushes[name]()
            timings[name].append((time.process_time() - start) / block)
    base = statistics.median(timings["off"])
    added = {name: (statistics.median(timings[name]) - base) * 1e6 for name in PAIRED}
    print(json.dumps({"task_us": base * 1e6, **added}))


def child(mode: str, variant: str, tasks: int, loops: int) -> None:
    """One timed run: prints ``{"wall": seconds, "cpu": seconds}`` as JSON."""
    import multiprocessing as mp

    from opentelemetry import trace

    import modeltel

    handle = modeltel.configure()
    assert handle.enabled == (variant not in ("off", "sdk")), "telemetry state does not match the variant"
    if variant == "sdk":
        install_bare_sdk()
    if variant == "on-noflush":
        import modeltel.integrations.multiprocessing as integration

        integration.flush_finished_spans = lambda handle=None: None
    work = functools.partial(task, loops=loops)
    context = mp.get_context("fork")
    start, cpu_start = time.perf_counter(), cpu_seconds()
    with trace.get_tracer("bench.pool").start_as_current_span("sweep"):
        if mode == "map":
            pool = context.Pool(WORKERS)
            pool.map(work, range(tasks))
            pool.close()
            pool.join()
        else:
            with ProcessPoolExecutor(WORKERS, mp_context=context) as executor:
                futures = [executor.submit(work, i) for i in range(tasks)]
                for future in futures:
                    future.result()
    wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
    handle.shutdown()
    print(json.dumps({"wall": wall, "cpu": cpu}))


class Discard(SpanExporter):
    """The floor's exporter: accepts every batch and keeps nothing."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def install_bare_sdk() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard()))
    trace.set_tracer_provider(provider)


def cpu_seconds() -> float:
    """User + system time of this process and of its children that have exited (the workers)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def spans_on_disk(data_dir: Path) -> int:
    count = 0
    for path in (data_dir / "traces").glob("*/*.jsonl"):
        for line in path.read_text().splitlines():
            request = json.loads(line)
            for resource_spans in request.get("resourceSpans", []):
                for scope_spans in resource_spans.get("scopeSpans", []):
                    count += len(scope_spans.get("spans", []))
    return count


def run_variant(mode: str, variant: str, tasks: int, loops: int) -> tuple[float, float, int | None]:
    with tempfile.TemporaryDirectory(prefix="modeltel-bench-pool-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MODELTEL_"))}
        env.update({"MODELTEL_DATA_DIR": tmp, "OTEL_SERVICE_NAME": "bench-pool"})
        if variant in ("off", "sdk"):
            env["MODELTEL_ENABLED"] = "false"
        command = [sys.executable, __file__, "--child", mode, variant, str(tasks), str(loops)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{mode}/{variant} failed:\n{done.stderr}")
        timed = json.loads(done.stdout.strip().splitlines()[-1])
        count = None if variant in ("off", "sdk") else spans_on_disk(Path(tmp))
        return float(timed["wall"]), float(timed["cpu"]), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2,000 tasks, 2 repeats")
    parser.add_argument(
        "--child", nargs=4, metavar=("MODE", "VARIANT", "TASKS", "LOOPS"), help=argparse.SUPPRESS
    )
    parser.add_argument("--paired-only", action="store_true", help="only the one-process paired table")
    parser.add_argument("--paired-child", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.paired_child:
        paired_child(*args.paired_child)
        return
    if args.child:
        mode, variant, tasks, loops = args.child
        child(mode, variant, int(tasks), int(loops))
        return
    tasks, repeats = (2_000, 2) if args.quick else (args.tasks, args.repeats)
    loops = calibrate()
    started = time.perf_counter()
    spin_s = min(timeit_spin(loops) for _ in range(5))
    print(describe())
    if not args.paired_only:
        pool_table(tasks, repeats, loops, spin_s, started)
    paired_table(loops, rounds=10 if args.quick else 40)


def paired_table(loops: int, rounds: int, block: int = 250) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MODELTEL_"))}
    env["MODELTEL_DATA_DIR"] = tempfile.mkdtemp(prefix="modeltel-bench-pool-")
    command = [sys.executable, __file__, "--paired-child", str(rounds), str(block), str(loops)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise SystemExit(f"paired run failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"\none process, blocks of {block} tasks of {result['task_us'] / 1e3:.2f} ms CPU interleaved, "
        f"{rounds} rounds, medians: CPU added per task over the no-op API (and as a share of the task)"
    )
    print(f"{'variant':<38} {'added per task':>22}")
    print("-" * 62)
    for name in PAIRED:
        print(f"{PAIRED_LABELS[name]:<38} {result[name]:+10.1f} us {result[name] / result['task_us']:6.1%}")


def pool_table(tasks: int, repeats: int, loops: int, spin_s: float, started: float) -> None:
    walls: dict[tuple[str, str], list[float]] = {v: [] for v in VARIANTS}
    cpus: dict[tuple[str, str], list[float]] = {v: [] for v in VARIANTS}
    disk: dict[tuple[str, str], list[int]] = {v: [] for v in VARIANTS}
    for repeat in range(repeats):
        for mode, variant in VARIANTS:
            wall, cpu, count = run_variant(mode, variant, tasks, loops)
            walls[(mode, variant)].append(wall)
            cpus[(mode, variant)].append(cpu)
            if count is not None:
                disk[(mode, variant)].append(count)
        print(
            f"  repeat {repeat + 1}/{repeats} done ({time.perf_counter() - started:.0f} s)", file=sys.stderr
        )
    expected = tasks + 1
    print(
        f"\n{tasks:,} tasks of {spin_s * 1e3:.2f} ms arithmetic (+ one span each), pool of {WORKERS} "
        f"(fork), {repeats} interleaved repeats, medians; ideal wall {tasks * spin_s / WORKERS:.2f} s"
    )
    print(
        f"{'executor':<27} {'variant':<24} {'wall s':>7} {'vs off':>7} {'CPU s':>7} {'vs off':>7} "
        f"{'per task':>9} {'spans on disk':>14} {'spans/s':>8}"
    )
    print("-" * 118)
    verdicts = []
    for mode, variant in VARIANTS:
        wall, cpu = statistics.median(walls[(mode, variant)]), statistics.median(cpus[(mode, variant)])
        base_wall, base_cpu = statistics.median(walls[(mode, "off")]), statistics.median(cpus[(mode, "off")])
        added_us = (cpu - base_cpu) / tasks * 1e6
        counts = disk[(mode, variant)]
        on_disk = "-" if not counts else f"{min(counts):,}/{expected:,}"
        rate = "-" if not counts else f"{min(counts) / wall:,.0f}"
        per_task = "-" if variant == "off" else f"{added_us:+.1f} us"
        print(
            f"{LABELS[mode]:<27} {LABELS[variant]:<24} {wall:7.2f} {wall / base_wall:7.3f} {cpu:7.2f} "
            f"{cpu / base_cpu:7.3f} {per_task:>9} {on_disk:>14} {rate:>8}"
        )
        if variant == "on":
            ratio = wall / base_wall
            verdicts.append(f"{LABELS[mode]} {ratio:.3f}x ({'pass' if ratio <= TARGET_RATIO else 'MISS'})")
    print(
        f"\nper task: CPU added per task vs off, driver and workers together. "
        f"Target: wall with telemetry <= {TARGET_RATIO:.2f}x without: " + "; ".join(verdicts)
    )


def timeit_spin(loops: int) -> float:
    start = time.perf_counter()
    spin(loops)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
