"""Per-span cost of modeltel's JSONL trace exporter against the SDK floor and its peers.

Run by hand (``.venv/bin/python bench/overhead.py``) or as a CI report (``--quick``). It prints a
table and never fails on timing: the exit code is 0 whatever the numbers are.

Everything timed runs in ONE process, interleaved (A B C1 C1q C2 C2q D1 D2, A B ..., after one
warm-up round), each row is the median of the repeats, and ratios are medians of per-round ratios:
the machine may be shared, and load that comes and goes then hits both sides of a ratio alike.
Every variant gets its own ``TracerProvider`` (the global one is never set) and a ``force_flush``
inside the timed region, so the cost of exporting is counted, not left to a background thread.

- A   SDK + BatchSpanProcessor + an exporter that discards: the floor.
- B   SDK + BatchSpanProcessor (default settings) + ``JsonlSpanExporter``.
- Bp  the same exporter behind the processor ``modeltel.configure()`` uses for it (back-pressure
      instead of drops), for reference; the targets are B's.
- C1  SDK + BatchSpanProcessor (default settings) + ``ConsoleSpanExporter`` writing to a file.
- C2  SDK + BatchSpanProcessor (default settings) + ``opentelemetry-exporter-otlp-json-file``.
- C1q, C2q  the same with a queue that holds every span: what the peers cost when they drop nothing.
- D1  the OpenTelemetry API with no SDK (the no-op ``ProxyTracer``).
- D2  ``modeltel.configure()`` with ``MODELTEL_ENABLED=false``, then the same API loop.

For B, C1 and C2 the spans that reached the file are counted after every repeat: a cheap exporter
that drops spans when the BSP queue (2048) overflows is not cheap, it is lossy.

Peak RSS (A vs B, 100,000 spans) and import times run in fresh subprocesses of this same script.

C2 is a beta package that pins ``opentelemetry-exporter-otlp-common==0.66b1``, which conflicts with
the ``opentelemetry-exporter-otlp`` we ship with, so it is never installed into the venv: it lives in
``.bench-deps/`` (``--install-peers`` puts it there) and only this script puts that on ``sys.path``.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from machine import describe
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)

from modeltel._internal import semconv

ROOT = Path(__file__).resolve().parent.parent
PEER_DIR = ROOT / ".bench-deps"
PEER_VERSION = "0.66b1"
PEER_PACKAGES = (
    f"opentelemetry-exporter-otlp-json-file=={PEER_VERSION}",
    f"opentelemetry-exporter-otlp-json-common=={PEER_VERSION}",
    f"opentelemetry-proto-json=={PEER_VERSION}",
    f"opentelemetry-exporter-otlp-common=={PEER_VERSION}",
)
SERVICE = "bench"

TARGET_B_OVER_A = 1.3
TARGET_B_OVER_PEER = 0.5
TARGET_RSS_MIB = 5.0
TARGET_IMPORT_RATIO = 1.2

_IMPORT_MODELTEL = "import modeltel"
_IMPORT_SDK_OTLP = (
    "import opentelemetry.sdk.trace\nimport opentelemetry.exporter.otlp.proto.http.trace_exporter"
)


# --- the workload ------------------------------------------------------------------------------------
def emit_spans(tracer: trace.Tracer, n: int) -> None:
    """``n`` sibling spans with 6 attributes each (str, str, int, bool, float, int), as a sweep makes."""
    start = tracer.start_as_current_span
    for i in range(n):
        attributes = {
            semconv.SIMULATION_MODEL: "sir",
            semconv.SIMULATION_PARAM_ID: "a1b2c3d4",
            semconv.SIMULATION_SEED: i,
            semconv.SIMULATION_CACHE_HIT: i % 3 == 0,
            semconv.SIMULATION_PREFIX + "final_infected": i * 1e-5,  # as run.record(...) names them
            semconv.SIMULATION_PREFIX + "steps": 10_000,
        }
        with start(semconv.SPAN_SIMULATION_RUN, attributes=attributes):
            pass


class DiscardingExporter(SpanExporter):
    """The floor: the batch processor does all its work, the spans go nowhere."""

    def export(self, spans: Any) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


class Clock:
    """Wall and CPU seconds of the process (all its threads) since it was made.

    CPU time does not count waiting for a core, so on a machine shared with other work it shows
    what the pipeline costs when wall time is inflated by the wait.
    """

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def _sdk_run(
    exporter: SpanExporter, n: int, queue: int | None = None, processor: SpanProcessor | None = None
) -> tuple[float, float]:
    """Wall and CPU seconds to emit ``n`` spans and flush them through a BatchSpanProcessor
    (default settings, or a queue of ``queue`` spans), or through ``processor``."""
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}), shutdown_on_exit=False)
    if processor is None:
        processor = BatchSpanProcessor(exporter) if queue is None else BatchSpanProcessor(exporter, queue)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("bench")
    try:
        clock = Clock()
        emit_spans(tracer, n)
        provider.force_flush()
        return clock.read()
    finally:
        provider.shutdown()


# --- counting what reached the disk ------------------------------------------------------------------
def count_otlp_json_spans(path: Path) -> int:
    """Spans in an OTLP/JSON lines file: resourceSpans[].scopeSpans[].spans[] of every line."""
    total = 0
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            request = json.loads(line)
            for rs in request.get("resourceSpans", ()):
                for ss in rs.get("scopeSpans", ()):
                    total += len(ss.get("spans", ()))
    return total


def count_console_spans(path: Path) -> int:
    """Spans in ConsoleSpanExporter output: concatenated, indented JSON objects."""
    text = path.read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    total, pos = 0, 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return total
        _, pos = decoder.raw_decode(text, pos)
        total += 1


# --- the variants ------------------------------------------------------------------------------------
@dataclass
class Outcome:
    times: tuple[float, float]
    """Wall and CPU seconds."""
    on_disk: int | None = None

    @property
    def seconds(self) -> float:
        return self.times[0]

    @property
    def cpu_seconds(self) -> float:
        return self.times[1]


@dataclass
class Variant:
    key: str
    label: str
    run: Callable[[int, Path], Outcome]
    outcomes: list[Outcome] = field(default_factory=list)
    error: str | None = None


def run_a(n: int, tmp: Path) -> Outcome:
    return Outcome(_sdk_run(DiscardingExporter(), n))


def run_b(n: int, tmp: Path) -> Outcome:
    from modeltel._internal.config import Settings
    from modeltel._internal.export.jsonl import JsonlSpanExporter

    exporter = JsonlSpanExporter(Settings(data_dir=tmp, service_name=SERVICE))
    times = _sdk_run(exporter, n)
    path = exporter.file.path
    return Outcome(times, count_otlp_json_spans(path) if path is not None else 0)


def run_b_configured(n: int, tmp: Path) -> Outcome:
    """B behind the processor ``modeltel.configure()`` puts in front of JSONL (back-pressure)."""
    from modeltel._internal.config import Settings
    from modeltel._internal.export.jsonl import JsonlSpanExporter
    from modeltel._internal.export.processor import BackPressureSpanProcessor

    exporter = JsonlSpanExporter(Settings(data_dir=tmp, service_name=SERVICE))
    times = _sdk_run(exporter, n, processor=BackPressureSpanProcessor(exporter))
    path = exporter.file.path
    return Outcome(times, count_otlp_json_spans(path) if path is not None else 0)


def run_c1(n: int, tmp: Path, queue: int | None = None) -> Outcome:
    path = tmp / "console.json"
    with path.open("w", encoding="utf-8") as out:
        times = _sdk_run(ConsoleSpanExporter(out=out), n, queue)
    return Outcome(times, count_console_spans(path))


def run_c2(n: int, tmp: Path, queue: int | None = None) -> Outcome:
    from opentelemetry.exporter.otlp.json.file import FileSpanExporter  # type: ignore[import-not-found]

    path = tmp / "otlp-json-file.jsonl"
    times = _sdk_run(FileSpanExporter(path), n, queue)
    return Outcome(times, count_otlp_json_spans(path) if path.exists() else 0)


def run_c1_lossless(n: int, tmp: Path) -> Outcome:
    return run_c1(n, tmp, queue=n)


def run_c2_lossless(n: int, tmp: Path) -> Outcome:
    return run_c2(n, tmp, queue=n)


def run_d1(n: int, tmp: Path) -> Outcome:
    tracer = trace.get_tracer("bench")  # no SDK provider installed: a ProxyTracer over the no-op
    clock = Clock()
    emit_spans(tracer, n)
    return Outcome(clock.read())


_configure_seconds: list[float] = []


def run_d2(n: int, tmp: Path) -> Outcome:
    import modeltel
    import modeltel._internal.providers

    # configure() is once per process; forget the previous repeat's handle so each repeat pays it.
    modeltel._internal.providers._current = None
    saved = os.environ.get("MODELTEL_ENABLED")
    os.environ["MODELTEL_ENABLED"] = "false"
    try:
        began = time.perf_counter()
        handle = modeltel.configure(data_dir=str(tmp))
        _configure_seconds.append(time.perf_counter() - began)
    finally:
        if saved is None:
            del os.environ["MODELTEL_ENABLED"]
        else:
            os.environ["MODELTEL_ENABLED"] = saved
    if handle.enabled or not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        raise RuntimeError("MODELTEL_ENABLED=false still installed a provider")
    tracer = trace.get_tracer("bench")
    clock = Clock()
    emit_spans(tracer, n)
    handle.force_flush()
    return Outcome(clock.read())


def load_peer() -> str | None:
    """Put .bench-deps on sys.path and import the beta exporter; the error text if that fails."""
    if not (PEER_DIR / "opentelemetry").is_dir():
        return f"not installed: run with --install-peers (pip install --no-deps --target {PEER_DIR})"
    # Appended, not prepended: the venv's own packages (otlp-common 0.66b2) keep precedence and the
    # beta exporter's namespace packages are found only where the venv has none.
    sys.path.append(str(PEER_DIR))
    try:
        from opentelemetry.exporter.otlp.json.file import FileSpanExporter  # noqa: F401
    except Exception as exc:  # version skew shows up here as ImportError or AttributeError
        return f"import failed ({type(exc).__name__}: {exc}); likely version skew with the venv's OTel"
    return None


def install_peers() -> None:
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(PEER_DIR)]
    subprocess.run([*command, *PEER_PACKAGES], check=True)


# --- subprocess measurements -------------------------------------------------------------------------
def rss_child(variant: str, n: int) -> None:
    """In a fresh process: emit ``n`` spans through A or B and print peak RSS in KiB.

    The peak is read before the spans on disk are counted: parsing a 300 KiB line makes megabytes
    of dicts, which is the bench's cost, not the exporter's.
    """
    from modeltel._internal.config import Settings
    from modeltel._internal.export.jsonl import JsonlSpanExporter  # both import it: only its work differs

    with tempfile.TemporaryDirectory(prefix="modeltel-bench-") as tmp:
        exporter = JsonlSpanExporter(Settings(data_dir=Path(tmp), service_name=SERVICE))
        _sdk_run(DiscardingExporter() if variant == "A" else exporter, n)
        peak = peak_rss_kib()
        path = exporter.file.path
        on_disk = count_otlp_json_spans(path) if variant == "B" and path is not None else None
        print(json.dumps({"maxrss_kib": peak, "on_disk": on_disk}))


def peak_rss_kib() -> int:
    """This process's peak RSS in KiB.

    VmHWM where there is one: Linux carries the parent's high-water mark into ``ru_maxrss`` across
    fork + exec, so a child of a bench that has grown to 140 MiB would report 140 MiB whatever it did.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS


