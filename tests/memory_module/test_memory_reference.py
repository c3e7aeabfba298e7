"""The TF memory against the independent NumPy reference on random sequences.

Hypothesis draws the memory's shape and a sequence of labelled batches drawn
around a few class centres (so both hits and misses happen), with the age noise
switched off or on with a fixed seed. For the seeded case the reference is given
the very noise the memory will draw, by cloning the memory's generator state.
"""

import warnings

import numpy as np
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import ReferenceMemory

from memory_module import KaiserMemory

KEY_DIM = 3


def _next_noise(memory: KaiserMemory) -> np.ndarray:
    clone = tf.random.Generator.from_state(memory.noise.state.numpy(), memory.noise.algorithm)
    noise = clone.uniform([memory.memory_size], -memory.age_noise, memory.age_noise, dtype=tf.float32)
    return noise.numpy().astype(np.float64)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    memory_size=st.integers(1, 10),
    choose_k=st.integers(1, 8),
    n_classes=st.integers(1, 6),
    batches=st.lists(st.integers(1, 5), min_size=1, max_size=6),
    age_noise=st.sampled_from([0.0, 2.0]),
    seed=st.integers(0, 2**16),
)
def test_memory_matches_reference(memory_size, choose_k, n_classes, batches, age_noise, seed):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, KEY_DIM))
    memory = KaiserMemory(memory_size, KEY_DIM, choose_k=choose_k, age_noise=age_noise, seed=seed, dtype=tf.float64)
    reference = ReferenceMemory(memory_size, KEY_DIM, choose_k=choose_k)
    for batch in batches:
        labels = rng.integers(0, n_classes, size=batch)
        queries = centres[labels] + 0.3 * rng.normal(size=(batch, KEY_DIM))

        result = memory.lookup(queries)
        ref_labels, ref_sims, ref_slots = reference.lookup(queries)
        np.testing.assert_array_equal(result.labels, ref_labels)
        np.testing.assert_array_equal(result.slot, ref_slots)
        np.testing.assert_allclose(result.similarity, ref_sims, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(float(memory.loss(queries, labels)), reference.loss(queries, labels), atol=1e-12)

        noise = _next_noise(memory) if age_noise else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            memory.write(queries, labels)
        reference.write(queries, labels, noise=noise)

        np.testing.assert_array_equal(memory.values, reference.values)
        np.testing.assert_array_equal(memory.ages, reference.ages)
        np.testing.assert_allclose(memory.keys, reference.keys, rtol=1e-12, atol=1e-12)
        recent = memory.recent_slot.numpy()
        assert {label: int(recent[label]) for label in reference.recent} == reference.recent
        assert all(recent[label] == -1 for label in range(len(recent)) if label not in reference.recent)


def test_same_seed_gives_the_same_states_and_another_seed_differs():
    def run(seed):
        rng = np.random.default_rng(0)
        memory = KaiserMemory(16, KEY_DIM, age_noise=8.0, seed=seed)
        for _ in range(6):
            labels = rng.integers(0, 40, size=4)
            memory.write(rng.normal(size=(4, KEY_DIM)).astype(np.float32), labels)
        return memory.values.numpy(), memory.keys.numpy()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        first, again, other = run(1), run(1), run(2)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])
