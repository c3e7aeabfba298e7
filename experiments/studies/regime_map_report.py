"""The regime map's table and figure, drawn from its results json alone.

The table has one row per cell (key set, classes, slots per class): store-all's
accuracy, every other method's paired difference to it in points, and the best bounded
method. A difference whose 95% interval lies wholly below zero is marked with a dagger:
there the method loses what store-all keeps. The figure has one panel per (key set,
classes): x = slots per class, y = accuracy minus store-all, one line per method, so
the regime where a policy holds is where its line sits at or above zero. The y axis is
symmetric-log (linear within one point of zero): below one slot per class a bounded memory
cannot hold every class and loses tens of points, above it the differences are a few.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from experiments.core.figures import save_figure
from kshot_io import write_text_atomic

RESULTS_JSON = "regime_map.json"   # the same name experiments.studies.regime_map writes
TABLE_MD = "regime_map.md"
FIGURE_STEM = "regime_map"
STORE_ALL = "baseline"
SHORT = {"class_means": "class means", "fifo": "FIFO", "reservoir": "reservoir", "memory": "paper rule",
         "memory_running_mean": "running mean", "memory_balanced": "balanced", "memory_threshold": "threshold",
         "memory_fold": "fold"}
BOUNDED = ("fifo", "reservoir", "memory", "memory_running_mean", "memory_balanced", "memory_threshold", "memory_fold")


def best_bounded(cell: dict) -> tuple[str, ...]:
    """The bounded methods with the highest accuracy in the cell: several when they tie exactly
    (two policies that never evict or never merge in a cell give the same answers)."""
    best = max(cell["methods"][m]["accuracy"] for m in BOUNDED)
    return tuple(m for m in BOUNDED if cell["methods"][m]["accuracy"] == best)


def _difference(entry: dict) -> str:
    text = f"{100 * entry['vs_store_all']:+.1f}"
    return text + "†" if entry["vs_store_all_high"] < 0 else text


def map_markdown(results: dict) -> str:
    cells = results["cells"]
    if not cells:
        return "No cells yet.\n"
    others = ["class_means", *BOUNDED]
    repeats = sorted({c["repeats"] for c in cells})
    lines = [
        f"Accuracy at the top shot count; {'/'.join(map(str, repeats))} paired shuffles per cell. Store-all in %, "
        "every other method as its difference to store-all in points (mean over the same shuffles); † = its 95% "
        "interval lies wholly below 0. Best = the bounded method(s) of the highest accuracy, exact ties joined by = "
        "(class means and store-all are unbounded).",
        "",
        "| key set | classes | slots/class | slots | shots | store-all % | "
        + " | ".join(SHORT[m] for m in others) + " | best bounded |",
        "|---|---:|---:|---:|---:|---:|" + "---:|" * len(others) + "---|",
    ]
    for cell in cells:
        methods = cell["methods"]
        lines.append(
            f"| {cell['key_set']} | {cell['classes']} | {cell['slots_per_class']:g} | {cell['memory_size']} | "
            f"{cell['shots']} | {100 * methods[STORE_ALL]['accuracy']:.1f} | "
            + " | ".join(_difference(methods[m]) for m in others)
            + f" | {' = '.join(SHORT[m] for m in best_bounded(cell))} |"
        )
    spread = ["", "Key sets (spread: mean cosine of an item to its class mean / between class means):", ""]
    for name, info in sorted(results["key_sets"].items()):
        spread.append(f"- {name}: {info['classes']} classes, {info['items']} items, {info['key_dim']}-d, "
                      f"spread {info['spread']['within']:.3f} / {info['spread']['between']:.3f}")
    return "\n".join(lines + spread) + "\n"


def map_figure(results: dict) -> Figure:
    panels = sorted({(c["key_set"], c["classes"]) for c in results["cells"]})
    key_sets = sorted({k for k, _ in panels})
    columns = max(sum(1 for k, _ in panels if k == name) for name in key_sets) if panels else 1
    fig = Figure(figsize=(3.0 * columns, 2.4 * max(1, len(key_sets))), constrained_layout=True)
    axes = np.atleast_2d(fig.subplots(max(1, len(key_sets)), columns, squeeze=False))
    colours = {m: f"C{i}" for i, m in enumerate(["class_means", *BOUNDED])}
    for row, name in enumerate(key_sets):
        mine = [count for k, count in panels if k == name]
        for column in range(columns):
            ax = axes[row, column]
            if column >= len(mine):
                ax.set_visible(False)
                continue
            cells = sorted((c for c in results["cells"] if c["key_set"] == name and c["classes"] == mine[column]),
                           key=lambda c: c["slots_per_class"])
            x = [c["slots_per_class"] for c in cells]
            for method in ["class_means", *BOUNDED]:
                y = [100 * c["methods"][method]["vs_store_all"] for c in cells]
                ax.plot(x, y, marker="o", ms=2.5, lw=1.1, color=colours[method], label=SHORT[method],
                        ls="--" if method == "class_means" else "-")
            ax.axhline(0, color="k", lw=0.8)
            ax.set_yscale("symlog", linthresh=1.0)   # -50 (half the classes have no slot) and -0.5 both legible
            ax.set_xscale("log", base=2)
            ax.set_xticks(x, [f"{v:g}" for v in x])
            store_all = 100 * cells[0]["methods"][STORE_ALL]["accuracy"]
            ax.set_title(f"{name}, {mine[column]} classes (store-all {store_all:.0f}%)", fontsize=7)
            ax.tick_params(labelsize=6)
            if column == 0:
                ax.set_ylabel("minus store-all (points, symlog)", fontsize=6)
            if row == len(key_sets) - 1:
                ax.set_xlabel("slots per class", fontsize=6)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=6)
    return fig


def write_report(out: str | Path) -> list[Path]:
    """regime_map.md and regime_map.png|svg next to the results json in `out`."""
    out = Path(out)
    path = out / RESULTS_JSON
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; run the map first (python -m experiments.studies.regime_map)")
    results = json.loads(path.read_text(encoding="utf-8"))
    write_text_atomic(out / TABLE_MD, map_markdown(results))
    return [out / TABLE_MD, *save_figure(map_figure(results), out / FIGURE_STEM, formats=("png",))]
