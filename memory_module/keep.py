"""keep_classes: where a full memory puts a miss whose label it already holds.

Under the class-balanced and Ward folds a miss takes a victim slot. Once the memory is
full at one slot per class, every label holds exactly one slot, no label has a pair to
fold, and the victim is some other label's only key: the memory forgets a class it has
seen to make room for a second key of a class it still holds. keep_classes merges such a
miss into its own label's most similar slot instead (count-weighted with running_mean), so
a held label never costs another label its key; only a label the memory does not hold
takes a victim. At one slot per class this is class means' rule, one count-weighted mean
per class.

The function takes any number of leading (repeat) axes, so KaiserMemory ([B], [N]) and
BatchedKaiserMemory ([R, B], [R, N]) share it; the similarities come from
readout.similarities, whose batched matmul makes every repeat's slice equal to the single
memory's.
"""

from __future__ import annotations

import tensorflow as tf

from memory_module.readout import similarities


def nearest_of_label(unit: tf.Tensor, labels: tf.Tensor, keys: tf.Tensor, values: tf.Tensor) -> tf.Tensor:
    """[..., B] int64: the most similar slot holding each item's label; -1 where no slot holds it.

    unit [..., B, d] unit queries, labels [..., B] (>= 0), keys [..., N, d] unit rows,
    values [..., N] (negative = empty, never equal to a label). Ties go to the lower slot.
    """
    similarity = similarities(unit, keys)  # [..., B, N]
    own = tf.equal(labels[..., :, None], values[..., None, :])
    scored = tf.where(own, similarity, tf.constant(-float("inf"), similarity.dtype))
    slot = tf.argmax(scored, axis=-1, output_type=tf.int64)
    return tf.where(tf.reduce_any(own, axis=-1), slot, tf.constant(-1, tf.int64))
