"""The face k-shot run's settings (`kshot run`): [run], [data], [memory], [finetune], [open_set].

The schema is read by experiments.core.settings; this module says what a face run
can be told and which budget each method runs (experiments.faces.methods names the
methods and the section whose repeats and max_shots each one uses).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from experiments.core import settings
from experiments.core.settings import (  # noqa: F401 - the loader's names, for callers that read face configs
    CONFIG_DIR,
    EVICTIONS,
    ON_EVICT,
    ConfigError,
    MemorySection,
    at_least,
    differences,
    positive,
    read_toml,
    setting,
    speed_only,
    to_dict,
    to_toml,
    with_overrides,
    zero_or_at_least,
)
from experiments.faces.methods import METHODS, budget_section, method_of, needs_images
from facenet_tf.architecture import TRAINABLE_FROM_CHOICES

DEFAULT_RUN_CONFIG = CONFIG_DIR / "celebrities.toml"
OPTIMIZERS = ("adam", "sgd")

@dataclass(frozen=True)
class RunSection:
    seed: int = at_least(0, 0)
    repeats: int = at_least(1, 200)  # repeats of the methods budgeted by [run] (the frozen ones)
    max_shots: int = at_least(1, 10)  # stop after this many shots (or when a class runs out)
    # the demo's: the blog's comparison plus the consistent phase-ON variant; policies and
    # fixed-size baselines are opt-in
    models: tuple[str, ...] = ("baseline", "memory", "memory_finetune_phase_off", "memory_finetune_phase_on",
                               "memory_finetune_phase_on_consistent")
    # "shuffle": each repeat shuffles every class; "sorted": the blog's fixed order (at
    # iteration i, image i of each class in sorted file-name order), the same in every repeat
    order: str = setting("shuffle", lambda v: v in ("shuffle", "sorted"), "shuffle or sorted")
    # "blog": print the blog's published per-shot accuracies beside the run
    compare_with: str = setting("", lambda v: v in ("", "blog"), '"" or "blog"')
    # repeats of a frozen method per batched call (experiments.faces.chunks; the same 1000 as its
    # DEFAULT_CHUNK_SIZE, which needs TensorFlow); 1: one repeat at a time. Speed only, never results.
    chunk_size: int = speed_only(1000, ">= 1 (repeats per batched call; 1 runs one repeat at a time)")


@dataclass(frozen=True)
class DataSection:
    source: str = "celebrities"  # a built-in dataset name or a folder root/<label>/<image>
    aligned: bool = False  # images are already face crops: skip MTCNN detection
    skip_bad: bool = False  # non-image files and empty class folders are skipped and listed, not an error
    weights: str = ""  # FaceNet weights: "" = the registry default, a registry name, or a keras-facenet-style h5
    embeddings: str = ""  # an npz from `kshot embed`; bypasses FaceNet (methods that need no images only)
    max_classes: int = zero_or_at_least(2, 0)  # 0 = all classes; else the first N labels in sorted order
    images_per_class: int = zero_or_at_least(2, 0)  # 0 = all images; else the first N paths of each class, sorted
    allow_duplicates: bool = False  # identical files under two classes are an error unless this is true


@dataclass(frozen=True)
class FinetuneSection:
    """Fine-tuning options, and the budget of the methods budgeted by [finetune]."""

    repeats: int = at_least(1, 50)  # the demo's: enough for a paired interval; each repeat costs seconds
    max_shots: int = at_least(1, 10)  # as many shots as the frozen methods
    optimizer: str = setting("adam", lambda v: v in OPTIMIZERS, f"one of {', '.join(OPTIMIZERS)}")
    # Adam as in the paper; a small rate because a 5-image batch and a margin loss on a
    # pretrained FaceNet move the embedding a lot at larger rates.
    learning_rate: float = positive(1e-5)
    eval_images_per_class: int = at_least(0, 0)  # 0 = evaluate every image not yet fed; else at most N per class
    batch_size: int = at_least(1, 32)  # images per FaceNet forward pass when re-embedding the evaluation set
    # the first FaceNet block that learns (facenet_tf.trainable_scope); everything below it is frozen.
    # Block8 up (the demo's) keeps a fine-tuned repeat to seconds on a CPU; "all" is the blog's whole network.
    trainable_from: str = setting("Block8", lambda v: v in TRAINABLE_FROM_CHOICES,
                                  "a FaceNet block name (all, Block35, Mixed_6a, Block17, Mixed_7a, Block8, Block8_6, bottleneck, ...)")
    steps_per_shot: int = at_least(1, 1)  # optimizer steps per learn step: 1 on the fed batch, then passes over all fed so far


@dataclass(frozen=True)
class OpenSetSection:
    """Open-set evaluation: identities held out of every repeat, to be rejected as strangers.

    0 strangers (the default) is the closed-set protocol. With N > 0, each repeat holds
    out N identities (the same for every method), never feeds them, and evaluates all
    their images at every shot; an answer counts only when the memory's similarity
    reaches the threshold a gallery of the items fed so far would use at `fpir`, the
    share of strangers whose best answer may reach it (experiments.faces.open_set.fed_threshold).
    """

    strangers: int = at_least(0, 0)
    fpir: float = setting(0.001, lambda v: 0 < v < 1, "in (0, 1)")


@dataclass(frozen=True)
class Budget:
    """How much of the protocol one method runs."""

    repeats: int
    max_shots: int
    eval_images_per_class: int  # 0 = every image not yet fed


@dataclass(frozen=True)
class RunConfig:
    run: RunSection = field(default_factory=RunSection)
    data: DataSection = field(default_factory=DataSection)
    memory: MemorySection = field(default_factory=MemorySection)
    finetune: FinetuneSection = field(default_factory=FinetuneSection)
    open_set: OpenSetSection = field(default_factory=OpenSetSection)

    def budget(self, method: str) -> Budget:
        section = getattr(self, budget_section(method_of(method)))
        return Budget(section.repeats, section.max_shots, getattr(section, "eval_images_per_class", 0))

    def check(self) -> None:
        models = self.run.models
        if not models:
            raise ValueError(f"[run] models is empty; choose from {', '.join(METHODS)}")
        for name in models:
            if name not in METHODS:
                raise ValueError(f"[run] models: unknown model {name!r}; choose from {', '.join(METHODS)}")
        settings.refuse_duplicates(models, "[run] models")


def load_config(path: str | Path) -> RunConfig:
    """A face run's configuration file, checked (experiments.core.settings.load_config with this schema)."""
    return settings.load_config(path, RunConfig)


