"""The Omniglot embedder's block structure and the classifier head's margin (no data needed)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from experiments.episodic.model import build_embedder
from experiments.episodic.training.pretrain import classifier_loss, cosine_logits


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
    assert cosines.shape == (6, 1, 9)
    unit = lambda a, axis: a / np.linalg.norm(a, axis=axis, keepdims=True)
    np.testing.assert_allclose(cosines[:, 0], unit(keys.numpy(), 1) @ unit(weights.numpy(), 0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(same_cosines, cosines)
    np.testing.assert_allclose(plain, 30.0 * cosines.numpy(), rtol=1e-6)
    expected = plain.numpy().copy()
    expected[np.arange(6), 0, labels.numpy()] -= 3.0
    np.testing.assert_allclose(margined, expected, rtol=1e-5, atol=1e-5)
    # the margin makes the loss larger for the same weights: the head must separate classes further
    assert float(classifier_loss(margined, labels)) > float(classifier_loss(plain, labels))


def test_each_member_is_scored_only_against_its_own_block_of_class_weights():
    rng = np.random.default_rng(1)
    keys = rng.normal(size=(4, 6)).astype(np.float32)  # two members of width 3
    weights = rng.normal(size=(6, 5)).astype(np.float32)
    labels = tf.constant([0, 4, 2, 2], tf.int64)
    logits, cosines = cosine_logits(tf.constant(keys), tf.constant(weights), 10.0, labels, 0.0, members=2)
    assert cosines.shape == (4, 2, 5)
    for member in range(2):
        alone, _ = cosine_logits(tf.constant(keys[:, 3 * member:3 * member + 3]),
                                 tf.constant(weights[3 * member:3 * member + 3]), 10.0, labels, 0.0)
        np.testing.assert_allclose(logits[:, member], alone[:, 0], rtol=1e-5, atol=1e-5)
    # the joint loss is the members' losses averaged
    separate = [float(classifier_loss(logits[:, m:m + 1], labels)) for m in range(2)]
    assert float(classifier_loss(logits, labels)) == pytest.approx(np.mean(separate), rel=1e-6)


def test_members_are_different_networks_joined_into_one_unit_key():
    model = build_embedder(key_dim=6, channels=(4, 8), key_dropout=0.0, batch_norm=True, members=3)
    images = np.random.default_rng(2).random((5, 28, 28, 1)).astype(np.float32)
    keys = model(images, training=False).numpy()
    assert keys.shape == (5, 18)
    np.testing.assert_allclose(np.linalg.norm(keys, axis=1), 1.0, rtol=1e-5)
    blocks = keys.reshape(5, 3, 6)
    np.testing.assert_allclose(np.linalg.norm(blocks, axis=2), 3 ** -0.5, rtol=1e-5)
    assert not np.allclose(blocks[:, 0], blocks[:, 1], atol=1e-3)  # different initial weights
    names = {layer.name for layer in model.layers}
    assert {"member1_conv1a", "member3_key"} <= names and "conv1a" not in names
    # one member: the single network, layer for layer
    single = build_embedder(key_dim=6, channels=(4, 8), key_dropout=0.0, batch_norm=True, members=1)
    plain = build_embedder(key_dim=6, channels=(4, 8), key_dropout=0.0, batch_norm=True)
    assert [w.path for w in single.weights] == [w.path for w in plain.weights]
    np.testing.assert_allclose(single(images).numpy(), plain(images).numpy())


def test_embedding_reuses_one_compiled_pass_per_network_and_never_keeps_the_network_alive():
    import gc
    import weakref

    import keras

    from experiments.episodic.model import compiled_forward, embed_images

    network = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(4)])
    images = np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    keys = embed_images(network, images, batch_size=5)
    assert compiled_forward(network) is compiled_forward(network)
    np.testing.assert_allclose(embed_images(network, images, batch_size=5), keys)
    np.testing.assert_allclose(keys, network(images[..., None] / 255.0, training=False).numpy(), atol=1e-5)
    alive = weakref.ref(network)
    del network
    gc.collect()
    assert alive() is None
