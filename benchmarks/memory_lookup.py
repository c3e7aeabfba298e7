"""Time the Kaiser memory's lookup and write against a bare matmul + top_k and faiss.

For N in {8192, 131072, 1048576} slots, d = 128, batch B in {16, 256}, choose_k = 256:
  topk    a bare tf.function of matmul + top_k(256) over the same key variable,
  faiss   faiss-cpu IndexFlatIP.search(k=256) over the same keys,
  lookup  KaiserMemory.lookup (matmul, empty-slot mask, top_k, answer),
  write   KaiserMemory.write = one lookup + the write (merge/insert, oldest-slot scan).
Every timed function is warmed up first; each number is the median of several runs.
The last line is `RESULT memory_vs_topk_1M_B16=<write/topk> memory_vs_faiss_1M_B16=<write/faiss>`.

Run: .venv/bin/python benchmarks/memory_lookup.py [--sizes 8192 131072 1048576] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, even before `pip install -e .`

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from memory_module import KaiserMemory  # noqa: E402

KEY_DIM, CHOOSE_K = 128, 256


def median_ms(function, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def _filled_memory(size: int, rng: np.random.Generator) -> tuple[KaiserMemory, np.ndarray]:
    keys = rng.standard_normal((size, KEY_DIM), dtype=np.float32)
    keys /= np.linalg.norm(keys, axis=1, keepdims=True)
    memory = KaiserMemory(size, KEY_DIM, choose_k=CHOOSE_K, seed=0)
    memory.keys.assign(keys)
    memory.values.assign(rng.integers(0, 1000, size=size))
    return memory, keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8192, 131072, 1048576])
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 256])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    try:
        import faiss
    except ImportError as error:
        raise SystemExit("faiss-cpu is needed for this benchmark: pip install -e '.[bench]'") from error

    rng = np.random.default_rng(0)
    print(f"TensorFlow {tf.__version__}, faiss {faiss.__version__}, {os.cpu_count()} CPUs, d={KEY_DIM}, k={CHOOSE_K}")
    print(f"{'N':>9} {'B':>4} {'topk ms':>9} {'faiss ms':>9} {'lookup ms':>10} {'write ms':>9} "
          f"{'write/topk':>10} {'write/faiss':>11}")
    ratios = {}
    for size in args.sizes:
        memory, keys = _filled_memory(size, rng)
        index = faiss.IndexFlatIP(KEY_DIM)
        index.add(keys)
        # Its own variable with the same keys: one the memory's scatter writes never put in
        # TensorFlow's copy-on-read mode, so the bare side pays for nothing but matmul + top_k.
        bare_keys = tf.Variable(keys, trainable=False)
        bare = tf.function(lambda q: tf.math.top_k(tf.matmul(q, bare_keys, transpose_b=True), k=CHOOSE_K))
        del keys
        lookup = tf.function(memory.lookup)
        write = tf.function(memory.write)
        for batch in args.batches:
            queries = rng.standard_normal((batch, KEY_DIM), dtype=np.float32)
            queries /= np.linalg.norm(queries, axis=1, keepdims=True)
            labels = tf.constant(rng.integers(0, 1000, size=batch))
            q = tf.constant(queries)
            t_topk = median_ms(lambda: bare(q)[1].numpy(), args.repeats)
            t_faiss = median_ms(lambda: index.search(queries, CHOOSE_K), args.repeats)
            t_lookup = median_ms(lambda: lookup(q).labels.numpy(), args.repeats)
            t_write = median_ms(lambda: write(q, labels).labels.numpy(), args.repeats)
            ratios[(size, batch)] = (t_write / t_topk, t_write / t_faiss)
            print(f"{size:>9} {batch:>4} {t_topk:>9.1f} {t_faiss:>9.1f} {t_lookup:>10.1f} {t_write:>9.1f} "
                  f"{t_write / t_topk:>10.2f} {t_write / t_faiss:>11.2f}", flush=True)
        del memory, index, bare_keys
    key = (max(args.sizes), min(args.batches))
    vs_topk, vs_faiss = ratios[key]
    print(f"RESULT memory_vs_topk_1M_B16={vs_topk:.2f} memory_vs_faiss_1M_B16={vs_faiss:.2f}"
          + ("" if key == (1048576, 16) else f"  (measured at N={key[0]}, B={key[1]})"))


if __name__ == "__main__":
    main()