def _child(args: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _import_seconds(code: str) -> float:
    """Import time of ``code`` in a fresh interpreter that has imported nothing of ours."""
    timer = (
        "import time, json\nb = time.perf_counter()\n"
        + code
        + "\nprint(json.dumps({'seconds': time.perf_counter() - b}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", timer], check=True, capture_output=True, text=True, cwd=tempfile.gettempdir()
    )
    return float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])


# --- report ------------------------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "pass" if ok else "MISS"


def us_per_span(seconds: float, n: int) -> float:
    return seconds / n * 1e6


def interleaved(variants: list[Variant], n: int, repeats: int) -> None:
    """One warm-up round (not kept), then ``repeats`` rounds of every variant in turn."""
    for round_ in range(repeats + 1):
        for variant in variants:
            if variant.error is not None:
                continue
            gc.collect()
            with tempfile.TemporaryDirectory(prefix="modeltel-bench-") as tmp:
                try:
                    outcome = variant.run(n, Path(tmp))
                except Exception as exc:
                    variant.error = f"{type(exc).__name__}: {exc}"
                    continue
            if round_:
                variant.outcomes.append(outcome)


def paired(v: Variant, w: Variant, cpu: bool = False) -> float | None:
    """Median over rounds of v's time / w's time in the same round (wall, or CPU): the two ran
    seconds apart, so load that comes and goes cancels far better than in a ratio of medians."""
    if v.error is not None or w.error is not None or not v.outcomes or not w.outcomes:
        return None
    pairs = zip(v.outcomes, w.outcomes, strict=False)
    return statistics.median(x.times[cpu] / y.times[cpu] for x, y in pairs)


