"""Write tests/golden/celebrity_golden.npz: the reference embeddings of five celebrity photos.

Run only when a change of the model's output is intended (new weights, a
deliberate preprocessing change), and say why in the commit:

    .venv/bin/python tests/golden/make_golden.py

It aligns without the cache, so the file records MTCNN and FaceNet as installed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).with_name("celebrity_golden.npz")


def golden_files(dataset) -> list[Path]:
    """The first val photo of each person, as `val/<person>/<file>` paths inside the dataset."""
    chosen = {}
    for path, label, split in zip(dataset.paths, dataset.labels, dataset.split):
        if split == "val" and label not in chosen:
            chosen[label] = path
    return [chosen[label] for label in sorted(chosen)]


def compute(dataset, embedder) -> tuple[list[str], np.ndarray]:
    from facenet_tf import prepare_crops

    paths = golden_files(dataset)
    prepared = prepare_crops([str(p) for p in paths], use_cache=False, progress=False)
    if len(prepared.kept_paths) != len(paths):
        raise RuntimeError(f"golden photos were skipped: {prepared.skipped}")
    names = [p.relative_to(dataset.root).as_posix() for p in paths]
    return names, embedder.embed_crops(prepared.crops)


def main() -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf
    from mtcnn.metadata import __version__ as mtcnn_version

    from experiments.datasets import load_image_dataset
    from facenet_tf import Embedder, load_facenet

    dataset = load_image_dataset("celebrities")
    names, embeddings = compute(dataset, Embedder(load_facenet(), progress=False))
    with open(GOLDEN, "wb") as handle:
        np.savez(handle, files=np.array(names), embeddings=embeddings.astype(np.float32),
                 versions=np.array([f"tensorflow={tf.__version__}", f"keras={keras.__version__}",
                                    f"mtcnn={mtcnn_version}"]))
    print(f"wrote {GOLDEN} ({len(names)} embeddings)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    sys.exit(main())
