"""The run's figures. Each `*_figure` function returns a matplotlib Figure (for notebooks);
each `plot_*` function draws the same figure and saves it as PNG and SVG (for `kshot run`).

- accuracy vs shots, one line per model with its 95% interval band, chance level dashed;
- confusion-matrix evolution: per model, one panel per iteration (rows true class,
  columns predicted), summed over repeats and normalised per row;
- the dataset's cosine similarity matrix with images grouped by class;
- accuracy vs memory footprint (bytes, log scale), one curve per model over shots.

Every figure is drawn with constrained layout (tick labels, titles and colorbars get
their own room, so nothing is drawn over anything else); fonts, class-name axes and
saving are experiments.core.figures'. Past MAX_CURVES models (a memory-size sweep of
several methods), accuracy against shots is drawn as one panel per method, its sizes as
shades of one colour, with store-all (`baseline`) as the reference line in every panel.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from experiments.core.figures import (
    class_tick_labels,
    draw_key,
    figure_style,
    key_layout,
    save_figure,
    set_class_ticks,
)
from experiments.faces.methods import split_name

MAX_SIMILARITY_ITEMS = 1500  # beyond this the matrix is subsampled evenly per class (image size)

ACCURACY_LABEL = "accuracy on images not yet fed"


def _accuracy_panel(ax, summary: pd.DataFrame, min_shots: int) -> None:
    for model, group in summary.groupby("model", sort=False):
        group = group[group["shots"] >= min_shots].sort_values("shots")
        if group.empty:
            continue
        line = ax.plot(group["shots"], group["mean"], marker="o", ms=3, label=f"{model} (n={group['repeats'].max()})")
        # The intervals are inside [0, 1] by construction (experiments.core.metrics): drawn as they are.
        if np.isfinite(group["ci_low"].to_numpy(dtype=float)).any():
            ax.fill_between(group["shots"], group["ci_low"], group["ci_high"], color=line[0].get_color(), alpha=0.15, linewidth=0)
    ax.set_xlabel("shots (images of each class seen before evaluation)")
    ax.set_ylabel(ACCURACY_LABEL)
    ax.grid(alpha=0.3)


def zoomed_limits(summary: pd.DataFrame) -> tuple[float, float] | None:
    """y-limits of the zoomed panel: every mean and every interval bound of shots >= 1, a little margin."""
    learned = summary[summary["shots"] >= 1]
    values = np.r_[learned["mean"].to_numpy(float), learned["ci_low"].to_numpy(float), learned["ci_high"].to_numpy(float)]
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    low, high = float(values.min()), float(values.max())
    margin = max(0.005, 0.05 * (high - low))
    return max(0.0, low - margin), min(1.0, high) + margin


MAX_CURVES = 8  # past this many models one legend covers the plot: one panel per method instead
REFERENCE_MODEL = "baseline"  # store-all 1-NN, drawn in every panel of the grouped figure


def accuracy_figure(summary: pd.DataFrame, n_classes: int):
    """Accuracy against shots: two panels (whole curve, zoom) for a few models, one panel per method for many."""
    if summary["model"].nunique() > MAX_CURVES:
        return accuracy_by_method_figure(summary, n_classes)
    return _two_panel_accuracy_figure(summary, n_classes)


def method_groups(models) -> dict[str, list[str]]:
    """Models by method in first-seen order, each method's memory sizes ascending (`memory@8` before `memory@16`)."""
    groups: dict[str, list[tuple[int, str]]] = {}
    for model in models:
        method, size = split_name(model)
        groups.setdefault(method, []).append((-1 if size is None else size, model))
    return {method: [model for _, model in sorted(sized)] for method, sized in groups.items()}


def _curve(ax, rows: pd.DataFrame, **style) -> None:
    line = ax.plot(rows["shots"], rows["mean"], marker="o", ms=2, **style)
    if np.isfinite(rows["ci_low"].to_numpy(dtype=float)).any():
        ax.fill_between(rows["shots"], rows["ci_low"], rows["ci_high"], color=line[0].get_color(), alpha=0.12,
                        linewidth=0)


