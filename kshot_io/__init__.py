"""Small file helpers shared by every kshot-memory package.

They live apart so that the memory module, the FaceNet port and the experiment
runner agree on one cache location and one way of writing files that a crash
cannot leave half-written.
"""

from kshot_io.atomic import atomic_write, flush_to_disk, write_bytes_atomic, write_text_atomic
from kshot_io.cache import cache_root, sha256_of_file

__all__ = [
    "atomic_write",
    "flush_to_disk",
    "write_bytes_atomic",
    "write_text_atomic",
    "cache_root",
    "sha256_of_file",
]
