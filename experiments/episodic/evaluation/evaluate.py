"""`kshot omniglot eval`: N-way k-shot and per-shot accuracy of a checkpoint on held-out alphabets.

Two measurements, both on the part of the data the run held out (heldout.py; by
default its test alphabets, from its split.json), both drawn as a TaskSpec says:

- N-way k-shot tasks (the usual few-shot benchmark, tasks.py), answered by the three
  readouts of settings.READOUTS: the Kaiser memory, store-all 1-NN and class means
  (prototypes). Accuracy over all answered queries with a 95% Wilson interval
  (experiments.core.metrics.proportion), which stays within [0, 1] near 100%.
- Per-shot accuracy as the paper's train.py logs it (sequences.py): Kaiser-style
  episodes of width N (every class shown once per round, the memory predicting each
  drawing before it is written), accuracy at the k-th showing = "k-shot", with a 95%
  interval over episodes.

Each is reported for the trained embedder and, as a floor, for the same architecture
with its initial (untrained) weights.
"""

from __future__ import annotations

import os

import keras
from tqdm import tqdm

from experiments.core.settings import with_overrides
from experiments.episodic.evaluation.breakdowns import (
    accuracy_by_alphabet,
    accuracy_by_rivals,
    pool_rivals,
)
from experiments.episodic.evaluation.heldout import restore_held_out
from experiments.episodic.evaluation.sequences import per_shot_accuracy
from experiments.episodic.evaluation.task_spec import TaskSpec
from experiments.episodic.evaluation.tasks import (
    accuracy_of_answers,
    make_readouts,
    task_answers,
)
from experiments.episodic.model import build_model, embed_images


def evaluate_run(
    run_dir: str | os.PathLike,
    tasks: TaskSpec,
    sources=None,
    *,
    untrained: bool = True,
    progress: bool = False,
    by_alphabet: bool = False,
    running_mean: bool = False,
) -> dict:
    """Every measurement above for a run directory or shipped checkpoint, on the tasks `tasks`
    draws from its `tasks.split` part; a JSON-ready dict.

    `untrained` adds the untrained floor. `by_alphabet` adds, for the trained embedder,
    each cell's accuracy by the query's alphabet and by its number of same-alphabet rivals
    in the task (breakdowns.py), from the same tasks. `running_mean` scores the Kaiser
    memory with count-weighted merges ([memory] running_mean, beyond the paper: a class's
    slot becomes the mean of its merged drawings, where the paper's merge halves the weight
    of everything earlier at every hit) instead of the checkpoint's setting.

    The split: "validation" measures the run's validation alphabets, where recipes are
    compared, so that the test alphabets are never looked at while choosing; "unseen"
    measures every drawing of `sources`, a character set the run never had.
    `within_alphabet` tasks have the look-alike rivals of Lake et al.'s runs, at any
    N-way k-shot (episodes.alphabet_pools).
    """
    config, trained, step, test, _, described = restore_held_out(run_dir, sources, tasks.split, tasks.ways,
                                                                 tasks.within_alphabet)
    if running_mean:
        config = with_overrides(config, origin="--running-mean", memory__running_mean=True)
    per_shot_episodes = tasks.per_shot_count

    embedders = {"trained": trained}
    if untrained:
        keras.utils.set_random_seed(config.train.seed)
        embedders["untrained"] = build_model(config)  # the initial weights training started from
    results = {
        "run": str(run_dir),
        "step": step,
        "split": described,
        "evaluated": tasks.split,
        "episodes": tasks.episodes,
        "queries": tasks.queries,
        "seed": tasks.seed,
        "memory_size": config.memory.memory_size,
        "memory_running_mean": config.memory.running_mean,
        "within_alphabet": tasks.within_alphabet,
        "key_dim": config.model.output_dim,
        "nway": [],
        "per_shot": [],
        "by_alphabet": [],
        "by_rivals": [],
    }
    steps_total = len(embedders) * len(tasks.ways) * (len(tasks.shots) + (1 if per_shot_episodes else 0))

    bar = tqdm(total=steps_total, disable=not progress, desc="omniglot eval", unit="setting")
    for embedder_name, embedder in embedders.items():
        keys = embed_images(embedder, test.images)
        readouts = make_readouts(config, max(tasks.ways))
        for n in tasks.ways:
            for k in tasks.shots:
                truth, answered = task_answers(keys, test, readouts, n, k, tasks)
                for readout, stats in accuracy_of_answers(truth, answered).items():
                    results["nway"].append({"embedder": embedder_name, "readout": readout, "ways": n, "shots": k, **stats})
                if by_alphabet and embedder_name == "trained":
                    for readout, answers in answered.items():
                        results["by_alphabet"] += [{"readout": readout, "ways": n, "shots": k, **row}
                                                   for row in accuracy_by_alphabet(truth, answers, test)]
                        results["by_rivals"] += [{"readout": readout, "ways": n, "shots": k, **row}
                                                 for row in accuracy_by_rivals(truth, answers, test)]
                bar.update(1)
            if per_shot_episodes:
                curve = per_shot_accuracy(keys, test, readouts["memory"], n, tasks)
                results["per_shot"].append(
                    {"embedder": embedder_name, "readout": "memory", "ways": n, "episodes": per_shot_episodes, "curve": curve}
                )
                bar.update(1)
    bar.close()
    return results


