"""A run directory, for both experiments: open it, check its configuration, resume it.

Every run directory starts with `config.toml`, the resolved configuration that
produced it, written before anything else: it is the record that kshot made the folder.
An existing folder is therefore used only when it is empty or its config.toml reads
with this run's schema; the current folder (an empty `--out`, an unset `$RUN`) and a
folder of other files are refused, so a run never writes over files it did not write.
Opening a run directory with another configuration is refused (naming each differing
setting), so finished work is never mixed with work done under other settings; the
same configuration resumes it.

Two units of resume, one per experiment, both written so that a kill -9 anywhere
leaves either the old state or the new one:
- face protocol: one file per finished repeat (experiments.faces.repeats);
- training runs: checkpoints in `checkpoints/step-NNNNNNN/`, published by
  `latest.json`, which is written last and atomically; the newest few are kept
  (here). The file names are in experiments.core.run_files.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Callable

from experiments.core import settings as cfg
from experiments.core.run_files import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    LATEST_FILE,
)
from kshot_io import write_text_atomic

KEEP_CHECKPOINTS = 2
# Settings a face run may change between invocations: more (or fewer) repeats reuse the
# repeats already on disk.
GROWABLE = ("run.repeats", "finetune.repeats")


# ---------------------------------------------------------------- configuration


def is_temporary(name: str) -> bool:
    """A hidden temporary file of an atomic write (kshot_io.atomic_write) in progress or interrupted."""
    return name.startswith(".") and name.endswith(".tmp")


def refuse_current_folder(out_dir: str | Path, what: str = "a run", writes: str = "results.csv, summary.md") -> None:
    """Refuse the current folder (an empty `--out`, an unset `$RUN`, or `.`) as an output directory.

    A run writes results.csv, summary.md and more under fixed names; in the folder the
    user works in, those names may be the user's own files.
    """
    if str(out_dir) in ("", ".") or Path(out_dir).expanduser().resolve() == Path.cwd().resolve():
        raise ValueError(
            f"--out {str(out_dir)!r} is the current folder; {what} writes {writes} and more there "
            "and could replace your own files. Give a new folder, e.g. --out runs/NAME (is a variable like $RUN unset?)."
        )
    for parent in Path(out_dir).parents:
        if parent.exists() and not parent.is_dir():
            raise NotADirectoryError(f"--out {out_dir}: {parent} is a file, so no folder can be made in it. Give another --out.")


def _saved_config(out_dir: Path, config, may_change: tuple[str, ...]):
    """The configuration `out_dir` already holds (None for a new or empty directory), refused when it differs.

    An existing folder is used only when it is empty or holds this kind of run (its
    config.toml reads with this schema): a run never writes over files it did not write.
    """
    refuse_current_folder(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"--out {out_dir} is a file; a run directory is a folder. Give another --out.")
    path = out_dir / CONFIG_FILE
    if not path.is_file():
        # Another task of the same sweep cell may be creating the directory this very moment:
        # its temporary config.toml is no foreign file, and its renamed one is a run.
        others = [p for p in out_dir.iterdir() if not is_temporary(p.name)] if out_dir.is_dir() else []
        if others and not path.is_file():
            raise FileExistsError(
                f"--out {out_dir} is a folder that is not empty and holds no run ({CONFIG_FILE} is missing); a run "
                "would write over files it did not write there. Give a new or empty folder."
            )
        if not path.is_file():
            return None
    try:
        saved = cfg.load_config(path, type(config))
    except cfg.ConfigError as error:
        raise FileExistsError(
            f"--out {out_dir} holds a {CONFIG_FILE} that cannot be read as this run's configuration ({error}); "
            "a run would write over files it did not write there. Give a new or empty folder."
        ) from None
    differing = cfg.differences(saved, config, ignore=may_change)
    if differing:
        raise ValueError(
            f"{out_dir} already holds a run with another configuration ({'; '.join(differing)}). "
            "Use another --out, the same configuration to resume, or remove that directory to start over."
        )
    return saved


def check_run_dir(out_dir: str | Path, config, may_change: tuple[str, ...] = ()) -> bool:
    """Refuse an `out_dir` this configuration cannot use, changing nothing; True when it holds this run.

    Called before any data is prepared, so a wrong --out costs no embedding time.
    """
    return _saved_config(Path(out_dir), config, may_change) is not None


def open_run_dir(out_dir: str | Path, config, may_change: tuple[str, ...] = ()) -> bool:
    """Create `out_dir` with config.toml, or check an existing one; returns True when resuming.

    `may_change` names settings ("train.steps") a resume may change; the saved file is
    then brought up to date.
    """
    out_dir = Path(out_dir)
    saved = _saved_config(out_dir, config, may_change)
    if saved != config:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out_dir / CONFIG_FILE, cfg.to_toml(config))
    return saved is not None


def read_run_config(run_dir: str | Path, schema: type, kind: str, what_to_do: str):
    """The configuration saved in a run directory; `kind` ("an Omniglot") and `what_to_do` phrase the error."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not {kind} run directory (no {CONFIG_FILE}); {what_to_do}")
    return cfg.load_config(path, schema)


def config_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------- training runs: published checkpoints


def latest_checkpoint(run_dir: str | Path) -> tuple[int, Path] | None:
    """(step, checkpoint prefix) published by latest.json, or None for a fresh directory."""
    path = Path(run_dir) / LATEST_FILE
    if not path.exists():
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    return int(record["step"]), Path(run_dir) / record["prefix"]


def save_checkpoint(run_dir: str | Path, step: int, write: Callable[[Path], None]) -> None:
    """Have `write(prefix)` write step `step`'s files, then publish them and prune older ones."""
    run_dir = Path(run_dir)
    prefix = f"{CHECKPOINT_DIR}/step-{step:07d}/ckpt"
    target = run_dir / prefix
    if target.parent.exists():
        shutil.rmtree(target.parent)  # a half-written attempt at this step from a killed run
    write(target)
    # Publishing the pointer last makes the save atomic: a crash before this line leaves
    # the previous checkpoint in charge.
    write_text_atomic(run_dir / LATEST_FILE, json.dumps({"step": step, "prefix": prefix}) + "\n")
    steps_on_disk = sorted((run_dir / CHECKPOINT_DIR).glob("step-*"))
    for old in steps_on_disk[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)
