"""Helpers shared by the test packages (plain functions and classes; fixtures are in conftest.py).

- `clustered_embeddings` / `write_embeddings_npz`: the one synthetic-cluster generator,
  unit rows around random unit centres, in the `kshot embed` npz format, so runner tests
  need no FaceNet.
- `cosine`: cosine similarity of two vectors, for the FaceNet tests.
- `write_synthetic_runs`: a copy of Lake et al.'s `all_runs` layout built from
  background drawings, for `kshot omniglot lake`.
- `ReferenceMemory`: an independent NumPy version of the Kaiser memory's rules, one
  item at a time with plain loops, so that it is easy to check by eye. Written from
  the rules of the paper; it shares no code with memory_module.
- `FakeEmbedder`, `photo_folder`: a stand-in embedder and text "photos" for the gallery
  tests that do not need FaceNet.
  the rules of the paper; it shares no code with memory_module. The write
  policies beyond the paper are options of it too, written the naive way: class-balanced
  eviction picks one slot at a time by scanning every label (the memory sorts once), and
  merging an evicted key searches its label's slots with a loop.
- `ReferenceFifo`, `ReferenceReservoir`, `ReferenceClassMeans`: the same for the
  fixed-size baselines of memory_module.fixed_baselines.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# ---------------------------------------------------------------- synthetic clusters


def clustered_embeddings(n_classes: int = 5, per_class: int = 8, dim: int = 16, spread: float = 0.35, seed: int = 0):
    """Unit rows around random unit centres; `spread` sets how much classes overlap."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.repeat(np.arange(n_classes), per_class)
    points = centres[labels] + spread * rng.normal(size=(labels.size, dim)) / np.sqrt(dim)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    names = np.array([f"class_{c:02d}" for c in labels])
    paths = np.array([f"class_{c:02d}/img_{i:03d}.jpg" for i, c in enumerate(labels)])
    return points.astype(np.float32), names, paths


def write_embeddings_npz(path: Path, **kwargs) -> Path:
    embeddings, labels, paths = clustered_embeddings(**kwargs)
    np.savez(path, embeddings=embeddings, labels=labels, paths=paths, skipped=np.array([], dtype=str))
    return path


# ---------------------------------------------------------------- FaceNet helpers


@dataclass
class CelebrityEmbeddings:
    embeddings: np.ndarray
    paths: list[str]
    labels: np.ndarray
    split: np.ndarray
    skipped: list[tuple[str, str]]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# ---------------------------------------------------------------- reference Kaiser memory

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


# ---------------------------------------------------------------- Lake et al.'s one-shot runs, synthetic
# Each run takes 20 characters of one alphabet; drawer A's drawing becomes
# training/classMM.png, drawer B's becomes test/itemKK.png (items shuffled), and
# class_labels.txt names the right class image for every item, as in the original.

LAKE_WAYS = 20


def shared_omniglot_file(name: str) -> Path:
    """A file of the shared Omniglot folder (../shared/omniglot or $KSHOT_OMNIGLOT), which must exist."""
    from experiments.episodic.omniglot import default_sources

    path = default_sources()[0] / name
    assert path.exists(), f"the shared Omniglot data is needed at {path} (set KSHOT_OMNIGLOT to its folder)"
    return path


def write_synthetic_runs(background_zip: Path, dest: Path, runs: int = 3, seed: int = 0,
                         alphabets_allowed=None) -> dict:
    """Write runs run01..runNN under `dest`; returns {run name: [correct class index per item]}.

    `alphabets_allowed`: draw runs only from these alphabets (e.g. a run's test alphabets).
    """
    archive = zipfile.ZipFile(background_zip)
    by_character: dict[tuple[str, str], list[str]] = {}
    for name in sorted(archive.namelist()):
        parts = name.split("/")
        if len(parts) == 4 and parts[-1].endswith(".png"):
            by_character.setdefault((parts[1], parts[2]), []).append(name)
    alphabets: dict[str, list[tuple[str, str]]] = {}
    for key in by_character:
        alphabets.setdefault(key[0], []).append(key)
    big = sorted(a for a, chars in alphabets.items()
                 if len(chars) >= LAKE_WAYS and (alphabets_allowed is None or a in alphabets_allowed))
    rng = np.random.default_rng(seed)
    truth = {}
    for r in range(1, runs + 1):
        run = f"run{r:02d}"
        alphabet = big[rng.integers(len(big))]
        chosen = [alphabets[alphabet][i] for i in rng.choice(len(alphabets[alphabet]), LAKE_WAYS, replace=False)]
        (dest / run / "training").mkdir(parents=True)
        (dest / run / "test").mkdir()
        item_order = rng.permutation(LAKE_WAYS)  # item k shows character item_order[k]
        lines = []
        for c, key in enumerate(chosen):
            a, b = rng.choice(len(by_character[key]), 2, replace=False)
            (dest / run / "training" / f"class{c + 1:02d}.png").write_bytes(archive.read(by_character[key][a]))
            item = int(np.where(item_order == c)[0][0]) + 1
            (dest / run / "test" / f"item{item:02d}.png").write_bytes(archive.read(by_character[key][b]))
        for k, c in enumerate(item_order, start=1):
            lines.append(f"{run}/test/item{k:02d}.png {run}/training/class{c + 1:02d}.png")
        (dest / run / "class_labels.txt").write_text("\n".join(lines) + "\n")
        truth[run] = item_order.tolist()
    return truth


# ---------------------------------------------------------------- a stand-in embedder for gallery tests

# A "photo" is a small text file naming a person; its embedding is that person's
# centre (a seeded random unit vector per name) plus a little noise seeded by the file
# name, so photos of one person are close and different people are far apart. A file
# saying "noface" is skipped as the real embedder skips a photo without a face.
FAKE_DIM = 64
FAKE_IDENTITY = {"weights": "fake", "weights_sha256": "0" * 64, "input_size": 160, "prewhiten": True,
                 "embedding_size": FAKE_DIM, "aligner": "fake", "aligner_version": "1"}


def fake_centre(name: str) -> np.ndarray:
    v = np.random.default_rng(zlib.crc32(name.encode())).normal(size=FAKE_DIM)
    return v / np.linalg.norm(v)


class FakeEmbedder:
    def __init__(self, identity: dict | None = None, noise: float = 0.15):
        self.identity = dict(identity or FAKE_IDENTITY)
        self.noise = noise

    def embed(self, paths, aligned: bool = False):
        from facenet_tf import EmbeddedPaths

        rows, kept, skipped = [], [], []
        for path in map(str, paths):
            name = Path(path).read_text(encoding="utf-8").strip()
            if name == "noface":
                skipped.append((path, "no face found by MTCNN"))
                continue
            jitter = np.random.default_rng(zlib.crc32(Path(path).name.encode())).normal(size=FAKE_DIM)
            rows.append(fake_centre(name) + self.noise * jitter)
            kept.append(path)
        return EmbeddedPaths(np.asarray(rows, np.float32).reshape(-1, FAKE_DIM), kept, skipped)


def photo_folder(root: Path, people: dict[str, int]) -> Path:
    """root/<name>/<i>.jpg text 'photos' for each name and count."""
    for name, count in people.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            (root / name / f"{name}_{i}.jpg").write_text(name, encoding="utf-8")
    return root


# ---------------------------------------------------------------- fixed-size baselines
# Plain loops over items, written from the rules in memory_module/fixed_baselines.py's
# docstrings. The reservoir is given the uniforms the store will draw (two per item), so
# its random choices can be compared exactly.


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
