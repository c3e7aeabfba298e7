"""What the gallery answers: a name, or UNKNOWN, for each photo; and the table of answers.

Apart from the gallery itself so that the photo helpers (experiments.gallery.photos)
can refuse a person named like the strangers' answer without importing the gallery.

The answers CSV is opened in spreadsheets, and a cell starting with =, +, -, @, a
tab or a carriage return is run there as a formula. Names and photo file names are
chosen by whoever supplies the photos, so every text cell of the CSV that starts
with one of those gets a leading apostrophe (the OWASP rule for CSV injection);
numbers are left as they are. The table printed on screen shows the text unchanged.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace

import pandas as pd

UNKNOWN = "unknown"
IDENTIFY_COLUMNS = ["path", "answer", "similarity", "nearest", "runner_up", "runner_up_similarity", "skipped_reason",
                    "faces", "note"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


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
    faces: int | None = None    # faces the detector found in the photo (None: not detected, e.g. --aligned)

    @property
    def note(self) -> str:
        """What a reader of the answer must know about the photo (several faces: which one was answered)."""
        if self.faces is not None and self.faces > 1:
            return f"{self.faces} faces found; answered for the most confident detection"
        return ""

    @property
    def skipped(self) -> bool:
        return bool(self.reason)


def check_name(name) -> str:
    """`name` in Unicode NFC: folders copied from macOS spell "Zoë" in another form (NFD), still one person."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a person's name must be a non-empty string, got {name!r}")
    if name == UNKNOWN:
        raise ValueError(f"{UNKNOWN!r} is the answer for strangers and cannot be a person's name; rename that folder")
    return unicodedata.normalize("NFC", name)


def identifications_frame(rows):
    """One row per photo, the columns of `kshot identify --out`."""
    return pd.DataFrame([{
        "path": r.path, "answer": r.answer, "similarity": r.similarity, "nearest": r.nearest,
        "runner_up": r.runner_up, "runner_up_similarity": r.runner_up_similarity, "skipped_reason": r.reason,
        "faces": pd.NA if r.faces is None else r.faces, "note": r.note,
    } for r in rows], columns=IDENTIFY_COLUMNS).astype({"faces": "Int64"})


def with_face_counts(rows, counts: dict) -> list:
    """`rows` with the number of faces found in each photo (`counts`: path -> faces; missing paths keep None)."""
    return [replace(r, faces=counts.get(r.path)) if not r.skipped else r for r in rows]


def neutralise_formula(text):
    """`text` made inert for spreadsheets: a leading =, +, -, @, tab or CR gets an apostrophe before it."""
    if isinstance(text, str) and text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` whose text cells cannot run as spreadsheet formulas (numbers untouched)."""
    safe = frame.copy()
    for column in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[column]):
            safe[column] = safe[column].map(neutralise_formula)
    return safe


def answers_csv(rows) -> str:
    """The text of the answers CSV (`kshot identify --out`): one row per photo, formula-safe."""
    return csv_safe(identifications_frame(rows)).to_csv(index=False, float_format="%.6f", lineterminator="\n")
