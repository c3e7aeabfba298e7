"""Which drawings a trained checkpoint is measured on: its test or validation alphabets, or a set it never saw.

A run directory (and the shipped checkpoint) records in split.json which background
alphabets it trained on, chose its recipe on (validation) and held out for the report
(test). `eval`, `compare`, `stream` and `embed` measure one of three parts:

- "test": the run's test alphabets, found again in `--data` (the default; the reported tables);
- "validation": the run's validation alphabets, where recipes are compared;
- "unseen": every drawing of `--data`, for a character set the project never had, such
  as Lake et al.'s 20 evaluation alphabets. Alphabets the run trained on or validated on
  are refused by name, so a measurement called "unseen" cannot silently include them.
  Names are all that is checked: a renamed copy of a training alphabet would pass.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Sequence

from experiments.core.run_files import SPLIT_FILE
from experiments.episodic.checkpoints import restore_embedder
from experiments.episodic.datasets import load_dataset
from experiments.episodic.episodes import alphabet_pools
from experiments.episodic.settings import HELD_OUT_SPLITS
from experiments.episodic.split import AlphabetsNotInData, prepare_split


def restore_with_data(run_dir: str | os.PathLike, sources=None):
    """(config, trained embedder, step, split.EpisodicSplit) with exactly the alphabets the run held out (its split.json)."""
    config, embedder, step = restore_embedder(run_dir)
    data_settings = config.data
    saved = _saved_split(run_dir)
    if saved is not None:
        data_settings = dataclasses.replace(data_settings, test_alphabets=tuple(saved["test_alphabets"]),
                                            validation_alphabets=tuple(saved.get("validation_alphabets", ())))
    try:
        return config, embedder, step, prepare_split(data_settings, sources)
    except AlphabetsNotInData as error:
        if data_settings.test_alphabets:
            raise AlphabetsNotInData(f"{error}. The data does not hold this checkpoint's test alphabets; to measure it "
                                     "on a character set it never saw, pass --split unseen") from error
        raise


def restore_held_out(run_dir: str | os.PathLike, sources=None, split: str = "test", ways: Sequence[int] = (),
                     within_alphabet: bool = False):
    """(config, trained embedder, step, drawings, alphabet names, description) of one held-out part.

    `description` is the run's split.json as evaluation reports it, with `<split>_alphabets`
    and `<split>_characters` for the part measured. Refused, before anything is embedded,
    when the part has fewer characters than the widest of `ways`, or, for tasks drawn
    `within_alphabet`, when none of its alphabets has that many."""
    if split not in HELD_OUT_SPLITS:
        raise ValueError(f"split must be one of {', '.join(HELD_OUT_SPLITS)}, got {split!r}")
    if split == "unseen":
        config, embedder, step, part, description = _restore_unseen(run_dir, sources)
        alphabets = tuple(description["unseen_alphabets"])
    else:
        config, embedder, step, data = restore_with_data(run_dir, sources)
        description = data.describe()
        if split == "test":
            part, alphabets = data.test, tuple(data.test_alphabets)
        elif data.validation is None:
            raise ValueError(f"{run_dir} was trained without validation alphabets; use its test split instead")
        else:
            part, alphabets = data.validation, tuple(data.validation_alphabets)
    for n in ways:
        if n > part.num_classes:
            raise ValueError(
                f"{n}-way needs {n} held-out characters but the {split} alphabets "
                f"({', '.join(alphabets)}) have {part.num_classes}"
            )
    if within_alphabet and ways:
        alphabet_pools(part, max(ways))  # refuses, naming the largest alphabet, when none is wide enough
    return config, embedder, step, part, alphabets, description


def _saved_split(run_dir) -> dict | None:
    path = Path(run_dir) / SPLIT_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _restore_unseen(run_dir, sources) -> tuple:
    """Every drawing of `sources`, refusing alphabets the run trained or validated on."""
    saved = _saved_split(run_dir)
    if saved is None or "train_alphabets" not in saved:
        raise ValueError(f"{run_dir} has no {SPLIT_FILE} naming its training alphabets, so it cannot be checked that "
                         "--data is unseen; use --split test")
    config, embedder, step = restore_embedder(run_dir)
    data, _ = load_dataset(config.data.dataset, sources, image_size=config.data.image_size)
    seen = {"trained on": saved["train_alphabets"], "validated on": saved.get("validation_alphabets", [])}
    for role, names in seen.items():
        overlap = sorted(set(names) & set(data.alphabets))
        if overlap:
            raise ValueError(
                f"--split unseen: the data holds {len(overlap)} alphabet(s) this checkpoint was {role} "
                f"({', '.join(overlap)}); pass --data with only characters it never saw, "
                "or measure its own held-out alphabets with --split test")
    description = {
        key: saved[key] for key in ("train_alphabets", "train_characters", "train_classes",
                                    "train_classes_with_rotations") if key in saved}
    description.update(unseen_alphabets=data.alphabet_names(), unseen_characters=data.num_classes,
                       unseen_images=int(data.images.shape[0]))
    return config, embedder, step, data, description

