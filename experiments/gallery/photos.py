"""The photos a gallery command is given: image files and folders, embedded with their names.

Apart from the Gallery so that a command can embed (slow) before it takes the
gallery's writer lock, and hold the lock only to write. An embedding that is NaN,
infinite or zero is refused here with its photo's path, before anything is written:
one such key would make every later answer "unknown".

A photo may show several people while the embedder answers for one face (the most
confident detection). `face_counts` says how many faces the detector found, so an
answer can say which face it is about.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from experiments.faces.datasets import load_folder
from experiments.gallery.answers import check_name
from experiments.gallery.validation import check_new_embeddings
from facenet_tf import IMAGE_EXTENSIONS


def image_paths(paths: Sequence[str | os.PathLike]) -> tuple[list[str], list[tuple[str, str]]]:
    """Image files named directly or found in folders (recursively, sorted); non-images are returned as skips."""
    found, skipped = [], []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.is_file()
                            and not any(part.startswith(".") for part in p.relative_to(path).parts))
            images = [p for p in inside if p.suffix.lower() in IMAGE_EXTENSIONS]
            if not images:
                raise ValueError(f"folder {path} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}); "
                                 "give image files or a folder of them")
            found += [str(p) for p in images]
            skipped += [(str(p), f"not an image (extension {p.suffix or 'none'!r})") for p in inside if p not in images]
        elif path.is_file():
            found.append(str(path))
        else:
            raise FileNotFoundError(f"{path} does not exist; give image files or folders of images")
    return found, skipped


def embed_named_photos(embedder, data, names: Sequence[str] | None = None, aligned: bool = False,
                       skip_bad: bool = False) -> tuple[np.ndarray, list[str], list[tuple[str, str]]]:
    """(embeddings, their names, skipped (path, reason)) of a folder root/<name>/<photo> or of paths + names.

    """
    if names is None:
        if not isinstance(data, (str, os.PathLike)):
            raise ValueError("enroll(paths, names): give one name per path, or a folder root/<name>/<photo>")
        dataset = load_folder(data, skip_bad=skip_bad)
        paths, names, skipped = [str(p) for p in dataset.paths], list(dataset.labels), list(dataset.skipped)
    else:
        paths, names, skipped = [str(p) for p in data], list(names), []
        if len(paths) != len(names):
            raise ValueError(f"enroll got {len(paths)} paths but {len(names)} names; give one name per path")
    for name in set(names):
        check_name(name)
    result = embedder.embed(paths, aligned=aligned)
    skipped += list(result.skipped)
    if not result.kept_paths:
        raise ValueError(f"no usable face in the {len(paths)} photo(s) given: "
                         + "; ".join(f"{p}: {r}" for p, r in skipped[:3]))
    check_new_embeddings(np.asarray(result.embeddings), lambda row: str(result.kept_paths[row]))
    name_of = dict(zip(paths, names))
    return result.embeddings, [name_of[p] for p in result.kept_paths], skipped


def face_counts(embedder, paths: Sequence[str], aligned: bool) -> dict[str, int]:
    """Faces the embedder's detector finds in each photo; {} for face crops or an embedder without a detector."""
    if aligned or not hasattr(embedder, "count_faces"):
        return {}
    return {path: count for path, count in zip(paths, embedder.count_faces(paths)) if count is not None}
