"""Synthetic clustered embeddings in the `kshot embed` npz format, for runner tests without FaceNet."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def clustered_embeddings(n_classes: int = 5, per_class: int = 8, dim: int = 16, spread: float = 0.35, seed: int = 0):
    """Unit rows around random unit centres; `spread` sets how much classes overlap."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.repeat(np.arange(n_classes), per_class)
    points = centres[labels] + spread * rng.normal(size=(labels.size, dim)) / np.sqrt(dim)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    names = np.array([f"class_{c:02d}" for c in labels])
    paths = np.array([f"class_{c:02d}/img_{i:03d}.jpg" for i, c in enumerate(labels)])
    return points.astype(np.float32), names, paths


def write_embeddings_npz(path: Path, **kwargs) -> Path:
    embeddings, labels, paths = clustered_embeddings(**kwargs)
    np.savez(path, embeddings=embeddings, labels=labels, paths=paths, skipped=np.array([], dtype=str))
    return path
