"""Lake et al.'s 20 within-alphabet one-shot runs (`all_runs`), as the Omniglot papers report them.

Layout (a folder or a zip of it, possibly inside one top folder such as `all_runs/`):
`runNN/training/class01.png..class20.png` (one drawing of each of 20 characters of one
alphabet), `runNN/test/item01.png..item20.png` (another drawer's drawing of each), and
`runNN/class_labels.txt` with one line per query, `runNN/test/itemKK.png
runNN/training/classMM.png`, naming its correct class image. Paths in that file are
relative to the folder holding the runs.

Each run is a 20-way 1-shot task whose classes all come from one alphabet, which makes
it harder than the usual tasks drawn across alphabets. Lake et al. report the error
rate averaged over the runs; we report mean accuracy and error rate over runs, with a
95% Wilson interval over the answered queries, for the memory readout and store-all 1-NN.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import tensorflow as tf

from experiments.core.metrics import proportion
from experiments.episodic.evaluation.tasks import build_readout, make_task_runner
from experiments.episodic.model import embed_images
from experiments.episodic.omniglot import decode_drawing

LAKE_READOUTS = ("memory", "1-NN")  # labels of settings.READOUT_KINDS
RUN_NAME = re.compile(r"^run\d+$")
LABELS_FILE = "class_labels.txt"
LAYOUT_HELP = ("expected runNN/training/classMM.png, runNN/test/itemKK.png and runNN/class_labels.txt "
               "(lines 'runNN/test/itemKK.png runNN/training/classMM.png') in a folder or zip")


@dataclass(frozen=True)
class OneShotRun:
    """One run, decoded: `classes` [20, s, s] uint8, `queries` [q, s, s], `answers` [q] index into classes."""

    name: str
    classes: np.ndarray
    class_files: tuple[str, ...]
    queries: np.ndarray
    answers: np.ndarray


class _Files:
    """Read-only access by POSIX relative path to a folder or a zip, whichever the user gave."""

    def __init__(self, path: Path):
        self.path = path
        if path.is_file():
            try:
                self.zip = zipfile.ZipFile(path)
            except zipfile.BadZipFile as error:
                raise ValueError(f"{path} is not a readable zip file ({error}); {LAYOUT_HELP}") from error
            self.names = [n for n in self.zip.namelist() if not n.endswith("/") and "__MACOSX" not in n]
        elif path.is_dir():
            self.zip = None
            self.names = [p.relative_to(path).as_posix() for p in sorted(path.rglob("*")) if p.is_file()]
        else:
            raise FileNotFoundError(f"Lake one-shot runs {path} do not exist; {LAYOUT_HELP}")

    def read(self, name: str) -> bytes:
        if self.zip is not None:
            try:
                return self.zip.read(name)
            except KeyError:
                raise FileNotFoundError(f"{self.path} has no {name}; {LAYOUT_HELP}") from None
        target = self.path / name
        if not target.is_file():
            raise FileNotFoundError(f"{target} does not exist; {LAYOUT_HELP}")
        return target.read_bytes()


def load_runs(path: str | os.PathLike, image_size: int) -> list[OneShotRun]:
    """Every run under `path` (folder or zip), sorted by name, decoded at `image_size`."""
    files = _Files(Path(path).expanduser())
    label_files = sorted(n for n in files.names
                         if PurePosixPath(n).name == LABELS_FILE and RUN_NAME.match(PurePosixPath(n).parent.name))
    if not label_files:
        raise ValueError(f"no runNN/{LABELS_FILE} found in {path}; {LAYOUT_HELP}")
    runs = []
    for labels_name in label_files:
        run_dir = PurePosixPath(labels_name).parent
        base = run_dir.parent  # class_labels.txt paths start at the folder holding the runs
        pairs = []
        for number, line in enumerate(files.read(labels_name).decode("utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2:
                raise ValueError(f"{path}: {labels_name} line {number} should name a test image and its class image, "
                                 f"got {line!r}")
            pairs.append(tuple(str(base / p) if str(base) != "." else p for p in parts))
        if not pairs:
            raise ValueError(f"{path}: {labels_name} lists no queries; {LAYOUT_HELP}")
        class_files = sorted(n for n in files.names
                             if PurePosixPath(n).parent == run_dir / "training" and n.lower().endswith(".png"))
        if not class_files:
            raise ValueError(f"{path}: {run_dir}/training holds no class images; {LAYOUT_HELP}")
        index = {name: i for i, name in enumerate(class_files)}
        unknown = [c for _, c in pairs if c not in index]
        if unknown:
            raise ValueError(f"{path}: {labels_name} names class images not in {run_dir}/training: {unknown[:3]}")
        decode = lambda name: decode_drawing(files.read(name), image_size, origin=f"{path}:{name}")  # noqa: E731
        runs.append(OneShotRun(
            name=run_dir.name,
            classes=np.stack([decode(n) for n in class_files]),
            class_files=tuple(class_files),
            queries=np.stack([decode(q) for q, _ in pairs]),
            answers=np.array([index[c] for _, c in pairs], dtype=np.int64),
        ))
    return runs


def evaluate_runs(embedder, config, runs: list[OneShotRun]) -> dict:
    """Per-run accuracy of the memory and 1-NN readouts, and their mean / error rate over runs."""
    readouts = {name: build_readout(name, config, seed_offset=3) for name in LAKE_READOUTS}
    runners = {name: make_task_runner(readout) for name, readout in readouts.items()}
    per_run = {name: [] for name in readouts}
    for run in runs:
        support = tf.constant(embed_images(embedder, run.classes)[None])  # one round of every class
        labels = tf.constant(np.arange(len(run.classes), dtype=np.int64))
        queries = tf.constant(embed_images(embedder, run.queries))
        for name, runner in runners.items():
            predicted = runner(support, labels, queries).numpy()
            per_run[name].append(float(np.mean(predicted == run.answers)))
    summary = {}
    answered = sum(len(run.answers) for run in runs)
    for name, values in per_run.items():
        hits = int(round(sum(v * len(run.answers) for v, run in zip(values, runs))))
        pooled = proportion(hits, answered)  # Wilson: stays within [0, 1]
        low, high, mean = pooled["ci_low"], pooled["ci_high"], float(np.mean(values))
        summary[name] = {"mean_accuracy": mean, "ci_low": low, "ci_high": high, "error_rate": 1.0 - mean,
                         "per_run": dict(zip((r.name for r in runs), values))}
    return {"runs": len(runs), "readouts": summary}


def lake_markdown(results: dict, checkpoint: str) -> str:
    lines = [f"Lake et al. one-shot runs ({results['runs']} runs, 20-way 1-shot within an alphabet), "
             f"checkpoint {checkpoint}:", "",
             "| readout | mean accuracy | 95% CI | error rate |", "|---|---:|---|---:|"]
    for name, row in results["readouts"].items():
        lines.append(f"| {name} | {100 * row['mean_accuracy']:.1f}% | [{100 * row['ci_low']:.1f}, "
                     f"{100 * row['ci_high']:.1f}] | {100 * row['error_rate']:.1f}% |")
    return "\n".join(lines) + "\n"
