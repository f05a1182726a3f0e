"""quality_stats and QualityAccumulator against plain numpy reference computations."""

from __future__ import annotations

import numpy as np
import pytest

from modeltel._internal.quality import CONFIDENCE_BINS, MAX_TRACKED, OTHER, QualityAccumulator, quality_stats


def _probs(n: int, k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(k) * 0.5, size=n)
    return p


def test_batch_statistics_match_numpy() -> None:
    p = _probs(10_000, 5)
    stats = quality_stats(p)
    conf = p.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.nansum(p * np.log(p), axis=1)
    assert stats.n == 10_000
    assert stats.confidence_mean == pytest.approx(conf.mean())
    assert stats.confidence_median == pytest.approx(np.median(conf))
    assert stats.confidence_p5 == pytest.approx(np.percentile(conf, 5))
    assert stats.confidence_p95 == pytest.approx(np.percentile(conf, 95))
    assert stats.confidence_std == pytest.approx(conf.std())
    assert stats.entropy_mean == pytest.approx(entropy.mean())
    counts = np.bincount(p.argmax(axis=1), minlength=5)
    assert stats.class_counts == {str(i): int(counts[i]) for i in np.argsort(-counts, kind="stable")}
    assert stats.rejects is None and stats.reject_rate is None


def test_uniform_rows_have_log_k_entropy_and_zero_probabilities_are_fine() -> None:
    stats = quality_stats(np.full((4, 8), 1 / 8))
    assert stats.entropy_mean == pytest.approx(np.log(8))
    one_hot = quality_stats(np.eye(3))
    assert one_hot.entropy_mean == 0.0 and one_hot.confidence_mean == 1.0


def test_binary_vector_is_p_positive() -> None:
    stats = quality_stats(np.array([0.9, 0.2, 0.5]))
    assert stats.confidence_mean == pytest.approx((0.9 + 0.8 + 0.5) / 3)
    assert stats.class_counts == {"0": 2, "1": 1}  # a tie goes to the first column, as argmax does


def test_float32_and_int_inputs() -> None:
    p32 = _probs(100, 3).astype(np.float32)
    assert quality_stats(p32).n == 100
    assert quality_stats(np.array([[0, 1], [1, 0]])).confidence_mean == 1.0


def test_labels_rejects_and_object_labels() -> None:
    p = _probs(6, 2)
    labels = ["a", "unknown", "b", "unknown", "a", "a"]
    stats = quality_stats(p, labels=labels, reject_label="unknown")
    assert stats.rejects == 2 and stats.reject_rate == pytest.approx(2 / 6)
    assert stats.class_counts == {"a": 3, "unknown": 2, "b": 1}
    objects = quality_stats(p, labels=np.array([1, None, 1, None, 2, 1], dtype=object), reject_label=None)
    assert objects.class_counts == {"1": 3, "None": 2, "2": 1}
    ints = quality_stats(p, labels=np.array([3, -1, 3, -1, 3, 0]), reject_label=-1)
    assert ints.rejects == 2 and list(ints.class_counts) == ["3", "-1", "0"]


def test_feature_missingness_numpy_object_and_isna_duck_type() -> None:
    p = _probs(4, 2)
    floats = np.array([[1.0, np.nan], [2.0, np.nan], [np.nan, 1.0], [1.0, 1.0]])
    assert quality_stats(p, features=floats).feature_missing == {"0": 0.25, "1": 0.5}
    objects = np.array([["x", None], ["y", 1.0], [float("nan"), 2.0], ["z", 3.0]], dtype=object)
    assert quality_stats(p, features=objects).feature_missing == {"0": 0.25, "1": 0.25}
    assert quality_stats(p, features=np.ones((4, 2), dtype=int)).feature_missing == {"0": 0.0, "1": 0.0}

    class Frame:  # what pandas and polars-to-pandas frames offer: .isna() and .columns
        columns = ("age", "income")

        def isna(self) -> np.ndarray:
            return np.isnan(floats)

    assert quality_stats(p, features=Frame()).feature_missing == {"age": 0.25, "income": 0.5}


def test_all_nan_batch_gives_no_statistics_but_a_warning() -> None:
    stats = quality_stats(np.full((3, 2), np.nan))
    assert stats.n == 0 and stats.confidence_mean is None
    assert stats.warnings == ("probs: 3 of 3 rows contain NaN and are left out",)


def test_accumulator_matches_the_concatenated_batch() -> None:
    batches = [_probs(3000, 4, seed=s) for s in range(4)]
    labels = [np.where(b.max(axis=1) < 0.6, "reject", "ok") for b in batches]
    features = [np.where(np.random.default_rng(s).random((3000, 2)) < 0.1 * s, np.nan, 0.0) for s in range(4)]
    acc = QualityAccumulator()
    for b, lab, f in zip(batches, labels, features, strict=True):
        acc.add(quality_stats(b, labels=lab, reject_label="reject", features=f))
    snap = acc.snapshot()
    whole = quality_stats(
        np.concatenate(batches),
        labels=np.concatenate(labels),
        reject_label="reject",
        features=np.concatenate(features),
    )
    assert snap.n == whole.n == 12_000
    assert snap.confidence_mean == pytest.approx(whole.confidence_mean)
    assert snap.confidence_std == pytest.approx(whole.confidence_std)
    assert snap.entropy_mean == pytest.approx(whole.entropy_mean)
    half_bin = 0.5 / CONFIDENCE_BINS + 1e-9
    for q in ("confidence_p5", "confidence_median", "confidence_p95"):
        assert abs(getattr(snap, q) - getattr(whole, q)) <= half_bin + 1 / CONFIDENCE_BINS
    assert snap.reject_rate == pytest.approx(whole.reject_rate)
    assert snap.class_counts == whole.class_counts
    assert snap.feature_missing == pytest.approx(whole.feature_missing)


def test_accumulator_bounds_distinct_classes() -> None:
    acc = QualityAccumulator()
    p = np.full((MAX_TRACKED + 10, 2), 0.5)
    acc.add(quality_stats(p, labels=[f"c{i}" for i in range(MAX_TRACKED + 10)]))
    counts = acc.snapshot().class_counts
    assert len(counts) == MAX_TRACKED + 1 and counts[OTHER] == 10
