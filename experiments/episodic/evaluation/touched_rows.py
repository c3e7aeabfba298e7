"""Many Kaiser-memory tasks at once, held as the few rows each task writes.

An N-way k-shot task writes at most N*k keys into a cleared memory; the shipped
checkpoint's memory has 8,192 slots of 256 floats. Held densely, a chunk of tasks is
mostly empty slots (8 MB a task), so batching does not fit and each task ran alone.
Here every task keeps only the slots it has written (their keys, labels, write times and
slot numbers), and the answers are those of the dense memory to the last bit:

- lookup: empty slots never win, so the best of the written rows is the dense answer; the
  similarities come from the same batched matmul (readout.similarities), and ties go to
  the lower slot number, as top_k's do.
- merge: normalise(key + query) through readout.unit_rows, as the memory does.
- insert: the victims are the slots with the largest age + noise. Every task starts from
  the memory's own seed, so at write t all tasks draw the same noise and every slot never
  written has age t: the empty slots' order is common to all tasks and is sorted once
  (NoiseSchedule). A task's victims are then among the first (written + inserts) slots of
  that order and its own written slots, re-scored with their ages.

Only the paper's rule is held this way (eviction "oldest", on_evict "drop", no running
mean, the nearest slot's answer, any merge threshold) and only while the memory is larger
than everything written; `supports` says when, and the callers use the dense memory
otherwise. tests/episodic/test_touched_rows.py checks the answers against the memory itself.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from memory_module.memory import KaiserMemory
from memory_module.readout import read_whole, similarities, unit_rows

NO_SLOT = np.iinfo(np.int64).max


def supports(memory, writes: int) -> bool:
    """Whether `memory` is a Kaiser memory this module answers for exactly, with `writes` keys written per task."""
    return (type(memory) is KaiserMemory and memory.eviction == "oldest" and memory.on_evict == "drop"
            and memory.counts is None and memory.vote_k <= 1 and not getattr(memory, "query_projection", False)
            and memory.memory_size >= 2 * writes)


class NoiseSchedule:
    """The age noise every cleared copy of `memory` draws at its t-th write, and the slots in
    order of it (largest first, lower slot first among equals), drawn once for all copies.

    The noise comes from a generator seeded like the memory's own (MemoryBase._add_generator),
    so write t of every copy sees what the memory's t-th write after reset() sees.
    """

    def __init__(self, memory: KaiserMemory) -> None:
        self.memory = memory
        self._generator = tf.random.Generator.from_seed(memory.seed)
        self._drawn: list[tuple[np.ndarray, np.ndarray]] = []

    def at(self, write: int) -> tuple[np.ndarray, np.ndarray]:
        """(noise [N] float64, slots [N] by decreasing noise) of write number `write` (0-based)."""
        n, half_width = self.memory.memory_size, self.memory.age_noise
        while len(self._drawn) <= write:
            noise = (self._generator.uniform([n], -half_width, half_width, dtype=tf.float32).numpy().astype(np.float64)
                     if half_width > 0 else np.zeros(n))
            self._drawn.append((noise, np.argsort(-noise, kind="stable")))
        return self._drawn[write]


class TouchedRows:
    """R cleared copies of `memory` (same settings and seed), advanced together; `capacity` keys at most per copy.

    The keys live in a variable updated in place (a chunk's keys are read by every lookup,
    and copying them per write would cost more than the matmul); the bookkeeping is numpy.
    The variable holds `rows` rows, doubled when an insert needs more: a lookup reads every
    row, and most copies fill far fewer than `capacity` (hits merge instead of inserting).
    """

    def __init__(self, memory: KaiserMemory, repeats: int, capacity: int, schedule: NoiseSchedule) -> None:
        self.memory, self.repeats, self.capacity, self.schedule = memory, repeats, capacity, schedule
        self.rows = min(capacity, 8)
        self.keys = tf.Variable(tf.zeros([repeats, self.rows, memory.key_dim], memory.dtype), trainable=False)
        self.slots = np.full((repeats, capacity), -1, np.int64)  # the dense slot each row stands for
        self.values = np.full((repeats, capacity), -1, np.int64)
        self.last_written = np.zeros((repeats, capacity), np.int64)
        self.filled = np.zeros(repeats, np.int64)
        self.clock = 0

    def lookup(self, unit: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(labels, similarity, row) [R, B] of unit queries [R, B, d]; label -1 and row -1 for an empty copy."""
        values, slots = self.values[:, : self.rows], self.slots[:, : self.rows]  # rows past these are empty
        filled = values[:, None, :] >= 0
        sim = np.where(filled, similarities(tf.constant(unit), read_whole(self.keys)).numpy(), -np.inf)
        best = sim.max(axis=2)
        slot = np.where((sim == best[..., None]) & filled, slots[:, None, :], NO_SLOT).min(axis=2)
        row = np.argmax(slots[:, None, :] == slot[..., None], axis=2)
        found = slot != NO_SLOT
        labels = np.where(found, np.take_along_axis(values, row, axis=1), -1)
        return labels, best, np.where(found, row, -1)

    def write(self, unit: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Write unit keys [R, B, d] with labels [R, B] (distinct within each copy's batch); returns the answers before."""
        answered, similarity, row = self.lookup(unit)
        merges = answered == labels
        if self.memory.merge_threshold > -1.0:
            merges &= similarity >= np.float32(self.memory.merge_threshold)
        now = self.clock + 1
        r_hit, b_hit = np.nonzero(merges)
        hit_rows = row[r_hit, b_hit]
        if r_hit.size:
            where = np.stack([r_hit, hit_rows], axis=1)
            summed = tf.gather_nd(self.keys, where) + unit[r_hit, b_hit]
            self.keys.scatter_nd_update(where, unit_rows(summed, axis=1))
            self.last_written[r_hit, hit_rows] = now
        self._insert(unit, labels, ~merges, r_hit, hit_rows, now)
        self.clock = now
        return answered

    def _insert(self, unit, labels, misses, r_hit, hit_rows, now) -> None:
        noise, by_noise = self.schedule.at(self.clock)  # drawn at every write, as the memory does
        noisy_empty = np.float64(self.clock) + noise  # every slot never written: exact, the same order as the noise
        n_miss = misses.sum(axis=1)
        most = int(n_miss.max()) if n_miss.size else 0
        if most == 0:
            return
        used = int(self.filled.max())
        own = self.slots[:, :used]
        # Candidates: the first (written + inserts) never-written slots by noisy age, then each copy's written slots.
        first = by_noise[: used + most]
        candidates = np.concatenate([np.broadcast_to(first, (self.repeats, first.size)), own], axis=1)
        score = np.concatenate([np.broadcast_to(noisy_empty[first], (self.repeats, first.size)),
                                np.full(own.shape, -np.inf)], axis=1)
        excluded = np.zeros(self.slots.shape, bool)
        excluded[r_hit, hit_rows] = True
        rescored = np.where((own >= 0) & ~excluded[:, :used], (self.clock - self.last_written[:, :used])
                            + noise[np.maximum(own, 0)], -np.inf)
        # A written slot among the first never-written ones takes its written score there; its own column drops out.
        position = np.full(self.memory.memory_size, -1)
        position[first] = np.arange(first.size)
        at = np.where(own >= 0, position[np.maximum(own, 0)], -1)  # [R, used]: each written slot's place in `first`
        copy_in, row_in = np.nonzero(at >= 0)
        score[copy_in, at[copy_in, row_in]] = rescored[copy_in, row_in]
        score[:, first.size:] = np.where(at >= 0, -np.inf, rescored)
        order = np.lexsort((candidates, -score), axis=1)[:, :most]  # oldest first, lower slot first among equals
        # The k-th victim of copy r takes its k-th miss in batch order, in a row of its own or a new one.
        copy, k = np.nonzero(np.arange(most)[None, :] < n_miss[:, None])
        victims = candidates[copy, order[copy, k]]
        items = np.argsort(~misses, axis=1, kind="stable")[copy, k]
        same_slot = self.slots[copy] == victims[:, None]
        new = ~same_slot.any(axis=1)
        earlier_new = np.cumsum(new) - new
        rank = earlier_new - earlier_new[np.searchsorted(copy, copy)]  # new rows before this one in its copy
        rows = np.where(new, self.filled[copy] + rank, same_slot.argmax(axis=1))
        self.filled += np.bincount(copy[new], minlength=self.repeats)
        if int(self.filled.max()) > self.rows:
            self._grow(min(self.capacity, max(2 * self.rows, int(self.filled.max()))))
        self.slots[copy, rows], self.values[copy, rows], self.last_written[copy, rows] = victims, labels[copy, items], now
        self.keys.scatter_nd_update(np.stack([copy, rows], axis=1), unit[copy, items])


    def _grow(self, rows: int) -> None:
        extra = tf.zeros([self.repeats, rows - self.rows, self.memory.key_dim], self.memory.dtype)
        self.keys = tf.Variable(tf.concat([self.keys.read_value(), extra], axis=1), trainable=False)
        self.rows = rows


def task_answers(memory: KaiserMemory, keys: np.ndarray, rounds: np.ndarray, query_items: np.ndarray,
                 ways: int, chunk: int) -> np.ndarray:
    """[episodes, queries] answers of cleared copies of `memory` to N-way k-shot tasks (tasks.task_answers' layout).

    rounds [episodes, shots, ways] index `keys` (round r: the r-th drawing of every class, labels 0..ways-1),
    query_items [episodes, queries]."""
    episodes, shots = rounds.shape[:2]
    unit_keys = unit_rows(tf.constant(keys), axis=1).numpy()
    labels = np.arange(ways, dtype=np.int64)
    schedule, out = NoiseSchedule(memory), []
    for first in range(0, episodes, max(1, chunk)):
        part = slice(first, min(first + max(1, chunk), episodes))
        tasks = TouchedRows(memory, part.stop - part.start, ways * shots, schedule)
        for r in range(shots):
            tasks.write(unit_keys[rounds[part, r]], np.broadcast_to(labels, (tasks.repeats, ways)))
        out.append(tasks.lookup(unit_keys[query_items[part]])[0])
    return np.concatenate(out)


def sequence_answers(memory: KaiserMemory, keys: np.ndarray, labels: np.ndarray, chunk: int) -> np.ndarray:
    """[R, L] answers of cleared copies of `memory` to sequences keys [R, L, d], labels [R, L], each drawing
    answered before it is written (sequences.sequence_answers' layout)."""
    count, length = labels.shape
    schedule, out = NoiseSchedule(memory), []
    for first in range(0, count, max(1, chunk)):
        part = slice(first, min(first + max(1, chunk), count))
        unit = unit_rows(tf.constant(keys[part]), axis=2).numpy()
        copies = TouchedRows(memory, part.stop - part.start, length, schedule)
        out.append(np.stack([copies.write(unit[:, t : t + 1], labels[part, t : t + 1])[:, 0]
                             for t in range(length)], axis=1))
    return np.concatenate(out)
