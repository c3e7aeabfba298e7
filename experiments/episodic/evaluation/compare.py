"""Two Omniglot checkpoints on the same held-out tasks: the paired difference of their accuracy.

Each checkpoint's own interval says how well it is measured, not whether it beats the
other: on the same 1,000 tasks most answers agree, so the difference is known far more
precisely than the two intervals suggest, and two overlapping intervals can hide a
real gain. Here both embedders answer exactly the same tasks (the tasks depend only
on the data, the setting and the seed), and the per-task differences in accuracy give
a percentile-bootstrap interval and a Wilcoxon signed-rank test
(experiments.core.metrics.paired_difference). A difference whose interval includes zero is
reported as within noise.

Both checkpoints must hold out the same alphabets; comparing across splits would
compare the alphabets as much as the embedders.
"""

from __future__ import annotations

import os

import numpy as np

from experiments.core.metrics import PAIRED_METHOD, paired_difference, proportion
from experiments.episodic.evaluation.verdicts import verdict
from experiments.episodic.evaluation.heldout import restore_held_out
from experiments.episodic.evaluation.task_spec import TaskSpec
from experiments.episodic.evaluation.tasks import build_readout, task_answers
from experiments.episodic.model import embed_images
from experiments.episodic.settings import READOUTS


def compare_checkpoints(
    checkpoint: str | os.PathLike,
    reference: str | os.PathLike,
    tasks: TaskSpec,
    sources=None,
    readout: str = "memory",
) -> dict:
    """(checkpoint - reference) accuracy per (ways, shots) cell of `tasks` on the same tasks; a JSON-ready dict.

    `tasks.split` "validation" compares on the validation alphabets: the way to choose between
    two recipes without looking at the test alphabets; "unseen" on every drawing of
    `sources`, a character set neither checkpoint had (heldout.py). `tasks.within_alphabet`
    draws the classes of each task from one alphabet (tasks.task_answers): harder tasks, so
    a difference that mixed tasks hide near 99% can show. Per-shot episodes are not compared, and
    the results record no `tasks.queries` (the command line compares with one query per class)."""
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {', '.join(READOUTS)}, got {readout!r}")
    split, ways, episodes = tasks.split, tasks.ways, tasks.episodes
    loaded = {}
    for role, path in (("checkpoint", checkpoint), ("reference", reference)):
        loaded[role] = restore_held_out(path, sources, split, ways, tasks.within_alphabet)[:5]
    held_out = {role: entry[4] for role, entry in loaded.items()}
    if held_out["checkpoint"] != held_out["reference"]:
        raise ValueError(
            f"{checkpoint} holds out {', '.join(held_out['checkpoint'])} but {reference} holds out "
            f"{', '.join(held_out['reference'])} as its {split} alphabets; compare checkpoints trained with the same split"
        )

    hits = {}  # role -> (ways, shots) -> correct answers per task [episodes]
    for role, (config, embedder, _, part, _) in loaded.items():
        keys = embed_images(embedder, part.images)
        scored = {readout: build_readout(readout, config, seed_offset=2, classes=max(ways))}  # as `eval` builds it
        hits[role] = {}
        for n, k in tasks.cells:
            truth, answered = task_answers(keys, part, scored, n, k, tasks)
            hits[role][(n, k)] = np.sum(answered[readout] == truth, axis=1)
    cells = []
    for n, k in tasks.cells:
        answers = n * tasks.queries  # per task
        model, base = hits["checkpoint"][(n, k)] / answers, hits["reference"][(n, k)] / answers
        difference = paired_difference(model, base)
        cells.append({
            "ways": n, "shots": k, "episodes": episodes,
            "checkpoint": proportion(int(hits["checkpoint"][(n, k)].sum()), episodes * answers),
            "reference": proportion(int(hits["reference"][(n, k)].sum()), episodes * answers),
            "difference": difference.mean, "ci_low": difference.low, "ci_high": difference.high,
            "p_value": difference.p_value, "resolved": difference.resolved,
        })
    return {
        "checkpoint": str(checkpoint), "reference": str(reference),
        "steps": {role: entry[2] for role, entry in loaded.items()},
        "evaluated": split, "alphabets": list(held_out["checkpoint"]), "readout": readout, "seed": tasks.seed,
        "within_alphabet": tasks.within_alphabet,
        "method": PAIRED_METHOD.replace("repeat", "task"), "cells": cells,
    }


def comparison_markdown(results: dict) -> str:
    """One row per cell: both accuracies and the paired difference, 'within noise' when its interval holds 0."""
    lines = [
        f"{results['readout']} readout, checkpoint `{results['checkpoint']}` minus reference "
        f"`{results['reference']}`, the same tasks on the {results['evaluated']} alphabets "
        f"{', '.join(results['alphabets'])} "
        + ("(the classes of each task from one alphabet) " if results.get("within_alphabet") else "") +
        f"({results['method']}):",
        "",
        "| ways | shots | tasks | checkpoint | reference | difference (points) | 95% CI | verdict |",
        "|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for cell in results["cells"]:
        lines.append(
            f"| {cell['ways']} | {cell['shots']} | {cell['episodes']} | {100 * cell['checkpoint']['mean']:.1f}% "
            f"| {100 * cell['reference']['mean']:.1f}% | {100 * cell['difference']:+.2f} "
            f"| [{100 * cell['ci_low']:+.2f}, {100 * cell['ci_high']:+.2f}] | {verdict(cell)} |"
        )
    return "\n".join(lines)
