"""The episodic datasets by name: `[data] dataset` picks one, Omniglot is the first.

A dataset is one function, `load(sources, image_size) -> (EpisodicData, sets)`:
every image of the user's `sources` (None: the dataset's own default location),
resized to `image_size` square, as data.EpisodicData; and `sets`, for each alphabet the
names of the source sets it was found in, so that an alphabet found in an "evaluation"
set is held out for testing (split.choose_test_alphabets; {} when the dataset has no
such sets). That is all training and evaluation ask of a dataset: the split, the
rotated copies, episodes and tasks are built from the EpisodicData. A second dataset
is therefore one module with its loader and one entry below.
"""

from __future__ import annotations

import os
from typing import Protocol, Sequence

from experiments.episodic.data import EpisodicData
from experiments.episodic.omniglot import load_omniglot

Sources = Sequence[str | os.PathLike] | str | os.PathLike | None


class Loader(Protocol):
    def __call__(self, sources: Sources, image_size: int) -> tuple[EpisodicData, dict[str, list[str]]]: ...


DATASETS: dict[str, Loader] = {
    "omniglot": load_omniglot,
}
DEFAULT_DATASET = "omniglot"


def load_dataset(name: str, sources: Sources, image_size: int) -> tuple[EpisodicData, dict[str, list[str]]]:
    """The images of dataset `name` under `sources`, and the source sets of each alphabet."""
    if name not in DATASETS:
        raise ValueError(f"unknown episodic dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[name](sources, image_size=image_size)
