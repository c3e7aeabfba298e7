"""Session fixtures shared by the FaceNet tests: the loaded model, the celebrity set and its embeddings.

Imported into tests/conftest.py so each is built once per test session. The
weights and photos are fetched once per machine into the user's cache (never
deleted by a test); aligned crops and embeddings come from the caches after the
first run. Helpers to write image fixtures into tmp_path live here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest


@dataclass
class CelebrityEmbeddings:
    embeddings: np.ndarray
    paths: list[str]
    labels: np.ndarray
    split: np.ndarray
    skipped: list[tuple[str, str]]


@pytest.fixture(scope="session")
def facenet_pretrained():
    from facenet_tf import load_pretrained
    return load_pretrained()


@pytest.fixture(scope="session")
def facenet_model(facenet_pretrained):
    return facenet_pretrained.model


@pytest.fixture(scope="session")
def facenet_embedder(facenet_pretrained):
    from facenet_tf import Embedder
    return Embedder.from_pretrained(facenet_pretrained, batch_size=32, progress=False)


@pytest.fixture(scope="session")
def celebrities():
    from experiments.datasets import load_image_dataset
    return load_image_dataset("celebrities")


@pytest.fixture(scope="session")
def celebrity_embeddings(facenet_embedder, celebrities):
    result = facenet_embedder.embed_paths([str(p) for p in celebrities.paths])
    row = {str(p): i for i, p in enumerate(celebrities.paths)}
    kept = [row[p] for p in result.kept_paths]
    return CelebrityEmbeddings(
        embeddings=result.embeddings,
        paths=list(result.kept_paths),
        labels=np.array([celebrities.labels[i] for i in kept]),
        split=np.array([celebrities.split[i] for i in kept]),
        skipped=list(result.skipped),
    )


@pytest.fixture(scope="session")
def celebrity_photo(celebrities) -> Path:
    """One upright, clearly detectable celebrity photo (first val image of ben_afflek)."""
    return next(p for p, s, label in zip(celebrities.paths, celebrities.split, celebrities.labels)
                if s == "val" and label == "ben_afflek")


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture
def messy_folder(tmp_path, celebrities) -> Path:
    """A folder-per-identity set of 10 real photos plus a faceless image and a stray text file."""
    import shutil

    from PIL import Image

    root = tmp_path / "people"
    for path, label, split in zip(celebrities.paths, celebrities.labels, celebrities.split):
        if split == "val" and label in ("madonna", "elton_john"):
            (root / label).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, root / label / path.name)
    Image.new("RGB", (200, 200), (90, 90, 90)).save(root / "madonna" / "blank_wall.png")
    (root / "elton_john" / "setlist.txt").write_text("Rocket Man")
    return root
