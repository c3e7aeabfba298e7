"""What a seeded tf.random.Generator (Philox) draws, for many generator states in one op graph.

A single memory draws its noise from its own tf.random.Generator. A batched memory holds R
such generators; calling R stateful ops per write costs more than the write (and tracing
them costs seconds). TensorFlow's Philox generator is counter-based: its state is
[counter low, counter high, key] (int64), `uniform` reads the state, advances the counter
by 256 per element drawn, and fills element i from the 128-bit block counter + i // 4
(float32: one 32-bit word per element; float64: two words). So R generators' next draws
are one vectorised computation of Philox4x32-10 over a [R, blocks] grid of counters,
written here with int64 arithmetic (every 32-bit word held in an int64).

`uniform(states, count, ...)` returns what `Generator.from_state(states[r]).uniform([count])`
returns for every r, to the bit, and the states after the draw
(tests/memory_module/test_philox.py compares them with TensorFlow's own generator).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

_WORD = 0xFFFFFFFF
_MULTIPLIERS = (0xD2511F53, 0xCD9E8D57)  # Philox4x32 round multipliers (Salmon et al. 2011)
_KEY_STEPS = (0x9E3779B9, 0xBB67AE85)  # Weyl sequence added to the key between rounds
_ROUNDS = 10
_SKIP_PER_ELEMENT = 256  # TensorFlow's counter advance per element drawn (RngReadAndSkip)


def initial_states(seeds) -> np.ndarray:
    """[R, 3] int64: the states of tf.random.Generator.from_seed(s) (Philox) for each seed.

    tf.random.create_rng_state cuts an integer seed into three 64-bit words, lowest first
    (two's complement, so a negative seed fills the upper words with ones). Done here in
    plain Python: create_rng_state runs a few eager ops per seed, about a millisecond, which
    for a thousand repeats cost more than their whole protocol.
    """
    words = [[(int(s) >> (64 * i)) & 0xFFFFFFFFFFFFFFFF for i in range(3)] for s in seeds]
    return np.array(words, dtype=np.uint64).view(np.int64).reshape(len(words), 3)


def _words(value: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """An int64 (any bit pattern) as its low and high 32-bit words, each in an int64."""
    return tf.bitwise.bitwise_and(value, _WORD), tf.bitwise.bitwise_and(tf.bitwise.right_shift(value, 32), _WORD)


def _join(low: tf.Tensor, high: tf.Tensor) -> tf.Tensor:
    return tf.bitwise.bitwise_or(low, tf.bitwise.left_shift(high, 32))  # wraps into the sign bit as uint64 would


def _add_to_counter(lanes: list, amount: tf.Tensor) -> list:
    """A 128-bit counter held as four 32-bit words, plus a non-negative int64 amount."""
    amount_low, amount_high = _words(amount)
    out, carry = [], tf.zeros_like(lanes[0])
    for lane, addend in zip(lanes, (amount_low, amount_high, 0, 0)):
        total = lane + addend + carry
        out.append(tf.bitwise.bitwise_and(total, _WORD))
        carry = tf.bitwise.right_shift(total, 32)
    return out


def _mulhilo(multiplier: int, word: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    product = word * multiplier  # < 2**64; int64 multiplication wraps like uint64
    return _words(product)


def _blocks(states: tf.Tensor, n_blocks: tf.Tensor) -> list:
    """Philox4x32-10 of counters state + 0 .. n_blocks - 1: four [R, n_blocks] words."""
    counter = _words(states[:, 0]) + _words(states[:, 1])  # low word first
    steps = tf.range(n_blocks, dtype=tf.int64)[None, :]
    lanes = _add_to_counter([lane[:, None] + tf.zeros_like(steps) for lane in counter], steps)
    key_low, key_high = (word[:, None] for word in _words(states[:, 2]))

    def one_round(round_, lane0, lane1, lane2, lane3, key_low, key_high):
        low0, high0 = _mulhilo(_MULTIPLIERS[0], lane0)
        low1, high1 = _mulhilo(_MULTIPLIERS[1], lane2)
        return (round_ + 1,
                tf.bitwise.bitwise_xor(tf.bitwise.bitwise_xor(high1, lane1), key_low), low1,
                tf.bitwise.bitwise_xor(tf.bitwise.bitwise_xor(high0, lane3), key_high), low0,
                # the key of the next round (unused after the last one)
                tf.bitwise.bitwise_and(key_low + _KEY_STEPS[0], _WORD), tf.bitwise.bitwise_and(key_high + _KEY_STEPS[1], _WORD))

    # A loop, not ten unrolled rounds: the same arithmetic, but a graph of one round instead of
    # ten, which is most of what tracing and optimising a batched memory's write cost.
    _, *lanes, _, _ = tf.while_loop(lambda round_, *_: round_ < _ROUNDS, one_round,
                                    (tf.constant(0), *lanes, key_low, key_high))
    return lanes


def uniform(states: tf.Tensor, count, minval, maxval, dtype) -> tuple[tf.Tensor, tf.Tensor]:
    """[R, count] uniforms in [minval, maxval) as each state's Generator.uniform([count]) draws, and the next states."""
    dtype = tf.as_dtype(dtype)
    count = tf.cast(count, tf.int64)
    per_block = 4 if dtype == tf.float32 else 2
    words = tf.stack(_blocks(states, (count + per_block - 1) // per_block), axis=2)  # [R, blocks, 4]
    repeats = tf.shape(states)[0]
    if dtype == tf.float32:
        mantissa = tf.reshape(words, [repeats, -1])[:, :count]
        bits = tf.bitwise.bitwise_or(tf.bitwise.bitwise_and(mantissa, 0x7FFFFF), 127 << 23)
        unit = tf.bitcast(tf.cast(bits, tf.int32), tf.float32) - 1.0
    elif dtype == tf.float64:
        pairs = tf.reshape(words, [repeats, -1, 2])[:, :count]
        bits = _join(pairs[:, :, 1], tf.bitwise.bitwise_and(pairs[:, :, 0], 0xFFFFF))
        unit = tf.bitcast(tf.bitwise.bitwise_or(bits, 1023 << 52), tf.float64) - 1.0
    else:
        raise ValueError(f"uniform draws float32 or float64, got {dtype.name}")
    minval = tf.constant(minval, dtype)
    values = tf.add(unit * (tf.constant(maxval, dtype) - minval), minval)  # as Generator.uniform computes it
    counter = _add_to_counter(list(_words(states[:, 0]) + _words(states[:, 1])), count * _SKIP_PER_ELEMENT)
    next_states = tf.stack([_join(counter[0], counter[1]), _join(counter[2], counter[3]), states[:, 2]], axis=1)
    return values, next_states
