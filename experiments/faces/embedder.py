"""Photos to embeddings for a gallery, with the identity that makes two embedders interchangeable.

A gallery holds embeddings, and an embedding only means something next to others
made the same way: the same weights, the same crop (margin, size, detector and its
version) and the same input normalisation. `identity` lists exactly those, so a
gallery can refuse photos embedded differently instead of silently mixing them.
Whether an input is already a face crop (`aligned`) is a property of each photo,
not of the embedder, so it is not part of the identity.
"""

from __future__ import annotations

import os
from dataclasses import asdict

from facenet_tf import AlignSettings, Embedder, FaceAligner, load_pretrained
from facenet_tf.errors import ImageSkipError
from facenet_tf.images import load_rgb
from facenet_tf.registry import DEFAULT_WEIGHTS, WEIGHTS_SOURCES

# Identity entries that must match for two embedders to be interchangeable;
# "weights" (a registry name or a file name) only helps a person find the file.
INFORMATIONAL_KEYS = ("weights",)


def identity_mismatches(stored: dict, current: dict) -> list[str]:
    """'key: stored -> current' for every enforced identity entry that differs."""
    keys = sorted((set(stored) | set(current)) - set(INFORMATIONAL_KEYS))
    return [f"{k}: {stored.get(k)!r} -> {current.get(k)!r}" for k in keys if stored.get(k) != current.get(k)]


class FaceEmbedder:
    """The real FaceNet with MTCNN alignment (facenet_tf), through the crop and embedding caches."""

    def __init__(self, weights: str | os.PathLike | None = None, batch_size: int = 32,
                 progress: bool = False, use_cache: bool = True):

        pretrained = load_pretrained(weights)
        self.embedder = Embedder.from_pretrained(pretrained, batch_size=batch_size, progress=progress)
        self.use_cache = use_cache
        self._aligner = None   # MTCNN for count_faces, built on first use
        self.settings = AlignSettings().resolved()
        name = str(weights or DEFAULT_WEIGHTS)
        source = WEIGHTS_SOURCES.get(name)
        align = {k: v for k, v in asdict(self.settings).items() if k != "aligned"}
        self.identity = {
            "weights": name if source else os.path.basename(name),
            "weights_sha256": pretrained.weights_sha256,
            "input_size": pretrained.input_size,
            "prewhiten": pretrained.prewhiten,
            "embedding_size": self.embedder.embedding_size,
            **align,
        }

    def embed(self, paths, aligned: bool = False):
        """facenet_tf.EmbeddedPaths of `paths`: embeddings of usable photos, (path, reason) for the rest."""
        return self.embedder.embed_paths([str(p) for p in paths], aligned=aligned, use_cache=self.use_cache)

    def count_faces(self, paths) -> list[int | None]:
        """Faces MTCNN finds in each photo (None when it cannot be read); `embed` answers for the most confident.

        A second detection pass (the crop cache keeps the crop, not the count): a few tenths of a second a photo.
        """
        if self._aligner is None:
            self._aligner = FaceAligner(self.settings)
        counts = []
        for path in paths:
            try:
                counts.append(len(self._aligner.detect(load_rgb(path, self.settings.max_image_side))))
            except ImageSkipError:
                counts.append(None)
        return counts


def embedder_for(identity: dict, weights: str | os.PathLike | None = None, **kwargs) -> FaceEmbedder:
    """A FaceEmbedder matching a stored identity; the weights come from the registry unless given."""

    if weights is None:
        name = identity.get("weights")
        if name not in WEIGHTS_SOURCES:
            raise ValueError(
                f"the gallery was enrolled with the weights file {name!r} (sha256 "
                f"{str(identity.get('weights_sha256'))[:12]}...), which is not a registry name; pass that file "
                "with --weights (weights= in Python)"
            )
        weights = name
    embedder = FaceEmbedder(weights, **kwargs)
    problems = identity_mismatches(identity, embedder.identity)
    if problems:
        raise ValueError(
            "this embedder differs from the one the gallery was enrolled with (" + "; ".join(problems) + "); "
            "use the same weights and alignment (or enroll into a new gallery)"
        )
    return embedder