def with_repeats(config: RunConfig, repeats: int) -> RunConfig:
    """`config` with every budget's repeats set to `repeats` and the speed-only settings at their
    defaults (what a repeat's identity leaves out)."""
    identity = settings.results_only(config)
    return dataclasses.replace(
        identity,
        run=dataclasses.replace(identity.run, repeats=repeats),
        finetune=dataclasses.replace(identity.finetune, repeats=repeats),
    )


def config_repeats_note(config: RunConfig) -> str:
    """One sentence saying how many repeats and shots each method runs, and why they differ."""
    parts = []
    for method in config.run.models:
        budget = config.budget(method)
        parts.append(f"{method}: {budget.repeats} repeats, up to {budget.max_shots} shots")
    text = "Repeats and shots per model: " + "; ".join(parts) + "."
    if any(needs_images(m) for m in config.run.models):
        text += (
            f" Fine-tuned models train FaceNet from {config.finetune.trainable_from} up"
            f" ({config.finetune.steps_per_shot} optimizer step(s) per shot) and re-embed the evaluated"
            " images after every learn step, so a repeat costs them far more than a frozen one"
            " (timings.csv has the cost)."
        )
    return text


def from_dict(raw: dict, origin: str = "<config>") -> RunConfig:
    """A face run's configuration from parsed TOML (experiments.core.settings.from_dict with this schema)."""
    return settings.from_dict(raw, RunConfig, origin)
