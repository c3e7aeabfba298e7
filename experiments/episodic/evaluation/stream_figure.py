"""The figure of a life-long stream's results (stream.py): accuracy by shot and by position, one line per readout.

Left: accuracy on drawings with k earlier drawings of their character, by k. Right:
accuracy on the stream's tenths (items with an earlier drawing). One line per readout
and size; the sized readouts of one size share a line style, a readout a colour.
"""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.figure import Figure

from experiments.core.figures import save_figure

COLOURS = {"store-all": "black", "memory": "tab:blue", "fifo": "tab:orange", "reservoir": "tab:green",
           "prototype": "tab:red"}
STYLES = ("-", "--", "-.", ":", (0, (1, 3)))


def stream_figure(results: dict, title: str = "") -> Figure:
    fig = Figure(figsize=(11, 4.2))
    by_shot, by_position = fig.subplots(1, 2, sharey=True)
    classes = results["classes"]
    sizes = sorted({row["size"] for row in results["rows"] if row["readout"] not in ("store-all", "prototype")})
    for row in results["rows"]:
        unsized = row["readout"] in ("store-all", "prototype")
        style = "-" if unsized else STYLES[sizes.index(row["size"]) % len(STYLES)]
        label = (f"{row['readout']} ({row['size']:,} slots)" if unsized else
                 f"{row['readout']}, {row['size'] / classes:.2g} per character")
        shots = [s for s in row["by_shot"] if s["shot"] >= 1 and s["items"]]
        kwargs = {"color": COLOURS.get(row["readout"], "grey"), "linestyle": style, "linewidth": 1.4}
        by_shot.plot([s["shot"] for s in shots], [100 * s["mean"] for s in shots], label=label, **kwargs)
        bins = row["by_position"]
        by_position.plot([(b["from"] + b["to"]) / 2 for b in bins], [100 * b["mean"] for b in bins], **kwargs)
    by_shot.set_xlabel("earlier drawings of the character (shots)")
    by_shot.set_ylabel("accuracy, %")
    by_position.set_xlabel(f"position in the stream of {results['items']:,} drawings (tenths)")
    for axes in (by_shot, by_position):
        axes.grid(alpha=0.3)
    fig.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_stream(results: dict, stem: str | os.PathLike, title: str = "") -> list[Path]:
    """stream_figure written as `stem`.png and `stem`.svg (atomically)."""
    return save_figure(stream_figure(results, title), Path(stem))
