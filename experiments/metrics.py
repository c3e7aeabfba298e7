"""k-shot accuracy, defined once for both experiments: shots seen, accuracy by shot, intervals.

"k-shot": an answer is given at k shots when its label was seen k times before it.
- Omniglot streams: `shots_seen` counts the earlier positions with the same label.
- The face protocol feeds one image of every class per iteration, so at iteration i
  every class has been seen i times (experiments.protocol.schedule).

Intervals are Student's t over independent repeats (or episodes): mean +- t(0.975,
n-1) * s / sqrt(n), with s the sample standard deviation (ddof=1), from
scipy.stats.t. For the face protocol the repeats are independent shuffles of the same
dataset, so this is the uncertainty of the mean over shuffles of *this* dataset, not
over datasets. With one value there is no interval (NaN); when every value is the same
the interval has zero width.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

CONFIDENCE = 0.95
SUMMARY_COLUMNS = ["model", "shots", "repeats", "mean", "ci_low", "ci_high", "std", "mean_n_eval", "mean_memory_bytes"]


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


def summarize(results: pd.DataFrame, model_order: list[str] | None = None) -> pd.DataFrame:
    """One row per model and shots of a results.csv frame: repeats, mean, CI, std, mean n_eval and footprint."""
    order = model_order or list(dict.fromkeys(results["model"]))
    rows = []
    for model in order:
        mine = results[results["model"] == model]
        for shots, group in mine.groupby("shots", sort=True):
            mean, low, high = mean_ci(group["accuracy"].to_numpy())
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
