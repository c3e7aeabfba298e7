"""Hindsight tables: how close could ANY memory of b keys per class come to store-all?

    python -m experiments.studies.hindsight_tables --cells DIR --work RUNS --out DIR
    python -m experiments.studies.hindsight_tables --report-only --out DIR

A write policy sees a repeat's items one at a time and must decide as they come. A
hindsight table sees every item the repeat fed up to its top shot at once, with its label,
builds b keys per class (b = the cell's slots per class) and answers the top shot's queries
by cosine 1-NN over them, as the memory answers. Where even a hindsight table falls more
than 1 point below store-all or class means, no write policy of that size is expected to
meet the aim there: evidence, not proof, since neither reference below is the best table
of b keys. It is a reference: nothing is chosen from it.

References (fixed in docs/lab/2026-12-regime-map.md before any number), per class:
- kmeans: spherical k-means on the unit keys, k-means++ seeding from SeedSequence([seed,
  repeat, class]), Lloyd steps until no assignment changes; b = 1 gives the class mean.
- farthest_first: the item nearest the class mean, then the item least similar to those
  taken, until b.
A class with at most b fed items keeps its items, so b >= items per class is store-all.

Cells, key files, classes and repeats are those of a write policy candidates study
(experiments.studies.regime_map_candidates: --cells is its --out, --work its run
directories), so the shuffles are the runner's own: each repeat's schedule is drawn by
experiments.faces.runner.repeat_iterations and checked against the feed order the run
recorded; store-all and class means are recomputed here and checked against the run's
answers repeat by repeat; store-all, class means and memory_ward_keep are paired from it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from experiments.core.metrics import paired_difference
from experiments.core.run_files import CONFIG_FILE
from experiments.faces import runner
from experiments.faces import settings as cfg
from experiments.faces.footprint import top_shots
from experiments.faces.methods import sweep_name
from experiments.faces.repeats import load_repeat
from experiments.faces.results import load_dataset, load_results
from experiments.faces.run_data import PreparedData, load_embeddings_file
from experiments.studies import regime_map as rm
from experiments.studies.hindsight_report import CLASS_MEANS, RESULTS_JSON, STORE_ALL, write_report
from kshot_io import write_text_atomic

SCHEMA = 1
REFERENCES = ("kmeans", "farthest_first")
PAIRED = "memory_ward_keep"  # the best write policy tried (round two), shown next to the references
SLOTS = (1.0, 2.0, 4.0)  # the aim's cells; below one slot per class some class has no key
MAX_STEPS = 100


def unit_rows(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float64)
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def kmeans_keys(items: np.ndarray, b: int, rng: np.random.Generator) -> np.ndarray:
    """b spherical k-means centroids of unit `items` (the items themselves when there are at most b)."""
    if len(items) <= b:
        return items.copy()
    centres = [items[rng.integers(len(items))]]
    while len(centres) < b:  # k-means++: the next seed drawn by squared distance to the nearest seed
        squared = np.clip(2.0 - 2.0 * (items @ np.array(centres).T).max(axis=1), 0.0, None)
        if squared.sum() <= 0:
            break  # fewer distinct items than b
        centres.append(items[rng.choice(len(items), p=squared / squared.sum())])
    centres = np.array(centres)
    assigned = None
    for _ in range(MAX_STEPS):
        nearest = np.argmax(items @ centres.T, axis=1)
        if assigned is not None and np.array_equal(nearest, assigned):
            break
        assigned = nearest
        for k in range(len(centres)):
            if np.any(assigned == k):  # an emptied centroid keeps its place
                centres[k] = unit_rows(items[assigned == k].sum(axis=0))
    return centres


def farthest_first_keys(items: np.ndarray, b: int) -> np.ndarray:
    """b of the unit `items`: the one nearest their mean, then each time the one least like those taken."""
    if len(items) <= b:
        return items.copy()
    taken = [int(np.argmax(items @ unit_rows(items.sum(axis=0))))]
    likeness = items @ items[taken[0]]
    while len(taken) < b:
        taken.append(int(np.argmin(likeness)))
        likeness = np.maximum(likeness, items @ items[taken[-1]])
    return items[taken]


def hindsight_table(keys: np.ndarray, labels: np.ndarray, b: int, reference: str, seed: int,
                    repeat: int) -> tuple[np.ndarray, np.ndarray]:
    """(keys, labels) of the b-keys-per-class table `reference` builds from unit `keys` with `labels`."""
    if reference not in REFERENCES:
        raise ValueError(f"unknown hindsight reference {reference!r}; choose one of {', '.join(REFERENCES)}")
    rows, values = [], []
    for label in np.unique(labels):
        items = keys[labels == label]
        if reference == "kmeans":
            rng = np.random.default_rng(np.random.SeedSequence([seed, repeat, int(label)]))
            table = kmeans_keys(items, b, rng)
        else:
            table = farthest_first_keys(items, b)
        rows.append(table)
        values.append(np.full(len(table), label, dtype=np.int64))
    return np.concatenate(rows), np.concatenate(values)


def answers(table_keys: np.ndarray, table_labels: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Cosine 1-NN over the table (unit rows), the first row on a tie."""
    return table_labels[np.argmax(queries @ table_keys.T, axis=1)]


