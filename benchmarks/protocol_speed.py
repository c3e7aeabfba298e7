"""1000 repeats of the frozen-embedder k-shot protocol (baseline and memory) on the celebrities.

What it measures: the protocol loop of `kshot run` for the two methods that need no
images, with the celebrity embeddings computed once beforehand (FaceNet time is
excluded; the embedding cache makes it quick after the first run). Each repeat runs up
to 10 shots of the blog's protocol (11 iterations) per method.

Before timing, the traced adapters (one memory_module memory, reset per repeat, one
graph call per iteration) are checked against the plain path (fresh, eager
memory_module objects, loss then write then lookup) on the first repeats: identical
confusion matrices.

    python benchmarks/protocol_speed.py [--repeats 1000] [--embeddings FILE.npz]

Last line: RESULT protocol_1000_repeats_s=<seconds>
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from experiments.core.memories import build_memory
from experiments.faces import methods
from experiments.faces import settings as cfg  # noqa: E402
from experiments.faces.adapters import build_adapter
from experiments.faces.run_data import prepare_data  # noqa: E402
from experiments.faces.runner import model_generator, repeat_iterations, run_repeat  # noqa: E402


def plain_confusions(model: str, repeat: int, data, config) -> list[np.ndarray]:
    """The protocol with fresh eager memory_module objects: the reference the traced path must equal."""
    import memory_module

    n_classes = len(data.class_names)
    rng = model_generator(config.run.seed, repeat, model)
    seed = int(rng.integers(0, 2**31 - 1))
    key_dim = data.embeddings.shape[1]
    if methods.bounded(model):
        store = build_memory("kaiser", key_dim, config.memory, seed=seed)
    else:
        store = memory_module.StoreAllNearestNeighbour(key_dim=key_dim)
    confusions = []
    for it in repeat_iterations(data.labels, n_classes, config, model, repeat)[1:]:  # 0 shots is a guess either way
        store.write(data.embeddings[it.feed], data.labels[it.feed])
        predicted = np.asarray(store.lookup(data.embeddings[it.evaluate]).labels)
        confusion = np.zeros((n_classes, n_classes), np.int64)
        np.add.at(confusion, (data.labels[it.evaluate], predicted), 1)
        confusions.append(confusion)
    return confusions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1000)
    parser.add_argument("--embeddings", default="", help="an npz from `kshot embed` instead of the celebrity set")
    parser.add_argument("--check-repeats", type=int, default=5)
    args = parser.parse_args()

    config = cfg.from_dict({"run": {"repeats": args.repeats, "max_shots": 10, "models": ["baseline", "memory"]}})
    data = prepare_data(cfg.DataSection(embeddings=args.embeddings), need_crops=False, progress=False)
    print(f"data: {len(data.labels)} embeddings, {len(data.class_names)} classes; {args.repeats} repeats per method, up to 10 shots")

    adapters = {model: build_adapter(model, data, config) for model in config.run.models}
    for model, adapter in adapters.items():
        for repeat in range(args.check_repeats):
            fast = run_repeat(adapter, model, repeat, data, config)
            for fast_confusion, plain in zip(fast.confusion[1:], plain_confusions(model, repeat, data, config)):
                if not np.array_equal(fast_confusion, plain):
                    raise SystemExit(f"{model} repeat {repeat}: the traced path differs from the plain path")
    print(f"traced path == plain path on the first {args.check_repeats} repeats of each method")

    total = 0.0
    for model, adapter in adapters.items():
        start = time.perf_counter()
        accuracy_1 = []
        for repeat in range(args.repeats):
            result = run_repeat(adapter, model, repeat, data, config)
            accuracy_1.append(result.accuracy[1])
        seconds = time.perf_counter() - start
        total += seconds
        print(f"{model}: {seconds:.2f} s for {args.repeats} repeats ({1000 * seconds / args.repeats:.2f} ms per repeat); 1-shot mean {np.mean(accuracy_1):.4f}")
    scaled = total * 1000 / args.repeats
    print(f"RESULT protocol_1000_repeats_s={scaled:.2f}")


if __name__ == "__main__":
    main()
