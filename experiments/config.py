"""Every experiment's settings: frozen dataclasses, one per TOML section, read by one strict loader.

Why strict: a typo in a key (`memroy_size = 64`) or a section (`[memroy]`) must not
silently fall back to the default and cost a night of runs, and an out-of-range value
(memory_size 0, alpha < 0, repeats 0) must be refused before any model is built. Every
error names the file, the section, the key and the allowed values.

Two experiments, one loader, one memory:
- the face protocol (`kshot run`): [run], [data], [memory], [finetune] -> `RunConfig`;
- Omniglot (`kshot omniglot`): [data], [model], [memory], [train] -> `OmniglotConfig`.
Both share `MemorySection`, the only place a memory is built from settings
(`MemorySection.build`): every key of [memory] reaches memory_module.KaiserMemory in
either experiment. Defaults live in the dataclass fields below and nowhere else; a
field's `allowed` check is stated next to its default.

The resolved configuration (defaults filled in, command-line overrides applied) is
written next to the results with `to_toml`, so a run directory says exactly what
produced it, and `experiments.run_dir` refuses to resume it with another one.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from experiments.methods import METHODS, budget_section, method_of, needs_images

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
DEFAULT_RUN_CONFIG = CONFIG_DIR / "celebrities.toml"
OMNIGLOT_PRESETS = ("fast", "paper", "full")
DEFAULT_OMNIGLOT_PRESET = "full"  # the full background set with the fixed split (issue 15)
OPTIMIZERS = ("adam", "sgd")
# memory_module.memory's choices, restated so that reading a config needs no TensorFlow
# (tests/experiments/test_config.py checks that they agree).
EVICTIONS = ("oldest", "class_balanced")
ON_EVICT = ("drop", "merge")


def _scopes() -> tuple[str, ...]:
    from facenet_tf.architecture import TRAINABLE_FROM_CHOICES

    return TRAINABLE_FROM_CHOICES


class ConfigError(ValueError):
    """A configuration file or override that cannot be used; the message says why."""


def setting(default: Any, allowed: Callable[[Any], bool] | None = None, description: str = "") -> Any:
    """A section field: its default and, optionally, the check its value must pass."""
    return field(default=default, metadata={"allowed": allowed, "description": description})


def at_least(bound: float, default: Any) -> Any:
    return setting(default, lambda v: v >= bound, f">= {bound}")


def zero_or_at_least(bound: int, default: int) -> Any:
    return setting(default, lambda v: v == 0 or v >= bound, f"0 (all) or >= {bound}")


def positive(default: float) -> Any:
    return setting(default, lambda v: v > 0, "> 0")


# ---------------------------------------------------------------- the shared memory


def sweepable(default: int, bound: int) -> Any:
    """An integer setting that may also be a list of integers: a sweep, one model per value."""
    return field(default=default, metadata={
        "allowed": lambda v: all(x >= bound for x in (v if isinstance(v, tuple) else (v,))) and v != (),
        "description": f">= {bound}, or a non-empty list of such values (a sweep)",
        "sweep": True,
    })


@dataclass(frozen=True)
class MemorySection:
    """The Kaiser memory's options; the paper's values (Kaiser et al. 2017) unless said otherwise.

    Write policies beyond the paper (docs/MEMORY_POLICIES.md) are off by default.
    `memory_size` may be a list: every method with a bounded memory then runs once per
    size, on the same shuffles (models named `method@size`).
    """

    memory_size: int | tuple[int, ...] = sweepable(32, 1)  # the blog's memory; small enough that slots are reused
    choose_k: int = at_least(1, 256)
    alpha: float = at_least(0, 0.1)
    age_noise: float = at_least(0, 8.0)
    vote_k: int = at_least(1, 1)  # 1: the paper's 1-NN readout
    running_mean: bool = False  # false: the paper's plain-sum merge
    query_projection: bool = False  # true: the reference TF1 code's trainable [d, d] query projection
    merge_threshold: float = setting(-1.0, lambda v: -1 <= v <= 1, "a cosine similarity in [-1, 1]")  # -1: every hit merges
    eviction: str = setting("oldest", lambda v: v in EVICTIONS, f"one of {', '.join(EVICTIONS)}")
    on_evict: str = setting("drop", lambda v: v in ON_EVICT, f"one of {', '.join(ON_EVICT)}")


    @property
    def sizes(self) -> tuple[int, ...]:
        """The memory sizes of this run: one, or the sweep's."""
        return self.memory_size if isinstance(self.memory_size, tuple) else (self.memory_size,)

    @property
    def is_sweep(self) -> bool:
        return isinstance(self.memory_size, tuple)

    def build(self, key_dim: int, seed: int, **policy):
        """The memory these settings describe, with `policy` overriding fields (a method's fixed options).

        Every field is passed on, so a new option needs no other change. A sweep is not one
        memory: build each size with `dataclasses.replace(section, memory_size=size)`.
        """
        from memory_module import KaiserMemory

        settings = {**dataclasses.asdict(self), **policy}
        if isinstance(settings["memory_size"], (tuple, list)):
            raise ValueError(f"[memory] memory_size = {list(self.sizes)} is a sweep; build one size at a time")
        return KaiserMemory(key_dim=key_dim, seed=seed, **settings)


