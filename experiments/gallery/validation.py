"""The values inside a gallery, checked on every load and before every save.

A well-formed file can still hold values that break the promises of the gallery
without any error: one NaN key makes every answer "unknown" (and survives later
enrolls), a threshold of -5 or keys scaled by 100 let every stranger in, a count
that disagrees with the names mislabels people. So the same checks run when a
gallery is read (a damaged or edited file is refused) and before it is written (a
bug never stores such a file). Each failure names the field and the file.
"""

from __future__ import annotations

import numpy as np

from experiments.gallery.answers import check_name
from experiments.gallery.storage import GalleryError

UNIT_TOLERANCE = 1e-3       # |norm - 1| allowed for a stored key (float32 merges drift by ~1e-7)
THRESHOLD_TOLERANCE = 1e-6  # a threshold set just above a similarity of 1 is still a valid cosine


def check_gallery_values(gallery, source) -> None:
    """Raise GalleryError naming the first field of `gallery` that holds an impossible value.

    source: the file (or "the gallery") named in the message.
    """
    def refuse(field: str, problem: str) -> None:
        raise GalleryError(f"{source}: {field} {problem}; the file is damaged or was edited by hand. Restore it "
                           "from a copy, or enroll the photos again into a new gallery")

    names = list(gallery.names.labels)
    for name in names:
        try:
            check_name(name)
        except ValueError as error:
            refuse("labels", f"holds an invalid name ({error})")
    if len(set(names)) != len(names):
        refuse("labels", "holds a name twice")
    _check_memory(gallery.memory, len(names), refuse)
    _check_enrolled(gallery.enrolled, names, refuse)
    threshold = gallery.threshold
    if threshold is not None and not (np.isfinite(threshold) and abs(threshold) <= 1.0 + THRESHOLD_TOLERANCE):
        refuse("threshold", f"is {threshold!r}, not a cosine similarity in [-1, 1]")
    embeddings = np.asarray(gallery._calibration_embeddings)
    labels = np.asarray(gallery._calibration_labels)
    if embeddings.ndim != 2 or embeddings.shape[1] != int(gallery.identity["embedding_size"]):
        refuse("calibration_embeddings", f"has shape {embeddings.shape}")
    if not np.isfinite(embeddings).all():
        refuse("calibration_embeddings", "holds NaN or infinite values")
    if labels.shape != (len(embeddings),):
        refuse("calibration_labels", f"has {labels.size} entries for {len(embeddings)} calibration embeddings")
    if labels.size and (labels.min() < 0 or labels.max() >= len(names)):
        refuse("calibration_labels", f"holds label ids outside 0..{len(names) - 1}")


def _check_memory(memory, n_names: int, refuse) -> None:
    keys = np.asarray(memory.keys.numpy(), np.float64)
    values = np.asarray(memory.values.numpy())
    count = getattr(memory, "count", None)   # store-all: rows [0, count) are filled, the rest empty
    if count is not None:
        count = int(count.numpy())
        if not 0 <= count <= len(values):
            refuse("memory.count", f"is {count}, outside 0..{len(values)}")
        if (values[:count] < 0).any() or (values[count:] >= 0).any():
            refuse("memory.values", f"disagree with memory.count ({count} filled rows)")
    filled = values >= 0
    if not np.isfinite(keys).all():
        refuse("memory.keys", "hold NaN or infinite values")
    if (values < -1).any() or (values >= n_names).any():
        refuse("memory.values", f"hold label ids outside -1..{n_names - 1} ({n_names} names)")
    norms = np.linalg.norm(keys[filled], axis=1)
    if norms.size and np.abs(norms - 1.0).max() > UNIT_TOLERANCE:
        refuse("memory.keys", f"are not unit vectors (a norm of {norms[np.argmax(np.abs(norms - 1))]:.4g})")
    if (keys[~filled] != 0).any():
        refuse("memory.keys", "hold values in empty slots")


def _check_enrolled(enrolled, names: list, refuse) -> None:
    if not isinstance(enrolled, dict) or set(enrolled) != set(names):
        extra = sorted(set(enrolled) - set(names)) if isinstance(enrolled, dict) else []
        missing = sorted(set(names) - set(enrolled)) if isinstance(enrolled, dict) else names
        refuse("enrolled", f"does not list exactly the enrolled names (extra {extra[:3]}, missing {missing[:3]})")
    for name, count in enrolled.items():
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
            refuse("enrolled", f"holds {count!r} photos for {name!r}, not a positive whole number")


def check_created_alike(gallery, create: dict, path) -> None:
    """Refuse to enroll into a gallery another writer created meanwhile with another memory than `create` asks."""
    store_all = bool(create.get("store_all", False))
    wanted = {"store_all": True} if store_all else {"store_all": False, "memory_size": int(create["memory_size"])}
    found_store_all = gallery.memory_kind == "StoreAllNearestNeighbour"
    found = ({"store_all": True} if found_store_all
             else {"store_all": False, "memory_size": int(gallery.memory.memory_size)})
    if wanted != found:
        raise GalleryError(f"{path} was created by another command meanwhile with {found}, not {wanted} as "
                           "asked; nothing was written. Enroll again without --memory-size/--store-all to add "
                           "to it, or choose another --gallery")


def check_new_embeddings(embeddings: np.ndarray, what) -> None:
    """Refuse NaN, infinite or zero embeddings before they reach the memory or the calibration sample.

    what: a function from a row number to what the user knows it as (a photo's path).
    """
    norms = np.linalg.norm(embeddings, axis=1)
    bad = np.flatnonzero(~np.isfinite(embeddings).all(axis=1) | ~np.isfinite(norms) | (norms == 0))
    if bad.size:
        raise ValueError(f"{what(int(bad[0]))}: its embedding is NaN, infinite or zero ({bad.size} such photo(s)); "
                         "nothing was enrolled. Remove the photo or re-embed it")
