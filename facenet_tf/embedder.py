"""From photos to unit-norm 128-d embeddings: cached alignment, then fast batched inference.

`prepare_crops(paths)` aligns each photo (MTCNN, or resize only with
`aligned=True`) through the crop cache and prewhitens the crops; images that
cannot be used are returned in `skipped` as (path, reason) instead of stopping
the run. `Embedder(model)` runs the network in inference mode (phase off) as one
`tf.function` with the fixed input signature [None, 160, 160, 3] float32, so the
graph is traced once, whatever the number of images, and no per-batch Keras
overhead (data adapters, callbacks, output concatenation) remains. Inputs run in
chunks of `batch_size`; a short last chunk is not padded, so embedding a handful
of images costs only those images.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from facenet_tf.align import AlignSettings, FaceAligner, prewhiten
from facenet_tf.caches import CropCache, EmbeddingCache
from facenet_tf.errors import ImageSkipError, UnreadableImageError
from kshot_io import sha256_of_file

PROGRESS_MIN_ITEMS = 64   # shorter lists run without a progress bar
# embed_paths aligns and embeds this many photos at a time, so that memory stays
# bounded (a prewhitened crop is 0.3 MB) however large the dataset is.
PATHS_PER_CHUNK = 512
# XLA measured slower on a 2-core CPU (18.5 vs 41.7 img/s with the plain traced
# function; benchmarks/embed_throughput.py), so it is off by default.
DEFAULT_JIT_COMPILE = False


def _progress(iterable, items: int, desc: str, enabled: bool):
    """tqdm over `iterable` when enabled and the work covers at least PROGRESS_MIN_ITEMS items."""
    if not enabled or items < PROGRESS_MIN_ITEMS:
        return iterable
    from tqdm.auto import tqdm
    return tqdm(iterable, desc=desc, file=sys.stderr, leave=False)


def effective_settings(settings: AlignSettings | None, aligned: bool) -> AlignSettings:
    """`settings` with `aligned` applied: the one source of the crop and embedding cache keys."""
    settings = settings or AlignSettings(aligned=aligned)
    if settings.aligned != aligned:
        settings = AlignSettings(**{**settings.__dict__, "aligned": aligned})
    return settings.resolved()


@dataclass
class PreparedCrops:
    """Prewhitened float32 crops [n, 160, 160, 3] of `kept_paths`; `skipped` holds (path, reason)."""

    crops: np.ndarray
    kept_paths: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    content_hashes: list[str] = field(default_factory=list)


def prepare_crops(paths: Sequence[str | os.PathLike], aligned: bool = False,
                  settings: AlignSettings | None = None, use_cache: bool = True,
                  aligner: FaceAligner | None = None, progress: bool = True) -> PreparedCrops:
    """Align (or, with `aligned=True`, only resize) and prewhiten each image, via the crop cache."""
    settings = effective_settings(settings, aligned)
    aligner = aligner or FaceAligner(settings)
    cache = CropCache(aligner.settings) if use_cache else None
    crops, kept, skipped, hashes = [], [], [], []
    for path in _progress(paths, len(paths), "aligning", progress):
        path = str(path)
        try:
            sha = sha256_of_file(path)
        except OSError as error:
            skipped.append((path, f"cannot read the file ({error.strerror or error})"))
            continue
        hit = cache.get(sha) if cache else None
        if hit is None:
            try:
                crop = aligner.align(path)
            except ImageSkipError as error:
                if cache and not isinstance(error, UnreadableImageError):   # cache face outcomes only
                    cache.put_skip(sha, type(error).__name__, error.reason)
                skipped.append((path, error.reason))
                continue
            if cache:
                cache.put_crop(sha, crop)
            hit = ("crop", crop)
        if hit[0] == "skip":
            skipped.append((path, hit[2]))
            continue
        crops.append(hit[1])
        kept.append(path)
        hashes.append(sha)
    size = aligner.settings.image_size
    stacked = prewhiten(np.stack(crops)) if crops else np.zeros((0, size, size, 3), np.float32)
    return PreparedCrops(stacked, kept, skipped, hashes)


@dataclass
class EmbeddedPaths:
    embeddings: np.ndarray          # float32 [n, 128], unit rows
    kept_paths: list[str]
    skipped: list[tuple[str, str]]


class Embedder:
    """Batched phase-off inference through one traced function; see the module docstring.

    `jit_compile=True` asks for XLA; it matches the plain path within 1e-4 cosine
    but measured slower on CPU, hence `DEFAULT_JIT_COMPILE = False`.
    """

    def __init__(self, model, batch_size: int = 32, jit_compile: bool = DEFAULT_JIT_COMPILE,
                 progress: bool = True):
        import tensorflow as tf

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.batch_size = int(batch_size)
        self.progress = progress
        self.input_shape = tuple(model.input_shape[1:])
        self.embedding_size = int(model.output_shape[-1])
        self.weights_sha256 = getattr(model, "kshot_weights_sha256", None)
        signature = [tf.TensorSpec((None, *self.input_shape), tf.float32)]

        def forward(batch):
            return model(batch, training=False)

        self._forward = tf.function(forward, input_signature=signature, jit_compile=jit_compile,
                                    reduce_retracing=True)

    def embed_crops(self, crops: np.ndarray, fixed_batch: bool = False) -> np.ndarray:
        """Prewhitened float32 [n, 160, 160, 3] -> unit-norm float32 [n, 128].

        With `fixed_batch`, a short last chunk is padded with zeros to `batch_size`, so
        every image goes through the network in a batch of exactly that size. oneDNN's
        rounding depends on the batch size (up to ~3e-7 here) but not on the other
        images in the batch or the position in it, so fixed batches make an image's
        embedding independent of what it was embedded with: the embedding cache needs
        that, or a result would depend on which images happened to be cached already.
        """
        crops = np.asarray(crops, dtype=np.float32)
        if crops.ndim != 4 or crops.shape[1:] != self.input_shape:
            raise ValueError(f"crops must have shape [n, {', '.join(map(str, self.input_shape))}], got {crops.shape}")
        n = crops.shape[0]
        out = np.empty((n, self.embedding_size), np.float32)
        starts = range(0, n, self.batch_size)
        for start in _progress(starts, n, "embedding batches", self.progress and n >= PROGRESS_MIN_ITEMS):
            batch = crops[start:start + self.batch_size]
            size = batch.shape[0]
            if fixed_batch and size < self.batch_size:
                batch = np.concatenate([batch, np.zeros((self.batch_size - size, *self.input_shape), np.float32)])
            out[start:start + size] = self._forward(batch).numpy()[:size]
        return out

    def embed_paths(self, paths: Sequence[str | os.PathLike], aligned: bool = False,
                    use_cache: bool = True, settings: AlignSettings | None = None) -> EmbeddedPaths:
        """Photos -> embeddings of those that could be used, plus (path, reason) for the rest.

        With `use_cache` and a model from `load_facenet` (which knows its weights'
        hash), embeddings are cached per image; see `caches.py` for the key.
        """
        paths = [str(p) for p in paths]
        if len(paths) > PATHS_PER_CHUNK:
            return self._embed_paths_in_chunks(paths, aligned, use_cache, settings)
        prepared = prepare_crops(paths, aligned=aligned, settings=settings, use_cache=use_cache,
                                 progress=self.progress)
        n = len(prepared.kept_paths)
        embeddings = np.empty((n, self.embedding_size), np.float32)
        cache = None
        if use_cache and self.weights_sha256:
            cache = EmbeddingCache(self.weights_sha256, effective_settings(settings, aligned), self.batch_size)
        todo = []
        for i, sha in enumerate(prepared.content_hashes):
            hit = cache.get(sha, self.embedding_size) if cache else None
            if hit is None:
                todo.append(i)
            else:
                embeddings[i] = hit
        if todo:
            fresh = self.embed_crops(prepared.crops[todo], fixed_batch=True)
            embeddings[todo] = fresh
            if cache:
                for i, vector in zip(todo, fresh):
                    cache.put(prepared.content_hashes[i], vector)
        return EmbeddedPaths(embeddings, prepared.kept_paths, prepared.skipped)

    def _embed_paths_in_chunks(self, paths, aligned, use_cache, settings) -> EmbeddedPaths:
        from tqdm.auto import tqdm

        parts = []
        show = self.progress
        try:
            self.progress = False
            with tqdm(total=len(paths), desc="aligning and embedding", file=sys.stderr,
                      leave=False, disable=not show) as bar:
                for start in range(0, len(paths), PATHS_PER_CHUNK):
                    chunk = paths[start:start + PATHS_PER_CHUNK]
                    parts.append(self.embed_paths(chunk, aligned, use_cache, settings))
                    bar.update(len(chunk))
        finally:
            self.progress = show
        return EmbeddedPaths(
            np.concatenate([part.embeddings for part in parts]),
            [p for part in parts for p in part.kept_paths],
            [s for part in parts for s in part.skipped],
        )
