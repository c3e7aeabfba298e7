"""What an episodic dataset is once loaded: images labelled with classes, classes grouped into alphabets.

Every loader of the registry (datasets.py) returns an `EpisodicData`; splitting
(split.py), drawing episodes and tasks (episodes.py), training and evaluation read
nothing else. "Alphabet" is the group of look-alike classes that a split holds out
whole and that within-alphabet tasks draw from (Omniglot's alphabets; another dataset
names its own groups).

The training split may add rotated and mirrored copies of its classes as new
classes (`[data] rotations`, `mirrors`); those copies are made here, on any dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np


@dataclass(frozen=True)
class EpisodicData:
    """Decoded images and their class labels.

    images: uint8 [n, size, size], ink (or foreground) = 255.
    labels: int32 [n], index into `characters`.
    characters: the name of each class ("Alphabet/characterNN" for Omniglot; a rotated copy
        gets a "@rot90" suffix, a mirrored one "@mirror").
    alphabets: the alphabet (group) of each class, parallel to `characters`.
    drawers: the source file name of each image ("0394_01.png"), for tracing back.
    """

    images: np.ndarray
    labels: np.ndarray
    characters: tuple[str, ...]
    alphabets: tuple[str, ...]
    drawers: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.characters)

    def alphabet_names(self) -> list[str]:
        return sorted(set(self.alphabets))

    def indices_by_class(self) -> list[np.ndarray]:
        """For each class, the indices of its images (ascending)."""
        order = np.argsort(self.labels, kind="stable")
        bounds = np.searchsorted(self.labels[order], np.arange(self.num_classes + 1))
        return [order[bounds[c] : bounds[c + 1]] for c in range(self.num_classes)]

    def keep_classes(self, class_ids: Sequence[int]) -> EpisodicData:
        """A new dataset with only these classes, relabelled 0..len(class_ids)-1 in the given order."""
        class_ids = np.asarray(class_ids, dtype=np.int64)
        remap = np.full(self.num_classes, -1, dtype=np.int64)
        remap[class_ids] = np.arange(len(class_ids))
        keep = remap[self.labels] >= 0
        return EpisodicData(
            images=self.images[keep],
            labels=remap[self.labels[keep]].astype(np.int32),
            characters=tuple(self.characters[c] for c in class_ids),
            alphabets=tuple(self.alphabets[c] for c in class_ids),
            drawers=tuple(d for d, k in zip(self.drawers, keep) if k),
        )


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 [n, s, s] -> float32 [n, s, s, 1] in [0, 1], the embedder's input."""
    return (images.astype(np.float32) / 255.0)[..., None]


# ---------------------------------------------------------------- copies of the training classes


def _with_copies(data: EpisodicData, transforms: Sequence[Callable[[np.ndarray], np.ndarray]],
                 suffixes: Sequence[str]) -> EpisodicData:
    """Each class as len(transforms) classes: class k*c + i holds transforms[i] of class
    c's images ([n, s, s] -> [n, s, s]), named with suffixes[i]."""
    k = len(transforms)
    images = np.stack([transform(data.images) for transform in transforms], axis=1)
    labels = data.labels[:, None].astype(np.int64) * k + np.arange(k)[None, :]
    return EpisodicData(
        images=np.ascontiguousarray(images.reshape((-1,) + data.images.shape[1:])),
        labels=labels.reshape(-1).astype(np.int32),
        characters=tuple(c + suffix for c in data.characters for suffix in suffixes),
        alphabets=tuple(a for a in data.alphabets for _ in range(k)),
        drawers=tuple(d for d in data.drawers for _ in range(k)),
    )


def add_rotations(data: EpisodicData) -> EpisodicData:
    """Each character plus its 90, 180 and 270 degree rotations, as four classes.

    Class 4*c + r is character c rotated by r*90 degrees counter-clockwise (r = 0 is
    the original), the augmentation used for training in the Omniglot literature.
    """
    turns = [lambda images, r=r: np.rot90(images, k=r, axes=(1, 2)) for r in range(4)]
    return _with_copies(data, turns, ["", "@rot90", "@rot180", "@rot270"])


def add_mirrors(data: EpisodicData) -> EpisodicData:
    """Each class plus its left-right mirror image, as two classes.

    Class 2*c + 1 is class c mirrored. With rotations added first, the eight classes of a
    character are its eight symmetries (the dihedral group of the square): a mirrored
    character is as new to the embedder as a rotated one, and the training alphabets are
    the scarce resource.
    """
    return _with_copies(data, [lambda images: images, lambda images: images[:, :, ::-1]], ["", "@mirror"])
