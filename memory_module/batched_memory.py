"""The Kaiser memory for R independent repeats at once: memory_module.memory's rule, batched.

State: the R memories' slots side by side, repeat r owning the rows r*N .. r*N + N - 1 of
keys [R*N, d], values, last_written and counts (running_mean) [R*N]; one clock (every
call writes every repeat); recent_slot [R, L] (-1 past a repeat's own table) with each
repeat's own table length in recent_size [R] (its footprint); one Philox noise generator
state per repeat (rng_state [R, 3], memory_module.philox). Slot numbers in answers are
each repeat's own (0 .. N-1).

The rule is KaiserMemory's, step for step; it is restated here because every step must
keep repeats apart: items of one call are flattened with global slot numbers (r*N + slot),
so merges (tf.unique over slots), segment sums and scatters act on each repeat's rows in
the order a single memory would, and per-repeat counts (misses, victims) are masks over
the repeat axis. query_projection has no batched form (each repeat would train its own
matrix): run it one repeat at a time.
"""

from __future__ import annotations

import tensorflow as tf

from memory_module.batched_base import BatchedMemoryBase, grow_columns, repeat_index, rows_where
from memory_module.keep import nearest_of_label
from memory_module.labels import UNKNOWN_LABEL
from memory_module.memory import EVICTIONS, ON_EVICT
from memory_module.readout import LookupResult, Pool, batched_answer, batched_pool, read_whole, similarities, unit_rows
from memory_module.validation import (
    DEFAULT_LABEL_LIMIT,
    check_choice,
    check_dtype,
    check_non_negative,
    check_positive_int,
    check_similarity,
)
from memory_module.ward import fold_priority, fold_target_scores


