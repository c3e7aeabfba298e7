"""Key sets for the regime map: an untrained checkpoint, and how spread out a key set is.

The map compares write policies on embedders that cluster a class more or less
tightly. The loosest is the network at its seeded initial weights; it is written in the
shipped layout (experiments.episodic.checkpoints) so every Omniglot command that takes
--checkpoint reads it like a trained one, and its manifest says it was never trained.
The spread of a key set is two numbers a reader can compare across sets: how close an
item sits to its class mean, and how close the class means sit to each other.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from experiments.core.run_files import CONFIG_FILE, SPLIT_FILE
from kshot_io import atomic_write, sha256_of_file, write_text_atomic


def write_untrained_checkpoint(like: str | Path, dest: str | Path) -> dict:
    """The network `like`'s config describes, at its seeded initial weights ([train] seed), as a shipped directory.

    `like` is a shipped directory or a training run (its config.toml and split.json are
    copied, so the untrained network is measured on the same alphabets). Returns the manifest.
    """
    # Deferred: TensorFlow and the episodic model load only when a checkpoint is written.
    from experiments.core.run_dir import read_run_config
    from experiments.episodic.checkpoints import MANIFEST_FILE, WEIGHTS_FILE
    from experiments.episodic.model import build_model
    from experiments.episodic.settings import OmniglotConfig

    like, dest = Path(like), Path(dest)
    for name in (CONFIG_FILE, SPLIT_FILE):
        if not (like / name).is_file():
            raise FileNotFoundError(f"{like} has no {name}; give a shipped checkpoint or a `kshot omniglot train` run")
    config = read_run_config(like, OmniglotConfig, "an Omniglot", "train one with kshot omniglot train")
    embedder = build_model(config)
    dest.mkdir(parents=True, exist_ok=True)
    with atomic_write(dest / WEIGHTS_FILE, "wb") as handle:
        np.savez_compressed(handle, **{v.path: v.numpy() for v in embedder.weights})
    for name in (CONFIG_FILE, SPLIT_FILE):
        shutil.copyfile(like / name, dest / name)
    manifest = {
        "step": 0,
        "dtype": "float32",
        "weights_sha256": sha256_of_file(dest / WEIGHTS_FILE),
        "weights_bytes": (dest / WEIGHTS_FILE).stat().st_size,
        "command": f"experiments.studies.regime_map_keys.write_untrained_checkpoint({str(like)!r}): "
                   f"never trained; the initial weights of [train] seed {config.train.seed}",
    }
    write_text_atomic(dest / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")
    return manifest


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1.0)


def key_spread(embeddings: np.ndarray, labels: np.ndarray) -> dict:
    """{"within": mean cosine of an item to its class mean, "between": mean cosine between class means}.

    A tight embedder has `within` near 1 and `between` well below it; an untrained one
    has both close together.
    """
    keys = _unit(np.asarray(embeddings, dtype=np.float64))
    labels = np.asarray(labels)
    classes = np.unique(labels)
    means = _unit(np.stack([keys[labels == c].mean(axis=0) for c in classes]))
    index = np.searchsorted(classes, labels)
    within = float(np.mean(np.sum(keys * means[index], axis=1)))
    if len(classes) < 2:
        return {"within": within, "between": float("nan")}
    gram = means @ means.T
    between = float(gram[~np.eye(len(classes), dtype=bool)].mean())
    return {"within": within, "between": between}