def top_shot_items(data: PreparedData, config, repeat: int) -> tuple[np.ndarray, np.ndarray, tuple]:
    """(items fed up to the top shot in feed order, items the top shot evaluates, the schedule) of a repeat."""
    iterations = runner.repeat_iterations(data.labels, len(data.class_names), config, STORE_ALL, repeat)
    fed = np.concatenate([it.feed for it in iterations[1:]]) if len(iterations) > 1 else np.empty(0, np.int64)
    return fed, iterations[-1].evaluate, iterations


def repeat_correct(data: PreparedData, config, repeat: int, slots=SLOTS) -> dict:
    """Correct answers at the top shot: store-all, class means and every (reference, slots per class)."""
    fed, evaluate, _ = top_shot_items(data, config, repeat)
    unit = unit_rows(data.embeddings)
    queries, truth = unit[evaluate], data.labels[evaluate]
    keys, labels = unit[fed], data.labels[fed]
    classes = np.unique(labels)
    means = unit_rows(np.stack([keys[labels == c].sum(axis=0) for c in classes]))
    correct = {STORE_ALL: int(np.sum(answers(keys, labels, queries) == truth)),
               CLASS_MEANS: int(np.sum(answers(means, classes, queries) == truth))}
    for value in slots:
        for reference in REFERENCES:
            table = hindsight_table(keys, labels, int(value), reference, config.run.seed, repeat)
            correct[(reference, float(value))] = int(np.sum(answers(*table, queries) == truth))
    return {"n_eval": int(len(evaluate)), "correct": correct}


def check_feeds(run_dir: Path, data: PreparedData, config, repeat: int) -> None:
    """Refuse a run whose recorded feed order for `repeat` is not the schedule drawn here."""
    stored = load_repeat(run_dir, STORE_ALL, repeat, digest=None)
    _, _, iterations = top_shot_items(data, config, repeat)
    drawn = [it.feed for it in iterations]
    if stored is None or len(stored.feed) != len(drawn) or any(
            not np.array_equal(row[row >= 0], feed) for row, feed in zip(stored.feed, drawn)):
        raise ValueError(f"{run_dir}: repeat {repeat} of {STORE_ALL} was not fed the schedule drawn here; "
                         "give the run directories the candidates json was made from")


def _stats(mine: np.ndarray, store_all: np.ndarray, class_means: np.ndarray, bytes_ratio: float) -> dict:
    entry = {"accuracy": float(mine.mean()), "bytes_ratio": bytes_ratio}
    for versus, reference in (("vs_store_all", store_all), ("vs_class_means", class_means)):
        difference = paired_difference(mine, reference)
        entry.update({versus: difference.mean, versus + "_low": difference.low, versus + "_high": difference.high})
    return entry


