"""The bundled example behind ``modeltel demo``: the three domains on a small epidemic problem.

1. A sweep of a stochastic SIR model over (beta, gamma, seed) with a result cache: a second pass
   over part of the grid hits the cache, and one parameter set fails on purpose.
2. A classifier's batch inference (nearest-centroid softmax in numpy) with a reject threshold and
   some missing feature values.
3. LLM-style ``generate`` calls with token usage, time to first token and cost: simulated, no network.
4. A calibration of (beta, gamma) against synthetic observations by a small evolution strategy,
   written as an ask → evaluate → tell loop. It runs last, so ``modeltel show --last`` shows it.

Given a process pool, the sweep's fresh runs and each calibration evaluation's batches run in the
pool's workers, with nothing added for telemetry: modeltel's multiprocessing integration carries the
context, so the workers' ``simulation.run`` spans join the job's trace.

Only the public domain API is used, exactly as a user would; telemetry setup is the caller's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor
from typing import Any

import numpy as np

from modeltel import calibration, inference, simulation

POPULATION = 10_000
DAYS = 120
TRUE_PARAMS = (0.30, 0.10)
CLASSES = np.array(["cat", "dog", "bird", "fish"])
FEATURES = ("weight_kg", "length_cm", "ear_ratio", "tail_cm", "speed_kmh", "night_activity")
"""The classifier's input columns, by name: the quality snapshot names its missing columns by them."""
REJECT_LABEL = "unknown"
REJECT_BELOW = 0.6


class Features:
    """Rows of named feature columns: the two things a quality snapshot reads from a DataFrame
    (``isna()`` and ``columns``), so the demo names its columns without needing pandas."""

    def __init__(self, values: np.ndarray, columns: tuple[str, ...]) -> None:
        self.values, self.columns = values, list(columns)

    def isna(self) -> np.ndarray:
        missing: np.ndarray = np.isnan(self.values)
        return missing


class DivergedError(RuntimeError):
    """A parameter set the model cannot run (here: no recovery at all)."""


def sir_stochastic(beta: float, gamma: float, seed: int, days: int = DAYS) -> np.ndarray:
    """Infected fraction per day of a chain-binomial SIR epidemic."""
    if gamma <= 0:
        raise DivergedError(f"gamma={gamma}: nobody ever recovers, the run cannot end")
    rng = np.random.default_rng(seed)
    s, i = POPULATION - 10, 10
    infected = np.empty(days)
    for day in range(days):
        new_infections = rng.binomial(s, 1.0 - np.exp(-beta * i / POPULATION))
        recoveries = rng.binomial(i, 1.0 - np.exp(-gamma))
        s -= new_infections
        i += new_infections - recoveries
        infected[day] = i / POPULATION
    return infected


def sir_deterministic(beta: np.ndarray, gamma: np.ndarray, days: int = DAYS) -> np.ndarray:
    """Infected fraction per day for many (beta, gamma) at once: shape (len(beta), days)."""
    s = np.full(beta.shape, 1.0 - 10 / POPULATION)
    i = np.full(beta.shape, 10 / POPULATION)
    curves = np.empty((beta.size, days))
    for day in range(days):
        new = beta * s * i
        s, i = s - new, i + new - gamma * i
        curves[:, day] = i
    return curves


def run_sweep(pool: Executor | None = None) -> None:
    """Simulation sweep with a cache: 64 fresh runs, 16 cached repeats, one failing run."""
    betas, gammas, seeds = (0.2, 0.3, 0.4, 0.5), (0.05, 0.1, 0.2, 0.25), (1, 2, 3, 4)
    grid = [(b, g, s) for b in betas for g in gammas for s in seeds]
    fresh = [*grid, (0.3, 0.0, 1)]  # the last one diverges: recorded on its span, the sweep goes on
    repeats = grid[::4]
    cache: dict[tuple[float, float, int], np.ndarray] = {}
    with simulation.job("sir-sweep", n_tasks=len(fresh) + len(repeats)):
        for key, curve in zip(fresh, _map(pool, fresh_run, *zip(*fresh, strict=True)), strict=True):
            if curve is not None:
                cache[key] = curve
        for beta, gamma, seed in repeats:
            with simulation.run(model="sir", param_id=_param_id(beta, gamma), seed=seed) as run:
                run.cache(hit=True)
                _record_curve(run, cache[(beta, gamma, seed)])


def fresh_run(beta: float, gamma: float, seed: int) -> np.ndarray | None:
    """One uncached run (in a pool worker when there is a pool); None when the model cannot run."""
    try:
        with simulation.run(model="sir", param_id=_param_id(beta, gamma), seed=seed) as run:
            run.cache(hit=False)
            with run.phase("integrate"):
                curve = sir_stochastic(beta, gamma, seed)
            _record_curve(run, curve)
            return curve
    except DivergedError:
        return None


def _param_id(beta: float, gamma: float) -> str:
    return f"b{beta:g}-g{gamma:g}"


def _record_curve(run: simulation.SimulationRun, curve: np.ndarray) -> None:
    run.record(peak_infected=float(curve.max()), peak_day=int(curve.argmax()), days=DAYS)


