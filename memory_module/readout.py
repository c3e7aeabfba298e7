"""Reading a key table: nearest slots and the answer they give. No state is changed here.

Shared by the Kaiser memory and the store-all baseline so that both answer with
the same rule: cosine similarity of the unit-normalised query to every unit key,
empty slots (value UNKNOWN_LABEL) excluded, a top-k pool, and the value of the
best slot (or a similarity-weighted vote over the best `vote_k` slots).
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from memory_module.labels import UNKNOWN_LABEL


class LookupResult(NamedTuple):
    """What a lookup answers for each query of a batch.

    labels:     [B] int64 predicted dense label id, UNKNOWN_LABEL when the memory is empty.
    similarity: [B] cosine similarity to `slot`, -inf when the memory is empty.
    slot:       [B] int64 index of the answering slot, -1 when the memory is empty.
    """

    labels: tf.Tensor
    similarity: tf.Tensor
    slot: tf.Tensor


class Pool(NamedTuple):
    """The `k` most similar filled slots per query, best first ([B, k] each).

    Where fewer than k slots are filled the tail holds similarity -inf and value
    UNKNOWN_LABEL.
    """

    similarity: tf.Tensor
    slots: tf.Tensor
    values: tf.Tensor


def read_whole(variable: tf.Variable) -> tf.Tensor:
    """The variable's value without a copy.

    A variable that has been written with scatter ops is in TensorFlow's
    copy-on-read mode, where every plain read copies the whole buffer (512 MiB
    for a 1M x 128 memory, slower than the matmul itself). Reading with
    `read_value_no_copy` switches it to copy-on-write instead: the read aliases
    the buffer, and a later scatter copies only if that read is still alive.
    """
    return variable.read_value_no_copy()


def unit_rows(rows: tf.Tensor, axis: int = -1) -> tf.Tensor:
    """`rows` scaled to unit length along `axis` (zero rows stay zero), as tf.math.l2_normalize.

    Written with sqrt and a division, both correctly rounded, instead of l2_normalize's
    rsqrt: CPU kernels compute rsqrt one way in vector registers and another way for the
    leftover elements, so l2_normalize of a row could change in its last bit with the
    number of rows around it, and a batched memory would drift from a single one. The
    division is divide_no_nan (the norm is never 0 here) because TensorFlow's graph
    optimizer rewrites a plain x / sqrt(y) back into x * rsqrt(y).
    """
    square_sum = tf.reduce_sum(tf.square(rows), axis, keepdims=True)
    return tf.math.divide_no_nan(rows, tf.sqrt(tf.maximum(square_sum, tf.constant(1e-12, rows.dtype))))


def nearest_pool(unit_queries: tf.Tensor, keys, values, k: int) -> Pool:
    """One matmul over all keys and one top_k: the only O(N) work of a lookup.

    unit_queries [B, d], keys [N, d] unit rows, values [N] int64 (tensors or
    variables); k <= N. It is `batched_pool` on a batch of one state, so a memory and
    its batched twin (memory_module.batched) give the same similarities to the last bit.
    """
    if isinstance(keys, tf.Variable):
        keys = read_whole(keys)
    if isinstance(values, tf.Variable):
        values = read_whole(values)
    pool = batched_pool(unit_queries[None], keys[None], values[None], k)
    return Pool(pool.similarity[0], pool.slots[0], pool.values[0])


def similarities(rows: tf.Tensor, keys: tf.Tensor) -> tf.Tensor:
    """[R, B, N] cosine similarities of unit rows [R, B, d] to unit keys [R, N, d].

    Always a batched matmul, even for one state: a plain [B, d] x [d, N] matmul takes
    another kernel on CPU and can round the last bit differently, while every slice of
    a batched matmul equals the batch of one (tests/memory_module/test_batched_memory.py).
    """
    return tf.matmul(rows, keys, transpose_b=True)


def batched_pool(unit_queries: tf.Tensor, keys: tf.Tensor, values: tf.Tensor, k: int) -> Pool:
    """`nearest_pool` for R independent states: queries [R, B, d], keys [R, N, d], values [R, N]; [R, B, k] each."""
    similarity = similarities(unit_queries, keys)  # [R, B, N]
    empty_penalty = tf.where(
        values >= 0,
        tf.zeros([], similarity.dtype),
        tf.constant(-float("inf"), similarity.dtype),
    )[:, None, :]  # [R, 1, N]: empty slots can never win
    pool_similarity, pool_slots = tf.math.top_k(similarity + empty_penalty, k=k, sorted=True)
    pool_slots = tf.cast(pool_slots, tf.int64)
    return Pool(pool_similarity, pool_slots, tf.gather(values, pool_slots, batch_dims=1))


def batched_answer(pool: Pool, vote_k: int = 1) -> LookupResult:
    """`answer` for a pool of R states ([R, B, k] each): [R, B] each."""
    shape = tf.shape(pool.values)
    flat_shape, answer_shape = tf.stack([-1, shape[2]]), shape[:2]  # once: each slice is graph ops to trace
    flat = Pool(*(tf.reshape(part, flat_shape) for part in pool))
    result = answer(flat, vote_k)
    return LookupResult(*(tf.reshape(part, answer_shape) for part in result))


def answer(pool: Pool, vote_k: int = 1) -> LookupResult:
    """The pool's answer: its best slot (paper), or a similarity-weighted vote (beyond the paper).

    The vote sums the cosine similarities of the `vote_k` best filled slots per
    label and answers the label with the largest sum; ties go to the label of the
    nearer slot. The answering slot is the nearest slot holding that label.
    """
    if vote_k <= 1:
        position = tf.zeros_like(pool.values[:, 0])
    else:
        values = pool.values[:, :vote_k]
        similarity = pool.similarity[:, :vote_k]
        filled = values >= 0
        weight = tf.where(filled, similarity, tf.zeros_like(similarity))
        same_label = tf.equal(values[:, :, None], values[:, None, :])  # [B, vk, vk]
        score = tf.reduce_sum(tf.where(same_label, weight[:, None, :], tf.zeros_like(weight[:, None, :])), axis=2)
        score = tf.where(filled, score, tf.constant(-float("inf"), score.dtype))
        position = tf.argmax(score, axis=1, output_type=tf.int64)  # first maximum = nearest slot
    labels = tf.gather(pool.values, position, batch_dims=1)
    similarity = tf.gather(pool.similarity, position, batch_dims=1)
    slot = tf.gather(pool.slots, position, batch_dims=1)
    found = labels != UNKNOWN_LABEL
    slot = tf.where(found, slot, tf.constant(-1, tf.int64))
    return LookupResult(labels=labels, similarity=similarity, slot=slot)
