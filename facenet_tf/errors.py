"""Exceptions that name the file and say what to do.

Every problem with one input image is an `ImageSkipError` (a `ValueError`), so a
runner can catch that single type, record `(path, reason)` as a skip and go on,
while the command line prints the message without a traceback.
"""

from __future__ import annotations

import os


class ImageSkipError(ValueError):
    """One image cannot be used; `path` names it and `reason` says why."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class UnreadableImageError(ImageSkipError):
    """Zero-byte, truncated, corrupt, non-image or oversized file."""


class NoFaceError(ImageSkipError):
    """MTCNN found no face in the image."""


class FaceTooSmallError(ImageSkipError):
    """The most confident face is smaller than the documented minimum."""


class WeightsError(ValueError):
    """A weights file is missing, damaged, or does not fit the architecture."""
