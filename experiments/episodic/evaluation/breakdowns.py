"""The trained embedder's N-way k-shot answers broken down by the query's alphabet and its rivals.

Diagnostics of `kshot omniglot eval --by-alphabet`, computed from the same tasks as the
accuracy table: which held-out alphabets are hard, whether the mistakes are look-alikes
from the same script, and how accuracy falls with the number of same-alphabet classes in
a task. Not something to tune on.
"""

from __future__ import annotations

import numpy as np

from experiments.core.metrics import proportion
from experiments.episodic.data import EpisodicData


def accuracy_by_alphabet(truth: np.ndarray, answered: np.ndarray, data: EpisodicData) -> list[dict]:
    """Per alphabet of the query: accuracy with its Wilson interval, and the share of its
    wrong answers that named a character of the same alphabet.

    Which held-out alphabets are hard, and whether the mistakes are look-alikes from the
    same script or confusions across scripts; a diagnostic, not something to tune on.
    """
    alphabets = np.asarray(data.alphabets)
    query_alphabet = alphabets[truth]
    wrong = answered != truth
    same_script = np.zeros_like(wrong)
    named = answered >= 0
    same_script[named] = alphabets[answered[named]] == query_alphabet[named]
    rows = []
    for alphabet in data.alphabet_names():
        mine = query_alphabet == alphabet
        errors = int(np.sum(wrong & mine))
        rows.append({
            "alphabet": alphabet,
            "characters": int(np.sum(alphabets == alphabet)),
            "answers": int(mine.sum()),
            **proportion(int(np.sum(~wrong & mine)), int(mine.sum())),
            "errors_within_alphabet": (int(np.sum(wrong & mine & same_script)) / errors) if errors else None,
        })
    return rows


def accuracy_by_rivals(truth: np.ndarray, answered: np.ndarray, data: EpisodicData) -> list[dict]:
    """Accuracy by the query's alphabet and its number of "rivals": the other characters
    of its task that come from that same alphabet.

    A few-shot benchmark's difficulty depends on how often a task holds look-alikes from
    one script, which depends on how many alphabets the held-out characters come from
    (5 here, 20 in Omniglot's evaluation set). Keeping the alphabet in each row lets a
    reader reweight to another mix of rivals within each alphabet, so that a hard
    alphabet's many rivals are not mistaken for the rivals' effect (views.rivals_table).
    Rows only for the (alphabet, count) pairs that occur.
    """
    alphabet_names, alphabet_ids = np.unique(np.asarray(data.alphabets), return_inverse=True)
    query_alphabet = alphabet_ids[truth]  # [episodes, answers]
    rivals = np.zeros_like(truth)
    for episode, row in enumerate(truth):
        task_alphabets = alphabet_ids[np.unique(row)]
        rivals[episode] = (query_alphabet[episode][:, None] == task_alphabets[None, :]).sum(axis=1) - 1
    right = answered == truth
    rows = []
    for alphabet in np.unique(query_alphabet):
        mine = query_alphabet == alphabet
        for count in np.unique(rivals[mine]):
            cell = mine & (rivals == count)
            hits, answers = int(np.sum(right & cell)), int(cell.sum())
            rows.append({"alphabet": str(alphabet_names[alphabet]), "rivals": int(count), "answers": answers,
                         "right": hits, **proportion(hits, answers)})
    return rows


def pool_rivals(rows: list[dict]) -> list[dict]:
    """accuracy_by_rivals rows (readout, ways and shots added) pooled over the alphabets:
    one row per (readout, ways, shots, rivals) with its summed answers and right answers
    and their Wilson interval, in that order."""
    pooled: dict[tuple, tuple[int, int]] = {}
    for row in rows:
        key = (row["readout"], row["ways"], row["shots"], row["rivals"])
        right, answers = pooled.get(key, (0, 0))
        pooled[key] = (right + row["right"], answers + row["answers"])
    return [{"readout": readout, "ways": ways, "shots": shots, "rivals": rivals, "answers": answers, "right": right,
             **proportion(right, answers)}
            for (readout, ways, shots, rivals), (right, answers) in sorted(pooled.items())]
