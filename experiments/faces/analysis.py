"""Reading a finished run: who wins at which shot, and which classes get confused.

The notebooks and the README describe results in words. Those words are computed
here from the paired differences (experiments.core.metrics.paired_differences) and the
confusion arrays, so that a sentence can never disagree with the numbers it describes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PAIR_COLUMNS = ["iteration", "true", "predicted", "count", "rate_of_true"]


def describe_comparison(paired: pd.DataFrame, model: str) -> str:
    """One sentence per shot: who leads, by how much, the paired interval, and the verdict.

    `paired` is the frame of `experiments.core.metrics.paired_differences` (a run's
    paired.csv). A lead is called a win only when the paired interval excludes zero and
    the signed-rank test agrees; otherwise the sentence says it is within noise.
    """
    rows = paired[paired["model"] == model]
    if rows.empty:
        return f"{model} shares no shot count and repeat with the reference, so they cannot be compared."
    sentences = []
    for row in rows.itertuples(index=False):
        interval = (f"paired difference {row.mean_difference * 100:+.1f} points, 95% CI "
                    f"[{row.ci_low * 100:+.1f}, {row.ci_high * 100:+.1f}], p = {row.p_value:.2g}, "
                    f"{row.repeats} repeats")
        if row.mean_difference == 0 and row.ci_low == 0 and row.ci_high == 0:
            sentences.append(f"At {row.shots} shots {model} and {row.reference} give the same accuracy in every repeat.")
            continue
        leader, other = (model, row.reference) if row.mean_difference > 0 else (row.reference, model)
        verdict = "a resolved difference" if row.verdict != "within noise" else "within noise"
        sentences.append(
            f"At {row.shots} shots {leader} leads {other} by {abs(row.mean_difference) * 100:.1f} points "
            f"({interval}): {verdict}."
        )
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


def describe_run(paired: pd.DataFrame) -> str:
    """A short reading of a whole run: every model against the reference, shot by shot."""
    if paired.empty:
        return "No model can be compared with a reference in this run (the reference did not run, or only one model did)."
    paragraphs = []
    for model in dict.fromkeys(paired["model"]):
        reference = paired[paired["model"] == model]["reference"].iloc[0]
        paragraphs.append(f"{model} against {reference}:\n{describe_comparison(paired, model)}")
    return "\n\n".join(paragraphs)
