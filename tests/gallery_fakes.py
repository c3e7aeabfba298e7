"""A stand-in embedder for gallery tests that do not need FaceNet.

A "photo" is a small text file naming a person; its embedding is that person's
centre (a seeded random unit vector per name) plus a little noise seeded by the file
name, so photos of one person are close and different people are far apart. A file
saying "noface" is skipped as the real embedder skips a photo without a face.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from facenet_tf import EmbeddedPaths

DIM = 64
IDENTITY = {"weights": "fake", "weights_sha256": "0" * 64, "input_size": 160, "prewhiten": True,
            "embedding_size": DIM, "aligner": "fake", "aligner_version": "1"}


def centre(name: str) -> np.ndarray:
    v = np.random.default_rng(zlib.crc32(name.encode())).normal(size=DIM)
    return v / np.linalg.norm(v)


class FakeEmbedder:
    def __init__(self, identity: dict | None = None, noise: float = 0.15):
        self.identity = dict(identity or IDENTITY)
        self.noise = noise

    def embed(self, paths, aligned: bool = False) -> EmbeddedPaths:
        rows, kept, skipped = [], [], []
        for path in map(str, paths):
            name = Path(path).read_text(encoding="utf-8").strip()
            if name == "noface":
                skipped.append((path, "no face found by MTCNN"))
                continue
            jitter = np.random.default_rng(zlib.crc32(Path(path).name.encode())).normal(size=DIM)
            rows.append(centre(name) + self.noise * jitter)
            kept.append(path)
        return EmbeddedPaths(np.asarray(rows, np.float32).reshape(-1, DIM), kept, skipped)


def photo_folder(root: Path, people: dict[str, int]) -> Path:
    """root/<name>/<i>.jpg text 'photos' for each name and count."""
    for name, count in people.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            (root / name / f"{name}_{i}.jpg").write_text(name, encoding="utf-8")
    return root
