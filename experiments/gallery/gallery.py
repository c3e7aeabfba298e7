"""A persistent face gallery: the memory as a store of known people, with an "unknown" answer.

    gallery = Gallery()                         # Kaiser memory; Gallery(store_all=True) keeps every photo
    gallery.enroll("faces/")                    # root/<name>/<photo>; again later to add people or photos
    gallery.save("team.npz")
    gallery = Gallery.load("team.npz")
    rows = gallery.identify(["door.jpg"])       # Identification(path, answer, similarity, runner_up, ...)

Enrolling writes each photo into the memory one at a time, in sorted order, so a
photo close to a slot of the same person merges into it (the memory's own rule) and
the result does not depend on how photos were batched. The open-set threshold is
set at a target FPIR, the share of strangers whose best answer reaches it
(experiments.faces.identification): each person's kept photos are searched against
the other people's entries (slots or rows), exactly as `identify` searches. The kept
photos are a sample, at most `CALIBRATION_PER_NAME` per person (the first ones
enrolled), so calibration can be redone after every enrollment while the gallery
stays bounded by the memory's size. The calibration records the gallery size
(people, entries) it was set for; a threshold set for a smaller gallery warns. An
answer is a name when the memory's similarity to it is at least the threshold,
otherwise UNKNOWN.

The embedder is bound to the gallery by its identity (experiments.faces.embedder): enrolling or
identifying with different weights or alignment is refused. The file format and the
writer lock are in experiments.gallery.storage.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from experiments.core.memories import build_memory
from experiments.core.settings import MemorySection
from experiments.faces import identification, open_set
from experiments.faces.embedder import FaceEmbedder, embedder_for, identity_mismatches
from experiments.gallery.answers import (  # noqa: F401 - the answers are part of the gallery's API
    IDENTIFY_COLUMNS,
    UNKNOWN,
    Identification,
    check_name,
    identifications_frame,
    with_face_counts,
)
from experiments.gallery.forgetting import forget_people, warn_if_forgotten, write_one_at_a_time
from experiments.gallery.photos import embed_named_photos, face_counts, image_paths  # noqa: F401 - ditto
from experiments.gallery.storage import (
    DEFAULT_LOCK_TIMEOUT,
    GalleryError,
    memory_config,
    memory_state_arrays,
    read_gallery,
    restore_memory_state,
    write_gallery,
    write_lock,
)
from experiments.gallery.validation import check_created_alike, check_gallery_values, check_new_embeddings
from memory_module import LabelMap

DEFAULT_MEMORY_SIZE = 1024
CALIBRATION_PER_NAME = 20


@dataclass(frozen=True)
class EnrollReport:
    enrolled: dict               # photos written per name by this call
    skipped: list                # (path, reason)


def _gallery_memory(kind: str, key_dim: int, memory_size: int):
    """The memory a gallery file names: its kinds are memory_module class names (the file format keeps them)."""
    if kind == "StoreAllNearestNeighbour":
        return build_memory("store_all", key_dim)
    return build_memory("kaiser", key_dim, MemorySection(memory_size=memory_size), seed=0)


class Gallery:
    """Known people in a memory, their names, the embedder's identity and the open-set threshold."""

    def __init__(self, embedder=None, memory_size: int = DEFAULT_MEMORY_SIZE, store_all: bool = False,
                 fpir: float = identification.DEFAULT_FPIR, identity: dict | None = None):

        if identity is None:
            embedder = embedder if embedder is not None else _default_embedder()
            identity = embedder.identity
        self._embedder = embedder
        self.identity = dict(identity)
        self.memory_kind = "StoreAllNearestNeighbour" if store_all else "KaiserMemory"
        self.memory = _gallery_memory(self.memory_kind, int(self.identity["embedding_size"]), memory_size)
        self.names = LabelMap()
        self.fpir = identification.check_fpir(fpir)
        self.calibration: identification.IdentificationCalibration | None = None
        self.enrolled: dict[str, int] = {}
        dim = int(self.identity["embedding_size"])
        self._calibration_embeddings = np.zeros((0, dim), np.float32)
        self._calibration_labels = np.zeros(0, np.int64)

    # ------------------------------------------------------------------ embedder

    @property
    def embedder(self):
        """The embedder bound to this gallery; the real FaceNet is loaded on first use."""
        if self._embedder is None:

            self._embedder = embedder_for(self.identity)
        return self._embedder

    def use_embedder(self, embedder) -> None:
        """Bind `embedder`, refusing one whose identity differs from the gallery's."""
        problems = identity_mismatches(self.identity, embedder.identity)
        if problems:
            raise GalleryError(
                "this gallery was enrolled with another embedder (" + "; ".join(problems) + "); use the same "
                "weights and alignment settings, or enroll into a new gallery"
            )
        self._embedder = embedder

    # ------------------------------------------------------------------ enrolling

    @property
    def threshold(self) -> float | None:
        return None if self.calibration is None else self.calibration.threshold

    def enroll(self, data: str | os.PathLike | Sequence[str | os.PathLike], names: Sequence[str] | None = None,
               aligned: bool = False, skip_bad: bool = False) -> EnrollReport:
        """Embed and write photos: a folder root/<name>/<photo>, or `data` paths with one name each."""
        embeddings, kept_names, skipped = embed_named_photos(self.embedder, data, names, aligned, skip_bad)
        return EnrollReport(enrolled=self.enroll_embeddings(embeddings, kept_names), skipped=skipped)

    def enroll_embeddings(self, embeddings: np.ndarray, names: Sequence[str]) -> dict:
        """Write embeddings [n, d] of named photos, then recalibrate; returns photos written per name."""

        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or embeddings.shape[1] != int(self.identity["embedding_size"]):
            raise ValueError(f"embeddings must be [n, {self.identity['embedding_size']}], got {embeddings.shape}")
        if len(names) != len(embeddings):
            raise ValueError(f"{len(embeddings)} embeddings but {len(names)} names")
        check_new_embeddings(embeddings, lambda row: f"photo {row} (of {names[row]!r})")
        names = [check_name(n) for n in names]
        lost_before = set(self.forgotten())   # before the new names: they hold no slot yet either
        ids = self.names.encode(names)
        write_one_at_a_time(self.memory, embeddings, ids)
        written: dict[str, int] = {}
        for name in names:
            written[name] = written.get(name, 0) + 1
            self.enrolled[name] = self.enrolled.get(name, 0) + 1
        self._keep_for_calibration(embeddings, ids)
        self.recalibrate()
        warn_if_forgotten(self, lost_before)
        return written

    def _keep_for_calibration(self, embeddings: np.ndarray, ids: np.ndarray) -> None:
        counts = np.bincount(self._calibration_labels, minlength=len(self.names))
        keep = []
        for i, label in enumerate(ids):
            if counts[label] < CALIBRATION_PER_NAME:
                counts[label] += 1
                keep.append(i)
        self._calibration_embeddings = np.concatenate([self._calibration_embeddings, embeddings[keep]])
        self._calibration_labels = np.concatenate([self._calibration_labels, ids[keep]])

    def recalibrate(self, fpir: float | None = None) -> identification.IdentificationCalibration | None:
        """Choose the threshold at `fpir` (default: the gallery's) for this gallery's size; None with one person.

        The verification numbers of the kept photos' pairs (experiments.faces.open_set) ride along.
        """
        if fpir is not None:
            self.fpir = identification.check_fpir(fpir)
        keys, values = self.entries()
        if len(np.unique(self._calibration_labels)) < 2 or len(np.unique(values)) < 2:
            self.calibration = None
            return None
        verification = open_set.calibrate(self._calibration_embeddings, self._calibration_labels)
        self.calibration = identification.calibrate(
            self._calibration_embeddings, self._calibration_labels, keys, values, self.fpir,
            keys_are_photos=self.memory_kind == "StoreAllNearestNeighbour", verification=verification.to_dict())
        return self.calibration

    def entries(self) -> tuple[np.ndarray, np.ndarray]:
        """(keys, label ids) of the filled entries `identify` searches: the memory's slots or store-all's rows."""
        keys, values = np.asarray(self.memory.keys.numpy()), np.asarray(self.memory.values.numpy())
        filled = values >= 0
        return keys[filled], values[filled]

    def calibrated_for_smaller(self) -> str | None:
        """Why the stored threshold no longer fits this gallery (set for fewer people or entries), or None."""
        return identification.outgrown(self.calibration, self.entries()[1])

    def calibration_sample(self) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings, label ids) of the kept photos the threshold is calibrated on."""
        return self._calibration_embeddings, self._calibration_labels

    def calibration_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(genuine, impostor) pair scores of the calibration sample, for a ROC figure."""
        return open_set.pair_scores(self._calibration_embeddings, self._calibration_labels)

    # ------------------------------------------------------------------ identifying

    def _threshold_or(self, threshold: float | None) -> float:
        if threshold is not None:
            return float(threshold)
        if self.threshold is None:
            raise GalleryError(
                "this gallery has no calibrated threshold yet (it needs photos of at least two people); "
                "enroll another person or give a threshold (--threshold T)"
            )
        outgrown = self.calibrated_for_smaller()
        if outgrown:
            warnings.warn(outgrown, stacklevel=3)
        return self.threshold

    def identify_embeddings(self, embeddings: np.ndarray, threshold: float | None = None,
                            paths: Sequence[str] | None = None) -> list[Identification]:
        """Answers for embeddings [n, d]: the memory's nearest name, or UNKNOWN below the threshold."""
        if self.memory.slots_in_use() == 0:
            raise GalleryError("the gallery is empty; enroll people first (kshot enroll)")
        threshold = self._threshold_or(threshold)
        embeddings = np.asarray(embeddings, dtype=np.float32)
        result = self.memory.lookup(embeddings)
        labels, similarity = result.labels.numpy(), result.similarity.numpy()
        keys, values = np.asarray(self.memory.keys.numpy()), np.asarray(self.memory.values.numpy())
        filled = values >= 0
        keys, values = keys[filled], values[filled]
        unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
        all_similarity = unit @ keys.T
        rows = []
        for i, (label, score) in enumerate(zip(labels, similarity)):
            others = all_similarity[i][values != label]
            runner_up, runner_score = "", float("nan")
            if others.size:
                best = int(np.argmax(others))
                runner_up = self.names.decode([values[values != label][best]])[0]
                runner_score = float(others[best])
            nearest = self.names.decode([label])[0]
            rows.append(Identification(
                path=paths[i] if paths is not None else "",
                answer=nearest if score >= threshold else UNKNOWN,
                similarity=float(score), nearest=nearest,
                runner_up=runner_up, runner_up_similarity=runner_score,
            ))
        return rows

    def identify(self, paths: Sequence[str | os.PathLike], threshold: float | None = None,
                 aligned: bool = False, learn: bool = False) -> list[Identification]:
        """One Identification per photo (folders are searched), skipped photos included with their reason.

        `learn=True` writes every accepted answer back into the memory (life-long mode); save
        the gallery afterwards to keep it.
        """
        threshold = self._threshold_or(threshold)
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        found, skipped = image_paths(paths)
        result = self.embedder.embed(found, aligned=aligned)
        skipped += list(result.skipped)
        rows = []
        if result.kept_paths:
            rows = self.identify_embeddings(result.embeddings, threshold, list(result.kept_paths))
            rows = with_face_counts(rows, face_counts(self.embedder, list(result.kept_paths), aligned))
            if learn:
                accepted = [i for i, row in enumerate(rows) if row.answer != UNKNOWN]
                if accepted:
                    self.learn(result.embeddings[accepted], [rows[i].answer for i in accepted])
        nan = float("nan")
        rows += [Identification(p, "", nan, "", "", nan, reason) for p, reason in skipped]
        order = {p: i for i, p in enumerate(found)}
        return sorted(rows, key=lambda r: (order.get(r.path, len(order)), r.path))

    def learn(self, embeddings: np.ndarray, names: Sequence[str]) -> None:
        """Write confirmed answers into the memory only (not into the calibration sample), then recalibrate.

        New entries are more chances for a stranger, so the threshold is set again for them.
        """

        ids = self.names.encode(names, add_new=False)
        lost_before = set(self.forgotten())
        write_one_at_a_time(self.memory, np.asarray(embeddings, np.float32), ids)
        warn_if_forgotten(self, lost_before)
        self.recalibrate()

    def forget(self, names: Sequence[str]) -> dict[str, int]:
        """Remove people entirely (see gallery.forgetting), then recalibrate; returns their photo counts.

        An unknown name is an error listing the enrolled ones. Save afterwards (or use `Gallery.edit`).
        """
        removed = forget_people(self, names)
        self.recalibrate()
        return removed

    # ------------------------------------------------------------------ files

    def save(self, path: str | os.PathLike) -> None:
        """Write the whole gallery to one file, atomically (see experiments.gallery.storage)."""
        check_gallery_values(self, f"the gallery to be saved to {path}")
        header = {
            "memory_kind": self.memory_kind,
            "labels": list(self.names.labels),
            "identity": self.identity,
            "fpir": self.fpir,
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
            "enrolled": self.enrolled,
        }
        write_gallery(Path(path), header, {
            **memory_state_arrays(self.memory),
            "calibration_embeddings": self._calibration_embeddings,
            "calibration_labels": self._calibration_labels,
        })

    @classmethod
    def load(cls, path: str | os.PathLike, embedder=None) -> "Gallery":
        """Read a gallery; with `embedder`, check it matches the one the gallery was enrolled with."""

        path = Path(path)
        header, arrays = read_gallery(path)
        try:
            settings = memory_config(arrays)
            gallery = cls(embedder=None, memory_size=settings.get("memory_size", DEFAULT_MEMORY_SIZE),
                          store_all=header["memory_kind"] == "StoreAllNearestNeighbour",
                          fpir=header.get("fpir", identification.DEFAULT_FPIR), identity=header["identity"])
            gallery.names = LabelMap(header["labels"])
            gallery.enrolled = dict(header["enrolled"])
            pair_threshold = header["format_version"] == 1
            gallery.calibration = (None if header["calibration"] is None or pair_threshold
                                   else identification.IdentificationCalibration.from_dict(header["calibration"]))
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, GalleryError):
                raise
            raise GalleryError(f"{path}: the gallery header is incomplete or wrong ({error}); enroll again") from error
        restore_memory_state(gallery.memory, arrays, path)
        labels = arrays["calibration_labels"].astype(np.int64)
        stored = np.asarray(gallery.memory.values.numpy())
        if len(labels) != len(arrays["calibration_embeddings"]) or max(labels.max(initial=-1), stored.max(initial=-1)) >= len(gallery.names):
            raise GalleryError(f"{path}: label ids and names disagree; the file is damaged, enroll again")
        gallery._calibration_embeddings = arrays["calibration_embeddings"].astype(np.float32)
        gallery._calibration_labels = labels
        check_gallery_values(gallery, path)
        if pair_threshold:
            gallery.recalibrate()
            warnings.warn(f"{path} is a version-1 gallery: its threshold was set on photo pairs at FAR "
                          f"{header.get('far', 0.001):g}, which strangers pass far more often against a gallery "
                          f"of many entries; it is recalibrated for FPIR {gallery.fpir:g} for this use only: run "
                          f"`kshot calibrate --gallery {path}` to store it", stacklevel=2)
        if embedder is not None:
            gallery.use_embedder(embedder)
        return gallery

    @classmethod
    @contextlib.contextmanager
    def edit(cls, path: str | os.PathLike, embedder=None, create: dict | None = None,
             timeout: float = DEFAULT_LOCK_TIMEOUT, expect_new: bool = False):
        """Load (or, with `create` settings and no file yet, make) the gallery under the writer lock; save on success.

        Concurrent `edit`s of one file run one after the other; a reader (`load`) never waits.
        expect_new: the caller chose `create` for a gallery it saw did not exist; if another
        writer created it meanwhile with another memory, refuse rather than drop those settings.
        """
        path = Path(path)
        with write_lock(path, timeout):
            if path.exists():
                gallery = cls.load(path, embedder=embedder)
                if expect_new and create is not None:
                    check_created_alike(gallery, {"memory_size": DEFAULT_MEMORY_SIZE, **create}, path)
            elif create is not None:
                gallery = cls(embedder=embedder, **create)
            else:
                raise FileNotFoundError(f"gallery {path} does not exist; create it with `kshot enroll`")
            yield gallery
            gallery.save(path)

    def forgotten(self) -> list[str]:
        """Enrolled people who hold no slot: all slots were taken (free ones go first) and theirs was reused."""
        held = set(np.asarray(self.memory.values.numpy()).tolist())
        return [name for i, name in enumerate(self.names.labels) if i not in held]

    def summary(self) -> str:
        kind = ("store-all" if self.memory_kind == "StoreAllNearestNeighbour"
                else f"Kaiser memory of {self.memory.memory_size} slots")
        threshold = ("none yet (one person)" if self.threshold is None else
                     f"{self.threshold:.4f} at FPIR {self.fpir:g} (set for {self.calibration.people} people)")
        text = (f"{len(self.names)} people, {sum(self.enrolled.values())} photos enrolled, "
                f"{self.memory.slots_in_use()} slots in use ({kind}); threshold {threshold}")
        lost = self.forgotten()
        if lost:
            text += (f". WARNING: {len(lost)} people hold no slot any more and cannot be recognised "
                     f"({', '.join(lost[:5])}{', ...' if len(lost) > 5 else ''}); enroll into a new gallery "
                     "with a larger --memory-size, or --store-all")
        return text


def _default_embedder():
    return FaceEmbedder()
