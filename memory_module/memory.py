"""The life-long key-value memory of Kaiser, Nachum, Roy and Bengio (ICLR 2017), in TF2.

Reading, scoring and writing are separate methods (as in Sonnet's
VectorQuantizerEMA): `lookup` and `loss` never change the state, `write` is the
only method that does, and `__call__` does all three with writing explicit.

State (all non-trainable tf.Variables, saved by tf.train.Checkpoint):
  keys         [N, d]  unit rows (zero rows while empty)
  values       [N]     int64 dense label ids, UNKNOWN_LABEL (-1) for an empty slot
  last_written [N]     int64 write-call number when each slot was last written
  clock        []      int64 number of write calls so far
  recent_slot  [L]     int64 slot most recently written for each label id (-1: none);
                       grows to (largest label id written) + 1, bounded by `label_limit`
  counts       [N]     int64 examples merged into each slot (only with running_mean=True)
  noise RNG    a seeded tf.random.Generator (its state is saved too)

The age of slot i is `clock - last_written[i]`. This is exactly the paper's
"every other age grows by one, written slots go to zero", but a write only
touches the rows it writes: no O(N) age update, no copy of the memory.

Rules (defaults = the paper):
  lookup  cosine similarity of the unit query to every filled key; a pool of the
          `choose_k` best (capped at N); the answer is the value of the best slot.
          Empty slots never win; an empty memory answers UNKNOWN_LABEL, slot -1,
          similarity -inf.
  loss    per item, p = best pool slot with the true label, b = best pool slot with
          another label; loss = max(0, q.K[b] - q.K[p] + alpha), batch mean.
          If no pool slot has the true label, p = the slot most recently written for
          that label, if it still holds it. A missing p or b contributes similarity 0
          (the TF1 code does the same): only-b gives max(0, q.K[b] + alpha), only-p
          gives max(0, alpha - q.K[p]); an item with neither contributes 0.
          Gradients reach the queries (through their normalisation), never the keys.
  write   each item is looked up against the memory as it was before the call.
          Hit (answer == label): K[n1] <- normalise(K[n1] + q), age 0. Several hits
          on one slot in one batch merge together: normalise(K[n1] + q1 + q2 + ...),
          which does not depend on their order in the batch.
          Miss: q and its label go into the oldest slot, argmax(age + U[-age_noise,
          age_noise]), age 0. Misses of one batch take distinct slots: the slots
          merged by this batch's hits are excluded, and the misses, in batch order,
          take the oldest, second oldest, ... slot. If there are more misses than
          such slots (memory smaller than the batch), only the last misses in batch
          order are written, as if the batch had been written one item at a time
          (a warning says so, once).
          Every slot not written grows one year older.
  Reference code (off by default): `query_projection=True` multiplies every query by a
  trainable [d, d] matrix before it is normalised, for lookup, loss and write alike,
  as the TF1 code of Kaiser et al. (tensorflow/models,
  research/learning_to_remember_rare_events/memory.py) does; the paper's text does not
  describe it. The matrix starts from a truncated normal with std 0.01 drawn from the
  memory's seed (again on every `reset`), is `trainable_variables`' only entry, and
  is trained by whoever differentiates the loss (the fine-tuning embedder's optimizer).
  Its scale does not matter (queries are normalised after it); at the start it is a
  random linear map, so even a frozen memory with it on compares projected keys.
  Beyond the paper (off by default), each option replaces one named piece of the rule
  (docs/MEMORY_POLICIES.md says why, where each comes from, and what it does to the loss):
    readout  `vote_k > 1`: a similarity-weighted vote of the vote_k best slots
             (readout.answer) instead of the nearest slot.
    _merge   `running_mean=True`: a count per slot, merges as normalise(count * K + sum of q),
             so a slot that has absorbed c examples moves like a running mean.
    _merges  `merge_threshold=t`: a hit merges only when its similarity to the answering
             slot is >= t; a hit further away is inserted like a miss (several modes per label).
    _victims `eviction="class_balanced"`: inserts take empty slots first, then the oldest
             slot of the label holding the most slots (counting this batch's earlier picks as
             gone), instead of the globally oldest slot.
    _release `on_evict="merge"`: an evicted key is not dropped but merged (with `_merge`)
             into the most similar other slot of its label, when its label has one.
    ward     `eviction="ward"`: class_balanced, folding the cheapest count-weighted pair (memory_module.ward).
    fill     `fill_first=True`: hits are inserted, not merged, while the batch fits the empty slots.
    keep     `keep_classes=True`: once the batch no longer fits the empty slots, a miss whose label
             holds a slot merges into that label's nearest slot instead of evicting (memory_module.keep).
  The loss code is the same under every option; the options change only which keys the
  pool and the recent-slot positive find.
"""

