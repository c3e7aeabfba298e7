"""Inception-ResNet-v1: architecture contract, the train-phase switch, and real recognition on the celebrity set."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from facenet_tf import build_inception_resnet_v1, forward, prepare_crops


@pytest.fixture(scope="module")
def untrained():
    return build_inception_resnet_v1()


def test_architecture_has_the_weighted_layers_of_the_h5(untrained):
    counts = {}
    for layer in untrained.layers:
        if layer.weights:
            counts[type(layer).__name__] = counts.get(type(layer).__name__, 0) + 1
    assert counts == {"Conv2D": 132, "BatchNormalization": 112, "Dense": 1}
    assert untrained.input_shape == (None, 160, 160, 3) and untrained.output_shape == (None, 128)
    bottleneck = untrained.get_layer("Bottleneck")
    assert not bottleneck.use_bias and bottleneck.units == 128
    bn = untrained.get_layer("Bottleneck_BatchNorm")
    assert (bn.scale, bn.epsilon, bn.momentum) == (False, 0.001, 0.995)
    assert untrained.get_layer("Dropout").rate == pytest.approx(0.2)
    # the last Block8 is linear: no Block8_6_Activation
    names = {layer.name for layer in untrained.layers}
    assert "Block8_5_Activation" in names and "Block8_6_Activation" not in names


def test_output_rows_are_unit_length(untrained):
    x = np.random.default_rng(0).normal(size=(3, 160, 160, 3)).astype(np.float32)
    out = untrained(x, training=False).numpy()
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    ({"input_size": 50}, "input_size"),
    ({"embedding_size": 0}, "embedding_size"),
    ({"dropout_rate": 1.0}, "dropout_rate"),
    ({"residual_scales": {"Block99_1_ScaleSum": 0.1}}, "Block99_1_ScaleSum"),
])
def test_bad_builder_arguments_are_refused_before_building(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_inception_resnet_v1(**kwargs)


@pytest.fixture(scope="module")
def eight_crops(celebrities):
    paths = [str(p) for p, s in zip(celebrities.paths, celebrities.split) if s == "val"][:10]
    prepared = prepare_crops(paths, progress=False)
    assert len(prepared.kept_paths) >= 8
    return prepared.crops[:8]


@pytest.fixture
def restored_state(facenet_model):
    """Put the shared model's variables back after a test that trains it."""
    saved = [v.numpy().copy() for v in facenet_model.variables]
    yield facenet_model
    for variable, value in zip(facenet_model.variables, saved):
        variable.assign(value)


def _moving_mean(model):
    return model.get_layer("Conv2d_1a_3x3_BatchNorm").moving_mean.numpy().copy()


@pytest.mark.weights
def test_phase_off_is_batch_independent_and_repeatable(facenet_model, eight_crops):
    before = _moving_mean(facenet_model)
    a = forward(facenet_model, eight_crops[:4], phase_train=False).numpy()
    b = forward(facenet_model, np.concatenate([eight_crops[:1], eight_crops[4:7]]), phase_train=False).numpy()
    again = forward(facenet_model, eight_crops[:4], phase_train=False).numpy()
    np.testing.assert_allclose(a[0], b[0], atol=1e-5)
    np.testing.assert_array_equal(a, again)
    np.testing.assert_array_equal(_moving_mean(facenet_model), before)


@pytest.mark.weights
def test_phase_on_depends_on_the_batch_and_updates_moving_statistics(restored_state, eight_crops):
    model = restored_state
    before = _moving_mean(model)
    a = forward(model, eight_crops[:4], phase_train=True).numpy()
    after_one = _moving_mean(model)
    forward(model, np.concatenate([eight_crops[:1], eight_crops[4:7]]), phase_train=True)
    assert a.shape == (4, 128)
    assert not np.allclose(after_one, before)
    assert not np.allclose(_moving_mean(model), after_one)
    # Same image, different batch companions: different features from BatchNorm's batch
    # statistics alone (read before Dropout, so dropout noise cannot explain the change).
    pooled = keras.Model(model.input, model.get_layer("AvgPool").output)
    companions_1 = pooled(eight_crops[:4], training=True).numpy()[0]
    companions_1_again = pooled(eight_crops[:4], training=True).numpy()[0]
    companions_2 = pooled(np.concatenate([eight_crops[:1], eight_crops[4:7]]), training=True).numpy()[0]
    np.testing.assert_allclose(companions_1, companions_1_again, rtol=1e-5, atol=1e-5)
    assert np.max(np.abs(companions_1 - companions_2)) > 1e-2


@pytest.mark.weights
@pytest.mark.parametrize("phase_train", [False, True])
def test_gradient_reaches_the_first_convolution_in_both_phases(restored_state, eight_crops, phase_train):
    model = restored_state
    kernel = model.get_layer("Conv2d_1a_3x3").kernel
    moving = _moving_mean(model)
    with tf.GradientTape() as tape:
        emb = forward(model, eight_crops[:4], phase_train=phase_train)
        loss = -tf.reduce_sum(emb[0] * emb[1])     # pull two faces together
    grad = tape.gradient(loss, kernel)
    assert grad is not None
    grad = grad.numpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0
    # one SGD step with the phase off changes weights but not BatchNorm's moving statistics
    if not phase_train:
        kernel.assign_sub(0.01 * grad)
        np.testing.assert_array_equal(_moving_mean(model), moving)


@pytest.mark.weights
def test_celebrity_val_images_are_recognised_by_1nn_on_the_train_gallery(celebrity_embeddings):
    e = celebrity_embeddings
    train, val = e.split == "train", e.split == "val"
    similarity = e.embeddings[val] @ e.embeddings[train].T
    predicted = e.labels[train][similarity.argmax(axis=1)]
    correct = int((predicted == e.labels[val]).sum())
    assert val.sum() == 25 and correct == 25
    cos = e.embeddings @ e.embeddings.T
    same = e.labels[:, None] == e.labels[None, :]
    off_diagonal = ~np.eye(len(cos), dtype=bool)
    same_mean = cos[same & off_diagonal].mean()
    different_mean = cos[~same].mean()
    print(f"celebrities: 1-NN {correct}/25, same {same_mean:.3f}, different {different_mean:.3f}, "
          f"no face in {len(e.skipped)} of 118")
    assert same_mean > 0.4 and different_mean < 0.1
    assert len(e.embeddings) + len(e.skipped) == 118 and len(e.skipped) <= 2
