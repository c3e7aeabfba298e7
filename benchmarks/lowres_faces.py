"""A domain-shifted copy of a face dataset: each aligned crop shrunk to a few pixels and back.

Why: on the clean celebrity photos 1-NN on frozen FaceNet embeddings is already near
1.0, so a memory policy cannot be told apart from store-all there. Low resolution is a
shift FaceNet was not trained for (surveillance-style faces) and spreads each identity
over several modes, which is where merging and eviction rules matter.

The transformation, exactly: the aligned 160x160 uint8 crop (MTCNN, from the crop cache,
the same crop `kshot run` embeds) is resized to `--size` pixels square with Pillow's
BOX filter (area average), then back to 160x160 with BICUBIC, and written as PNG to
`OUT/<split>/<label>/<name>.png`. Run it on such a folder with `--aligned` (no second
detection). Deterministic: the same photos give the same files.

    python benchmarks/lowres_faces.py --out /tmp/celebrities_lowres14 --size 14
    kshot run --data /tmp/celebrities_lowres14/train --aligned ...
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image


def shrink_and_restore(crop: np.ndarray, size: int) -> np.ndarray:
    side = crop.shape[0]
    small = Image.fromarray(crop).resize((size, size), Image.BOX)
    return np.asarray(small.resize((side, side), Image.BICUBIC))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="celebrities", help="a built-in dataset name or a folder")
    parser.add_argument("--out", required=True, help="folder to write OUT/<split>/<label>/<name>.png into")
    parser.add_argument("--size", type=int, default=14, help="side in pixels of the shrunk crop (default 14)")
    args = parser.parse_args(argv)
    if not 2 <= args.size <= 160:
        parser.error(f"--size must be in [2, 160], got {args.size}")

    from experiments.faces.datasets import load_image_dataset
    from facenet_tf import FaceAligner, ImageSkipError
    from facenet_tf.caches import CropCache
    from facenet_tf.embedder import effective_settings
    from kshot_io import sha256_of_file

    dataset = load_image_dataset(args.data)
    aligner = FaceAligner(effective_settings(None, aligned=False))
    cache = CropCache(aligner.settings)
    out = Path(args.out)
    written, skipped = 0, []
    splits = dataset.split or ("all",) * len(dataset)
    for path, label, split in zip(dataset.paths, dataset.labels, splits):
        hit = cache.get(sha256_of_file(path))
        if hit is not None and hit[0] == "skip":
            skipped.append(f"{path}: {hit[2]}")
            continue
        try:
            crop = hit[1] if hit is not None else aligner.align(path)
        except ImageSkipError as error:  # the same photos `kshot run` skips
            skipped.append(f"{path}: {error.reason}")
            continue
        target = out / split / label / (Path(path).stem + ".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(shrink_and_restore(crop, args.size)).save(target)
        written += 1
    for line in skipped:
        print(f"skipped {line}")
    print(f"wrote {written} crops of {len(set(dataset.labels))} labels at {args.size}px to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
