"""`kshot omniglot eval` of the four standard cells (5/20-way, 1/5-shot) at 1,000 tasks each.

What it measures, on the shipped checkpoint's test alphabets:
- the whole evaluation as the command runs it (`evaluate_run`: restore, embed with the
  trained and the untrained network, the four cells for the three readouts, the per-shot
  curves), with its default chunks: the paper's Kaiser memory held as the rows each task
  writes (evaluation.touched_rows), store-all and class means in closed form
  (evaluation.closed_form);
- the same answers one task at a time from a cleared memory (chunk 0, the reference path)
  on the first `--baseline-tasks` tasks of every cell and per-shot curve, timed and
  scaled to 1,000 tasks (per-task time is flat in the number of tasks; its one trace per
  cell is scaled with it, so the scaled time overstates a little: about a second a cell
  against several seconds of tasks), after checking that both paths give the same answers
  on those tasks.
The load average is printed beside every timing.

    python benchmarks/omniglot_eval_speed.py [--episodes 1000] [--baseline-tasks 50]

Last lines:
    RESULT omniglot_eval_4cells_s=<seconds of the whole evaluation>
    RESULT batched_speedup=<one-task-at-a-time seconds / batched seconds for the answers, scaled to the same tasks>
    RESULT load_average_1min=<the machine's load when they were measured>
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from experiments.episodic.evaluation.evaluate import evaluate_run  # noqa: E402
from experiments.episodic.evaluation.heldout import restore_held_out  # noqa: E402
from experiments.episodic.evaluation.sequences import per_shot_accuracy  # noqa: E402
from experiments.episodic.evaluation.task_spec import TaskSpec  # noqa: E402
from experiments.episodic.evaluation.tasks import make_readouts, task_answers  # noqa: E402
from experiments.episodic.model import embed_images  # noqa: E402

SHIPPED = Path(__file__).resolve().parents[1] / "experiments" / "episodic" / "shipped"
WAYS, SHOTS = (5, 20), (1, 5)


def loads() -> str:
    """The machine's load averages (1, 5, 15 min), printed beside every timing: a loaded machine is slower."""
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def answer_seconds(keys, test, readouts, spec: TaskSpec, chunk: int | None) -> tuple[float, list]:
    """Seconds to answer every cell and per-shot curve of `spec` (default chunks when `chunk` is None), and the answers."""
    extra = {} if chunk is None else {"chunk": chunk}
    start, answers = time.perf_counter(), []
    for ways in spec.ways:
        for shots in spec.shots:
            answers.append(task_answers(keys, test, readouts, ways, shots, spec, **extra)[1])
        answers.append(per_shot_accuracy(keys, test, readouts["memory"], ways, spec, **extra))
    return time.perf_counter() - start, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--baseline-tasks", type=int, default=50, help="tasks per cell on the one-at-a-time path")
    args = parser.parse_args()
    spec = TaskSpec(ways=WAYS, shots=SHOTS, episodes=args.episodes)

    start = time.perf_counter()
    evaluate_run(SHIPPED, spec)
    whole = time.perf_counter() - start
    print(f"whole evaluation (trained + untrained, 4 cells x 3 readouts, per-shot curves; {args.episodes} tasks "
          f"each): {whole:.2f} s; {loads()}")

    config, trained, _, test, _, _ = restore_held_out(SHIPPED, None, "test", WAYS)
    keys = embed_images(trained, test.images)
    readouts = make_readouts(config, max(WAYS))
    few = TaskSpec(ways=WAYS, shots=SHOTS, episodes=args.baseline_tasks)
    reference_seconds, reference = answer_seconds(keys, test, readouts, few, chunk=0)
    batched_few_seconds, batched_few = answer_seconds(keys, test, readouts, few, chunk=None)
    for one, other in zip(reference, batched_few):
        same = (one == other) if isinstance(one, list) else all(np.array_equal(one[k], other[k]) for k in one)
        if not same:
            raise SystemExit("the batched answers differ from the one-task-at-a-time answers")
    print(f"batched answers == one-task-at-a-time answers on the first {args.baseline_tasks} tasks of every cell")
    batched_seconds, _ = answer_seconds(keys, test, readouts, spec, chunk=None)
    scaled = reference_seconds * args.episodes / args.baseline_tasks
    print(f"one task at a time: {reference_seconds:.2f} s for {args.baseline_tasks} tasks per cell, "
          f"{scaled:.1f} s scaled to {args.episodes}; {loads()}")
    print(f"batched: {batched_seconds:.2f} s for {args.episodes} tasks per cell (trained embedder); {loads()}")
    print(f"RESULT omniglot_eval_4cells_s={whole:.2f}")
    print(f"RESULT batched_speedup={scaled / batched_seconds:.1f}")
    print(f"RESULT load_average_1min={os.getloadavg()[0]:.2f}")  # beside the two above: a loaded machine is slower


if __name__ == "__main__":
    main()
