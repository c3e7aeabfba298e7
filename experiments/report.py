"""Summary tables and figures, rebuilt from a run directory alone.

`write_report(run_dir)` reads results.csv, timings.csv, confusion.npz, dataset.npz,
config.toml and notes.txt (all written by `kshot run`) and writes summary.csv,
summary.md and figures/*.png|svg. It needs no model and no images, so `kshot report
DIR` works on a copied run directory.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from experiments import footprint, methods, metrics, plots, results as store
from kshot_io import write_text_atomic


def model_order(run_dir: Path, frame: pd.DataFrame) -> list[str]:
    present = list(dict.fromkeys(frame["model"]))
    config_path = Path(run_dir) / "config.toml"
    if config_path.is_file():
        with open(config_path, "rb") as handle:
            listed = tomllib.load(handle).get("run", {}).get("models", [])
        return [m for m in listed if m in present] + [m for m in present if m not in listed]
    return present


def timing_from_disk(run_dir: Path) -> dict:
    path = Path(run_dir) / "timings.csv"
    if not path.is_file():
        return {}
    frame = pd.read_csv(path)
    per_repeat = frame.groupby(["model", "repeat"], sort=False)["seconds"].sum()
    return {
        model: {"repeats": int(group.size), "seconds_per_repeat": float(group.mean())}
        for model, group in per_repeat.groupby(level=0, sort=False)
    }


def summary_markdown(summary: pd.DataFrame) -> str:
    """A Markdown table: one row per model and shots, accuracy as mean [95% CI]."""
    lines = [
        "| model | shots | repeats | accuracy mean | 95% CI | memory bytes |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for row in summary.itertuples(index=False):
        ci = "n/a (1 repeat)" if np.isnan(row.ci_low) else f"[{row.ci_low:.4f}, {row.ci_high:.4f}]"
        lines.append(
            f"| {row.model} | {row.shots} | {row.repeats} | {row.mean:.4f} | {ci} | {row.mean_memory_bytes:.0f} |"
        )
    return "\n".join(lines) + "\n"


def timing_markdown(timing: dict) -> str:
    lines = ["| model | repeats | seconds per repeat |", "|---|---:|---:|"]
    for model, t in timing.items():
        lines.append(f"| {model} | {t['repeats']} | {t['seconds_per_repeat']:.3f} |")
    return "\n".join(lines) + "\n"


def write_report(run_dir: str | Path, make_figures: bool = True, timing: dict | None = None, notes: list[str] | None = None) -> dict:
    """Write summary.csv, summary.md and the figures; returns {'summary': DataFrame, 'figures': [paths]}."""
    run_dir = Path(run_dir)
    frame = store.load_results(run_dir)
    order = model_order(run_dir, frame)
    summary = metrics.summarize(frame, order)
    write_text_atomic(run_dir / "summary.csv", summary.to_csv(index=False, float_format="%.6f", lineterminator="\n"))

    notes_path = run_dir / "notes.txt"
    if notes is not None:
        write_text_atomic(notes_path, "\n".join(notes) + "\n")
    elif notes_path.is_file():
        notes = notes_path.read_text(encoding="utf-8").splitlines()
    timing = timing if timing is not None else timing_from_disk(run_dir)

    markdown = ["# k-shot run summary", ""]
    markdown += [f"- {n}" for n in (notes or [])]
    markdown += ["", "## Accuracy (mean and 95% t-interval over repeats)", "", summary_markdown(summary)]
    if timing:
        markdown += ["## Time", "", timing_markdown(timing)]
    write_text_atomic(run_dir / "summary.md", "\n".join(markdown))

    if any(methods.split_name(m)[1] is not None for m in order) and footprint.STORE_ALL in order:
        footprint.write_footprint(run_dir, frame, make_figure=make_figures)
        markdown += ["## Accuracy against footprint", "", (run_dir / "footprint.md").read_text(encoding="utf-8")]
        write_text_atomic(run_dir / "summary.md", "\n".join(markdown))

    figures: list[Path] = []
    if make_figures:
        figures = write_figures(run_dir, summary)
    return {"summary": summary, "figures": figures, "timing": timing, "markdown": "\n".join(markdown)}


def write_figures(run_dir: Path, summary: pd.DataFrame) -> list[Path]:
    figure_dir = run_dir / "figures"
    class_names, confusion = store.load_confusion(run_dir)
    paths = plots.plot_accuracy(summary, len(class_names), figure_dir / "accuracy_vs_shots")
    paths += plots.plot_accuracy_vs_footprint(summary, figure_dir / "accuracy_vs_footprint")
    for model in summary["model"].unique():
        if model in confusion and methods.split_name(model)[1] is None:  # not one per size of a sweep
            paths += plots.plot_confusion_evolution(confusion[model], class_names, model, figure_dir / f"confusion_{model}")
    dataset = store.load_dataset(run_dir)
    if dataset is not None:
        paths += plots.plot_similarity(
            dataset["embeddings"], dataset["labels"], [str(n) for n in dataset["class_names"]], figure_dir / "dataset_similarity"
        )
    return paths


def accuracy_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Wide view: one row per shots, one 'mean [low, high]' column per model (for printing)."""
    cells = summary.assign(
        cell=[
            f"{m:.3f}" if np.isnan(lo) else f"{m:.3f} [{lo:.3f}, {hi:.3f}]"
            for m, lo, hi in zip(summary["mean"], summary["ci_low"], summary["ci_high"])
        ]
    )
    return cells.pivot(index="shots", columns="model", values="cell").reindex(columns=list(dict.fromkeys(summary["model"])))
