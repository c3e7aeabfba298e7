"""The optional episodic stage between the classifier and the memory loss (experiments/episodic/training/finetune.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf
from support import shared_omniglot_file
from test_omniglot_recipe import TWO_STAGE_TOML

from experiments.cli import main
from experiments.episodic.checkpoints import export_run, restore_embedder
from experiments.episodic.episodes import alphabet_pools, episode_classes
from experiments.episodic.evaluation.curves import read_curve
from experiments.episodic.training.finetune import prototype_loss


def test_prototype_loss_rewards_queries_nearest_their_own_prototype():
    support = np.eye(3, 4, dtype=np.float32)            # class c's support drawing points along axis c
    near = support + 0.1 * np.eye(3, 4, k=1)              # each query close to its own support
    keys = np.stack([support, near], axis=1).reshape(6, 4)  # class-major: support, then query
    loss, hits = prototype_loss(tf.constant(keys), ways=3, shots=1, scale=30.0)
    assert float(hits) == 1.0 and float(loss) < 1e-6
    swapped = np.stack([support, np.roll(near, 1, axis=0)], axis=1).reshape(6, 4)
    loss, hits = prototype_loss(tf.constant(swapped), ways=3, shots=1, scale=30.0)
    assert float(hits) == 0.0 and float(loss) > 20.0
    # Two shots: the prototype is the mean of the unit support keys, so the query between them is right.
    two = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1], [0, 0, 1], [0, 0.1, 1]], np.float32)
    loss, hits = prototype_loss(tf.constant(two), ways=2, shots=2, scale=30.0)
    assert float(hits) == 1.0


def test_within_alphabet_episodes_take_every_class_from_one_alphabet_big_enough():
    data = SimpleNamespace(alphabets=("A",) * 6 + ("B",) * 2 + ("C",) * 5, num_classes=13,
                           alphabet_names=lambda: ["A", "B", "C"])
    rng = np.random.default_rng(0)
    pools = alphabet_pools(data, 4)
    seen = set()
    for _ in range(50):
        classes = episode_classes(data.num_classes, pools, rng, 4)
        alphabets = {data.alphabets[c] for c in classes}
        assert len(classes) == len(set(classes)) == 4 and len(alphabets) == 1
        seen |= alphabets
    assert seen == {"A", "C"}  # B has only two classes
    assert len({data.alphabets[c] for c in episode_classes(data.num_classes, None, rng, 12)}) == 3
    with pytest.raises(ValueError, match="7 classes from one alphabet need an alphabet of at least 7 classes; the largest, A, has 6"):
        alphabet_pools(data, 7)


@pytest.mark.needs_omniglot
@pytest.mark.slow
def test_a_run_with_the_episodic_stage_keeps_one_clock_ships_its_log_and_resumes(tmp_path, capsys, monkeypatch):
    config = tmp_path / "three_stages.toml"
    config.write_text(TWO_STAGE_TOML + "[finetune]\nsteps = 3\nways = 5\nqueries = 1\nvalidate_every = 2\n")
    data = [str(shared_omniglot_file(f"images_background_small{i}.zip")) for i in (1, 2)]
    monkeypatch.setenv("KSHOT_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    base = ["omniglot", "train", "--data", *data, "--config", str(config), "--no-progress", "--out", str(run)]
    assert main(base) == 0
    out = capsys.readouterr().out
    assert "episodic fine-tuning: 3 episodes of 5 ways" in out
    assert f"memory-loss training starts from the fine-tuned embedder {run / 'finetune'}" in out

    tuned = [json.loads(line) for line in (run / "finetune" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in tuned] == [2, 3] and {r["stage"] for r in tuned} == {"finetune"}
    records = read_curve(run)
    assert [r["stage"] for r in records] == ["pretrain"] * 2 + ["finetune"] * 2 + ["memory"] * 2
    clock = [r["seconds"] for r in records]
    assert clock == sorted(clock)

    # The stage moved the weights away from the classifier's.
    from experiments.core.run_dir import latest_checkpoint
    from experiments.core.settings import load_config
    from experiments.episodic.model import build_model
    from experiments.episodic.settings import OmniglotConfig

    images = np.random.default_rng(0).random((4, 28, 28, 1)).astype(np.float32)
    keys = {}
    for stage in ("pretrain", "finetune"):
        embedder = build_model(load_config(run / "config.toml", OmniglotConfig))
        tf.train.Checkpoint(embedder=embedder).read(str(latest_checkpoint(run / stage)[1])).expect_partial()
        keys[stage] = embedder(images, training=False).numpy()
    assert not np.allclose(keys["pretrain"], keys["finetune"])

    shipped = export_run(run, tmp_path / "shipped", command="kshot omniglot train ...")
    assert shipped["step"] == 2 and (tmp_path / "shipped" / "finetune_log.jsonl").exists()
    assert [r["stage"] for r in read_curve(tmp_path / "shipped")] == [r["stage"] for r in records]

    # More memory-loss steps resume that stage; neither earlier stage runs again.
    assert main([*base, "--steps", "3"]) == 0
    out = capsys.readouterr().out
    assert "resuming" in out and "episodic fine-tuning" not in out and "classifier pre-training" not in out
    assert restore_embedder(run)[2] == 3


@pytest.mark.needs_omniglot
def test_an_episode_larger_than_a_class_is_refused_by_name(tmp_path, capsys, monkeypatch):
    config = tmp_path / "too_many.toml"
    config.write_text(TWO_STAGE_TOML.replace("steps = 4", "steps = 0") + "[finetune]\nsteps = 1\nqueries = 20\n")
    data = [str(shared_omniglot_file("images_background_small1.zip"))]
    monkeypatch.setenv("KSHOT_CACHE", str(tmp_path / "cache"))
    assert main(["omniglot", "train", "--data", *data, "--config", str(config), "--no-progress",
                 "--out", str(tmp_path / "run")]) == 2
    assert "lower [finetune] queries" in capsys.readouterr().err
