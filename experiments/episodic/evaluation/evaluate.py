"""N-way k-shot and per-shot accuracy on held-out Omniglot alphabets.

Two measurements, both on the alphabets the run held out (from its split.json):

- N-way k-shot tasks (the usual few-shot benchmark): N held-out characters, k labelled
  drawings of each written into a cleared memory, then one (or `queries`) unseen
  drawing of each classified by a lookup. The Kaiser memory is written one round per
  shot (one drawing of every class per write), so from the second shot on it merges a
  drawing into its class's slot when that slot answers correctly, as in the paper; the
  store-all 1-NN keeps every drawing. With k = 1 both therefore hold the same N keys
  and give the same answers. The prototype readout (readouts.py) averages the k
  drawings of each class. Accuracy over all answered queries with a 95% Wilson
  interval (experiments.core.metrics.proportion), which stays within [0, 1] near 100%.
- Per-shot accuracy as the paper's train.py logs it: Kaiser-style episodes of width N
  (every class shown once per round, the memory predicting each drawing before it is
  written), accuracy at the k-th showing = "k-shot", with a 95% interval over episodes.

Each is reported for the trained embedder and, as a floor, for the same architecture
with its initial (untrained) weights.
"""

from __future__ import annotations

import os
import weakref
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from experiments.core.memories import build_memory
from experiments.core.metrics import accuracy_by_shot, interval, proportion, shots_seen
from experiments.core.settings import with_overrides
from experiments.episodic.episodes import alphabet_pools, sample_episodes, sample_task
from experiments.episodic.evaluation.heldout import restore_held_out, restore_with_data
from experiments.episodic.evaluation.readouts import PrototypeReadout
from experiments.episodic.model import build_model, episodic_memory
from experiments.episodic.omniglot import OmniglotData, to_float
from kshot_io import atomic_write

_COMPILED_FORWARD: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compiled_forward(embedder):
    """The embedder's inference pass as one tf.function per embedder, kept while the embedder lives.

    Callers embed the same network many times (every validation of a training stage, the
    two halves of each of Lake's runs); a function built per call traced the graph again
    every time, and TensorFlow warned about it. The function reaches the embedder through a
    weak reference, so the cache never keeps a network alive.
    """
    forward = _COMPILED_FORWARD.get(embedder)
    if forward is None:

        network = weakref.ref(embedder)

        @tf.function(reduce_retracing=True)
        def forward(x):
            return network()(x, training=False)

        _COMPILED_FORWARD[embedder] = forward
    return forward


