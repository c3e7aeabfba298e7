"""Write tests/facenet_tf/golden/celebrity_golden.npz: reference boxes and embeddings of five celebrity photos.

The file holds, per photo, the MTCNN box of the most confident face and the
FaceNet embedding of the crop cut with that recorded box. The test can then tell
aligner drift (boxes move) from model drift (same crop, different embedding).
Run only when a change of output is intended, and say why in the commit:

    .venv/bin/python tests/facenet_tf/golden/make_golden.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).with_name("celebrity_golden.npz")


def golden_files(dataset) -> list[Path]:
    """The first val photo of each person."""
    chosen = {}
    for path, label, split in zip(dataset.paths, dataset.labels, dataset.split):
        if split == "val" and label not in chosen:
            chosen[label] = path
    return [chosen[label] for label in sorted(chosen)]


def detect_boxes(paths) -> np.ndarray:
    """[n, 4] xyxy box of the most confident face per photo, as the aligner sees it."""
    from facenet_tf import FaceAligner, load_rgb

    aligner = FaceAligner()
    boxes = []
    for path in paths:
        faces = aligner.detect(load_rgb(path, aligner.settings.max_image_side))
        if not faces:
            raise RuntimeError(f"no face in golden photo {path}")
        boxes.append(faces[0]["box"])
    return np.asarray(boxes, dtype=np.float64)


def embed_with_boxes(paths, boxes, embedder) -> np.ndarray:
    """Embeddings of crops cut with the given boxes (the aligner's margin and size)."""
    from facenet_tf import AlignSettings, crop_with_margin, load_rgb, prewhiten

    settings = AlignSettings()
    crops = [crop_with_margin(load_rgb(p, settings.max_image_side), box, settings.margin, settings.image_size)
             for p, box in zip(paths, boxes)]
    return embedder.embed_crops(prewhiten(np.stack(crops)))


def main() -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf
    from mtcnn.metadata import __version__ as mtcnn_version

    from experiments.faces.datasets import load_image_dataset
    from facenet_tf import Embedder, load_facenet

    dataset = load_image_dataset("celebrities")
    paths = golden_files(dataset)
    boxes = detect_boxes(paths)
    embeddings = embed_with_boxes(paths, boxes, Embedder(load_facenet(), progress=False))
    with open(GOLDEN, "wb") as handle:
        np.savez(handle, files=np.array([p.relative_to(dataset.root).as_posix() for p in paths]),
                 boxes=boxes, embeddings=embeddings.astype(np.float32),
                 versions=np.array([f"tensorflow={tf.__version__}", f"keras={keras.__version__}",
                                    f"mtcnn={mtcnn_version}"]))
    print(f"wrote {GOLDEN} ({len(paths)} photos)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
