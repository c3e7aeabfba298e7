"""Domain-shifted variants of the built-in celebrity set: `--data celebrities_<variant>`.

A variant is made from the cached celebrity photos: each photo is aligned exactly as
for `celebrities` (MTCNN through the crop cache, 160 px crop with a 44 px margin), the
aligned crop is transformed, and the result is written as a PNG under
`<cache>/datasets/celebrities_<variant>/v<version>/<split>/<label>/<name>.png`. The
variant is then an ordinary folder of face crops read with `aligned=True` (resize
only), so every model, cache and tool treats it like any other dataset. Photos in
which no face is found are skipped, as for `celebrities`. Files are written
atomically, and a folder is reused only when its manifest says it was made from
the same photos by the same transformation version.

Variants (why each: a shift that hurts the pretrained embedding, so store-all 1-NN
on it is well below its clean accuracy, leaving room for adaptation to show):
- `lowres`: the aligned crop box-averaged down to LOWRES_SIDE x LOWRES_SIDE pixels,
  then bilinearly scaled back to 160 x 160: a face seen from far away or by a poor
  camera; identity cues finer than about 160 / LOWRES_SIDE pixels are gone.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from facenet_tf import AlignSettings, FaceAligner
from facenet_tf.caches import CropCache
from facenet_tf.fetch import ensure_celebrities
from kshot_io import atomic_write, cache_root, sha256_of_file, write_text_atomic

LOWRES_SIDE = 12


def _lowres(crop: np.ndarray) -> np.ndarray:
    size = crop.shape[0]
    small = Image.fromarray(crop).resize((LOWRES_SIDE, LOWRES_SIDE), Image.Resampling.BOX)
    return np.asarray(small.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


@dataclass(frozen=True)
class Variant:
    name: str
    version: int   # bumped when `transform` changes, so an old folder is not reused
    transform: Callable[[np.ndarray], np.ndarray]   # uint8 [s, s, 3] aligned crop -> uint8 [s, s, 3]
    description: str


VARIANTS = {
    v.name: v
    for v in (
        Variant("lowres", 1, _lowres,
                f"aligned crops box-downscaled to {LOWRES_SIDE}x{LOWRES_SIDE} px and scaled back to 160x160"),
    )
}


def ensure_variant(variant: str, progress: bool = True) -> tuple[Path, list[tuple[str, str]]]:
    """The folder of celebrity crops transformed by `variant` (made once), and the skipped photos."""

    if variant not in VARIANTS:
        raise ValueError(f"unknown celebrity variant {variant!r}; built-in variants: {', '.join(VARIANTS)}")
    spec = VARIANTS[variant]
    source = ensure_celebrities()
    photos = sorted(p for p in source.rglob("*") if p.is_file() and p.parent.parent.name in ("train", "val"))
    manifest_text = json.dumps({"variant": spec.name, "version": spec.version,
                                "source": (source / "MANIFEST.json").read_text(encoding="utf-8")}, sort_keys=True)
    root = cache_root() / "datasets" / f"celebrities_{spec.name}" / f"v{spec.version}"
    manifest = root / "MANIFEST.json"
    skipped_file = root / "skipped.json"
    if manifest.is_file() and manifest.read_text(encoding="utf-8") == manifest_text and skipped_file.is_file():
        return root, [tuple(s) for s in json.loads(skipped_file.read_text(encoding="utf-8"))]


    settings = AlignSettings().resolved()
    aligner, cache = FaceAligner(settings), CropCache(settings)
    skipped = []
    iterator = photos
    if progress:
        iterator = tqdm(photos, desc=f"making celebrities_{variant}", leave=False)
    for photo in iterator:
        crop, reason = cache.aligned(aligner, photo, sha256_of_file(photo))
        if crop is None:
            skipped.append((str(photo), reason))
            continue
        target = root / photo.relative_to(source).with_suffix(".png")
        buffer = io.BytesIO()
        Image.fromarray(spec.transform(crop)).save(buffer, format="PNG")
        with atomic_write(target, "wb") as handle:
            handle.write(buffer.getvalue())
    write_text_atomic(skipped_file, json.dumps(skipped))
    write_text_atomic(manifest, manifest_text)   # last: the folder is complete
    return root, skipped
