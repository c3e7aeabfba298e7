"""Accuracy against footprint: the table and figure that say what a fixed-size memory buys.

A run with a memory-size sweep holds one model per (method, size), named
`method@size` (`sweep_name`), all on the same shuffles. Read at the top shot count
every model reached, each row gives the footprint in bytes, its ratio to store-all's,
the accuracy, and paired differences (repeat by repeat, same shuffles;
experiments.core.metrics.paired_difference) against store-all and against the FIFO and
reservoir baselines of the same size. Store-all's own curve in the figure runs over
shots, because its bytes grow with every example; a fixed-size memory's is a curve
over sizes at the top shot count.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from experiments.core.figures import save_figure
from experiments.core.metrics import paired_difference
from experiments.core.run_files import FIGURES_DIR, FOOTPRINT_CSV, FOOTPRINT_MD
from experiments.faces.methods import split_name, sweep_name
from kshot_io import write_text_atomic

STORE_ALL = "baseline"
EQUAL_SIZE_BASELINES = ("fifo", "reservoir")
TABLE_COLUMNS = [
    "model", "method", "memory_size", "shots", "repeats", "mean_bytes", "bytes_ratio", "accuracy",
    "vs_store_all", "vs_store_all_low", "vs_store_all_high",
    "vs_fifo", "vs_fifo_low", "vs_fifo_high",
    "vs_reservoir", "vs_reservoir_low", "vs_reservoir_high",
]


def top_shots(frame: pd.DataFrame) -> int:
    """The largest shot count every model reached (the comparison point of the table)."""
    return int(frame.groupby("model")["shots"].max().min())


def _paired(per_repeat: dict[str, pd.Series], model: str, reference: str) -> tuple[float, float, float]:
    """(mean, low, high) of `model` - `reference` over their common repeats; NaN without a reference."""
    if reference not in per_repeat or reference == model:
        return (np.nan, np.nan, np.nan)
    a, b = per_repeat[model], per_repeat[reference]
    common = a.index.intersection(b.index)
    result = paired_difference(a.loc[common].to_numpy(), b.loc[common].to_numpy())
    return (result.mean, result.low, result.high)


def footprint_table(frame: pd.DataFrame, shots: int | None = None) -> pd.DataFrame:
    """One row per model at `shots` (default: `top_shots`), from a results.csv frame."""
    shots = top_shots(frame) if shots is None else int(shots)
    at = frame[frame["shots"] == shots]
    if STORE_ALL not in set(at["model"]):
        raise ValueError(f"the footprint table needs store-all ({STORE_ALL!r}) in the run; models: {sorted(set(frame['model']))}")
    store_all_bytes = float(at[at["model"] == STORE_ALL]["memory_bytes"].mean())
    # Each model's accuracy by repeat, grouped once: filtering the whole frame per pair was most of the report's time.
    per_repeat = {model: rows.set_index("repeat")["accuracy"].sort_index() for model, rows in at.groupby("model", sort=False)}
    rows = []
    for model in dict.fromkeys(at["model"]):
        method, size = split_name(model)
        mine = at[at["model"] == model]
        row = {
            "model": model, "method": method, "memory_size": size, "shots": shots, "repeats": len(mine),
            "mean_bytes": float(mine["memory_bytes"].mean()),
            "accuracy": float(mine["accuracy"].mean()),
        }
        row["bytes_ratio"] = row["mean_bytes"] / store_all_bytes
        references = {"store_all": STORE_ALL}
        references.update({name: sweep_name(name, size) for name in EQUAL_SIZE_BASELINES})
        for label, reference in references.items():
            mean, low, high = _paired(per_repeat, model, reference)
            row[f"vs_{label}"], row[f"vs_{label}_low"], row[f"vs_{label}_high"] = mean, low, high
        rows.append(row)
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def _difference(row, label) -> str:
    mean = row[f"vs_{label}"]
    if np.isnan(mean):
        return ""
    return f"{100 * mean:+.1f} [{100 * row[f'vs_{label}_low']:+.1f}, {100 * row[f'vs_{label}_high']:+.1f}]"


def footprint_markdown(table: pd.DataFrame) -> str:
    """The table as markdown: accuracy in %, differences in points with their 95% paired interval."""
    lines = [
        f"At {int(table['shots'].iloc[0])} shots, {int(table['repeats'].max())} repeats (same shuffles for every model). "
        "Differences are in accuracy points, model minus reference, mean over repeats "
        "[95% percentile bootstrap of the per-repeat differences].",
        "",
        "| model | bytes | x store-all | accuracy % | vs store-all | vs FIFO same size | vs reservoir same size |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for _, row in table.sort_values(["method", "mean_bytes"], kind="stable").iterrows():
        lines.append(
            f"| {row['model']} | {row['mean_bytes']:,.0f} | {row['bytes_ratio']:.2f} | {100 * row['accuracy']:.1f} | "
            f"{_difference(row, 'store_all')} | {_difference(row, 'fifo')} | {_difference(row, 'reservoir')} |"
        )
    return "\n".join(lines) + "\n"


def footprint_figure(frame: pd.DataFrame, title: str = ""):
    """Accuracy against bytes: a curve per method over its sizes at the top shot count,
    and store-all's curve over shots (its bytes grow with every example)."""

    shots = top_shots(frame)
    fig = Figure(figsize=(7.5, 4.8))
    ax = fig.subplots()
    learned = frame[(frame["shots"] >= 1) & (frame["shots"] <= shots)]
    store_all = learned[learned["model"] == STORE_ALL].groupby("shots")[["memory_bytes", "accuracy"]].mean()
    if not store_all.empty:
        ax.plot(store_all["memory_bytes"], store_all["accuracy"], "k-o", ms=3, label="store-all (1..%d shots)" % shots)
    table = footprint_table(frame, shots)
    for method, group in table[table["model"] != STORE_ALL].groupby("method", sort=False):
        group = group.sort_values("mean_bytes")
        ax.plot(group["mean_bytes"], group["accuracy"], marker="o", ms=3, label=method)
    ax.set_xscale("log")
    ax.set_xlabel("memory footprint (bytes, log scale)")
    ax.set_ylabel(f"mean accuracy at {shots} shots (store-all: at each shot count)")
    ax.set_title(title or f"accuracy against footprint, {shots} shots")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="lower right")
    return fig


def write_footprint(run_dir: str | Path, frame: pd.DataFrame, make_figure: bool = True) -> list[Path]:
    """footprint.csv, footprint.md and figures/footprint.png|svg for a run with store-all in it."""

    run_dir = Path(run_dir)
    table = footprint_table(frame)
    write_text_atomic(run_dir / FOOTPRINT_CSV, table.to_csv(index=False, float_format="%.6f", lineterminator="\n"))
    write_text_atomic(run_dir / FOOTPRINT_MD, footprint_markdown(table))
    paths = [run_dir / FOOTPRINT_CSV, run_dir / FOOTPRINT_MD]
    if make_figure:
        paths += save_figure(footprint_figure(frame), run_dir / FIGURES_DIR / "footprint")
    return paths
