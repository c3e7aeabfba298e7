"""A sweep's merged table, summary and figures, rebuilt from DIR alone.

The table reads each cell's run directory through its written files (summary.csv,
timings.csv) and its status, so it needs neither models nor data, and it is the same
whichever executor produced the cells. One row per cell and model:

    cell, status, <every swept key>, model, policy, repeats,
    acc_0shot, acc_1shot, ...        mean accuracy over repeats at each shot count
    memory_bytes                     mean footprint at the model's last shot count
    seconds_per_repeat, cell_seconds measured time (the only columns that vary between runs)

A failed cell has one row, status "failed", its swept values and nothing else.
"policy" is the model, joined with any [memory] setting whose name holds "policy",
so write policies added to the memory show up as their own series.

Figures (figures/*.png|svg): accuracy against footprint, one series per policy, and
accuracy against each swept key, one line per policy (mean over the other keys), both
at the largest shot count every finished row reached (named on the axis).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import tomllib
from matplotlib.figure import Figure

from experiments.core.run_files import (
    FIGURES_DIR,
    SUMMARY_CSV,
    SWEEP_CSV,
    SWEEP_MD,
    TIMINGS_FILE,
)
from experiments.core.figures import save_figure
from experiments.sweeps.spec import Sweep, cell_dir, read_status
from kshot_io import write_text_atomic

FLOAT_FORMAT = "%.9g"
MEASURED_COLUMNS = ("seconds_per_repeat", "cell_seconds")


def plan_csv(sweep: Sweep) -> str:
    rows = [{"cell": c.name, **{k: _cell_value(c.value(k)) for k in sweep.swept_keys}} for c in sweep.cells]
    return pd.DataFrame(rows, columns=["cell", *sweep.swept_keys]).to_csv(index=False, lineterminator="\n")


def _cell_value(value):
    return json.dumps(value) if isinstance(value, list) else value


def _policy(model: str, config_toml: str) -> str:
    memory = tomllib.loads(config_toml).get("memory", {})
    extra = [str(v) for k, v in memory.items() if "policy" in k]
    return " / ".join([model, *extra])


def merged_table(out_dir: Path, sweep: Sweep) -> pd.DataFrame:
    rows = []
    for cell in sweep.cells:
        status = read_status(out_dir, cell.name)
        settings = {k: _cell_value(cell.value(k)) for k in sweep.swept_keys}
        head = {"cell": cell.name, "status": status.get("state", "not run"), **settings}
        here = cell_dir(out_dir, cell.name)
        summary_path = here / SUMMARY_CSV
        if head["status"] != "done" or not summary_path.is_file():
            rows.append(head)
            continue
        summary = pd.read_csv(summary_path)
        timings_path = here / TIMINGS_FILE
        per_repeat = {}
        if timings_path.is_file():
            timings = pd.read_csv(timings_path)
            per_repeat = timings.groupby(["model", "repeat"], sort=False)["seconds"].sum().groupby(level=0).mean().to_dict()
        for model, group in summary.groupby("model", sort=False):
            group = group.sort_values("shots")
            row = {**head, "model": model, "policy": _policy(model, cell.config_toml), "repeats": int(group["repeats"].max())}
            row.update({f"acc_{int(s)}shot": float(m) for s, m in zip(group["shots"], group["mean"])})
            row["memory_bytes"] = float(group["mean_memory_bytes"].iloc[-1])
            row["seconds_per_repeat"] = float(per_repeat.get(model, math.nan))
            row["cell_seconds"] = float(status.get("seconds", math.nan))
            rows.append(row)
    frame = pd.DataFrame(rows)
    shot_columns = sorted((c for c in frame.columns if c.startswith("acc_")), key=lambda c: int(c[4:-4]))
    columns = ["cell", "status", *sweep.swept_keys, "model", "policy", "repeats", *shot_columns, "memory_bytes", *MEASURED_COLUMNS]
    return frame.reindex(columns=columns)


def headline_shots(table: pd.DataFrame) -> int | None:
    """The largest shot count every finished row has a value for."""
    done = table[table["status"] == "done"]
    reached = [int(c[4:-4]) for c in table.columns if c.startswith("acc_") and done[c].notna().all()]
    return max(reached) if reached and not done.empty else None


def write_sweep_report(out_dir: str | Path, sweep: Sweep, summary: str, make_figures: bool = True) -> pd.DataFrame:
    out_dir = Path(out_dir)
    table = merged_table(out_dir, sweep)
    write_text_atomic(out_dir / SWEEP_CSV, table.to_csv(index=False, float_format=FLOAT_FORMAT, lineterminator="\n"))
    shots = headline_shots(table)
    lines = ["# Sweep summary", "", summary.strip(), ""]
    if shots is not None:
        view = table[table["status"] == "done"][["cell", "model", f"acc_{shots}shot", "memory_bytes"]]
        lines += [f"## Accuracy at {shots} shots", "", _markdown(view), ""]
    write_text_atomic(out_dir / SWEEP_MD, "\n".join(lines))
    if make_figures and shots is not None:
        write_sweep_figures(out_dir / FIGURES_DIR, table, sweep.swept_keys, shots)
    return table


def _markdown(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    formats = {c: ("{:.0f}" if c == "memory_bytes" else "{:.4f}") for c in frame.columns}
    body = [
        "| " + " | ".join(formats[c].format(v) if isinstance(v, float) else str(v) for c, v in zip(frame.columns, row)) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *body])


def summary_text(sweep: Sweep, done: list[str], skipped: list[str], failed: dict[str, list[str]], rerun: str) -> str:
    lines = [
        f"Sweep {sweep.path}: {len(sweep.cells)} cell(s) over {', '.join(sweep.swept_keys) or 'no keys'}; "
        f"{len(done)} run now, {len(skipped)} already complete, {len(failed)} failed.",
    ]
    if failed:
        lines.append("Failed cells (status/<cell>.json has each traceback):")
        lines += [f"- {name}: {'; '.join(errors)}" for name, errors in sorted(failed.items())]
        lines.append(f"Re-run them (complete cells are skipped anyway) with:\n    {rerun}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- figures


def write_sweep_figures(figure_dir: Path, table: pd.DataFrame, swept_keys: tuple[str, ...], shots: int) -> list[Path]:
    done = table[table["status"] == "done"]
    column = f"acc_{shots}shot"
    paths = save_figure(footprint_figure(done, column, shots), figure_dir / "accuracy_vs_footprint")
    for key in swept_keys:
        paths += save_figure(swept_key_figure(done, key, column, shots), figure_dir / f"accuracy_vs_{key.replace('.', '_')}")
    return paths


def footprint_figure(done: pd.DataFrame, column: str, shots: int):
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for policy, group in done.groupby("policy", sort=False):
        group = group.sort_values("memory_bytes")
        ax.plot(np.maximum(group["memory_bytes"], 1), group[column], marker="o", ms=4, linestyle="none", label=policy)
    ax.set_xscale("log")
    ax.set_xlabel("memory footprint at the last shot (bytes, log scale)")
    ax.set_ylabel(f"mean accuracy at {shots} shots")
    ax.set_title("sweep: accuracy vs memory footprint, one point per cell")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def swept_key_figure(done: pd.DataFrame, key: str, column: str, shots: int):
    """One line per policy: mean over the cells sharing a value of `key`, the cells as faint dots."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    values = list(dict.fromkeys(done[key].tolist()))
    numeric = pd.api.types.is_numeric_dtype(done[key]) and not pd.api.types.is_bool_dtype(done[key])
    order = sorted(values) if numeric else values
    position = {v: (v if numeric else i) for i, v in enumerate(order)}
    for policy, group in done.groupby("policy", sort=False):
        x = group[key].map(position)
        line = ax.plot([], [])[0]
        ax.scatter(x, group[column], s=10, alpha=0.35, color=line.get_color())
        means = group.groupby(key, sort=False)[column].mean()
        xs = [position[v] for v in order if v in means.index]
        ax.plot(xs, [means[v] for v in order if v in means.index], marker="o", color=line.get_color(), label=policy)
    if numeric and len(order) > 1 and min(order) > 0 and max(order) / min(order) >= 10:
        ax.set_xscale("log")
    if not numeric:
        ax.set_xticks(range(len(order)), [str(v) for v in order], rotation=20, fontsize=8)
    ax.set_xlabel(key)
    ax.set_ylabel(f"mean accuracy at {shots} shots")
    ax.set_title(f"sweep: accuracy vs {key} (line: mean over the other swept keys)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
