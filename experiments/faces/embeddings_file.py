"""Reading an embeddings npz (`--embeddings`, the format `kshot embed` writes), checked row by row.

The file may come from any embedder and any program, so nothing in it is trusted:
each problem is one error naming the file, the array, the rows and what to do, found
before a model is built. The cases, and why each is refused rather than run:
- missing arrays, arrays of other lengths, `embeddings` not a 2-D float array [n, d];
- NaN or infinity in a row, or a row of zeros: the cosine similarity the memory and
  store-all rank by is undefined for them, so any answer would be an accident;
- string arrays written as bytes (numpy's `S` dtype, e.g. from h5py or Python 2) are
  decoded as UTF-8; bytes that are not UTF-8 are refused, naming the row;
- an empty label;
- fewer than 2 classes, or a class with fewer than 2 rows (one to feed, one to evaluate);
- the same vector twice: under two labels it makes one of them wrong whatever the model
  does (refused unless duplicates are allowed, as for images); within one label its
  second copy scores a free 1.000 at one shot (a warning in the run's notes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kshot_io.npz import read_npz

REQUIRED_ARRAYS = ("embeddings", "labels")
STRING_ARRAYS = ("labels", "paths", "split", "skipped")
NPZ_MAGIC = b"PK\x03\x04"  # an npz is a zip archive
SHOWN_ROWS = 5  # rows listed in a message; the count says how many there are


@dataclass
class EmbeddingsFile:
    """The checked contents of an embeddings npz: rows, and one string per row."""

    embeddings: np.ndarray  # [n, d], finite, no zero row
    labels: list[str]
    paths: list[str]  # "item<i>" for a file without `paths`
    skipped: list[str] = field(default_factory=list)


def rows_text(rows: np.ndarray) -> str:
    shown = ", ".join(str(int(r)) for r in rows[:SHOWN_ROWS])
    return f"row{'s' if len(rows) > 1 else ''} {shown}{', ...' if len(rows) > SHOWN_ROWS else ''}"


def decoded_strings(path: Path, name: str, values: np.ndarray) -> list[str]:
    """An array's entries as str; bytes are decoded as UTF-8 (and refused, naming the row, when they are not)."""
    if values.dtype.kind != "S":
        return [str(v) for v in values]
    decoded = []
    for row, value in enumerate(values):
        try:
            decoded.append(bytes(value).decode("utf-8"))
        except UnicodeDecodeError:
            raise ValueError(
                f"embeddings file {path}: `{name}` row {row} is bytes that are not UTF-8 text ({bytes(value)[:40]!r}); "
                f"write `{name}` as text (numpy str arrays), e.g. np.array(names, dtype=str)"
            ) from None
    return decoded


