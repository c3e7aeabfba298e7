"""A face run's unit of resume: one file per finished repeat, `repeats/<model>/<repeat>.npz`.

Each file is written to a temporary sibling and renamed (kshot_io.atomic_write), so a
kill -9 leaves the old state or the new one; the chunked runner makes a chunk's files
durable with one barrier, so a power cut loses at most the chunk being written. A file that cannot be read, or that was
written under another configuration (its `config_digest` differs), is not trusted and
the repeat runs again.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from experiments.core.run_files import REPEATS_DIR
from experiments.faces.results import RepeatResult
from kshot_io import atomic_write


def repeat_path(run_dir: Path, model: str, repeat: int) -> Path:
    return Path(run_dir) / REPEATS_DIR / model / f"{repeat:05d}.npz"


def save_repeat(run_dir: Path, result: RepeatResult, digest: str, durable: bool = True) -> Path:
    """Write one finished repeat atomically; `durable=False` leaves the fsync to the caller's
    batch barrier (kshot_io.flush_to_disk), as the chunked runner does once per chunk."""
    path = repeat_path(run_dir, result.model, result.repeat)
    buffer = io.BytesIO()
    names = RepeatResult.ARRAYS + (RepeatResult.OPEN_SET_ARRAYS if result.open_set else ())
    arrays = {name: np.asarray(getattr(result, name)) for name in names}
    np.savez(buffer, config_digest=np.array(digest), model=np.array(result.model),
             repeat=np.array(result.repeat, dtype=np.int64), **arrays)
    with atomic_write(path, "wb", durable=durable) as handle:
        handle.write(buffer.getvalue())
    return path


def stored_repeats(run_dir: Path, model: str, below: int | None = None) -> list[int]:
    """Repeat numbers with a file on disk (not yet checked), sorted; only those < `below` if given."""
    folder = Path(run_dir) / REPEATS_DIR / model
    if not folder.is_dir():
        return []
    numbers = sorted(int(p.stem) for p in folder.glob("*.npz") if p.stem.isdigit())
    return [n for n in numbers if below is None or n < below]


def finished_repeats(run_dir: Path, model: str, below: int, digest: str | None) -> list[RepeatResult]:
    """The readable repeats of `model` numbered below `below`, in order (from one directory listing)."""
    found = (load_repeat(run_dir, model, i, digest) for i in stored_repeats(run_dir, model, below))
    return [r for r in found if r is not None]


def load_repeat(run_dir: Path, model: str, repeat: int, digest: str | None) -> RepeatResult | None:
    """The stored repeat, or None when it is absent, unreadable or from another configuration."""
    path = repeat_path(run_dir, model, repeat)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if digest is not None and str(data["config_digest"]) != digest:
                return None
            if str(data["model"]) != model or int(data["repeat"]) != repeat:
                return None
            optional = [name for name in RepeatResult.OPEN_SET_ARRAYS if name in data.files]
            return RepeatResult(
                model=model,
                repeat=repeat,
                **{name: data[name] for name in RepeatResult.ARRAYS + tuple(optional)},
            )
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
