"""A face run's results: the per-repeat record and the tables assembled from the repeat files.

Layout of a `kshot run` directory (experiments.core.run_dir opens it and stores the repeats):
    config.toml                    the resolved configuration
    repeats/<model>/<repeat>.npz   one finished repeat, written atomically
    results.csv                    tidy, one row per model x repeat x iteration
    timings.csv                    seconds per iteration (kept out of results.csv so that
                                   results.csv is byte-identical between runs)
    confusion.npz                  confusion matrices, one array per model
    dataset.npz                    embeddings, labels and class names (for the figures)
    summary.csv, summary.md        mean and 95% CI per model and shots
    figures/*.png, *.svg

results.csv is assembled from the repeat files alone, in a fixed order with a fixed
number format, so an interrupted-then-resumed run writes the same bytes as an
uninterrupted one.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Optional

import numpy as np
import pandas as pd

from experiments.core.run_files import (
    CONFUSION_FILE,
    DATASET_FILE,
    OPEN_SET_FILE,
    RESULTS_FILE,
    TIMINGS_FILE,
)
from kshot_io import atomic_write, write_text_atomic

RESULT_COLUMNS = ["model", "repeat", "shots", "accuracy", "n_eval", "n_correct", "memory_bytes", "slots_in_use", "memory_loss"]
FLOAT_FORMAT = "%.9g"


@dataclass
class RepeatResult:
    """Everything recorded for one model x repeat, one entry per iteration."""

    model: str
    repeat: int
    shots: np.ndarray  # int64 [I]
    n_eval: np.ndarray  # int64 [I]
    n_correct: np.ndarray  # int64 [I]
    memory_bytes: np.ndarray  # int64 [I]
    slots_in_use: np.ndarray  # int64 [I]
    memory_loss: np.ndarray  # float64 [I]; loss of the batch fed before this evaluation (0 at 0 shots)
    seconds: np.ndarray  # float64 [I]; wall time of the iteration (learn + evaluate)
    confusion: np.ndarray  # int64 [I, C, C]; rows true class, columns predicted class
    feed: np.ndarray  # int64 [I, C]; dataset indices fed before each evaluation, in feed order (-1: none)
    # Open-set runs only ([open_set] strangers > 0); n_eval and n_correct then count known items only.
    threshold: Optional[np.ndarray] = None  # float64 [I]; similarity needed to accept an answer (inf: nothing fed)
    n_known_accepted: Optional[np.ndarray] = None  # int64 [I]; known items named right at the threshold
    n_stranger: Optional[np.ndarray] = None  # int64 [I]; items of held-out identities evaluated
    n_stranger_rejected: Optional[np.ndarray] = None  # int64 [I]; of those, rejected (below the threshold)

    ARRAYS: ClassVar[tuple[str, ...]] = (
        "shots", "n_eval", "n_correct", "memory_bytes", "slots_in_use", "memory_loss", "seconds", "confusion", "feed",
    )
    OPEN_SET_ARRAYS: ClassVar[tuple[str, ...]] = ("threshold", "n_known_accepted", "n_stranger", "n_stranger_rejected")

    @property
    def open_set(self) -> bool:
        return self.n_stranger is not None

    @property
    def accuracy(self) -> np.ndarray:
        return self.n_correct / np.maximum(self.n_eval, 1)


def results_frame(results: list[RepeatResult]) -> pd.DataFrame:
    rows = []
    for r in results:
        acc = r.accuracy
        for i in range(len(r.shots)):
            rows.append(
                {
                    "model": r.model,
                    "repeat": r.repeat,
                    "shots": int(r.shots[i]),
                    "accuracy": float(acc[i]),
                    "n_eval": int(r.n_eval[i]),
                    "n_correct": int(r.n_correct[i]),
                    "memory_bytes": int(r.memory_bytes[i]),
                    "slots_in_use": int(r.slots_in_use[i]),
                    "memory_loss": float(r.memory_loss[i]),
                }
            )
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


OPEN_SET_COLUMNS = ["model", "repeat", "shots", "threshold", "n_known", "n_known_accepted", "known_accuracy",
                    "n_stranger", "n_stranger_rejected", "stranger_rejection"]


def open_set_frame(results: list[RepeatResult]) -> pd.DataFrame:
    """One row per model x repeat x iteration of an open-set run: accuracy on known items at the
    threshold (a rejected known item counts as wrong) and the strangers' rejection rate."""
    rows = [
        {
            "model": r.model, "repeat": r.repeat, "shots": int(r.shots[i]), "threshold": float(r.threshold[i]),
            "n_known": int(r.n_eval[i]), "n_known_accepted": int(r.n_known_accepted[i]),
            "known_accuracy": float(r.n_known_accepted[i] / max(r.n_eval[i], 1)),
            "n_stranger": int(r.n_stranger[i]), "n_stranger_rejected": int(r.n_stranger_rejected[i]),
            "stranger_rejection": float(r.n_stranger_rejected[i] / max(r.n_stranger[i], 1)),
        }
        for r in results if r.open_set for i in range(len(r.shots))
    ]
    return pd.DataFrame(rows, columns=OPEN_SET_COLUMNS)


