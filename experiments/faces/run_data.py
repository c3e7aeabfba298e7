"""What a k-shot run learns from: embeddings from an npz, or images through FaceNet.

Two sources, one result (`PreparedData`, defined here, used by the runner):
- `--embeddings FILE.npz` (the format `kshot embed` writes): no FaceNet at all, so the
  frozen-embedder models serve users of any embedder. The file is checked row by row
  before use (experiments.faces.embeddings_file); each problem is an error naming the
  file, the array and the rows.
- a dataset name or folder: images are aligned through facenet_tf's crop cache and
  embedded once with FaceNet through its embedding cache (`Embedder.embed_paths`);
  every repeat and iteration of the frozen methods reuses these embeddings. The
  prewhitened crops of the same pass are kept only when a method needs images
  (experiments.faces.methods).

Class ids are dense, in sorted order of the class names, so a run's confusion
matrices have the same rows whatever order the files were listed in.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from experiments.faces.datasets import load_image_dataset
from experiments.faces.embeddings_file import check_classes, duplicate_row_notes, read_embeddings_file
from experiments.faces.settings import DataSection
from kshot_io import sha256_of_file


@dataclass
class PreparedData:
    """Everything the methods need, indexed by item: embeddings, dense labels, class names."""

    embeddings: np.ndarray  # float32 [n, d]
    labels: np.ndarray  # int64 [n], dense ids into class_names
    class_names: list[str]
    paths: list[str]
    crops: np.ndarray | None = None  # prewhitened FaceNet inputs; None when no method needs images
    facenet: object | None = None  # the Keras FaceNet the crops go through; None with crops
    skipped: list[str] = field(default_factory=list)
    description: str = ""
    notes: list[str] = field(default_factory=list)  # what was ignored or dropped, and why; printed and kept in notes.txt

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        digest.update(np.ascontiguousarray(self.embeddings, dtype=np.float32).tobytes())
        digest.update(np.ascontiguousarray(self.labels, dtype=np.int64).tobytes())
        digest.update("\n".join(self.class_names).encode("utf-8"))
        return digest.hexdigest()


def select_items(labels: list[str], paths: list[str], max_classes: int, images_per_class: int) -> np.ndarray:
    """Indices kept by max_classes (first N class names, sorted) and images_per_class (first N paths, sorted)."""
    labels = np.asarray(labels, dtype=str)
    paths = np.asarray(paths, dtype=str)
    names = sorted(set(labels.tolist()))
    if max_classes:
        names = names[:max_classes]
    keep = []
    for name in names:
        members = np.flatnonzero(labels == name)
        members = members[np.argsort(paths[members], kind="stable")]
        if images_per_class:
            members = members[:images_per_class]
        keep.append(members)
    return np.sort(np.concatenate(keep)) if keep else np.empty(0, np.int64)


def dense_labels(labels) -> tuple[np.ndarray, list[str]]:
    names, dense = np.unique(np.asarray(labels, dtype=str), return_inverse=True)
    return dense.astype(np.int64), [str(n) for n in names]


def duplicate_notes(paths: list[str], labels: list[str], allow_across_classes: bool) -> list[str]:
    """Notes on files with identical content: within a class (a warning), across classes (an error).

    A photo filed twice in one class makes its second copy a free 1.000 at one shot; the
    same photo under two names makes one of them wrong whatever the model does.
    """

    by_content: dict[str, list[int]] = {}
    for index, path in enumerate(paths):
        by_content.setdefault(sha256_of_file(path), []).append(index)
    notes = []
    for group in (g for g in by_content.values() if len(g) > 1):
        classes = sorted({labels[i] for i in group})
        files = ", ".join(paths[i] for i in group)
        if len(classes) > 1 and not allow_across_classes:
            raise ValueError(
                f"the same image content is filed under several classes ({', '.join(classes)}): {files}. "
                "Remove the wrong copies, or pass --allow-duplicates ([data] allow_duplicates = true) to run anyway."
            )
        where = f"classes {', '.join(classes)}" if len(classes) > 1 else f"class {classes[0]}"
        notes.append(f"warning: identical files in {where} (a copy scores for free once the other is fed): {files}")
    return notes


def load_embeddings_file(path: str | Path, data: DataSection) -> PreparedData:
    """The rows of an embeddings npz that [data] selects, checked (experiments.faces.embeddings_file)."""
    path = Path(path)
    contents = read_embeddings_file(path)
    keep = select_items(contents.labels, contents.paths, data.max_classes, data.images_per_class)
    labels = [contents.labels[i] for i in keep]
    paths = [contents.paths[i] for i in keep]
    embeddings = contents.embeddings[keep].astype(np.float32)
    check_classes(path, labels)
    notes = duplicate_row_notes(path, embeddings, labels, paths, data.allow_duplicates)
    dense, names = dense_labels(labels)
    return PreparedData(
        embeddings=embeddings,
        labels=dense,
        class_names=names,
        paths=paths,
        skipped=contents.skipped,
        description=f"embeddings file {path}",
        notes=notes,
    )


def load_images(data: DataSection, need_crops: bool, progress: bool = True) -> PreparedData:
    """Align and embed a dataset (a built-in name or a folder) with the pretrained FaceNet."""
    # Here, not at the top: facenet_tf starts TensorFlow, which an --embeddings run never needs.
    from facenet_tf import Embedder, load_pretrained


    dataset = load_image_dataset(data.source, skip_bad=data.skip_bad)
    paths = [str(p) for p in dataset.paths]
    labels = [str(label) for label in dataset.labels]
    keep = select_items(labels, paths, data.max_classes, data.images_per_class)
    paths = [paths[i] for i in keep]
    label_of = {paths_i: labels[i] for paths_i, i in zip(paths, keep)}
    notes = list(dataset.notes) + duplicate_notes(paths, [label_of[p] for p in paths], data.allow_duplicates)

    aligned = data.aligned or dataset.aligned   # built-in variants made from aligned crops say so themselves
    pretrained = load_pretrained(data.weights or None)
    embedder = Embedder.from_pretrained(pretrained, progress=progress)
    embedded = embedder.embed_paths(paths, aligned=aligned, keep_crops=need_crops)
    kept, embeddings, crops, skipped = list(embedded.kept_paths), embedded.embeddings, embedded.crops, embedded.skipped
    facenet = pretrained.model
    dropped = sorted(set(label_of.values()) - {label_of[p] for p in kept})
    if dropped:
        notes.append(f"class(es) dropped because none of their images could be used (see skipped.txt): {', '.join(dropped)}")
    dense, names = dense_labels([label_of[p] for p in kept])
    return PreparedData(
        embeddings=np.asarray(embeddings, dtype=np.float32),
        labels=dense,
        class_names=names,
        paths=kept,
        crops=crops,
        facenet=facenet if need_crops else None,
        skipped=[f"{p}: {reason}" for p, reason in [*dataset.skipped, *skipped]],
        description=f"dataset {data.source}{' (aligned crops)' if aligned else ''}",
        notes=notes,
    )


def prepare_data(data: DataSection, need_crops: bool, progress: bool = True) -> PreparedData:
    if data.embeddings:
        return load_embeddings_file(data.embeddings, data)
    return load_images(data, need_crops, progress)
