"""Keras saving keeps a MemoryLayer's memory (save_weights, .keras), or refuses loudly."""

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from memory_module import MemoryLayer

D = 4


def _model(memory_kind="KaiserMemory", **settings):
    settings = {"memory_size": 16, "choose_k": 8, "seed": 2, **settings} if memory_kind == "KaiserMemory" else settings
    layer = MemoryLayer(memory_kind=memory_kind, key_dim=D, name="memory", **settings)
    images = keras.Input((6,), name="images")
    out = layer(keras.layers.Dense(D, name="embedder")(images))
    return keras.Model(images, out), layer


def _fill(layer, rows=10):
    rng = np.random.default_rng(0)
    for start in range(0, rows, 3):
        q = rng.normal(size=(3, D)).astype(np.float32)
        layer.memory.write(tf.constant(q), tf.constant(np.arange(start, start + 3) % 5, tf.int64))


def _state(memory):
    return {name: variable.numpy() for name, variable in memory.state_variables().items()}


def _assert_same(a, b):
    assert set(a) == set(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.mark.parametrize("kind", ["KaiserMemory", "StoreAllNearestNeighbour"])
def test_save_weights_and_keras_file_keep_the_memory(tmp_path, kind):
    model, layer = _model(kind)
    _fill(layer)
    queries = np.random.default_rng(1).normal(size=(5, 6)).astype(np.float32)
    expected = model(queries)

    model.save_weights(tmp_path / "m.weights.h5")
    fresh, fresh_layer = _model(kind)
    fresh.load_weights(tmp_path / "m.weights.h5")
    _assert_same(_state(layer.memory), _state(fresh_layer.memory))
    np.testing.assert_array_equal(fresh(queries)["labels"], expected["labels"])

    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")   # no custom_objects: the layer is registered
    _assert_same(_state(layer.memory), _state(loaded.get_layer("memory").memory))
    np.testing.assert_allclose(loaded(queries)["similarity"], expected["similarity"], rtol=1e-6)


def test_the_restored_memory_keeps_learning_like_the_original(tmp_path):
    model, layer = _model()
    _fill(layer)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras").get_layer("memory")
    q, v = tf.constant(np.eye(D, dtype=np.float32)), tf.constant([0, 1, 2, 3], tf.int64)
    layer.memory.write(q, v)
    loaded.memory.write(q, v)   # same age noise draws: the generator state was restored too
    _assert_same(_state(layer.memory), _state(loaded.memory))


def test_loading_into_another_memory_size_is_refused_and_leaves_it_empty(tmp_path):
    model, layer = _model()
    _fill(layer)
    model.save_weights(tmp_path / "m.weights.h5")
    other, other_layer = _model(memory_size=32)
    with pytest.raises(ValueError, match=r"keys is float32\[16, 4\].*\[32, 4\].*memory_size"):
        other.load_weights(tmp_path / "m.weights.h5")
    assert other_layer.memory.slots_in_use() == 0


def test_a_weights_file_without_memory_state_is_refused(tmp_path):
    model, layer = _model()
    _fill(layer)
    model.save_weights(tmp_path / "m.weights.h5")
    with h5py.File(tmp_path / "m.weights.h5", "r+") as f:   # as saved before the layer saved its memory
        group = f["layers/memory_layer/vars"]   # Keras names the group by class
        for name in list(group):
            del group[name]
    fresh, _ = _model()
    with pytest.raises(ValueError, match="holds no memory state.*tf.train.Checkpoint"):
        fresh.load_weights(tmp_path / "m.weights.h5")


def test_legacy_h5_model_file_is_refused_with_what_to_do(tmp_path):
    model, layer = _model()
    _fill(layer)
    with pytest.raises(ValueError, match=r"legacy HDF5.*\.keras"):
        model.save(tmp_path / "m.h5")
