"""How one iteration's answers are scored, for one repeat or a chunk of repeats at once.

An empty memory answers memory_module.UNKNOWN_LABEL. Each such answer becomes a uniform
guess among the classes the run can name, drawn from the (model, repeat) generator in
iteration order, so 0-shot accuracy sits at chance and a repeat's guesses do not depend
on what else ran. The per-repeat runner (experiments.faces.runner.run_repeat) and the
chunked one (experiments.faces.chunks) both guess here, in the same order, which is what
keeps their results byte-identical.
"""

from __future__ import annotations

import numpy as np


def guess_unknown(answered: np.ndarray, rng: np.random.Generator, choices: np.ndarray | int) -> np.ndarray:
    """A copy of `answered` with every negative (unknown) answer replaced by a draw from `choices`.

    `choices`: the number of classes (a guess is any class id), or the class ids a guess may
    take (an open-set run guesses among the known identities). Nothing is drawn when every
    item was answered, so the generator advances only where a guess was needed.
    """
    predicted = np.array(answered, dtype=np.int64)
    unknown = predicted < 0
    if unknown.any():
        count = int(unknown.sum())
        if isinstance(choices, (int, np.integer)):
            predicted[unknown] = rng.integers(0, choices, size=count)
        else:
            predicted[unknown] = rng.choice(choices, size=count)
    return predicted


def confusions(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """[R, C, C] int64 confusion counts (rows true class) of R repeats' answers `predicted` [R, E] to `truth` [R, E]."""
    repeats = predicted.shape[0]
    flat = (np.arange(repeats)[:, None] * n_classes + truth) * n_classes + predicted
    counts = np.bincount(flat.ravel(), minlength=repeats * n_classes * n_classes)
    return counts.reshape(repeats, n_classes, n_classes).astype(np.int64)
