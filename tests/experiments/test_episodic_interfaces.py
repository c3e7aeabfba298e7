"""The episodic experiment's seams: the task spec, the dataset registry, the stage skeleton."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from experiments.core.settings import ConfigError, from_dict, to_toml
from experiments.episodic import datasets
from experiments.episodic.data import EpisodicData
from experiments.episodic.evaluation.task_spec import TaskSpec
from experiments.episodic.settings import OmniglotConfig, OmniglotDataSection
from experiments.episodic.split import prepare_split
from experiments.episodic.training.stages import MONITOR_TASKS, rounded_mean, run_stage

# ---------------------------------------------------------------- TaskSpec


def test_a_task_spec_is_a_frozen_grid_with_the_command_lines_defaults():
    tasks = TaskSpec(ways=[5, 20], shots=[1, 5], episodes=200)
    assert tasks.ways == (5, 20) and tasks.shots == (1, 5)  # lists from argparse become tuples
    assert tasks.cells == [(5, 1), (5, 5), (20, 1), (20, 5)]
    assert tasks.per_shot_count == 200 and tasks.rounds == 6
    assert dataclasses.replace(tasks, per_shot_episodes=0).per_shot_count == 0
    assert tasks == TaskSpec(ways=(5, 20), shots=(1, 5), episodes=200) and hash(tasks) == hash(TaskSpec(
        ways=(5, 20), shots=(1, 5), episodes=200))
    with pytest.raises(dataclasses.FrozenInstanceError):
        tasks.seed = 1
    assert MONITOR_TASKS.cells == [(5, 1), (20, 1)] and MONITOR_TASKS.episodes == 200


@pytest.mark.parametrize("fields, message", [
    ({"episodes": 1}, "episodes must be >= 2 for a confidence interval, got 1"),
    ({"queries": 0}, "queries must be >= 1"),
    ({"split": "train"}, "split must be one of test, validation, unseen"),
    ({"ways": []}, "ways and shots must be one or more integers >= 1"),
    ({"shots": [0]}, "ways and shots must be one or more integers >= 1"),
    ({"per_shot_episodes": -1}, "per_shot_episodes must be >= 0"),
])
def test_a_task_spec_refuses_tasks_that_cannot_be_drawn_or_reported(fields, message):
    with pytest.raises(ValueError, match=message):
        TaskSpec(**fields)


# ---------------------------------------------------------------- the dataset registry


def test_omniglot_is_the_registrys_first_dataset_and_the_default():
    assert list(datasets.DATASETS) == ["omniglot"] and datasets.DEFAULT_DATASET == "omniglot"
    assert OmniglotDataSection().dataset == "omniglot"
    assert 'dataset = "omniglot"' in to_toml(OmniglotConfig())
    with pytest.raises(ConfigError, match="dataset = 'mnist' is out of range; allowed: one of omniglot"):
        from_dict({"data": {"dataset": "mnist"}}, OmniglotConfig)
    with pytest.raises(ValueError, match="unknown episodic dataset 'mnist'; choose one of omniglot"):
        datasets.load_dataset("mnist", None, 28)


def test_a_second_dataset_is_one_loader_and_one_entry(monkeypatch):
    """Whatever the loader returns is split by alphabet, and its training classes copied, like Omniglot's."""
    labels = np.repeat(np.arange(6), 3).astype(np.int32)
    toy = EpisodicData(images=np.arange(18 * 4 * 4, dtype=np.uint8).reshape(18, 4, 4), labels=labels,
                       characters=tuple(f"c{i}" for i in range(6)), alphabets=("A", "A", "B", "B", "C", "C"),
                       drawers=tuple(f"{i}.png" for i in range(18)))
    asked = []

    def load_toy(sources, image_size):
        asked.append((sources, image_size))
        return toy, {}

    monkeypatch.setitem(datasets.DATASETS, "toy", load_toy)
    settings = OmniglotDataSection(dataset="toy", image_size=4, rotations=True, test_alphabets=("C",),
                                   validation_alphabets=("B",))
    split = prepare_split(settings, sources=["somewhere"])
    assert asked == [(["somewhere"], 4)]
    assert split.test.characters == ("c4", "c5") and split.validation.characters == ("c2", "c3")
    assert split.train.num_classes == 8 and split.characters_in_train == 2  # two characters, four turns each


# ---------------------------------------------------------------- the stage skeleton


class Step:
    """A stand-in for a stage's step counter (a tf.Variable in the stages)."""

    value = 0

    def assign(self, value):
        self.value = value


def test_every_stage_runs_on_one_skeleton_of_validations_and_checkpoints():
    validated, checkpointed, drawn = [], [], []

    def draw(step):
        drawn.append(step)
        return (step,)

    def update(step):
        return float(step), {"step": step}

    def on_validate(done, losses, outcomes, seconds):
        validated.append((done, losses, [o["step"] for o in outcomes]))
        assert seconds >= 0

    step = Step()
    seconds = run_stage("toy", "batch", 2, 9, 3, draw, update, step, 10.0, on_validate, False,
                        checkpoint_every=4, on_checkpoint=checkpointed.append)
    assert drawn == list(range(2, 9)) and step.value == 9
    # resumed at 2: validations after updates 3, 6 and the last, each with the updates since the one before
    assert validated == [(3, [2.0], [2]), (6, [3.0, 4.0, 5.0], [3, 4, 5]), (9, [6.0, 7.0, 8.0], [6, 7, 8])]
    assert checkpointed == [4, 8, 9]
    assert seconds >= 10.0  # the clock goes on from the offset
    assert rounded_mean([0.123456, np.float32(0.2)]) == 0.1617