def accuracy_by_method_figure(summary: pd.DataFrame, n_classes: int):
    """One panel per method, its memory sizes as shades of one colour map (light = small), shots >= 1,
    all panels on one zoomed y-axis, store-all drawn dashed in each for reference."""
    learned = summary[summary["shots"] >= 1]
    groups = method_groups(dict.fromkeys(summary["model"]))
    reference = groups.pop(REFERENCE_MODEL, None)
    panels = list(groups.items()) or [(REFERENCE_MODEL, [])]
    cols = min(3, len(panels))
    rows = int(np.ceil(len(panels) / cols))
    with figure_style():
        fig = Figure(figsize=(4.3 * cols, 3.1 * rows + 0.7), layout="constrained")
        axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False).ravel()
        for ax, (method, models) in zip(axes, panels):
            shades = matplotlib.colormaps["viridis_r"](np.linspace(0.15, 0.9, max(len(models), 1)))
            for colour, model in zip(shades, models):
                size = split_name(model)[1]
                _curve(ax, learned[learned["model"] == model].sort_values("shots"), color=colour,
                       label=model if size is None else f"{size} slots")
            if reference:
                _curve(ax, learned[learned["model"] == reference[0]].sort_values("shots"), color="black",
                       linestyle="--", label="store-all (baseline)")
            ax.set_title(method, fontsize=10)
            ax.grid(alpha=0.3)
        for ax in axes[len(panels):]:
            ax.axis("off")
        limits = zoomed_limits(summary)
        if limits is not None:
            axes[0].set_ylim(*limits)
        if not learned.empty:  # half a shot of margin keeps the edge tick labels of neighbouring panels apart
            low, high = int(learned["shots"].min()), int(learned["shots"].max())
            axes[0].set_xlim(low - 0.5, high + 0.5)
            axes[0].set_xticks(range(low, high + 1, max(1, int(np.ceil((high - low + 1) / 6)))))
        # Every swept method has the same sizes in the same shades: one legend, beside the panels.
        widest = max(axes[: len(panels)], key=lambda ax: len(ax.get_lines()))
        handles, labels = widest.get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside right upper", fontsize=8)
        fig.supxlabel("shots (images of each class seen before evaluation)")
        fig.supylabel(ACCURACY_LABEL)
        chance = f"; chance {1.0 / n_classes:.2f}" if n_classes > 0 else ""
        fig.suptitle(f"k-shot accuracy by method, mean and 95% interval over repeats "
                     f"({summary['model'].nunique()} models, shots >= 1{chance})")
    return fig


def _two_panel_accuracy_figure(summary: pd.DataFrame, n_classes: int):
    """Left: the whole curve from 0 shots with chance; right: shots >= 1, y zoomed to the data and its bands."""
    with figure_style():
        fig = Figure(figsize=(12, 4.5), layout="constrained")
        full, zoom = fig.subplots(1, 2)
        _accuracy_panel(full, summary, 0)
        if n_classes > 0:
            full.axhline(1.0 / n_classes, color="grey", linestyle="--", linewidth=1, label=f"chance (1/{n_classes})")
        full.set_ylim(0, 1.02)
        full.set_title("k-shot accuracy, mean and 95% interval over repeats")
        full.legend(fontsize=8, loc="lower right")
        _accuracy_panel(zoom, summary, 1)
        limits = zoomed_limits(summary)
        if limits is not None:
            zoom.set_ylim(*limits)
        zoom.set_title("shots >= 1, zoomed to the means and intervals")
    return fig


