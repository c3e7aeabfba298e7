"""The life-long stream: every held-out drawing shown once, answered before it is written.

This is where Kaiser et al. say a memory matters: it never gets cleared, holds fewer
slots than there are drawings, and must decide what to keep. All drawings of the test
alphabets go through one memory in a seeded random order; each is looked up (the
answer), then written with its label. The readouts see the same stream, each a
memory_module memory built by experiments.core.memories.build_memory (rows are
labelled as settings.STREAM_READOUT_KINDS says):

- `memory`: the Kaiser memory with `size` slots (it merges a drawing into its class's
  slot when that slot answered correctly, else overwrites an old slot);
- `fifo`: 1-NN over the last `size` drawings (a buffer that forgets the oldest);
- `store-all`: 1-NN over every earlier drawing (what unbounded storage gives);
- on request, `reservoir` (`size` slots kept class-balanced) and `prototype` (one
  running mean per character).

The readouts are the stream's independent runs (one order, memories that never
interact): stream_together.py feeds a chunk of them through one traced call, each getting
the answers its own runner (sequences.make_sequence_runner) gives.

Accuracy is reported by shot (how many drawings of that character came earlier; at
0 shots no readout can know the label, so those items are reported but always wrong)
and by position in the stream (items with at least one earlier drawing), with 95%
Wilson intervals over items.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from experiments.core.memories import build_memory
from experiments.core.metrics import proportion, shots_seen
from experiments.episodic.evaluation.heldout import restore_held_out
from experiments.episodic.evaluation.sequences import make_sequence_runner
from experiments.episodic.evaluation.stream_together import answers_together, check_stream_chunk
from experiments.episodic.model import embed_images
from experiments.episodic.settings import STREAM_READOUT_KINDS, STREAM_READOUTS

POSITION_BINS = 10
MAX_SHOT_REPORTED = 10
# Kinds whose size is not a setting: store-all holds the whole stream, class means one key per character.
UNSIZED_KINDS = ("store_all", "class_means")


def proportion_interval(correct: int, total: int) -> tuple[float, float, float]:
    """(proportion, Wilson low, high), or NaNs for an empty group (a shot count no item reached)."""
    if total == 0:
        return float("nan"), float("nan"), float("nan")
    pooled = proportion(int(correct), int(total))
    return pooled["mean"], pooled["ci_low"], pooled["ci_high"]


def stream_answers(keys: np.ndarray, labels: np.ndarray, memory) -> np.ndarray:
    """The memory's answer to each item before it is written, one item at a time (-1 while it is empty)."""
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


def stream_evaluation(keys: np.ndarray, labels: np.ndarray, sizes: Sequence[int], make_memory: Callable,
                      seed: int = 0, readouts: Sequence[str] = STREAM_READOUTS, chunk: int | None = None) -> dict:
    """Every readout on one seeded order of (keys, labels); `make_memory(kind, size)` builds the memory of a
    kind with `size` slots.

    The unsized readouts (store-all, prototype) come first, built once with the stream's length
    or its number of characters as their size; then, for each of `sizes`, the sized ones, in
    the order of `readouts`. The rows' memories are fed `chunk` at a time through one traced
    call (stream_together.py; None: all together, 1: each through its own runner); the
    answers do not depend on it.
    """
    check_stream_chunk(chunk)
    unknown = [name for name in readouts if name not in STREAM_READOUT_KINDS]
    if unknown:
        raise ValueError(f"stream readouts {unknown} unknown; choose from {', '.join(STREAM_READOUT_KINDS)}")
    order = np.random.default_rng([seed, 424242]).permutation(len(labels))
    keys, labels = keys[order], labels[order].astype(np.int64)
    too_big = [s for s in sizes if s >= len(labels)]
    if too_big:
        raise ValueError(f"memory sizes {too_big} are not below the {len(labels)} drawings store-all would hold")
    classes = int(len(np.unique(labels)))
    kinds = {name: STREAM_READOUT_KINDS[name] for name in readouts}

    specs = [(name, len(labels) if kind == "store_all" else classes)
             for name, kind in kinds.items() if kind in UNSIZED_KINDS]
    specs += [(name, size) for size in sizes for name, kind in kinds.items() if kind not in UNSIZED_KINDS]
    answered = answers_together([make_memory(kinds[name], size) for name, size in specs], keys, labels, chunk)
    rows = [{"readout": name, "size": int(size), **summarize(answers, labels)}
            for (name, size), answers in zip(specs, answered, strict=True)]
    return {"items": int(len(labels)), "classes": classes, "seed": seed, "rows": rows}


def run_stream(run_dir, sources=None, sizes: Sequence[int] | None = None, seed: int = 0, split: str = "test",
               readouts: Sequence[str] = STREAM_READOUTS,
               slots_per_character: Sequence[float] | None = None, chunk: int | None = None) -> dict:
    """The stream evaluation of a run directory or shipped checkpoint on its test alphabets
    (or, with `split="unseen"`, on every drawing of `sources`: heldout.py).

    Sizes: `sizes` slots, or `slots_per_character` times the characters measured (rounded
    half up: 0.5 x 659 = 330), not both. Default: 1, 2, 4 and 8 slots per held-out
    character, all below the 20 drawings per character that store-all ends up holding.
    Every memory gets the run's [memory] settings with `size` slots (the Kaiser memory's
    choose_k at most `size`) and the seed [train] seed + 4. `chunk`: memories per traced
    call (stream_evaluation); it changes the speed, never the results.
    """
    check_stream_chunk(chunk)
    if sizes and slots_per_character:
        raise ValueError("give the stream's memory sizes in slots or in slots per character, not both")
    config, embedder, step, test, alphabets, _ = restore_held_out(run_dir, sources, split)
    if slots_per_character:
        sizes = [int(test.num_classes * m + 0.5) for m in slots_per_character]
    sizes = list(sizes) if sizes else [test.num_classes * m for m in (1, 2, 4, 8)]

    def make_memory(kind: str, size: int):
        memory = dataclasses.replace(config.memory, memory_size=size, choose_k=min(config.memory.choose_k, size))
        return build_memory(kind, config.model.output_dim, memory, seed=config.train.seed + 4, capacity=size,
                            classes=size)

    results = stream_evaluation(embed_images(embedder, test.images), test.labels, sizes, make_memory, seed, readouts,
                                chunk)
    found = {"run": str(run_dir), "step": step, "evaluated": split, "alphabets": list(alphabets), **results}
    if slots_per_character:
        found["slots_per_character"] = [float(m) for m in slots_per_character]
    return found


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
