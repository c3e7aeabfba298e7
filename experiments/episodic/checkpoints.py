"""The trained Omniglot embedder shipped in the repository, and how a run becomes one.

A training run directory holds TensorFlow checkpoints with optimizer state (tens of
MiB); the repository ships only what evaluation needs, in `experiments/episodic/shipped/`:

- `config.toml` and `split.json`: the run's settings and alphabets, copied unchanged;
- `weights.npz`: every embedder variable (batch-norm statistics included) by its Keras
  path, stored as float16 to halve the size (docs/OMNIGLOT.md shows the accuracy is the
  same as float32's);
- `manifest.json`: the training step, the sha256 of weights.npz (checked on every load,
  so a damaged or half-updated file is refused rather than evaluated), the command
  that trained it;
- `pretrain_log.jsonl`, `finetune_log.jsonl` (when the run has that stage) and `log.jsonl`:
  the run's training logs (the learning curves).

`kshot omniglot eval` and `kshot omniglot lake` use this directory when no
--checkpoint is given.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import tensorflow as tf

from experiments.core.run_dir import latest_checkpoint, read_run_config
from experiments.core.run_files import (
    CONFIG_FILE,
    FINETUNE_DIR,
    LATEST_FILE,
    LOG_FILE,
    PRETRAIN_DIR,
    SPLIT_FILE,
)
from experiments.episodic.model import build_model
from experiments.episodic.settings import OmniglotConfig
from kshot_io import atomic_write, sha256_of_file, write_text_atomic

SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"
WEIGHTS_FILE = "weights.npz"
MANIFEST_FILE = "manifest.json"
MAX_SHIPPED_BYTES = 8 * 1024 * 1024


def is_shipped_layout(path: str | os.PathLike) -> bool:
    return (Path(path) / WEIGHTS_FILE).exists() and (Path(path) / MANIFEST_FILE).exists()


def export_run(run_dir: str | os.PathLike, dest: str | os.PathLike, command: str, dtype: str = "float16") -> dict:
    """Write the shipped layout of `run_dir`'s latest checkpoint into `dest`; returns the manifest."""

    if dtype not in ("float16", "float32"):
        raise ValueError(f"dtype must be float16 or float32, got {dtype!r}")
    run_dir, dest = Path(run_dir), Path(dest)
    _, embedder, step = restore_embedder(run_dir)
    dest.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for variable in embedder.weights:
        value = variable.numpy()
        # Only the real-valued weights shrink; integer state (dropout's seed) stays exact.
        arrays[variable.path] = value.astype(dtype) if np.issubdtype(value.dtype, np.floating) else value
    with atomic_write(dest / WEIGHTS_FILE, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    for source, name in ((run_dir / CONFIG_FILE, CONFIG_FILE), (run_dir / SPLIT_FILE, SPLIT_FILE),
                         (run_dir / LOG_FILE, LOG_FILE), (run_dir / PRETRAIN_DIR / LOG_FILE, f"pretrain_{LOG_FILE}"),
                         (run_dir / FINETUNE_DIR / LOG_FILE, f"finetune_{LOG_FILE}")):
        if source.exists():
            shutil.copyfile(source, dest / name)
    manifest = {
        "step": step,
        "dtype": dtype,
        "weights_sha256": sha256_of_file(dest / WEIGHTS_FILE),
        "weights_bytes": (dest / WEIGHTS_FILE).stat().st_size,
        "command": command,
    }
    write_text_atomic(dest / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")
    total = sum(f.stat().st_size for f in dest.iterdir() if f.is_file())
    if total > MAX_SHIPPED_BYTES:
        raise ValueError(f"{dest} holds {total} bytes, more than the {MAX_SHIPPED_BYTES} the repository allows")
    return manifest


def load_shipped(path: str | os.PathLike = SHIPPED_DIR):
    """(config, embedder in float32, step) from a shipped directory, after checking the weights' sha256."""

    path = Path(path)
    if not is_shipped_layout(path):
        raise FileNotFoundError(f"{path} holds no shipped Omniglot checkpoint ({WEIGHTS_FILE} and {MANIFEST_FILE})")
    manifest = json.loads((path / MANIFEST_FILE).read_text(encoding="utf-8"))
    actual = sha256_of_file(path / WEIGHTS_FILE)
    if actual != manifest["weights_sha256"]:
        raise ValueError(
            f"{path / WEIGHTS_FILE} has sha256 {actual}, but {MANIFEST_FILE} records {manifest['weights_sha256']}; "
            "the file is damaged or was replaced without a new manifest (re-export it with export_run)"
        )
    config = read_run_config(path, OmniglotConfig, "a shipped Omniglot", "re-export it with kshot omniglot ship")
    embedder = build_model(config)
    with np.load(path / WEIGHTS_FILE, allow_pickle=False) as stored:
        missing = [v.path for v in embedder.weights if v.path not in stored]
        if missing:
            raise ValueError(f"{path / WEIGHTS_FILE} lacks variables {missing}; it does not match {path / 'config.toml'}")
        for variable in embedder.weights:
            value = stored[variable.path]
            variable.assign(value.astype(np.float32) if np.issubdtype(value.dtype, np.floating) else value)
    return config, embedder, int(manifest["step"])


def restore_embedder(run_dir: str | os.PathLike):
    """(config, embedder with the latest trained weights, step) of a `kshot omniglot train` directory,
    or of a shipped checkpoint (below)."""
    if is_shipped_layout(run_dir):
        return load_shipped(run_dir)

    config = read_run_config(run_dir, OmniglotConfig, "an Omniglot", "train one with kshot omniglot train")
    found = latest_checkpoint(run_dir)
    if found is None:
        raise FileNotFoundError(f"{run_dir} has no checkpoint yet ({LATEST_FILE} missing); train first")
    step, prefix = found
    embedder = build_model(config)
    tf.train.Checkpoint(embedder=embedder).read(str(prefix)).expect_partial()
    return config, embedder, step
