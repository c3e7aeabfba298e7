"""The gallery file: one .npz written atomically, and the lock that serialises its writers.

Layout (all arrays; NumPy reads it without TensorFlow):
  header                  JSON text: format_version, kind ("kshot-gallery"), memory_kind,
                          labels (names in id order), identity (the embedder's, see
                          face_embedder.py), far, threshold, calibration (or null), enrolled
                          (photos per name)
  memory.*                the arrays of the memory's own state file (memory.save: memory.header,
                          memory.keys, ...), loaded back through memory.load so that the
                          memory's format, version and shape checks apply unchanged
  calibration_embeddings  float32 [m, d] the photos kept to calibrate the threshold
  calibration_labels      int64 [m] their label ids

Readers never lock: a writer replaces the file by an atomic rename, so a reader sees
the old gallery or the new one, never a mix. Writers (enroll, identify --learn,
calibrate) hold an exclusive `fcntl` lock on `<gallery>.lock` around read-modify-write,
so two enrolls cannot lose each other's people; the second waits, then fails with a
clear message if the first takes longer than the timeout.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from kshot_io.npz import read_headed_npz, read_npz, write_headed_npz

GALLERY_FORMAT_VERSION = 1
GALLERY_KIND = "kshot-gallery"
DEFAULT_LOCK_TIMEOUT = 600.0   # seconds a writer waits for another writer


class GalleryError(ValueError):
    """A gallery file that cannot be used; the message names it and says what to do."""


class GalleryBusyError(GalleryError):
    """Another process holds the gallery's write lock for longer than we may wait."""


MEMORY_PREFIX = "memory."


def memory_state_arrays(memory) -> dict[str, np.ndarray]:
    """The arrays of the memory's own state file, each named with MEMORY_PREFIX."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "memory.npz"
        memory.save(path)
        state = read_npz(path, "memory state file", "this is a bug: the memory just wrote it")
        return {MEMORY_PREFIX + name: value for name, value in state.items()}


def memory_config(arrays: dict[str, np.ndarray]) -> dict:
    """The settings in the stored memory header (to build a memory of the right size before loading)."""
    return json.loads(str(arrays[MEMORY_PREFIX + "header"]))["config"]


def restore_memory_state(memory, arrays: dict[str, np.ndarray], source: Path) -> None:
    """Load the memory through its own state file, so its version and shape checks apply unchanged."""
    state = {name[len(MEMORY_PREFIX):]: value for name, value in arrays.items() if name.startswith(MEMORY_PREFIX)}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "memory.npz"
        with open(path, "wb") as handle:
            np.savez(handle, **state)
        try:
            memory.load(path)
        except ValueError as error:
            raise GalleryError(f"{source}: its memory state cannot be loaded ({error})") from error


def write_gallery(path: Path, header: dict, arrays: dict[str, np.ndarray]) -> None:
    # Names of people may be in any script: the header keeps them as written.
    write_headed_npz(path, GALLERY_KIND, GALLERY_FORMAT_VERSION, header, arrays, ensure_ascii=False)


def read_gallery(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """(header, arrays), with the kind and format version checked."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"gallery {path} does not exist; create it with `kshot enroll --gallery {path}`")
    header, arrays = read_headed_npz(
        path, GALLERY_KIND, GALLERY_FORMAT_VERSION, what="kshot gallery", error=GalleryError,
        remedy="restore it from a copy, or enroll the photos again into a new gallery file with this version",
    )
    missing = {MEMORY_PREFIX + "header", "calibration_embeddings", "calibration_labels"} - set(arrays)
    if missing:
        raise GalleryError(f"{path} lacks the arrays {sorted(missing)}; the file is damaged, enroll again")
    return header, arrays


@contextlib.contextmanager
def write_lock(path: Path, timeout: float = DEFAULT_LOCK_TIMEOUT):
    """Hold the exclusive writer lock of the gallery at `path` (waits up to `timeout` seconds)."""
    path = Path(path)
    lock_path = path.with_name(path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + max(0.0, float(timeout))
    with open(lock_path, "a+") as handle:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "another process"
                    raise GalleryBusyError(
                        f"gallery {path} is being written by {holder} (lock {lock_path}); waited {timeout:g} s. "
                        "Retry when it has finished (the gallery itself is intact)"
                    ) from None
                time.sleep(0.05)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}")
            handle.flush()
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
