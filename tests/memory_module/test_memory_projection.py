"""The reference code's query projection: off by default, a trainable [d, d] matrix applied before normalising."""

import numpy as np
import tensorflow as tf

from memory_module import KaiserMemory


def _memory(**options):
    return KaiserMemory(memory_size=8, key_dim=4, age_noise=0.0, seed=3, **options)


def test_off_by_default_and_nothing_trainable():
    memory = _memory()
    assert memory.projection is None and memory.trainable_variables == ()


def test_initial_matrix_is_a_truncated_normal_of_std_0_01():
    memory = KaiserMemory(memory_size=4, key_dim=64, seed=5, query_projection=True)
    (variable,) = memory.trainable_variables
    values = variable.numpy()
    assert values.shape == (64, 64)
    assert np.abs(values).max() <= 0.02 + 1e-7          # truncated at two standard deviations
    assert 0.007 < values.std() < 0.0095                 # a N(0, 0.01) truncated at 2 sigma has std ~0.0088


def test_lookup_write_and_loss_use_the_projected_query():
    memory = _memory(query_projection=True)
    rng = np.random.default_rng(0)
    keys = rng.normal(size=(3, 4)).astype(np.float32)
    memory.write(keys, np.array([0, 1, 2]))
    projection = memory.projection.numpy()
    projected = keys @ projection
    stored = memory.keys.numpy()[memory.values.numpy() >= 0]
    expected = projected / np.linalg.norm(projected, axis=1, keepdims=True)
    np.testing.assert_allclose(np.sort(stored, axis=0), np.sort(expected, axis=0), atol=1e-6)
    query = rng.normal(size=(5, 4)).astype(np.float32)
    unit = query @ projection
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    slots = np.argmax(unit @ memory.keys.numpy().T, axis=1)
    np.testing.assert_array_equal(memory.lookup(query).labels.numpy(), memory.values.numpy()[slots])


def test_the_loss_trains_the_projection_and_reset_restores_it():
    memory = _memory(query_projection=True)
    memory.write(np.eye(4, dtype=np.float32)[:2], np.array([0, 1]))
    initial = memory.projection.numpy().copy()
    query = tf.constant([[1.0, 0.0, 0.0, 0.0]])   # exactly the key stored for class 0, labelled 1
    with tf.GradientTape() as tape:
        loss = memory.loss(query, np.array([1]))
    (gradient,) = tape.gradient(loss, memory.trainable_variables)
    assert float(loss) > 0 and float(tf.reduce_sum(tf.abs(gradient))) > 0
    tf.keras.optimizers.SGD(1.0).apply_gradients([(gradient, memory.projection)])
    assert not np.array_equal(memory.projection.numpy(), initial)
    memory.reset()
    np.testing.assert_array_equal(memory.projection.numpy(), initial)
    memory.reset(seed=4)
    assert not np.array_equal(memory.projection.numpy(), initial)
    assert memory.get_config()["query_projection"] is True
