"""`kshot omniglot embed`: a checkpoint's keys of one split's drawings, as a `kshot run --embeddings` npz.

So the face protocol runs on Omniglot characters, with every method of the registry,
sweeps included.
"""

from __future__ import annotations

import os

import numpy as np

from experiments.episodic.evaluation.heldout import restore_held_out, restore_with_data
from experiments.episodic.model import embed_images
from kshot_io import atomic_write

EXPORTED_SPLITS = ("test", "validation", "unseen", "train")


def export_embeddings(run_dir: str | os.PathLike, out: str | os.PathLike, sources=None, split: str = "test") -> dict:
    """The trained embedder's keys of one split's drawings, in the `kshot embed` npz format.

    Labels are "Alphabet/characterNN"; the held-out ("test") split is the run's own;
    "validation" its validation alphabets (for choosing, never for reporting); "unseen" is every drawing of `sources` (heldout.py); "train" the run's training
    classes. Returns a short description.
    """
    if split not in EXPORTED_SPLITS:
        raise ValueError(f"split must be 'test' (held-out alphabets), 'validation', 'unseen' or 'train', got {split!r}")
    if split == "train":
        _, trained, step, data = restore_with_data(run_dir, sources)
        part = data.train
    else:
        _, trained, step, part, _, _ = restore_held_out(run_dir, sources, split)
    keys = embed_images(trained, part.images)
    labels = np.array([part.characters[c] for c in part.labels])
    paths = np.array([f"{part.characters[c]}/{drawer}" for c, drawer in zip(part.labels, part.drawers)])
    with atomic_write(out, "wb") as handle:
        np.savez(handle, embeddings=keys, labels=labels, paths=paths, skipped=np.array([], dtype=str))
    return {"step": step, "split": split, "images": len(labels), "characters": part.num_classes, "key_dim": keys.shape[1]}
