"""Intervals for k-shot accuracy that stay in [0, 1] and mean something with few repeats.

Why not Student's t over repeats (what the runner used first): with a handful of
repeats it leaves [0, 1] (an accuracy "between -1.8 and 2.9"), and when every repeat
scores the same it collapses to zero width, which reads as certainty.

`accuracy_interval`: a percentile bootstrap over repeats (repeats are the independent
unit: each is a fresh shuffle), widened where needed to the Wilson score interval of
the pooled evaluations. The bootstrap carries the between-shuffle variation; the
Wilson interval is a floor that says how much a finite number of evaluated images can
tell, so identical repeats still give an honest, non-zero width. Both live in [0, 1],
so their hull does too.

`paired_difference`: models run on the same shuffles (repeat r of every model uses the
shuffle of repeat r), so the comparison uses each repeat's difference, model minus
reference: its mean, a percentile bootstrap interval (inside [-1, 1]), and the
two-sided Wilcoxon signed-rank test. A difference counts as resolved only when the
interval excludes zero AND p < 1 - confidence; with fewer than six non-zero paired
differences the signed-rank test cannot reach p < 0.05, which is the intended guard
against verdicts from a few repeats.

Every bootstrap draws from a generator seeded from the data's shape and a fixed seed,
so the same results give the same interval bytes.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats as scipy_stats

CONFIDENCE = 0.95
RESAMPLES = 10_000
SEED = 20170000  # any fixed value: intervals must not change between reports of one run
ACCURACY_METHOD = "percentile bootstrap over repeats (10,000 resamples), at least the Wilson interval of the pooled evaluations"
PAIRED_METHOD = "per-repeat paired differences: percentile bootstrap (10,000 resamples) and Wilcoxon signed-rank test"


class Interval(NamedTuple):
    mean: float
    low: float
    high: float


class PairedDifference(NamedTuple):
    repeats: int  # repeats both models ran at this shot count
    mean: float  # mean of (model - reference) over those repeats
    low: float
    high: float
    p_value: float  # two-sided Wilcoxon signed-rank; 1.0 when every difference is zero
    resolved: bool  # interval excludes 0 and p < 1 - confidence


def _bootstrap_means(values: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(np.random.SeedSequence([seed, values.size]))
    picks = rng.integers(0, values.size, size=(resamples, values.size))
    return values[picks].mean(axis=1)


def _percentile_interval(values: np.ndarray, confidence: float, resamples: int, seed: int) -> tuple[float, float]:
    if values.size == 1:
        return float(values[0]), float(values[0])
    means = _bootstrap_means(values, resamples, seed)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def wilson_interval(correct: int, total: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of a proportion; (0, 1) when nothing was evaluated."""
    if total <= 0:
        return 0.0, 1.0
    z = float(scipy_stats.norm.ppf(0.5 + confidence / 2.0))
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * np.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def accuracy_interval(
    n_correct, n_eval, confidence: float = CONFIDENCE, resamples: int = RESAMPLES, seed: int = SEED
) -> Interval:
    """Mean of the per-repeat accuracies and its interval (see the module docstring)."""
    n_correct = np.asarray(n_correct, dtype=np.int64)
    n_eval = np.asarray(n_eval, dtype=np.int64)
    if n_correct.size == 0 or n_correct.shape != n_eval.shape:
        raise ValueError(f"need one n_correct and one n_eval per repeat, got {n_correct.shape} and {n_eval.shape}")
    accuracy = n_correct / np.maximum(n_eval, 1)
    low, high = _percentile_interval(accuracy, confidence, resamples, seed)
    wilson_low, wilson_high = wilson_interval(int(n_correct.sum()), int(n_eval.sum()), confidence)
    return Interval(float(accuracy.mean()), min(low, wilson_low), max(high, wilson_high))


def paired_difference(
    model_accuracy, reference_accuracy, confidence: float = CONFIDENCE, resamples: int = RESAMPLES, seed: int = SEED
) -> PairedDifference:
    """Compare two models repeat by repeat (same shuffles); arrays are aligned by repeat."""
    a = np.asarray(model_accuracy, dtype=np.float64)
    b = np.asarray(reference_accuracy, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"paired accuracies must be two equal-length 1-d arrays, got {a.shape} and {b.shape}")
    differences = a - b
    low, high = _percentile_interval(differences, confidence, resamples, seed)
    if np.all(differences == 0):
        p_value = 1.0
    else:
        p_value = float(scipy_stats.wilcoxon(differences, zero_method="wilcox", alternative="two-sided").pvalue)
    resolved = bool((low > 0 or high < 0) and p_value < 1.0 - confidence)
    return PairedDifference(int(a.size), float(differences.mean()), low, high, p_value, resolved)
