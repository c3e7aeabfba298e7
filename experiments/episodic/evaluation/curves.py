"""Learning curves of a run: held-out accuracy against training time, every stage on one clock.

Reads `pretrain/log.jsonl`, `finetune/log.jsonl` (when the run has that stage) and
`log.jsonl` of a run directory (or `pretrain_log.jsonl`, `finetune_log.jsonl` and
`log.jsonl` of a shipped checkpoint). Every record carries the cumulative training
seconds (measurements excluded) and the store-all 1-NN accuracy on 200 tasks of the
monitored split (validation alphabets when the run has them); memory-stage records add
the memory readout's per-shot accuracy on Kaiser-style episodes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from matplotlib.figure import Figure

from kshot_io import atomic_write


def read_curve(path: str | os.PathLike) -> list[dict]:
    """Every logged record of every stage, in training order."""
    path = Path(path)
    candidates = [path / "pretrain" / "log.jsonl", path / "pretrain_log.jsonl",
                  path / "finetune" / "log.jsonl", path / "finetune_log.jsonl", path / "log.jsonl"]
    records = []
    for log in candidates:
        if log.exists():
            records += [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not records:
        raise FileNotFoundError(f"{path} has no training log (log.jsonl or pretrain/log.jsonl)")
    return records


def curve_markdown(records: list[dict]) -> str:
    lines = ["| stage | step | training time | 1-NN 5-way 1-shot | 1-NN 20-way 1-shot | memory 1-shot (5-way episodes) |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in records:
        per_shot = r.get("heldout_per_shot")
        memory = f"{100 * per_shot[1]:.1f}%" if per_shot and len(per_shot) > 1 and per_shot[1] is not None else ""
        lines.append(f"| {r.get('stage', 'memory')} | {r['step']} | {r['seconds'] / 60:.1f} min "
                     f"| {100 * r['heldout_1nn_5w1s']:.1f}% | {100 * r['heldout_1nn_20w1s']:.1f}% | {memory} |")
    return "\n".join(lines) + "\n"


def curve_figure(records: list[dict], title: str = ""):
    """A matplotlib figure of the held-out 1-NN accuracies against training minutes, the stage boundary marked.

    Returned rather than saved, so a notebook shows it with its own backend."""

    minutes = [r["seconds"] / 60 for r in records]
    fig = Figure(figsize=(6.4, 3.6))
    ax = fig.subplots()
    for key, label in (("heldout_1nn_5w1s", "5-way 1-shot (1-NN)"), ("heldout_1nn_20w1s", "20-way 1-shot (1-NN)")):
        ax.plot(minutes, [100 * r[key] for r in records], marker="o", markersize=3, label=label)
    stages = [r.get("stage", "memory") for r in records]
    for stage, style, label in (("finetune", "--", "episodic fine-tuning starts"),
                                ("memory", ":", "memory-loss stage starts")):
        if stage in stages and stages.index(stage) > 0:  # a stage starts where the one before it ended
            ax.axvline(minutes[stages.index(stage) - 1], color="grey", linestyle=style, label=label)
    ax.set_xlabel("training time (minutes, 2-core CPU)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def plot_curve(records: list[dict], out: str | os.PathLike, title: str = "") -> None:
    """curve_figure written to a PNG (atomically)."""

    fig = curve_figure(records, title)
    with atomic_write(Path(out), "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)
