"""The gallery file: one .npz written atomically, and the lock that serialises its writers.

Layout (all arrays; NumPy reads it without TensorFlow):
  header                  JSON text: format_version, kind ("kshot-gallery"), memory_kind,
                          labels (names in id order), identity (the embedder's, see
                          face_embedder.py), fpir (far in version 1), calibration (or null:
                          experiments.faces.identification, with people and entries,
                          the gallery size it was set for), enrolled (photos per name)
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

The file holds biometric data, so a new gallery is created owner-only (0600, further
limited by the umask); a rewrite keeps whatever mode the file has (chmod 640 it once
to share it with a group). A symlinked gallery path is written through to the link's
target, and the lock belongs to that target (`<target>.lock`), so every path to one
gallery shares one lock. The lock file is opened without following a symlink and is
only ever written when it is a plain file of ours: a planted link or hard link cannot
make a writer truncate another file. A writer killed mid-save leaves a temporary file
named with its pid; the next save removes the temporaries of dead writers.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
import tempfile
import time
from pathlib import Path

import numpy as np

from kshot_io.atomic import remove_stale_temporaries, write_target
from kshot_io.npz import read_headed_npz, read_npz, write_headed_npz

GALLERY_FORMAT_VERSION = 2          # 2: the threshold is set at an FPIR for a recorded gallery size
READABLE_GALLERY_VERSIONS = (1, 2)   # 1 (a verification-FAR threshold) loads and is recalibrated
GALLERY_KIND = "kshot-gallery"
DEFAULT_LOCK_TIMEOUT = 600.0   # seconds a writer waits for another writer
NEW_GALLERY_MODE = 0o600       # a new gallery file: owner-only (biometric data), further limited by the umask


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
    """Replace the gallery at `path` (through a symlink), after removing dead writers' temporary files."""
    remove_stale_temporaries(path)
    # Names of people may be in any script: the header keeps them as written.
    write_headed_npz(path, GALLERY_KIND, GALLERY_FORMAT_VERSION, header, arrays, ensure_ascii=False,
                     new_file_mode=NEW_GALLERY_MODE)


def read_gallery(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """(header, arrays), with the kind and format version checked."""
    path = Path(path)
    refuse_folder(path)
    if not path.is_file():
        raise FileNotFoundError(f"gallery {path} does not exist; create it with `kshot enroll --gallery {path}`")
    header, arrays = read_headed_npz(
        path, GALLERY_KIND, READABLE_GALLERY_VERSIONS, what="kshot gallery", error=GalleryError,
        remedy="restore it from a copy, or enroll the photos again into a new gallery file with this version",
    )
    missing = {MEMORY_PREFIX + "header", "calibration_embeddings", "calibration_labels"} - set(arrays)
    if missing:
        raise GalleryError(f"{path} lacks the arrays {sorted(missing)}; the file is damaged, enroll again")
    return header, arrays


def refuse_folder(path: Path) -> None:
    if Path(path).is_dir():
        raise GalleryError(f"{path} is a folder, not a gallery file; give a file name such as {Path(path) / 'team.npz'}")


def lock_path_of(path: Path) -> Path:
    """`<gallery>.lock` next to the file the gallery path really names (a symlink's target)."""
    target = write_target(path)
    return target.with_name(target.name + ".lock")


def _open_lock(lock_path: Path, mode: int) -> tuple[int, bool]:
    """(descriptor, whether we may write our pid into it) of the lock file, never through a symlink."""
    flags = os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(lock_path, flags | os.O_RDWR, mode)
    except PermissionError:   # a lock another user created (a shared gallery): lock it read-only
        fd = os.open(lock_path, flags | os.O_RDONLY, mode)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise GalleryError(f"the lock file {lock_path} is a symbolic link; kshot never follows it. Remove the "
                               "link (it is not the gallery) and run the command again") from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise GalleryError(f"the lock file {lock_path} is not a plain file; remove it and run the command again")
    writable = (os.O_ACCMODE & fcntl.fcntl(fd, fcntl.F_GETFL)) == os.O_RDWR
    ours = info.st_uid == os.geteuid() and info.st_nlink == 1
    return fd, writable and ours


def _lock_mode(path: Path) -> int:
    """A new lock file is as private as its gallery (writable by whoever may write the gallery)."""
    try:
        return stat.S_IMODE(os.stat(write_target(path)).st_mode) | 0o600
    except FileNotFoundError:
        return NEW_GALLERY_MODE


@contextlib.contextmanager
def write_lock(path: Path, timeout: float = DEFAULT_LOCK_TIMEOUT):
    """Hold the exclusive writer lock of the gallery at `path` (waits up to `timeout` seconds)."""
    path = Path(path)
    refuse_folder(path)
    lock_path = lock_path_of(path)
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd, may_write = _open_lock(lock_path, _lock_mode(path))
    except PermissionError as error:
        raise PermissionError(f"cannot create the gallery's lock file {lock_path} ({error.strerror}): the folder "
                              f"{lock_path.parent} is not writable for you; choose a --gallery in a folder you "
                              "can write, or ask its owner") from None
    deadline = time.monotonic() + max(0.0, float(timeout))
    with os.fdopen(fd, "r+" if may_write else "r") as handle:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read(200).strip() or "another process"
                    raise GalleryBusyError(
                        f"gallery {path} is being written by {holder} (lock {lock_path}); waited {timeout:g} s. "
                        "Retry when it has finished (the gallery itself is intact)"
                    ) from None
                time.sleep(0.05)
        try:
            if may_write:   # a plain file of ours with no other name: safe to rewrite
                handle.seek(0)
                handle.truncate()
                handle.write(f"pid {os.getpid()}")
                handle.flush()
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