def confusion_evolution_figure(confusion: np.ndarray, class_names: list[str], model: str):
    """confusion: int [repeats, iterations, C, C]; one panel per iteration, summed over repeats.

    Class names label the outer panels only (first column, bottom of each column), so the
    inner panels stay readable; a key lists the full names when the ticks carry numbers.
    """
    totals = confusion.sum(axis=0)
    n_iter = totals.shape[0]
    cols = min(n_iter, 6)
    rows = int(np.ceil(n_iter / cols))
    labels, key = class_tick_labels(class_names)
    name_inches = 0.0 if not labels or key else max(len(name) for name in labels) * 6 * 0.62 / 72
    width = 2.4 * cols + name_inches + 1.0
    key_columns, key_inches = key_layout(key, width)
    with figure_style(class_names):
        fig = Figure(figsize=(width, (2.4 + name_inches) * rows + 0.5 + key_inches), layout="constrained")
        grid = fig.add_gridspec(rows + bool(key), cols, height_ratios=[2.4 + name_inches] * rows + ([key_inches] if key else []))
        panels = []
        ticks = np.arange(len(class_names))
        image = None
        for i in range(n_iter):
            ax = fig.add_subplot(grid[i // cols, i % cols])
            panels.append(ax)
            counts = totals[i].astype(np.float64)
            row_sums = counts.sum(axis=1, keepdims=True)
            rates = np.divide(counts, row_sums, out=np.zeros_like(counts), where=row_sums > 0)
            image = ax.imshow(rates, vmin=0, vmax=1, cmap="viridis", interpolation="nearest")
            accuracy = np.trace(counts) / max(counts.sum(), 1)
            ax.set_title(f"{i} shots, acc {accuracy:.3f}", fontsize=8)
            bottom_of_column = i + cols >= n_iter
            set_class_ticks(ax, labels, ticks, bool(key), show_x=bottom_of_column, show_y=i % cols == 0)
            ax.set_ylabel("true class", fontsize=7)
            ax.set_xlabel("predicted class", fontsize=7)
        fig.colorbar(image, ax=panels, shrink=0.9, label="share of the row's evaluations")
        if key:
            draw_key(fig.add_subplot(grid[rows, :]), key, key_columns)
        unnamed = f"; {len(class_names)} classes, too many to name" if labels is None else ""
        fig.suptitle(
            f"{model}: confusion matrix by iteration (rows normalised, summed over {confusion.shape[0]} repeats{unnamed})",
            fontsize=9,
        )
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
    classes = np.unique(ordered_labels)
    present = [str(class_names[c]) for c in classes]
    tick_labels, key = class_tick_labels(present)
    width = 7.0
    key_columns, key_inches = key_layout(key, width)
    with figure_style(present):
        fig = Figure(figsize=(width, 6.0 + key_inches), layout="constrained")
        grid = fig.add_gridspec(1 + bool(key), 1, height_ratios=[6.0] + ([key_inches] if key else []))
        ax = fig.add_subplot(grid[0])
        image = ax.imshow(similarity, cmap="magma", vmin=-1, vmax=1, interpolation="nearest")
        boundaries = np.flatnonzero(np.diff(ordered_labels)) + 0.5
        for b in boundaries:
            ax.axhline(b, color="white", linewidth=0.6)
            ax.axvline(b, color="white", linewidth=0.6)
        centres = [np.flatnonzero(ordered_labels == c).mean() for c in classes]
        set_class_ticks(ax, tick_labels, centres, bool(key))
        ax.set_xlabel("image (grouped by class)")
        ax.set_ylabel("image (grouped by class)")
        fig.colorbar(image, ax=ax, label="cosine similarity")
        unnamed = ", too many to name" if tick_labels is None else ""
        ax.set_title(f"dataset similarity, {len(order)} images of {len(classes)} classes{unnamed}")
        if key:
            draw_key(fig.add_subplot(grid[1]), key, key_columns)
    return fig


def _shots_label(shots: int) -> str:
    return f"{shots} shot" if shots == 1 else f"{shots} shots"


def separate_texts(fig, texts, rounds: int = 200) -> None:
    """Shift annotations (in offset points) until no two bounding boxes overlap.

    Draws the figure so constrained layout has placed the axes, then moves annotations
    against that layout: each move shifts the upper of the first overlapping pair up and the
    lower one down by half the overlap (an annotation finds its place from its offset without
    a redraw). The figure is drawn again after a round of moves, since the layout may follow
    the annotations, until a draw finds no overlap; at most `rounds` moves in all.
    """
    if len(texts) < 2:
        return
    canvas = FigureCanvasAgg(fig)
    points_per_pixel = 72.0 / fig.dpi
    moves = 0
    while moves < rounds:
        canvas.draw()
        renderer = canvas.get_renderer()
        moved = False
        while moves < rounds:
            boxes = [text.get_window_extent(renderer) for text in texts]
            pair = next(((i, j) for i in range(len(texts)) for j in range(i + 1, len(texts))
                         if boxes[i].overlaps(boxes[j])), None)
            if pair is None:
                break
            i, j = pair
            upper, lower = (i, j) if boxes[i].y0 + boxes[i].y1 >= boxes[j].y0 + boxes[j].y1 else (j, i)
            overlap = (boxes[lower].y1 - boxes[upper].y0 + 2.0) * points_per_pixel / 2
            for index, sign in ((upper, 1.0), (lower, -1.0)):
                x, y = texts[index].xyann
                texts[index].xyann = (x, y + sign * overlap)
            moves += 1
            moved = True
        if not moved:
            return


def footprint_positions(learned: pd.DataFrame) -> dict[str, np.ndarray]:
    """x (bytes) to draw each model's rows at, in shot order.

    A model whose footprint grows with shots is drawn at its bytes. A model with one
    footprint for every shot would be a vertical line, and several such models at the
    same bytes one line over another, so each gets a narrow slot of its own around its
    true footprint (marked by a dotted line) with its shots spread across the slot.
    """
    bytes_by_model = {
        model: np.maximum(group.sort_values("shots")["mean_memory_bytes"].to_numpy(float), 1.0)
        for model, group in learned.groupby("model", sort=False)
    }
    if not bytes_by_model:
        return {}
    every = np.concatenate(list(bytes_by_model.values()))
    span = np.log10(every.max()) - np.log10(every.min())
    slot = max(0.04, 0.09 * span)  # decades of x given to one fixed-footprint model
    fixed: dict[float, list[str]] = {}
    for model, values in bytes_by_model.items():
        if np.allclose(values, values[0], rtol=1e-9):
            fixed.setdefault(float(values[0]), []).append(model)
    positions = dict(bytes_by_model)
    for value, models in fixed.items():
        for k, model in enumerate(models):
            centre = np.log10(value) + (k - (len(models) - 1) / 2) * slot
            n = len(bytes_by_model[model])
            spread = np.linspace(-0.35, 0.35, n) if n > 1 else np.zeros(1)
            positions[model] = 10 ** (centre + spread * slot)
    return positions


def best_size_of_each_method(summary: pd.DataFrame) -> pd.DataFrame:
    """The rows of each method's most accurate memory size at the top shot count (ties: the smaller size)."""
    top = summary[summary["shots"] == summary["shots"].max()].set_index("model")["mean"]
    keep = [max(models, key=lambda m: (top.get(m, -1.0), -(split_name(m)[1] or 0)))
            for models in method_groups(dict.fromkeys(summary["model"])).values()]
    return summary[summary["model"].isin(keep)]


def accuracy_vs_footprint_figure(summary: pd.DataFrame):
    """Mean accuracy against mean footprint, shots >= 1 (0 shots is a uniform guess at any size).

    One curve per model over its shot counts, its first and last shot count annotated.
    Past MAX_CURVES models only each method's best memory size is drawn (the run's
    footprint.png and summary.csv have every size).
    """
    title = "accuracy vs memory footprint (shots >= 1; dotted: a fixed footprint)"
    if summary["model"].nunique() > MAX_CURVES:
        summary = best_size_of_each_method(summary)
        title = "accuracy vs footprint, each method's best memory size (every size: footprint.png)"
    learned = summary[summary["shots"] >= 1]
    positions = footprint_positions(learned)
    with figure_style():
        fig = Figure(figsize=(8, 5), layout="constrained")
        ax = fig.subplots()
        annotations = []
        marked = set()
        for model, group in learned.groupby("model", sort=False):
            group = group.sort_values("shots")
            x = positions[model]
            true_bytes = np.maximum(group["mean_memory_bytes"].to_numpy(float), 1.0)
            fixed = not np.allclose(x, true_bytes)
            label = f"{model} (fixed {true_bytes[0]:,.0f} B; shots spread sideways)" if fixed else model
            line = ax.plot(x, group["mean"], marker="o", ms=3, label=label)[0]
            if fixed and true_bytes[0] not in marked:
                marked.add(true_bytes[0])
                ax.axvline(true_bytes[0], color="grey", linestyle=":", linewidth=0.8)
            for position, offset in {0: (4, -10), len(group) - 1: (4, 4)}.items():
                annotations.append(
                    ax.annotate(
                        _shots_label(int(group["shots"].iloc[position])),
                        (x[position], group["mean"].iloc[position]),
                        fontsize=6,
                        color=line.get_color(),
                        xytext=offset,
                        textcoords="offset points",
                    )
                )
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("memory footprint (bytes, log scale)")
        ax.set_ylabel("mean accuracy")
        if not learned.empty:
            ax.set_ylim(max(0.0, float(learned["mean"].min()) - 0.03), 1.005)
            low, high = min(v.min() for v in positions.values()), max(v.max() for v in positions.values())
            ax.set_xlim(low / 1.4, high * 1.4)
        ax.set_title(title)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="lower right")
        separate_texts(fig, annotations)
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
