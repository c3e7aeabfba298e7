"""Tables and figures of committed Omniglot results, for notebooks/omniglot_results.ipynb.

The notebook holds no logic of its own (as the face notebooks, experiments.cli.notebooks):
everything it shows is built here from the JSON that `kshot omniglot eval` and
`kshot omniglot compare` write, so a change of format breaks a test, not a reader.
Figures are returned, not saved, so the notebook shows them with its own backend.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.stats import binom

from experiments.core.paths import RESULTS_DIR
from experiments.episodic.evaluation.breakdowns import pool_rivals
from experiments.episodic.evaluation.verdicts import verdict

EVAL_FILE = RESULTS_DIR / "omniglot_eval.json"


def load_json(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; write it with `kshot omniglot eval --json` or `compare --json`")
    return json.loads(path.read_text(encoding="utf-8"))


def nway_table(results: dict) -> pd.DataFrame:
    """One row per (embedder, readout), one column per N-way k-shot cell: 'mean [low, high]' in percent."""
    rows = {}
    for row in results["nway"]:
        cell = f"{row['ways']}-way {row['shots']}-shot"
        text = f"{100 * row['mean']:.1f} [{100 * row['ci_low']:.1f}, {100 * row['ci_high']:.1f}]"
        rows.setdefault((row["embedder"], row["readout"]), {})[cell] = text
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index = pd.MultiIndex.from_tuples(table.index, names=["embedder", "readout"])
    return table


def per_shot_figure(results: dict):
    """The memory's accuracy at its k-th showing of a class (Kaiser-style episodes), 95% band, per width."""

    fig = Figure(figsize=(6.4, 3.6))
    ax = fig.subplots()
    for row in results["per_shot"]:
        shots = [c["shot"] for c in row["curve"]]
        mean = [100 * c["mean"] for c in row["curve"]]
        half = [100 * c["half_width"] for c in row["curve"]]
        line, = ax.plot(shots, mean, marker="o", markersize=3, label=f"{row['embedder']}, {row['ways']}-way")
        ax.fill_between(shots, [m - h for m, h in zip(mean, half)], [min(100.0, m + h) for m, h in zip(mean, half)],
                        color=line.get_color(), alpha=0.2)
    ax.set_xlabel("earlier showings of the class (k)")
    ax.set_ylabel("memory accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def rivals_table(results: dict, readout: str = "memory", ways: int = 20, shots: int = 1,
                 p_same: float = 1 / 20) -> tuple[pd.DataFrame, dict] | None:
    """Accuracy by the query's same-alphabet rivals, and an estimate under another mix of rivals.

    The reported tasks draw their characters from 5 test alphabets; Omniglot's evaluation
    set has 20, where another character shares the query's alphabet with probability about
    `p_same` (1/20 if the alphabets were equal in size). The estimate reweights, within
    each alphabet, the accuracy at each rival count by Binomial(ways - 1, p_same)
    (renormalised over the counts that occur for that alphabet), then pools the alphabets
    in their shares here: the score these alphabets would get with the evaluation set's
    rivals, not a measurement of it. Its interval is the normal approximation of that
    linear combination of independent proportions, clipped to [0, 1]. Returns the table
    pooled over alphabets and {"estimate", "ci_low", "ci_high"} (fractions); None when
    the file has no breakdown (`--by-alphabet`).
    """

    selected = [row for row in results.get("by_rivals", [])
                if (row["readout"], row["ways"], row["shots"]) == (readout, ways, shots)]
    if not selected:
        return None
    rows = pd.DataFrame(selected)
    pooled = pd.DataFrame(pool_rivals(selected)).set_index("rivals")
    table = pd.DataFrame({
        "answers": pooled["answers"],
        "accuracy (%)": 100 * pooled["right"] / pooled["answers"],
        "share here (%)": 100 * pooled["answers"] / pooled["answers"].sum(),
    })
    weights = binom.pmf(table.index.to_numpy(), ways - 1, p_same)
    table[f"share at p_same={p_same:.3g} (%)"] = 100 * weights / weights.sum()

    total = rows["answers"].sum()
    estimate, variance = 0.0, 0.0
    for _, mine in rows.groupby("alphabet"):
        w = binom.pmf(mine["rivals"].to_numpy(), ways - 1, p_same)
        coefficient = (mine["answers"].sum() / total) * w / w.sum()
        accuracy = mine["right"].to_numpy() / mine["answers"].to_numpy()
        estimate += float(coefficient @ accuracy)
        variance += float(np.sum(coefficient**2 * accuracy * (1 - accuracy) / mine["answers"].to_numpy()))
    half = 1.96 * variance**0.5
    summary = {"estimate": estimate, "ci_low": max(0.0, estimate - half), "ci_high": min(1.0, estimate + half)}
    return table.round(1), summary


def by_alphabet_figure(results: dict, readout: str = "memory"):
    """Accuracy by the query's alphabet for every cell (eval --by-alphabet), 95% Wilson bars; None without it."""

    rows = [row for row in results.get("by_alphabet", []) if row["readout"] == readout]
    if not rows:
        return None
    cells = sorted({(row["ways"], row["shots"]) for row in rows})
    alphabets = sorted({row["alphabet"] for row in rows})
    fig = Figure(figsize=(7.2, 3.8))
    ax = fig.subplots()
    width = 0.8 / len(cells)
    for i, (ways, shots) in enumerate(cells):
        found = {row["alphabet"]: row for row in rows if (row["ways"], row["shots"]) == (ways, shots)}
        positions = [(a + i * width, found[name]) for a, name in enumerate(alphabets) if name in found]
        means = [100 * row["mean"] for _, row in positions]
        below = [100 * (row["mean"] - row["ci_low"]) for _, row in positions]
        above = [100 * (row["ci_high"] - row["mean"]) for _, row in positions]
        ax.bar([x for x, _ in positions], means, width, yerr=[below, above], capsize=2, label=f"{ways}-way {shots}-shot")
    ax.set_xticks([a + 0.4 - width / 2 for a in range(len(alphabets))])
    ax.set_xticklabels([name.replace("_", " ") for name in alphabets], rotation=20, ha="right")
    low = min(100 * row["ci_low"] for row in rows)
    ax.set_ylim(max(0.0, low - 5), 100)
    ax.set_ylabel(f"{readout} accuracy (%)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, 1.14), ncol=len(cells), fontsize="small", frameon=False)
    fig.tight_layout()
    return fig


def comparison_table(results: dict) -> pd.DataFrame:
    """`kshot omniglot compare` as a frame: both accuracies and the paired difference, in points."""

    frame = pd.DataFrame([
        {
            "ways": cell["ways"], "shots": cell["shots"], "tasks": cell["episodes"],
            "checkpoint %": round(100 * cell["checkpoint"]["mean"], 2),
            "reference %": round(100 * cell["reference"]["mean"], 2),
            "difference": round(100 * cell["difference"], 2),
            "95% CI": f"[{100 * cell['ci_low']:+.2f}, {100 * cell['ci_high']:+.2f}]",
            "verdict": verdict(cell),
        }
        for cell in results["cells"]
    ])
    return frame.set_index(["ways", "shots"])
