"""Embedder throughput against plain `model.predict` on the same FaceNet, CPU, batch 32.

Both paths get the same 256 prewhitened 160x160 crops (random, seeded: speed does
not depend on content) after one warm-up pass each, so tracing and XLA
compilation are not counted. Embeddings must agree within 1e-4 cosine. The
traced function is measured with and without XLA; the Embedder's default is
reported in the RESULT line (the last line).

    .venv/bin/python benchmarks/embed_throughput.py [--images 256]
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


def images_per_second(run, crops: np.ndarray) -> tuple[float, np.ndarray]:
    run(crops[:BATCH_SIZE])                        # warm-up: tracing / compilation
    start = time.perf_counter()
    out = run(crops)
    return len(crops) / (time.perf_counter() - start), np.asarray(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    crops = prewhiten(rng.integers(0, 256, size=(args.images, 160, 160, 3)).astype(np.float32))
    model = load_facenet()

    predict_rate, reference = images_per_second(
        lambda x: model.predict(x, batch_size=BATCH_SIZE, verbose=0), crops)
    print(f"model.predict: {predict_rate:.1f} img/s")
    rates = {}
    for jit in (False, True):
        embedder = Embedder(model, batch_size=BATCH_SIZE, jit_compile=jit, progress=False)
        rate, embeddings = images_per_second(embedder.embed_crops, crops)
        gap = float(np.max(1.0 - np.sum(embeddings * reference, axis=1)))
        print(f"Embedder jit_compile={jit}: {rate:.1f} img/s, max cosine gap to predict {gap:.2e}")
        if gap > MAX_COSINE_GAP:
            print(f"FAIL: embeddings differ from model.predict by {gap:.2e} > {MAX_COSINE_GAP}", file=sys.stderr)
            return 1
        rates[jit] = rate
    rate = rates[DEFAULT_JIT_COMPILE]
    print(f"RESULT embed_speedup={rate / predict_rate:.2f} embedder_img_s={rate:.1f} predict_img_s={predict_rate:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
