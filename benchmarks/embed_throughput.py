"""Embedder throughput against plain `model.predict` on the same FaceNet, CPU, batch 32.

Both paths embed the same prewhitened 160x160 crops (random, seeded: speed does not
depend on content). Each is warmed up first (tracing is not counted), then the two
are timed in alternating rounds so that a change in machine load during the run
hits both alike. Embeddings must agree within 1e-4 cosine. The traced function is
measured with and without XLA; the RESULT line (the last line) reports the
Embedder's default (`DEFAULT_JIT_COMPILE`).

    .venv/bin/python benchmarks/embed_throughput.py [--images 128] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from facenet_tf import Embedder, load_facenet, prewhiten  # noqa: E402
from facenet_tf.embedder import DEFAULT_JIT_COMPILE  # noqa: E402

BATCH_SIZE = 32
MAX_COSINE_GAP = 1e-4


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    crops = prewhiten(rng.integers(0, 256, size=(args.images, 160, 160, 3)).astype(np.float32))
    model = load_facenet()

    runners = {"predict": lambda x: model.predict(x, batch_size=BATCH_SIZE, verbose=0)}
    for jit in (False, True):
        embedder = Embedder(model, batch_size=BATCH_SIZE, jit_compile=jit, progress=False)
        runners[f"embedder_jit={jit}"] = embedder.embed_crops
    outputs = {name: np.asarray(run(crops)) for name, run in runners.items()}   # warm-up + results
    seconds = dict.fromkeys(runners, 0.0)
    for _ in range(args.rounds):
        for name, run in runners.items():
            start = time.perf_counter()
            run(crops)
            seconds[name] += time.perf_counter() - start
    rate = {name: args.rounds * args.images / s for name, s in seconds.items()}
    for name in runners:
        gap = float(np.max(1.0 - np.sum(outputs[name] * outputs["predict"], axis=1)))
        print(f"{name}: {rate[name]:.1f} img/s, max cosine gap to predict {gap:.2e}")
        if gap > MAX_COSINE_GAP:
            print(f"FAIL: {name} differs from model.predict by {gap:.2e} > {MAX_COSINE_GAP}", file=sys.stderr)
            return 1
    embedder_rate, predict_rate = rate[f"embedder_jit={DEFAULT_JIT_COMPILE}"], rate["predict"]
    print(f"RESULT embed_speedup={embedder_rate / predict_rate:.2f} "
          f"embedder_img_s={embedder_rate:.1f} predict_img_s={predict_rate:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
