"""Domain-shifted variants of the built-in celebrity set: `--data celebrities_<variant>`.

A variant is made from the cached celebrity photos: each photo is aligned exactly as
for `celebrities` (MTCNN through the crop cache, 160 px crop with a 32 px margin), the
aligned crop is transformed, and the result is written as a PNG under
`<cache>/datasets/celebrities_<variant>/v<version>/<split>/<label>/<name>.png`. The
variant is then an ordinary folder of face crops read with `aligned=True` (resize
only), so every model, cache and tool treats it like any other dataset. Photos in
which no face is found are skipped, as for `celebrities`. Files are written
atomically, and a folder is reused only when its manifest says it was made from
the same photos by the same transformation version. A transformation is a fixed
function of the crop and a seed taken from the photo's path below the celebrity
folder (`photo_seed`), so the same photo always gives the same pixels.

Variants (each a condition a face camera meets; the transformations and the reason
for each strength are in experiments.faces.shift_filters):
- `lowres`: box-averaged to 12 x 12 px and scaled back: a face far away or a poor camera;
- `blur`: Gaussian blur of standard deviation 4 px: a face out of focus;
- `gray`: luma in all three channels: a black-and-white photo or a night-mode camera;
- `jpeg`: JPEG at quality 10, decoded again: a photo recompressed for a thumbnail;
- `noise`: Gaussian pixel noise of 25 grey levels: a dim-light photo at high gain;
- `occlusion`: the lower 45% of the crop (nose tip to chin) filled: a surgical mask;
- `cartoon`: flat colours with dark outlines: a drawing or animation of the person.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from experiments.faces import shift_filters
from facenet_tf import AlignSettings, FaceAligner
from facenet_tf.caches import CropCache
from facenet_tf.fetch import ensure_celebrities
from kshot_io import atomic_write, cache_root, sha256_of_file, write_text_atomic


@dataclass(frozen=True)
class Variant:
    name: str
    version: int   # bumped when `transform` changes, so an old folder is not reused
    transform: Callable[[np.ndarray, int], np.ndarray]   # (uint8 [s, s, 3] aligned crop, seed) -> same shape
    description: str


VARIANTS = {
    v.name: v
    for v in (
        Variant("lowres", 1, shift_filters.lowres,
                f"aligned crops box-downscaled to {shift_filters.LOWRES_SIDE}x{shift_filters.LOWRES_SIDE} px "
                f"and scaled back to 160x160"),
        Variant("blur", 1, shift_filters.blur,
                f"aligned crops blurred by a Gaussian of standard deviation {shift_filters.BLUR_SIGMA_PX:g} px"),
        Variant("gray", 1, shift_filters.gray, "aligned crops turned to grey (ITU-R 601 luma in all three channels)"),
        Variant("jpeg", 1, shift_filters.jpeg,
                f"aligned crops JPEG-compressed at quality {shift_filters.JPEG_QUALITY} and decoded"),
        Variant("noise", 1, shift_filters.noise,
                f"aligned crops with Gaussian pixel noise of {shift_filters.NOISE_SIGMA:g} grey levels "
                f"(seeded by the photo's path)"),
        Variant("occlusion", 1, shift_filters.occlusion,
                f"aligned crops with rows from {shift_filters.OCCLUSION_TOP_FRACTION:.0%} of the height down "
                f"filled with RGB {shift_filters.OCCLUSION_RGB} (a surgical mask)"),
        Variant("cartoon", 1, shift_filters.cartoon,
                f"aligned crops median-smoothed, cut to {shift_filters.CARTOON_COLORS} colours, dark outlines"),
    )
}


def photo_seed(variant: str, relative_path: str) -> int:
    """The seed of a photo's transformation: from the variant and the photo's path below the celebrity folder.

    A hash, not Python's `hash` (salted per process) and not a running counter (which
    would change every photo's noise when one photo is added).
    """
    digest = hashlib.sha256(f"{variant}:{relative_path}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little")


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
        relative = photo.relative_to(source)
        target = root / relative.with_suffix(".png")
        buffer = io.BytesIO()
        Image.fromarray(spec.transform(crop, photo_seed(spec.name, relative.as_posix()))).save(buffer, format="PNG")
        with atomic_write(target, "wb") as handle:
            handle.write(buffer.getvalue())
    write_text_atomic(skipped_file, json.dumps(skipped))
    write_text_atomic(manifest, manifest_text)   # last: the folder is complete
    return root, skipped