from __future__ import annotations

import tensorflow as tf

from memory_module.base import MemoryBase, grow_rows, nbytes
from memory_module.labels import UNKNOWN_LABEL
from memory_module.readout import LookupResult, Pool, answer, nearest_pool, read_whole, unit_rows
from memory_module.validation import (
    DEFAULT_LABEL_LIMIT,
    check_choice,
    check_dtype,
    check_labels,
    check_non_negative,
    check_positive_int,
    check_queries,
    check_similarity,
)
from memory_module.write_policy import WritePolicy

EVICTIONS = ("oldest", "class_balanced", "ward")
ON_EVICT = ("drop", "merge")


class KaiserMemory(WritePolicy, MemoryBase):
    """Key-value memory for k-shot learning; see the module docstring for the exact rules.

    memory_size: N, the number of slots (>= 1; fixed; millions are fine).
    key_dim:     d, the length of a query/key.
    choose_k:    size of the nearest-slot pool used for the answer and the loss (capped at N).
    alpha:       margin of the loss (>= 0).
    age_noise:   half-width of the uniform noise added to ages when picking the oldest slot
                 (>= 0; 0 switches it off).
    seed:        seed of the noise generator.
    vote_k:      1 = the paper's nearest slot; >1 = similarity-weighted vote (beyond the paper).
    running_mean: count-weighted merges (beyond the paper).
    query_projection: a trainable [d, d] query projection, as the reference TF1 code.
    merge_threshold: a cosine similarity in [-1, 1] below which a hit is inserted instead of
                 merged (beyond the paper); -1, the default, lets every hit merge (the paper).
    eviction:    "oldest" (the paper), "class_balanced" or "ward" (beyond the paper).
    on_evict:    "drop" (the paper) or "merge" the evicted key into its label's nearest slot.
    fill_first:  insert hits while the batch fits the empty slots (beyond the paper).
    keep_classes: when full, merge a miss of a held label into its nearest slot (beyond the paper).
    dtype:       tf.float32 or tf.float64, for keys and queries.
    label_limit: label ids must be < label_limit (bounds the recent-slot table).
    """

    def __init__(
        self,
        memory_size: int,
        key_dim: int,
        choose_k: int = 256,
        alpha: float = 0.1,
        age_noise: float = 8.0,
        seed: int = 0,
        vote_k: int = 1,
        running_mean: bool = False,
        query_projection: bool = False,
        merge_threshold: float = -1.0,
        eviction: str = "oldest",
        on_evict: str = "drop",
        fill_first: bool = False,
        keep_classes: bool = False,
        dtype=tf.float32,
        label_limit: int = DEFAULT_LABEL_LIMIT,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.memory_size = check_positive_int("memory_size", memory_size)
        self.key_dim = check_positive_int("key_dim", key_dim)
        self.choose_k = check_positive_int("choose_k", choose_k)
        self.vote_k = check_positive_int("vote_k", vote_k)
        self.label_limit = check_positive_int("label_limit", label_limit)
        self.alpha = check_non_negative("alpha", alpha)
        self.age_noise = check_non_negative("age_noise", age_noise)
        self.dtype = check_dtype(dtype)
        self.running_mean = bool(running_mean)
        self.query_projection = bool(query_projection)
        self.merge_threshold = check_similarity("merge_threshold", merge_threshold)
        self.eviction = check_choice("eviction", eviction, EVICTIONS)
        self.on_evict = check_choice("on_evict", on_evict, ON_EVICT)
        self.fill_first = bool(fill_first)
        self.keep_classes = bool(keep_classes)
        self.pool_k = min(self.choose_k, self.memory_size)
        self.vote_k = min(self.vote_k, self.pool_k)

        n, empty = self.memory_size, tf.constant(UNKNOWN_LABEL, tf.int64)
        self.keys = self._add_state("keys", lambda: tf.zeros([n, self.key_dim], self.dtype))
        self.values = self._add_state("values", lambda: tf.fill([n], empty))
        self.last_written = self._add_state("last_written", lambda: tf.zeros([n], tf.int64))
        self.clock = self._add_state("clock", lambda: tf.constant(0, tf.int64))
        self.recent_slot = self._add_state("recent_slot", lambda: tf.zeros([0], tf.int64), shape=[None])
        # running_mean's merge needs how many examples each slot has absorbed; nothing else does.
        self.counts = self._add_state("counts", lambda: tf.zeros([n], tf.int64)) if self.running_mean else None
        self.noise = self._add_generator("noise", seed)  # the age noise; reset(seed=...) restarts it
        # A learned weight, not state: reset redraws it from the seed, save/load and the footprint leave it.
        self.projection = None
        if self.query_projection:
            with self.name_scope:
                self.projection = tf.Variable(self._initial_projection(), trainable=True, name="query_projection")

    def _initial_projection(self) -> tf.Tensor:
        # The reference code's initialiser: truncated normal, mean 0, std 0.01 (stream 1 of the seed;
        # the age noise uses the seed's generator).
        return tf.random.stateless_truncated_normal([self.key_dim, self.key_dim], seed=[self.seed, 1],
                                                    stddev=0.01, dtype=self.dtype)

    def _unit(self, q: tf.Tensor) -> tf.Tensor:
        """The normalised (and, with query_projection, first projected) queries."""
        if self.projection is not None:
            q = tf.matmul(q, self.projection)
        return unit_rows(q, axis=1)

    def get_config(self) -> dict:
        return {
            "memory_size": self.memory_size,
            "key_dim": self.key_dim,
            "choose_k": self.choose_k,
            "alpha": self.alpha,
            "age_noise": self.age_noise,
            "seed": self.seed,
            "vote_k": self.vote_k,
            "running_mean": self.running_mean,
            "query_projection": self.query_projection,
            "merge_threshold": self.merge_threshold,
            "eviction": self.eviction,
            "on_evict": self.on_evict,
            "fill_first": self.fill_first,
            "keep_classes": self.keep_classes,
            "dtype": self.dtype.name,
            "label_limit": self.label_limit,
        }

    # ------------------------------------------------------------------ reading

    def lookup(self, queries) -> LookupResult:
        """Answer each query [B, d] from the memory; changes nothing."""
        q = check_queries(queries, self.key_dim, self.dtype)
        return answer(self._pool(self._unit(q), self.vote_k), self.vote_k)

    def loss(self, queries, labels) -> tf.Tensor:
        """Scalar margin loss of the paper (batch mean); changes nothing.

        Differentiable with respect to `queries` only.
        """
        q = check_queries(queries, self.key_dim, self.dtype)
        v = check_labels(labels, q.shape[0], self.label_limit)
        unit = self._unit(q)
        return self._loss(unit, v, self._pool(tf.stop_gradient(unit)))

    def write(self, queries, labels) -> LookupResult:
        """Store a labelled batch (merge on hit, insert on miss, ages).

        Returns the lookup answers the memory gave before this write.
        """
        q = check_queries(queries, self.key_dim, self.dtype)
        v = check_labels(labels, q.shape[0], self.label_limit)
        unit = tf.stop_gradient(self._unit(q))
        before = answer(self._pool(unit, self.vote_k), self.vote_k)
        self._write(unit, v, before)
        return before

    def __call__(self, queries, labels=None, update: bool = False) -> dict:
        """Lookup, plus the loss when `labels` are given, plus a write when `update=True`.

        Returns a dict with labels, similarity, slot (answers before any write) and,
        when labels are given, loss. The pool is computed once for all three.
        """
        q = check_queries(queries, self.key_dim, self.dtype)
        if labels is None:
            if update:
                raise ValueError("update=True needs labels: the memory cannot write without them")
            return self.lookup(q)._asdict()
        v = check_labels(labels, q.shape[0], self.label_limit)
        unit = self._unit(q)
        pool = self._pool(tf.stop_gradient(unit))
        result = answer(pool, self.vote_k)
        out = result._asdict()
        out["loss"] = self._loss(unit, v, pool)
        if update:
            self._write(tf.stop_gradient(unit), v, result)
        return out

    # ------------------------------------------------------------------ bookkeeping

    def reset(self, seed: int | None = None) -> None:
        """Empty every slot, zero the ages and the clock, restart the noise (and the projection) from the seed.

        With `seed`, they restart from that seed instead (and `seed` becomes the memory's
        seed), so one memory can serve many independently seeded repeats and end in
        exactly the state of a memory built fresh with that seed.
        """
        super().reset(seed)
        if self.projection is not None:
            self.projection.assign(self._initial_projection())

    @property
    def ages(self) -> tf.Tensor:
        """[N] int64 ages: write calls since each slot was last written (or since reset)."""
        return self.clock.read_value() - read_whole(self.last_written)

    def _footprint_parts(self) -> dict[str, tf.Tensor]:
        state = self.state_variables()
        bookkeeping = [nbytes(v) for name, v in state.items() if name not in ("keys", "values", "last_written")]
        return {
            "keys": nbytes(self.keys),
            "values": nbytes(self.values),
            "ages": nbytes(self.last_written),
            "bookkeeping": tf.add_n(bookkeeping),
        }

    # ------------------------------------------------------------------ the rule

    def _pool(self, unit: tf.Tensor, k: int | None = None) -> Pool:
        """The `k` nearest filled slots (the loss's choose_k pool by default). A lookup asks for
        vote_k only: the answer reads no further, and top_k's first entries do not depend on k."""
        return nearest_pool(unit, self.keys, self.values, k or self.pool_k)

    def _recent_slot_for(self, v: tf.Tensor) -> tf.Tensor:
        """[B] slot most recently written for each label that still holds it, else -1."""
        table = tf.concat([read_whole(self.recent_slot), tf.constant([-1], tf.int64)], axis=0)
        size = tf.shape(table, out_type=tf.int64)[0] - 1
        slot = tf.gather(table, tf.where(v < size, v, size))
        holds = tf.gather(self.values, tf.maximum(slot, 0)) == v
        return tf.where((slot >= 0) & holds, slot, tf.constant(-1, tf.int64))

    def _loss(self, unit: tf.Tensor, v: tf.Tensor, pool: Pool) -> tf.Tensor:
        minus_inf = tf.constant(-float("inf"), pool.similarity.dtype)
        positive = tf.equal(pool.values, v[:, None])
        negative = (pool.values >= 0) & ~positive
        pos_position = tf.argmax(tf.where(positive, pool.similarity, minus_inf), axis=1, output_type=tf.int64)
        neg_position = tf.argmax(tf.where(negative, pool.similarity, minus_inf), axis=1, output_type=tf.int64)
        has_pool_positive = tf.reduce_any(positive, axis=1)
        has_negative = tf.reduce_any(negative, axis=1)
        recent = self._recent_slot_for(v)
        pos_slot = tf.where(has_pool_positive, tf.gather(pool.slots, pos_position, batch_dims=1), recent)
        has_positive = has_pool_positive | (recent >= 0)
        neg_slot = tf.gather(pool.slots, neg_position, batch_dims=1)
        # Gathers of the two rows, not a read of all keys; the keys never receive a gradient.
        pos_key = tf.stop_gradient(tf.gather(self.keys, tf.maximum(pos_slot, 0)))
        neg_key = tf.stop_gradient(tf.gather(self.keys, tf.maximum(neg_slot, 0)))
        pos_sim = tf.reduce_sum(unit * pos_key, axis=1)
        neg_sim = tf.reduce_sum(unit * neg_key, axis=1)
        zero = tf.zeros_like(pos_sim)
        margin = self.alpha + tf.where(has_negative, neg_sim, zero) - tf.where(has_positive, pos_sim, zero)
        per_item = tf.where(has_positive | has_negative, tf.nn.relu(margin), zero)
        return tf.reduce_mean(per_item)

    def _write(self, unit: tf.Tensor, v: tf.Tensor, before: LookupResult) -> None:
        self._warn_if_outgrown(unit, v, self.memory_size)
        now = self.clock + 1
        merges, merge_slots = self._merge_slots(unit, v, before, self._merges(v, before))
        positions = tf.range(tf.shape(v, out_type=tf.int64)[0])

        # Merges: all the items merging into one slot merge at once (order-free).
        hit_positions = tf.boolean_mask(positions, merges)
        hit_slots, segment = tf.unique(tf.boolean_mask(merge_slots, merges))
        n_hit_slots = tf.shape(hit_slots, out_type=tf.int64)[0]
        summed = tf.math.unsorted_segment_sum(tf.gather(unit, hit_positions), segment, n_hit_slots)
        merged = tf.math.unsorted_segment_sum(tf.ones_like(segment, tf.int64), segment, n_hit_slots)
        self.keys.scatter_nd_update(hit_slots[:, None], self._merge(hit_slots, summed, merged))
        self.last_written.scatter_nd_update(hit_slots[:, None], tf.fill(tf.shape(hit_slots), now))

        # Inserts: distinct victim slots; the last inserts win when slots run out.
        miss_positions = tf.boolean_mask(positions, ~merges)
        n_miss = tf.shape(miss_positions, out_type=tf.int64)[0]
        n_store = tf.minimum(n_miss, self.memory_size - n_hit_slots)
        stored_positions = miss_positions[n_miss - n_store :]
        miss_slots = self._victims(hit_slots, n_store)
        self._release(miss_slots)
        self.keys.scatter_nd_update(miss_slots[:, None], tf.gather(unit, stored_positions))
        self.values.scatter_nd_update(miss_slots[:, None], tf.gather(v, stored_positions))
        self.last_written.scatter_nd_update(miss_slots[:, None], tf.fill(tf.shape(miss_slots), now))
        if self.counts is not None:
            self.counts.scatter_nd_update(miss_slots[:, None], tf.ones_like(miss_slots))
        self.clock.assign(now)

        # Recent slot per label: the last item of the batch written for that label wins.
        written_positions = tf.concat([hit_positions, stored_positions], axis=0)
        written_slots = tf.concat([tf.boolean_mask(merge_slots, merges), miss_slots], axis=0)
        labels, label_segment = tf.unique(tf.gather(v, written_positions))
        last = tf.math.unsorted_segment_max(written_positions, label_segment, tf.shape(labels)[0])
        slot_of_position = tf.scatter_nd(
            written_positions[:, None], written_slots, tf.shape(positions, out_type=tf.int64)
        )
        grow_rows(self.recent_slot, tf.reduce_max(v) + 1, -1, doubling=False)
        self.recent_slot.scatter_nd_update(labels[:, None], tf.gather(slot_of_position, last))
