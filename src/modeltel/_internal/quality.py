"""Quality statistics of a classifier's batch outputs, vectorised with numpy (no OpenTelemetry here).

:func:`quality_stats` turns a probability matrix (plus optional predicted labels and input features)
into confidence, entropy, reject and missingness figures; a 1,000,000 x 10 matrix takes a fraction
of a second. :class:`QualityAccumulator` folds batches into a job-level snapshot in bounded memory.

Input the caller got wrong (not numbers, wrong shape, rows that are not probabilities, mismatched
lengths) is a ``ValueError`` naming the argument. Odd data (NaN rows) is left out and reported in
``warnings``.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PROBABILITY_ATOL = 1e-3
"""How far a row sum may be from 1 (float32 softmax over many classes is well within this)."""

CONFIDENCE_BINS = 1000
"""Job-level confidence percentiles come from a histogram of this many bins over [0, 1]."""

MAX_TRACKED = 1000
"""A job tracks at most this many distinct classes and feature columns; the rest go to ``(other)``."""

OTHER = "(other)"
_CHUNK_ROWS = 65_536


@dataclass(frozen=True)
class QualityStats:
    """Figures for one batch (or, from :meth:`QualityAccumulator.snapshot`, one job)."""

    n: int
    """Rows the statistics cover (rows with NaN probabilities are left out)."""
    confidence_mean: float | None = None
    confidence_median: float | None = None
    confidence_p5: float | None = None
    confidence_p95: float | None = None
    confidence_std: float | None = None
    entropy_mean: float | None = None
    """Mean Shannon entropy of the rows, in nats."""
    rejects: int | None = None
    reject_rate: float | None = None
    """None when no ``reject_label`` was given."""
    class_counts: dict[str, int] = field(default_factory=dict)
    """Predicted classes, most frequent first."""
    feature_missing: dict[str, float] = field(default_factory=dict)
    """Fraction of missing values per feature column, in column order."""
    warnings: tuple[str, ...] = ()
    confidence: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    """Per-row confidence (top-class probability), for histograms; empty in a job snapshot."""
    entropy: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    """Per-row entropy, for histograms; empty in a job snapshot."""
    missing_counts: dict[str, int] = field(default_factory=dict, repr=False)
    missing_rows: int = 0

    @property
    def class_fractions(self) -> dict[str, float]:
        total = sum(self.class_counts.values())
        return {k: v / total for k, v in self.class_counts.items()} if total else {}


def _probability_matrix(probs: Any) -> np.ndarray:
    try:
        array = np.asarray(probs)
        if array.dtype.kind not in "fiub":
            array = array.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"probs: expected a numeric array, got {type(probs).__name__} ({exc})") from None
    if array.dtype.kind != "f":
        array = array.astype(np.float64)
    if array.ndim == 1:
        # One probability per row: a binary classifier's P(positive).
        array = np.column_stack((1.0 - array, array))
    if array.ndim != 2:
        raise ValueError(f"probs: expected shape (n_rows, n_classes), got {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"probs: empty batch, shape {array.shape}")
    return array


def _check_probabilities(probs: np.ndarray, row_sums: np.ndarray) -> None:
    low, high = float(probs.min()), float(probs.max())
    if low < -PROBABILITY_ATOL or high > 1.0 + PROBABILITY_ATOL:
        raise ValueError(
            f"probs: values must lie in [0, 1], found {low:.4g} … {high:.4g}; pass probabilities "
            "(e.g. softmax or predict_proba output), not logits or scores"
        )
    off = np.abs(row_sums - 1.0) > PROBABILITY_ATOL
    if off.any():
        row = int(np.argmax(off))
        raise ValueError(
            f"probs: {int(off.sum())} of {row_sums.size} rows do not sum to 1 (row {row} sums to "
            f"{float(row_sums[row]):.6g}); pass per-row probabilities"
        )


def _entropy(probs: np.ndarray) -> np.ndarray:
    out = np.empty(probs.shape[0], dtype=np.float64)
    for start in range(0, probs.shape[0], _CHUNK_ROWS):
        block = probs[start : start + _CHUNK_ROWS]
        logs = np.log(block, where=block > 0, out=np.zeros(block.shape, dtype=np.float64))
        out[start : start + _CHUNK_ROWS] = -np.einsum("ij,ij->i", block, logs)
    return out


def _count_labels(labels: np.ndarray) -> dict[str, int]:
    if labels.dtype.kind == "O":
        counted: dict[Any, int] = collections.Counter(labels.tolist())
    else:
        values, counts = np.unique(labels, return_counts=True)
        counted = dict(zip(values.tolist(), counts.tolist(), strict=True))
    ordered = sorted(counted.items(), key=lambda kv: (-kv[1], str(kv[0])))
    return {str(k): int(v) for k, v in ordered}


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _missing_mask(features: Any, n_rows: int) -> tuple[np.ndarray, list[str]]:
    if hasattr(features, "isna"):
        mask = np.asarray(features.isna(), dtype=bool)
        if hasattr(features, "columns"):
            names = [str(c) for c in features.columns]
        else:
            names = [str(getattr(features, "name", None) or "0")]
    else:
        try:
            array = np.asarray(features)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"features: expected an array or a DataFrame ({exc})") from None
        if array.dtype.kind in "fc":
            mask = np.isnan(array)
        elif array.dtype.kind == "O":
            mask = np.frompyfunc(_is_missing, 1, 1)(array).astype(bool)
        else:
            mask = np.zeros(array.shape, dtype=bool)
        names = []
    if mask.ndim == 1:
        mask = mask.reshape(-1, 1)
    if mask.ndim != 2:
        raise ValueError(f"features: expected shape (n_rows, n_features), got {mask.shape}")
    if mask.shape[0] != n_rows:
        raise ValueError(f"features: {mask.shape[0]} rows, but probs has {n_rows}")
    if len(names) != mask.shape[1]:
        names = [str(i) for i in range(mask.shape[1])]
    return mask, names


def quality_stats(
    probs: Any,
    labels: Sequence[Any] | np.ndarray | None = None,
    reject_label: Any = None,
    features: Any = None,
) -> QualityStats:
    """Statistics of one batch of classifier outputs.

    ``probs``: (n, k) probabilities (or (n,) for a binary classifier's P(positive)). ``labels``: the
    n labels the caller finally assigned (after any reject logic); the class distribution counts
    them, and rows equal to ``reject_label`` are rejects. Without labels, the predicted class is the
    arg-max column. ``features``: (n, f) inputs, a numpy array or anything with ``.isna()``.
    """
    matrix = _probability_matrix(probs)
    n_rows = matrix.shape[0]
    warnings: list[str] = []
    row_sums = matrix.sum(axis=1)
    bad = np.isnan(row_sums)
    keep: np.ndarray | None = None
    if bad.any():
        keep = ~bad
        warnings.append(f"probs: {int(bad.sum())} of {n_rows} rows contain NaN and are left out")
        matrix, row_sums = matrix[keep], row_sums[keep]
    label_array: np.ndarray | None = None
    if labels is not None:
        label_array = np.asarray(labels)
        if label_array.ndim != 1 or label_array.shape[0] != n_rows:
            raise ValueError(
                f"labels: expected {n_rows} labels (one per row of probs), got shape {label_array.shape}"
            )
        if keep is not None:
            label_array = label_array[keep]
    elif reject_label is not None:
        raise ValueError("reject_label: needs labels (the label assigned to each row) to count rejects")
    missing: dict[str, int] = {}
    if features is not None:
        mask, names = _missing_mask(features, n_rows)
        missing = dict(zip(names, mask.sum(axis=0).tolist(), strict=True))
    if matrix.shape[0] == 0:
        return QualityStats(
            n=0,
            warnings=tuple(warnings),
            missing_counts=missing,
            missing_rows=n_rows,
            feature_missing={k: v / n_rows for k, v in missing.items()},
        )
    _check_probabilities(matrix, row_sums)
    top = matrix.argmax(axis=1)
    confidence = np.take_along_axis(matrix, top[:, None], axis=1)[:, 0].astype(np.float64)
    p5, p50, p95 = np.percentile(confidence, [5, 50, 95]).tolist()
    entropy = _entropy(matrix)
    rejects = rate = None
    if label_array is not None:
        counts = _count_labels(label_array)
        if reject_label is not None:
            rejects = int(np.count_nonzero(label_array == reject_label))
            rate = rejects / label_array.shape[0]
    else:
        binned = np.bincount(top, minlength=matrix.shape[1])
        order = np.argsort(-binned, kind="stable")
        counts = {str(int(i)): int(binned[i]) for i in order if binned[i]}
    return QualityStats(
        n=int(matrix.shape[0]),
        confidence_mean=float(confidence.mean()),
        confidence_median=float(p50),
        confidence_p5=float(p5),
        confidence_p95=float(p95),
        confidence_std=float(confidence.std()),
        entropy_mean=float(entropy.mean()),
        rejects=rejects,
        reject_rate=rate,
        class_counts=counts,
        feature_missing={k: v / n_rows for k, v in missing.items()},
        warnings=tuple(warnings),
        confidence=confidence,
        entropy=entropy,
        missing_counts=missing,
        missing_rows=n_rows if features is not None else 0,
    )


class QualityAccumulator:
    """Folds batches into a job snapshot: exact means and rates, percentiles to 1/1000, bounded memory."""

    def __init__(self) -> None:
        self.n = 0
        self._sum = 0.0
        self._sumsq = 0.0
        self._entropy_sum = 0.0
        self._bins = np.zeros(CONFIDENCE_BINS, dtype=np.int64)
        self._rejects = 0
        self._reject_rows = 0
        self._classes: collections.Counter[str] = collections.Counter()
        self._missing: dict[str, int] = {}
        self._missing_rows = 0

    def add(self, stats: QualityStats) -> None:
        confidence = stats.confidence
        if confidence.size:
            self.n += int(confidence.size)
            self._sum += float(confidence.sum())
            self._sumsq += float(np.dot(confidence, confidence))
            self._entropy_sum += float(stats.entropy.sum())
            index = np.minimum((confidence * CONFIDENCE_BINS).astype(np.intp), CONFIDENCE_BINS - 1)
            self._bins += np.bincount(np.maximum(index, 0), minlength=CONFIDENCE_BINS)
        if stats.rejects is not None:
            self._rejects += stats.rejects
            self._reject_rows += stats.n
        for name, count in stats.class_counts.items():
            key = name if name in self._classes or len(self._classes) < MAX_TRACKED else OTHER
            self._classes[key] += count
        if stats.missing_rows:
            self._missing_rows += stats.missing_rows
            for name, count in stats.missing_counts.items():
                key = name if name in self._missing or len(self._missing) < MAX_TRACKED else OTHER
                self._missing[key] = self._missing.get(key, 0) + count

    def _percentile(self, cumulative: np.ndarray, q: float) -> float:
        rank = q / 100.0 * self.n
        index = int(np.searchsorted(cumulative, max(rank, 1), side="left"))
        return (min(index, CONFIDENCE_BINS - 1) + 0.5) / CONFIDENCE_BINS

    def snapshot(self) -> QualityStats:
        """The job's figures so far (percentiles are bin centres, within 0.0005 of the exact value)."""
        missing = {k: v / self._missing_rows for k, v in self._missing.items()} if self._missing_rows else {}
        ordered = dict(sorted(self._classes.items(), key=lambda kv: (-kv[1], kv[0])))
        rejects = self._rejects if self._reject_rows else None
        rate = self._rejects / self._reject_rows if self._reject_rows else None
        if not self.n:
            return QualityStats(
                n=0, rejects=rejects, reject_rate=rate, class_counts=ordered, feature_missing=missing
            )
        mean = self._sum / self.n
        cumulative = np.cumsum(self._bins)
        return QualityStats(
            n=self.n,
            confidence_mean=mean,
            confidence_median=self._percentile(cumulative, 50),
            confidence_p5=self._percentile(cumulative, 5),
            confidence_p95=self._percentile(cumulative, 95),
            confidence_std=math.sqrt(max(self._sumsq / self.n - mean * mean, 0.0)),
            entropy_mean=self._entropy_sum / self.n,
            rejects=rejects,
            reject_rate=rate,
            class_counts=ordered,
            feature_missing=missing,
        )
