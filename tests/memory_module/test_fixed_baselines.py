"""The fixed-size baselines against independent NumPy versions, eagerly and traced.

Random labelled sequences (hypothesis, fixed seeds) with more items than slots, so the
FIFO wraps and the reservoir has to choose; the reservoir's reference is handed the
uniforms the store will draw, cloned from its generator.
"""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import ReferenceClassMeans, ReferenceFifo, ReferenceReservoir

from memory_module import ClassBalancedReservoir, ClassMeans, FifoBuffer

D = 4
SEQUENCES = dict(
    memory_size=st.integers(1, 8),
    n_classes=st.integers(1, 5),
    batches=st.lists(st.integers(1, 6), min_size=1, max_size=6),
    seed=st.integers(0, 2**16),
    traced=st.booleans(),
)


def _sequence(seed, n_classes, batches):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, D))
    # Skewed class frequencies, so the reservoir's balancing matters.
    frequencies = rng.dirichlet(np.ones(n_classes))
    for batch in batches:
        labels = rng.choice(n_classes, size=batch, p=frequencies)
        yield centres[labels] + 0.5 * rng.normal(size=(batch, D)), labels


def _writer(store, traced):
    return tf.function(store.write) if traced else store.write


def _next_uniforms(store, batch):
    clone = tf.random.Generator.from_state(store.sampler.state.numpy(), store.sampler.algorithm)
    return clone.uniform([batch, 2], dtype=tf.float64).numpy()


settings_ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings_
@given(**SEQUENCES)
def test_fifo_matches_reference(memory_size, n_classes, batches, seed, traced):
    store, reference = FifoBuffer(memory_size, D, dtype=tf.float64), ReferenceFifo(memory_size, D)
    write = _writer(store, traced)
    for queries, labels in _sequence(seed, n_classes, batches):
        np.testing.assert_array_equal(store.lookup(queries).labels, reference.lookup(queries))
        write(tf.constant(queries), tf.constant(labels))
        reference.write(queries, labels)
        np.testing.assert_array_equal(store.values, reference.values)
        np.testing.assert_allclose(store.keys, reference.keys, atol=1e-12)


@settings_
@given(**SEQUENCES)
def test_class_balanced_reservoir_matches_reference(memory_size, n_classes, batches, seed, traced):
    store = ClassBalancedReservoir(memory_size, D, seed=seed, dtype=tf.float64)
    reference = ReferenceReservoir(memory_size, D)
    write = _writer(store, traced)
    for queries, labels in _sequence(seed, n_classes, batches):
        np.testing.assert_array_equal(store.lookup(queries).labels, reference.lookup(queries))
        uniforms = _next_uniforms(store, len(labels))
        write(tf.constant(queries), tf.constant(labels))
        reference.write(queries, labels, uniforms)
        np.testing.assert_array_equal(store.values, reference.values)
        np.testing.assert_allclose(store.keys, reference.keys, atol=1e-12)


@settings_
@given(**SEQUENCES)
def test_class_means_match_reference(memory_size, n_classes, batches, seed, traced):
    store, reference = ClassMeans(D, dtype=tf.float64, initial_classes=2), ReferenceClassMeans()
    write = _writer(store, traced)
    for queries, labels in _sequence(seed, n_classes, batches):
        np.testing.assert_array_equal(store.lookup(queries).labels, reference.lookup(queries))
        write(tf.constant(queries), tf.constant(labels))
        reference.write(queries, labels)
    assert store.slots_in_use() == len(reference.examples)
    assert store.footprint_bytes()["total"] == len(reference.examples) * (D * 8 + 8)


def test_reservoir_keeps_a_rare_class_that_fifo_forgets():
    rng = np.random.default_rng(0)
    centres = np.eye(D)
    fifo, reservoir = FifoBuffer(4, D), ClassBalancedReservoir(4, D, seed=1)
    stream = [0] + [1] * 30  # one example of class 0, then a flood of class 1
    for label in stream:
        query = (centres[[label]] + 0.1 * rng.normal(size=(1, D))).astype(np.float32)
        fifo.write(query, [label])
        reservoir.write(query, [label])
    assert 0 not in fifo.values.numpy()
    assert 0 in reservoir.values.numpy()


def test_fifo_keeps_the_last_rows_of_an_oversized_batch():
    fifo = FifoBuffer(3, D)
    queries = np.eye(D, dtype=np.float32)[[0, 1, 2, 3, 0]]
    fifo.write(queries, [0, 1, 2, 3, 4])
    assert sorted(fifo.values.numpy().tolist()) == [2, 3, 4]
    assert int(fifo.written) == 5


def test_baselines_refuse_bad_settings():
    with pytest.raises(ValueError, match="memory_size must be >= 1"):
        FifoBuffer(0, D)
    with pytest.raises(ValueError, match="key_dim"):
        ClassMeans(0)
