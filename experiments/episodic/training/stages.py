"""The skeleton every training stage runs on, and what the stages share around it.

The three stages - the classifier (pretrain.py), episodic fine-tuning (finetune.py) and
the memory loss (train.py) - differ in what a step draws, which loss it minimises and
what their log lines hold; everything around that is here once: the update loop with
its progress bar, the training clock that excludes measurements and survives a resume
(run_stage), the store-all 1-NN check on the monitored held-out split that every stage
logs (monitor_accuracy), and, for the two stages that checkpoint at every validation,
the checkpoint and the log line written with it (log_stage_step). So their logs stay
alike for curves.py and for resuming.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from experiments.core.memories import build_memory
from experiments.core.run_dir import latest_checkpoint, save_checkpoint
from experiments.episodic.data import EpisodicData
from experiments.episodic.evaluation.task_spec import TaskSpec
from experiments.episodic.evaluation.tasks import accuracy_of_answers, task_answers
from experiments.episodic.model import embed_images

# Held-out tasks of every logged 1-NN measurement: 5- and 20-way 1-shot, 200 tasks each.
MONITOR_TASKS = TaskSpec(ways=(5, 20), shots=(1,), episodes=200)


def monitor_accuracy(embedder, data: EpisodicData, seed: int) -> dict:
    """Store-all 1-NN accuracy on the MONITOR_TASKS of `data` (seeded with `seed`), keyed like "5w1s";
    a cell wider than `data` is skipped. The readout takes the keys' width from the embedder's
    output, so one or several members need no argument."""
    keys = embed_images(embedder, data.images)
    key_dim = keys.shape[1]
    tasks = dataclasses.replace(MONITOR_TASKS, seed=seed)
    out = {}
    for ways, shots in tasks.cells:
        if ways > data.num_classes:
            continue
        nearest = {"1-NN": build_memory("store_all", key_dim)}
        measured = accuracy_of_answers(*task_answers(keys, data, nearest, ways, shots, tasks))
        out[f"{ways}w{shots}s"] = round(measured["1-NN"]["mean"], 4)
    return out


def rounded_mean(values) -> float:
    """The mean of per-update values (floats or scalar tensors), rounded to 4 places as the stage logs keep it."""
    return round(float(np.mean([float(v) for v in values])), 4)


def log_stage_step(log_path: Path, checkpoint, embedder, monitor: EpisodicData, seed: int, record: dict) -> dict:
    """Add the held-out 1-NN accuracies to a stage's `record`, save the stage's checkpoint at
    record["step"] and append the record to `log_path` (the stage's log.jsonl); returns the record."""
    record = {**record, **{f"heldout_1nn_{k}": v for k, v in monitor_accuracy(embedder, monitor, seed).items()}}
    save_checkpoint(log_path.parent, record["step"], lambda prefix: checkpoint.write(str(prefix)))
    with open(log_path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
    return record


def heldout_summary(record: dict) -> str:
    """'5w1s 0.990, 20w1s 0.962': a logged record's held-out 1-NN accuracies."""
    return ", ".join(f"{key[len('heldout_1nn_'):]} {value:.3f}" for key, value in record.items()
                     if key.startswith("heldout_1nn_"))


def stage_checkpoint(stage_dir: Path) -> tuple[int, Path] | None:
    """The (step, prefix) of a stage directory's latest checkpoint, or None; the directory is created
    so that a new stage can write into it."""
    stage_dir.mkdir(parents=True, exist_ok=True)
    return latest_checkpoint(stage_dir)


def last_logged_seconds(*log_paths: Path) -> float:
    """Training seconds recorded by the last line of the first of `log_paths` that has one (0 for none).

    A stage passes its own log first, then the logs of the stages before it, latest first:
    a resumed stage continues its own clock, a new one starts where the previous stage ended."""
    for log_path in log_paths:
        if log_path.exists():
            lines = [line for line in log_path.read_text(encoding="utf-8").splitlines() if line.strip()]
            if lines:
                return float(json.loads(lines[-1])["seconds"])
    return 0.0


def run_stage(name: str, unit: str, start: int, steps: int, validate_every: int, draw: Callable[[int], tuple],
              update: Callable, step_var, clock_offset: float, on_validate: Callable, progress: bool, *,
              checkpoint_every: int | None = None, on_checkpoint: Callable[[int], None] | None = None,
              loss_format: str = ".3f") -> float:
    """Updates `start` .. `steps`-1 of one stage: update(*draw(step)) -> (loss, outcome) per step
    (`name` and `unit`, "batch" or "episode", label the progress bar, which shows the recent
    loss in `loss_format`).

    After every `validate_every`-th update and the last, on_validate(done, losses, outcomes,
    seconds) with the losses (floats) and outcomes of the updates since the previous call,
    and the training seconds so far, rounded to 0.1 (`clock_offset` plus the time spent in
    updates: whatever on_validate measures is left out). With `on_checkpoint`, after every
    `checkpoint_every`-th update and the last, on_checkpoint(done), counted as training time.
    Returns the training seconds at the end.
    """
    started = time.time()
    losses, outcomes = [], []
    bar = tqdm(range(start, steps), initial=start, total=steps, disable=not progress, desc=f"omniglot {name}",
               unit=unit, dynamic_ncols=True)
    for step in bar:
        loss, outcome = update(*draw(step))
        step_var.assign(step + 1)
        losses.append(float(loss))
        outcomes.append(outcome)
        done = step + 1
        if progress:
            bar.set_postfix(loss=format(np.mean(losses[-20:]), loss_format))
        if done % validate_every == 0 or done == steps:
            seconds = clock_offset + time.time() - started
            on_validate(done, losses, outcomes, round(seconds, 1))
            losses, outcomes = [], []
            clock_offset, started = seconds, time.time()
        if on_checkpoint is not None and (done % checkpoint_every == 0 or done == steps):
            on_checkpoint(done)
    bar.close()
    return clock_offset + time.time() - started
