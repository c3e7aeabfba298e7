"""A sweep file and the cells it names: many ordinary `kshot run` configurations at once.

A sweep works at the TOML level: each cell's configuration is the base run
configuration's TOML tables with some keys set, read by the project's one strict
loader. So every setting `kshot run` knows can be swept, and a typo in a swept key or
an out-of-range value is refused before anything runs, naming the sweep file, the
cell and the key.

    [sweep]
    base = "../experiments/configs/quick.toml"   # relative to this file; omitted: the built-in default
    repeats_per_task = 0      # > 0: a cell's repeats are spread over tasks of at most this many

    [grid]                    # every combination of these values is a cell
    memory.memory_size = [32, 64, 128]
    run.seed = [0, 1]

    [[cells]]                 # explicit cells, added after the grid
    "memory.memory_size" = 512
    "finetune.learning_rate" = 1e-4

    [resources]               # per task, for the Ray executor
    num_cpus = 1
    num_gpus = 0
    max_retries = 2           # re-runs of a task whose worker process died

Cells are named from the values they set (`memory_size=64__seed=1`), so a cell's run
directory says what it holds and is found again by the next invocation (resume).
Relative data paths (`data.embeddings`, a `data.source` folder written with a `/`,
e.g. `./faces`) are made absolute here, so that workers whose working directory
differs still find them; a bare `data.source` name is left as `kshot run` reads it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from experiments.core.run_dir import is_temporary, refuse_current_folder
from experiments.core.run_files import CELLS_DIR, FIGURES_DIR, PLAN_FILE, STATUS_DIR, SWEEP_CSV, SWEEP_MD
from experiments.core.settings import results_only
from experiments.faces import settings as cfg

SECTIONS = ("sweep", "grid", "cells", "resources")
SWEEP_LAYOUT = (CELLS_DIR, STATUS_DIR, PLAN_FILE, SWEEP_CSV, SWEEP_MD, FIGURES_DIR)  # everything a sweep writes in DIR
SWEEP_KEYS = ("base", "repeats_per_task")
RESOURCE_KEYS = ("num_cpus", "num_gpus", "max_retries")
DATA_PATH_KEYS = ("data.embeddings", "data.source")
NAME_SAFE = re.compile(r"[^A-Za-z0-9._+-]+")
MAX_NAME = 120


@dataclass(frozen=True)
class Resources:
    """What one task asks of a Ray cluster; the local executor uses num_cpus as its thread budget."""

    num_cpus: float = 1
    num_gpus: float = 0
    max_retries: int = 2


@dataclass(frozen=True)
class Cell:
    """One configuration of the sweep: its name, the values it sets, and the resolved config as TOML."""

    name: str
    settings: dict[str, Any]  # dotted key -> value, for the keys this cell sets
    config_toml: str  # the resolved configuration (cfg.to_toml), what the run directory holds

    @property
    def config_sha(self) -> str:
        """The hash a finished cell is recognised by; speed-only settings ([run] chunk_size) left out,
        so a sweep rerun with another chunk size skips its complete cells."""
        return hashlib.sha256(cfg.to_toml(results_only(self.config())).encode("utf-8")).hexdigest()

    def config(self):
        return cfg.from_dict(tomllib.loads(self.config_toml), origin=f"sweep cell {self.name}")

    def value(self, dotted: str) -> Any:
        """The value this cell runs with for `section.key`, whether it sets it or the base does."""
        section, key = dotted.split(".", 1)
        return tomllib.loads(self.config_toml)[section][key]


@dataclass(frozen=True)
class Sweep:
    path: Path
    base: Path | None  # None: the built-in default run configuration
    swept_keys: tuple[str, ...]  # every dotted key some cell sets, in file order
    cells: tuple[Cell, ...]
    resources: Resources = field(default_factory=Resources)
    repeats_per_task: int = 0


class SweepError(ValueError):
    """A sweep file that cannot be used; the message names the file and the entry.

    (Broken TOML in the sweep file or its base is a config.ConfigError, also a ValueError.)
    """


def default_base() -> Path:
    """The configuration `kshot run` uses when given none."""
    return cfg.DEFAULT_RUN_CONFIG


def flatten(table: dict, where: str, prefix: str = "") -> dict[str, Any]:
    """{"memory": {"memory_size": [..]}} and {"memory.memory_size": [..]} both -> {"memory.memory_size": [..]}."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, where, f"{dotted}."))
        else:
            flat[dotted] = value
    for dotted in flat:
        if dotted.count(".") != 1:
            raise SweepError(
                f"{where}: {dotted!r} is not a setting; name one as section.key, e.g. memory.memory_size or run.seed"
            )
    return flat