def embed_images(embedder, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """uint8 [n, s, s] -> float32 [n, d] keys, dropout off."""

    forward = compiled_forward(embedder)
    parts = [forward(tf.constant(to_float(images[i : i + batch_size]))).numpy()
             for i in range(0, len(images), batch_size)]
    return np.concatenate(parts).astype(np.float32)


def make_task_runner(memory):
    """A tf.function running one task on a cleared memory: write the support round by round, answer the queries.

    support [shots, ways, d] (round r = the r-th drawing of every class), labels [ways],
    queries [m, d] -> answers [m]. Compiled, because eager dispatch of the memory's many
    small ops dominates thousands of tasks.
    """

    @tf.function(reduce_retracing=True)
    def run(support, labels, queries):
        memory.reset()
        for r in range(support.shape[0]):  # unrolled: shots is fixed per setting
            memory.write(support[r], labels)
        return memory.lookup(queries).labels

    return run


def accuracy_of_answers(truth: np.ndarray, answered: dict[str, np.ndarray]) -> dict[str, dict]:
    """Pooled accuracy with its Wilson interval of each readout's answers:
    `accuracy_of_answers(*task_answers(...))` is the N-way k-shot accuracy of each readout."""
    return {name: {**proportion(int(np.sum(a == truth)), truth.size), "episodes": truth.shape[0]}
            for name, a in answered.items()}


def task_answers(
    keys: np.ndarray,
    data: OmniglotData,
    memories: dict,
    ways: int,
    shots: int,
    episodes: int,
    queries: int = 1,
    seed: int = 0,
    within_alphabet: bool = False,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(true class ids [episodes, ways*queries], {readout: answered class ids, same shape}).

    Class ids index `data.characters`, so answers can be grouped by the query's alphabet.
    The tasks depend only on (data, ways, shots, queries, seed, within_alphabet), so two
    embedders' answers pair task by task. `within_alphabet` draws the N classes of each task
    from one alphabet (alphabets drawn uniformly among those with >= N characters).
    """

    if episodes < 2:
        raise ValueError(f"episodes must be >= 2 for a confidence interval, got {episodes}")
    by_class = data.indices_by_class()
    pools = alphabet_pools(data, ways) if within_alphabet else None
    rng = np.random.default_rng([seed, ways, shots, queries])
    runners = {name: make_task_runner(memory) for name, memory in memories.items()}
    labels = tf.constant(np.arange(ways, dtype=np.int64))
    truth = np.zeros((episodes, ways * queries), np.int64)
    answered = {name: np.zeros((episodes, ways * queries), np.int64) for name in memories}
    for episode in range(episodes):
        task = sample_task(by_class, rng, ways, shots, queries, pools)
        truth[episode] = data.labels[task.query]
        class_of_label = data.labels[task.query[::queries]]  # queries are grouped by label 0..ways-1
        # [shots, ways]: round r holds the r-th support drawing of every class, in label order
        rounds = task.support[np.argsort(task.support_labels, kind="stable")].reshape(ways, shots).T
        support = tf.constant(keys[rounds])
        query_keys = tf.constant(keys[task.query])
        for name, run in runners.items():
            predicted = run(support, labels, query_keys).numpy()
            known = (predicted >= 0) & (predicted < ways)  # an empty memory answers -1
            answered[name][episode] = np.where(known, class_of_label[np.clip(predicted, 0, ways - 1)], -1)
    return truth, answered


def accuracy_by_alphabet(truth: np.ndarray, answered: np.ndarray, data: OmniglotData) -> list[dict]:
    """Per alphabet of the query: accuracy with its Wilson interval, and the share of its
    wrong answers that named a character of the same alphabet.

    Which held-out alphabets are hard, and whether the mistakes are look-alikes from the
    same script or confusions across scripts; a diagnostic, not something to tune on.
    """
    alphabets = np.asarray(data.alphabets)
    query_alphabet = alphabets[truth]
    wrong = answered != truth
    same_script = np.zeros_like(wrong)
    named = answered >= 0
    same_script[named] = alphabets[answered[named]] == query_alphabet[named]
    rows = []
    for alphabet in data.alphabet_names():
        mine = query_alphabet == alphabet
        errors = int(np.sum(wrong & mine))
        rows.append({
            "alphabet": alphabet,
            "characters": int(np.sum(alphabets == alphabet)),
            "answers": int(mine.sum()),
            **proportion(int(np.sum(~wrong & mine)), int(mine.sum())),
            "errors_within_alphabet": (int(np.sum(wrong & mine & same_script)) / errors) if errors else None,
        })
    return rows


def accuracy_by_rivals(truth: np.ndarray, answered: np.ndarray, data: OmniglotData) -> list[dict]:
    """Accuracy by the query's alphabet and its number of "rivals": the other characters
    of its task that come from that same alphabet.

    A few-shot benchmark's difficulty depends on how often a task holds look-alikes from
    one script, which depends on how many alphabets the held-out characters come from
    (5 here, 20 in Omniglot's evaluation set). Keeping the alphabet in each row lets a
    reader reweight to another mix of rivals within each alphabet, so that a hard
    alphabet's many rivals are not mistaken for the rivals' effect (views.rivals_table).
    Rows only for the (alphabet, count) pairs that occur.
    """
    alphabet_names, alphabet_ids = np.unique(np.asarray(data.alphabets), return_inverse=True)
    query_alphabet = alphabet_ids[truth]  # [episodes, answers]
    rivals = np.zeros_like(truth)
    for episode, row in enumerate(truth):
        task_alphabets = alphabet_ids[np.unique(row)]
        rivals[episode] = (query_alphabet[episode][:, None] == task_alphabets[None, :]).sum(axis=1) - 1
    right = answered == truth
    rows = []
    for alphabet in np.unique(query_alphabet):
        mine = query_alphabet == alphabet
        for count in np.unique(rivals[mine]):
            cell = mine & (rivals == count)
            hits, answers = int(np.sum(right & cell)), int(cell.sum())
            rows.append({"alphabet": str(alphabet_names[alphabet]), "rivals": int(count), "answers": answers,
                         "right": hits, **proportion(hits, answers)})
    return rows


def pool_rivals(rows: list[dict]) -> list[dict]:
    """accuracy_by_rivals rows (readout, ways and shots added) pooled over the alphabets:
    one row per (readout, ways, shots, rivals) with its summed answers and right answers
    and their Wilson interval, in that order."""
    pooled: dict[tuple, tuple[int, int]] = {}
    for row in rows:
        key = (row["readout"], row["ways"], row["shots"], row["rivals"])
        right, answers = pooled.get(key, (0, 0))
        pooled[key] = (right + row["right"], answers + row["answers"])
    return [{"readout": readout, "ways": ways, "shots": shots, "rivals": rivals, "answers": answers, "right": right,
             **proportion(right, answers)}
            for (readout, ways, shots, rivals), (right, answers) in sorted(pooled.items())]


def make_sequence_runner(memory):
    """A tf.function feeding keys [L, d] with labels [L] to the memory one at a time; returns answers [L]."""

    @tf.function(reduce_retracing=True)
    def run(keys, labels):
        length = tf.shape(labels)[0]
        answers = tf.TensorArray(tf.int64, size=length)
        for t in tf.range(length):
            out = memory(keys[t : t + 1], labels=labels[t : t + 1], update=True)
            answers = answers.write(t, out["labels"][0])
        return answers.stack()

    return run


def per_shot_accuracy(
    keys: np.ndarray,
    data: OmniglotData,
    memory,
    ways: int,
    rounds: int,
    episodes: int,
    seed: int = 0,
    within_alphabet: bool = False,
) -> list[dict]:
    """Accuracy at the 0th..(rounds-1)th earlier showing, in Kaiser-style episodes of width `ways`
    (with `within_alphabet`, the classes of each episode from one alphabet)."""

    by_class = data.indices_by_class()
    pools = alphabet_pools(data, ways) if within_alphabet else None
    rng = np.random.default_rng([seed, ways, rounds, 7])
    run = make_sequence_runner(memory)
    per_episode = []
    for _ in range(episodes):
        batch = sample_episodes(by_class, rng, ways, ways * rounds, 1, pools)
        labels = batch.labels[:, 0]
        memory.reset()
        answers = run(tf.constant(keys[batch.indices[:, 0]]), tf.constant(labels)).numpy()
        shots = shots_seen(labels)
        per_episode.append(accuracy_by_shot(answers == labels, shots, rounds - 1))  # every round has all shots
    per_episode = np.array(per_episode)
    return [{"shot": k, **interval(per_episode[:, k])} for k in range(rounds)]


def make_readouts(config, max_ways: int) -> dict:
    """The three readouts every N-way k-shot table compares, on the config's key width:
    {"memory", "1-NN", "prototype"}. One builder, so eval and compare score with the same ones."""


    return {
        "memory": episodic_memory(config, seed_offset=2),
        "1-NN": build_memory("store_all", config.model.output_dim),
        "prototype": PrototypeReadout(config.model.output_dim, max_labels=max_ways),
    }


def export_embeddings(run_dir: str | os.PathLike, out: str | os.PathLike, sources=None, split: str = "test") -> dict:
    """The trained embedder's keys of one split's drawings, in the `kshot embed` npz format.

    So the face protocol (`kshot run --embeddings FILE`) runs on Omniglot characters, with
    every method of the registry, sweeps included. Labels are "Alphabet/characterNN";
    the held-out ("test") split is the run's own; "unseen" is every drawing of `sources`
    (heldout.py); "train" the run's training classes. Returns a short description.
    """

    if split not in ("test", "unseen", "train"):
        raise ValueError(f"split must be 'test' (held-out alphabets), 'unseen' or 'train', got {split!r}")
    if split == "train":
        _, trained, step, data = restore_with_data(run_dir, sources)
        part = data.train
    else:
        _, trained, step, part, _, _ = restore_held_out(run_dir, sources, split)
    keys = embed_images(trained, part.images)
    labels = np.array([part.characters[c] for c in part.labels])
    paths = np.array([f"{part.characters[c]}/{drawer}" for c, drawer in zip(part.labels, part.drawers)])
    with atomic_write(out, "wb") as handle:
        np.savez(handle, embeddings=keys, labels=labels, paths=paths, skipped=np.array([], dtype=str))
    return {"step": step, "split": split, "images": len(labels), "characters": part.num_classes, "key_dim": keys.shape[1]}


def evaluate_run(
    run_dir: str | os.PathLike,
    sources=None,
    ways: Sequence[int] = (5,),
    shots: Sequence[int] = (1,),
    episodes: int = 1000,
    queries: int = 1,
    per_shot_episodes: int | None = None,
    seed: int = 0,
    untrained: bool = True,
    progress: bool = False,
    by_alphabet: bool = False,
    split: str = "test",
    running_mean: bool = False,
    within_alphabet: bool = False,
) -> dict:
    """Every measurement above for a run directory or shipped checkpoint; a JSON-ready dict.

    `by_alphabet` adds, for the trained embedder, each cell's accuracy by the query's
    alphabet (accuracy_by_alphabet) and by its number of same-alphabet rivals in the task
    (accuracy_by_rivals), from the same tasks. `split="validation"` measures
    the run's validation alphabets instead, where recipes are compared, so that the
    test alphabets are never looked at while choosing; `split="unseen"` measures every
    drawing of `sources`, a character set the run never had (heldout.py). `running_mean`
    scores the Kaiser memory with count-weighted merges ([memory] running_mean, beyond the
    paper: a class's slot becomes the mean of its merged drawings, where the paper's merge
    halves the weight of everything earlier at every hit) instead of the checkpoint's setting.
    `within_alphabet` draws the classes of every task and episode from one alphabet: the
    look-alike rivals of Lake et al.'s runs, at any N-way k-shot (episodes.alphabet_pools)."""


    config, trained, step, test, _, described = restore_held_out(run_dir, sources, split, ways, within_alphabet)
    if running_mean:
        config = with_overrides(config, origin="--running-mean", memory__running_mean=True)
    per_shot_episodes = episodes if per_shot_episodes is None else per_shot_episodes
    rounds = max(shots) + 1

    embedders = {"trained": trained}
    if untrained:
        keras.utils.set_random_seed(config.train.seed)
        embedders["untrained"] = build_model(config)  # the initial weights training started from
    results = {
        "run": str(run_dir),
        "step": step,
        "split": described,
        "evaluated": split,
        "episodes": episodes,
        "queries": queries,
        "seed": seed,
        "memory_size": config.memory.memory_size,
        "memory_running_mean": config.memory.running_mean,
        "within_alphabet": within_alphabet,
        "key_dim": config.model.output_dim,
        "nway": [],
        "per_shot": [],
        "by_alphabet": [],
        "by_rivals": [],
    }
    steps_total = len(embedders) * len(ways) * (len(shots) + (1 if per_shot_episodes else 0))

    bar = tqdm(total=steps_total, disable=not progress, desc="omniglot eval", unit="setting")
    for embedder_name, embedder in embedders.items():
        keys = embed_images(embedder, test.images)
        readouts = make_readouts(config, max(ways))
        for n in ways:
            for k in shots:
                truth, answered = task_answers(keys, test, readouts, n, k, episodes, queries, seed, within_alphabet)
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
                curve = per_shot_accuracy(keys, test, readouts["memory"], n, rounds, per_shot_episodes, seed,
                                          within_alphabet)
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
