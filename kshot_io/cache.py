"""Where downloaded weights, datasets and derived caches live.

The cache sits outside the repository so that a checkout never carries weights or
photos, and so that several checkouts on one machine share one download. Set
KSHOT_CACHE to move it (for example to a larger disk, or to a temporary folder in
tests).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

CACHE_ENV_VAR = "KSHOT_CACHE"


def cache_root() -> Path:
    """Return the cache directory, created if missing.

    Order: $KSHOT_CACHE, then $XDG_CACHE_HOME/kshot-memory, then ~/.cache/kshot-memory.
    """
    configured = os.environ.get(CACHE_ENV_VAR)
    if configured:
        root = Path(configured).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
        root = base / "kshot-memory"
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(
            f"the kshot-memory cache location {root} is a file, not a folder. "
            f"Set {CACHE_ENV_VAR} to a folder (it is created if missing)."
        )
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(
            f"cannot create the kshot-memory cache directory {root}: {error}. "
            f"Set {CACHE_ENV_VAR} to a writable folder."
        ) from error
    if not os.access(root, os.W_OK):
        raise PermissionError(
            f"the kshot-memory cache directory {root} is not writable. "
            f"Set {CACHE_ENV_VAR} to a writable folder."
        )
    return root


def sha256_of_file(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()
