"""The run's figures. Each `*_figure` function returns a matplotlib Figure (for notebooks);
each `plot_*` function draws the same figure and saves it as PNG and SVG (for `kshot run`).

- accuracy vs shots, one line per model with its 95% interval band, chance level dashed;
- confusion-matrix evolution: per model, one panel per iteration (rows true class,
  columns predicted), summed over repeats and normalised per row;
- the dataset's cosine similarity matrix with images grouped by class;
- accuracy vs memory footprint (bytes, log scale), one curve per model over shots.

Every figure is drawn with constrained layout (tick labels, titles and colorbars get
their own room, so nothing is drawn over anything else) and with a font fallback list, so
class names in any script an installed font covers are drawn instead of empty boxes.
Class names are shown in full: on the ticks when they are few and short, otherwise the
ticks carry numbers and a key under the panels gives each number's full name.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.resources
import io
import warnings
from pathlib import Path

import matplotlib
import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib import font_manager, ft2font
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from kshot_io import write_bytes_atomic

MAX_SIMILARITY_ITEMS = 1500  # beyond this the matrix is subsampled evenly per class (image size)

# Class names go on the ticks only while they fit a panel; past either limit the ticks
# carry numbers and a key lists the names. Past MAX_KEY_CLASSES a key would be a page of
# its own, so the panels show the matrix alone.
MAX_TICK_NAMES = 20
MAX_TICK_NAME_CHARS = 24
MAX_KEY_CLASSES = 120

# DejaVu Sans (bundled with matplotlib) covers Latin, Greek and Cyrillic; the rest are
# tried in order for glyphs it lacks, when installed. The optional extra `cjk`
# (pip install 'kshot-memory[cjk]') ships Noto Sans CJK for Chinese, Japanese and Korean.
FONT_FALLBACKS = (
    "DejaVu Sans",
    "Noto Sans CJK JP",
    "Noto Sans CJK SC",
    "Noto Sans CJK TC",
    "Noto Sans CJK KR",
    "Noto Sans",
    "Noto Sans Arabic",
    "Noto Sans Hebrew",
    "Noto Sans Devanagari",
    "Noto Sans Thai",
    "IPAexGothic",
    "Droid Sans Fallback",
    "WenQuanYi Zen Hei",
)
FONT_PACKAGES = ("noto_cjk_sans_jp_regular",)  # PyPI packages that only carry a font file


@functools.cache
def font_families() -> tuple[str, ...]:
    """The installed families of FONT_FALLBACKS, registering fonts shipped as packages first."""
    for package in FONT_PACKAGES:
        try:
            files = list(importlib.resources.files(package).iterdir())
        except ModuleNotFoundError:
            continue
        for entry in files:
            if entry.name.lower().endswith((".otf", ".ttf", ".ttc")):
                font_manager.fontManager.addfont(str(entry))
    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    return tuple(name for name in FONT_FALLBACKS if name in installed) or ("DejaVu Sans",)


@functools.cache
def _covered_codepoints() -> frozenset[int]:
    covered: set[int] = set()
    for family in font_families():
        path = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
        covered.update(ft2font.FT2Font(path).get_charmap())
    return frozenset(covered)


def names_without_font(names) -> list[str]:
    """The names holding a character that no installed fallback font can draw."""
    covered = _covered_codepoints()
    return [name for name in names if any(ord(ch) not in covered and not ch.isspace() for ch in name)]


@contextlib.contextmanager
def _figure_style(class_names=()):
    """Font fallback list for every text created (and drawn) inside; one warning for names no font covers.

    Matplotlib would warn once per missing glyph; one line naming the classes and the fix
    is more useful, so its glyph warnings are silenced here.
    """
    missing = names_without_font(class_names)
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        warnings.warn(
            f"{len(missing)} class name(s) use characters no installed font has ({shown}); they are drawn as boxes. "
            "Install a font for that script (for Chinese, Japanese, Korean: pip install 'kshot-memory[cjk]').",
            stacklevel=3,
        )
    with matplotlib.rc_context({"font.family": list(font_families()), "svg.hashsalt": "kshot-memory"}):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font")
            yield


def save_figure(fig, stem: Path) -> list[Path]:
    """Write `stem`.png and `stem`.svg atomically; returns both paths.

    The SVG carries no date and fixed element ids, so the same run gives the same bytes.
    """
    stem = Path(stem)
    paths = []
    with _figure_style():
        for fmt in ("png", "svg"):
            buffer = io.BytesIO()
            metadata = {"Date": None} if fmt == "svg" else {}
            fig.savefig(buffer, format=fmt, dpi=120, bbox_inches="tight", metadata=metadata)
            path = stem.with_suffix(f".{fmt}")
            write_bytes_atomic(path, buffer.getvalue())
            paths.append(path)
    return paths


def class_tick_labels(class_names: list[str]) -> tuple[list[str] | None, list[str]]:
    """(tick labels, key): the full names when they fit on ticks (empty key), else numbers
    1..C on the ticks and the key, the full names in class order.

    Tick labels are None when there are too many classes to label at all.
    """
    names = [str(name) for name in class_names]
    if len(names) <= MAX_TICK_NAMES and max((len(name) for name in names), default=0) <= MAX_TICK_NAME_CHARS:
        return names, []
    if len(names) > MAX_KEY_CLASSES:
        return None, []
    return [str(i + 1) for i in range(len(names))], names


def _set_class_ticks(ax, labels: list[str] | None, centres, numbered: bool, show_x: bool = True, show_y: bool = True) -> None:
    if labels is None:
        ax.set_xticks([])
        ax.set_yticks([])
        return
    # Numbers can be thinned to every n-th without losing a name (the key has them all);
    # names are only ever shown all together.
    step = max(1, int(np.ceil(len(labels) / 25))) if numbered else 1
    chosen = np.arange(0, len(labels), step)
    positions = np.asarray(centres)[chosen]
    shown = [labels[i] for i in chosen]
    fontsize = 8 if len(labels) <= 10 else 6 if len(labels) <= 40 else 5
    ax.set_xticks(positions, shown if show_x else [], rotation=90, fontsize=fontsize)
    ax.set_yticks(positions, shown if show_y else [], fontsize=fontsize)


KEY_FONTSIZE = 7
KEY_LINE_INCHES = KEY_FONTSIZE * 1.5 / 72  # one key line, room for CJK glyphs' height
KEY_CHAR_INCHES = KEY_FONTSIZE * 0.62 / 72  # a generous average glyph width
KEY_NUMBER_INCHES = 0.3  # the numbers' column inside each key column


def key_layout(key: list[str], width_inches: float) -> tuple[int, float]:
    """(columns, height in inches) of a key of these names in a figure this wide."""
    if not key:
        return 0, 0.0
    column_inches = KEY_NUMBER_INCHES + max(len(name) for name in key) * KEY_CHAR_INCHES + 0.2
    columns = max(1, min(len(key), int(width_inches // column_inches)))
    rows = int(np.ceil(len(key) / columns))
    return columns, rows * KEY_LINE_INCHES + 0.35


def draw_key(ax, key: list[str], columns: int) -> None:
    """Number i+1 and the full name key[i], in `columns` columns read down then across.

    Every number and every name is its own text at a fixed line pitch: multi-line texts
    space their lines by the glyphs they hold (a CJK or accented line is taller), which
    would slide names away from their numbers, and a right-to-left name could reorder a
    number sharing its line.
    """
    ax.axis("off")
    rows = int(np.ceil(len(key) / columns))
    number_width = KEY_NUMBER_INCHES / ax.get_figure().get_figwidth()
    pitch = KEY_LINE_INCHES * 72
    for index, name in enumerate(key):
        column, row = divmod(index, rows)
        x = column / columns
        placed = {"xycoords": "axes fraction", "textcoords": "offset points", "va": "top", "fontsize": KEY_FONTSIZE}
        ax.annotate(str(index + 1), (x + number_width * 0.8, 1.0), xytext=(0, -row * pitch), ha="right", **placed)
        ax.annotate(name, (x + number_width, 1.0), xytext=(0, -row * pitch), ha="left", **placed)
    ax.set_title("classes (number on the axes: full name)", fontsize=8, loc="left")

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


def accuracy_figure(summary: pd.DataFrame, n_classes: int):
    """Left: the whole curve from 0 shots with chance; right: shots >= 1, y zoomed to the data and its bands."""
    with _figure_style():
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
    with _figure_style(class_names):
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
            _set_class_ticks(ax, labels, ticks, bool(key), show_x=bottom_of_column, show_y=i % cols == 0)
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
    with _figure_style(present):
        fig = Figure(figsize=(width, 6.0 + key_inches), layout="constrained")
        grid = fig.add_gridspec(1 + bool(key), 1, height_ratios=[6.0] + ([key_inches] if key else []))
        ax = fig.add_subplot(grid[0])
        image = ax.imshow(similarity, cmap="magma", vmin=-1, vmax=1, interpolation="nearest")
        boundaries = np.flatnonzero(np.diff(ordered_labels)) + 0.5
        for b in boundaries:
            ax.axhline(b, color="white", linewidth=0.6)
            ax.axvline(b, color="white", linewidth=0.6)
        centres = [np.flatnonzero(ordered_labels == c).mean() for c in classes]
        _set_class_ticks(ax, tick_labels, centres, bool(key))
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

    Draws the figure first so constrained layout has placed the axes; each round moves the
    lower of the first overlapping pair down (the upper one up) by the overlap.
    """
    if len(texts) < 2:
        return
    canvas = FigureCanvasAgg(fig)
    points_per_pixel = 72.0 / fig.dpi
    for _ in range(rounds):
        canvas.draw()
        renderer = canvas.get_renderer()
        boxes = [text.get_window_extent(renderer) for text in texts]
        pair = next(((i, j) for i in range(len(texts)) for j in range(i + 1, len(texts)) if boxes[i].overlaps(boxes[j])), None)
        if pair is None:
            return
        i, j = pair
        upper, lower = (i, j) if boxes[i].y0 + boxes[i].y1 >= boxes[j].y0 + boxes[j].y1 else (j, i)
        overlap = (boxes[lower].y1 - boxes[upper].y0 + 2.0) * points_per_pixel / 2
        for index, sign in ((upper, 1.0), (lower, -1.0)):
            x, y = texts[index].xyann
            texts[index].xyann = (x, y + sign * overlap)


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


def accuracy_vs_footprint_figure(summary: pd.DataFrame):
    """Mean accuracy against mean footprint, shots >= 1 (0 shots is a uniform guess at any size).

    One curve per model over its shot counts, its first and last shot count annotated.
    """
    learned = summary[summary["shots"] >= 1]
    positions = footprint_positions(learned)
    with _figure_style():
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
        ax.set_title("accuracy vs memory footprint (shots >= 1; dotted: a fixed footprint)")
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
