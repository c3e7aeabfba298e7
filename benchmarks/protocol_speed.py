"""1000 repeats of the frozen-embedder k-shot protocol (baseline and memory) on the celebrities.

What it measures: the protocol loop of `kshot run` for the two methods that need no
images, with the celebrity embeddings computed once beforehand (FaceNet time is
excluded; the embedding cache makes it quick after the first run). Each repeat runs up
to 10 shots of the blog's protocol (11 iterations) per method.

Two paths are timed in the same process, on the same repeats: the per-repeat path (one
traced memory reset per repeat, one graph call per iteration) and the batched path of
`kshot run` (experiments.faces.chunks: a chunk of repeats per graph call, its one trace
per method included in its time). Before timing, both are checked on the first repeats:
every recorded array of the batched path equals the per-repeat path's, and the
per-repeat path's confusions equal the plain path's (fresh, eager memory_module objects).
Both paths run with the garbage collector off TensorFlow's long-lived objects
(experiments.core.heap), as `kshot run` runs them. The load average is printed beside
every timing.

    python benchmarks/protocol_speed.py [--repeats 1000] [--embeddings FILE.npz] [--chunk-size N]

Last lines:
    RESULT protocol_1000_repeats_s=<batched seconds for 1,000 repeats of one method, the slower one>
    RESULT batched_speedup=<per-repeat seconds / batched seconds, both methods>
    RESULT load_average_1min=<the machine's load when they were measured>
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

from experiments.core.heap import settled_heap  # noqa: E402
from experiments.core.memories import build_memory  # noqa: E402
from experiments.faces import chunks, methods  # noqa: E402
from experiments.faces import settings as cfg  # noqa: E402
from experiments.faces.adapters import build_adapter  # noqa: E402
from experiments.faces.results import RepeatResult  # noqa: E402
from experiments.faces.run_data import prepare_data  # noqa: E402
from experiments.faces.runner import (  # noqa: E402
    compute_repeats,
    forget_schedules,
    model_generator,
    repeat_iterations,
    run_repeat,
)


def plain_confusions(model: str, repeat: int, data, config) -> list[np.ndarray]:
    """The protocol with fresh eager memory_module objects: the reference the traced path must equal."""
    import memory_module  # deferred: only this reference check needs the library directly

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


def loads() -> str:
    """The machine's load averages (1, 5, 15 min), printed beside every timing: a loaded machine is slower."""
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1000)
    parser.add_argument("--embeddings", default="", help="an npz from `kshot embed` instead of the celebrity set")
    parser.add_argument("--check-repeats", type=int, default=5)
    parser.add_argument("--chunk-size", type=int, default=chunks.DEFAULT_CHUNK_SIZE, help="repeats per batched call")
    args = parser.parse_args()

    config = cfg.from_dict({"run": {"repeats": args.repeats, "max_shots": 10, "models": ["baseline", "memory"]}})
    data = prepare_data(cfg.DataSection(embeddings=args.embeddings), need_crops=False, progress=False)
    print(f"data: {len(data.labels)} embeddings, {len(data.class_names)} classes; {args.repeats} repeats per method, up to 10 shots")

    adapters = {model: build_adapter(model, data, config) for model in config.run.models}
    for model, adapter in adapters.items():
        checked = list(range(args.check_repeats))
        batched = list(compute_repeats(adapter, model, checked, data, config, args.chunk_size))
        for repeat, together in zip(checked, batched):
            fast = run_repeat(adapter, model, repeat, data, config)
            for name in RepeatResult.ARRAYS:
                if name != "seconds" and not np.array_equal(getattr(fast, name), getattr(together, name)):
                    raise SystemExit(f"{model} repeat {repeat}: the batched path's {name} differs from the per-repeat path")
            for fast_confusion, plain in zip(fast.confusion[1:], plain_confusions(model, repeat, data, config)):
                if not np.array_equal(fast_confusion, plain):
                    raise SystemExit(f"{model} repeat {repeat}: the traced path differs from the plain path")
    print(f"batched path == per-repeat path == plain path on the first {args.check_repeats} repeats of each method")

    per_repeat_total, batched_seconds = 0.0, {}
    for model, adapter in adapters.items():
        forget_schedules()  # each path draws its own schedules inside its time
        start = time.perf_counter()
        with settled_heap():  # as compute_repeats runs: both paths leave TensorFlow's objects out of collection
            one_at_a_time = [run_repeat(adapter, model, r, data, config) for r in range(args.repeats)]
        seconds = time.perf_counter() - start
        per_repeat_total += seconds
        print(f"{model}, per-repeat path: {seconds:.2f} s for {args.repeats} repeats "
              f"({1000 * seconds / args.repeats:.2f} ms per repeat); {loads()}")
        forget_schedules()
        start = time.perf_counter()  # the batched path's one trace per method is inside its time
        together = list(compute_repeats(adapter, model, list(range(args.repeats)), data, config, args.chunk_size))
        batched_seconds[model] = time.perf_counter() - start
        same = all(np.array_equal(a.confusion, b.confusion) for a, b in zip(one_at_a_time, together))
        print(f"{model}, batched path (chunks of {args.chunk_size}): {batched_seconds[model]:.2f} s; "
              f"1-shot mean {np.mean([r.accuracy[1] for r in together]):.4f}; same confusions: {same}; {loads()}")
    slowest = max(batched_seconds.values()) * 1000 / args.repeats
    speedup = per_repeat_total / sum(batched_seconds.values())
    print(f"RESULT protocol_1000_repeats_s={slowest:.3f}")
    print(f"RESULT batched_speedup={speedup:.1f}")
    print(f"RESULT load_average_1min={os.getloadavg()[0]:.2f}")  # beside the two above: a loaded machine is slower


if __name__ == "__main__":
    main()
