"""Independent NumPy versions of the fixed-size baselines, for the tests only.

Plain loops over items, written from the rules in memory_module/fixed_baselines.py's
docstrings; they share no code with memory_module. The reservoir is given the uniforms
the store will draw (two per item), so its random choices can be compared exactly.
"""

from __future__ import annotations

import numpy as np

from reference_memory import EMPTY, unit


def nearest(keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """1-NN label per query over filled rows (ties: lower row), EMPTY when nothing is held."""
    out = []
    for q in queries:
        best, best_sim = EMPTY, -np.inf
        for row in range(len(values)):
            if values[row] != EMPTY:
                sim = keys[row] @ unit(q)
                if sim > best_sim:
                    best, best_sim = values[row], sim
        out.append(best)
    return np.array(out)


class ReferenceFifo:
    def __init__(self, memory_size: int, key_dim: int):
        self.keys = np.zeros((memory_size, key_dim))
        self.values = np.full(memory_size, EMPTY, dtype=np.int64)
        self.next_row = 0

    def lookup(self, queries):
        return nearest(self.keys, self.values, queries)

    def write(self, queries, labels) -> None:
        for q, v in zip(queries, labels):
            self.keys[self.next_row], self.values[self.next_row] = unit(q), v
            self.next_row = (self.next_row + 1) % len(self.values)


class ReferenceReservoir:
    def __init__(self, memory_size: int, key_dim: int):
        self.keys = np.zeros((memory_size, key_dim))
        self.values = np.full(memory_size, EMPTY, dtype=np.int64)
        self.seen: dict[int, int] = {}
        self.full: set[int] = set()

    def lookup(self, queries):
        return nearest(self.keys, self.values, queries)

    def write(self, queries, labels, uniforms: np.ndarray) -> None:
        for q, v, (accept, choose) in zip(queries, labels, uniforms):
            v = int(v)
            self.seen[v] = self.seen.get(v, 0) + 1
            empties = [row for row in range(len(self.values)) if self.values[row] == EMPTY]
            if empties:
                self._put(empties[0], q, v)
                continue
            held = {}
            for label in self.values:
                held[int(label)] = held.get(int(label), 0) + 1
            largest = max(held.values())
            self.full |= {label for label, n in held.items() if n == largest}
            if v in self.full:
                if accept * self.seen[v] >= held.get(v, 0):
                    continue
                rows = [row for row in range(len(self.values)) if self.values[row] == v]
            else:
                rows = [row for row in range(len(self.values)) if held[int(self.values[row])] == largest]
            if rows:
                self._put(rows[min(int(choose * len(rows)), len(rows) - 1)], q, v)

    def _put(self, row: int, q, v: int) -> None:
        self.keys[row], self.values[row] = unit(q), v


class ReferenceClassMeans:
    def __init__(self):
        self.examples: dict[int, list[np.ndarray]] = {}

    def lookup(self, queries):
        labels = sorted(self.examples)
        if not labels:
            return np.full(len(queries), EMPTY)
        means = np.array([unit(np.mean(self.examples[c], axis=0)) for c in labels])
        return np.array([labels[int(np.argmax(means @ unit(q)))] for q in queries])

    def write(self, queries, labels) -> None:
        for q, v in zip(queries, labels):
            self.examples.setdefault(int(v), []).append(unit(q))
