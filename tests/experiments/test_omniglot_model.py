"""The Omniglot embedder's block structure and the classifier head's margin (no data needed)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from experiments.omniglot.model import build_embedder
from experiments.omniglot.pretrain import cosine_logits


@pytest.mark.parametrize("channels, pooled", [((4,), 14), ((4, 8), 7), ((4, 8, 16), 4)])
def test_each_block_halves_the_drawing_before_the_key(channels, pooled):
    model = build_embedder(key_dim=12, channels=channels, key_dropout=0.0, batch_norm=True)
    assert model.get_layer("flatten").output.shape[-1] == pooled * pooled * channels[-1]
    assert model(np.zeros((2, 28, 28, 1), np.float32)).shape == (2, 12)


def test_two_block_layer_names_are_unchanged_so_old_checkpoints_load():
    names = {layer.name for layer in build_embedder(channels=(4, 8), batch_norm=True).layers}
    assert {"conv1a", "conv1b", "conv2a", "conv2b", "pool1", "pool2", "key"} <= names
    assert not any(name.startswith("conv3") for name in names)


@pytest.mark.parametrize("channels, size", [((), 28), ((1, 2, 3, 4, 5), 28), ((4, 8, 16), 4)])
def test_impossible_block_structures_are_refused(channels, size):
    with pytest.raises(ValueError, match="channels|image_size"):
        build_embedder(channels=channels, image_size=size)


def test_margin_lowers_only_the_true_class_logit_by_scale_times_margin():
    rng = np.random.default_rng(0)
    keys = tf.constant(rng.normal(size=(6, 5)), tf.float32)
    weights = tf.constant(rng.normal(size=(5, 9)), tf.float32)
    labels = tf.constant([0, 3, 8, 3, 1, 2], tf.int64)
    plain, cosines = cosine_logits(keys, weights, 30.0, labels, 0.0)
    margined, same_cosines = cosine_logits(keys, weights, 30.0, labels, 0.1)
    np.testing.assert_allclose(same_cosines, cosines)
    np.testing.assert_allclose(plain, 30.0 * cosines.numpy(), rtol=1e-6)
    expected = plain.numpy().copy()
    expected[np.arange(6), labels.numpy()] -= 3.0
    np.testing.assert_allclose(margined, expected, rtol=1e-5, atol=1e-5)
    # the margin makes the loss larger for the same weights: the head must separate classes further
    loss = lambda logits: float(tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)))
    assert loss(margined) > loss(plain)
