"""The checkpoint shipped in the repository: it loads, it is what its manifest says, and it stays accurate.

The threshold is the shipped checkpoint's measured 20-way 1-shot accuracy on these
300 seeded tasks of the test alphabets, less a margin for floating-point differences
between machines; docs/OMNIGLOT.md has the 1,000-task numbers.
"""

from __future__ import annotations

import json

import pytest
from support import shared_omniglot_file

from experiments.cli import main
from experiments.episodic.checkpoints import (
    MANIFEST_FILE,
    MAX_SHIPPED_BYTES,
    SHIPPED_DIR,
    load_shipped,
)
from experiments.episodic.settings import load_omniglot_preset
from experiments.episodic.split import TEST_ALPHABETS

MEASURED_20W1S_ON_300_TASKS = 0.9495  # 5,697 of 6,000 answers, measured on the shipped weights
MARGIN = 0.01


def test_shipped_checkpoint_is_small_and_matches_its_manifest():
    total = sum(p.stat().st_size for p in SHIPPED_DIR.iterdir() if p.is_file())
    assert total <= MAX_SHIPPED_BYTES
    manifest = json.loads((SHIPPED_DIR / MANIFEST_FILE).read_text())
    assert manifest["dtype"] == "float16" and "kshot omniglot train" in manifest["command"]
    config, _, step = load_shipped()  # checks the sha256
    assert step == manifest["step"] and config.data.test_alphabets == TEST_ALPHABETS
    # the default preset holds exactly the settings the shipped checkpoint was trained with
    assert config == load_omniglot_preset("full")


@pytest.mark.slow
@pytest.mark.needs_omniglot
def test_shipped_checkpoint_stays_above_its_measured_accuracy(tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert main(["omniglot", "eval", "--data", str(shared_omniglot_file("images_background.zip")), "--ways", "20",
                 "--shots", "1", "--episodes", "300", "--per-shot-episodes", "0", "--no-untrained",
                 "--json", str(out)]) == 0
    assert str(SHIPPED_DIR) in capsys.readouterr().out  # no --checkpoint: the shipped one
    rows = {row["readout"]: row for row in json.loads(out.read_text())["nway"]}
    assert set(rows) == {"memory", "1-NN", "prototype"}
    assert rows["memory"]["mean"] >= MEASURED_20W1S_ON_300_TASKS - MARGIN


def test_shipped_logs_give_one_learning_curve(tmp_path):
    from experiments.episodic.evaluation.curves import (
        curve_markdown,
        plot_curve,
        read_curve,
    )

    records = read_curve(SHIPPED_DIR)
    stages = [r["stage"] for r in records]
    order = ("pretrain", "finetune", "memory")
    assert stages == sorted(stages, key=order.index) and set(order) == set(stages)
    seconds = [r["seconds"] for r in records]
    assert seconds == sorted(seconds)
    table = curve_markdown(records)
    assert table.count("\n") == len(records) + 2
    plot_curve(records, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(FileNotFoundError, match="no training log"):
        read_curve(tmp_path)


def test_readme_and_omniglot_doc_quote_the_committed_evaluation():
    """The tables must say what docs/results/omniglot_eval.json (development) and omniglot_official.json
    (the evaluation set) measured with the shipped checkpoint."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    docs = root / "docs"
    names = {"memory": "Kaiser memory", "1-NN": "store-all 1-NN", "prototype": "prototype"}
    for results_file, quotes in (
        ("omniglot_eval.json", (("recipe (shipped)", docs / "OMNIGLOT.md"),
                                ("trained (recipe, shipped)", docs / "OMNIGLOT_DEVELOPMENT.md"))),
        ("omniglot_official.json", (("shipped checkpoint", root / "README.md"), ("shipped checkpoint", docs / "OMNIGLOT.md"))),
    ):
        results = json.loads((docs / "results" / results_file).read_text())
        rows = {(r["readout"], r["ways"], r["shots"]): r for r in results["nway"] if r["embedder"] == "trained"}
        for readout, label in names.items():
            cells = " | ".join(
                f"{100 * r['mean']:.1f} [{100 * r['ci_low']:.1f}, {100 * r['ci_high']:.1f}]"
                for r in (rows[(readout, n, k)] for n, k in ((5, 1), (5, 5), (20, 1), (20, 5)))
            )
            for row, doc in quotes:
                assert f"| {row} | {label} | {cells} |" in doc.read_text(), f"{doc.name}: {row} {label}"
    manifest = json.loads((SHIPPED_DIR / MANIFEST_FILE).read_text())
    assert manifest["weights_sha256"] in (root / "docs" / "OMNIGLOT.md").read_text()


def test_omniglot_doc_quotes_the_committed_within_alphabet_evaluations():
    """The within-alphabet table of OMNIGLOT_DEVELOPMENT.md must say what the two committed --within-alphabet files measured."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    doc = (root / "docs" / "OMNIGLOT_DEVELOPMENT.md").read_text()
    quoted = {"omniglot_eval_within_alphabet.json": ("test", ("memory", "1-NN", "prototype")),
              "omniglot_eval_within_alphabet_validation.json": ("validation", ("memory", "prototype"))}
    names = {"memory": "memory", "1-NN": "store-all 1-NN", "prototype": "prototype"}
    for file, (alphabets, readouts) in quoted.items():
        results = json.loads((root / "docs" / "results" / file).read_text())
        assert results["within_alphabet"] is True and results["evaluated"] == alphabets
        rows = {(r["readout"], r["ways"], r["shots"]): r for r in results["nway"] if r["embedder"] == "trained"}
        for readout in readouts:
            cells = " | ".join(
                f"{100 * r['mean']:.1f} [{100 * r['ci_low']:.1f}, {100 * r['ci_high']:.1f}]"
                for r in (rows[(readout, n, k)] for n, k in ((5, 1), (5, 5), (20, 1), (20, 5)))
            )
            assert f"| {alphabets}, one per task | {names[readout]} | {cells} |" in doc


def test_the_quoted_rivals_estimate_is_what_the_committed_evaluation_gives():
    """OMNIGLOT_DEVELOPMENT.md quotes views.rivals_table's 20-way 1-shot estimate; it must follow the JSON."""
    from pathlib import Path

    from experiments.episodic.views import rivals_table

    root = Path(__file__).resolve().parents[2]
    results = json.loads((root / "docs" / "results" / "omniglot_eval.json").read_text())
    _, one_shot = rivals_table(results, ways=20, shots=1)
    quoted = f"{100 * one_shot['estimate']:.1f}% [{100 * one_shot['ci_low']:.1f}, {100 * one_shot['ci_high']:.1f}]"
    _, five_shot = rivals_table(results, ways=20, shots=5)
    for doc in (root / "docs" / "OMNIGLOT_DEVELOPMENT.md",):
        text = " ".join(doc.read_text().split())  # the quote may wrap
        assert quoted in text, f"{doc.name} should quote {quoted}"
        assert f"{100 * five_shot['estimate']:.1f}%" in text