def _map(pool: Executor | None, fn: Callable[..., Any], *iterables: Iterable[Any]) -> Iterator[Any]:
    return pool.map(fn, *iterables) if pool is not None else map(fn, *iterables)


def run_calibration(
    iterations: int = 30, population: int = 24, seed: int = 0, pool: Executor | None = None, batches: int = 1
) -> tuple[float, float]:
    """Fit (beta, gamma) to noisy synthetic data; returns the best parameters found.

    Each evaluation splits the candidates into ``batches``, one ``simulation.run`` each, mapped over
    ``pool`` when given.
    """
    rng = np.random.default_rng(seed)
    truth = sir_deterministic(np.array([TRUE_PARAMS[0]]), np.array([TRUE_PARAMS[1]]))[0]
    observed = truth + rng.normal(0.0, 0.002, truth.shape)
    mean, sigma = np.array([0.5, 0.2]), np.array([0.15, 0.05])
    best, best_loss = mean.copy(), np.inf
    with calibration.job("fit-sir", algorithm="evolution-strategy", max_iterations=iterations) as job:
        for _ in range(iterations):
            with job.iteration() as it:
                with it.ask() as ask:
                    candidates = np.clip(mean + sigma * rng.standard_normal((population, 2)), 0.01, 1.0)
                    ask.record(n_params=len(candidates))
                with it.evaluate(n=len(candidates)):
                    parts = np.array_split(candidates, batches)
                    losses = np.concatenate(
                        list(_map(pool, evaluate_batch, parts, [observed] * len(parts), range(len(parts))))
                    )
                with it.tell() as tell:
                    tell.losses(losses)
                    elite = candidates[np.argsort(losses)[: population // 4]]
                    mean, sigma = elite.mean(axis=0), np.maximum(elite.std(axis=0), 1e-3)
                    if losses.min() < best_loss:
                        best, best_loss = candidates[int(losses.argmin())], float(losses.min())
    return float(best[0]), float(best[1])


def evaluate_batch(candidates: np.ndarray, observed: np.ndarray, index: int) -> np.ndarray:
    """Mean squared error of each candidate (beta, gamma) against ``observed``: one ``simulation.run``."""
    with simulation.run(model="sir-ode", param_id=f"batch-{index}", candidates=len(candidates)) as run:
        curves = sir_deterministic(candidates[:, 0], candidates[:, 1])
        losses: np.ndarray = ((curves - observed) ** 2).mean(axis=1)
        run.record(min_loss=float(losses.min()))
    return losses


def run_inference(batches: int = 8, batch_size: int = 20_000, seed: int = 0) -> None:
    """Batch classification with confidence, rejects below 0.6, and missing feature values."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 1.6, (len(CLASSES), 6))
    with inference.job("classifier-nightly", model="centroid-v1"):
        for _ in range(batches):
            truth = rng.integers(0, len(CLASSES), batch_size)
            raw = centers[truth] + rng.normal(0.0, 1.0, (batch_size, 6))
            raw[rng.random(batch_size) < 0.02, 3] = np.nan
            raw[rng.random(batch_size) < 0.005, 0] = np.nan
            with inference.predict(model="centroid-v1", framework="numpy") as p:
                features = np.where(np.isnan(raw), np.nanmean(raw, axis=0), raw)
                distances = ((features[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
                logits = -0.5 * distances
                probs = np.exp(logits - logits.max(axis=1, keepdims=True))
                probs /= probs.sum(axis=1, keepdims=True)
                labels = np.where(
                    probs.max(axis=1) < REJECT_BELOW, REJECT_LABEL, CLASSES[probs.argmax(axis=1)]
                )
                p.outputs(probs, labels=labels, reject_label=REJECT_LABEL, features=Features(raw, FEATURES))


PROMPTS = (
    "Summarise the calibration: which parameters fit the observed epidemic curve best?",
    "Explain the difference between the attack rate and the peak infected fraction.",
    "Which runs of the sweep hit the cache, and why does that matter for cost?",
    "Write a one-line status for the nightly classifier job.",
)


def run_llm(seed: int = 0) -> None:
    """Simulated chat calls: sleeps for time to first token and per output token; no network."""
    rng = np.random.default_rng(seed)
    for prompt in PROMPTS:
        with inference.generate(
            model="demo-llm-8b", provider="simulated", operation="chat", stream=True
        ) as g:
            input_tokens = 24 + len(prompt.split()) * 4 // 3
            ttft = float(rng.uniform(0.02, 0.06))
            time.sleep(ttft)
            output_tokens = int(rng.integers(40, 160))
            time.sleep(output_tokens * 0.0004)
            g.usage(
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                ttft_s=ttft,
                cost_usd=input_tokens * 0.15e-6 + output_tokens * 0.60e-6,
                response_model="demo-llm-8b-q4",
            )
            g.content(prompt=prompt, completion="(simulated answer)")


def run_all(pool: Executor | None = None, workers: int = 1) -> None:
    """Everything ``modeltel demo`` runs, in order; ``pool`` (of ``workers`` processes) for the sweep
    and the calibration's evaluations."""
    run_sweep(pool)
    run_inference()
    run_llm()
    run_calibration(pool=pool, batches=max(1, workers))
