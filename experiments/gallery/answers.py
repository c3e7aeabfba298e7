"""What the gallery answers: a name, or UNKNOWN, for each photo; and the table of answers.

Apart from the gallery itself so that the photo helpers (experiments.gallery.photos)
can refuse a person named like the strangers' answer without importing the gallery.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

UNKNOWN = "unknown"
IDENTIFY_COLUMNS = ["path", "answer", "similarity", "nearest", "runner_up", "runner_up_similarity", "skipped_reason"]


@dataclass(frozen=True)
class Identification:
    """One photo's answer. `answer` is a name, UNKNOWN, or "" when the photo was skipped (see `reason`)."""

    path: str
    answer: str
    similarity: float
    nearest: str                # the best known name, even when rejected as UNKNOWN
    runner_up: str
    runner_up_similarity: float
    reason: str = ""

    @property
    def skipped(self) -> bool:
        return bool(self.reason)


def check_name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a person's name must be a non-empty string, got {name!r}")
    if name == UNKNOWN:
        raise ValueError(f"{UNKNOWN!r} is the answer for strangers and cannot be a person's name; rename that folder")
    return name


def identifications_frame(rows):
    """One row per photo, the columns of `kshot identify --out`."""
    return pd.DataFrame([{
        "path": r.path, "answer": r.answer, "similarity": r.similarity, "nearest": r.nearest,
        "runner_up": r.runner_up, "runner_up_similarity": r.runner_up_similarity, "skipped_reason": r.reason,
    } for r in rows], columns=IDENTIFY_COLUMNS)
