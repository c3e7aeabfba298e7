"""Split FaceNet at the first block that learns: a frozen bottom run once per image, a trainable top.

Fine-tuning the whole Inception-ResNet-v1 on a CPU costs a full forward and backward
pass per learn step and a full forward pass per re-embedded image. When only the
last blocks learn, everything below them is a fixed function of the image: its
output is computed once (`FrozenFeatures`), kept in memory and on disk, and a learn
step or a re-embedding runs only the top.

`trainable_from` names the first block that learns, bottom to top:
    "all" (the whole network), "Block35_1".."Block35_5", "Mixed_6a",
    "Block17_1".."Block17_10", "Mixed_7a", "Block8_1".."Block8_6",
    "bottleneck" (the final dense layer and its BatchNorm only).
"Block35", "Block17" and "Block8" mean the first block of that kind.

The frozen bottom always runs in inference mode: its BatchNorm layers use their
moving statistics whatever the train-phase switch says, because the switch is a
choice about how the *trained* part learns. The top is a Keras model that shares
nothing with the network it was cut from (`split_facenet` clones it), so
fine-tuning never changes the caller's FaceNet, whose inference embeddings other
models of the same run still use.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from facenet_tf.architecture import (  # noqa: F401 (re-exported)
    ALIASES,
    BLOCK_COUNTS,
    CUT_LAYERS,
    TRAINABLE_FROM_CHOICES,
)
from kshot_io import atomic_write, cache_root

# Bumped when the way frozen features are computed changes, so older entries are not served.
FEATURE_RECIPE_VERSION = 1


def resolve_scope(trainable_from: str) -> str:
    """The canonical scope name; an unknown name is an error listing the choices."""
    name = ALIASES.get(trainable_from, trainable_from)
    if name not in CUT_LAYERS:
        raise ValueError(
            f"trainable_from must be one of {', '.join(TRAINABLE_FROM_CHOICES)}; got {trainable_from!r}"
        )
    return name


@dataclass
class FaceNetSplit:
    """`top(bottom(x))` equals the whole network; `bottom` is None for scope 'all'."""

    scope: str
    cut_layer: str | None
    bottom: object | None   # keras.Model sharing the original's layers, always run in inference mode
    top: object             # keras.Model with its own copy of the weights: the part that learns


def split_facenet(model, trainable_from: str) -> FaceNetSplit:
    """Cut `model` (from build_inception_resnet_v1 / load_facenet) below the block `trainable_from`."""

    scope = resolve_scope(trainable_from)
    cut = CUT_LAYERS[scope]
    if cut is None:
        source = model
        bottom = None
    else:
        boundary = model.get_layer(cut).output
        bottom = keras.Model(model.input, boundary, name=f"frozen_below_{scope}")
        source = keras.Model(boundary, model.output, name=f"trained_from_{scope}")
    top = keras.models.clone_model(source)
    top.set_weights(source.get_weights())
    return FaceNetSplit(scope, cut, bottom, top)


def _weights_digest(model) -> str:
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


def crop_digest(crop: np.ndarray) -> str:
    """sha256 of one float32 crop's bytes: the crop content part of the feature cache key."""
    return hashlib.sha256(np.ascontiguousarray(crop, dtype=np.float32).tobytes()).hexdigest()


class FrozenFeatures:
    """Outputs of the frozen bottom for crops, computed once and cached in memory and on disk.

    Disk entries live at `<cache>/features/<key>/<ab>/<crop sha256>.npy`, where the
    key hashes the bottom's weights (all of them, BatchNorm statistics included),
    the scope, the TensorFlow and Keras versions, this recipe's version and the batch
    size, and the file name hashes the crop's float32 bytes. So other weights,
    another scope, another preprocessing or a library upgrade look up other entries.
    Every crop goes through the bottom in a zero-padded batch of exactly
    `batch_size` (as the embedding cache does), so a feature does not depend on which
    other crops were computed with it. With scope 'all' the features are the crops.
    """

    def __init__(self, split: FaceNetSplit, batch_size: int = 32, use_cache: bool = True,
                 root: Path | None = None):

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.split = split
        self.batch_size = int(batch_size)
        self._memory: dict[str, np.ndarray] = {}
        self.folder = None
        if split.bottom is None:
            return
        if use_cache:

            self.folder = (root or cache_root()) / "features" / self._key()
        bottom = split.bottom
        spec = tf.TensorSpec((None, *bottom.input_shape[1:]), tf.float32)
        self._forward = tf.function(lambda x: bottom(x, training=False), input_signature=[spec])

    def _key(self) -> str:
        text = (f"{_weights_digest(self.split.bottom)}|scope={self.split.scope}|tf={tf.__version__}"
                f"|keras={keras.__version__}|recipe={FEATURE_RECIPE_VERSION}|batch={self.batch_size}")
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    def _entry(self, sha: str) -> Path:
        return self.folder / sha[:2] / f"{sha}.npy"

    def _load(self, sha: str, shape: tuple) -> np.ndarray | None:
        if sha in self._memory:
            return self._memory[sha]
        if self.folder is None or not self._entry(sha).is_file():
            return None
        try:
            value = np.load(self._entry(sha), allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None   # unreadable or half-written: recomputed and rewritten
        if value.shape != shape or value.dtype != np.float32 or not np.all(np.isfinite(value)):
            return None
        return value

    def _store(self, sha: str, value: np.ndarray) -> None:
        self._memory[sha] = value
        if self.folder is None:
            return

        buffer = io.BytesIO()
        np.save(buffer, value)
        with atomic_write(self._entry(sha), "wb") as handle:
            handle.write(buffer.getvalue())

    def of_crops(self, crops: np.ndarray) -> np.ndarray:
        """Prewhitened crops [n, h, w, 3] -> the top's inputs [n, ...], float32."""
        crops = np.asarray(crops, dtype=np.float32)
        if self.split.bottom is None:
            return crops
        shape = tuple(self.split.bottom.output_shape[1:])
        out = np.empty((len(crops), *shape), np.float32)
        hashes = [crop_digest(c) for c in crops]
        todo = []
        for i, sha in enumerate(hashes):
            hit = self._load(sha, shape)
            if hit is None:
                todo.append(i)
            else:
                out[i] = hit
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start:start + self.batch_size]
            batch = np.zeros((self.batch_size, *crops.shape[1:]), np.float32)
            batch[:len(chunk)] = crops[chunk]
            values = self._forward(batch).numpy()[:len(chunk)]
            for i, value in zip(chunk, values):
                out[i] = value
                self._store(hashes[i], np.array(value, dtype=np.float32))
        return out
