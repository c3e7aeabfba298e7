"""Score distributions beside the ROC: the threshold as a line a person can see.

A threshold is a cut through two piles of similarity scores: those that should be
accepted (genuine pairs, or searches of enrolled people that named the right one) and
those that should not (impostor pairs, or strangers' best answers). Numbers such as
"TAR 0.72 at FAR 1e-3" say where the cut falls; the histograms of both piles on one
axis, with the cut drawn through them, show why, and show how far the piles overlap.
The ROC beside them is the same two piles read as rates at every possible cut.

The figure is generic over two named score sets (`ScoreSets`), so the same picture
draws verification pairs (`verification_scores`) and open-set identification
searches (`identification_scores`: mated and non-mated best scores). A mated search
that answered the wrong person is never a correct accept at any threshold: give its
score as -inf; it is counted in the legend and left out of the histogram.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from experiments.core.figures import figure_style, save_figure

HISTOGRAM_BINS = 50
ACCEPTED_COLOUR = "tab:blue"
REJECTED_COLOUR = "tab:red"


@dataclass(frozen=True)
class ScoreSets:
    """Two piles of similarity scores and the words the figure uses for them.

    accepted: scores that should reach the threshold (-inf: never accepted, e.g. a wrong name)
    rejected: scores that should stay below it
    """

    accepted: np.ndarray
    rejected: np.ndarray
    accepted_name: str
    rejected_name: str
    accept_rate_name: str      # the ROC's y axis: share of `accepted` at or above the threshold
    false_rate_name: str       # the ROC's x axis: share of `rejected` at or above the threshold

    def __post_init__(self):
        for field, values in (("accepted", self.accepted), ("rejected", self.rejected)):
            array = np.asarray(values, dtype=np.float64).ravel()
            if np.isnan(array).any() or np.isposinf(array).any():
                raise ValueError(f"{field} scores hold NaN or +inf; scores are similarities (-inf: never accepted)")
            object.__setattr__(self, field, array)
        if not np.isfinite(self.rejected).all():
            raise ValueError("rejected scores must be finite: each one is a similarity that was reached")
        if self.rejected.size == 0 or np.isfinite(self.accepted).sum() == 0:
            raise ValueError(f"a score figure needs both {self.accepted_name} and {self.rejected_name}; got "
                             f"{int(np.isfinite(self.accepted).sum())} and {self.rejected.size}")


def verification_scores(genuine, impostor) -> ScoreSets:
    """Photo-against-photo pairs: same person (genuine) and different people (impostor)."""
    return ScoreSets(genuine, impostor, "genuine pairs", "impostor pairs",
                     "true-accept rate (genuine pairs accepted)", "false-accept rate (impostor pairs accepted)")


def identification_scores(mated, non_mated) -> ScoreSets:
    """Open-set searches (as in NIST FRVT 1:N): enrolled people's best score (-inf where the best
    answer named someone else) and strangers' best score."""
    return ScoreSets(mated, non_mated, "mated searches (enrolled people)", "non-mated searches (strangers)",
                     "1 - FNIR (mated searches named right)", "FPIR (non-mated searches accepted)")


def rates_at(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Share of `scores` at or above each threshold (the rule everywhere: accept when >= threshold)."""
    ordered = np.sort(np.asarray(scores, dtype=np.float64))
    return (ordered.size - np.searchsorted(ordered, thresholds, side="left")) / max(ordered.size, 1)


def roc_curve(sets: ScoreSets) -> tuple[np.ndarray, np.ndarray]:
    """(false rate, accept rate) at every distinct finite score, thresholds descending."""
    scores = np.concatenate([sets.accepted, sets.rejected])
    thresholds = np.unique(scores[np.isfinite(scores)])[::-1]
    return rates_at(sets.rejected, thresholds), rates_at(sets.accepted, thresholds)


def score_figure(sets: ScoreSets, threshold: float, target: str = "") -> Figure:
    """Two panels: both score histograms on one axis (log counts) with the threshold, and the ROC.

    `target` names what the threshold was chosen for ("FAR 1e-03"), shown in its label.
    """
    threshold = float(threshold)
    if not np.isfinite(threshold):
        raise ValueError(f"the threshold must be a finite similarity, got {threshold}")
    with figure_style():
        fig = Figure(figsize=(11, 4.5), layout="constrained")
        scores_ax, roc_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.25, 1]})
        draw_distributions(scores_ax, sets, threshold, target)
        draw_roc(roc_ax, sets, threshold)
    return fig


def draw_distributions(ax, sets: ScoreSets, threshold: float, target: str) -> None:
    finite = sets.accepted[np.isfinite(sets.accepted)]
    both = np.concatenate([finite, sets.rejected, [threshold]])
    edges = np.linspace(both.min(), both.max(), HISTOGRAM_BINS + 1)
    if edges[0] == edges[-1]:
        edges = np.linspace(edges[0] - 0.01, edges[0] + 0.01, HISTOGRAM_BINS + 1)
    never = sets.accepted.size - finite.size
    for scores, name, colour, gid in ((finite, sets.accepted_name, ACCEPTED_COLOUR, "accepted"),
                                      (sets.rejected, sets.rejected_name, REJECTED_COLOUR, "rejected")):
        total = sets.accepted.size if gid == "accepted" else scores.size
        above = float(np.sum(scores >= threshold)) / total
        label = f"{name}: {total}, {above:.1%} at or above the threshold"
        if gid == "accepted" and never:
            label += f" ({never} named someone else: not drawn)"
        _, _, patches = ax.hist(scores, bins=edges, histtype="stepfilled", alpha=0.45, color=colour,
                                edgecolor=colour, linewidth=1.2, label=label)
        for patch in patches:
            patch.set_gid(gid)
    line = ax.axvline(threshold, color="black", linestyle="--", linewidth=1.5,
                      label=f"threshold {threshold:.3f}" + (f" (chosen at {target})" if target else ""))
    line.set_gid("threshold")
    ax.set_yscale("log")
    ax.set_xlabel("cosine similarity (accepted at or above the threshold)")
    ax.set_ylabel("count (log scale)")
    ax.set_title("score distributions", fontsize=10)
    ax.grid(alpha=0.3, which="major")
    ax.legend(loc="upper left", fontsize=7, framealpha=0.9)


def draw_roc(ax, sets: ScoreSets, threshold: float) -> None:
    false_rate, accept_rate = roc_curve(sets)
    floor = 1.0 / (2 * sets.rejected.size)   # a false rate of 0 drawn at half the smallest measurable one
    ax.step(np.maximum(false_rate, floor), accept_rate, where="post", color="tab:purple", gid="roc",
            label=f"ROC ({sets.accepted.size} {sets.accepted_name}, {sets.rejected.size} {sets.rejected_name})")
    chosen = rates_at(sets.accepted, np.array([threshold]))[0]
    chosen_false = rates_at(sets.rejected, np.array([threshold]))[0]
    ax.plot([max(chosen_false, floor)], [chosen], "o", color="black", gid="operating-point",
            label=f"at the threshold: {chosen:.3f} at {chosen_false:.1e}")
    ax.set_xscale("log")
    ax.set_xlim(floor / 1.5, 1.05)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"{sets.false_rate_name}; 0 drawn at {floor:.0e}", fontsize=8)
    ax.set_ylabel(sets.accept_rate_name, fontsize=8)
    ax.set_title("ROC", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right", fontsize=7)


def plot_scores(sets: ScoreSets, threshold: float, stem: Path, target: str = "") -> list[Path]:
    """The two-panel figure written as `stem`.png and `stem`.svg."""
    return save_figure(score_figure(sets, threshold, target), stem)
