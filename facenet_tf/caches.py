"""On-disk caches of aligned crops and of embeddings, keyed so they are never stale.

Crop entries live at `<cache>/crops/<settings key>/<ab>/<content sha256>.npz`: the
key holds margin, size, minimum face, size limit, `--aligned`, and the aligner's
name and version (`AlignSettings.key()`); the file name is the sha256 of the image
bytes. Embedding entries add the weights' sha256 (handed over by the caller),
whether the crops were prewhitened, the TensorFlow and Keras versions, the recipe
and the batch size:
`<cache>/embeddings/<weights, preprocessing, library versions, recipe and batch-size key>/<settings key>/<ab>/<sha>.npy`.
So editing, adding or removing a photo, changing a setting, upgrading mtcnn or
switching weights all look up different entries. A failed face search is cached
too (as a skip with its reason), so a no-face photo is not searched again.

Entries are written atomically; an entry that cannot be read, or whose stored key
does not match, is treated as missing and rewritten.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np

from facenet_tf.align import AlignSettings
from facenet_tf.errors import ImageSkipError, UnreadableImageError
from kshot_io import atomic_write, cache_root
from kshot_io.cache import CACHE_ENV_VAR


def _write_atomic(target: Path, data: bytes) -> None:
    try:
        with atomic_write(target, "wb") as handle:
            handle.write(data)
    except OSError as error:
        raise PermissionError(
            f"cannot write the cache entry {target}: {error}. Make {target.parent} writable "
            f"or set {CACHE_ENV_VAR} to a writable folder."
        ) from error


class CropCache:
    """Aligned uint8 crops (or the reason an image was skipped), one npz per image."""

    def __init__(self, settings: AlignSettings, root: Path | None = None):
        self.settings = settings.resolved()
        self.settings_key = self.settings.key()
        self.folder = (root or cache_root()) / "crops" / self.settings_key

    def _entry(self, sha: str) -> Path:
        return self.folder / sha[:2] / f"{sha}.npz"

    def get(self, sha: str):
        """None (miss), ('crop', uint8 array) or ('skip', kind, reason)."""
        entry = self._entry(sha)
        if not entry.is_file():
            return None
        try:
            with np.load(entry, allow_pickle=False) as data:
                if str(data["sha256"]) != sha or str(data["settings_key"]) != self.settings_key:
                    return None
                if str(data["status"]) == "crop":
                    crop = np.asarray(data["crop"])
                    size = self.settings.image_size
                    if crop.shape != (size, size, 3) or crop.dtype != np.uint8:
                        return None
                    return ("crop", crop)
                return ("skip", str(data["kind"]), str(data["reason"]))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None   # unreadable or half-written by an old crash: recomputed and rewritten

    def aligned(self, aligner, path, sha: str) -> tuple[np.ndarray | None, str]:
        """(uint8 crop, "") of the image at `path` (content hash `sha`), or (None, why it has no usable face).

        The one rule for going through the cache: a hit is used as it is; a miss is
        aligned and its outcome stored, a face's crop or the reason there is none.
        An unreadable file is not stored: it is a fact about the file, not the face,
        and may be fixed in place.
        """
        hit = self.get(sha)
        if hit is None:
            try:
                crop = aligner.align(path)
            except ImageSkipError as error:
                if not isinstance(error, UnreadableImageError):
                    self.put_skip(sha, type(error).__name__, error.reason)
                return None, error.reason
            self.put_crop(sha, crop)
            return crop, ""
        return (hit[1], "") if hit[0] == "crop" else (None, hit[2])

    def put_crop(self, sha: str, crop: np.ndarray) -> None:
        self._put(sha, status="crop", crop=np.asarray(crop, dtype=np.uint8), kind="", reason="")

    def put_skip(self, sha: str, kind: str, reason: str) -> None:
        self._put(sha, status="skip", crop=np.zeros((0,), np.uint8), kind=kind, reason=reason)

    def _put(self, sha: str, **arrays) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, sha256=sha, settings_key=self.settings_key, **arrays)
        _write_atomic(self._entry(sha), buffer.getvalue())


# Bumped when the way embeddings are computed changes, so older entries are not served.
# 2: every image is embedded in a zero-padded batch of exactly the Embedder's batch size.
EMBEDDING_RECIPE_VERSION = 2


def embedding_key(weights_sha256: str, batch_size: int, prewhitened: bool = True) -> str:
    """Weights, input preprocessing, library versions, recipe and batch size: all that changes an embedding's bits.

    Every entry written before preprocessing became a choice was prewhitened, so
    only the other choice adds to the key text and those entries stay valid.
    """
    # Keras (and TensorFlow) only when a key is computed, not when the caches module is imported
    import keras
    import tensorflow as tf
    text = (f"{weights_sha256}|tf={tf.__version__}|keras={keras.__version__}"
            f"|recipe={EMBEDDING_RECIPE_VERSION}|batch={batch_size}")
    if not prewhitened:
        text += "|raw-pixels"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class EmbeddingCache:
    """Inference-mode (phase off) embeddings, one .npy per image and weights."""

    def __init__(self, weights_sha256: str, settings: AlignSettings, batch_size: int, root: Path | None = None,
                 prewhitened: bool = True):
        self.settings = settings.resolved()
        key = embedding_key(weights_sha256, batch_size, prewhitened)
        self.folder = (root or cache_root()) / "embeddings" / key / self.settings.key()

    def _entry(self, sha: str) -> Path:
        return self.folder / sha[:2] / f"{sha}.npy"

    def get(self, sha: str, dim: int) -> np.ndarray | None:
        entry = self._entry(sha)
        if not entry.is_file():
            return None
        try:
            vector = np.load(entry, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        if vector.shape != (dim,) or vector.dtype != np.float32 or not np.all(np.isfinite(vector)):
            return None
        return vector

    def put(self, sha: str, vector: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(vector, dtype=np.float32))
        _write_atomic(self._entry(sha), buffer.getvalue())
