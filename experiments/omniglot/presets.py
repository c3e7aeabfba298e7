"""Omniglot run settings: one frozen dataclass, read strictly from TOML, with named presets.

Presets live in `experiments/configs/omniglot_<name>.toml`:
- `fast` (the default) trains in well under 30 minutes on a 2-core CPU: narrower
  convolutions, a small memory, a few thousand episode batches.
- `paper` is Kaiser et al. (2017): 256-d key, memory 8192, batch 16, episode length
  30, Adam at 1e-4, keep_prob 0.3 on the key. The paper's TF1 code defaults to a
  128-d key "for speed"; users who kept it reported about 40% at 20-way 1-shot, so the
  paper's 20-way numbers need the 256-d key.

A typo in a key or a value out of range is refused with the file and key named, and
the resolved settings are saved next to the checkpoints (`config.toml`), so a run
directory says what produced it and resuming with other settings is refused.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
PRESETS = ("fast", "paper", "full")
DEFAULT_PRESET = "fast"


@dataclass(frozen=True)
class OmniglotConfig:
    # data
    image_size: int = 28  # the paper's size
    rotations: bool = True  # add 90/180/270-degree rotations of training characters as new classes
    test_alphabets: tuple[str, ...] = ()  # empty: chosen by data.choose_test_alphabets
    test_fraction: float = 0.2  # used only when test_alphabets is empty and there is no evaluation set
    validation_alphabets: tuple[str, ...] = ()  # held out from training to choose recipes on; empty: none
    # embedder
    key_dim: int = 128
    channels: tuple[int, int] = (32, 64)
    key_dropout: float = 0.2  # the paper: 0.7 (keep_prob 0.3)
    batch_norm: bool = False  # batch normalisation after every convolution
    # memory (Kaiser et al. 2017 values unless said otherwise)
    memory_size: int = 1024
    choose_k: int = 256
    alpha: float = 0.1
    age_noise: float = 8.0
    # training
    seed: int = 0
    steps: int = 2000  # optimizer updates; one update per batch of episodes
    episode_width: int = 5
    episode_length: int = 30
    batch_size: int = 8
    learning_rate: float = 1e-3
    adam_epsilon: float = 1e-4  # as in the paper's code
    grad_clip_norm: float = 5.0  # as in the paper's code
    lifelong: bool = False  # keep the memory across episode batches (labels = class ids) instead of clearing it
    checkpoint_every: int = 250
    validate_every: int = 250
    validation_episodes: int = 32  # held-out episodes per validation (per-shot accuracy in the log)
    # classifier pre-training before the memory-loss training (experiments/omniglot/pretrain.py)
    pretrain_steps: int = 0  # 0: start the memory-loss training from random weights
    pretrain_batch_size: int = 128
    pretrain_learning_rate: float = 2e-3  # decayed to 0 by a cosine schedule over pretrain_steps
    pretrain_shift: int = 2  # random translation of up to this many pixels
    pretrain_rotation: float = 0.0  # random rotation of up to this many degrees (0: none)
    pretrain_zoom: float = 0.0  # random scaling by a factor in [1 - zoom, 1 + zoom] (0: none)
    pretrain_scale: float = 30.0  # initial temperature of the cosine softmax (learned)
    pretrain_validate_every: int = 500

    def __post_init__(self) -> None:
        positive = (
            "image_size key_dim memory_size choose_k steps episode_width episode_length batch_size "
            "checkpoint_every validate_every validation_episodes"
        ).split()
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.pretrain_steps < 0 or self.pretrain_shift < 0:
            raise ValueError(f"pretrain_steps and pretrain_shift must be >= 0, got {self.pretrain_steps} and {self.pretrain_shift}")
        for name in ("pretrain_batch_size", "pretrain_validate_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.pretrain_rotation <= 180.0 or not 0.0 <= self.pretrain_zoom < 1.0:
            raise ValueError(f"pretrain_rotation must be in [0, 180] and pretrain_zoom in [0, 1), "
                             f"got {self.pretrain_rotation} and {self.pretrain_zoom}")
        if self.pretrain_learning_rate <= 0 or self.pretrain_scale <= 0:
            raise ValueError("pretrain_learning_rate and pretrain_scale must be > 0")
        if len(self.channels) != 2 or min(self.channels) < 1:
            raise ValueError(f"channels must be two positive integers, got {list(self.channels)}")
        if not 0.0 <= self.key_dropout < 1.0:
            raise ValueError(f"key_dropout must be in [0, 1), got {self.key_dropout}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"test_fraction must be between 0 and 1, got {self.test_fraction}")
        if self.learning_rate <= 0 or self.adam_epsilon <= 0 or self.grad_clip_norm <= 0:
            raise ValueError("learning_rate, adam_epsilon and grad_clip_norm must be > 0")
        if self.alpha < 0 or self.age_noise < 0:
            raise ValueError(f"alpha and age_noise must be >= 0, got {self.alpha} and {self.age_noise}")
        if self.episode_length < self.episode_width:
            raise ValueError(
                f"episode_length ({self.episode_length}) must be >= episode_width ({self.episode_width}) "
                "so every class is shown at least once"
            )

    def replace(self, **changes: Any) -> "OmniglotConfig":
        return dataclasses.replace(self, **changes)

    def to_toml(self) -> str:
        lines = ["# Resolved Omniglot settings of this run (written by kshot omniglot train)."]
        for field in dataclasses.fields(self):
            lines.append(f"{field.name} = {_toml_value(getattr(self, field.name))}")
        return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def _coerce(name: str, value: Any, default: Any, origin: str) -> Any:
    """Check a TOML value against the default's type; lists become tuples."""
    expected = type(default)
    if isinstance(default, tuple):
        if not isinstance(value, list):
            raise ValueError(f"{origin}: {name} must be a list, got {value!r}")
        return tuple(value)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is int and isinstance(value, bool) or not isinstance(value, expected):
        raise ValueError(f"{origin}: {name} must be {expected.__name__}, got {value!r}")
    return value


def config_from_mapping(values: dict[str, Any], origin: str = "settings", base: OmniglotConfig | None = None) -> OmniglotConfig:
    """Settings from a flat mapping (sections are flattened), refusing unknown keys."""
    base = base or OmniglotConfig()
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):  # [data], [model], [memory], [train] sections are for readers only
            flat.update(value)
        else:
            flat[key] = value
    known = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
    unknown = sorted(set(flat) - set(known))
    if unknown:
        raise ValueError(f"{origin}: unknown setting(s) {unknown}; known: {sorted(known)}")
    changes = {k: _coerce(k, v, known[k], origin) for k, v in flat.items()}
    try:
        return dataclasses.replace(base, **changes)
    except ValueError as error:
        raise ValueError(f"{origin}: {error}") from error


def load_config(path: str | Path) -> OmniglotConfig:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Omniglot config {path} does not exist")
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"Omniglot config {path} is not valid TOML: {error}") from error
    return config_from_mapping(values, origin=str(path))


def preset_path(name: str) -> Path:
    if name not in PRESETS:
        raise ValueError(f"unknown Omniglot preset {name!r}; choose one of {list(PRESETS)}")
    return CONFIG_DIR / f"omniglot_{name}.toml"


def load_preset(name: str = DEFAULT_PRESET) -> OmniglotConfig:
    return load_config(preset_path(name))