def _absolute_data_path(dotted: str, value: Any) -> Any:
    """A relative data path, made absolute from the current directory when it exists here."""
    if dotted not in DATA_PATH_KEYS or not isinstance(value, str) or not value:
        return value
    if dotted == "data.source" and "/" not in value and "\\" not in value:
        return value  # a bare name: a built-in dataset wins over a folder of that name, as in `kshot run`
    path = Path(value).expanduser()
    if path.is_absolute() or not path.exists():
        return value  # a built-in dataset name, or a path only the workers have
    return str(path.resolve())


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "+".join(_format_value(v) for v in value)
    if isinstance(value, str) and ("/" in value or "\\" in value):
        value = Path(value).name or value
    return NAME_SAFE.sub("_", str(value)).strip("_") or "empty"


def cell_name(settings: dict[str, Any], swept_keys: tuple[str, ...]) -> str:
    """`key=value` joined by `__`, with the short key unless two swept sections share it."""
    if not settings:
        return "base"
    short = [k.split(".", 1)[1] for k in swept_keys]
    parts = []
    for dotted, value in settings.items():
        key = dotted.split(".", 1)[1]
        label = key if short.count(key) == 1 else dotted
        parts.append(f"{label}={_format_value(value)}")
    name = "__".join(parts)
    if len(name) > MAX_NAME:
        digest = hashlib.sha256(repr(sorted(settings.items())).encode("utf-8")).hexdigest()[:10]
        name = f"{name[:MAX_NAME - 12]}__{digest}"
    return name


def _check_table(raw: dict, section: str, allowed: tuple[str, ...], where: str) -> dict:
    table = raw.get(section, {})
    if not isinstance(table, dict):
        raise SweepError(f"{where}: {section} must be a [{section}] table")
    for key in table:
        if key not in allowed:
            raise SweepError(f"{where}: unknown key {key!r} in [{section}]; allowed keys: {', '.join(allowed)}")
    return table


def _grid(raw: dict, where: str) -> list[dict[str, Any]]:
    grid = flatten(_check_table(raw, "grid", tuple(raw.get("grid", {})), where), f"{where} [grid]")
    for dotted, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SweepError(
                f"{where}: [grid] {dotted} must be a non-empty list of values, got {values!r} "
                f"(one value: put it in the base configuration, or write [{values!r}])"
            )
    if not grid:
        return []
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def _explicit(raw: dict, where: str) -> list[dict[str, Any]]:
    cells = raw.get("cells", [])
    if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
        raise SweepError(f"{where}: cells must be written as [[cells]] tables")
    return [flatten(c, f"{where} [[cells]] number {i + 1}") for i, c in enumerate(cells)]


def _resources(raw: dict, where: str) -> Resources:
    table = _check_table(raw, "resources", RESOURCE_KEYS, where)
    values = {}
    for key, value in table.items():
        number_ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if key == "max_retries":
            number_ok = number_ok and isinstance(value, int)
        if not number_ok or value < 0 or (key == "num_cpus" and value <= 0):
            raise SweepError(f"{where}: [resources] {key} = {value!r} must be a number >= 0 (num_cpus > 0; max_retries an integer)")
        values[key] = value
    return Resources(**values)


