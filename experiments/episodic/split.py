"""Splitting a dataset by alphabet into train / validation / test, as training and evaluation use it.

Alphabets are held out whole, so "held-out" results are on characters from scripts
training never saw. `prepare_split` loads the configured dataset, holds out the test
alphabets (named in `[data] test_alphabets`, else chosen by `choose_test_alphabets`)
and the validation alphabets, and adds rotated and mirrored copies of the training
classes as configured.

Omniglot's presets name a fixed split of its 30 background alphabets (TEST_ALPHABETS and
VALIDATION_ALPHABETS below): "held-out alphabets" are background alphabets that training
never sees, where the recipe was chosen and first measured. Omniglot's 20 evaluation
alphabets are never part of it; they are read only to report (`--split unseen`,
evaluation/benchmark.py). The split is fixed by a rule on the sorted alphabet names, so
anyone can recompute it:

- test: every sixth alphabet from position 3 (positions 3, 9, 15, 21, 27): Armenian,
  Burmese, Gujarati, Latin, Syriac - 172 characters. The reported tables use these only.
- validation: every twelfth from position 0 (positions 0, 12, 24): Alphabet of the Magi,
  Futurama, N'Ko - 79 characters. Recipes are chosen and training is monitored on these.
- train: the other 22 alphabets - 713 characters, 2,852 classes with rotations.

No recipe choice looked at the test alphabets; they were fixed before the first run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from experiments.episodic.data import EpisodicData, add_mirrors, add_rotations
from experiments.episodic.datasets import load_dataset
from experiments.episodic.settings import OmniglotDataSection

BACKGROUND_ALPHABET_COUNT = 30
TEST_ALPHABETS = ("Armenian", "Burmese_(Myanmar)", "Gujarati", "Latin", "Syriac_(Estrangelo)")
VALIDATION_ALPHABETS = ("Alphabet_of_the_Magi", "Futurama", "N_Ko")


def rule_split(names: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(test, validation) alphabets of 30 sorted names by the rule in the module docstring."""
    names = sorted(names)
    if len(names) != BACKGROUND_ALPHABET_COUNT:
        raise ValueError(f"the fixed split is defined for the {BACKGROUND_ALPHABET_COUNT} background alphabets, got {len(names)}")
    return tuple(names[i] for i in range(3, 30, 6)), tuple(names[i] for i in range(0, 30, 12))


def choose_test_alphabets(
    data: EpisodicData, sets: dict[str, list[str]] | None = None, test_fraction: float = 0.2
) -> list[str]:
    """The held-out alphabets, chosen deterministically.

    If any alphabet comes from a set whose name contains "evaluation" (the standard
    Lake et al. split), exactly those alphabets are held out. Otherwise alphabets are
    taken in reverse name order until at least `test_fraction` of the characters are
    held out. For the two shared small subsets this holds out Tagalog and Sanskrit
    (59 of 242 characters).
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    names = data.alphabet_names()
    if len(names) < 2:
        raise ValueError(f"need at least two alphabets to hold one out, found {names}")
    if sets:
        evaluation = [a for a in names if any("evaluation" in s for s in sets.get(a, []))]
        if evaluation and len(evaluation) < len(names):
            return evaluation
    per_alphabet = {a: 0 for a in names}
    for alphabet in data.alphabets:
        per_alphabet[alphabet] += 1
    held, count = [], 0
    for alphabet in reversed(names[1:]):  # always keep at least the first alphabet for training
        if count >= test_fraction * data.num_classes:
            break
        held.append(alphabet)
        count += per_alphabet[alphabet]
    return sorted(held)


class AlphabetsNotInData(ValueError):
    """Named held-out alphabets are missing from the loaded drawings (so a caller can say what to do instead)."""


def split_by_alphabet(data: EpisodicData, test_alphabets: Sequence[str]) -> tuple[EpisodicData, EpisodicData]:
    """(train, test): every character of a test alphabet goes to test, the rest to train."""
    unknown = sorted(set(test_alphabets) - set(data.alphabets))
    if unknown:
        raise AlphabetsNotInData(f"test alphabets {unknown} are not in the data; available: {data.alphabet_names()}")
    test_set = set(test_alphabets)
    train_ids = [c for c, a in enumerate(data.alphabets) if a not in test_set]
    test_ids = [c for c, a in enumerate(data.alphabets) if a in test_set]
    if not train_ids or not test_ids:
        raise ValueError(f"test alphabets {sorted(test_set)} leave an empty train or test split")
    return data.keep_classes(train_ids), data.keep_classes(test_ids)


@dataclass(frozen=True)
class EpisodicSplit:
    """The train and held-out splits as training and evaluation use them."""

    train: EpisodicData  # rotated and mirrored copies added if configured
    test: EpisodicData
    train_alphabets: tuple[str, ...]
    test_alphabets: tuple[str, ...]
    characters_in_train: int  # before rotations and mirrors
    validation: EpisodicData | None = None  # None when no validation alphabets are configured
    validation_alphabets: tuple[str, ...] = ()

    @property
    def monitor(self) -> EpisodicData:
        """The split training logs report on: validation if there is one, else test."""
        return self.validation if self.validation is not None else self.test

    def describe(self) -> dict:
        described = {
            "train_alphabets": list(self.train_alphabets),
            "test_alphabets": list(self.test_alphabets),
            "train_characters": self.characters_in_train,
            "train_classes": self.train.num_classes,  # rotated and mirrored copies included
            "train_images": int(self.train.images.shape[0]),
            "test_characters": self.test.num_classes,
            "test_images": int(self.test.images.shape[0]),
        }
        if self.validation is not None:
            described["validation_alphabets"] = list(self.validation_alphabets)
            described["validation_characters"] = self.validation.num_classes
        return described


def prepare_split(settings: OmniglotDataSection, sources=None) -> EpisodicSplit:
    """Load `sources` of the [data] section's dataset, hold out the test alphabets, add rotated and
    mirrored training classes as configured."""
    data, sets = load_dataset(settings.dataset, sources, image_size=settings.image_size)
    test_alphabets = list(settings.test_alphabets) or choose_test_alphabets(data, sets, settings.test_fraction)
    overlap = sorted(set(test_alphabets) & set(settings.validation_alphabets))
    if overlap:
        raise ValueError(f"alphabets {overlap} are listed for both validation and test; give each to one split")
    train, test = split_by_alphabet(data, test_alphabets)
    validation = None
    if settings.validation_alphabets:
        train, validation = split_by_alphabet(train, settings.validation_alphabets)
    characters = train.num_classes
    if settings.rotations:
        train = add_rotations(train)
    if settings.mirrors:
        train = add_mirrors(train)
    return EpisodicSplit(
        train=train,
        test=test,
        train_alphabets=tuple(train.alphabet_names()),
        test_alphabets=tuple(sorted(test_alphabets)),
        characters_in_train=characters,
        validation=validation,
        validation_alphabets=tuple(sorted(settings.validation_alphabets)),
    )
