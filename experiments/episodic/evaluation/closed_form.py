"""Store-all 1-NN and class means answer N-way k-shot tasks in closed form, many tasks per matmul.

A cleared store-all memory that is written k rounds of N keys holds exactly those N*k unit
keys in write order, and class means hold, per class, the running sum of its unit keys.
So a chunk of tasks needs no memory object at all: one batched matmul of the queries
against each task's keys (or normalised sums), and the first best row. The arithmetic is
the memories' own (readout.unit_rows for every normalisation, readout.similarities for
the matmul, float32 sums added round by round as scatter_nd_add does, the lower row first
among equal similarities as top_k), so the answers are theirs to the last bit;
tests/experiments/test_closed_form_readouts.py checks them against the memories.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from memory_module import ClassMeans, StoreAllNearestNeighbour
from memory_module.readout import similarities, unit_rows


def supports(memory) -> bool:
    """Whether `memory` is a store-all or class-means readout answering with its nearest row (vote_k 1)."""
    return type(memory) in (StoreAllNearestNeighbour, ClassMeans) and memory.vote_k <= 1


def task_answers(memory, keys: np.ndarray, rounds: np.ndarray, query_items: np.ndarray, ways: int,
                 chunk: int) -> np.ndarray:
    """[episodes, queries] answers (labels 0..ways-1) of cleared copies of `memory` to the tasks
    (tasks.task_answers' layout: rounds [episodes, shots, ways] and query_items [episodes, queries] index keys)."""
    unit_keys = unit_rows(tf.constant(keys), axis=1).numpy()
    episodes, shots = rounds.shape[:2]
    out = []
    for first in range(0, episodes, max(1, chunk)):
        part = slice(first, min(first + max(1, chunk), episodes))
        written = unit_keys[rounds[part]]  # [E, shots, ways, d]
        if isinstance(memory, ClassMeans):
            sums = np.zeros_like(written[:, 0])
            for r in range(shots):
                sums = sums + written[:, r]
            table = unit_rows(tf.constant(sums), axis=2)
        else:
            table = tf.constant(written.reshape(written.shape[0], shots * ways, -1))
        best = np.argmax(similarities(tf.constant(unit_keys[query_items[part]]), table).numpy(), axis=2)
        out.append(best % ways)  # store-all's row r * ways + c and class means' row c both hold label c
    return np.concatenate(out).astype(np.int64)
