"""The life-long stream: every held-out drawing shown once, answered before it is written.

This is where Kaiser et al. say a memory matters: it never gets cleared, holds fewer
slots than there are drawings, and must decide what to keep. All drawings of the test
alphabets go through one memory in a seeded random order; each is looked up (the
answer), then written with its label. Three readouts see the same stream:

- `memory`: the Kaiser memory with `size` slots (it merges a drawing into its class's
  slot when that slot answered correctly, else overwrites an old slot);
- `fifo`: 1-NN over the last `size` drawings (a buffer that forgets the oldest);
- `store-all`: 1-NN over every earlier drawing (what unbounded storage gives).

Accuracy is reported by shot (how many drawings of that character came earlier; at
0 shots no readout can know the label, so those items are reported but always wrong)
and by position in the stream (items with at least one earlier drawing), with 95%
Wilson intervals over items.

The FIFO and store-all readouts are the same computation with different windows, done
here in numpy on a similarity matrix; no FIFO buffer class was in memory_module when
this was written.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import tensorflow as tf

from experiments.core.memories import build_memory
from experiments.core.metrics import proportion, shots_seen
from experiments.episodic.evaluation.evaluate import embed_images, make_sequence_runner
from experiments.episodic.evaluation.heldout import restore_held_out

POSITION_BINS = 10
MAX_SHOT_REPORTED = 10


def proportion_interval(correct: int, total: int) -> tuple[float, float, float]:
    """(proportion, Wilson low, high), or NaNs for an empty group (a shot count no item reached)."""
    if total == 0:
        return float("nan"), float("nan"), float("nan")
    pooled = proportion(int(correct), int(total))
    return pooled["mean"], pooled["ci_low"], pooled["ci_high"]


def window_nearest_answers(keys: np.ndarray, labels: np.ndarray, window: int | None) -> np.ndarray:
    """For each item t, the label of the most similar of items max(0, t - window) .. t-1 (-1 for t = 0).

    window None: every earlier item (store-all). Keys are compared by cosine similarity.
    """
    unit = keys / np.maximum(np.linalg.norm(keys, axis=1, keepdims=True), 1e-12)
    n = len(unit)
    answers = np.full(n, -1, dtype=np.int64)
    block = 512
    for start in range(1, n, block):
        rows = np.arange(start, min(start + block, n))
        sims = unit[rows] @ unit[: rows[-1]].T  # earlier items only
        cols = np.arange(rows[-1])[None, :]
        visible = cols < rows[:, None]
        if window is not None:
            visible &= cols >= rows[:, None] - window
        sims = np.where(visible, sims, -np.inf)
        answers[rows] = labels[np.argmax(sims, axis=1)]
    return answers


def memory_answers(keys: np.ndarray, labels: np.ndarray, memory) -> np.ndarray:
    """The Kaiser memory's answer to each item before it is written, one item at a time."""


    memory.reset()
    run = make_sequence_runner(memory)
    return run(tf.constant(keys), tf.constant(labels.astype(np.int64))).numpy()