# ---------------------------------------------------------------- the face protocol


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
    trainable_from: str = setting("Block8", lambda v: v in _scopes(),
                                  "a FaceNet block name (all, Block35, Mixed_6a, Block17, Mixed_7a, Block8, Block8_6, bottleneck, ...)")
    steps_per_shot: int = at_least(1, 1)  # optimizer steps per learn step: 1 on the fed batch, then passes over all fed so far


@dataclass(frozen=True)
class OpenSetSection:
    """Open-set evaluation: identities held out of every repeat, to be rejected as strangers.

    0 strangers (the default) is the closed-set protocol. With N > 0, each repeat holds
    out N identities (the same for every method), never feeds them, and evaluates all
    their images at every shot; an answer counts only when the memory's similarity
    reaches the threshold a gallery of the items fed so far would use at `far`
    (experiments.open_set.fed_threshold).
    """

    strangers: int = at_least(0, 0)
    far: float = setting(0.001, lambda v: 0 < v < 1, "in (0, 1)")


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
        if len(set(models)) != len(models):
            raise ValueError(f"[run] models lists a model twice: {list(models)}")


# ---------------------------------------------------------------- Omniglot


@dataclass(frozen=True)
class OmniglotDataSection:
    image_size: int = at_least(4, 28)  # the paper's size
    rotations: bool = True  # add 90/180/270-degree rotations of training characters as new classes
    mirrors: bool = False  # add the left-right mirror image of every training class as a new class
    test_alphabets: tuple[str, ...] = ()  # empty: chosen by omniglot.data.choose_test_alphabets
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
    """Classifier pre-training before the memory-loss training (experiments/omniglot/pretrain.py)."""

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
    """Episodic fine-tuning between the classifier and the memory-loss stage (experiments/omniglot/finetune.py)."""

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

    def build_memory(self, seed_offset: int = 0):
        return self.memory.build(key_dim=self.model.output_dim, seed=self.train.seed + seed_offset)


# ---------------------------------------------------------------- the loader


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
        item_type = type(expected[0]) if expected else str
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, item_type) and not isinstance(v, bool) for v in value
        ):
            raise ConfigError(f"{where} must be a list of {item_type.__name__}, got {value!r}")
        return tuple(value)
    raise TypeError(f"no coercion for {where}")  # a bug in this module, not user input


def _section_types(schema: type) -> dict[str, type]:
    defaults = schema()
    return {f.name: type(getattr(defaults, f.name)) for f in dataclasses.fields(schema)}


