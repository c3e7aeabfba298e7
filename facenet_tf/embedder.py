"""From photos to unit-norm embeddings in one pass: cached alignment, then fast batched inference.

`Embedder.embed_paths(paths)` is the pass: each photo is hashed once, aligned
through the crop cache (MTCNN, or resize only with `aligned=True`), prewhitened
when the weights want it, and embedded through the embedding cache; with
`keep_crops=True` the very crops fed to the network come back with the embeddings, so
a caller that fine-tunes never prepares them a second time. Images that cannot be
used are returned in `skipped` as (path, reason) instead of stopping the run.

The embedding cache is keyed on the weights' sha256, which the Embedder is given
explicitly (`Embedder.from_pretrained(load_pretrained())`, or `weights_sha256=`);
an Embedder without it never caches embeddings, since nothing proves which
weights its model holds. The crop size is the model's input size, so the
registry's `input_size` decides both.

The network runs in inference mode (phase off) as one `tf.function` with a fixed
input signature [None, size, size, 3] float32, so the graph is traced once,
whatever the number of images, and no per-batch Keras overhead (data adapters,
callbacks, output concatenation) remains. Inputs run in chunks of `batch_size`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from facenet_tf.align import AlignSettings, FaceAligner, prewhiten
from facenet_tf.caches import CropCache, EmbeddingCache
from facenet_tf.errors import ImageSkipError
from facenet_tf.weights import PretrainedFaceNet
from kshot_io import sha256_of_file

PROGRESS_MIN_ITEMS = 64   # shorter lists run without a progress bar
# embed_paths aligns and embeds this many photos at a time, so that memory stays
# bounded (a prewhitened float32 crop is far larger than its embedding) however
# large the dataset is, unless the caller asks to keep every crop.
PATHS_PER_CHUNK = 512
# XLA compiles the same graph but ran slower than the plain traced function on the
# CPUs we measured; benchmarks/embed_throughput.py prints both, so it is off by default.
DEFAULT_JIT_COMPILE = False


def _progress(iterable, items: int, desc: str, enabled: bool):
    """tqdm over `iterable` when enabled and the work covers at least PROGRESS_MIN_ITEMS items."""
    if not enabled or items < PROGRESS_MIN_ITEMS:
        return iterable
    return tqdm(iterable, desc=desc, file=sys.stderr, leave=False)


def effective_settings(settings: AlignSettings | None, aligned: bool,
                       image_size: int | None = None) -> AlignSettings:
    """`settings` with `aligned` (and the network's input size) applied: the one source of both cache keys.

    A crop must be exactly as large as the network's input, so `image_size`, when
    given, is imposed on default settings and checked against explicit ones.
    """
    if settings is None:
        settings = AlignSettings(aligned=aligned, **({"image_size": image_size} if image_size else {}))
    elif image_size and settings.image_size != image_size:
        raise ValueError(f"AlignSettings.image_size is {settings.image_size} but the network takes "
                         f"{image_size} px crops; leave image_size at {image_size} or load weights of that size")
    if settings.aligned != aligned:
        settings = AlignSettings(**{**settings.__dict__, "aligned": aligned})
    return settings.resolved()


@dataclass
class PreparedCrops:
    """Float32 crops [n, size, size, 3] of `kept_paths` (prewhitened unless asked not to); `skipped` holds (path, reason)."""

    crops: np.ndarray
    kept_paths: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    content_hashes: list[str] = field(default_factory=list)


def prepare_crops(paths: Sequence[str | os.PathLike], aligned: bool = False,
                  settings: AlignSettings | None = None, use_cache: bool = True,
                  aligner: FaceAligner | None = None, progress: bool = True,
                  prewhitened: bool = True) -> PreparedCrops:
    """Align (or, with `aligned=True`, only resize) each image via the crop cache; prewhiten if asked."""
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
        if cache:
            crop, reason = cache.aligned(aligner, path, sha)
        else:
            try:
                crop, reason = aligner.align(path), ""
            except ImageSkipError as error:
                crop, reason = None, error.reason
        if crop is None:
            skipped.append((path, reason))
            continue
        crops.append(crop)
        kept.append(path)
        hashes.append(sha)
    size = aligner.settings.image_size
    if not crops:
        return PreparedCrops(np.zeros((0, size, size, 3), np.float32), kept, skipped, hashes)
    stacked = np.stack(crops)
    return PreparedCrops(prewhiten(stacked) if prewhitened else stacked.astype(np.float32), kept, skipped, hashes)


@dataclass
class EmbeddedPaths:
    """Embeddings of `kept_paths`, in order; with `keep_crops`, the very crops they were computed from."""

    embeddings: np.ndarray          # float32 [n, embedding size], unit rows
    kept_paths: list[str]
    skipped: list[tuple[str, str]]
    crops: np.ndarray | None = None   # float32 [n, size, size, 3], as fed to the network


class Embedder:
    """Batched phase-off inference through one traced function; see the module docstring.

    `weights_sha256` names the weights `model` holds and keys the embedding cache;
    `prewhitened` says whether the network wants prewhitened crops. Both come with
    the weights, so `from_pretrained` is the usual way in. `jit_compile=True` asks
    for XLA; it agrees with the plain path to rounding but was slower on CPU, hence
    `DEFAULT_JIT_COMPILE = False`.
    """

    def __init__(self, model, batch_size: int = 32, jit_compile: bool = DEFAULT_JIT_COMPILE,
                 progress: bool = True, *, weights_sha256: str | None = None, prewhitened: bool = True):
        # TensorFlow starts with the first Embedder, not with `import facenet_tf.embedder`
        import tensorflow as tf

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.batch_size = int(batch_size)
        self.progress = progress
        self.weights_sha256 = weights_sha256 or None
        self.prewhitened = bool(prewhitened)
        self.input_shape = tuple(model.input_shape[1:])
        self.embedding_size = int(model.output_shape[-1])
        signature = [tf.TensorSpec((None, *self.input_shape), tf.float32)]

        def forward(batch):
            return model(batch, training=False)

        self._forward = tf.function(forward, input_signature=signature, jit_compile=jit_compile,
                                    reduce_retracing=True)

    @classmethod
    def from_pretrained(cls, pretrained: PretrainedFaceNet, **options) -> "Embedder":
        """An Embedder for `load_pretrained()`'s network, keyed and preprocessed as its weights say."""
        return cls(pretrained.model, weights_sha256=pretrained.weights_sha256,
                   prewhitened=pretrained.prewhiten, **options)

    def embed_crops(self, crops: np.ndarray, fixed_batch: bool = False) -> np.ndarray:
        """Float32 crops [n, size, size, 3], preprocessed as the weights want -> unit-norm float32 [n, dim].

        With `fixed_batch`, a short last chunk is padded with zeros to `batch_size`, so
        every image goes through the network in a batch of exactly that size. oneDNN's
        rounding depends on the batch size, though not on the other images in the
        batch or the position in it, so fixed batches make an image's embedding
        independent of what it was embedded with: the embedding cache needs that, or a
        result would depend on which images happened to be cached already.
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
                    use_cache: bool = True, settings: AlignSettings | None = None,
                    keep_crops: bool = False) -> EmbeddedPaths:
        """Photos -> embeddings of those that could be used, plus (path, reason) for the rest.

        With `use_cache` and a `weights_sha256`, embeddings are cached per image; see
        `caches.py` for the key. With `keep_crops`, the result also holds the crops
        the embeddings came from (all of them in memory at once).
        """
        paths = [str(p) for p in paths]
        settings = effective_settings(settings, aligned, image_size=self.input_shape[0])
        if len(paths) > PATHS_PER_CHUNK:
            return self._embed_paths_in_chunks(paths, settings, use_cache, keep_crops)
        prepared = prepare_crops(paths, aligned=aligned, settings=settings, use_cache=use_cache,
                                 progress=self.progress, prewhitened=self.prewhitened)
        n = len(prepared.kept_paths)
        embeddings = np.empty((n, self.embedding_size), np.float32)
        cache = None
        if use_cache and self.weights_sha256:
            cache = EmbeddingCache(self.weights_sha256, settings, self.batch_size, prewhitened=self.prewhitened)
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
        return EmbeddedPaths(embeddings, prepared.kept_paths, prepared.skipped,
                             prepared.crops if keep_crops else None)

    def _embed_paths_in_chunks(self, paths, settings, use_cache, keep_crops) -> EmbeddedPaths:
        parts = []
        show = self.progress
        try:
            self.progress = False
            with tqdm(total=len(paths), desc="aligning and embedding", file=sys.stderr,
                      leave=False, disable=not show) as bar:
                for start in range(0, len(paths), PATHS_PER_CHUNK):
                    chunk = paths[start:start + PATHS_PER_CHUNK]
                    parts.append(self.embed_paths(chunk, settings.aligned, use_cache, settings, keep_crops))
                    bar.update(len(chunk))
        finally:
            self.progress = show
        return EmbeddedPaths(
            np.concatenate([part.embeddings for part in parts]),
            [p for part in parts for p in part.kept_paths],
            [s for part in parts for s in part.skipped],
            np.concatenate([part.crops for part in parts]) if keep_crops else None,
        )
