"""Omniglot's settings (`kshot omniglot`): [data], [model], [memory], [train], [pretrain], [finetune].

The schema is read by experiments.core.settings; the presets (fast, paper, full) are
TOML files in experiments/configs/. Also here, for the command line and every evaluation:
the parts of a checkpoint evaluation may read, and the one place that says which memory
kind each readout label of the results files stands for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from experiments.core.settings import (
    CONFIG_DIR,
    MemorySection,
    at_least,
    load_config,
    positive,
    setting,
)
from experiments.episodic.datasets import DATASETS, DEFAULT_DATASET

OMNIGLOT_PRESETS = ("fast", "paper", "full")
DEFAULT_OMNIGLOT_PRESET = "full"  # the full background set with the fixed split
HELD_OUT_SPLITS = ("test", "validation", "unseen")  # what evaluation may read: see experiments.episodic.split

# Readouts: the label each has in results files, and the memory kind
# (experiments.core.memories.build_memory) it is built as. In code an idea has one name,
# its kind; the labels are those docs/results/*.json already carry and the docs render,
# so they stay. Hence store-all nearest neighbour (kind "store_all") is labelled "1-NN"
# in the N-way k-shot tables and Lake's runs and "store-all" in the stream's rows, and
# class means (kind "class_means") are labelled "prototype".
READOUT_KINDS = {"memory": "kaiser", "1-NN": "store_all", "prototype": "class_means"}
READOUTS = tuple(READOUT_KINDS)  # the readouts of every N-way k-shot table, in table order
STREAM_READOUT_KINDS = {"store-all": "store_all", "memory": "kaiser", "fifo": "fifo", "reservoir": "reservoir",
                        "prototype": "class_means"}
STREAM_READOUTS = ("store-all", "memory", "fifo")  # the stream's rows unless others are asked for


@dataclass(frozen=True)
class OmniglotDataSection:
    # the registry name (experiments.episodic.datasets) of the images to train and evaluate on
    dataset: str = setting(DEFAULT_DATASET, lambda v: v in DATASETS, f"one of {', '.join(DATASETS)}")
    image_size: int = at_least(4, 28)  # the paper's size
    rotations: bool = True  # add 90/180/270-degree rotations of training characters as new classes
    mirrors: bool = False  # add the left-right mirror image of every training class as a new class
    test_alphabets: tuple[str, ...] = ()  # empty: chosen by experiments.episodic.split.choose_test_alphabets
    # used only when test_alphabets is empty and there is no evaluation set
    test_fraction: float = setting(0.2, lambda v: 0 < v < 1, "between 0 and 1")
    validation_alphabets: tuple[str, ...] = ()  # held out from training to choose recipes on; empty: none


@dataclass(frozen=True)
class OmniglotModelSection:
    key_dim: int = at_least(1, 128)
    channels: tuple[int, ...] = setting((32, 64), lambda v: 1 <= len(v) <= 4 and min(v) >= 1,
                                      "one to four integers >= 1, one per block")
    key_dropout: float = setting(0.2, lambda v: 0 <= v < 1, "in [0, 1)")  # the paper: 0.7 (keep_prob 0.3)
    batch_norm: bool = False  # batch normalisation after every convolution
    # copies of the network from different initial weights; the key joins their unit keys
    members: int = setting(1, lambda v: 1 <= v <= 8, "an integer from 1 to 8")

    @property
    def output_dim(self) -> int:
        """Width of the key the memory stores: key_dim per member."""
        return self.key_dim * self.members


@dataclass(frozen=True)
class OmniglotTrainSection:
    seed: int = at_least(0, 0)
    steps: int = at_least(1, 2000)  # optimizer updates; one update per batch of episodes
    episode_width: int = at_least(1, 5)
    episode_length: int = at_least(1, 30)
    batch_size: int = at_least(1, 8)
    learning_rate: float = positive(1e-3)
    adam_epsilon: float = positive(1e-4)  # as in the paper's code
    grad_clip_norm: float = positive(5.0)  # as in the paper's code
    lifelong: bool = False  # keep the memory across episode batches (labels = class ids) instead of clearing it
    checkpoint_every: int = at_least(1, 250)
    validate_every: int = at_least(1, 250)
    validation_episodes: int = at_least(1, 32)  # held-out episodes per validation (per-shot accuracy in the log)


@dataclass(frozen=True)
class OmniglotPretrainSection:
    """Classifier pre-training before the memory-loss training (experiments/episodic/training/pretrain.py)."""

    steps: int = at_least(0, 0)  # 0: the memory-loss training starts from random weights
    batch_size: int = at_least(1, 128)
    learning_rate: float = positive(2e-3)  # decayed to 0 by a cosine schedule over `steps`
    shift: int = at_least(0, 2)  # random translation of up to this many pixels
    rotation: float = setting(0.0, lambda v: 0 <= v <= 180, "in [0, 180]")  # random rotation, degrees
    zoom: float = setting(0.0, lambda v: 0 <= v < 1, "in [0, 1)")  # random scaling in [1 - zoom, 1 + zoom]
    scale: float = positive(30.0)  # initial temperature of the cosine softmax (learned)
    # additive cosine margin (CosFace): the true class's cosine minus this before the softmax
    margin: float = setting(0.0, lambda v: 0 <= v < 1, "in [0, 1)")
    validate_every: int = at_least(1, 500)


@dataclass(frozen=True)
class OmniglotFinetuneSection:
    """Episodic fine-tuning between the classifier and the memory-loss stage (experiments/episodic/training/finetune.py)."""

    steps: int = at_least(0, 0)  # episodes, one update each; 0: the memory stage starts from the classifier
    ways: int = at_least(2, 20)  # classes per episode
    shots: int = at_least(1, 1)  # support drawings per class (their mean key is the prototype)
    queries: int = at_least(1, 2)  # query drawings per class
    learning_rate: float = positive(3e-4)  # Adam, constant
    scale: float = positive(30.0)  # fixed temperature of the cosine softmax
    within_alphabet: bool = False  # every episode's classes from one training alphabet
    validate_every: int = at_least(1, 500)


@dataclass(frozen=True)
class OmniglotConfig:
    data: OmniglotDataSection = field(default_factory=OmniglotDataSection)
    model: OmniglotModelSection = field(default_factory=OmniglotModelSection)
    memory: MemorySection = field(default_factory=lambda: MemorySection(memory_size=1024))
    train: OmniglotTrainSection = field(default_factory=OmniglotTrainSection)
    pretrain: OmniglotPretrainSection = field(default_factory=OmniglotPretrainSection)
    finetune: OmniglotFinetuneSection = field(default_factory=OmniglotFinetuneSection)

    def check(self) -> None:
        if self.memory.is_sweep:
            raise ValueError(f"[memory] memory_size must be one integer for Omniglot training, got {list(self.memory.sizes)}")
        if self.train.episode_length < self.train.episode_width:
            raise ValueError(
                f"[train] episode_length ({self.train.episode_length}) must be >= episode_width "
                f"({self.train.episode_width}) so every class is shown at least once"
            )


def omniglot_preset_path(name: str) -> Path:
    if name not in OMNIGLOT_PRESETS:
        raise ValueError(f"unknown Omniglot preset {name!r}; choose one of {list(OMNIGLOT_PRESETS)}")
    return CONFIG_DIR / f"omniglot_{name}.toml"


def load_omniglot_preset(name: str = DEFAULT_OMNIGLOT_PRESET) -> OmniglotConfig:
    return load_config(omniglot_preset_path(name), OmniglotConfig)
