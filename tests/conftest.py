"""Shared test settings and session fixtures (helpers that are not fixtures live in support.py).

TF32 is switched off so that a near-tie in cosine similarity cannot flip between a
CPU and a GPU run. Markers (pyproject.toml): `weights` for tests that need the
pretrained FaceNet weights (fetched once per machine into the user's cache, never
deleted by a test), `needs_omniglot` for tests that read the shared Omniglot subsets,
`slow` for the long ones. The FaceNet fixtures (model, celebrity set and its
embeddings) are built once per session; aligned crops and embeddings come from the
caches after the first run.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
from support import CelebrityEmbeddings  # noqa: E402

tf.config.experimental.enable_tensor_float_32_execution(False)


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
    from experiments.faces.datasets import load_image_dataset
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
