"""The blog's k-shot protocol, defined once.

k-shot (defined in experiments.core.metrics): an image is evaluated "at k shots" when the
model has been shown exactly k earlier images of its class. The protocol feeds one
image of every class per iteration, so the evaluation of iteration i is at i shots.

One repeat of the protocol:
- shuffle the images of every class with the repeat's generator;
- iteration 0: evaluate every image, with nothing learned;
- iteration i >= 1: feed the i-th image of every class as one batch, in an order
  drawn afresh for every iteration from the repeat's generator, then evaluate every
  image not yet fed;
- stop after `max_shots` iterations, or earlier when some class would have nothing
  left to evaluate (a class of n images allows at most n - 1 shots).

Why the feed order is drawn: when more items of a batch miss than a fixed-size memory
has free slots, the last misses of the batch are the ones stored. In class order the
same alphabetically-last classes would win every repeat and the first ones would never
be stored, a bias that looks like a property of those classes.

The schedule is pure index bookkeeping: it knows nothing about models, so it is
tested on its own and shared by the plain runner and the fast benchmark path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Iteration:
    shots: int  # how many images of every class the model has seen before this evaluation
    feed: np.ndarray  # indices fed just before this evaluation (one per class; empty at 0 shots)
    evaluate: np.ndarray  # indices evaluated: every image not fed so far


def class_members(labels: np.ndarray, n_classes: int) -> list[np.ndarray]:
    """Indices of every class, in index order, for dense labels 0..n_classes-1."""
    labels = np.asarray(labels)
    return [np.flatnonzero(labels == c) for c in range(n_classes)]


def check_classes(labels: np.ndarray, class_names: list[str]) -> None:
    """Refuse data the protocol cannot run on, naming the class and what to do."""
    n_classes = len(class_names)
    if n_classes < 2:
        raise ValueError(
            f"the dataset has {n_classes} class ({', '.join(class_names) or 'none'}); k-shot "
            "classification needs at least 2 classes. Add another identity folder."
        )
    sizes = np.bincount(np.asarray(labels), minlength=n_classes)
    for name, size in zip(class_names, sizes):
        if size < 2:
            raise ValueError(
                f"class {name!r} has {size} image(s); the protocol needs at least 2 per class "
                "(one to feed and one to evaluate). Add images or remove the class."
            )


def max_iterations(class_sizes, max_shots: int) -> int:
    """The number of shots actually run: `max_shots`, capped so every class keeps one image to evaluate."""
    if max_shots < 0:
        raise ValueError(f"max_shots must be >= 0, got {max_shots}")
    smallest = int(np.min(class_sizes))
    return max(0, min(max_shots, smallest - 1))


def shuffle_classes(members: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """A shuffled copy of every class's indices, drawn in class order from `rng`."""
    return [rng.permutation(indices) for indices in members]


def schedule(shuffled: list[np.ndarray], max_shots: int, feed_rng: np.random.Generator | None) -> list[Iteration]:
    """The iterations of one repeat, from each class's shuffled indices.

    `feed_rng` draws the order of every feed batch; None keeps class order (only for
    protocols that prescribe it, such as the blog's fixed order).
    """
    n_shots = max_iterations([len(s) for s in shuffled], max_shots)
    # Each scheduled item's place in its class's order; an item is evaluated at `shots` while its
    # place is at least `shots`. The items in index order, with their places, make every
    # iteration's evaluation set one mask (the sorted union of the classes' remainders).
    items = np.concatenate(shuffled).astype(np.int64) if shuffled else np.empty(0, np.int64)
    place = np.full(int(items.max()) + 1 if items.size else 0, -1, np.int64)
    place[items] = np.concatenate([np.arange(len(s)) for s in shuffled]) if shuffled else []
    in_index_order = np.flatnonzero(place >= 0).astype(np.int64)
    place_in_index_order = place[in_index_order]
    fed_in_order = np.stack([s[:n_shots] for s in shuffled]).astype(np.int64) if shuffled else np.empty((0, 0), np.int64)
    iterations = []
    for shots in range(n_shots + 1):  # one image of every class is fed per iteration
        feed = fed_in_order[:, shots - 1] if shots else np.empty(0, np.int64)
        if feed_rng is not None and feed.size:
            feed = feed[feed_rng.permutation(feed.size)]
        evaluate = in_index_order[place_in_index_order >= shots]
        iterations.append(Iteration(shots=shots, feed=feed, evaluate=evaluate))
    return iterations
