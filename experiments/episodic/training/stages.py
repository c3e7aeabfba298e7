"""What the training stages share: held-out monitoring, logs on one clock, the update loop.

The classifier stage (pretrain.py) and the episodic fine-tuning stage (finetune.py)
differ in what a step draws and which loss it minimises; everything around that - the
progress bar, the training clock that excludes measurements and survives a resume, the
store-all 1-NN check on the monitored held-out split every `validate_every` steps, the
checkpoint and the log line written with it - is here once, so their logs stay alike
for curves.py and for resuming. The memory-loss stage (train.py) uses the monitoring
and the clock.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from experiments.core.memories import build_memory
from experiments.core.run_dir import latest_checkpoint, save_checkpoint
from experiments.episodic.evaluation.evaluate import (
    accuracy_of_answers,
    embed_images,
    task_answers,
)
from experiments.episodic.omniglot import OmniglotData

MONITOR_TASKS = 200  # held-out tasks per logged 1-NN measurement
MONITOR_SETTINGS = ((5, 1), (20, 1))


def monitor_accuracy(embedder, data: OmniglotData, seed: int, tasks: int = MONITOR_TASKS) -> dict:
    """Store-all 1-NN accuracy on `tasks` N-way 1-shot tasks of `data`, keyed like "5w1s" (the readout
    takes the keys' width from the embedder's output, so one or several members need no argument)."""


    keys = embed_images(embedder, data.images)
    key_dim = keys.shape[1]
    out = {}
    for ways, shots in MONITOR_SETTINGS:
        if ways > data.num_classes:
            continue
        measured = accuracy_of_answers(*task_answers(keys, data, {"1-NN": build_memory("store_all", key_dim)}, ways,
                                                     shots, tasks, seed=seed))
        out[f"{ways}w{shots}s"] = round(measured["1-NN"]["mean"], 4)
    return out


def log_stage_step(log_path: Path, checkpoint, embedder, monitor: OmniglotData, seed: int, record: dict) -> dict:
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
              update: Callable, step_var, clock_offset: float, on_validate: Callable, progress: bool) -> None:
    """Updates `start` .. `steps`-1 of one stage: update(*draw(step)) -> (loss, hit rate) per step
    (`name` and `unit`, "batch" or "episode", label the progress bar).

    After every `validate_every`-th update and the last, on_validate(done, mean loss, mean hit
    rate, seconds) with the means over the updates since the previous call, rounded to 4
    places, and the training seconds so far (`clock_offset` plus the time spent in updates:
    whatever on_validate measures is left out)."""

    started = time.time()
    losses, hits = [], []
    bar = tqdm(range(start, steps), initial=start, total=steps, disable=not progress, desc=f"omniglot {name}",
               unit=unit, dynamic_ncols=True)
    for step in bar:
        loss, hit = update(*draw(step))
        step_var.assign(step + 1)
        losses.append(float(loss))
        hits.append(float(hit))
        done = step + 1
        if progress:
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        if done % validate_every == 0 or done == steps:
            seconds = clock_offset + time.time() - started
            on_validate(done, round(float(np.mean(losses)), 4), round(float(np.mean(hits)), 4), round(seconds, 1))
            losses, hits = [], []
            clock_offset, started = seconds, time.time()
    bar.close()
