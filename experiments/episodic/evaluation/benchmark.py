"""`kshot omniglot benchmark`: the official Omniglot benchmark of a checkpoint, in one command.

The field reports Omniglot on its 20 *evaluation* alphabets (`images_evaluation.zip`,
659 characters) and on Lake et al.'s 20 one-shot runs (`all_runs.zip`, drawn from the
same alphabets). This module finds both zips in one folder, refuses a checkpoint that
ever had one of the evaluation alphabets (its split.json names what it trained,
validated and tested on), and writes three results files that `make docs` renders:

- OFFICIAL_FILE: `eval --split unseen` with OFFICIAL_TASKS (5 and 20 ways, 1 and 5
  shots, 1,000 tasks per cell, seed 0) and the untrained floor;
- LAKE_FILE: Lake et al.'s runs, memory and 1-NN;
- STREAM_FILE: the life-long stream of all 659 characters, fixed-size memories of
  STREAM_SLOTS_PER_CHARACTER slots per character against store-all, FIFO, the
  class-balanced reservoir and class means (STREAM_READOUTS_OFFICIAL), and its figure
  STREAM_FIGURE (.png, .svg).

Nothing here chooses anything: the evaluation set is read to report, never to tune.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path, PurePosixPath
from typing import Callable

from experiments.core.run_files import SPLIT_FILE
from experiments.episodic.checkpoints import restore_embedder
from experiments.episodic.evaluation.evaluate import evaluate_run
from experiments.episodic.evaluation.lake import evaluate_runs, load_runs
from experiments.episodic.evaluation.stream import run_stream
from experiments.episodic.evaluation.stream_figure import plot_stream
from experiments.episodic.evaluation.task_spec import TaskSpec
from experiments.episodic.omniglot import default_sources
from kshot_io import write_text_atomic

EVALUATION_ZIP = "images_evaluation.zip"
RUNS_ZIP = "all_runs.zip"
OFFICIAL_FILE = "omniglot_official.json"
LAKE_FILE = "omniglot_lake_official.json"
STREAM_FILE = "omniglot_stream_official.json"
STREAM_FIGURE = "omniglot_stream_official"  # .png and .svg, beside STREAM_FILE
OFFICIAL_TASKS = TaskSpec(ways=(5, 20), shots=(1, 5), episodes=1000, queries=1, seed=0, split="unseen")
STREAM_SLOTS_PER_CHARACTER = (0.5, 1.0, 2.0, 4.0)
STREAM_READOUTS_OFFICIAL = ("store-all", "memory", "fifo", "reservoir", "prototype")
STREAM_TITLE = "Life-long stream through Omniglot's evaluation characters, each drawing answered before it is written"
# The alphabet lists of a split.json a checkpoint must not share with the evaluation set.
SEEN_KEYS = {"train_alphabets": "trained on", "validation_alphabets": "validated on", "test_alphabets": "tested on"}


class BenchmarkRefused(ValueError):
    """The checkpoint has had some of the evaluation alphabets, so the benchmark would not be on unseen characters."""


def default_folder() -> Path:
    """The folder the zips are looked for in without --data: the default Omniglot source folder."""
    return default_sources()[0]


def find_zips(folder: str | os.PathLike) -> tuple[Path, Path]:
    """(images_evaluation.zip, all_runs.zip) inside `folder`, or FileNotFoundError naming what is missing."""
    folder = Path(folder).expanduser()
    found = (folder / EVALUATION_ZIP, folder / RUNS_ZIP)
    missing = [p.name for p in found if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} does not hold {' and '.join(missing)}; pass --data with the folder "
                                f"holding {EVALUATION_ZIP} and {RUNS_ZIP}")
    return found


def zip_alphabets(path: str | os.PathLike) -> list[str]:
    """The alphabet names of a zip laid out <set>/<Alphabet>/<characterNN>/<drawing>.png (or without <set>/)."""
    names = set()
    with zipfile.ZipFile(path) as archive:
        for entry in archive.namelist():
            parts = PurePosixPath(entry).parts
            if len(parts) >= 3 and parts[-1].lower().endswith(".png") and "__MACOSX" not in parts:
                names.add(parts[-3])
    return sorted(names)


def check_unseen(checkpoint: str | os.PathLike, evaluation_zip: str | os.PathLike) -> list[str]:
    """The evaluation zip's alphabets, after refusing (BenchmarkRefused, one line) a checkpoint whose
    split.json is missing or names any of them as trained, validated or tested on. Names are compared."""
    split_path = Path(checkpoint) / SPLIT_FILE
    if not split_path.is_file():
        raise BenchmarkRefused(f"{checkpoint} has no {SPLIT_FILE} naming the alphabets it had, so the benchmark "
                               "cannot check that the evaluation alphabets are unseen")
    saved = json.loads(split_path.read_text(encoding="utf-8"))
    evaluation = zip_alphabets(evaluation_zip)
    clashes = []
    for key, role in SEEN_KEYS.items():
        overlap = sorted(set(saved.get(key, ())) & set(evaluation))
        if overlap:
            clashes.append(f"{role} {', '.join(overlap)}")
    if clashes:
        raise BenchmarkRefused(f"refused: {checkpoint} has had evaluation alphabets of {evaluation_zip} "
                               f"({'; '.join(clashes)}), so the benchmark would not be on unseen characters")
    return evaluation


def run_benchmark(checkpoint: str | os.PathLike, folder: str | os.PathLike, out: str | os.PathLike, *,
                  stream: bool = True, progress: bool = False, report: Callable[[str, dict], None] | None = None) -> dict:
    """Every measurement of the module docstring for `checkpoint`, written atomically under `out`;
    returns {file name: results}. `report(name, results)` is called as each part finishes."""
    evaluation_zip, runs_zip = find_zips(folder)
    check_unseen(checkpoint, evaluation_zip)
    out = Path(out)
    written: dict[str, dict] = {}

    def write(name: str, results: dict) -> None:
        write_text_atomic(out / name, json.dumps(results, indent=2) + "\n")
        written[name] = results
        if report is not None:
            report(name, results)

    write(OFFICIAL_FILE, evaluate_run(checkpoint, OFFICIAL_TASKS, sources=[evaluation_zip], untrained=True,
                                      progress=progress))
    config, embedder, _ = restore_embedder(checkpoint)
    write(LAKE_FILE, evaluate_runs(embedder, config, load_runs(runs_zip, config.data.image_size)))
    if stream:
        write(STREAM_FILE, run_stream(checkpoint, sources=[evaluation_zip], split="unseen",
                                      slots_per_character=STREAM_SLOTS_PER_CHARACTER,
                                      readouts=STREAM_READOUTS_OFFICIAL))
        plot_stream(written[STREAM_FILE], out / STREAM_FIGURE, title=STREAM_TITLE)
    return written