def table(variants: list[Variant], n: int) -> Iterator[str]:
    floor = next(v for v in variants if v.key == "A")
    yield (
        f"{'':4}{'variant':<47}{'wall µs/span':>13}{'min':>7}{'max':>7}{'x A':>6}"
        f"{'cpu µs/span':>12}{'x A':>6}  on disk (median / worst)"
    )
    for v in variants:
        if v.error is not None:
            yield f"{v.key:<4}{v.label:<47}  not measured: {v.error}"
            continue
        wall = [us_per_span(o.seconds, n) for o in v.outcomes]
        cpu = statistics.median(us_per_span(o.cpu_seconds, n) for o in v.outcomes)
        disk = ""
        if v.outcomes[0].on_disk is not None:
            shares = [100.0 * (o.on_disk or 0) / n for o in v.outcomes]
            disk = f"  {statistics.median(shares):6.1f}% / {min(shares):5.1f}%"
        yield (
            f"{v.key:<4}{v.label:<47}{statistics.median(wall):13.2f}{min(wall):7.1f}{max(wall):7.1f}"
            f"{paired(v, floor) or 0.0:6.2f}{cpu:12.2f}{paired(v, floor, cpu=True) or 0.0:6.2f}{disk}"
        )
    yield (
        "    µs/span: median (min, max) of the repeats; x A: median of the per-round ratios to A;"
        " cpu: process CPU time, all threads"
    )


