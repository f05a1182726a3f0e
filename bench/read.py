"""Reading 1,000,000 spans: ``modeltel show`` / ``modeltel stats --by name`` against the usual routes.

Run by hand (``.venv/bin/python bench/read.py``; ``--quick`` for 100,000 spans only). It prints a
table and never fails on timing: the exit code is 0 whatever the numbers are, 1 only if the routes
disagree on the answer.

What is measured, in one run of this script, each route a fresh subprocess on the same files:

- ``modeltel show``             per-span-name count/errors/total/mean/p50/p95/max, as a user runs it
- ``modeltel stats --by name``  the same plus tokens, ttft, cost, throughput and p10..p90 spreads
- plain loop                    a streaming ``orjson`` (``json`` if absent) + numpy loop: per line
                                ``loads``, walk the spans, per-name lists, numpy at the end
- pandas                        ``pandas.read_json(lines=True)`` + ``json_normalize`` + ``groupby``

Data: a data dir of 4 process files in modeltel's own layout and encoding (same key order, 512
spans per line as the batch processor writes, the span-name and attribute mix of a sweep with
calibration and LLM calls: ~360 bytes per span, ~360 MB for 1M). Wall time and CPU time (user+sys
of the process and its workers) are medians of ``--repeats`` interleaved runs (pandas: one run, it
takes minutes); peak memory is the peak of the PSS summed over the process tree (the command and
its workers), sampled every 10 ms.

pandas and orjson are not modeltel dependencies: ``--install-peers`` puts them in
``.bench-deps/read/`` and only the child processes of this script see that directory.

This machine's 2 cores are shared with other sessions' work, so the load average is printed before
and after: compare rows within one run, and read the wall times as medians under that load.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from machine import describe

ROOT = Path(__file__).resolve().parent.parent
DEPS_DIR = ROOT / ".bench-deps" / "read"
PEERS = ("pandas", "python-dateutil", "pytz", "tzdata", "six", "orjson")
MODELTEL = Path(sys.executable).parent / "modeltel"
TARGET_WALL_S = 2.5
TARGET_RSS_MB = 150.0
SPANS_PER_LINE = 512
FILES = 4


# --- data ----------------------------------------------------------------------------------------------
def _kv(key: str, kind: str, value: str) -> str:
    return f'{{"key":"{key}","value":{{"{kind}":{value}}}}}'


def _resource(pid: int) -> str:
    attributes = ",".join(
        _kv(k, "stringValue", f'"{v}"')
        for k, v in (
            ("telemetry.sdk.language", "python"),
            ("telemetry.sdk.name", "opentelemetry"),
            ("telemetry.sdk.version", "1.45.2"),
            ("service.instance.id", f"f4f25ee8-ea79-4137-800d-{pid:012d}"),
            ("service.name", "sweep"),
            ("modeltel.run.id", "40b8dded32c4434e98c42b448876e5b6"),
        )
    )
    return (
        f'{{"resource":{{"attributes":[{attributes}]}},'
        '"scopeSpans":[{"scope":{"name":"modeltel","version":"0.1.0"},"spans":['
    )


MODELS = (
    ("llama3.1", "ollama"),
    ("gpt-4o-mini", "openai"),
    ("claude-haiku", "anthropic"),
    ("mistral-7b", "vllm"),
)
CALIBRATION = ("calibration.iteration", "calibration.ask", "calibration.evaluate", "calibration.tell")


def _span(rng: random.Random, trace: str, root: str, first: bool, start: int) -> tuple[str, int]:
    duration = int(rng.lognormvariate(15, 1.2))
    pick = rng.random()
    if pick < 0.45:
        name, attributes = (
            "simulation.run",
            [_kv("modeltel.simulation.seed", "intValue", f'"{rng.randrange(10**6)}"')],
        )
    elif pick < 0.65:
        name, attributes = "simulation.phase", []
    elif pick < 0.85:
        name = rng.choice(CALIBRATION)
        attributes = [_kv("modeltel.calibration.iteration", "intValue", f'"{rng.randrange(1000)}"')]
    elif pick < 0.90:
        name, attributes = "inference.predict", [_kv("modeltel.inference.model", "stringValue", '"clf-v3"')]
    else:
        model, provider = rng.choice(MODELS)
        tokens_in, tokens_out = rng.randrange(50, 2000), rng.randrange(10, 500)
        name = f"chat {model}"
        attributes = [
            _kv("gen_ai.operation.name", "stringValue", '"chat"'),
            _kv("gen_ai.request.model", "stringValue", f'"{model}"'),
            _kv("gen_ai.provider.name", "stringValue", f'"{provider}"'),
            _kv("gen_ai.usage.input_tokens", "intValue", f'"{tokens_in}"'),
            _kv("gen_ai.usage.output_tokens", "intValue", f'"{tokens_out}"'),
            _kv("modeltel.inference.ttft_s", "doubleValue", repr(round(rng.random() * 0.5, 4))),
            _kv(
                "modeltel.inference.cost_usd",
                "doubleValue",
                repr(round(tokens_in * 1e-6 + tokens_out * 3e-6, 7)),
            ),
        ]
    error = rng.random() < 0.02
    status = '{"code":2,"message":"ValueError: bad parameter set"}' if error else '{"code":0}'
    parent = "" if first else f'"parentSpanId":"{root}",'
    text = (
        f'{{"traceId":"{trace}","spanId":"{rng.getrandbits(64):016x}",{parent}"name":"{name}","kind":1,'
        f'"startTimeUnixNano":"{start}","endTimeUnixNano":"{start + duration}",'
        f'"attributes":[{",".join(attributes)}],"status":{status},"flags":256}}'
    )
    return text, duration


def generate(data_dir: Path, spans: int, *, seed: int = 1) -> int:
    """Write ``spans`` spans into ``FILES`` process files under ``data_dir``; returns bytes written."""
    rng = random.Random(seed)
    day = data_dir / "traces" / "2026-11-24"
    day.mkdir(parents=True, exist_ok=True)
    start_s = 1_795_535_771
    total = 0
    for index in range(FILES):
        pid = 4000 + index
        share = spans // FILES + (1 if index < spans % FILES else 0)
        now = (start_s + index) * 10**9
        head = '{"resourceSpans":[' + _resource(pid)
        with open(day / f"sweep-{pid}-{start_s}.jsonl", "w") as out:
            written = 0
            while written < share:
                count = min(SPANS_PER_LINE, share - written)
                trace, root = f"{rng.getrandbits(128):032x}", f"{rng.getrandbits(64):016x}"
                parts = []
                for i in range(count):
                    text, duration = _span(rng, trace, root, i == 0, now)
                    now += duration // 3 + 1000
                    parts.append(text)
                line = head + ",".join(parts) + "]}]}]}\n"
                out.write(line)
                total += len(line)
                written += count
    return total


# --- the routes in child processes -----------------------------------------------------------------------
def plain_child(data_dir: Path) -> None:
    """The plain streaming loop: json (orjson when importable) per line, numpy at the end."""
    import numpy as np

    try:
        import orjson

        loads = orjson.loads
    except ImportError:
        loads = json.loads
    durations: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    for path in sorted(data_dir.glob("traces/*/*.jsonl")):
        with open(path, "rb") as handle:
            for line in handle:
                for rs in loads(line)["resourceSpans"]:
                    for ss in rs["scopeSpans"]:
                        for span in ss["spans"]:
                            name = span["name"]
                            seconds = (int(span["endTimeUnixNano"]) - int(span["startTimeUnixNano"])) / 1e9
                            durations.setdefault(name, []).append(seconds)
                            if span.get("status", {}).get("code") == 2:
                                errors[name] = errors.get(name, 0) + 1
    out = {}
    for name, values in durations.items():
        array = np.array(values)
        p50, p95 = np.percentile(array, [50, 95])
        out[name] = {
            "count": len(array),
            "errors": errors.get(name, 0),
            "mean": array.mean(),
            "p50": p50,
            "p95": p95,
        }
    print(json.dumps({"json": loads.__module__, "names": out}))


def pandas_child(data_dir: Path) -> None:
    """The route users take today: read_json(lines=True) + json_normalize + groupby."""
    import pandas as pd

    frames = []
    for path in sorted(data_dir.glob("traces/*/*.jsonl")):
        requests = pd.read_json(path, lines=True, dtype=False)
        spans = pd.json_normalize(
            requests.to_dict("records"), record_path=["resourceSpans", "scopeSpans", "spans"]
        )
        frames.append(spans)
    table = pd.concat(frames, ignore_index=True)
    table["duration"] = (
        table["endTimeUnixNano"].astype("int64") - table["startTimeUnixNano"].astype("int64")
    ) / 1e9
    table["error"] = table["status.code"] == 2
    grouped = table.groupby("name").agg(
        count=("duration", "count"),
        errors=("error", "sum"),
        mean=("duration", "mean"),
        p50=("duration", "median"),
        p95=("duration", lambda s: s.quantile(0.95)),
        max=("duration", "max"),
    )
    out = {name: {k: float(v) for k, v in row.items()} for name, row in grouped.iterrows()}
    print(json.dumps({"names": out}))


# --- measuring ------------------------------------------------------------------------------------------
@dataclass
class Sample:
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    stdout: str


@dataclass
class Row:
    route: str
    spans: int
    samples: list[Sample] = field(default_factory=list)
    note: str = ""

    def median(self, attribute: str) -> float:
        return statistics.median(getattr(s, attribute) for s in self.samples)


def _tree_pss_kb(root: int) -> int:
    """Sum of PSS over ``root`` and its descendants (pool workers included).

    PSS, not RSS: forked workers share the parent's pages, and summing their RSS would count those
    pages once per process. PSS splits each shared page among its sharers, so the sum is the
    memory the command really holds.
    """
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parents[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    members, frontier = {root}, [root]
    while frontier:
        current = frontier.pop()
        for pid, parent in parents.items():
            if parent == current and pid not in members:
                members.add(pid)
                frontier.append(pid)
    total = 0
    for pid in members:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as handle:
                total += next(int(line.split()[1]) for line in handle if line.startswith("Pss:"))
        except (OSError, StopIteration):
            continue
    return total


def measure(command: list[str], env: dict[str, str]) -> Sample:
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_pss_kb(process.pid))
            done.wait(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"{command[:3]} failed ({process.returncode}): {stderr.strip()[-500:]}")
    return Sample(wall, 0.0, peak / 1024, stdout)


def measure_with_cpu(command: list[str], env: dict[str, str]) -> Sample:
    """:func:`measure` plus the CPU seconds of the command and everything it waited for."""
    before = os.times()
    result = measure(command, env)
    after = os.times()
    result.cpu_s = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return result


def _env(with_peers: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MODELTEL_"))}
    env["PYTHONPATH"] = str(DEPS_DIR) if with_peers else ""
    return env


def _answers(route: str, stdout: str) -> dict[str, tuple[int, int, float]]:
    """``name -> (count, errors, p50)`` from each route's output, to check that they agree."""
    document = json.loads(stdout)
    if route.startswith("modeltel show"):
        return {r["name"]: (r["count"], r["errors"], r["p50_s"]) for r in document["spans"]}
    if route.startswith("modeltel stats"):
        return {g["group"]: (g["calls"], g["errors"], g["latency_s"]["p50"]) for g in document["groups"]}
    return {n: (int(v["count"]), int(v["errors"]), v["p50"]) for n, v in document["names"].items()}


