"""Seconds per fine-tuned repeat on the celebrities: the whole network against a Block8 scope.

What it measures: `run_repeat` of `memory_finetune_phase_off` (the runner's own
loop) with `[finetune] trainable_from = "all"` and `= "Block8"`, everything else
equal (same shuffles, shots, steps per shot, optimizer and learning rate). A
warm-up repeat per scope is run first and not timed, so tracing and the frozen
features' computation (cached on disk after the first run) are excluded; the
timed repeats are what a long run pays per repeat. The two scopes alternate
repeat by repeat, so a change in machine load hits both alike.

    python benchmarks/finetune_speed.py [--repeats 3] [--shots 4] [--steps 1]

Last line: RESULT finetune_speedup_block8=<seconds per repeat, all / Block8>  (target >= 10)
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

from experiments.faces import settings as cfg  # noqa: E402
from experiments.faces.adapters import build_adapter
from experiments.faces.run_data import prepare_data  # noqa: E402
from experiments.faces.runner import run_repeat  # noqa: E402

MODEL = "memory_finetune_phase_off"
SCOPES = ("all", "Block8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per scope")
    parser.add_argument("--shots", type=int, default=4)
    parser.add_argument("--steps", type=int, default=1, help="optimizer steps per shot")
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    args = parser.parse_args()

    configs = {
        scope: cfg.from_dict({
            "run": {"models": [MODEL]},
            # alpha 2 keeps the margin loss positive, so every shot after the first takes its steps
            "memory": {"alpha": 2.0},
            "finetune": {"repeats": args.repeats, "max_shots": args.shots, "learning_rate": args.learning_rate,
                         "steps_per_shot": args.steps, "trainable_from": scope},
        })
        for scope in SCOPES
    }
    data = prepare_data(configs["all"].data, need_crops=True, progress=False)
    print(f"data: {len(data.labels)} images, {len(data.class_names)} classes; {args.repeats} timed repeats per scope, "
          f"{args.shots} shots, {args.steps} step(s) per shot")
    adapters = {scope: build_adapter(MODEL, data, configs[scope]) for scope in SCOPES}
    for scope in SCOPES:
        run_repeat(adapters[scope], MODEL, args.repeats, data, configs[scope])   # warm-up, not timed

    seconds = {scope: [] for scope in SCOPES}
    accuracy = {scope: [] for scope in SCOPES}
    for repeat in range(args.repeats):
        for scope in SCOPES:
            start = time.perf_counter()
            result = run_repeat(adapters[scope], MODEL, repeat, data, configs[scope])
            seconds[scope].append(time.perf_counter() - start)
            accuracy[scope].append(result.n_correct[-1] / result.n_eval[-1])
    for scope in SCOPES:
        print(f"trainable_from={scope}: {np.mean(seconds[scope]):.2f} s per repeat "
              f"(min {np.min(seconds[scope]):.2f}, max {np.max(seconds[scope]):.2f}); "
              f"{args.shots}-shot accuracy {np.mean(accuracy[scope]):.4f}")
    print(f"RESULT finetune_speedup_block8={np.mean(seconds['all']) / np.mean(seconds['Block8']):.2f}")


if __name__ == "__main__":
    main()
