"""The fixed split of Omniglot's 30 background alphabets into train / validation / test.

The evaluation alphabets of Lake et al. are not part of the shared data, so results on
"held-out alphabets" mean background alphabets that training never sees. The split is
fixed by a rule on the sorted alphabet names, so anyone can recompute it:

- test: every sixth alphabet from position 3 (positions 3, 9, 15, 21, 27): Armenian,
  Burmese, Gujarati, Latin, Syriac - 172 characters. The reported tables use these only.
- validation: every twelfth from position 0 (positions 0, 12, 24): Alphabet of the Magi,
  Futurama, N'Ko - 79 characters. Recipes are chosen and training is monitored on these.
- train: the other 22 alphabets - 713 characters, 2,852 classes with rotations.

No recipe choice looked at the test alphabets; they were fixed before the first run.
"""

from __future__ import annotations

from typing import Sequence

BACKGROUND_ALPHABET_COUNT = 30
TEST_ALPHABETS = ("Armenian", "Burmese_(Myanmar)", "Gujarati", "Latin", "Syriac_(Estrangelo)")
VALIDATION_ALPHABETS = ("Alphabet_of_the_Magi", "Futurama", "N_Ko")


def rule_split(names: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(test, validation) alphabets of 30 sorted names by the rule in the module docstring."""
    names = sorted(names)
    if len(names) != BACKGROUND_ALPHABET_COUNT:
        raise ValueError(f"the fixed split is defined for the {BACKGROUND_ALPHABET_COUNT} background alphabets, got {len(names)}")
    return tuple(names[i] for i in range(3, 30, 6)), tuple(names[i] for i in range(0, 30, 12))
