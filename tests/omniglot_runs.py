"""A synthetic copy of Lake et al.'s `all_runs` layout, built from background drawings.

Each run takes 20 characters of one alphabet; drawer A's drawing becomes
`training/classMM.png`, drawer B's becomes `test/itemKK.png` (items shuffled), and
`class_labels.txt` names the right class image for every item, as in the original.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

WAYS = 20


def write_synthetic_runs(background_zip: Path, dest: Path, runs: int = 3, seed: int = 0,
                         alphabets_allowed=None) -> dict:
    """Write runs run01..runNN under `dest`; returns {run name: [correct class index per item]}.

    `alphabets_allowed`: draw runs only from these alphabets (e.g. a run's test alphabets).
    """
    archive = zipfile.ZipFile(background_zip)
    by_character: dict[tuple[str, str], list[str]] = {}
    for name in sorted(archive.namelist()):
        parts = name.split("/")
        if len(parts) == 4 and parts[-1].endswith(".png"):
            by_character.setdefault((parts[1], parts[2]), []).append(name)
    alphabets: dict[str, list[tuple[str, str]]] = {}
    for key in by_character:
        alphabets.setdefault(key[0], []).append(key)
    big = sorted(a for a, chars in alphabets.items()
                 if len(chars) >= WAYS and (alphabets_allowed is None or a in alphabets_allowed))
    rng = np.random.default_rng(seed)
    truth = {}
    for r in range(1, runs + 1):
        run = f"run{r:02d}"
        alphabet = big[rng.integers(len(big))]
        chosen = [alphabets[alphabet][i] for i in rng.choice(len(alphabets[alphabet]), WAYS, replace=False)]
        (dest / run / "training").mkdir(parents=True)
        (dest / run / "test").mkdir()
        item_order = rng.permutation(WAYS)  # item k shows character item_order[k]
        lines = []
        for c, key in enumerate(chosen):
            a, b = rng.choice(len(by_character[key]), 2, replace=False)
            (dest / run / "training" / f"class{c + 1:02d}.png").write_bytes(archive.read(by_character[key][a]))
            item = int(np.where(item_order == c)[0][0]) + 1
            (dest / run / "test" / f"item{item:02d}.png").write_bytes(archive.read(by_character[key][b]))
        for k, c in enumerate(item_order, start=1):
            lines.append(f"{run}/test/item{k:02d}.png {run}/training/class{c + 1:02d}.png")
        (dest / run / "class_labels.txt").write_text("\n".join(lines) + "\n")
        truth[run] = item_order.tolist()
    return truth