def _ratio_line(name: str, wall: float, cpu: float | None, target: float, extra: str = "") -> str:
    cpu_part = f", CPU time {cpu:.2f} {verdict(cpu <= target)}" if cpu is not None else ""
    return f"  {name} = {wall:.2f}  (target <= {target})  {verdict(wall <= target)}{cpu_part}{extra}"


def targets(variants: list[Variant], n: int) -> Iterator[str]:
    by_key = {v.key: v for v in variants}
    b, a = by_key["B"], by_key["A"]
    b_over_a = paired(b, a)
    assert b_over_a is not None
    yield _ratio_line("B/A", b_over_a, paired(b, a, cpu=True), TARGET_B_OVER_A)
    worst_b = min(100.0 * (o.on_disk or 0) / n for o in b.outcomes)
    yield f"  B spans on disk, worst repeat = {worst_b:.1f}%  (target 100%)  {verdict(worst_b == 100.0)}"
    for key in ("C1", "C2"):
        ratio = paired(b, by_key[key])
        if ratio is None:
            yield f"  B/{key}: {key} not measured  (target <= {TARGET_B_OVER_PEER})  n/a"
            continue
        lossless = paired(b, by_key[key + "q"])
        fair = f"; B/{key}q (lossless peer) = {lossless:.2f}" if lossless is not None else ""
        yield _ratio_line(f"B/{key}", ratio, paired(b, by_key[key], cpu=True), TARGET_B_OVER_PEER, fair)


def rss_report(n: int, runs: int) -> Iterator[str]:
    samples: dict[str, list[int]] = {"A": [], "B": []}
    on_disk: list[int] = []
    for _ in range(runs):
        for key in samples:
            result = _child(["--rss-child", key, "--spans", str(n)])
            samples[key].append(int(result["maxrss_kib"]))
            if key == "B":
                on_disk.append(int(result["on_disk"]))
    a = statistics.median(samples["A"]) / 1024
    b = statistics.median(samples["B"]) / 1024
    yield (
        f"  peak RSS, {n:,} spans, fresh process each, median of {runs}: "
        f"A {a:.1f} MiB, B {b:.1f} MiB, B-A {b - a:+.1f} MiB  (target <= {TARGET_RSS_MIB:g} MiB)  "
        f"{verdict(b - a <= TARGET_RSS_MIB)}"
    )
    yield (
        f"    (both import modeltel._internal.export.jsonl; B wrote {min(on_disk):,}..{max(on_disk):,} "
        f"of {n:,} spans to disk)"
    )


