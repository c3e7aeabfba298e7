"""MTCNN face alignment and prewhitening, as davidsandberg/facenet prepared its inputs.

`FaceAligner.align(path)` returns a uint8 [size, size, 3] crop, `size` being the
network's input size (`AlignSettings.image_size`; the Embedder sets it from its model):
  1. the image is read upright and as RGB (`images.load_rgb`, EXIF applied,
     longer side at most 2000 px);
  2. MTCNN (`mtcnn` 1.0, min_face_size 20) finds faces; the most confident one
     is kept (documented choice for photos with several faces);
  3. a face whose box is smaller than `min_face_px` (20 px) on its shorter side
     is refused (`FaceTooSmallError`); no face at all gives `NoFaceError`; both
     name the file;
  4. the box grows by `margin` pixels in total (margin/2 per side, davidsandberg's
     32 px default), measured in the pixels of the (possibly downscaled) image and
     clipped to it; the crop is resized to size x size (bilinear).
`align_preserving(path)` is the `--aligned` path: the image is already a face
crop and is only resized. `prewhiten` is davidsandberg's per-image
standardisation, applied just before the network when the weights' registry
entry asks for it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from facenet_tf.errors import FaceTooSmallError, NoFaceError
from facenet_tf.images import MAX_IMAGE_SIDE, load_rgb


def _mtcnn_version() -> str:
    # mtcnn imports TensorFlow: only when a cache key needs its version
    from mtcnn.metadata import __version__
    return __version__


@dataclass(frozen=True)
class AlignSettings:
    """Every setting that changes a crop; `key()` names the crop cache folder."""

    image_size: int = 160
    margin: int = 32
    min_face_px: int = 20
    max_image_side: int = MAX_IMAGE_SIDE
    aligned: bool = False       # True: input is already a face crop, only resized
    aligner: str = "mtcnn"
    aligner_version: str = ""   # filled with the installed mtcnn version

    def resolved(self) -> "AlignSettings":
        if self.aligner_version:
            return self
        return AlignSettings(**{**asdict(self), "aligner_version": _mtcnn_version()})

    def key(self) -> str:
        text = json.dumps(asdict(self.resolved()), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:20]


def prewhiten(x: np.ndarray) -> np.ndarray:
    """Per-image standardisation; std floored at 1/sqrt(pixels*channels) as in davidsandberg."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3:
        x = x[None]
        squeeze = True
    elif x.ndim == 4:
        squeeze = False
    else:
        raise ValueError(f"prewhiten expects [H, W, C] or [N, H, W, C], got shape {x.shape}")
    axes = (1, 2, 3)
    mean = x.mean(axis=axes, keepdims=True)
    std = x.std(axis=axes, keepdims=True)
    floor = 1.0 / np.sqrt(np.prod(x.shape[1:]))
    y = (x - mean) / np.maximum(std, floor)
    return (y[0] if squeeze else y).astype(np.float32)


def crop_with_margin(image: np.ndarray, box_xyxy, margin: int, size: int) -> np.ndarray:
    """davidsandberg's crop: box grown by margin/2 per side, clipped, resized to size x size."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    left = int(max(np.floor(x1 - margin / 2), 0))
    top = int(max(np.floor(y1 - margin / 2), 0))
    right = int(min(np.ceil(x2 + margin / 2), w))
    bottom = int(min(np.ceil(y2 + margin / 2), h))
    if right - left < 1 or bottom - top < 1:
        raise ValueError(f"empty crop for box {box_xyxy} in an image of {w}x{h}")
    crop = Image.fromarray(image[top:bottom, left:right])
    return np.asarray(crop.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


class FaceAligner:
    """MTCNN detector plus davidsandberg's crop; builds the detector on first use."""

    def __init__(self, settings: AlignSettings | None = None):
        self.settings = (settings or AlignSettings()).resolved()
        self._detector = None

    @property
    def detector(self):
        if self._detector is None:
            # mtcnn starts TensorFlow: only once a face is really detected, never on a dataset scan
            from mtcnn import MTCNN
            self._detector = MTCNN()
        return self._detector

    def detect(self, image: np.ndarray) -> list[dict]:
        """Faces as dicts with 'box' [x1, y1, x2, y2] and 'confidence', most confident first."""
        if min(image.shape[:2]) < 12:   # below PNet's 12 px window nothing can be found
            return []
        # TensorFlow starts only when a face is detected (scans of a folder stay fast)
        import tensorflow as tf
        try:
            found = self.detector.detect_faces(image.astype(np.float32), box_format="xyxy",
                                               min_face_size=20)
        except (tf.errors.InvalidArgumentError, ValueError, IndexError):
            return []
        if found and isinstance(found[0], list):   # some mtcnn versions nest one level
            found = found[0]
        faces = [f for f in (found or []) if f.get("box") is not None]
        return sorted(faces, key=lambda f: -float(f["confidence"]))

    def align(self, path: str | os.PathLike) -> np.ndarray:
        """uint8 [size, size, 3] crop of the most confident face, or an ImageSkipError naming `path`."""
        s = self.settings
        image = load_rgb(path, s.max_image_side)
        if s.aligned:
            return crop_with_margin(image, (0, 0, image.shape[1], image.shape[0]), 0, s.image_size)
        faces = self.detect(image)
        if not faces:
            raise NoFaceError(path, f"no face found by MTCNN (faces smaller than {s.min_face_px} px are "
                                    "not detected); crop it by hand and use --aligned, or remove it")
        x1, y1, x2, y2 = faces[0]["box"]
        shorter = min(x2 - x1, y2 - y1)
        if shorter < s.min_face_px:
            raise FaceTooSmallError(path, f"the most confident face is {shorter:.0f} px, below the "
                                          f"{s.min_face_px} px minimum; use a larger photo")
        return crop_with_margin(image, faces[0]["box"], s.margin, s.image_size)
