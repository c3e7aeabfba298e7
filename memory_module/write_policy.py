"""The replaceable pieces of the Kaiser memory's write: which slots a miss overwrites, what
happens to the keys there, how a merge moves a key, and which hits merge.

KaiserMemory (memory_module.memory) mixes this class in; each method is one named piece
of the rule its docstring states, with the paper's behaviour and the option beyond the
paper side by side (docs/MEMORY_POLICIES.md says why each option exists). They read the
memory's state variables (keys, values, last_written, counts, clock, noise) and settings
(memory_size, age_noise, eviction, on_evict, merge_threshold, fill_first, keep_classes) and
write only through scatters, as `_write` calls them. eviction="ward"'s pair costs are
memory_module.ward; keep_classes' own-label target is memory_module.keep.
"""

from __future__ import annotations

import tensorflow as tf

from memory_module.keep import nearest_of_label
from memory_module.readout import LookupResult, read_whole, similarities, unit_rows
from memory_module.ward import fold_priority, fold_target_scores


class WritePolicy:
    """_noisy_ages, _victims, _release, _merge, _merges and _merge_slots of KaiserMemory's write."""

    def _noisy_ages(self, excluded: tf.Tensor) -> tf.Tensor:
        """[N] float64 age + U[-age_noise, age_noise] per slot; -inf for `excluded` slots."""
        noisy_age = tf.cast(self.ages, tf.float64)  # exact for any realistic age
        if self.age_noise > 0:
            # float32 noise: 4x cheaper to draw than float64 at N = 1M, and its resolution is irrelevant.
            noise = self.noise.uniform([self.memory_size], -self.age_noise, self.age_noise, dtype=tf.float32)
            noisy_age += tf.cast(noise, tf.float64)
        return tf.tensor_scatter_nd_update(
            noisy_age, excluded[:, None], tf.fill(tf.shape(excluded), tf.constant(-float("inf"), tf.float64))
        )

    def _victims(self, excluded: tf.Tensor, count: tf.Tensor) -> tf.Tensor:
        """Which slots this batch's inserts overwrite: `count` distinct slots, never one of `excluded`.

        The paper: the oldest slots by age + noise. class_balanced: empty slots first (oldest
        first), then repeatedly the oldest slot of the label that would still hold the most
        slots, i.e. slots sorted by (slots its label holds - its age rank within the label,
        noisy age, -index), every key descending. ward: class_balanced with the slot's cheapest
        same-label Ward merge cost (lowest first) in place of its age (memory_module.ward).
        All draw the noise once per write.
        """
        noisy_age = self._noisy_ages(excluded)
        if self.eviction == "oldest":
            _, order = tf.math.top_k(noisy_age, k=tf.cast(count, tf.int32), sorted=True)
            return tf.cast(order, tf.int64)
        values = read_whole(self.values)
        if self.eviction == "ward":  # "age" below is then the fold priority: cheapest merge first
            counts = None if self.counts is None else read_whole(self.counts)
            noisy_age = fold_priority(noisy_age[None], read_whole(self.keys)[None], values[None],
                                      None if counts is None else counts[None])[0]
        _, label_id = tf.unique(values)
        n_labels = tf.reduce_max(label_id) + 1
        held = tf.math.unsorted_segment_sum(tf.ones_like(label_id, tf.int64), label_id, n_labels)
        by_age = tf.argsort(noisy_age, direction="DESCENDING", stable=True)
        by_label_then_age = tf.gather(by_age, tf.argsort(tf.gather(label_id, by_age), stable=True))
        first_of_label = tf.cumsum(held, exclusive=True)
        sorted_label = tf.gather(label_id, by_label_then_age)
        rank_sorted = tf.range(self.memory_size, dtype=tf.int64) - tf.gather(first_of_label, sorted_label)
        rank = tf.scatter_nd(by_label_then_age[:, None], rank_sorted, [self.memory_size])
        remaining = tf.gather(held, label_id) - rank
        remaining = tf.where(values >= 0, remaining, tf.constant(self.memory_size + 1, tf.int64))  # empty first
        is_excluded = tf.scatter_nd(excluded[:, None], tf.ones_like(excluded, tf.bool), [self.memory_size])
        remaining = tf.where(is_excluded, tf.constant(-1, tf.int64), remaining)
        order = tf.gather(by_age, tf.argsort(tf.gather(remaining, by_age), direction="DESCENDING", stable=True))
        return tf.cast(order[:count], tf.int64)

    def _release(self, victims: tf.Tensor) -> None:
        """What happens to the keys `victims` held before they are overwritten.

        The paper: they are dropped. on_evict="merge": each filled victim is merged, with
        `_merge`, into the most similar slot of its own label that is not a victim of this
        batch (the merging budget maintenance of Wang, Crammer and Vucetic 2012), so a label
        loses a mode's position but not its examples. A victim whose label has no other slot
        is dropped. Merge targets keep their age: they learned nothing new from the stream.
        With eviction="ward" the target is the slot of the lowest Ward merge cost instead.
        """
        if self.on_evict == "drop":
            return
        values = read_whole(self.values)
        victim_keys = tf.gather(self.keys, victims)
        victim_values = tf.gather(values, victims)
        is_victim = tf.scatter_nd(victims[:, None], tf.ones_like(victims, tf.bool), [self.memory_size])
        allowed = tf.equal(values[None, :], victim_values[:, None]) & (victim_values[:, None] >= 0) & ~is_victim[None, :]
        similarity = similarities(victim_keys[:, None, :], read_whole(self.keys)[None])[:, 0]  # [M, N]
        if self.eviction == "ward":
            counts = tf.ones_like(values) if self.counts is None else read_whole(self.counts)
            similarity = fold_target_scores(similarity, tf.gather(counts, victims), counts[None, :])
        similarity = tf.where(allowed, similarity, tf.constant(-float("inf"), similarity.dtype))
        folds = tf.reduce_any(allowed, axis=1)
        target = tf.boolean_mask(tf.argmax(similarity, axis=1, output_type=tf.int64), folds)
        weight = tf.ones_like(victims) if self.counts is None else tf.gather(self.counts, victims)
        weight = tf.boolean_mask(weight, folds)
        folded_keys = tf.boolean_mask(victim_keys, folds) * tf.cast(weight, victim_keys.dtype)[:, None]
        targets, segment = tf.unique(target)
        n_targets = tf.shape(targets, out_type=tf.int64)[0]
        summed = tf.math.unsorted_segment_sum(folded_keys, segment, n_targets)
        merged = tf.math.unsorted_segment_sum(weight, segment, n_targets)
        self.keys.scatter_nd_update(targets[:, None], self._merge(targets, summed, merged))

    def _merge(self, slots: tf.Tensor, summed: tf.Tensor, merged: tf.Tensor) -> tf.Tensor:
        """New keys of `slots` after absorbing `summed` (the sum of `merged` unit keys each).

        The paper: normalise(K + sum of q). running_mean: normalise(c * K + sum of q), so
        a slot that already holds c examples moves like a running mean.
        """
        old_keys = tf.gather(self.keys, slots)
        if self.counts is None:
            return unit_rows(old_keys + summed, axis=1)
        old_counts = tf.gather(self.counts, slots)
        self.counts.scatter_nd_update(slots[:, None], old_counts + merged)
        return unit_rows(tf.cast(old_counts, summed.dtype)[:, None] * old_keys + summed, axis=1)

    def _merges(self, v: tf.Tensor, before: LookupResult) -> tf.Tensor:
        """[B] bool: which items merge into their answering slot (the others are inserted).

        The paper: every hit. merge_threshold: a hit whose similarity to the answering slot
        is below the threshold is inserted instead, so one label can keep several modes.
        fill_first: while the memory has an empty slot for every item of the batch, no hit
        merges (every item is inserted), so the memory holds examples until it is full.
        """
        hit = tf.equal(before.labels, v)
        if self.fill_first:
            room = tf.math.count_nonzero(read_whole(self.values) < 0) >= tf.shape(v, out_type=tf.int64)[0]
            hit = hit & ~room
        if self.merge_threshold <= -1.0:  # every similarity is >= -1: the paper, without a comparison
            return hit
        return hit & (before.similarity >= tf.constant(self.merge_threshold, before.similarity.dtype))

    def _merge_slots(self, unit: tf.Tensor, v: tf.Tensor, before: LookupResult,
                     merges: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """([B] bool, [B] int64): which items merge, and the slot each merges into.

        The paper: the items `_merges` picks, each into its answering slot. keep_classes: once
        the batch no longer fits the empty slots, a miss whose label holds a slot merges into
        that label's most similar slot too (memory_module.keep), instead of taking a victim.
        """
        if not self.keep_classes:
            return merges, before.slot
        values = read_whole(self.values)
        own = nearest_of_label(unit[None], v[None], read_whole(self.keys)[None], values[None])[0]
        full = tf.math.count_nonzero(values < 0) < tf.shape(v, out_type=tf.int64)[0]
        kept = ~merges & (own >= 0) & full
        return merges | kept, tf.where(kept, own, before.slot)