def import_report(runs: int) -> Iterator[str]:
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(runs):  # interleaved, like the span rounds
        ours.append(_import_seconds(_IMPORT_MODELTEL))
        theirs.append(_import_seconds(_IMPORT_SDK_OTLP))
    m, s = statistics.median(ours) * 1e3, statistics.median(theirs) * 1e3
    yield (
        f"  import modeltel {m:.1f} ms vs sdk.trace + otlp http exporter {s:.1f} ms, median of {runs}: "
        f"ratio {m / s:.2f}  (target <= {TARGET_IMPORT_RATIO})  {verdict(m / s <= TARGET_IMPORT_RATIO)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, smaller repeats: a CI report")
    parser.add_argument("--spans", type=int, help="spans per repeat (default 20000, quick 5000)")
    parser.add_argument("--repeats", type=int, help="repeats per variant (default 7, quick 3)")
    parser.add_argument("--install-peers", action="store_true", help=f"pip install the peers into {PEER_DIR}")
    parser.add_argument("--rss-child", choices=("A", "B"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child, args.spans)
        return

    n = args.spans or (5_000 if args.quick else 20_000)
    repeats = args.repeats or (3 if args.quick else 7)
    rss_spans, rss_runs = (20_000, 1) if args.quick else (100_000, 3)
    import_runs = 3 if args.quick else 7
    if args.install_peers:
        install_peers()
    # "Queue full, dropping span" once per processor: the on-disk column says it with numbers.
    logging.getLogger("opentelemetry.sdk._shared_internal").setLevel(logging.ERROR)

    variants = [
        Variant("A", "SDK + BSP + discarding exporter (floor)", run_a),
        Variant("B", "SDK + BSP + modeltel JsonlSpanExporter", run_b),
        Variant("Bp", "  same, configure()'s back-pressure processor", run_b_configured),
        Variant("C1", "SDK + BSP + ConsoleSpanExporter -> file", run_c1),
        Variant("C1q", "  same, BSP queue holds every span (lossless)", run_c1_lossless),
        Variant("C2", f"SDK + BSP + otlp-json-file {PEER_VERSION} (beta)", run_c2),
        Variant("C2q", "  same, BSP queue holds every span (lossless)", run_c2_lossless),
        Variant("D1", "OTel API, no SDK (no-op ProxyTracer)", run_d1),
        Variant("D2", "modeltel, MODELTEL_ENABLED=false", run_d2),
    ]
    peer_error = load_peer()
    for variant in variants:
        if variant.key.startswith("C2"):
            variant.error = peer_error

    print(f"modeltel bench/overhead.py{' --quick' if args.quick else ''}")
    print(describe(("opentelemetry-sdk", "opentelemetry-api", "modeltel")))
    load_before = os.getloadavg()
    began = time.perf_counter()
    interleaved(variants, n, repeats)
    load_after = os.getloadavg()
    print(
        f"load:    1-min load average {load_before[0]:.2f} before, {load_after[0]:.2f} after "
        f"({os.cpu_count()} cores; above ~1 means other work shared the CPUs: read medians, not min/max)"
    )
    print(
        f"run:     {repeats} repeats x {n:,} spans, 6 attributes each, interleaved with 1 warm-up round, "
        f"BSP defaults (queue 2048, batch 512, delay 5 s), force_flush inside the timed region; "
        f"{time.perf_counter() - began:.0f} s"
    )
    print()
    for line in table(variants, n):
        print(line)
    if _configure_seconds:
        print(
            f"    (D2 excludes the one-off modeltel.configure() call: median "
            f"{statistics.median(_configure_seconds) * 1e3:.2f} ms)"
        )
    print()
    print("targets (a report, not a test):")
    for line in targets(variants, n):
        print(line)
    for line in rss_report(rss_spans, rss_runs):
        print(line)
    for line in import_report(import_runs):
        print(line)


if __name__ == "__main__":
    main()
