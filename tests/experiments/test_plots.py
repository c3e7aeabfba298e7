"""The figures' structure, checked on the drawn figure: labels, colorbars, full names,
nothing drawn over anything else, fonts for non-Latin names, bytes that repeat."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from experiments.core import figures
from experiments.faces import plots

SHORT_NAMES = ["ben_affleck", "elton_john", "jerry_seinfeld_the_comic", "madonna", "mindy_kaling"]
CJK_FAMILIES = {"Noto Sans CJK JP", "Noto Sans CJK SC", "Noto Sans CJK TC", "Noto Sans CJK KR", "IPAexGothic",
                "Droid Sans Fallback", "WenQuanYi Zen Hei"}


def long_names(n: int = 40) -> list[str]:
    bases = ["Jean-Baptiste Émile Lefèvre-Dubois", "Александр Сергеевич Пушкин", "Κωνσταντίνος Καβάφης",
             "Maria Magdalena von Hohenzollern-Sigmaringen", "Ng"]
    return [f"{bases[i % len(bases)]} {i:02d}" for i in range(n)]


def fake_summary(models: dict[str, list[float]], shots: int = 6) -> pd.DataFrame:
    """Rows like summary.csv: means rising with shots, intervals inside [0, 1] touching 1."""
    rows = []
    for model, footprint in models.items():
        for k in range(shots + 1):
            mean = 0.2 if k == 0 else min(1.0, 0.9 + 0.02 * k)
            rows.append({"model": model, "shots": k, "repeats": 7, "mean": mean, "ci_low": max(0.0, mean - 0.06),
                         "ci_high": min(1.0, mean + 0.04), "std": 0.05, "mean_n_eval": 50,
                         "mean_memory_bytes": footprint[min(k, len(footprint) - 1)]})
    return pd.DataFrame(rows)


def confusion_counts(n_classes: int, iterations: int = 8, repeats: int = 3) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 5, size=(repeats, iterations, n_classes, n_classes)) + 3 * np.eye(n_classes, dtype=int)


def drawn(fig):
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def panels(fig):
    """The data axes: those with an image or lines, not colorbars or the key."""
    return [ax for ax in fig.axes if (ax.images or ax.lines) and not hasattr(ax, "_colorbar")]


def colorbar_for(fig, matrices):
    """The one colorbar of these image panels, all on its scale."""
    (colorbar,) = [ax._colorbar for ax in fig.axes if hasattr(ax, "_colorbar")]
    assert colorbar.mappable in [ax.images[0] for ax in matrices]
    assert all(ax.images[0].get_clim() == colorbar.mappable.get_clim() for ax in matrices)
    assert colorbar.ax.get_ylabel()
    return colorbar


def visible_texts(ax):
    texts = [ax.title, ax.xaxis.label, ax.yaxis.label]
    texts += [label for label in ax.get_xticklabels() + ax.get_yticklabels()]
    return [text for text in texts if text.get_visible() and text.get_text()]


def assert_no_overlap_between_axes(fig):
    """No title, axis label or tick label of one axes is drawn over one of another axes."""
    renderer = drawn(fig)
    boxes = [(index, text.get_text(), text.get_window_extent(renderer))
             for index, ax in enumerate(fig.axes) for text in visible_texts(ax)]
    for (a, text_a, box_a), (b, text_b, box_b) in itertools.combinations(boxes, 2):
        if a != b:
            assert not box_a.overlaps(box_b), f"{text_a!r} (axes {a}) overlaps {text_b!r} (axes {b})"


def key_text(fig) -> str:
    return "\n".join(text.get_text() for ax in fig.axes for text in ax.texts)


# ---------------------------------------------------------------- accuracy vs shots


def test_accuracy_panels_have_y_labels_and_the_zoom_shows_whole_bands():
    summary = fake_summary({"baseline": [8], "memory": [100]})
    fig = plots.accuracy_figure(summary, n_classes=5)
    full, zoom = panels(fig)
    assert full.get_ylabel() and zoom.get_ylabel() == full.get_ylabel()
    learned = summary[summary.shots >= 1]
    bottom, top = zoom.get_ylim()
    assert bottom <= learned.ci_low.min() and top >= learned.ci_high.max() == 1.0
    # The bands are drawn with the summary's bounds as they are, not clipped or shifted.
    band_tops = [collection.get_paths()[0].vertices[:, 1].max() for collection in zoom.collections]
    assert np.allclose(band_tops, [1.0, 1.0])
    assert_no_overlap_between_axes(fig)


# ---------------------------------------------------------------- confusion evolution


def test_confusion_shows_full_names_a_colorbar_and_labels_on_every_panel():
    fig = plots.confusion_evolution_figure(confusion_counts(len(SHORT_NAMES), iterations=11), SHORT_NAMES, "memory")
    matrices = panels(fig)
    assert len(matrices) == 11
    colorbar_for(fig, matrices)
    assert all(ax.get_ylabel() and ax.get_xlabel() for ax in matrices)
    drawn(fig)
    first = matrices[0]
    assert [label.get_text() for label in first.get_yticklabels()] == SHORT_NAMES
    bottom_left = matrices[6]
    assert [label.get_text() for label in bottom_left.get_xticklabels()] == SHORT_NAMES
    assert_no_overlap_between_axes(fig)


def test_confusion_with_many_long_names_numbers_the_ticks_and_keys_every_full_name():
    names = long_names(40)
    fig = plots.confusion_evolution_figure(confusion_counts(40, iterations=7), names, "memory")
    matrices = panels(fig)
    drawn(fig)
    ticks = [label.get_text() for label in matrices[0].get_yticklabels()]
    assert ticks and all(tick.isdigit() for tick in ticks)
    key = key_text(fig).splitlines()
    for number, name in enumerate(names, start=1):
        assert name in key and str(number) in key
    colorbar_for(fig, matrices)
    assert_no_overlap_between_axes(fig)
    key_boxes = [text.get_window_extent() for ax in fig.axes for text in ax.texts]
    for box_a, box_b in itertools.combinations(key_boxes, 2):
        assert not box_a.overlaps(box_b), "two columns of the class key overlap"


# ---------------------------------------------------------------- similarity


@pytest.mark.parametrize("names", [SHORT_NAMES, long_names(40)], ids=["few", "many-long"])
def test_similarity_has_a_colorbar_axis_labels_and_every_full_name(names):
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(len(names)), 3)
    fig = plots.similarity_figure(rng.normal(size=(labels.size, 8)), labels, names)
    (matrix,) = panels(fig)
    colorbar_for(fig, [matrix])
    assert matrix.get_xlabel() and matrix.get_ylabel()
    drawn(fig)
    shown = [label.get_text() for label in matrix.get_yticklabels()] + key_text(fig).splitlines()
    assert all(name in shown for name in names)
    assert_no_overlap_between_axes(fig)


def sweep_summary() -> pd.DataFrame:
    """Nine methods at seven memory sizes plus store-all and class means: 51 models, as in a footprint study."""
    sized = ["memory", "memory_running_mean", "memory_balanced", "memory_threshold", "memory_fold", "fifo", "reservoir"]
    models = {"baseline": [8 + 2600 * k for k in range(11)], "class_means": [2600]}
    models |= {f"{m}@{s}": [530 * s] for m in sized for s in (5, 8, 10, 16, 24, 32, 50)}
    summary = fake_summary(models, shots=10)
    # Make one size of each method the best at the top shot count, so "best size" is well defined.
    top = summary["shots"] == 10
    summary.loc[top, "mean"] = 0.99
    summary.loc[top & summary["model"].isin([f"{m}@16" for m in sized]), "mean"] = 0.995
    return summary


def test_many_models_get_one_panel_per_method_with_one_legend():
    summary = sweep_summary()
    assert summary["model"].nunique() == 51 > plots.MAX_CURVES
    fig = plots.accuracy_figure(summary, n_classes=5)
    drawn_panels = panels(fig)
    assert [ax.get_title() for ax in drawn_panels] == ["class_means", "memory", "memory_running_mean",
                                                       "memory_balanced", "memory_threshold", "memory_fold",
                                                       "fifo", "reservoir"]
    # Each sized method's panel: its 7 sizes and the store-all reference, no panel legend over the data.
    assert all(len(ax.lines) == 8 and ax.get_legend() is None for ax in drawn_panels[1:])
    (legend,) = fig.legends
    assert [text.get_text() for text in legend.get_texts()] == [f"{s} slots" for s in (5, 8, 10, 16, 24, 32, 50)] + [
        "store-all (baseline)"]
    assert_no_overlap_between_axes(fig)


def test_a_few_models_keep_the_two_panel_figure():
    fig = plots.accuracy_figure(fake_summary({f"m{i}": [8] for i in range(plots.MAX_CURVES)}), n_classes=5)
    assert len(panels(fig)) == 2 and all(len(ax.lines) >= plots.MAX_CURVES for ax in panels(fig))


def test_many_models_on_the_footprint_figure_keep_each_methods_best_size():
    fig = plots.accuracy_vs_footprint_figure(sweep_summary())
    (ax,) = panels(fig)
    labels = sorted(line.get_label().split(" ")[0] for line in ax.lines if not line.get_label().startswith("_"))
    assert labels == sorted(["baseline", "class_means"] + [f"{m}@16" for m in (
        "memory", "memory_running_mean", "memory_balanced", "memory_threshold", "memory_fold", "fifo", "reservoir")])


# ---------------------------------------------------------------- footprint


def test_footprint_fixed_models_get_their_own_readable_slots_and_annotations_do_not_overlap():
    summary = fake_summary({
        "baseline": [8 + 2600 * k for k in range(7)],  # store-all grows with shots
        "memory": [16968],
        "memory_finetune_phase_off": [16968],  # same memory size: same bytes as memory
        "memory_finetune_phase_on": [16968],
    })
    fig = plots.accuracy_vs_footprint_figure(summary)
    (ax,) = panels(fig)
    assert ax.get_ylabel() and ax.get_xlabel()
    curves = {line.get_label().split(" ")[0]: line.get_xdata() for line in ax.lines if not line.get_label().startswith("_")}
    assert np.allclose(curves["baseline"], [8 + 2600 * k for k in range(1, 7)])
    fixed = ["memory", "memory_finetune_phase_off", "memory_finetune_phase_on"]
    for model in fixed:
        assert len(np.unique(curves[model])) == 6, f"{model} is drawn as a vertical line"
    spans = sorted((curves[m].min(), curves[m].max()) for m in fixed)
    assert all(right < left for (_, right), (left, _) in zip(spans, spans[1:])), "fixed-footprint models overlap"
    renderer = drawn(fig)
    boxes = [text.get_window_extent(renderer) for text in ax.texts]
    assert len(boxes) == 8
    for box_a, box_b in itertools.combinations(boxes, 2):
        assert not box_a.overlaps(box_b)


# ---------------------------------------------------------------- fonts and bytes


def test_latin_greek_cyrillic_names_always_have_a_font():
    assert figures.names_without_font(long_names(5)) == []


def test_cjk_names_are_drawn_when_a_cjk_font_is_installed_and_warned_about_when_not(tmp_path):
    names = ["宮崎駿", "李白", "김연아"]
    has_cjk = bool(CJK_FAMILIES & set(figures.font_families()))
    assert figures.names_without_font(names) == ([] if has_cjk else names)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        figures.save_figure(plots.confusion_evolution_figure(confusion_counts(3, 2), names, "memory"), tmp_path / "cjk")
    ours = [w for w in caught if "class name" in str(w.message)]
    assert bool(ours) != has_cjk
    assert not [w for w in caught if "missing from font" in str(w.message)]


def test_a_name_no_font_covers_gives_one_warning_naming_it():
    name = "Linear B \U00010000"
    with pytest.warns(UserWarning, match="Linear B") as caught:
        plots.confusion_evolution_figure(confusion_counts(2, 2), ["plain", name], "memory")
    assert len([w for w in caught if "class name" in str(w.message)]) == 1


def test_saved_figures_are_byte_identical_between_two_saves(tmp_path):
    summary = fake_summary({"baseline": [8 + 2600 * k for k in range(7)], "memory": [16968]})
    first = plots.plot_accuracy_vs_footprint(summary, tmp_path / "a")
    second = plots.plot_accuracy_vs_footprint(summary, tmp_path / "b")
    for one, other in zip(first, second):
        assert one.read_bytes() == other.read_bytes(), one.suffix
    assert b"<dc:date>" not in first[1].read_bytes()


def test_separate_texts_leaves_no_two_annotations_overlapping_after_the_final_layout():
    fig = Figure(figsize=(4, 3), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1])
    texts = [ax.annotate(f"{k} shots", (0.5, 0.5), xytext=(4, 4), textcoords="offset points", fontsize=6)
             for k in range(8)]  # eight labels on one point
    plots.separate_texts(fig, texts)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    boxes = [text.get_window_extent(canvas.get_renderer()) for text in texts]
    overlapping = [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes)) if boxes[i].overlaps(boxes[j])]
    assert overlapping == []
