"""memory_module.philox draws what TensorFlow's own Philox generators draw, for many states at once."""

import numpy as np
import pytest
import tensorflow as tf

from memory_module import philox


@pytest.mark.parametrize("dtype, low, high", [(tf.float32, -8.0, 8.0), (tf.float32, -5.0, 5.0), (tf.float64, 0.0, 1.0)])
def test_uniform_equals_the_generators_draws_call_after_call(dtype, low, high):
    seeds = [0, 1, 7, 2**31 - 2, 123456789, 2**40 + 3]
    generators = [tf.random.Generator.from_seed(s) for s in seeds]
    states = tf.constant(philox.initial_states(seeds))
    for g, state in zip(generators, states.numpy()):
        np.testing.assert_array_equal(g.state.numpy(), state)
    for count in (1, 3, 4, 5, 50, 8, 17):
        values, states = philox.uniform(states, count, low, high, dtype)
        for r, g in enumerate(generators):
            want = g.uniform([count], low, high, dtype=dtype).numpy()
            np.testing.assert_array_equal(values[r].numpy(), want, err_msg=f"seed {seeds[r]} count {count}")
            np.testing.assert_array_equal(states[r].numpy(), g.state.numpy())


def test_a_counter_crossing_64_bits_carries_like_tensorflow():
    start = np.array([[-3, 5, 99]], np.int64)  # low counter word 2**64 - 3: the next draw carries into the high word
    generator = tf.random.Generator.from_state(start[0], tf.random.Algorithm.PHILOX)
    values, states = philox.uniform(tf.constant(start), 20, 0.0, 1.0, tf.float32)  # blocks ...FD to 2**64 + 1
    np.testing.assert_array_equal(values[0].numpy(), generator.uniform([20], 0.0, 1.0, dtype=tf.float32).numpy())
    np.testing.assert_array_equal(states[0].numpy(), generator.state.numpy())


def test_initial_states_equal_tensorflows_seeding():
    seeds = [0, 1, 7, 2**31 - 1, 2**40 + 3, 2**63 - 1, 2**64 + 5, -1, -(2**40)]
    expected = np.stack([tf.random.create_rng_state(s, tf.random.Algorithm.PHILOX) for s in seeds]).astype(np.int64)
    np.testing.assert_array_equal(philox.initial_states(seeds), expected)
    assert philox.initial_states([]).shape == (0, 3)
