"""The small convolutional embedder of Kaiser et al. (2017) for 28x28 Omniglot images.

Blocks of two 3x3 convolutions (ReLU) and a 2x2 max-pool, one block per entry of
`channels`, then a dense layer to the memory key, then dropout on the key. The paper's
code uses two blocks of 64 and 128 channels and keeps 30% of the key during training
(keep_prob=0.3); the fast preset shrinks the channels to save CPU time, and the full
recipe adds a third block (32/64/128), which pools the 28x28 drawing down to 4x4 before
the dense layer, so that layer has 2,048 inputs instead of 3,136 and the features it
sees are built from larger receptive fields (docs/OMNIGLOT.md has the measurement).
The memory normalises keys itself, so the key is left unnormalised here, as in the
paper.

`batch_norm=True` puts batch normalisation after every convolution (and drops the
convolution's bias): on the full background set it reaches a given validation accuracy
in fewer images, which matters more than anything else on a 2-core CPU (see
docs/OMNIGLOT.md for the measurement).

`members > 1` builds that many copies of the network side by side, each from its own
initial weights, and the key is their unit-length keys concatenated (then scaled back
to unit length). Copies that start from different weights make different mistakes on
unseen characters, so the concatenated key's cosine - the average of the members'
cosines - finds the right neighbour more often than any one member's. On the
validation alphabets, three separately trained networks joined this way gained 0.7
points at 20-way 1-shot over one on average, where one network twice as wide gained
0.35 for about the same CPU time (docs/OMNIGLOT.md). Each member's keys are normalised
before the concatenation so that every member has the same say in a cosine.
With one member the network and its layer names are exactly the single network's.

`embed_images` is the embedder's inference pass over a set of images, compiled once per
embedder: what training's held-out checks and every evaluation embed with.
"""

from __future__ import annotations

import weakref

import keras
import numpy as np
import tensorflow as tf

from experiments.core.memories import build_memory
from experiments.episodic.data import to_float
from experiments.episodic.settings import OmniglotConfig

_COMPILED_FORWARD: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def build_embedder(
    key_dim: int = 128,
    channels: tuple[int, ...] = (64, 128),
    key_dropout: float = 0.7,
    image_size: int = 28,
    seed: int = 0,
    batch_norm: bool = False,
    members: int = 1,
) -> keras.Model:
    """Return a Keras model mapping float32 [n, s, s, 1] images in [0, 1] to [n, members * key_dim] keys.

    `key_dropout` is the fraction of key units dropped while training (the paper's
    keep_prob=0.3 is key_dropout=0.7); `training=False` turns it off. With several
    `members`, member m's layers are named `member{m}_<layer>` and its key is columns
    (m-1)*key_dim .. m*key_dim-1 of the output.
    """
    if members < 1:
        raise ValueError(f"members must be >= 1, got {members}")
    if key_dim < 1:
        raise ValueError(f"key_dim must be >= 1, got {key_dim}")
    if not 1 <= len(channels) <= 4 or min(channels) < 1:
        raise ValueError(f"channels must be one to four positive numbers (one per block), got {channels}")
    if not 0.0 <= key_dropout < 1.0:
        raise ValueError(f"key_dropout must be in [0, 1), got {key_dropout}")
    if image_size < 2 ** len(channels):
        raise ValueError(
            f"image_size must be >= {2 ** len(channels)} for {len(channels)} pooling blocks, got {image_size}"
        )

    inputs = keras.Input((image_size, image_size, 1), name="image")
    if members == 1:
        return keras.Model(inputs, _member_key(inputs, key_dim, channels, key_dropout, seed, batch_norm, ""),
                           name="omniglot_embedder")
    # Member m's initial weights and dropout masks come from seeds far from member m+1's.
    keys = [
        keras.layers.UnitNormalization(name=f"member{m}_unit_key")(
            _member_key(inputs, key_dim, channels, key_dropout, seed + 1000 * (m - 1), batch_norm, f"member{m}_"))
        for m in range(1, members + 1)
    ]
    joined = keras.layers.Concatenate(name="member_keys")(keys)
    key = keras.layers.Rescaling(1.0 / float(members) ** 0.5, name="unit_key")(joined)
    return keras.Model(inputs, key, name="omniglot_embedder")


def _member_key(inputs, key_dim: int, channels: tuple[int, ...], key_dropout: float, seed: int, batch_norm: bool,
                prefix: str):
    """The key tensor of one network on `inputs`; every layer name starts with `prefix`."""

    # He-normal convolutions and a Glorot dense layer (seeded). The paper's code used a
    # truncated normal with stddev 0.1 everywhere, which is large for a 6272-input dense
    # layer; the standard initialisers train faster in the few steps a CPU can afford.
    def init(offset: int, relu: bool = True) -> keras.initializers.Initializer:
        if relu:
            return keras.initializers.HeNormal(seed=seed + offset)
        return keras.initializers.GlorotUniform(seed=seed + offset)

    x = inputs
    layer = 0
    for block, width in enumerate(channels, start=1):
        for conv in ("a", "b"):
            name = f"{prefix}conv{block}{conv}"
            if batch_norm:
                x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False, kernel_initializer=init(layer), name=name)(x)
                x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
                x = keras.layers.ReLU(name=f"{name}_relu")(x)
            else:
                x = keras.layers.Conv2D(
                    width, 3, padding="same", activation="relu", kernel_initializer=init(layer), name=name
                )(x)
            layer += 1
        x = keras.layers.MaxPooling2D(2, padding="same", name=f"{prefix}pool{block}")(x)
    x = keras.layers.Flatten(name=f"{prefix}flatten")(x)
    key = keras.layers.Dense(key_dim, kernel_initializer=init(layer, relu=False), name=f"{prefix}key")(x)
    return keras.layers.Dropout(key_dropout, seed=seed + 100, name=f"{prefix}key_dropout")(key)


def build_model(config: OmniglotConfig) -> keras.Model:
    """The embedder a configuration describes (its initial weights follow [train] seed)."""
    return build_embedder(
        key_dim=config.model.key_dim,
        channels=tuple(config.model.channels),
        key_dropout=config.model.key_dropout,
        image_size=config.data.image_size,
        seed=config.train.seed,
        batch_norm=config.model.batch_norm,
        members=config.model.members,
    )


def episodic_memory(config: OmniglotConfig, seed_offset: int = 0):
    """The Kaiser memory of an Omniglot run; each use (training, validation, evaluation) its own seed offset."""
    return build_memory("kaiser", config.model.output_dim, config.memory, seed=config.train.seed + seed_offset)


def compiled_forward(embedder):
    """The embedder's inference pass as one tf.function per embedder, kept while the embedder lives.

    Callers embed the same network many times (every validation of a training stage, the
    two halves of each of Lake's runs); a function built per call traced the graph again
    every time, and TensorFlow warned about it. The function reaches the embedder through a
    weak reference, so the cache never keeps a network alive.
    """
    forward = _COMPILED_FORWARD.get(embedder)
    if forward is None:
        network = weakref.ref(embedder)

        @tf.function(reduce_retracing=True)
        def forward(x):
            return network()(x, training=False)

        _COMPILED_FORWARD[embedder] = forward
    return forward


def embed_images(embedder, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """uint8 [n, s, s] -> float32 [n, d] keys, dropout off."""
    forward = compiled_forward(embedder)
    parts = [forward(tf.constant(to_float(images[i : i + batch_size]))).numpy()
             for i in range(0, len(images), batch_size)]
    return np.concatenate(parts).astype(np.float32)
