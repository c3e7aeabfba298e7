"""The k-shot run configuration: one frozen dataclass per TOML section, validated on load.

Why a strict loader: a typo in a key (`memroy_size = 64`) must not silently fall back
to the default and cost a night of runs, and an out-of-range value (memory_size 0,
alpha < 0, repeats 0) must be refused before any model is built. Every error names
the file, the key and the allowed values. The resolved configuration (defaults
filled in, command-line overrides applied) is written next to the results with
`to_toml`, so a run directory says exactly what produced it, and resuming a run
with another configuration is refused.

Defaults and why (see also experiments/configs/celebrities.toml):
- memory.memory_size 32: the blog's memory; small enough that slots are reused.
- memory.choose_k 256, alpha 0.1, age_noise 8.0: the paper's values (Kaiser et al. 2017).
- memory.vote_k 1, running_mean false: the paper's 1-NN readout and plain-sum merge.
- finetune.optimizer "adam", learning_rate 1e-5: Adam as in the paper; a small rate
  because a 5-image batch and a margin loss on a pretrained FaceNet move the
  embedding a lot at larger rates (the blog's fine-tuned curves fell below the
  frozen ones).
- finetune.repeats 3, finetune.max_shots 3: the fine-tuned models are the expensive
  part of a run; configs raise them (the demo: 50 repeats of 10 shots from Block8 up).
- finetune.trainable_from "all", steps_per_shot 1: the whole network, one step per
  shot, as the blog; the demo trains from Block8 up (see facenet_tf.trainable_scope).
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODEL_NAMES = (
    "baseline",
    "memory",
    "memory_finetune_phase_off",
    "memory_finetune_phase_on",
    "memory_finetune_phase_off_consistent",
    "memory_finetune_phase_on_consistent",
)
FROZEN_MODELS = ("baseline", "memory")
FINETUNE_MODELS = MODEL_NAMES[2:]
OPTIMIZERS = ("adam", "sgd")


class ConfigError(ValueError):
    """A configuration file or override that cannot be used; the message says why."""


@dataclass(frozen=True)
class RunSection:
    seed: int = 0
    repeats: int = 200  # repeats of the frozen-embedder models (baseline, memory)
    max_shots: int = 10  # frozen models: stop after this many shots (or when a class runs out)
    models: tuple[str, ...] = MODEL_NAMES
    # "shuffle": each repeat shuffles every class; "sorted": the blog's fixed order (at
    # iteration i, image i of each class in sorted file-name order), the same in every repeat
    order: str = "shuffle"
    compare_with: str = ""  # "blog": print the blog's published per-shot accuracies beside the run


@dataclass(frozen=True)
class DataSection:
    source: str = "celebrities"  # a built-in dataset name or a folder root/<label>/<image>
    aligned: bool = False  # images are already face crops: skip MTCNN detection
    skip_bad: bool = False  # non-image files and empty class folders are skipped and listed, not an error
    weights: str = ""  # FaceNet weights: "" = the registry default (20170512-110547), a registry name, or a keras-facenet-style h5
    embeddings: str = ""  # an npz from `kshot embed`; bypasses FaceNet (frozen models only)
    max_classes: int = 0  # 0 = all classes; else the first N labels in sorted order
    images_per_class: int = 0  # 0 = all images; else the first N paths of each class in sorted order


@dataclass(frozen=True)
class MemorySection:
    memory_size: int = 32
    choose_k: int = 256
    alpha: float = 0.1
    age_noise: float = 8.0
    vote_k: int = 1
    running_mean: bool = False
    query_projection: bool = False  # the reference TF1 code's trainable [d, d] query projection


@dataclass(frozen=True)
class FinetuneSection:
    repeats: int = 3
    max_shots: int = 3
    optimizer: str = "adam"
    learning_rate: float = 1e-5
    eval_images_per_class: int = 0  # 0 = evaluate every image not yet fed; else at most N per class
    batch_size: int = 32  # images per FaceNet forward pass when re-embedding the evaluation set
    trainable_from: str = "all"  # first FaceNet block that learns (facenet_tf.trainable_scope); below it is frozen
    steps_per_shot: int = 1  # optimizer steps per learn step: 1 on the fed batch, then passes over all fed so far


@dataclass(frozen=True)
class RunConfig:
    run: RunSection = field(default_factory=RunSection)
    data: DataSection = field(default_factory=DataSection)
    memory: MemorySection = field(default_factory=MemorySection)
    finetune: FinetuneSection = field(default_factory=FinetuneSection)

    def repeats_for(self, model: str) -> int:
        return self.finetune.repeats if model in FINETUNE_MODELS else self.run.repeats

    def max_shots_for(self, model: str) -> int:
        return self.finetune.max_shots if model in FINETUNE_MODELS else self.run.max_shots


SECTIONS = {
    "run": RunSection,
    "data": DataSection,
    "memory": MemorySection,
    "finetune": FinetuneSection,
}

# (section, key) -> (predicate, description of the allowed range)
_RANGES = {
    ("run", "seed"): (lambda v: v >= 0, ">= 0"),
    ("run", "repeats"): (lambda v: v >= 1, ">= 1"),
    ("run", "max_shots"): (lambda v: v >= 1, ">= 1"),
    ("run", "order"): (lambda v: v in ("shuffle", "sorted"), "shuffle or sorted"),
    ("run", "compare_with"): (lambda v: v in ("", "blog"), '"" or "blog"'),
    ("data", "max_classes"): (lambda v: v == 0 or v >= 2, "0 (all) or >= 2"),
    ("data", "images_per_class"): (lambda v: v == 0 or v >= 2, "0 (all) or >= 2"),
    ("memory", "memory_size"): (lambda v: v >= 1, ">= 1"),
    ("memory", "choose_k"): (lambda v: v >= 1, ">= 1"),
    ("memory", "alpha"): (lambda v: v >= 0, ">= 0"),
    ("memory", "age_noise"): (lambda v: v >= 0, ">= 0"),
    ("memory", "vote_k"): (lambda v: v >= 1, ">= 1"),
    ("finetune", "repeats"): (lambda v: v >= 1, ">= 1"),
    ("finetune", "max_shots"): (lambda v: v >= 1, ">= 1"),
    ("finetune", "optimizer"): (lambda v: v in OPTIMIZERS, f"one of {', '.join(OPTIMIZERS)}"),
    ("finetune", "learning_rate"): (lambda v: v > 0, "> 0"),
    ("finetune", "eval_images_per_class"): (lambda v: v >= 0, ">= 0"),
    ("finetune", "batch_size"): (lambda v: v >= 1, ">= 1"),
    ("finetune", "trainable_from"): (lambda v: v in _scopes(), "a FaceNet block name (all, Block35, Mixed_6a, Block17, Mixed_7a, Block8, Block8_6, bottleneck, ...)"),
    ("finetune", "steps_per_shot"): (lambda v: v >= 1, ">= 1"),
}


def _scopes() -> tuple[str, ...]:
    from facenet_tf.trainable_scope import TRAINABLE_FROM_CHOICES

    return TRAINABLE_FROM_CHOICES


def _coerce(value: Any, expected: Any, where: str) -> Any:
    """Check a TOML value against the default's type; ints are accepted for floats."""
    if isinstance(expected, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(expected, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if isinstance(expected, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"{where} must be a finite number, got {value!r}")
        return value
    if isinstance(expected, str):
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    if isinstance(expected, tuple):
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} must be a list of strings, got {value!r}")
        return tuple(value)
    raise TypeError(f"no coercion for {where}")  # a bug in this module, not user input


def _validate(config: RunConfig, origin: str) -> RunConfig:
    for (section, key), (allowed, description) in _RANGES.items():
        value = getattr(getattr(config, section), key)
        if not allowed(value):
            raise ConfigError(f"{origin}: [{section}] {key} = {value!r} is out of range; allowed: {description}")
    models = config.run.models
    if not models:
        raise ConfigError(f"{origin}: [run] models is empty; choose from {', '.join(MODEL_NAMES)}")
    for name in models:
        if name not in MODEL_NAMES:
            raise ConfigError(f"{origin}: [run] models: unknown model {name!r}; choose from {', '.join(MODEL_NAMES)}")
    if len(set(models)) != len(models):
        raise ConfigError(f"{origin}: [run] models lists a model twice: {list(models)}")
    return config


def from_dict(raw: dict, origin: str = "<config>") -> RunConfig:
    """Build and validate a RunConfig from a parsed TOML mapping; `origin` names the file."""
    sections = {}
    for section_name, section_value in raw.items():
        if section_name not in SECTIONS:
            raise ConfigError(
                f"{origin}: unknown section [{section_name}]; allowed sections: {', '.join(SECTIONS)}"
            )
        if not isinstance(section_value, dict):
            raise ConfigError(f"{origin}: {section_name} must be a [{section_name}] table")
        cls = SECTIONS[section_name]
        defaults = cls()
        known = {f.name for f in dataclasses.fields(cls)}
        values = {}
        for key, value in section_value.items():
            if key not in known:
                raise ConfigError(
                    f"{origin}: unknown key {key!r} in [{section_name}]; allowed keys: {', '.join(sorted(known))}"
                )
            values[key] = _coerce(value, getattr(defaults, key), f"{origin}: [{section_name}] {key}")
        sections[section_name] = cls(**values)
    return _validate(RunConfig(**sections), origin)


def load_config(path: str | Path) -> RunConfig:
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError:
        raise FileNotFoundError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    return from_dict(raw, origin=str(path))


def with_overrides(config: RunConfig, origin: str = "command line", **overrides: Any) -> RunConfig:
    """Apply overrides given as section__key=value (None = not given) and re-validate."""
    raw = to_dict(config)
    for dotted, value in overrides.items():
        if value is None:
            continue
        section, key = dotted.split("__", 1)
        raw[section][key] = list(value) if isinstance(value, tuple) else value
    return from_dict(raw, origin=origin)


def to_dict(config: RunConfig) -> dict:
    return {
        name: {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(getattr(config, name)).items()}
        for name in SECTIONS
    }


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} to TOML")


def to_toml(config: RunConfig) -> str:
    """The resolved configuration as TOML; `load_config` reads it back to an equal config."""
    lines = ["# Resolved configuration of this run (defaults filled in, overrides applied)."]
    for section, values in to_dict(config).items():
        lines.append("")
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
    return "\n".join(lines) + "\n"


def config_repeats_note(config: RunConfig) -> str:
    """One sentence saying how many repeats and shots each model runs, and why they differ."""
    parts = [
        f"{m}: {config.repeats_for(m)} repeats, up to {config.max_shots_for(m)} shots"
        for m in config.run.models
    ]
    text = "Repeats and shots per model: " + "; ".join(parts) + "."
    if any(m in FINETUNE_MODELS for m in config.run.models):
        text += (
            f" Fine-tuned models train FaceNet from {config.finetune.trainable_from} up"
            f" ({config.finetune.steps_per_shot} optimizer step(s) per shot) and re-embed the evaluated"
            " images after every learn step, so a repeat costs them far more than a frozen model."
        )
    return text
