"""The split FaceNet: bottom + top in inference mode is the whole network, the top is independent,
and the frozen features are cached by content."""

import numpy as np
import pytest

from facenet_tf import build_inception_resnet_v1
from facenet_tf.trainable_scope import (
    CUT_LAYERS,
    TRAINABLE_FROM_CHOICES,
    FrozenFeatures,
    resolve_scope,
    split_facenet,
)


@pytest.fixture(scope="module")
def random_facenet():
    # Random weights, and moving statistics far from 0/1, so the check is not about identity BatchNorms.
    model = build_inception_resnet_v1()
    rng = np.random.default_rng(0)
    model.set_weights([
        (w + rng.normal(0, 0.05, w.shape)).astype(w.dtype) if "moving_variance" not in v.path
        else rng.uniform(0.5, 2.0, w.shape).astype(w.dtype)
        for w, v in zip(model.get_weights(), model.weights)
    ])
    return model


@pytest.fixture(scope="module")
def crops():
    return np.random.default_rng(1).normal(size=(3, 160, 160, 3)).astype(np.float32)


def test_scope_names_are_checked():
    assert resolve_scope("Block8") == "Block8_1"
    assert resolve_scope("all") == "all"
    with pytest.raises(ValueError, match="trainable_from must be one of .*Mixed_7a.*got 'Block9'"):
        resolve_scope("Block9")
    assert len(CUT_LAYERS) == 1 + 5 + 1 + 10 + 1 + 6 + 1 and "bottleneck" in TRAINABLE_FROM_CHOICES


@pytest.mark.parametrize("scope", ["bottleneck", "Block8", "Block8_6", "Mixed_7a", "Block17_5", "Mixed_6a", "Block35", "all"])
def test_bottom_then_top_equals_whole_network(random_facenet, crops, scope, tmp_path):
    split = split_facenet(random_facenet, scope)
    whole = random_facenet(crops, training=False).numpy()
    features = FrozenFeatures(split, batch_size=4, root=tmp_path).of_crops(crops)
    parts = split.top(features, training=False).numpy()
    np.testing.assert_allclose(parts, whole, atol=2e-6, rtol=0)


def test_top_learns_without_touching_the_original(random_facenet, crops, tmp_path):
    split = split_facenet(random_facenet, "Block8")
    before = [w.copy() for w in random_facenet.get_weights()]
    for variable in split.top.trainable_variables:
        variable.assign(variable + 0.01)
    after = random_facenet.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    names = {layer.name for layer in split.top.layers}
    assert "Block8_1_Conv2d_1x1" in names and "Mixed_7a" not in names and "Conv2d_1a_3x3" not in names


def test_features_are_cached_on_disk_by_crop_content(random_facenet, crops, tmp_path):
    split = split_facenet(random_facenet, "bottleneck")
    first = FrozenFeatures(split, batch_size=2, root=tmp_path).of_crops(crops)
    entries = sorted(tmp_path.rglob("*.npy"))
    assert len(entries) == 3
    # A fresh object reads the entries instead of running the bottom.
    again = FrozenFeatures(split, batch_size=2, root=tmp_path)
    again._forward = None   # would fail if called
    np.testing.assert_array_equal(again.of_crops(crops), first)
    # Another scope, or another crop, is another entry.
    FrozenFeatures(split_facenet(random_facenet, "Block8_6"), batch_size=2, root=tmp_path).of_crops(crops[:1])
    FrozenFeatures(split, batch_size=2, root=tmp_path).of_crops(crops[:1] + 1.0)
    assert len(sorted(tmp_path.rglob("*.npy"))) == 5