def check_shapes(path: Path, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The `embeddings` array, once every array has the shape and type the format asks for."""
    missing = [k for k in REQUIRED_ARRAYS if k not in arrays]
    if missing:
        raise ValueError(
            f"embeddings file {path} lacks the array(s) {', '.join(missing)}; it holds {', '.join(sorted(arrays)) or 'nothing'}. "
            "It needs `embeddings` [n, d] and `labels` [n] (and `paths` [n]), as `kshot embed` writes."
        )
    embeddings = arrays["embeddings"]
    if embeddings.ndim == 1:
        raise ValueError(
            f"embeddings file {path}: `embeddings` is 1-D (shape {embeddings.shape}); it must be 2-D [n, d], "
            "one row per image (a single vector v is v.reshape(1, -1), a flattened matrix x.reshape(n, d))"
        )
    if embeddings.ndim != 2 or embeddings.shape[0] == 0 or embeddings.shape[1] == 0:
        raise ValueError(f"embeddings file {path}: `embeddings` must be a non-empty 2-D array [n, d], got shape {embeddings.shape}")
    if not np.issubdtype(embeddings.dtype, np.floating):
        raise ValueError(
            f"embeddings file {path}: `embeddings` must be floating point, got {embeddings.dtype}; "
            "save it as float32 (embeddings.astype('float32')) if these numbers really are the vectors"
        )
    for name in STRING_ARRAYS:
        if name in arrays and arrays[name].ndim != 1 and not (name == "skipped" and arrays[name].size == 0):
            raise ValueError(
                f"embeddings file {path}: `{name}` must be a 1-D array with one entry per image, got shape "
                f"{arrays[name].shape}; write it again with `kshot embed`"
            )
    lengths = {"embeddings": embeddings.shape[0], "labels": len(arrays["labels"])}
    for optional in ("paths", "split"):
        if optional in arrays:
            lengths[optional] = len(arrays[optional])
    if len(set(lengths.values())) != 1:
        listed = ", ".join(f"{k} has {v}" for k, v in lengths.items())
        raise ValueError(f"embeddings file {path}: arrays of different lengths ({listed}); every array must have one entry per image")
    return embeddings


def check_rows(path: Path, embeddings: np.ndarray, labels: list[str]) -> None:
    """Refuse rows whose cosine similarity is undefined, and labels that name no class."""
    bad_rows = np.flatnonzero(~np.isfinite(embeddings).all(axis=1))
    if bad_rows.size:
        raise ValueError(
            f"embeddings file {path}: {bad_rows.size} row(s) of `embeddings` hold NaN or infinity "
            f"({rows_text(bad_rows)}); recompute them or drop those rows"
        )
    zero_rows = np.flatnonzero(~embeddings.any(axis=1))
    if zero_rows.size:
        raise ValueError(
            f"embeddings file {path}: {zero_rows.size} row(s) of `embeddings` are all zeros ({rows_text(zero_rows)}); "
            "the cosine similarity of a zero vector is undefined (often a failed embedding): recompute or drop those rows"
        )
    empty = np.flatnonzero(np.array([not label.strip() for label in labels]))
    if empty.size:
        raise ValueError(f"embeddings file {path}: {empty.size} empty label(s) ({rows_text(empty)}); give every row its class name")


def check_classes(path: Path, labels: list[str]) -> None:
    """At least 2 classes, each with one row to feed and one to evaluate."""
    names, counts = np.unique(np.asarray(labels, dtype=str), return_counts=True)
    if len(names) < 2:
        raise ValueError(
            f"embeddings file {path}: {len(names)} class ({', '.join(names) or 'none'}) after [data] max_classes and "
            "images_per_class; k-shot classification needs at least 2 classes. Add rows of another class."
        )
    small = [f"{str(name)!r} ({count})" for name, count in zip(names, counts) if count < 2]
    if small:
        raise ValueError(
            f"embeddings file {path}: class(es) with fewer than 2 rows: {', '.join(small[:SHOWN_ROWS])}; each class "
            "needs one row to feed and one to evaluate. Add rows or drop those classes."
        )


def duplicate_row_notes(path: Path, embeddings: np.ndarray, labels: list[str], paths: list[str],
                        allow_across_classes: bool) -> list[str]:
    """Identical rows: under two labels an error (unless allowed), within one label a warning note."""
    _, group_of, counts = np.unique(embeddings, axis=0, return_inverse=True, return_counts=True)
    group_of = np.asarray(group_of).ravel()
    notes = []
    for group in np.flatnonzero(counts > 1):
        rows = np.flatnonzero(group_of == group)
        classes = sorted({labels[r] for r in rows})
        items = ", ".join(f"row {r} ({paths[r]})" for r in rows[:SHOWN_ROWS]) + (", ..." if len(rows) > SHOWN_ROWS else "")
        if len(classes) > 1 and not allow_across_classes:
            raise ValueError(
                f"embeddings file {path}: the same vector is labelled {', '.join(classes)}: {items}; one of the "
                "labels is wrong whatever the model does. Drop the wrong rows, or pass --allow-duplicates "
                "([data] allow_duplicates = true) to run anyway."
            )
        where = f"classes {', '.join(classes)}" if len(classes) > 1 else f"class {classes[0]}"
        notes.append(f"warning: identical embeddings in {where} (a copy scores for free once the other is fed): {items}")
    return notes


def read_embeddings_file(path: str | Path) -> EmbeddingsFile:
    """Every row of the file, or a one-line error naming the file, the array and the rows."""
    path = Path(path)
    if path.is_file():
        with open(path, "rb") as handle:
            if handle.read(4) != NPZ_MAGIC:
                raise ValueError(
                    f"embeddings file {path} is not an .npz archive (a CSV, a single .npy, a pickle?); write the "
                    "arrays with numpy.savez(path, embeddings=..., labels=...), or one with `kshot embed`"
                )
    arrays = read_npz(path, "`kshot embed` file", f"write one with `kshot embed --out {path}`")
    embeddings = check_shapes(path, arrays)
    labels = decoded_strings(path, "labels", arrays["labels"])
    check_rows(path, embeddings, labels)
    n = embeddings.shape[0]
    paths = decoded_strings(path, "paths", arrays["paths"]) if "paths" in arrays else [f"item{i}" for i in range(n)]
    skipped = decoded_strings(path, "skipped", arrays["skipped"].ravel()) if "skipped" in arrays else []
    return EmbeddingsFile(embeddings=embeddings, labels=labels, paths=paths, skipped=skipped)
