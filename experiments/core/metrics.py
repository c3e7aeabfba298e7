"""k-shot accuracy, defined once for both experiments: shots seen, accuracy by shot, intervals.

"k-shot": an answer is given at k shots when its label was seen k times before it.
- Omniglot streams: `shots_seen` counts the earlier positions with the same label.
- The face protocol feeds one image of every class per iteration, so at iteration i
  every class has been seen i times (experiments.faces.protocol.schedule).

Face-protocol intervals (`accuracy_interval`, `paired_difference`, used by `summarize`
and `paired_differences`):

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

`mean_ci` (Student's t over independent values) remains for Omniglot's episode means.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

CONFIDENCE = 0.95
SUMMARY_COLUMNS = ["model", "shots", "repeats", "mean", "ci_low", "ci_high", "std", "mean_n_eval", "mean_memory_bytes"]
PAIRED_COLUMNS = ["model", "reference", "shots", "repeats", "mean_difference", "ci_low", "ci_high", "p_value", "verdict"]


def shots_seen(labels: np.ndarray) -> np.ndarray:
    """For each position along axis 0, how many earlier positions hold the same label.

    labels: [L] or [L, B] (B independent sequences). Returns int64 of the same shape.
    Example: [3, 1, 3, 3, 1] -> [0, 0, 1, 2, 1].
    """
    labels = np.asarray(labels)
    squeeze = labels.ndim == 1
    seq = labels[:, None] if squeeze else labels
    if seq.ndim != 2:
        raise ValueError(f"labels must be [L] or [L, B], got shape {labels.shape}")
    counts = np.zeros(seq.shape, dtype=np.int64)
    for b in range(seq.shape[1]):
        seen: dict = {}
        for t, label in enumerate(seq[:, b].tolist()):
            counts[t, b] = seen.get(label, 0)
            seen[label] = counts[t, b] + 1
    return counts[:, 0] if squeeze else counts


def accuracy_by_shot(correct: np.ndarray, shots: np.ndarray, max_shot: int) -> list[float | None]:
    """Accuracy at 0, 1, ..., max_shot earlier showings (`shots` from `shots_seen`); None where none."""
    correct, shots = np.asarray(correct), np.asarray(shots)
    out = []
    for k in range(max_shot + 1):
        mask = shots == k
        out.append(float(correct[mask].mean()) if mask.any() else None)
    return out


def mean_ci(values, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(mean, low, high) of the t-interval; low = high = NaN for fewer than 2 values."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise ValueError("mean_ci needs at least one value")
    mean = float(values.mean())
    if values.size < 2:
        return mean, float("nan"), float("nan")
    sem = float(values.std(ddof=1)) / np.sqrt(values.size)
    if sem == 0.0:
        return mean, mean, mean
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, df=values.size - 1)) * sem
    return mean, float(mean - half), float(mean + half)


def interval(values) -> dict:
    """mean_ci as a JSON-ready dict with the half width."""
    mean, low, high = mean_ci(values)
    return {"mean": mean, "ci_low": low, "ci_high": high, "half_width": (high - low) / 2}


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
    return values[_bootstrap_picks(values.size, resamples, seed)].mean(axis=1)


@functools.lru_cache(maxsize=4)
def _bootstrap_picks(size: int, resamples: int, seed: int) -> np.ndarray:
    """[resamples, size] indices of the resamples. They depend on the size and the seed only, so
    every interval of one report draws the same ones: drawn once, not once per interval (a
    run's report asks for a thousand intervals over 100 repeats)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, size]))
    picks = rng.integers(0, size, size=(resamples, size))
    picks.setflags(write=False)
    return picks


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


def proportion(correct: int, total: int) -> dict:
    """`correct` of `total` answers as a JSON-ready dict with its Wilson interval, which stays within [0, 1].

    For pooled answers (Omniglot's 1,000 tasks per cell), where a t-interval over
    per-task means would reach past 1 near 100%. Treats the answers as independent.
    """
    if total <= 0:
        raise ValueError(f"a proportion needs at least one answer, got total={total}")
    mean = correct / total
    low, high = wilson_interval(int(correct), int(total))
    low, high = max(0.0, min(low, mean)), min(1.0, max(high, mean))  # rounding can put an end past the mean
    return {"mean": mean, "ci_low": low, "ci_high": high, "half_width": (high - low) / 2}


def summarize(results: pd.DataFrame, model_order: list[str] | None = None) -> pd.DataFrame:
    """One row per model and shots of a results.csv frame: repeats, mean, CI, std, mean n_eval and footprint."""
    order = model_order or list(dict.fromkeys(results["model"]))
    rows = []
    for model in order:
        mine = results[results["model"] == model]
        for shots, group in mine.groupby("shots", sort=True):
            mean, low, high = accuracy_interval(group["n_correct"].to_numpy(), group["n_eval"].to_numpy())
            rows.append(
                {
                    "model": model,
                    "shots": int(shots),
                    "repeats": int(len(group)),
                    "mean": mean,
                    "ci_low": low,
                    "ci_high": high,
                    "std": float(group["accuracy"].std(ddof=1)) if len(group) > 1 else float("nan"),
                    "mean_n_eval": float(group["n_eval"].mean()),
                    "mean_memory_bytes": float(group["memory_bytes"].mean()),
                }
            )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def paired_differences(results: pd.DataFrame, reference: str = "baseline", model_order: list[str] | None = None) -> pd.DataFrame:
    """Every model against `reference`, per shot, on the repeats both ran (same shuffles).

    verdict: "wins" / "loses" when the paired interval excludes zero and the signed-rank
    test agrees (see `paired_difference`), else "within noise". Empty when `reference`
    did not run.
    """
    order = model_order or list(dict.fromkeys(results["model"]))
    base = results[results["model"] == reference].set_index(["repeat", "shots"])["accuracy"]
    rows = []
    for model in order:
        if model == reference or base.empty:
            continue
        mine = results[results["model"] == model].set_index(["repeat", "shots"])["accuracy"]
        joined = pd.concat([mine.rename("model"), base.rename("reference")], axis=1, join="inner")
        for shots, group in joined.groupby(level="shots", sort=True):
            d = paired_difference(group["model"].to_numpy(), group["reference"].to_numpy())
            verdict = ("wins" if d.mean > 0 else "loses") if d.resolved else "within noise"
            rows.append({"model": model, "reference": reference, "shots": int(shots), "repeats": d.repeats,
                         "mean_difference": d.mean, "ci_low": d.low, "ci_high": d.high, "p_value": d.p_value,
                         "verdict": verdict})
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)


def interval_verdict(low: float, high: float, difference: float, better: str, worse: str) -> str:
    """"within noise" when the difference's interval [low, high] holds zero, else `better` or `worse` by its sign."""
    if low <= 0 <= high:
        return "within noise"
    return better if difference > 0 else worse