def _agree(rows: list[Row]) -> list[str]:
    problems = []
    by_size: dict[int, list[Row]] = {}
    for row in rows:
        by_size.setdefault(row.spans, []).append(row)
    for size, group in by_size.items():
        reference = _answers(group[0].route, group[0].samples[0].stdout)
        for row in group[1:]:
            other = _answers(row.route, row.samples[0].stdout)
            for name, (count, errors, p50) in reference.items():
                got = other.get(name)
                if got is None or got[:2] != (count, errors) or abs(got[2] - p50) > 0.01 * p50:
                    problems.append(
                        f"{size:,} spans: {row.route} says {name} = {got}, "
                        f"{group[0].route} says {(count, errors, p50)}"
                    )
    return problems


def run(
    sizes: list[int], repeats: int, pandas_max: int, keep: Path | None, baseline: Path | None = None
) -> int:
    have_pandas = (
        subprocess.run(
            [sys.executable, "-c", "import pandas, orjson"], env=_env(True), capture_output=True
        ).returncode
        == 0
    )
    print(describe())
    print(
        f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
        "(2 cores shared with other sessions)"
    )
    rows: list[Row] = []
    workdir = Path(tempfile.mkdtemp(prefix="modeltel-bench-read-"))
    try:
        for spans in sizes:
            data = (keep or workdir) / f"data-{spans}"
            if not (data / "traces").is_dir():
                size = generate(data, spans)
                print(f"generated {spans:,} spans: {size / 1e6:,.0f} MB in {FILES} files under {data}")
            size_mb = sum(p.stat().st_size for p in data.glob("traces/*/*.jsonl")) / 1e6
            routes: dict[str, tuple[list[str], bool | Path]] = {
                "modeltel show": (
                    [str(MODELTEL), "show", "--data-dir", str(data), "--format", "json"],
                    False,
                ),
                "modeltel stats --by name": (
                    [str(MODELTEL), "stats", "--by", "name", "--data-dir", str(data), "--format", "json"],
                    False,
                ),
                "plain loop (orjson + numpy)": (
                    [sys.executable, __file__, "--plain-child", str(data)],
                    True,
                ),
            }
            if baseline is not None:  # the same commands on another checkout's src, interleaved
                for name in ("modeltel show", "modeltel stats --by name"):
                    routes[f"{name} (baseline)"] = (routes[name][0], baseline)
            size_rows = {name: Row(name, spans) for name in routes}
            for _ in range(repeats):  # interleaved: drift from other work hits every route alike
                for name, (command, peers) in routes.items():
                    env = _env(peers is True)
                    if isinstance(peers, Path):
                        env["PYTHONPATH"] = str(peers)
                    size_rows[name].samples.append(measure_with_cpu(command, env))
            plain = size_rows["plain loop (orjson + numpy)"]
            if "orjson" not in plain.samples[0].stdout.split('"json": "', 1)[1][:10]:
                plain.route = "plain loop (json + numpy)"
                plain.note = "orjson absent: stdlib json"
            rows.extend(size_rows.values())
            if have_pandas and spans <= pandas_max:
                pandas_row = Row("pandas read_json+json_normalize+groupby", spans, note="1 run")
                pandas_row.samples.append(
                    measure_with_cpu([sys.executable, __file__, "--pandas-child", str(data)], _env(True))
                )
                rows.append(pandas_row)
            elif not have_pandas:
                rows.append(
                    Row(
                        "pandas read_json+json_normalize+groupby",
                        spans,
                        note="skipped: run with --install-peers",
                    )
                )
            else:
                rows.append(
                    Row(
                        "pandas read_json+json_normalize+groupby",
                        spans,
                        note=f"skipped above {pandas_max:,} spans (--pandas-max)",
                    )
                )
            print(f"measured {spans:,} spans ({size_mb:,.0f} MB)")
    finally:
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    startup = [measure_with_cpu([str(MODELTEL), "show", "--help"], _env(False)) for _ in range(repeats)]
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    print_table(rows, repeats)
    print(
        f"startup included in every modeltel row: `modeltel show --help` takes "
        f"{statistics.median(s.wall_s for s in startup):.2f} s wall, "
        f"{statistics.median(s.cpu_s for s in startup):.2f} s CPU (median of {repeats})"
    )
    problems = _agree([r for r in rows if r.samples])
    for problem in problems:
        print(f"DISAGREEMENT: {problem}")
    if not problems:
        print("every route gave the same count and errors per span name, and p50 within 1%")
    return 1 if problems else 0


