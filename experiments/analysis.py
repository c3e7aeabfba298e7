"""Reading a finished run: who wins at which shot, and which classes get confused.

The notebooks and the README describe results in words. Those words are computed
here from the summary and confusion arrays, so that a sentence can never disagree
with the numbers it describes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PAIR_COLUMNS = ["iteration", "true", "predicted", "count", "rate_of_true"]
# Fewer repeats than this give no CI verdict: three identical repeats make a zero-width
# t-interval, which would otherwise read as a resolved difference.
MIN_REPEATS_FOR_VERDICT = 5


def compare_models(summary: pd.DataFrame, model_a: str, model_b: str) -> pd.DataFrame:
    """Per shot: both means, the difference a - b, and whether the 95% CIs overlap.

    `summary` is the frame of `experiments.metrics.summarize` (columns model, shots, mean,
    ci_low, ci_high, and optionally repeats). Only shots that both models reached are
    compared. `cis_overlap` is None (unknown) when a CI is NaN (one repeat) or either
    model has fewer than MIN_REPEATS_FOR_VERDICT repeats.
    """
    known = set(summary["model"])
    for name in (model_a, model_b):
        if name not in known:
            raise ValueError(f"model {name!r} is not in this run; models present: {sorted(known)}")
    a = summary[summary["model"] == model_a].set_index("shots")
    b = summary[summary["model"] == model_b].set_index("shots")
    rows = []
    for shots in sorted(set(a.index) & set(b.index)):
        ra, rb = a.loc[shots], b.loc[shots]
        bounds = [ra["ci_low"], ra["ci_high"], rb["ci_low"], rb["ci_high"]]
        repeats = [r.get("repeats", MIN_REPEATS_FOR_VERDICT) for r in (ra, rb)]
        if any(np.isnan(bounds)) or min(repeats) < MIN_REPEATS_FOR_VERDICT:
            overlap = None
        else:
            overlap = bool(ra["ci_low"] <= rb["ci_high"] and rb["ci_low"] <= ra["ci_high"])
        rows.append(
            {
                "shots": int(shots),
                f"mean_{model_a}": float(ra["mean"]),
                f"mean_{model_b}": float(rb["mean"]),
                "difference": float(ra["mean"] - rb["mean"]),
                "cis_overlap": overlap,
            }
        )
    return pd.DataFrame(rows)


def describe_comparison(summary: pd.DataFrame, model_a: str, model_b: str) -> str:
    """One sentence per shot saying which model leads, by how much, and if it is resolved.

    "Resolved" means the two 95% CIs do not overlap; overlapping CIs are reported as a
    tie within noise whatever the sign of the difference.
    """
    table = compare_models(summary, model_a, model_b)
    if table.empty:
        return f"{model_a} and {model_b} share no shot count, so they cannot be compared."
    sentences = []
    for row in table.itertuples(index=False):
        shots = row.shots
        diff = row.difference
        points = abs(diff) * 100
        if row.cis_overlap is None:
            verdict = f"(too few repeats for a CI verdict; at least {MIN_REPEATS_FOR_VERDICT} needed)"
        elif row.cis_overlap:
            verdict = "but the 95% CIs overlap, so this is within noise"
        else:
            verdict = "and the 95% CIs do not overlap"
        if diff == 0:
            sentences.append(f"At {shots} shots {model_a} and {model_b} score the same.")
            continue
        leader, other = (model_a, model_b) if diff > 0 else (model_b, model_a)
        sentences.append(f"At {shots} shots {leader} leads {other} by {points:.1f} points, {verdict}.")
    return "\n".join(sentences)


def top_confused_pairs(confusion: np.ndarray, class_names: list[str], top: int = 3) -> pd.DataFrame:
    """The `top` largest off-diagonal cells of each iteration's confusion matrix.

    `confusion` is int [repeats, iterations, C, C] (rows true, columns predicted), as
    stored in a run's confusion.npz; it is summed over repeats. `rate_of_true` is the
    count divided by how often the true class was evaluated in that iteration. Zero
    cells are never listed, so a perfect iteration contributes no rows.
    """
    confusion = np.asarray(confusion)
    if confusion.ndim != 4 or confusion.shape[2] != confusion.shape[3]:
        raise ValueError(f"confusion must have shape [repeats, iterations, C, C], got {confusion.shape}")
    if confusion.shape[2] != len(class_names):
        raise ValueError(f"confusion has {confusion.shape[2]} classes but {len(class_names)} class names were given")
    totals = confusion.sum(axis=0)
    rows = []
    for iteration, matrix in enumerate(totals):
        off_diagonal = matrix.astype(np.int64).copy()
        np.fill_diagonal(off_diagonal, 0)
        per_true = matrix.sum(axis=1)
        flat_order = np.argsort(-off_diagonal, axis=None, kind="stable")[:top]
        for flat in flat_order:
            true_id, predicted_id = np.unravel_index(flat, off_diagonal.shape)
            count = int(off_diagonal[true_id, predicted_id])
            if count == 0:
                break
            rows.append(
                {
                    "iteration": iteration,
                    "true": class_names[true_id],
                    "predicted": class_names[predicted_id],
                    "count": count,
                    "rate_of_true": count / int(per_true[true_id]),
                }
            )
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def describe_run(summary: pd.DataFrame, reference: str = "baseline") -> str:
    """A short reading of a whole run: every model against `reference`, shot by shot.

    Falls back to the first model as the reference when `reference` did not run.
    """
    models = list(dict.fromkeys(summary["model"]))
    if not models:
        return "The run has no results."
    if reference not in models:
        reference = models[0]
    others = [m for m in models if m != reference]
    if not others:
        return f"Only {reference} ran; there is nothing to compare it with."
    paragraphs = [f"{model} against {reference}:\n{describe_comparison(summary, model, reference)}" for model in others]
    return "\n\n".join(paragraphs)