class BatchedKaiserMemory(BatchedMemoryBase):
    """R KaiserMemory states with the same settings; `seed` seeds every repeat until `reset(seeds)`."""

    def __init__(self, repeats: int, memory_size: int, key_dim: int, choose_k: int = 256, alpha: float = 0.1,
                 age_noise: float = 8.0, seed: int = 0, vote_k: int = 1, running_mean: bool = False,
                 query_projection: bool = False, merge_threshold: float = -1.0, eviction: str = "oldest",
                 on_evict: str = "drop", fill_first: bool = False, keep_classes: bool = False, dtype=tf.float32,
                 label_limit: int = DEFAULT_LABEL_LIMIT, name: str | None = None) -> None:
        super().__init__(repeats, name=name)
        if query_projection:
            raise ValueError("query_projection=True has no batched form (each repeat trains its own projection); "
                             "run such a memory one repeat at a time")
        self.memory_size = check_positive_int("memory_size", memory_size)
        self.key_dim = check_positive_int("key_dim", key_dim)
        self.label_limit = check_positive_int("label_limit", label_limit)
        self.alpha = check_non_negative("alpha", alpha)
        self.age_noise = check_non_negative("age_noise", age_noise)
        self.dtype = check_dtype(dtype)
        self.running_mean = bool(running_mean)
        self.merge_threshold = check_similarity("merge_threshold", merge_threshold)
        self.eviction = check_choice("eviction", eviction, EVICTIONS)
        self.on_evict = check_choice("on_evict", on_evict, ON_EVICT)
        self.fill_first = bool(fill_first)
        self.keep_classes = bool(keep_classes)
        self.choose_k = check_positive_int("choose_k", choose_k)
        self.vote_k = min(check_positive_int("vote_k", vote_k), self.choose_k, self.memory_size)

        r, d, empty = self.repeats, self.key_dim, tf.constant(UNKNOWN_LABEL, tf.int64)
        self._add_size()
        self.keys = self._add_state("keys", lambda: tf.zeros([r * self.memory_size, d], self.dtype), shape=[None, d])
        self.values = self._add_state("values", lambda: tf.fill([r * self.memory_size], empty), shape=[None])
        self.last_written = self._add_state("last_written", lambda: tf.zeros([r * self.memory_size], tf.int64),
                                            shape=[None])
        self.clock = self._add_state("clock", lambda: tf.constant(0, tf.int64))
        self.recent_slot = self._add_state("recent_slot", lambda: tf.zeros([r, 0], tf.int64), shape=[r, None])
        self.recent_size = self._add_state("recent_size", lambda: tf.zeros([r], tf.int64))
        self.counts = (self._add_state("counts", lambda: tf.zeros([r * self.memory_size], tf.int64), shape=[None])
                       if self.running_mean else None)
        self._add_generators(seed)

    # ------------------------------------------------------------------ views

    def _keys3(self) -> tf.Tensor:
        return tf.reshape(read_whole(self.keys), [self.repeats, -1, self.key_dim])

    def _values2(self) -> tf.Tensor:
        return tf.reshape(read_whole(self.values), [self.repeats, -1])

    def _offsets(self) -> tf.Tensor:
        """[R, 1]: the first global row of each repeat."""
        return tf.range(self.repeats, dtype=tf.int64)[:, None] * self._n()

    # ------------------------------------------------------------------ reading

    def lookup(self, queries, normalized: bool = False) -> LookupResult:
        """Answers [R, B] for queries [R, B, d]; changes nothing."""
        unit = self._unit_queries(queries, normalized)
        return batched_answer(self._pool(unit, self.vote_k), self.vote_k)

    def __call__(self, queries, labels=None, update: bool = False, normalized: bool = False) -> dict:
        """As KaiserMemory.__call__, per repeat: labels, similarity, slot [R, B]; loss [R] (each repeat's batch mean)."""
        if labels is None:
            if update:
                raise ValueError("update=True needs labels: the memory cannot write without them")
            return self.lookup(queries, normalized)._asdict()
        unit = self._unit_queries(queries, normalized)
        v = self._check_labels(labels, unit)
        pool = self._pool(unit)
        result = batched_answer(pool, self.vote_k)
        out = result._asdict()
        out["loss"] = self._loss(unit, v, pool)
        if update:
            self._write(unit, v, result)
        return out

    def _pool(self, unit: tf.Tensor, k: int | None = None) -> Pool:
        """KaiserMemory._pool per repeat: the choose_k pool, or the vote_k a lookup reads."""
        pool_k = tf.cast(tf.minimum(tf.constant(self.choose_k, tf.int64), self._n()), tf.int32)
        return batched_pool(unit, self._keys3(), self._values2(), k or pool_k)

    # ------------------------------------------------------------------ size

    def _slots(self) -> tf.Tensor:
        return tf.math.count_nonzero(self._values2() >= 0, axis=1)

    def _bytes(self) -> tf.Tensor:
        per_slot = self.key_dim * self.dtype.size + 8 + 8 + (8 if self.counts is not None else 0)  # key, value, age, count
        fixed = self._n() * per_slot + 8 + self._generator_bytes()  # + the clock
        return fixed + 8 * self.recent_size.read_value()

    # ------------------------------------------------------------------ the rule (KaiserMemory's, per repeat)

    def _recent_slot_for(self, v: tf.Tensor) -> tf.Tensor:
        table = tf.concat([self.recent_slot.read_value(), tf.fill([self.repeats, 1], tf.constant(-1, tf.int64))], axis=1)
        size = tf.shape(table, out_type=tf.int64)[1] - 1
        slot = tf.gather(table, tf.where(v < size, v, size), batch_dims=1)
        holds = tf.gather(self._values2(), tf.maximum(slot, 0), batch_dims=1) == v
        return tf.where((slot >= 0) & holds, slot, tf.constant(-1, tf.int64))

    def _loss(self, unit: tf.Tensor, v: tf.Tensor, pool: Pool) -> tf.Tensor:
        minus_inf = tf.constant(-float("inf"), pool.similarity.dtype)
        positive = tf.equal(pool.values, v[:, :, None])
        negative = (pool.values >= 0) & ~positive
        pos_position = tf.argmax(tf.where(positive, pool.similarity, minus_inf), axis=2, output_type=tf.int64)
        neg_position = tf.argmax(tf.where(negative, pool.similarity, minus_inf), axis=2, output_type=tf.int64)
        has_pool_positive = tf.reduce_any(positive, axis=2)
        has_negative = tf.reduce_any(negative, axis=2)
        recent = self._recent_slot_for(v)
        pos_slot = tf.where(has_pool_positive, tf.gather(pool.slots, pos_position, batch_dims=2), recent)
        has_positive = has_pool_positive | (recent >= 0)
        neg_slot = tf.gather(pool.slots, neg_position, batch_dims=2)
        keys = self._keys3()
        pos_key = tf.gather(keys, tf.maximum(pos_slot, 0), batch_dims=1)
        neg_key = tf.gather(keys, tf.maximum(neg_slot, 0), batch_dims=1)
        pos_sim = tf.reduce_sum(unit * pos_key, axis=2)
        neg_sim = tf.reduce_sum(unit * neg_key, axis=2)
        zero = tf.zeros_like(pos_sim)
        margin = self.alpha + tf.where(has_negative, neg_sim, zero) - tf.where(has_positive, pos_sim, zero)
        per_item = tf.where(has_positive | has_negative, tf.nn.relu(margin), zero)
        return tf.reduce_mean(per_item, axis=1)

    def _noisy_ages(self, excluded: tf.Tensor) -> tf.Tensor:
        """[R, N] float64 noisy ages, -inf at the `excluded` global rows (KaiserMemory._noisy_ages per repeat)."""
        ages = self.clock.read_value() - tf.reshape(read_whole(self.last_written), [self.repeats, -1])
        noisy_age = tf.cast(ages, tf.float64)
        if self.age_noise > 0:
            noise = self._uniform(self._n(), -self.age_noise, self.age_noise, dtype=tf.float32)
            noisy_age += tf.cast(noise, tf.float64)
        flat = tf.tensor_scatter_nd_update(
            tf.reshape(noisy_age, [-1]), excluded[:, None],
            tf.fill(tf.shape(excluded), tf.constant(-float("inf"), tf.float64)),
        )
        return tf.reshape(flat, [self.repeats, -1])

    def _victims(self, excluded: tf.Tensor, count: tf.Tensor) -> tf.Tensor:
        """Global rows each repeat's inserts overwrite: `count[r]` distinct rows of repeat r, repeat-major."""
        noisy_age = self._noisy_ages(excluded)
        most = tf.cast(tf.reduce_max(count), tf.int32)
        if self.eviction == "oldest":
            # top_k puts the lower index first among equals, so a longer prefix starts with the shorter one.
            _, order = tf.math.top_k(noisy_age, k=most, sorted=True)
            order = tf.cast(order, tf.int64)
        else:
            if self.eviction == "ward":  # the fold priority replaces the age (KaiserMemory._victims)
                counts = None if self.counts is None else tf.reshape(read_whole(self.counts), [self.repeats, -1])
                noisy_age = fold_priority(noisy_age, self._keys3(), self._values2(), counts)
            order = self._balanced_order(noisy_age, excluded)[:, :most]
        take = tf.range(tf.cast(most, tf.int64))[None, :] < count[:, None]
        return rows_where(tf.reshape(order + self._offsets(), [-1]), tf.reshape(take, [-1]))

    def _balanced_order(self, noisy_age: tf.Tensor, excluded: tf.Tensor) -> tf.Tensor:
        """[R, N] every repeat's slots in class_balanced victim order (KaiserMemory._victims' sort, per repeat)."""
        r, n = self.repeats, self._n()
        values = read_whole(self.values)
        # One label id per (repeat, value): a label of one repeat is never grouped with another's.
        repeat_of_row = tf.reshape(repeat_index(r, n), [-1])
        _, label_id = tf.unique(values + 1 + repeat_of_row * (self.label_limit + 1))
        n_labels = tf.reduce_max(label_id) + 1
        held = tf.math.unsorted_segment_sum(tf.ones_like(label_id, tf.int64), label_id, n_labels)
        by_age = tf.cast(tf.argsort(noisy_age, axis=1, direction="DESCENDING", stable=True), tf.int64)  # [R, N]
        by_age_global = tf.reshape(by_age + self._offsets(), [-1])
        by_label_then_age = tf.gather(by_age_global, tf.argsort(tf.gather(label_id, by_age_global), stable=True))
        first_of_label = tf.cumsum(held, exclusive=True)
        sorted_label = tf.gather(label_id, by_label_then_age)
        rank_sorted = tf.range(r * n, dtype=tf.int64) - tf.gather(first_of_label, sorted_label)
        rank = tf.scatter_nd(by_label_then_age[:, None], rank_sorted, [r * n])
        remaining = tf.gather(held, label_id) - rank
        remaining = tf.where(values >= 0, remaining, n + 1)  # empty first
        is_excluded = tf.scatter_nd(excluded[:, None], tf.ones_like(excluded, tf.bool), [r * n])
        remaining = tf.reshape(tf.where(is_excluded, tf.constant(-1, tf.int64), remaining), [r, n])
        by_remaining = tf.argsort(tf.gather(remaining, by_age, batch_dims=1), axis=1, direction="DESCENDING", stable=True)
        return tf.gather(by_age, by_remaining, batch_dims=1)

    def _release(self, victims: tf.Tensor) -> None:
        """KaiserMemory._release per repeat: each filled victim folds into its label's nearest other slot."""
        if self.on_evict == "drop":
            return
        n = self._n()
        values = read_whole(self.values)
        victim_keys = tf.gather(self.keys, victims)
        victim_values = tf.gather(values, victims)
        victim_repeat = victims // n
        is_victim = tf.scatter_nd(victims[:, None], tf.ones_like(victims, tf.bool), [self.repeats * n])
        is_victim = tf.gather(tf.reshape(is_victim, [self.repeats, -1]), victim_repeat)
        repeat_values = tf.gather(self._values2(), victim_repeat)  # [M, N]
        allowed = tf.equal(repeat_values, victim_values[:, None]) & (victim_values[:, None] >= 0) & ~is_victim
        # Against every repeat's keys ([M, R*N]; a gather of each victim's repeat would copy
        # M x N keys), then each victim's own repeat's N columns: the same dot products.
        similarity = similarities(victim_keys[:, None, :], read_whole(self.keys)[None])[:, 0]
        own_columns = victim_repeat[:, None] * n + tf.range(n, dtype=tf.int64)[None, :]
        similarity = tf.gather(similarity, own_columns, batch_dims=1)  # [M, N]
        if self.eviction == "ward":
            counts = tf.ones_like(values) if self.counts is None else read_whole(self.counts)
            own_counts = tf.gather(tf.reshape(counts, [self.repeats, -1]), victim_repeat)  # [M, N]
            similarity = fold_target_scores(similarity, tf.gather(counts, victims), own_counts)
        similarity = tf.where(allowed, similarity, tf.constant(-float("inf"), similarity.dtype))
        folds = tf.reduce_any(allowed, axis=1)
        target = tf.argmax(similarity, axis=1, output_type=tf.int64) + victim_repeat * n
        target = rows_where(target, folds)
        weight = tf.ones_like(victims) if self.counts is None else tf.gather(self.counts, victims)
        weight = rows_where(weight, folds)
        folded_keys = rows_where(victim_keys, folds) * tf.cast(weight, victim_keys.dtype)[:, None]
        targets, segment = tf.unique(target)
        n_targets = tf.shape(targets, out_type=tf.int64)[0]
        summed = tf.math.unsorted_segment_sum(folded_keys, segment, n_targets)
        merged = tf.math.unsorted_segment_sum(weight, segment, n_targets)
        self.keys.scatter_nd_update(targets[:, None], self._merge(targets, summed, merged))

    def _merge(self, rows: tf.Tensor, summed: tf.Tensor, merged: tf.Tensor) -> tf.Tensor:
        old_keys = tf.gather(self.keys, rows)
        if self.counts is None:
            return unit_rows(old_keys + summed, axis=1)
        old_counts = tf.gather(self.counts, rows)
        self.counts.scatter_nd_update(rows[:, None], old_counts + merged)
        return unit_rows(tf.cast(old_counts, summed.dtype)[:, None] * old_keys + summed, axis=1)

    def _merges(self, v: tf.Tensor, before: LookupResult) -> tf.Tensor:
        hit = tf.equal(before.labels, v)
        if self.fill_first:  # per repeat: no hit merges while the batch fits its empty slots
            room = tf.math.count_nonzero(self._values2() < 0, axis=1) >= tf.shape(v, out_type=tf.int64)[1]
            hit = hit & ~room[:, None]
        if self.merge_threshold <= -1.0:
            return hit
        return hit & (before.similarity >= tf.constant(self.merge_threshold, before.similarity.dtype))

    def _merge_slots(self, unit: tf.Tensor, v: tf.Tensor, before: LookupResult,
                     merges: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """KaiserMemory._merge_slots per repeat: [R, B] merges and each repeat's own slot numbers."""
        if not self.keep_classes:
            return merges, before.slot
        values = self._values2()
        own = nearest_of_label(unit, v, self._keys3(), values)  # [R, B]
        full = tf.math.count_nonzero(values < 0, axis=1) < tf.shape(v, out_type=tf.int64)[1]
        kept = ~merges & (own >= 0) & full[:, None]
        return merges | kept, tf.where(kept, own, before.slot)

    def _write(self, unit: tf.Tensor, v: tf.Tensor, before: LookupResult) -> None:
        r, n = self.repeats, self._n()
        batch = tf.shape(v, out_type=tf.int64)[1]
        now = self.clock + 1
        merges, merge_slots = self._merge_slots(unit, v, before, self._merges(v, before))  # [R, B] each
        flat_merges = tf.reshape(merges, [-1])
        flat_unit = tf.reshape(unit, [-1, self.key_dim])
        flat_v = tf.reshape(v, [-1])
        positions = tf.range(r * batch)

        # Merges: all the items merging into one slot merge at once (order-free).
        hit_positions = rows_where(positions, flat_merges)
        hit_local = rows_where(tf.reshape(merge_slots, [-1]), flat_merges)
        hit_slots, segment = tf.unique(rows_where(tf.reshape(merge_slots + self._offsets(), [-1]), flat_merges))
        n_hit_slots = tf.shape(hit_slots, out_type=tf.int64)[0]
        summed = tf.math.unsorted_segment_sum(tf.gather(flat_unit, hit_positions), segment, n_hit_slots)
        merged = tf.math.unsorted_segment_sum(tf.ones_like(segment, tf.int64), segment, n_hit_slots)
        self.keys.scatter_nd_update(hit_slots[:, None], self._merge(hit_slots, summed, merged))
        self.last_written.scatter_nd_update(hit_slots[:, None], tf.fill(tf.shape(hit_slots), now))

        # Inserts: per repeat, the last min(misses, free of this batch's merges) misses take distinct victims.
        hits_per_repeat = tf.math.unsorted_segment_sum(tf.ones_like(hit_slots), hit_slots // n, r)
        misses = tf.cast(~merges, tf.int64)
        n_miss = tf.reduce_sum(misses, axis=1)
        n_store = tf.minimum(n_miss, n - hits_per_repeat)
        stored = (misses > 0) & (n_miss[:, None] - tf.cumsum(misses, axis=1) < n_store[:, None])
        stored_positions = rows_where(positions, tf.reshape(stored, [-1]))
        miss_slots = self._victims(hit_slots, n_store)
        self._release(miss_slots)
        self.keys.scatter_nd_update(miss_slots[:, None], tf.gather(flat_unit, stored_positions))
        self.values.scatter_nd_update(miss_slots[:, None], tf.gather(flat_v, stored_positions))
        self.last_written.scatter_nd_update(miss_slots[:, None], tf.fill(tf.shape(miss_slots), now))
        if self.counts is not None:
            self.counts.scatter_nd_update(miss_slots[:, None], tf.ones_like(miss_slots))
        self.clock.assign(now)

        # Recent slot per (repeat, label): the last item of the batch written for that label wins.
        written_positions = tf.concat([hit_positions, stored_positions], axis=0)
        written_slots = tf.concat([hit_local, miss_slots % n], axis=0)
        written_repeat = written_positions // batch
        label_keys = written_repeat * self.label_limit + tf.gather(flat_v, written_positions)
        labels, label_segment = tf.unique(label_keys)
        last = tf.math.unsorted_segment_max(written_positions, label_segment, tf.shape(labels)[0])
        slot_of_position = tf.scatter_nd(written_positions[:, None], written_slots, [r * batch])
        needed = tf.reduce_max(v, axis=1) + 1
        self.recent_size.assign(tf.maximum(self.recent_size, needed))
        grow_columns(self.recent_slot, tf.reduce_max(needed), -1, doubling=False)
        where = tf.stack([labels // self.label_limit, labels % self.label_limit], axis=1)
        self.recent_slot.scatter_nd_update(where, tf.gather(slot_of_position, last))
