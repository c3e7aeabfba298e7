"""Small face thumbnails for a map: the very crops the embedder saw, shrunk.

A thumbnail should show what was embedded, not the whole photo: the aligned crop
(MTCNN's box with its margin, or the photo itself resized when it is already a crop).
Those crops are in facenet_tf's crop cache under the alignment settings of the
embedding pass, so asking for them again with the same settings reads the cache and
runs no detector; a photo whose crop is missing is aligned once more and cached.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

THUMBNAIL_SIDE = 48   # pixels kept per thumbnail: enough for a face on a map, small in an SVG
MAX_THUMBNAILS = 300  # past this many photos a map shows dots: thumbnails would only cover each other


def align_settings(input_size: int, aligned: bool):
    """The settings `Embedder.embed_paths` uses for a network of `input_size` px (so the cache is shared)."""
    # facenet_tf's alignment resolves the mtcnn version, which imports TensorFlow: only for thumbnails
    from facenet_tf.embedder import effective_settings

    return effective_settings(None, aligned, image_size=int(input_size))


def face_thumbnails(paths, aligned: bool, input_size: int, side: int = THUMBNAIL_SIDE) -> list[np.ndarray | None]:
    """One uint8 thumbnail [side, side, 3] per path, None for a photo with no usable face or file."""
    # cached alignment through facenet_tf (TensorFlow, MTCNN on a cache miss): only when a map wants faces
    from facenet_tf import prepare_crops

    paths = [str(p) for p in paths]
    prepared = prepare_crops(paths, aligned=aligned, settings=align_settings(input_size, aligned),
                             progress=False, prewhitened=False)
    crop_of = dict(zip(prepared.kept_paths, prepared.crops))
    return [None if path not in crop_of else shrink(crop_of[path], side) for path in paths]


def shrink(crop: np.ndarray, side: int) -> np.ndarray:
    image = Image.fromarray(np.clip(np.asarray(crop), 0, 255).astype(np.uint8))
    return np.asarray(image.resize((side, side), Image.Resampling.LANCZOS))
