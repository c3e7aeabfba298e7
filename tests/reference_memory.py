"""An independent NumPy version of the Kaiser memory's rules, for the tests only.

Written from the rules in issue 3 (and the paper), one item at a time with plain
loops, so that it is easy to check by eye. It shares no code with memory_module.

The write policies of issue 14 are options here too, written the naive way: class-balanced
eviction picks one slot at a time by scanning every label (the memory sorts once), and
merging an evicted key searches its label's slots with a loop.
"""

from __future__ import annotations

import numpy as np

EMPTY = -1


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


class ReferenceMemory:
    def __init__(
        self,
        memory_size: int,
        key_dim: int,
        choose_k: int = 256,
        alpha: float = 0.1,
        running_mean: bool = False,
        merge_threshold: float = -1.0,
        eviction: str = "oldest",
        on_evict: str = "drop",
    ):
        self.running_mean = running_mean
        self.merge_threshold = merge_threshold
        self.eviction = eviction
        self.on_evict = on_evict
        self.counts = np.zeros(memory_size, dtype=np.int64)  # examples absorbed per slot
        self.keys = np.zeros((memory_size, key_dim))
        self.values = np.full(memory_size, EMPTY, dtype=np.int64)
        self.ages = np.zeros(memory_size, dtype=np.int64)
        self.recent = {}  # label -> slot most recently written for it
        self.choose_k = min(choose_k, memory_size)
        self.alpha = alpha

    def pool(self, query: np.ndarray) -> list[int]:
        """Indices of the choose_k most similar filled slots, best first (ties: lower index)."""
        sims = self.keys @ unit(query)
        filled = [i for i in range(len(sims)) if self.values[i] != EMPTY]
        filled.sort(key=lambda i: (-sims[i], i))
        return filled[: self.choose_k]

    def lookup(self, queries: np.ndarray):
        labels, sims, slots = [], [], []
        for q in queries:
            pool = self.pool(q)
            if not pool:
                labels.append(EMPTY), sims.append(-np.inf), slots.append(-1)
            else:
                best = pool[0]
                labels.append(self.values[best]), sims.append(self.keys[best] @ unit(q)), slots.append(best)
        return np.array(labels), np.array(sims), np.array(slots)

    def loss(self, queries: np.ndarray, labels) -> float:
        total = 0.0
        for q, v in zip(queries, labels):
            u = unit(q)
            pool = self.pool(q)
            positives = [i for i in pool if self.values[i] == v]
            negatives = [i for i in pool if self.values[i] != v]
            p = positives[0] if positives else None
            if p is None and v in self.recent and self.values[self.recent[v]] == v:
                p = self.recent[v]
            b = negatives[0] if negatives else None
            if p is None and b is None:
                continue
            s_p = self.keys[p] @ u if p is not None else 0.0
            s_b = self.keys[b] @ u if b is not None else 0.0
            total += max(0.0, s_b - s_p + self.alpha)
        return total / len(labels)

    def _merged_key(self, slot: int, added: np.ndarray, added_count: int) -> np.ndarray:
        """normalise(K + added), or normalise(c K + added) with running_mean (added: a sum)."""
        weight = self.counts[slot] if self.running_mean else 1
        self.counts[slot] += added_count
        return unit(weight * self.keys[slot] + added)

    def _pick_victims(self, candidates: list[int], noisy_age: np.ndarray, count: int) -> list[int]:
        def older(s):
            return (noisy_age[s], -s)

        if self.eviction == "oldest":
            return sorted(candidates, key=lambda s: (-noisy_age[s], s))[:count]
        held = {}
        for s in range(len(self.values)):
            if self.values[s] != EMPTY:
                held[self.values[s]] = held.get(self.values[s], 0) + 1
        free, picked = list(candidates), []
        for _ in range(count):
            empties = [s for s in free if self.values[s] == EMPTY]
            if empties:
                choice = max(empties, key=older)
            else:
                heads = {}
                for s in free:
                    label = self.values[s]
                    if label not in heads or older(s) > older(heads[label]):
                        heads[label] = s
                label = max(heads, key=lambda c: (held[c], *older(heads[c])))
                choice = heads[label]
                held[label] -= 1
            free.remove(choice)
            picked.append(choice)
        return picked

    def _fold_victims(self, victims: list[int]) -> None:
        folds = {}  # target slot -> (sum of weighted victim keys, their weight)
        for victim in victims:
            label = self.values[victim]
            if label == EMPTY:
                continue
            same = [s for s in range(len(self.values)) if self.values[s] == label and s not in victims]
            if not same:
                continue
            target = max(same, key=lambda s: (self.keys[s] @ self.keys[victim], -s))
            weight = self.counts[victim] if self.running_mean else 1
            total, count = folds.get(target, (0.0, 0))
            folds[target] = (total + weight * self.keys[victim], count + weight)
        for target, (total, count) in folds.items():
            self.keys[target] = self._merged_key(target, total, count)

    def write(self, queries: np.ndarray, labels, noise: np.ndarray | None = None) -> None:
        predicted, sims, slots = self.lookup(queries)
        merges = {}  # slot -> [items merged into it]
        misses = []
        for i, v in enumerate(labels):
            close = sims[i] >= self.merge_threshold
            if predicted[i] == v and close:
                merges.setdefault(slots[i], []).append(i)
            else:
                misses.append(i)
        written = {}  # batch item -> slot
        for slot, items in merges.items():
            self.keys[slot] = self._merged_key(slot, sum(unit(queries[i]) for i in items), len(items))
            for i in items:
                written[i] = slot
        noisy_age = self.ages.astype(np.float64) + (0.0 if noise is None else noise)
        candidates = [s for s in range(len(self.values)) if s not in merges]
        kept = misses[len(misses) - min(len(misses), len(candidates)) :]  # the last misses win
        victims = self._pick_victims(candidates, noisy_age, len(kept))
        if self.on_evict == "merge":
            self._fold_victims(victims)
        for i, slot in zip(kept, victims):
            self.keys[slot] = unit(queries[i])
            self.values[slot] = labels[i]
            self.counts[slot] = 1
            written[i] = slot
        self.ages += 1
        for i in sorted(written):  # batch order: the last item written for a label is its recent slot
            self.ages[written[i]] = 0
            self.recent[int(labels[i])] = written[i]
