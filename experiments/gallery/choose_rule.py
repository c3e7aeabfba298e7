"""Choosing the gallery's threshold rule on two choosing sets, by a decision rule fixed beforehand.

The celebrity train photos (5 people) cannot show a many-class failure, so the rule is
chosen on them and on a many-class set together: Omniglot keys of the development split's
validation alphabets (`kshot omniglot embed --split validation`), in the many-class
probe's layout. docs/lab/2026-12-gallery-thresholds.md fixed the candidates, the cells and
the decision rule before this ran; nothing here reads a reporting set.

    python -m experiments.gallery.choose_rule VALIDATION_KEYS.npz docs/results/gallery/rule_choice.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from experiments.faces import identification
from experiments.gallery import demo
from experiments.gallery.gallery import Gallery
from experiments.gallery.many_classes import split_rows
from kshot_io import write_text_atomic
from kshot_io.npz import read_npz

CANDIDATES = ("pairs", "pairs_t", "extreme", "pairs_t+extreme")   # in the order the lab entry lists them
LAYOUT = {"enrolled": 30, "photos": 5, "strangers": 10, "splits": 20}
LIMIT = 0.01   # pooled stranger acceptance allowed in every cell


def many_class_counts(embeddings: np.ndarray, labels: np.ndarray, store_all: bool, layout: dict = LAYOUT,
                      candidates=CANDIDATES) -> dict:
    """Per candidate: strangers accepted and known items named right, pooled over the seeded splits."""
    counts = {rule: [0, 0, 0, 0] for rule in candidates}
    identity = {"embedding_size": int(embeddings.shape[1]), "weights": "choosing"}
    for split in range(layout["splits"]):
        enroll, known, strangers = split_rows(labels, np.random.default_rng(split), layout["enrolled"],
                                              layout["photos"], layout["strangers"])
        gallery = Gallery(identity=identity, store_all=store_all)
        gallery.enroll_embeddings(embeddings[enroll], list(labels[enroll]))
        # Every answer at no threshold: its nearest name and best score, read against each rule's threshold.
        known_rows = gallery.identify_embeddings(embeddings[known], threshold=-np.inf)
        stranger_scores = np.array([r.similarity for r in gallery.identify_embeddings(embeddings[strangers],
                                                                                      threshold=-np.inf)])
        known_scores = np.array([r.similarity for r in known_rows])
        nearest_right = np.array([r.nearest for r in known_rows]) == labels[known]
        for rule in candidates:
            threshold = identification.threshold_for(*gallery.calibration_sample(), *gallery.entries(), gallery.fpir,
                                                     rule=rule, pair_floor=True)
            counts[rule][0] += int(np.sum(stranger_scores >= threshold))
            counts[rule][1] += stranger_scores.size
            counts[rule][2] += int(np.sum(nearest_right & (known_scores >= threshold)))
            counts[rule][3] += known_scores.size
    return {rule: {"strangers_accepted": demo.rate(a, n), "known_named_right": demo.rate(r, m)}
            for rule, (a, n, r, m) in counts.items()}


def decide(cells: dict, candidates=CANDIDATES, limit: float = LIMIT) -> dict:
    """The lab entry's decision rule over {cell: {rule: {"strangers_accepted", "known_named_right"}}}."""
    worst = {rule: max(cell[rule]["strangers_accepted"]["rate"] for cell in cells.values()) for rule in candidates}
    named = {rule: float(np.mean([cell[rule]["known_named_right"]["rate"] for cell in cells.values()]))
             for rule in candidates}
    within = [rule for rule in candidates if worst[rule] <= limit]
    if within:
        chosen = max(within, key=lambda rule: (named[rule], -candidates.index(rule)))
        why = f"the most known searches named right (mean {named[chosen]:.3f}) among those within {limit:.0%} in every cell"
    else:
        chosen = min(candidates, key=lambda rule: (worst[rule], candidates.index(rule)))
        why = f"none stayed within {limit:.0%} in every cell; the lowest worst-cell stranger acceptance ({worst[chosen]:.4f})"
    return {"chosen": chosen, "why": why, "worst_cell_strangers_accepted": worst, "mean_known_named_right": named}


def run(validation_npz: Path, out: Path) -> dict:
    data = read_npz(validation_npz, "validation keys npz", "make one with `kshot omniglot embed --split validation`")
    embeddings, labels = data["embeddings"].astype(np.float32), data["labels"].astype(str)
    embedder = demo.FaceEmbedder()
    celebrity = demo.choose(embedder, demo.embedded_splits(demo.SETS[0], embedder)["train"],
                            {rule: (rule, True) for rule in CANDIDATES})
    cells = {}
    for kind, store_all in demo.KINDS.items():
        cells[f"celebrities_train/{kind}"] = {rule: {"strangers_accepted": r["strangers_accepted"],
                                                     "known_named_right": r["loo_named_right"]}
                                              for rule, r in celebrity[kind].items()}
        cells[f"omniglot_validation/{kind}"] = many_class_counts(embeddings, labels, store_all)
    result = {"fpir": identification.DEFAULT_FPIR, "candidates": list(CANDIDATES), "pair_floor": True,
              "omniglot_source": validation_npz.name, "omniglot_layout": LAYOUT, "cells": cells,
              "decision": decide(cells)}
    write_text_atomic(out, json.dumps(result, indent=2) + "\n")
    return result


def table(result: dict) -> str:
    """The choosing table as markdown: one row per cell and candidate."""
    lines = ["| cell | rule | strangers accepted | known named right |", "|---|---|---|---|"]
    for cell, rules in result["cells"].items():
        for rule, r in rules.items():
            lines.append(f"| {cell} | {rule} | {demo._pct(r['strangers_accepted'])} | {demo._pct(r['known_named_right'])} |")
    return "\n".join(lines) + f"\n\nchosen: `{result['decision']['chosen']}`: {result['decision']['why']}\n"


if __name__ == "__main__":
    print(table(run(Path(sys.argv[1]), Path(sys.argv[2]))))
