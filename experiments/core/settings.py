"""The settings machinery every experiment shares: one strict TOML loader, and the memory's section.

Why strict: a typo in a key (`memroy_size = 64`) or a section (`[memroy]`) must not
silently fall back to the default and cost a night of runs, and an out-of-range value
(memory_size 0, alpha < 0, repeats 0) must be refused before any model is built. Every
error names the file, the section, the key and the allowed values.

Each experiment declares its own schema, a frozen dataclass of sections
(experiments.faces.settings.RunConfig, experiments.episodic.settings.OmniglotConfig);
this module reads, overrides (`--set section.key=value`) and writes any of them. Both
share `MemorySection`, and experiments.core.memories.build_memory is the one place a
memory is built from it: every key of [memory] reaches memory_module in either experiment.
Defaults live in the dataclass fields and nowhere else; a field's `allowed` check is
stated next to its default. A `speed_only` field (a chunk size) is checked like any other
but is no part of what a run is: comparisons and repeat identities leave it out.

The resolved configuration (defaults filled in, overrides applied) is written next to
the results with `to_toml`, so a run directory says exactly what produced it, and
experiments.core.run_dir refuses to resume it with another one.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import tomllib

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"  # the presets shipped with the package
# memory_module.memory's choices, restated so that reading a config needs no TensorFlow
# (tests/experiments/test_config.py checks that they agree).
EVICTIONS = ("oldest", "class_balanced", "ward")
ON_EVICT = ("drop", "merge")


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


def speed_only(default: int, description: str) -> Any:
    """A positive integer that changes how fast a run goes, never its results (a chunk size).

    Such a setting is not part of what a run is: `differences` ignores it (a run directory
    resumes under another value), `results_only` resets it, and `to_toml` writes it only
    when it is not the default, so a configuration that never set it (every run directory
    made before it existed) reads, compares and hashes as before.
    """
    return field(default=default, metadata={"allowed": lambda v: v >= 1, "description": description,
                                            "speed_only": True})


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


def refuse_duplicates(values: Iterable[Any], where: str) -> None:
    """A list whose values name rows of the result tables (memory sizes, models) must not repeat one.

    A repeated value would compute the same model twice and then break the tables,
    which are indexed by it, after all the work is done.
    """
    seen = set()
    for value in values:
        if value in seen:
            raise ConfigError(f"{where} lists {value!r} twice; give each value once")
        seen.add(value)


def _section_types(schema: type) -> dict[str, type]:
    defaults = schema()
    return {f.name: type(getattr(defaults, f.name)) for f in dataclasses.fields(schema)}


def from_dict(raw: dict, schema: type, origin: str = "<config>"):
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
                refuse_duplicates(value, where)
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
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not a text file (not UTF-8); give the TOML {what}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a folder; give the TOML {what}") from None


def load_config(path: str | Path, schema: type):
    return from_dict(read_toml(path), schema, origin=str(path))


def with_overrides(config, origin: str = "command line", **overrides: Any):
    """Apply overrides given as section__key=value (None = not given) and re-validate.

    An unknown section is passed on to `from_dict`, which refuses it like one in a file.
    """
    raw = to_dict(config)
    for dotted, value in overrides.items():
        if value is None:
            continue
        section, key = dotted.split("__", 1)
        raw.setdefault(section, {})[key] = list(value) if isinstance(value, tuple) else value
    return from_dict(raw, type(config), origin=origin)


# ---------------------------------------------------------------- `--set section.key=value`

ASSIGNMENT_FORM = "SECTION.KEY=VALUE, e.g. memory.memory_size=64"
_QUOTED_OR_NESTED = ('"', "'", "[", "{")  # a value starting so was meant as TOML, never as a bare word


def parse_assignment_value(text: str, where: str = "--set") -> Any:
    """One value in TOML value syntax (`64`, `0.2`, `true`, `"text"`, `["a", "b"]`), or a bare word.

    A bare word (`celebrities`, `./faces`, an empty value) is the string it spells, so
    a string setting needs no shell-proof quotes. Text that starts like a quoted string,
    a list or a table but is not valid TOML is refused rather than read as a string.
    The type and range are not checked here: `from_dict` checks them against the schema.
    """
    if "\n" in text or "\r" in text:
        raise ConfigError(f"{where}: a value must be on one line")
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        if text.strip().startswith(_QUOTED_OR_NESTED):
            raise ConfigError(
                f"{where}: the value is not valid TOML; quote every string in a list, and the whole argument "
                'for the shell, e.g. --set \'run.models=["baseline", "memory"]\''
            ) from None
        return text.strip()


def parse_assignments(texts: Iterable[str]) -> dict[str, Any]:
    """`--set` arguments (`section.key=value`) as `with_overrides` keywords: {"memory__alpha": 0.2}.

    Each value is read by `parse_assignment_value`; of two assignments to one key the
    later wins. Only the shape is checked here (a malformed argument is a ConfigError
    naming it and the expected form); whether the section and key exist, and whether
    the value has the right type and range, is left to `with_overrides`, so a value
    given on the command line is held to exactly the rules of the same value in a file.
    """
    overrides: dict[str, Any] = {}
    for text in texts:
        name, equals, value = text.partition("=")
        section, dot, key = (part.strip() for part in name.partition("."))
        if not (equals and dot and section and key) or "." in key or "__" in name:
            raise ConfigError(f"--set {text}: expected {ASSIGNMENT_FORM}")
        overrides[f"{section}__{key}"] = parse_assignment_value(value, where=f"--set {text}")
    return overrides


def with_assignments(config, texts: Iterable[str], origin: str = "--set"):
    """`config` with `--set` arguments applied and re-validated, as if their values were in its file."""
    return with_overrides(config, origin=origin, **parse_assignments(texts))


def to_dict(config) -> dict:
    return {
        f.name: {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(getattr(config, f.name)).items()}
        for f in dataclasses.fields(config)
    }


def _speed_only_keys(config) -> dict[str, tuple[str, ...]]:
    """{section: the names of its speed_only settings}."""
    return {f.name: tuple(k.name for k in dataclasses.fields(getattr(config, f.name)) if k.metadata.get("speed_only"))
            for f in dataclasses.fields(config)}


def results_only(config):
    """`config` with every speed_only setting at its default: what the results depend on."""
    sections = {}
    for section, keys in _speed_only_keys(config).items():
        if keys:
            value = getattr(config, section)
            defaults = type(value)()
            sections[section] = dataclasses.replace(value, **{k: getattr(defaults, k) for k in keys})
    return dataclasses.replace(config, **sections)


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
    speed, defaults = _speed_only_keys(config), to_dict(results_only(config))
    for section, values in to_dict(config).items():
        lines.append("")
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items()
                     if key not in speed[section] or value != defaults[section][key])  # speed_only: when set
    return "\n".join(lines) + "\n"


def differences(saved, now, ignore: tuple[str, ...] = ()) -> list[str]:
    """'[section] key: saved X, now Y' for every setting that differs, except `ignore` ('section.key')
    and the speed_only ones (they never change results)."""
    old, new = to_dict(results_only(saved)), to_dict(results_only(now))
    return [
        f"[{section}] {key}: saved {old[section][key]!r}, now {value!r}"
        for section, values in new.items()
        for key, value in values.items()
        if f"{section}.{key}" not in ignore and old[section][key] != value
    ]
