"""`kshot omniglot benchmark`: it finds the two zips, refuses a checkpoint that had an evaluation
alphabet (tried with a fake checkpoint, no training), and the shipped checkpoint keeps its
official scores (a few hundred tasks per cell, and Lake et al.'s runs)."""

from __future__ import annotations

import json
import zipfile

import pytest
from support import shared_omniglot_file

from experiments.cli import build_parser, main
from experiments.episodic.checkpoints import SHIPPED_DIR, restore_embedder
from experiments.episodic.evaluation.benchmark import (
    EVALUATION_ZIP,
    RUNS_ZIP,
    BenchmarkRefused,
    check_unseen,
    find_zips,
    zip_alphabets,
)
from experiments.episodic.evaluation.evaluate import evaluate_run
from experiments.episodic.evaluation.lake import evaluate_runs, load_runs
from experiments.episodic.evaluation.task_spec import TaskSpec


def fake_evaluation_folder(root, alphabets=("Angelic", "Tengwar")):
    """A folder holding an images_evaluation.zip of one tiny entry per alphabet, and an (empty) all_runs.zip."""
    root.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(root / EVALUATION_ZIP, "w") as archive:
        for alphabet in alphabets:
            archive.writestr(f"images_evaluation/{alphabet}/character01/0001_01.png", b"not decoded")
    (root / RUNS_ZIP).write_bytes(b"")
    return root


def fake_checkpoint(root, **split):
    """A checkpoint folder with only the split.json the benchmark checks."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "split.json").write_text(json.dumps(split), encoding="utf-8")
    return root


def test_zip_alphabets_reads_the_names_of_the_layout(tmp_path):
    folder = fake_evaluation_folder(tmp_path / "data")
    assert zip_alphabets(folder / EVALUATION_ZIP) == ["Angelic", "Tengwar"]
    assert find_zips(folder) == (folder / EVALUATION_ZIP, folder / RUNS_ZIP)
    (folder / RUNS_ZIP).unlink()
    with pytest.raises(FileNotFoundError, match=RUNS_ZIP):
        find_zips(folder)


@pytest.mark.parametrize("key", ["train_alphabets", "validation_alphabets", "test_alphabets"])
def test_a_checkpoint_that_had_an_evaluation_alphabet_is_refused_by_name(tmp_path, key):
    folder = fake_evaluation_folder(tmp_path / "data")
    checkpoint = fake_checkpoint(tmp_path / "ckpt", **{key: ["Latin", "Tengwar"]})
    with pytest.raises(BenchmarkRefused, match="Tengwar") as refused:
        check_unseen(checkpoint, folder / EVALUATION_ZIP)
    assert "Latin" not in str(refused.value) and "\n" not in str(refused.value)
    clean = fake_checkpoint(tmp_path / "clean", train_alphabets=["Latin"], test_alphabets=["Greek"])
    assert check_unseen(clean, folder / EVALUATION_ZIP) == ["Angelic", "Tengwar"]


def test_a_checkpoint_without_split_file_is_refused(tmp_path):
    folder = fake_evaluation_folder(tmp_path / "data")
    (tmp_path / "bare").mkdir()
    with pytest.raises(BenchmarkRefused, match="split.json"):
        check_unseen(tmp_path / "bare", folder / EVALUATION_ZIP)


def test_the_command_refuses_in_one_line_before_measuring_anything(tmp_path, capsys):
    folder = fake_evaluation_folder(tmp_path / "data")
    checkpoint = fake_checkpoint(tmp_path / "ckpt", train_alphabets=["Angelic", "Greek"])
    out = tmp_path / "out"
    code = main(["omniglot", "benchmark", "--data", str(folder), "--checkpoint", str(checkpoint), "--out", str(out)])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert "Angelic" in error and "trained on" in error and len(error.splitlines()) == 1
    assert not out.exists()


@pytest.mark.needs_omniglot
def test_the_shipped_checkpoint_never_had_an_evaluation_alphabet():
    alphabets = check_unseen(SHIPPED_DIR, shared_omniglot_file(EVALUATION_ZIP))
    assert len(alphabets) == 20


# Thresholds: the memory readout's accuracy in docs/results/omniglot_official.json (1,000 tasks per cell,
# `kshot omniglot benchmark`) minus 3 standard errors of a 200-task estimate (200 x ways answers, binomial):
# 5-way 1-shot 0.9886 - 3 x 0.00336; 5-way 5-shot 0.9962 - 3 x 0.00195; 20-way 1-shot 0.9724 - 3 x 0.00259;
# 20-way 5-shot 0.9903 - 3 x 0.00155 (rounded down).
OFFICIAL_FLOORS = {(5, 1): 0.978, (5, 5): 0.990, (20, 1): 0.964, (20, 5): 0.985}
# Lake et al.'s runs: the same 400 answers every time; measured 0.9625 (docs/results/omniglot_lake_official.json),
# floor 0.9625 - 3 x 0.0095 (the standard error of 400 answers), rounded down.
LAKE_FLOOR = 0.934


@pytest.mark.slow
@pytest.mark.needs_omniglot
def test_the_shipped_checkpoint_keeps_its_official_scores():
    tasks = TaskSpec(ways=(5, 20), shots=(1, 5), episodes=200, seed=1, split="unseen", per_shot_episodes=0)
    results = evaluate_run(SHIPPED_DIR, tasks, sources=[shared_omniglot_file(EVALUATION_ZIP)], untrained=False)
    found = {(r["ways"], r["shots"]): r["mean"] for r in results["nway"] if r["readout"] == "memory"}
    assert set(found) == set(OFFICIAL_FLOORS)
    for cell, floor in OFFICIAL_FLOORS.items():
        assert found[cell] >= floor, f"{cell[0]}-way {cell[1]}-shot: {found[cell]:.4f} < {floor}"
    config, embedder, _ = restore_embedder(SHIPPED_DIR)
    lake = evaluate_runs(embedder, config, load_runs(shared_omniglot_file(RUNS_ZIP), config.data.image_size))
    assert lake["runs"] == 20
    assert lake["readouts"]["memory"]["mean_accuracy"] >= LAKE_FLOOR


def test_stream_takes_readouts_and_sizes_per_character():
    args = build_parser().parse_args(["omniglot", "stream", "--per-character", "0.5", "1", "--readouts", "memory",
                                      "reservoir", "prototype"])
    assert args.per_character == [0.5, 1.0] and args.readouts == ["memory", "reservoir", "prototype"]
    assert build_parser().parse_args(["omniglot", "stream"]).readouts == ["store-all", "memory", "fifo"]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["omniglot", "stream", "--sizes", "10", "--per-character", "1"])