def csv_text(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, float_format=FLOAT_FORMAT, lineterminator="\n")


def write_tables(run_dir: Path, results: list[RepeatResult], model_order: list[str], class_names: list[str]) -> None:
    """Write results.csv, timings.csv and confusion.npz from the repeat results, in a fixed order."""
    run_dir = Path(run_dir)
    rank = {m: i for i, m in enumerate(model_order)}
    ordered = sorted(results, key=lambda r: (rank[r.model], r.repeat))
    write_text_atomic(run_dir / RESULTS_FILE, csv_text(results_frame(ordered)))
    if any(r.open_set for r in ordered):
        write_text_atomic(run_dir / OPEN_SET_FILE, csv_text(open_set_frame(ordered)))
    timing_rows = [
        {"model": r.model, "repeat": r.repeat, "shots": int(s), "seconds": float(t)}
        for r in ordered
        for s, t in zip(r.shots, r.seconds)
    ]
    write_text_atomic(
        run_dir / TIMINGS_FILE,
        pd.DataFrame(timing_rows, columns=["model", "repeat", "shots", "seconds"]).to_csv(
            index=False, float_format="%.6f", lineterminator="\n"
        ),
    )
    arrays = {"class_names": np.array(class_names)}
    for model in model_order:
        mine = [r for r in ordered if r.model == model]
        if not mine:
            continue
        n_iter = max(len(r.shots) for r in mine)
        n_classes = len(class_names)
        stacked = np.zeros((len(mine), n_iter, n_classes, n_classes), dtype=np.int64)
        for j, r in enumerate(mine):
            stacked[j, : len(r.shots)] = r.confusion
        arrays[model] = stacked
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    with atomic_write(run_dir / CONFUSION_FILE, "wb") as handle:
        handle.write(buffer.getvalue())


def load_results(run_dir: Path) -> pd.DataFrame:
    path = Path(run_dir) / RESULTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; is {run_dir} a finished `kshot run` directory?")
    frame = pd.read_csv(path)
    missing = [c for c in ("model", "repeat", "shots", "accuracy", "n_eval", "memory_bytes") if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks the columns {missing}; it was not written by `kshot run`")
    return frame


def load_confusion(run_dir: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    path = Path(run_dir) / CONFUSION_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; is {run_dir} a finished `kshot run` directory?")
    with np.load(path, allow_pickle=False) as data:
        names = [str(n) for n in data["class_names"]]
        return names, {k: data[k] for k in data.files if k != "class_names"}


def save_dataset(run_dir: Path, embeddings: np.ndarray, labels: np.ndarray, class_names: list[str], paths: list[str]) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        embeddings=embeddings.astype(np.float32),
        labels=labels.astype(np.int64),
        class_names=np.array(class_names),
        paths=np.array(paths),
    )
    with atomic_write(Path(run_dir) / DATASET_FILE, "wb") as handle:
        handle.write(buffer.getvalue())


def load_dataset(run_dir: Path) -> dict | None:
    path = Path(run_dir) / DATASET_FILE
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