def _train_classes(split: dict) -> int:
    """Training classes from a split.json; runs written before mirrors existed name the key after rotations."""
    return split["train_classes"] if "train_classes" in split else split["train_classes_with_rotations"]


def _train_classes_described(split: dict) -> str:
    """'2852 classes with their rotations': the copies are read off the classes per character,
    since split.json records the counts, not the [data] switches that made them."""
    classes = _train_classes(split)
    copies = {2: " with their mirror images", 4: " with their rotations", 8: " with their rotations and mirror images"}
    return f"{classes} classes" + copies.get(classes // max(split["train_characters"], 1), "")


def _accuracy_cells(stats: dict) -> str:
    """'96.0% | [95.1, 96.8]': a proportion's mean and 95% interval as two table cells."""
    return f"{100 * stats['mean']:.1f}% | [{100 * stats['ci_low']:.1f}, {100 * stats['ci_high']:.1f}]"


def results_markdown(results: dict) -> str:
    """Tables of the N-way k-shot accuracies and the per-shot curves."""
    split = results["split"]
    evaluated = results.get("evaluated", "test")
    lines = [
        f"Run {results['run']} at step {results['step']}; evaluated on the {evaluated} alphabets: "
        f"{split[evaluated + '_characters']} characters of {', '.join(split[evaluated + '_alphabets'])}; "
        f"trained on {split['train_characters']} characters "
        f"({_train_classes_described(split)})."
        + (" The Kaiser memory merges by running mean (beyond the paper)." if results.get("memory_running_mean") else ""),
        "",
        f"N-way k-shot, {results['episodes']} tasks each, {results['queries']} query per class"
        + (", the classes of each task from one alphabet" if results.get("within_alphabet") else "")
        + ", mean [95% CI]:",
        "",
        "| embedder | readout | ways | shots | accuracy | 95% CI |",
        "|---|---|---:|---:|---:|---|",
    ]
    for row in results["nway"]:
        lines.append(
            f"| {row['embedder']} | {row['readout']} | {row['ways']} | {row['shots']} | {_accuracy_cells(row)} |")
    if results["per_shot"]:
        rounds = len(results["per_shot"][0]["curve"])
        lines += [
            "",
            "Per-shot accuracy of the memory in Kaiser-style episodes (k-shot = k earlier showings of that class"
            + ("; the classes of each episode from one alphabet" if results.get("within_alphabet") else "") + "):",
            "",
            "| embedder | ways | episodes | " + " | ".join(f"{k}-shot" for k in range(rounds)) + " |",
            "|---|---:|---:|" + "---:|" * rounds,
        ]
        for row in results["per_shot"]:
            cells = " | ".join(f"{100 * c['mean']:.1f}% ±{100 * c['half_width']:.1f}" for c in row["curve"])
            lines.append(f"| {row['embedder']} | {row['ways']} | {row['episodes']} | {cells} |")
    memory_rows = [row for row in results.get("by_alphabet", []) if row["readout"] == "memory"]
    if memory_rows:
        lines += [
            "",
            "Trained embedder, memory readout, by the query's alphabet (the same tasks; "
            "'same alphabet' is the share of wrong answers that named a character of the query's own alphabet):",
            "",
            "| ways | shots | alphabet | characters | answers | accuracy | 95% CI | same alphabet |",
            "|---:|---:|---|---:|---:|---:|---|---:|",
        ]
        for row in memory_rows:
            share = "" if row["errors_within_alphabet"] is None else f"{100 * row['errors_within_alphabet']:.0f}%"
            lines.append(
                f"| {row['ways']} | {row['shots']} | {row['alphabet']} | {row['characters']} | {row['answers']} "
                f"| {_accuracy_cells(row)} | {share} |"
            )
    rival_rows = [row for row in results.get("by_rivals", []) if row["readout"] == "memory"]
    if rival_rows:
        lines += [
            "",
            "Trained embedder, memory readout, by the query's rivals (other characters of the task from the "
            "query's alphabet; the same tasks, all alphabets pooled):",
            "",
            "| ways | shots | rivals | answers | accuracy | 95% CI |",
            "|---:|---:|---:|---:|---:|---|",
        ]
        for row in pool_rivals(rival_rows):
            lines.append(
                f"| {row['ways']} | {row['shots']} | {row['rivals']} | {row['answers']} | {_accuracy_cells(row)} |")
    return "\n".join(lines) + "\n"