def summarize(answers: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy overall (items with an earlier drawing), by shot, and by stream position."""
    correct = answers == labels
    shots = shots_seen(labels)
    seen = shots >= 1
    out = {"accuracy": dict(zip(("mean", "ci_low", "ci_high"), proportion_interval(correct[seen].sum(), seen.sum())))}
    out["by_shot"] = []
    for k in range(min(int(shots.max()), MAX_SHOT_REPORTED) + 1):
        mask = shots == k
        mean, low, high = proportion_interval(correct[mask].sum(), mask.sum())
        out["by_shot"].append({"shot": k, "items": int(mask.sum()), "mean": mean, "ci_low": low, "ci_high": high})
    out["by_position"] = []
    edges = np.linspace(0, len(labels), POSITION_BINS + 1).astype(int)
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = np.zeros(len(labels), bool)
        mask[lo:hi] = True
        mask &= seen
        mean, low, high = proportion_interval(correct[mask].sum(), mask.sum())
        out["by_position"].append({"from": int(lo), "to": int(hi), "items": int(mask.sum()), "mean": mean,
                                   "ci_low": low, "ci_high": high})
    return out


def stream_evaluation(keys: np.ndarray, labels: np.ndarray, sizes: Sequence[int], make_memory, seed: int = 0) -> dict:
    """Every readout on one seeded order of (keys, labels); `make_memory(size)` builds a Kaiser memory."""
    order = np.random.default_rng([seed, 424242]).permutation(len(labels))
    keys, labels = keys[order], labels[order].astype(np.int64)
    too_big = [s for s in sizes if s >= len(labels)]
    if too_big:
        raise ValueError(f"memory sizes {too_big} are not below the {len(labels)} drawings store-all would hold")
    rows = [{"readout": "store-all", "size": len(labels), **summarize(window_nearest_answers(keys, labels, None), labels)}]
    for size in sizes:
        rows.append({"readout": "memory", "size": int(size), **summarize(memory_answers(keys, labels, make_memory(size)), labels)})
        rows.append({"readout": "fifo", "size": int(size), **summarize(window_nearest_answers(keys, labels, size), labels)})
    return {"items": int(len(labels)), "classes": int(len(np.unique(labels))), "seed": seed, "rows": rows}


def run_stream(run_dir, sources=None, sizes: Sequence[int] | None = None, seed: int = 0, split: str = "test") -> dict:
    """The stream evaluation of a run directory or shipped checkpoint on its test alphabets
    (or, with `split="unseen"`, on every drawing of `sources`: heldout.py).

    Default sizes: 1, 2, 4 and 8 slots per held-out character, all below the 20 drawings
    per character that store-all ends up holding.
    """


    config, embedder, step, test, alphabets, _ = restore_held_out(run_dir, sources, split)
    sizes = list(sizes) if sizes else [test.num_classes * m for m in (1, 2, 4, 8)]

    def make_memory(size: int):
        memory = dataclasses.replace(config.memory, memory_size=size, choose_k=min(config.memory.choose_k, size))
        return build_memory("kaiser", config.model.output_dim, memory, seed=config.train.seed + 4)

    results = stream_evaluation(embed_images(embedder, test.images), test.labels, sizes, make_memory, seed)
    return {"run": str(run_dir), "step": step, "evaluated": split, "alphabets": list(alphabets), **results}


def stream_markdown(results: dict) -> str:
    rows = results["rows"]
    shots = [entry["shot"] for entry in rows[0]["by_shot"]]
    lines = [f"Life-long stream: {results['items']} held-out drawings of {results['classes']} characters, "
             f"each answered before it is written (order seed {results['seed']}).", "",
             "Accuracy on items with at least one earlier drawing, and by shot (earlier drawings of that character):", "",
             "| readout | size | accuracy [95% CI] | " + " | ".join(f"{k}-shot" for k in shots) + " |",
             "|---|---:|---|" + "---:|" * len(shots)]
    for row in rows:
        acc = row["accuracy"]
        cells = " | ".join(f"{100 * e['mean']:.1f}" for e in row["by_shot"])
        lines.append(f"| {row['readout']} | {row['size']} | {100 * acc['mean']:.1f} [{100 * acc['ci_low']:.1f}, "
                     f"{100 * acc['ci_high']:.1f}] | {cells} |")
    bins = rows[0]["by_position"]
    lines += ["", "By position in the stream (items with an earlier drawing):", "",
              "| readout | size | " + " | ".join(f"{b['from']}-{b['to']}" for b in bins) + " |",
              "|---|---:|" + "---:|" * len(bins)]
    for row in rows:
        lines.append(f"| {row['readout']} | {row['size']} | " + " | ".join(f"{100 * b['mean']:.1f}" for b in row["by_position"]) + " |")
    return "\n".join(lines) + "\n"