def from_dict(raw: dict, schema: type = RunConfig, origin: str = "<config>"):
    """Build and validate a `schema` config (RunConfig or OmniglotConfig) from parsed TOML."""
    sections = _section_types(schema)
    defaults = schema()
    built = {}
    for section_name, section_value in raw.items():
        if not isinstance(section_value, dict):
            raise ConfigError(
                f"{origin}: {section_name} = {section_value!r} is outside any section; "
                f"put it under one of [{'], ['.join(sections)}]"
            )
        if section_name not in sections:
            raise ConfigError(f"{origin}: unknown section [{section_name}]; allowed sections: {', '.join(sections)}")
        cls = sections[section_name]
        base = getattr(defaults, section_name)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values = {}
        for key, value in section_value.items():
            if key not in fields:
                raise ConfigError(
                    f"{origin}: unknown key {key!r} in [{section_name}]; allowed keys: {', '.join(sorted(fields))}"
                )
            where = f"{origin}: [{section_name}] {key}"
            if fields[key].metadata.get("sweep") and isinstance(value, (list, tuple)):
                value = tuple(_coerce(item, getattr(base, key), f"{where} (each value)") for item in value)
                value = value[0] if len(value) == 1 else value
            else:
                value = _coerce(value, getattr(base, key), where)
            allowed = fields[key].metadata.get("allowed")
            if allowed is not None and not allowed(value):
                shown = list(value) if isinstance(value, tuple) else value
                raise ConfigError(
                    f"{where} = {shown!r} is out of range; allowed: {fields[key].metadata['description']}"
                )
            values[key] = value
        built[section_name] = dataclasses.replace(base, **values)
    config = dataclasses.replace(defaults, **built)
    try:
        config.check()
    except ValueError as error:
        raise ConfigError(f"{origin}: {error}") from None
    return config


def read_toml(path: str | Path, what: str = "config file") -> dict:
    """A TOML file's tables; a missing file or broken TOML is an error naming the file."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None


def load_config(path: str | Path, schema: type = RunConfig):
    return from_dict(read_toml(path), schema, origin=str(path))


def with_overrides(config, origin: str = "command line", **overrides: Any):
    """Apply overrides given as section__key=value (None = not given) and re-validate."""
    raw = to_dict(config)
    for dotted, value in overrides.items():
        if value is None:
            continue
        section, key = dotted.split("__", 1)
        raw[section][key] = list(value) if isinstance(value, tuple) else value
    return from_dict(raw, type(config), origin=origin)


def to_dict(config) -> dict:
    return {
        f.name: {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(getattr(config, f.name)).items()}
        for f in dataclasses.fields(config)
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


def to_toml(config) -> str:
    """The resolved configuration as TOML; `load_config` reads it back to an equal config."""
    lines = ["# Resolved configuration of this run (defaults filled in, overrides applied)."]
    for section, values in to_dict(config).items():
        lines.append("")
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
    return "\n".join(lines) + "\n"


def with_repeats(config: RunConfig, repeats: int) -> RunConfig:
    """`config` with every budget's repeats set to `repeats` (what a repeat's identity leaves out)."""
    return dataclasses.replace(
        config,
        run=dataclasses.replace(config.run, repeats=repeats),
        finetune=dataclasses.replace(config.finetune, repeats=repeats),
    )


def differences(saved, now, ignore: tuple[str, ...] = ()) -> list[str]:
    """'[section] key: saved X, now Y' for every setting that differs, except `ignore` ('section.key')."""
    old, new = to_dict(saved), to_dict(now)
    return [
        f"[{section}] {key}: saved {old[section][key]!r}, now {value!r}"
        for section, values in new.items()
        for key, value in values.items()
        if f"{section}.{key}" not in ignore and old[section][key] != value
    ]


def omniglot_preset_path(name: str) -> Path:
    if name not in OMNIGLOT_PRESETS:
        raise ValueError(f"unknown Omniglot preset {name!r}; choose one of {list(OMNIGLOT_PRESETS)}")
    return CONFIG_DIR / f"omniglot_{name}.toml"


def load_omniglot_preset(name: str = DEFAULT_OMNIGLOT_PRESET) -> OmniglotConfig:
    return load_config(omniglot_preset_path(name), OmniglotConfig)


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
