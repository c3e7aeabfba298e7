"""`kshot omniglot train` / `eval` end to end: a handful of steps, a few episodes, resume, refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments.cli import main
from experiments.episodic.checkpoints import restore_embedder
from experiments.episodic.omniglot import default_sources

pytestmark = [pytest.mark.needs_omniglot, pytest.mark.slow]

TINY_TOML = """
[data]
rotations = true
[model]
key_dim = 16
channels = [4, 8]
key_dropout = 0.3
[memory]
memory_size = 64
[train]
seed = 3
steps = 4
episode_width = 5
episode_length = 10
batch_size = 2
checkpoint_every = 2
validate_every = 2
validation_episodes = 2
"""


@pytest.fixture()
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("KSHOT_CACHE", str(tmp_path / "cache"))
    # The two small subsets by name: the shared folder also holds the full background set now.
    sources = [default_sources()[0] / f"images_background_small{i}.zip" for i in (1, 2)]
    assert all(s.exists() for s in sources), f"the shared Omniglot subsets are needed at {sources}"
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML)
    return tmp_path, config, [str(s) for s in sources]


def weights(run_dir):
    _, embedder, step = restore_embedder(run_dir)
    return step, [v.numpy() for v in embedder.trainable_variables]


def test_train_eval_and_resume_match_an_uninterrupted_run(setup, capsys):
    tmp_path, config, data = setup
    interrupted, straight = tmp_path / "interrupted", tmp_path / "straight"
    base = ["omniglot", "train", "--data", *data, "--config", str(config), "--no-progress"]

    assert main([*base, "--out", str(interrupted)]) == 0
    assert json.loads((interrupted / "latest.json").read_text())["step"] == 4
    split = json.loads((interrupted / "split.json").read_text())
    assert split["test_alphabets"] == ["Sanskrit", "Tagalog"] and split["train_classes"] == 4 * 183
    log = [json.loads(line) for line in (interrupted / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 4]
    assert log[0]["train_per_shot"][0] == 0.0  # nothing is known at 0 shots

    assert main([*base, "--out", str(interrupted), "--steps", "6"]) == 0
    assert "resuming" in capsys.readouterr().out
    assert main([*base, "--out", str(straight), "--steps", "6"]) == 0
    step_a, resumed = weights(interrupted)
    step_b, uninterrupted = weights(straight)
    assert step_a == step_b == 6
    for a, b in zip(resumed, uninterrupted):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert len(list((interrupted / "checkpoints").iterdir())) == 2  # older checkpoints pruned

    results_file = tmp_path / "eval.json"
    assert main(["omniglot", "eval", "--checkpoint", str(interrupted), "--data", *data, "--ways", "20",
                 "--shots", "2", "--episodes", "20", "--per-shot-episodes", "3", "--by-alphabet",
                 "--json", str(results_file)]) == 0
    printed = capsys.readouterr().out
    assert "| trained | memory | 20 | 2 |" in printed and "| untrained | 1-NN | 20 | 2 |" in printed
    assert "| 20 | 2 | Sanskrit |" in printed and "| 20 | 2 | Tagalog |" in printed
    results = json.loads(results_file.read_text())
    assert results["step"] == 6 and len(results["nway"]) == 2 * 3  # embedders x readouts
    for row in results["nway"]:
        assert 0.0 <= row["ci_low"] <= row["mean"] <= row["ci_high"] <= 1.0 and row["episodes"] == 20
    # By alphabet: the same 20 x 20 answers, split by the query's alphabet, add back up to the cell.
    overall = {row["readout"]: row["mean"] for row in results["nway"] if row["embedder"] == "trained"}
    for readout, total in overall.items():
        rows = [row for row in results["by_alphabet"] if row["readout"] == readout]
        assert [row["alphabet"] for row in rows] == ["Sanskrit", "Tagalog"]
        assert sum(row["answers"] for row in rows) == 20 * 20
        assert sum(row["mean"] * row["answers"] for row in rows) / 400 == pytest.approx(total)
        for row in rows:
            assert 0.0 <= row["ci_low"] <= row["mean"] <= row["ci_high"] <= 1.0
            assert row["errors_within_alphabet"] is None or 0.0 <= row["errors_within_alphabet"] <= 1.0
        # By rivals: the same answers again, split by same-alphabet rivals in the task (2 alphabets, 20 ways).
        rivals = [row for row in results["by_rivals"] if row["readout"] == readout]
        assert sum(row["answers"] for row in rivals) == 20 * 20 and all(0 <= row["rivals"] <= 19 for row in rivals)
        assert sum(row["mean"] * row["answers"] for row in rivals) / 400 == pytest.approx(total)
    curve = results["per_shot"][0]["curve"]
    assert [c["shot"] for c in curve] == [0, 1, 2] and curve[0]["mean"] == 0.0

    # The held-out keys as a `kshot run --embeddings` file: the face protocol on Omniglot.
    keys_file = tmp_path / "held_out.npz"
    assert main(["omniglot", "embed", "--checkpoint", str(interrupted), "--data", *data, "--out", str(keys_file)]) == 0
    drawings, characters = split["test_images"], split["test_characters"]
    assert f"{drawings} drawings of {characters} characters (test split, step 6, 16-d keys)" in capsys.readouterr().out
    from experiments.faces.run_data import load_embeddings_file
    from experiments.faces.settings import DataSection

    loaded = load_embeddings_file(keys_file, DataSection())
    assert loaded.embeddings.shape == (drawings, 16) and len(loaded.class_names) == characters
    assert {name.split("/")[0] for name in loaded.class_names} == set(split["test_alphabets"])


def test_bad_requests_are_refused_with_a_message(setup, capsys):
    tmp_path, config, data = setup
    run = tmp_path / "run"
    base = ["omniglot", "train", "--data", *data, "--config", str(config), "--no-progress", "--out", str(run)]
    assert main([*base, "--steps", "1"]) == 0
    assert main([*base, "--seed", "4"]) == 2
    assert "already holds a run with another configuration ([train] seed: saved 3, now 4)" in capsys.readouterr().err

    assert main(["omniglot", "train", "--data", str(tmp_path / "missing.zip"), "--out", str(tmp_path / "x")]) == 2
    assert "missing.zip does not exist" in capsys.readouterr().err

    # 59 held-out characters cannot make a 60-way task
    assert main(["omniglot", "eval", "--checkpoint", str(run), "--data", *data, "--ways", "60",
                 "--episodes", "5"]) == 2
    assert "60-way needs 60 held-out characters" in capsys.readouterr().err

    assert main(["omniglot", "eval", "--checkpoint", str(tmp_path / "nothing"), "--data", *data]) == 2
    assert "not an Omniglot run directory" in capsys.readouterr().err

    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nstepz = 3\n")
    assert main(["omniglot", "train", "--config", str(bad), "--out", str(tmp_path / "y")]) == 2
    assert "bad.toml: unknown key 'stepz' in [train]" in capsys.readouterr().err

    misspelled = tmp_path / "misspelled.toml"
    misspelled.write_text("[memroy]\nmemory_size = 64\n")
    assert main(["omniglot", "train", "--config", str(misspelled), "--out", str(tmp_path / "z")]) == 2
    assert "misspelled.toml: unknown section [memroy]" in capsys.readouterr().err
