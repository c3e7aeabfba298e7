"""The blog's published per-shot accuracies, to print beside a `blog_exact` run.

"FaceNet with memory vs. synthetic faces" (Dziubiński and Stępniewska-Dziubińska,
2018) plotted accuracy at iterations 1..7 of its fixed order (iteration i: image i of
each of 12 characters fed, the rest evaluated), in percent, read from its figures.
Only users who have the blog's 12 x 8 images can expect to match them; on other
faces the columns are a reference for the shape of the curves, not a target.
"""

from __future__ import annotations

import pandas as pd

PUBLISHED = {   # our model name -> the blog's curve, iterations (= shots) 1..7, percent
    "baseline": ("FaceNet alone", (85.6, 95.8, 96.7, 95.8, 94.4, 95.8, 100.0)),
    "memory_finetune_phase_off": ("memory phase OFF", (73.6, 95.8, 96.7, 95.8, 97.2, 91.7, 100.0)),
    "memory_finetune_phase_on": ("memory phase ON", (64.2, 76.4, 90.0, 81.3, 86.1, 83.3, 75.0)),
}


def beside_the_blog(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per shots 1..7: this run's mean accuracy (percent) next to the blog's, per model it published."""
    rows = []
    for shots in range(1, 8):
        row = {"shots": shots}
        for model, (curve, published) in PUBLISHED.items():
            mine = summary[(summary["model"] == model) & (summary["shots"] == shots)]["mean"]
            row[f"{model} (this run)"] = round(100 * float(mine.iloc[0]), 1) if len(mine) else float("nan")
            row[f"{curve} (blog)"] = published[shots - 1]
        rows.append(row)
    return pd.DataFrame(rows).set_index("shots")