def group_cells(info: dict, key_set: str, classes: int, cells: list[dict], run_dir: Path) -> list[dict]:
    """The hindsight cells of one (key set, classes) run of the candidates study."""
    data = load_embeddings_file(info["file"], cfg.DataSection())
    if data.fingerprint() != info["fingerprint"]:
        raise ValueError(f"key set {key_set!r}: {info['file']} is not the file the candidates json was made from")
    config = cfg.load_config(run_dir / CONFIG_FILE)
    data = rm.restrict(data, rm.subsample_classes(data.class_names, classes, config.run.seed))
    recorded = load_dataset(run_dir)
    if recorded is None or not (np.array_equal(recorded["embeddings"], data.embeddings)
                                and np.array_equal(recorded["labels"], data.labels)
                                and list(recorded["class_names"]) == data.class_names):
        raise ValueError(f"{run_dir}: its dataset is not {key_set} at {classes} classes drawn as the map draws them")
    frame = load_results(run_dir)
    shots = top_shots(frame)
    at = frame[frame["shots"] == shots]
    repeats = cells[0]["repeats"]

    def run_accuracy(model: str) -> tuple[np.ndarray, np.ndarray]:
        rows = at[at["model"] == model].sort_values("repeat")
        return rows["n_correct"].to_numpy() / rows["n_eval"].to_numpy(), rows["n_correct"].to_numpy()

    counts = []
    for repeat in range(repeats):
        check_feeds(run_dir, data, config, repeat)
        counts.append(repeat_correct(data, config, repeat, tuple(c["slots_per_class"] for c in cells)))
    n_eval = np.array([c["n_eval"] for c in counts])
    mine = {name: np.array([c["correct"][name] for c in counts]) / n_eval for name in counts[0]["correct"]}
    checks = {}
    for name in (STORE_ALL, CLASS_MEANS):  # NumPy float64 here, the run's TensorFlow float32: near-ties may flip
        accuracy, correct = run_accuracy(name)
        differing = np.abs(correct - np.array([c["correct"][name] for c in counts]))
        checks[name] = {"repeats": int(np.sum(differing > 0)), "most_answers": int(differing.max())}
        mine[name] = accuracy  # the run's numbers, so the pairing is the candidates study's
    out = []
    for cell in cells:
        value = cell["slots_per_class"]
        bytes_ratio = cell["methods"][PAIRED]["bytes_ratio"]
        model = sweep_name(PAIRED, cell["memory_size"])
        model = model if model in set(at["model"]) else PAIRED
        methods = {STORE_ALL: {"accuracy": float(mine[STORE_ALL].mean())},
                   CLASS_MEANS: {"accuracy": float(mine[CLASS_MEANS].mean())}}
        for reference in REFERENCES:
            methods[reference] = _stats(mine[(reference, value)], mine[STORE_ALL], mine[CLASS_MEANS], bytes_ratio)
        methods[PAIRED] = _stats(run_accuracy(model)[0], mine[STORE_ALL], mine[CLASS_MEANS], bytes_ratio)
        out.append({"key_set": key_set, "classes": classes, "slots_per_class": value,
                    "memory_size": cell["memory_size"],
                    "shots": int(shots), "repeats": repeats, "methods": methods,
                    "recomputed_differing": checks})
    return out


def run_study(cells_dir: Path, work: Path, out: Path, log=print) -> dict:
    """Every cell of the candidates json in `cells_dir` with 1, 2 or 4 slots per class, into out/hindsight.json."""
    source = json.loads((cells_dir / rm.RESULTS_JSON).read_text(encoding="utf-8"))
    if PAIRED not in source.get("methods", []):
        raise ValueError(f"{cells_dir / rm.RESULTS_JSON} holds no {PAIRED} cells; give a round-two candidates --out")
    wanted = [c for c in source["cells"] if c["slots_per_class"] in SLOTS]
    results = {"study": "hindsight_tables", "schema": SCHEMA, "references": list(REFERENCES), "paired": PAIRED,
               "source": str(cells_dir / rm.RESULTS_JSON), "cells": []}
    for key_set, classes in sorted({(c["key_set"], c["classes"]) for c in wanted}):
        mine = [c for c in wanted if (c["key_set"], c["classes"]) == (key_set, classes)]
        results["cells"] += group_cells(source["key_sets"][key_set], key_set, classes, mine,
                                        work / key_set / f"{classes}c")
        log(f"{key_set} {classes} classes: {len(mine)} cell(s)")
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / RESULTS_JSON, json.dumps(results, indent=1, sort_keys=True) + "\n")
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=Path, help="a round-two candidates study's --out (its regime_map.json)")
    parser.add_argument("--work", type=Path, help="that study's run directories")
    parser.add_argument("--out", type=Path, required=True, help="where hindsight.json and hindsight.md go")
    parser.add_argument("--report-only", action="store_true", help="only redraw hindsight.md from hindsight.json")
    args = parser.parse_args(argv)
    if not args.report_only:
        if args.cells is None or args.work is None:
            parser.error("give --cells and --work (or --report-only)")
        run_study(args.cells, args.work, args.out)
    print(write_report(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
