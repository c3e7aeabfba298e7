"""Accuracy against footprint for every write policy and baseline, without `kshot run`'s files.

`kshot run --memory-sizes ... --models ...` is the supported way (it resumes, and writes
footprint.md and figures/footprint.png). This script runs the same protocol with the same
randomness (the runner's shuffle of repeat r shared by every model, the runner's per-model
seed, unknown answers replaced by the runner's guess) in one process, keeping only
accuracy and bytes per (model, repeat, shot), so that a sweep of dozens of models x 100
repeats fits a short session on a loaded 2-core machine. It prints the footprint table of
experiments.faces.footprint and writes RESULTS.csv, RESULTS.md and RESULTS.png.

    python benchmarks/footprint_sweep.py EMBEDDINGS.npz OUT_PREFIX --sizes 5,8,16 --repeats 100
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd

from experiments.faces.adapters import build_adapter

POLICIES = ("memory", "memory_running_mean", "memory_balanced", "memory_threshold", "memory_fold", "fifo", "reservoir")


def run(npz: str, sizes: list[int], repeats: int, max_shots: int = 10, seed: int = 0) -> pd.DataFrame:
    import tensorflow as tf

    from experiments.faces import methods
    from experiments.faces import settings as cfg
    from experiments.faces.run_data import load_embeddings_file
    from experiments.faces.runner import model_generator, repeat_iterations

    config = cfg.from_dict({"memory": {"memory_size": sizes},
                            "run": {"models": ["baseline", "class_means", *POLICIES], "max_shots": max_shots, "seed": seed}})
    data = load_embeddings_file(npz, config.data)
    x, y = data.embeddings, data.labels
    n_classes = len(data.class_names)
    rows = []
    for model in methods.run_models(config):
        started = time.time()
        memory = build_adapter(model, data, config).memory
        spec = tf.TensorSpec([None, x.shape[1]], tf.float32)

        @tf.function(input_signature=[spec, tf.TensorSpec([None], tf.int64), spec])
        def step(feed_q, feed_v, eval_q, memory=memory):
            memory(feed_q, feed_v, update=True)
            return memory.lookup(eval_q).labels, memory.usage().bytes

        @tf.function(input_signature=[spec])
        def look(eval_q, memory=memory):
            return memory.lookup(eval_q).labels, memory.usage().bytes

        for r in range(repeats):
            rng = model_generator(seed, r, model)
            memory.reset(seed=int(rng.integers(0, 2**31 - 1)))
            for it in repeat_iterations(y, n_classes, config, model, r):  # the runner's schedule, feed order included
                labels, nbytes = step(x[it.feed], y[it.feed], x[it.evaluate]) if len(it.feed) else look(x[it.evaluate])
                predicted = labels.numpy().astype(np.int64)
                unknown = predicted < 0
                if unknown.any():
                    predicted[unknown] = rng.integers(0, n_classes, size=int(unknown.sum()))
                rows.append({"model": model, "repeat": r, "shots": it.shots,
                             "accuracy": float(np.mean(predicted == y[it.evaluate])), "memory_bytes": int(nbytes)})
        print(f"{model}: {time.time() - started:.0f} s", file=sys.stderr, flush=True)
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("embeddings", help="an npz from `kshot embed` or `kshot omniglot embed`")
    parser.add_argument("out", help="prefix of the files to write")
    parser.add_argument("--sizes", required=True, help="comma-separated memory sizes")
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--max-shots", type=int, default=10)
    args = parser.parse_args(argv)
    from experiments.faces import footprint
    from experiments.core.figures import save_figure

    frame = run(args.embeddings, [int(s) for s in args.sizes.split(",")], args.repeats, args.max_shots)
    frame.to_csv(f"{args.out}.csv", index=False)
    text = footprint.footprint_markdown(footprint.footprint_table(frame))
    with open(f"{args.out}.md", "w", encoding="utf-8") as handle:
        handle.write(text)
    save_figure(footprint.footprint_figure(frame), f"{args.out}")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
