"""Read any photo a user may have into an RGB uint8 array, or refuse it by name.

Pillow reads the file; the EXIF orientation is applied first (phone photos are
stored sideways with a tag saying so), then every mode is brought to RGB uint8:
grayscale (L, 1), two-channel LA, RGBA and palette images with transparency
(composited over white), CMYK, and 16-bit or 32-bit grayscale (I;16, I, F: scaled
from 0..65535 to 0..255). Zero-byte, truncated, corrupt and non-image files raise
`UnreadableImageError` naming the file.

Very large images are downscaled so that their longer side is at most
`MAX_IMAGE_SIDE` (2000 px) before detection: JPEGs are decoded directly at a
reduced scale (Pillow's draft mode), so a 50-megapixel photo never needs its full
size in memory. Images above Pillow's decompression-bomb limit are refused.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facenet_tf.errors import UnreadableImageError

MAX_IMAGE_SIDE = 2000
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})
_HIGH_BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in _HIGH_BIT_MODES:
        values = np.asarray(img, dtype=np.float64)
        if img.mode != "F" and values.max(initial=0) > 255:
            values = values / 257.0          # 16-bit range onto 8-bit
        gray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("LA", "PA", "RGBa", "La"):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img, mask=img.getchannel("A"))
        return background
    return img.convert("RGB") if img.mode != "RGB" else img


def load_rgb(path: str | os.PathLike, max_side: int = MAX_IMAGE_SIDE) -> np.ndarray:
    """Return the upright image as uint8 [H, W, 3], longer side at most `max_side`."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as error:
        raise UnreadableImageError(path, f"cannot read the file ({error.strerror or error})") from error
    if size == 0:
        raise UnreadableImageError(path, "empty file (0 bytes); remove it or replace it with the image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.format == "JPEG":
                    img.draft("RGB", (max_side, max_side))
                img = ImageOps.exif_transpose(img)   # loads the pixels; truncation shows here
                img = _to_rgb(img)
                if max(img.size) > max_side:
                    img.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
                pixels = np.array(img, dtype=np.uint8)
    except UnidentifiedImageError as error:
        raise UnreadableImageError(path, "not an image Pillow can read (corrupt, or not a picture at all)") from error
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise UnreadableImageError(path, f"image too large to decode safely ({error}); downscale it first") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise UnreadableImageError(path, f"corrupt or truncated image ({error}); re-export or remove it") from error
    if pixels.ndim != 3 or pixels.shape[2] != 3 or min(pixels.shape[:2]) < 1:
        raise UnreadableImageError(path, f"decoded to an unusable array of shape {pixels.shape}")
    return pixels