def print_table(rows: list[Row], repeats: int) -> None:
    print(
        f"| route | spans | wall s (median of {repeats}) | CPU s | peak PSS MB (tree) | speed vs plain loop "
        "| targets |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    plains = {r.spans: r for r in rows if r.route.startswith("plain loop") and r.samples}
    for row in rows:
        if not row.samples:
            print(f"| {row.route} | {row.spans:,} | - | - | - | - | {row.note} |")
            continue
        wall, cpu, rss = row.median("wall_s"), row.median("cpu_s"), max(s.peak_rss_mb for s in row.samples)
        plain = plains.get(row.spans)
        ratio = f"{plain.median('wall_s') / wall:.2g}x" if plain and plain is not row else ""
        if row.route.startswith("modeltel") and row.spans >= 1_000_000 and "baseline" not in row.route:
            ok = wall <= TARGET_WALL_S and rss <= TARGET_RSS_MB
            target = f"≤{TARGET_WALL_S} s, ≤{TARGET_RSS_MB:.0f} MB: {'met' if ok else 'MISSED'}"
        else:
            target = row.note
        print(f"| {row.route} | {row.spans:,} | {wall:.2f} | {cpu:.2f} | {rss:.0f} | {ratio} | {target} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 spans only")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pandas-max", type=int, default=1_000_000, help="skip pandas above this many spans")
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the generated data dirs here")
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="SRC",
        help="also run show/stats with PYTHONPATH=SRC (another checkout's src/, e.g. from git archive), "
        "interleaved with this tree's runs: before/after under the same load",
    )
    parser.add_argument(
        "--install-peers", action="store_true", help=f"pip install pandas and orjson into {DEPS_DIR}"
    )
    parser.add_argument("--plain-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--pandas-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain_child:
        plain_child(args.plain_child)
        return 0
    if args.pandas_child:
        pandas_child(args.pandas_child)
        return 0
    if args.install_peers:
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(DEPS_DIR),
            *PEERS,
        ]
        subprocess.run(command, check=True)
    sizes = [100_000] if args.quick else [100_000, 1_000_000]
    return run(sizes, args.repeats, args.pandas_max, args.keep, args.baseline)


if __name__ == "__main__":
    sys.exit(main())
