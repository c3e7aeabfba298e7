"""The run's figures. Each `*_figure` function returns a matplotlib Figure (for notebooks);
each `plot_*` function draws the same figure and saves it as PNG and SVG (for `kshot run`).

- accuracy vs shots, one line per model with its 95% CI band, chance level dashed;
- confusion-matrix evolution: per model, one panel per iteration (rows true class,
  columns predicted), summed over repeats and normalised per row;
- the dataset's cosine similarity matrix with images grouped by class;
- accuracy vs memory footprint (bytes, log scale), one point per model and shots.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib.ticker
from matplotlib.figure import Figure
import numpy as np
import pandas as pd

from kshot_io import write_bytes_atomic

MAX_SIMILARITY_ITEMS = 1500  # beyond this the matrix is subsampled evenly per class (image size)


def save_figure(fig, stem: Path) -> list[Path]:
    """Write `stem`.png and `stem`.svg atomically; returns both paths."""
    stem = Path(stem)
    paths = []
    for fmt in ("png", "svg"):
        buffer = io.BytesIO()
        metadata = {"Date": None} if fmt == "svg" else {}
        fig.savefig(buffer, format=fmt, dpi=120, bbox_inches="tight", metadata=metadata)
        path = stem.with_suffix(f".{fmt}")
        write_bytes_atomic(path, buffer.getvalue())
        paths.append(path)
    return paths


def _accuracy_panel(ax, summary: pd.DataFrame, min_shots: int) -> None:
    for model, group in summary.groupby("model", sort=False):
        group = group[group["shots"] >= min_shots].sort_values("shots")
        if group.empty:
            continue
        line = ax.plot(group["shots"], group["mean"], marker="o", ms=3, label=f"{model} (n={group['repeats'].max()})")
        # The t-interval of a few repeats can pass 1; the band is drawn clipped to [0, 1].
        low, high = np.clip(group["ci_low"].to_numpy(), 0, 1), np.clip(group["ci_high"].to_numpy(), 0, 1)
        if np.isfinite(low).any():
            ax.fill_between(group["shots"], low, high, color=line[0].get_color(), alpha=0.15, linewidth=0)
    ax.set_xlabel("shots (images of each class seen before evaluation)")
    ax.grid(alpha=0.3)


def accuracy_figure(summary: pd.DataFrame, n_classes: int):
    """Left: the whole curve from 0 shots with chance; right: shots >= 1, y zoomed to the data."""
    fig = Figure(figsize=(12, 4.5))
    full, zoom = fig.subplots(1, 2)
    _accuracy_panel(full, summary, 0)
    if n_classes > 0:
        full.axhline(1.0 / n_classes, color="grey", linestyle="--", linewidth=1, label=f"chance (1/{n_classes})")
    full.set_ylim(0, 1.02)
    full.set_ylabel("accuracy on images not yet fed")
    full.set_title("k-shot accuracy, mean and 95% CI over repeats")
    full.legend(fontsize=8, loc="lower right")
    _accuracy_panel(zoom, summary, 1)
    learned = summary[summary["shots"] >= 1]
    if not learned.empty:
        bottom = float(np.nanmin(np.r_[learned["mean"].to_numpy(), learned["ci_low"].clip(0, 1).to_numpy()]))
        zoom.set_ylim(max(0.0, bottom - 0.01), 1.002)
    zoom.set_title("shots >= 1, zoomed")
    fig.tight_layout()
    return fig


def confusion_evolution_figure(confusion: np.ndarray, class_names: list[str], model: str):
    """confusion: int [repeats, iterations, C, C]; one panel per iteration, summed over repeats."""
    totals = confusion.sum(axis=0)
    n_iter = totals.shape[0]
    cols = min(n_iter, 6)
    rows = int(np.ceil(n_iter / cols))
    fig = Figure(figsize=(2.6 * cols, 2.6 * rows + 0.6))
    axes = fig.subplots(rows, cols, squeeze=False)
    ticks = np.arange(len(class_names))
    short = [name[:10] for name in class_names]
    for i, ax in enumerate(axes.flat):
        if i >= n_iter:
            ax.axis("off")
            continue
        counts = totals[i].astype(np.float64)
        row_sums = counts.sum(axis=1, keepdims=True)
        rates = np.divide(counts, row_sums, out=np.zeros_like(counts), where=row_sums > 0)
        ax.imshow(rates, vmin=0, vmax=1, cmap="viridis")
        accuracy = np.trace(counts) / max(counts.sum(), 1)
        ax.set_title(f"{i} shots, acc {accuracy:.3f}", fontsize=8)
        if len(class_names) <= 20:
            ax.set_xticks(ticks, short, rotation=90, fontsize=6)
            ax.set_yticks(ticks, short, fontsize=6)
        else:
            ax.set_xticks([])
            ax.set_yticks([])
        if i % cols == 0:
            ax.set_ylabel("true", fontsize=7)
        ax.set_xlabel("predicted", fontsize=7)
    fig.suptitle(f"{model}: confusion matrix by iteration (rows normalised, summed over {confusion.shape[0]} repeats)", fontsize=9)
    fig.tight_layout(h_pad=1.5)
    return fig


def grouped_order(labels: np.ndarray, limit: int = MAX_SIMILARITY_ITEMS) -> np.ndarray:
    """Item indices sorted by class; at most `limit` items, taken evenly from each class."""
    labels = np.asarray(labels)
    classes = np.unique(labels)
    per_class = max(1, limit // max(len(classes), 1))
    chosen = []
    for c in classes:
        members = np.flatnonzero(labels == c)
        if members.size > per_class:
            members = members[np.linspace(0, members.size - 1, per_class).round().astype(int)]
        chosen.append(members)
    return np.concatenate(chosen)


def similarity_figure(embeddings: np.ndarray, labels: np.ndarray, class_names: list[str]):
    order = grouped_order(labels)
    vectors = np.asarray(embeddings, dtype=np.float64)[order]
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    similarity = vectors @ vectors.T
    ordered_labels = np.asarray(labels)[order]
    fig = Figure(figsize=(6.5, 5.5))
    ax = fig.subplots()
    image = ax.imshow(similarity, cmap="magma", vmin=-1, vmax=1, interpolation="nearest")
    boundaries = np.flatnonzero(np.diff(ordered_labels)) + 0.5
    for b in boundaries:
        ax.axhline(b, color="white", linewidth=0.6)
        ax.axvline(b, color="white", linewidth=0.6)
    classes = np.unique(ordered_labels)
    centres = [np.flatnonzero(ordered_labels == c).mean() for c in classes]
    if len(classes) <= 30:
        names = [class_names[c] for c in classes]
        ax.set_xticks(centres, names, rotation=90, fontsize=7)
        ax.set_yticks(centres, names, fontsize=7)
    fig.colorbar(image, ax=ax, label="cosine similarity")
    ax.set_title(f"dataset similarity, {len(order)} images grouped by class")
    fig.tight_layout()
    return fig


def accuracy_vs_footprint_figure(summary: pd.DataFrame):
    """Mean accuracy against mean footprint, shots >= 1 (0 shots is a uniform guess at any size)."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    learned = summary[summary["shots"] >= 1]
    for index, (model, group) in enumerate(learned.groupby("model", sort=False)):
        group = group.sort_values("shots")
        footprint = np.maximum(group["mean_memory_bytes"].to_numpy(), 1)
        line = ax.plot(footprint, group["mean"], marker="o", ms=3, label=model)
        for position in {0, len(group) - 1}:
            ax.annotate(
                f"{group['shots'].iloc[position]} shots",
                (footprint[position], group["mean"].iloc[position]),
                fontsize=6,
                color=line[0].get_color(),
                xytext=(4, -10 - 7 * index),
                textcoords="offset points",
            )
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("memory footprint (bytes, log scale)")
    ax.set_ylabel("mean accuracy")
    if not learned.empty:
        ax.set_ylim(max(0.0, float(learned["mean"].min()) - 0.03), 1.005)
    ax.set_title("accuracy vs memory footprint (shots >= 1)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower left")
    return fig


def plot_accuracy(summary: pd.DataFrame, n_classes: int, stem: Path) -> list[Path]:
    """Draw with `accuracy_figure` and save as `stem`.png and .svg."""
    return save_figure(accuracy_figure(summary, n_classes), stem)


def plot_confusion_evolution(confusion: np.ndarray, class_names: list[str], model: str, stem: Path) -> list[Path]:
    """Draw with `confusion_evolution_figure` and save as `stem`.png and .svg."""
    return save_figure(confusion_evolution_figure(confusion, class_names, model), stem)


def plot_similarity(embeddings: np.ndarray, labels: np.ndarray, class_names: list[str], stem: Path) -> list[Path]:
    """Draw with `similarity_figure` and save as `stem`.png and .svg."""
    return save_figure(similarity_figure(embeddings, labels, class_names), stem)


def plot_accuracy_vs_footprint(summary: pd.DataFrame, stem: Path) -> list[Path]:
    """Draw with `accuracy_vs_footprint_figure` and save as `stem`.png and .svg."""
    return save_figure(accuracy_vs_footprint_figure(summary), stem)
