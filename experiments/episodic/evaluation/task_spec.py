"""Which N-way k-shot tasks an evaluation draws: one frozen TaskSpec, passed wherever tasks are drawn.

`eval` (evaluate.py), `compare` (compare.py) and training's held-out check
(training/stages.py) draw their tasks from a TaskSpec and nothing else, so equal specs
on the same drawings give the same tasks, whichever embedder or readout answers them.
The module loads no TensorFlow, so the command line builds (and so checks) the spec
before anything heavy is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from experiments.episodic.settings import HELD_OUT_SPLITS


@dataclass(frozen=True)
class TaskSpec:
    """The tasks an evaluation draws: every (ways, shots) cell of the grid, `episodes` tasks each.

    ways, shots: the grid (classes per task, labelled drawings per class).
    episodes: tasks per cell (>= 2, for an interval).
    queries: query drawings per class per task.
    seed: the tasks' seed; a cell's tasks come from default_rng([seed, ways, shots, queries]).
    split: the checkpoint's part measured (evaluation.heldout): test, validation or unseen.
    within_alphabet: the classes of every task (and per-shot episode) from one alphabet.
    per_shot_episodes: Kaiser-style episodes per ways for the per-shot curve
        (sequences.per_shot_accuracy); None: as many as `episodes`; 0: no curve.
    """

    ways: tuple[int, ...] = (5,)
    shots: tuple[int, ...] = (1,)
    episodes: int = 1000
    queries: int = 1
    seed: int = 0
    split: str = "test"
    within_alphabet: bool = False
    per_shot_episodes: int | None = None

    def __post_init__(self) -> None:
        # Any sequence of ints is accepted (the command line gives lists); the spec keeps tuples.
        object.__setattr__(self, "ways", tuple(int(n) for n in self.ways))
        object.__setattr__(self, "shots", tuple(int(k) for k in self.shots))
        if not self.ways or not self.shots or min(self.ways) < 1 or min(self.shots) < 1:
            raise ValueError(f"ways and shots must be one or more integers >= 1, got {list(self.ways)} and "
                             f"{list(self.shots)}")
        if self.episodes < 2:
            raise ValueError(f"episodes must be >= 2 for a confidence interval, got {self.episodes}")
        if self.queries < 1:
            raise ValueError(f"queries must be >= 1, got {self.queries}")
        if self.split not in HELD_OUT_SPLITS:
            raise ValueError(f"split must be one of {', '.join(HELD_OUT_SPLITS)}, got {self.split!r}")
        if self.per_shot_episodes is not None and self.per_shot_episodes < 0:
            raise ValueError(f"per_shot_episodes must be >= 0, got {self.per_shot_episodes}")

    @property
    def cells(self) -> list[tuple[int, int]]:
        """(ways, shots) of every cell, ways-major: the order of every table."""
        return [(n, k) for n in self.ways for k in self.shots]

    @property
    def per_shot_count(self) -> int:
        """Per-shot episodes per ways (0: no per-shot curve)."""
        return self.episodes if self.per_shot_episodes is None else self.per_shot_episodes

    @property
    def rounds(self) -> int:
        """Showings of every class in a per-shot episode: up to the largest shots, plus the 0-shot round."""
        return max(self.shots) + 1