def load_sweep(path: str | Path) -> Sweep:
    """Read a sweep file and resolve every cell with the strict run-config loader."""
    path = Path(path)
    where = str(path)
    raw = cfg.read_toml(path, "sweep file")
    for section in raw:
        if section not in SECTIONS:
            raise SweepError(f"{where}: unknown section [{section}]; allowed: {', '.join(SECTIONS)}")
    head = _check_table(raw, "sweep", SWEEP_KEYS, where)
    repeats_per_task = head.get("repeats_per_task", 0)
    if isinstance(repeats_per_task, bool) or not isinstance(repeats_per_task, int) or repeats_per_task < 0:
        raise SweepError(f"{where}: [sweep] repeats_per_task = {repeats_per_task!r} must be an integer >= 0 (0: one task per cell)")
    base_path = None
    if "base" in head:
        base_path = (path.parent / Path(head["base"]).expanduser()).resolve()
        if not base_path.is_file():
            raise FileNotFoundError(f"{where}: [sweep] base = {head['base']!r}: {base_path} does not exist")
    base_raw = cfg.read_toml(base_path or default_base())
    cfg.from_dict(base_raw, origin=str(base_path or default_base()))  # the base itself must be valid

    settings_list = _grid(raw, where) + _explicit(raw, where)
    if not settings_list:
        settings_list = [{}]
    swept = tuple(dict.fromkeys(k for s in settings_list for k in s))
    cells: dict[str, Cell] = {}
    seen_configs: dict[str, str] = {}
    for settings in settings_list:
        settings = {k: _absolute_data_path(k, v) for k, v in settings.items()}
        name = cell_name(settings, swept)
        merged = {section: dict(values) for section, values in base_raw.items()}
        for dotted, value in settings.items():
            section, key = dotted.split(".", 1)
            merged.setdefault(section, {})[key] = value
        for dotted in DATA_PATH_KEYS:
            section, key = dotted.split(".", 1)
            if key in merged.get(section, {}):
                merged[section][key] = _absolute_data_path(dotted, merged[section][key])
        origin = f"{where} cell {name}"
        try:
            config = cfg.from_dict(merged, origin=origin)
        except cfg.ConfigError as error:
            raise SweepError(f"{error} (set by the sweep file; keys it sets: {', '.join(settings)})") from None
        cell = Cell(name=name, settings=settings, config_toml=cfg.to_toml(config))
        if cell.config_toml in seen_configs:
            continue  # the grid and an explicit cell may name the same configuration
        if name in cells:
            raise SweepError(f"{where}: two different cells would be named {name!r}; give their values distinct names")
        seen_configs[cell.config_toml] = name
        cells[name] = cell
    return Sweep(
        path=path,
        base=base_path,
        swept_keys=swept,
        cells=tuple(cells.values()),
        resources=_resources(raw, where),
        repeats_per_task=repeats_per_task,
    )


# ---------------------------------------------------------------- where a sweep's cells live


def cell_dir(out_dir: Path, name: str) -> Path:
    return Path(out_dir) / CELLS_DIR / name


def status_path(out_dir: Path, name: str) -> Path:
    return Path(out_dir) / STATUS_DIR / f"{name}.json"


def read_status(out_dir: Path, name: str) -> dict:
    path = status_path(out_dir, name)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def check_sweep_dir(out_dir: str | Path) -> None:
    """Refuse a sweep directory that is the current folder or holds anything a sweep did not write.

    A sweep writes plan.csv, sweep.csv, sweep.md, figures/ and more under fixed names;
    an existing folder is resumed only when everything in it is one of those (or an
    interrupted atomic write's hidden temporary file).
    """
    out_dir = Path(out_dir)
    refuse_current_folder(out_dir, "a sweep", f"{PLAN_FILE}, {SWEEP_CSV}, {SWEEP_MD}")
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"--out {out_dir} is a file; a sweep directory is a folder. Give another --out.")
    if not out_dir.is_dir():
        return
    foreign = sorted(p.name for p in out_dir.iterdir()
                     if p.name not in SWEEP_LAYOUT and not is_temporary(p.name))
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise FileExistsError(
            f"--out {out_dir} holds files a sweep did not write ({shown}); a sweep would write over files there. "
            "Give a new or empty folder, or an earlier sweep's folder to resume it."
        )
