"""Seeded episodes: Kaiser-style sequences for training, N-way k-shot tasks for testing.

An episode of width W and length L draws W classes and shows L images of them one at a
time; the model predicts each image's label before the memory is told the answer. As in
the paper's code, every class is shown once before any is shown a second time, so the
first W steps are 0-shot, the next W are 1-shot, and so on. "k-shot" is defined once, in
experiments.core.metrics.shots_seen: the number of earlier times that label was seen.

Every random choice comes from a numpy Generator; `step_rng(seed, step)` gives the
generator of one training step, so a resumed run sees the same episodes.

Classes are drawn from all classes, or, with `pools` (alphabet_pools), all from one
alphabet: look-alike rivals, as in Lake et al.'s one-shot runs. Tasks drawn that way
are much harder than mixed ones and track how a model fares on a set of few alphabets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from experiments.episodic.data import EpisodicData


def step_rng(seed: int, step: int) -> np.random.Generator:
    """The generator for training step `step` of a run seeded with `seed`."""
    return np.random.default_rng([int(seed), int(step)])


def alphabet_pools(data: EpisodicData, ways: int) -> list[np.ndarray]:
    """The class ids of each alphabet with at least `ways` classes (in name order): the pools a
    within-alphabet episode or task draws from; computed once, not per draw."""
    alphabets = np.array(data.alphabets)
    names = data.alphabet_names()
    classes = [np.flatnonzero(alphabets == name) for name in names]
    pools = [ids for ids in classes if len(ids) >= ways]
    if not pools:
        largest = int(np.argmax([len(ids) for ids in classes]))
        raise ValueError(f"{ways} classes from one alphabet need an alphabet of at least {ways} classes; the largest, "
                         f"{names[largest]}, has {len(classes[largest])}: use fewer ways or data with larger alphabets")
    return pools


def episode_classes(num_classes: int, pools: list[np.ndarray] | None, rng: np.random.Generator,
                    ways: int) -> np.ndarray:
    """`ways` distinct classes for one episode or task: any of `num_classes`, or, with `pools`
    (alphabet_pools), all from one pool drawn uniformly."""
    if pools is None:
        return rng.choice(num_classes, ways, replace=False)
    return rng.choice(pools[rng.integers(len(pools))], ways, replace=False)


@dataclass(frozen=True)
class EpisodeBatch:
    """B episodes of length L, arranged time-major as the memory consumes them.

    indices: int64 [L, B], rows of the dataset's images.
    labels: int64 [L, B], episode-local labels 0..W-1.
    classes: int64 [L, B], the dataset's class ids (for life-long training).
    """

    indices: np.ndarray
    labels: np.ndarray
    classes: np.ndarray

    @property
    def length(self) -> int:
        return self.indices.shape[0]

    @property
    def batch_size(self) -> int:
        return self.indices.shape[1]


def _check_width(indices_by_class: Sequence[np.ndarray], width: int, per_class: int) -> None:
    if width < 1:
        raise ValueError(f"episode width (number of classes) must be >= 1, got {width}")
    if width > len(indices_by_class):
        raise ValueError(
            f"episode width {width} exceeds the {len(indices_by_class)} classes available; "
            "use fewer ways or more alphabets"
        )
    fewest = min(len(ix) for ix in indices_by_class)
    if per_class > fewest:
        raise ValueError(
            f"each class needs {per_class} images per episode but some class has only {fewest}; "
            "shorten the episode or reduce shots/queries"
        )


def sample_episodes(
    indices_by_class: Sequence[np.ndarray],
    rng: np.random.Generator,
    width: int,
    length: int,
    batch_size: int,
    pools: list[np.ndarray] | None = None,
) -> EpisodeBatch:
    """B episodes of `width` classes and `length` steps, each class shown ~length/width times;
    with `pools` (alphabet_pools) the classes of each episode come from one alphabet."""
    if length < 1 or batch_size < 1:
        raise ValueError(f"episode length and batch size must be >= 1, got {length} and {batch_size}")
    per_class = -(-length // width)
    _check_width(indices_by_class, width, per_class)
    indices = np.empty((length, batch_size), dtype=np.int64)
    labels = np.empty((length, batch_size), dtype=np.int64)
    classes = np.empty((length, batch_size), dtype=np.int64)
    for b in range(batch_size):
        chosen = episode_classes(len(indices_by_class), pools, rng, width)
        # The first (length mod width) classes get one extra showing.
        showings = np.full(width, length // width)
        showings[: length % width] += 1
        rows, labs, times = [], [], []
        for label, (cls, count) in enumerate(zip(chosen, showings)):
            picks = rng.choice(indices_by_class[cls], size=count, replace=False)
            rows += picks.tolist()
            labs += [label] * count
            times += list(range(count))
        # Random order within each round; round r (the r-th showing) precedes round r+1.
        order = np.lexsort((rng.permutation(length), np.array(times)))
        indices[:, b] = np.array(rows)[order]
        labels[:, b] = np.array(labs)[order]
        classes[:, b] = chosen[labels[:, b]]
    return EpisodeBatch(indices=indices, labels=labels, classes=classes)


@dataclass(frozen=True)
class Task:
    """One N-way k-shot task: a labelled support set and queries from the same N classes."""

    support: np.ndarray  # int64 [N*k] image rows
    support_labels: np.ndarray  # int64 [N*k] in 0..N-1
    query: np.ndarray  # int64 [N*q]
    query_labels: np.ndarray  # int64 [N*q]


def sample_task(
    indices_by_class: Sequence[np.ndarray],
    rng: np.random.Generator,
    ways: int,
    shots: int,
    queries: int = 1,
    pools: list[np.ndarray] | None = None,
) -> Task:
    """N classes, k support images and q disjoint query images of each (different drawers);
    with `pools` (alphabet_pools) the N classes come from one alphabet."""
    if shots < 1 or queries < 1:
        raise ValueError(f"shots and queries must be >= 1, got {shots} and {queries}")
    _check_width(indices_by_class, ways, shots + queries)
    chosen = episode_classes(len(indices_by_class), pools, rng, ways)
    support, query = [], []
    for cls in chosen:
        picks = rng.choice(indices_by_class[cls], size=shots + queries, replace=False)
        support.append(picks[:shots])
        query.append(picks[shots:])
    support_order = rng.permutation(ways * shots)
    return Task(
        support=np.concatenate(support)[support_order],
        support_labels=np.repeat(np.arange(ways), shots)[support_order],
        query=np.concatenate(query),
        query_labels=np.repeat(np.arange(ways), queries),
    )
