"""The small convolutional embedder of Kaiser et al. (2017) for 28x28 Omniglot images.

Two blocks of two 3x3 convolutions (ReLU) and a 2x2 max-pool, then a dense layer to the
memory key, then dropout on the key. The paper's code uses 64 and 128 channels and keeps
30% of the key during training (keep_prob=0.3); the fast preset shrinks the channels to
save CPU time. The memory normalises keys itself, so the key is
left unnormalised here, as in the paper.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import keras

if TYPE_CHECKING:
    from experiments.config import OmniglotConfig


def build_embedder(
    key_dim: int = 128,
    channels: tuple[int, int] = (64, 128),
    key_dropout: float = 0.7,
    image_size: int = 28,
    seed: int = 0,
) -> keras.Model:
    """Return a Keras model mapping float32 [n, s, s, 1] images in [0, 1] to [n, key_dim] keys.

    `key_dropout` is the fraction of key units dropped while training (the paper's
    keep_prob=0.3 is key_dropout=0.7); `training=False` turns it off.
    """
    if key_dim < 1:
        raise ValueError(f"key_dim must be >= 1, got {key_dim}")
    if len(channels) != 2 or min(channels) < 1:
        raise ValueError(f"channels must be two positive numbers, got {channels}")
    if not 0.0 <= key_dropout < 1.0:
        raise ValueError(f"key_dropout must be in [0, 1), got {key_dropout}")
    if image_size < 4:
        raise ValueError(f"image_size must be >= 4, got {image_size}")

    # He-normal convolutions and a Glorot dense layer (seeded). The paper's code used a
    # truncated normal with stddev 0.1 everywhere, which is large for a 6272-input dense
    # layer; the standard initialisers train faster in the few steps a CPU can afford.
    def init(offset: int, relu: bool = True) -> keras.initializers.Initializer:
        if relu:
            return keras.initializers.HeNormal(seed=seed + offset)
        return keras.initializers.GlorotUniform(seed=seed + offset)

    inputs = keras.Input((image_size, image_size, 1), name="image")
    x = inputs
    layer = 0
    for block, width in enumerate(channels, start=1):
        for conv in ("a", "b"):
            x = keras.layers.Conv2D(
                width, 3, padding="same", activation="relu", kernel_initializer=init(layer), name=f"conv{block}{conv}"
            )(x)
            layer += 1
        x = keras.layers.MaxPooling2D(2, padding="same", name=f"pool{block}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    key = keras.layers.Dense(key_dim, kernel_initializer=init(layer, relu=False), name="key")(x)
    key = keras.layers.Dropout(key_dropout, seed=seed + 100, name="key_dropout")(key)
    return keras.Model(inputs, key, name="omniglot_embedder")


def build_model(config: "OmniglotConfig") -> keras.Model:
    """The embedder a configuration describes (its initial weights follow [train] seed)."""
    return build_embedder(
        key_dim=config.model.key_dim,
        channels=tuple(config.model.channels),
        key_dropout=config.model.key_dropout,
        image_size=config.data.image_size,
        seed=config.train.seed,
    )


def restore_embedder(run_dir: str | os.PathLike):
    """(config, embedder with the latest trained weights, step) of a `kshot omniglot train` directory."""
    import tensorflow as tf

    from experiments.config import OmniglotConfig
    from experiments.run_dir import LATEST_FILE, latest_checkpoint, read_run_config

    config = read_run_config(run_dir, OmniglotConfig, "an Omniglot", "train one with kshot omniglot train")
    found = latest_checkpoint(run_dir)
    if found is None:
        raise FileNotFoundError(f"{run_dir} has no checkpoint yet ({LATEST_FILE} missing); train first")
    step, prefix = found
    embedder = build_model(config)
    tf.train.Checkpoint(embedder=embedder).read(str(prefix)).expect_partial()
    return config, embedder, step
