"""Mean accuracy and its 95% confidence interval per model and shots.

The interval is Student's t over repeats: mean +- t(0.975, n-1) * s / sqrt(n), with s
the sample standard deviation (ddof=1), from scipy.stats.t. Repeats are independent
shuffles of the same dataset, so this is the uncertainty of the mean over shuffles
of *this* dataset, not over datasets. With one repeat there is no interval (NaN);
when every repeat scored the same the interval has zero width.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

CONFIDENCE = 0.95
SUMMARY_COLUMNS = ["model", "shots", "repeats", "mean", "ci_low", "ci_high", "std", "mean_n_eval", "mean_memory_bytes"]


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


def proportion_ci(correct: int, total: int, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(proportion, low, high) of the Wilson score interval, which stays within [0, 1].

    For accuracies near 100% (Omniglot), where a t-interval over per-task means would
    reach past 1. It treats the `total` answers as independent trials.
    """
    from scipy.stats import binomtest

    if total <= 0:
        raise ValueError(f"proportion_ci needs at least one trial, got total={total}")
    if not 0 <= correct <= total:
        raise ValueError(f"correct must be between 0 and total={total}, got {correct}")
    interval = binomtest(int(correct), int(total)).proportion_ci(confidence_level=confidence, method="wilson")
    return correct / total, float(interval.low), float(interval.high)


def summarize(results: pd.DataFrame, model_order: list[str] | None = None) -> pd.DataFrame:
    """One row per model and shots: repeats, mean, CI bounds, std, mean n_eval and footprint."""
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


def summary_markdown(summary: pd.DataFrame) -> str:
    """A Markdown table: one row per model and shots, accuracy as mean [95% CI]."""
    lines = [
        "| model | shots | repeats | accuracy mean | 95% CI | memory bytes |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for row in summary.itertuples(index=False):
        ci = "n/a (1 repeat)" if np.isnan(row.ci_low) else f"[{row.ci_low:.4f}, {row.ci_high:.4f}]"
        lines.append(
            f"| {row.model} | {row.shots} | {row.repeats} | {row.mean:.4f} | {ci} | {row.mean_memory_bytes:.0f} |"
        )
    return "\n".join(lines) + "\n"
