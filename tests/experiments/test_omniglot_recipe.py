"""The full-background recipe: the fixed split, classifier pre-training then memory-loss training,
the shipped checkpoint and its layout, and Wilson intervals.

Training here runs a handful of steps on the two small subsets; only the shipped
checkpoint's test reads the full background zip.
"""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest
from support import shared_omniglot_file

from experiments.cli import main
from experiments.core.metrics import proportion
from experiments.episodic.checkpoints import export_run, load_shipped, restore_embedder
from experiments.episodic.settings import OmniglotPretrainSection
from experiments.episodic.split import TEST_ALPHABETS, VALIDATION_ALPHABETS, rule_split
from experiments.episodic.training.pretrain import (
    augmented,
    rotated_and_zoomed,
    shifted,
)

pytestmark = pytest.mark.needs_omniglot

TWO_STAGE_TOML = """
[data]
test_alphabets = ["Latin"]
validation_alphabets = ["Greek"]
[model]
key_dim = 16
channels = [4, 8]
key_dropout = 0.0
batch_norm = true
[memory]
memory_size = 64
[pretrain]
steps = 4
batch_size = 16
validate_every = 2
[train]
seed = 5
steps = 2
episode_width = 5
episode_length = 10
batch_size = 2
checkpoint_every = 1
validate_every = 1
validation_episodes = 2
"""


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One two-stage run (4 classifier steps, 2 memory-loss steps) on the small subsets, shared by the tests."""
    root = tmp_path_factory.mktemp("recipe")
    config = root / "two_stage.toml"
    config.write_text(TWO_STAGE_TOML)
    data = [str(shared_omniglot_file(f"images_background_small{i}.zip")) for i in (1, 2)]
    base = ["omniglot", "train", "--data", *data, "--config", str(config), "--no-progress"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KSHOT_CACHE", str(root / "cache"))
        assert main([*base, "--out", str(root / "run")]) == 0
        yield root / "run", base


def test_fixed_split_follows_its_rule_on_the_background_alphabets():
    with zipfile.ZipFile(shared_omniglot_file("images_background.zip")) as archive:
        names = {n.split("/")[1] for n in archive.namelist() if n.count("/") >= 2}
    assert rule_split(names) == (TEST_ALPHABETS, VALIDATION_ALPHABETS)
    assert not set(TEST_ALPHABETS) & set(VALIDATION_ALPHABETS)


def test_shift_augmentation_moves_ink_without_changing_it():
    image = np.zeros((1, 8, 8), np.uint8)
    image[0, 3, 4] = 255
    rng = np.random.default_rng(0)
    moved = shifted(np.repeat(image, 50, axis=0), rng, 2)
    assert moved.shape == (50, 8, 8) and (moved.sum(axis=(1, 2)) == 255).all()
    rows, cols = np.nonzero(moved.max(axis=0))
    assert rows.min() >= 1 and rows.max() <= 5 and cols.min() >= 2 and cols.max() <= 6
    assert len(set(zip(*np.nonzero(moved)[1:]))) > 5  # different offsets per image
    np.testing.assert_array_equal(shifted(image, rng, 0), image)


def test_rotation_and_zoom_keep_the_drawing_centred_and_can_be_off():
    image = np.zeros((1, 9, 9, 1), np.float32)
    image[0, 4, 1:8, 0] = 1.0  # a horizontal bar through the centre
    assert rotated_and_zoomed(image, np.random.default_rng(0), 0.0, 0.0) is image
    turned = rotated_and_zoomed(np.repeat(image, 20, axis=0), np.random.default_rng(0), 20.0, 0.1)
    assert turned.shape == (20, 9, 9, 1)
    np.testing.assert_allclose(turned[:, 4, 4, 0], 1.0, atol=1e-5)  # the centre stays inked
    assert not np.allclose(turned[0], turned[1])  # each image its own distortion


def test_augmentation_is_shift_then_rotation_and_zoom_on_one_generator():
    """Both augmenting stages draw through `augmented`; this pins its order, so checkpoints
    trained before it was shared see the same batches when they are trained again."""
    drawings = np.random.default_rng(1).integers(0, 256, (6, 28, 28), dtype=np.uint8)
    settings = OmniglotPretrainSection(shift=2, rotation=10.0, zoom=0.1)
    rng = np.random.default_rng(3)
    expected = rotated_and_zoomed((shifted(drawings, rng, 2) / 255.0).astype(np.float32)[..., None], rng, 10.0, 0.1)
    np.testing.assert_array_equal(augmented(drawings, np.random.default_rng(3), settings), expected)
    plain = augmented(drawings, np.random.default_rng(3), OmniglotPretrainSection(shift=0))
    np.testing.assert_array_equal(plain, (drawings / 255.0).astype(np.float32)[..., None])


@pytest.mark.slow
def test_pretraining_then_memory_training_share_one_clock_and_resume(trained_run, tmp_path, capsys):
    trained, base = trained_run
    pre = [json.loads(line) for line in (trained / "pretrain" / "log.jsonl").read_text().splitlines()]
    mem = [json.loads(line) for line in (trained / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in pre] == [2, 4] and [r["step"] for r in mem] == [1, 2]
    assert {r["stage"] for r in pre} == {"pretrain"} and {r["stage"] for r in mem} == {"memory"}
    clock = [r["seconds"] for r in pre + mem]
    assert clock == sorted(clock) and clock[0] > 0
    for record in pre + mem:
        assert 0.0 <= record["heldout_1nn_5w1s"] <= 1.0 and 0.0 <= record["heldout_1nn_20w1s"] <= 1.0
    split = json.loads((trained / "split.json").read_text())
    assert split["test_alphabets"] == ["Latin"] and split["validation_alphabets"] == ["Greek"]
    assert "Greek" not in split["train_alphabets"] and "Latin" not in split["train_alphabets"]

    # More memory-loss steps resume that stage; the finished pre-training is not repeated.
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    capsys.readouterr()
    assert main([*base, "--out", str(run), "--steps", "3"]) == 0
    out = capsys.readouterr().out
    assert "resuming" in out and "classifier pre-training" not in out
    assert json.loads((run / "latest.json").read_text())["step"] == 3
    assert len((run / "pretrain" / "log.jsonl").read_text().splitlines()) == 2


@pytest.mark.slow
def test_a_shipped_export_matches_its_run_and_refuses_damage(trained_run, tmp_path):
    run, _ = trained_run
    shipped = tmp_path / "shipped"
    manifest = export_run(run, shipped, command="kshot omniglot train ...")
    assert manifest["step"] == 2 and manifest["dtype"] == "float16"
    assert {p.name for p in shipped.iterdir()} >= {"weights.npz", "manifest.json", "config.toml", "split.json",
                                                   "log.jsonl", "pretrain_log.jsonl"}
    _, trained, _ = restore_embedder(run)
    _, loaded, step = load_shipped(shipped)
    images = np.random.default_rng(0).random((6, 28, 28, 1)).astype(np.float32)
    a, b = trained(images, training=False).numpy(), loaded(images, training=False).numpy()
    np.testing.assert_allclose(a, b, rtol=2e-2, atol=2e-2 * np.abs(a).max())
    assert step == 2

    with open(shipped / "weights.npz", "ab") as handle:
        handle.write(b"x")
    with pytest.raises(ValueError, match="sha256"):
        load_shipped(shipped)


def test_pooled_proportions_stay_within_zero_and_one():
    for correct, total in ((1000, 1000), (0, 50), (985, 1000), (1, 3)):
        row = proportion(correct, total)
        assert 0.0 <= row["ci_low"] <= row["mean"] <= row["ci_high"] <= 1.0
    assert proportion(1000, 1000)["ci_low"] < 1.0  # all right still leaves room below
    with pytest.raises(ValueError):
        proportion(0, 0)


def test_a_three_member_embedder_trains_both_stages_ships_evaluates_and_compares(trained_run, tmp_path, capsys,
                                                                                  monkeypatch):
    """Every stage sees the joined key: the classifier head per member, the memory and the readouts all 3 x 16 wide.
    Then `compare` against the one-member run: the same tasks as `eval`, and a zero difference against itself."""
    config = tmp_path / "members.toml"
    config.write_text(TWO_STAGE_TOML.replace("batch_norm = true", "batch_norm = true\nmembers = 3"))
    data = [str(shared_omniglot_file(f"images_background_small{i}.zip")) for i in (1, 2)]
    monkeypatch.setenv("KSHOT_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    assert main(["omniglot", "train", "--data", *data, "--config", str(config), "--no-progress", "--out", str(run)]) == 0
    pre = [json.loads(line) for line in (run / "pretrain" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in pre] == [2, 4] and all(0.0 <= r["train_accuracy"] <= 1.0 for r in pre)

    shipped = tmp_path / "shipped"
    export_run(run, shipped, command="kshot omniglot train ...")
    _, trained, _ = restore_embedder(run)
    _, loaded, _ = load_shipped(shipped)
    images = np.random.default_rng(0).random((4, 28, 28, 1)).astype(np.float32)
    keys = loaded(images, training=False).numpy()
    assert keys.shape == (4, 48)
    np.testing.assert_allclose(keys, trained(images, training=False).numpy(), atol=2e-2)

    results_file = tmp_path / "eval.json"
    assert main(["omniglot", "eval", "--checkpoint", str(shipped), "--data", *data, "--ways", "5", "--shots", "1",
                 "--episodes", "10", "--json", str(results_file)]) == 0
    results = json.loads(results_file.read_text())
    assert results["key_dim"] == 48
    trained_rows = {row["readout"]: row["mean"] for row in results["nway"] if row["embedder"] == "trained"}
    assert set(trained_rows) == {"memory", "1-NN", "prototype"}
    # One shot per class: the memory holds exactly the support keys, so it answers as 1-NN does.
    assert trained_rows["memory"] == pytest.approx(trained_rows["1-NN"])
    assert trained_rows["prototype"] == pytest.approx(trained_rows["1-NN"])

    single, _ = trained_run
    compared_file = tmp_path / "compare.json"
    capsys.readouterr()
    assert main(["omniglot", "compare", "--checkpoint", str(shipped), "--reference", str(single), "--data", *data,
                 "--ways", "5", "--shots", "1", "2", "--episodes", "10", "--json", str(compared_file)]) == 0
    assert "| 5 | 1 | 10 |" in capsys.readouterr().out
    compared = json.loads(compared_file.read_text())
    first = compared["cells"][0]
    assert (first["ways"], first["shots"]) == (5, 1)
    assert first["checkpoint"]["mean"] == pytest.approx(trained_rows["memory"])  # eval's tasks, task for task
    for cell in compared["cells"]:
        assert cell["difference"] == pytest.approx(cell["checkpoint"]["mean"] - cell["reference"]["mean"])
        assert -1.0 <= cell["ci_low"] <= cell["difference"] <= cell["ci_high"] <= 1.0

    assert main(["omniglot", "compare", "--checkpoint", str(shipped), "--reference", str(shipped), "--data", *data,
                 "--ways", "5", "--shots", "1", "--episodes", "10"]) == 0
    assert "| +0.00 | [+0.00, +0.00] | within noise |" in capsys.readouterr().out
    assert main(["omniglot", "compare", "--checkpoint", str(shipped), "--reference", str(shipped), "--data", *data,
                 "--ways", "5", "--shots", "1", "--episodes", "10", "--within-alphabet"]) == 0
    out = capsys.readouterr().out
    assert "Latin (the classes of each task from one alphabet)" in out and "| +0.00 | [+0.00, +0.00] |" in out

    other_split = tmp_path / "other_split"
    shutil.copytree(shipped, other_split)
    split = json.loads((other_split / "split.json").read_text())
    (other_split / "split.json").write_text(json.dumps({**split, "test_alphabets": ["Korean"]}))
    assert main(["omniglot", "compare", "--checkpoint", str(shipped), "--reference", str(other_split), "--data", *data,
                 "--episodes", "10", "--ways", "5"]) == 2
    assert "holds out Latin" in capsys.readouterr().err

    assert main(["omniglot", "compare", "--checkpoint", str(shipped), "--reference", str(single), "--data", *data,
                 "--split", "validation", "--ways", "5", "--shots", "1", "--episodes", "10"]) == 0
    assert "the same tasks on the validation alphabets Greek" in capsys.readouterr().out


def test_accuracy_by_alphabet_counts_look_alikes_from_the_same_script():
    from types import SimpleNamespace

    from experiments.episodic.evaluation.breakdowns import accuracy_by_alphabet

    data = SimpleNamespace(alphabets=("A", "A", "B", "B"), alphabet_names=lambda: ["A", "B"])
    truth = np.array([[0, 1, 2, 3], [0, 1, 2, 3]])
    answered = np.array([[0, 0, 0, 3], [1, 1, 3, -1]])  # A: 2 of 4 right, both misses name A; B: 1 of 4
    rows = {row["alphabet"]: row for row in accuracy_by_alphabet(truth, answered, data)}
    assert rows["A"]["answers"] == 4 and rows["A"]["mean"] == 0.5 and rows["A"]["errors_within_alphabet"] == 1.0
    # B's misses: class 0 (alphabet A), class 3 (B), and no answer: one of three within B
    assert rows["B"]["mean"] == 0.25 and rows["B"]["errors_within_alphabet"] == pytest.approx(1 / 3)
    assert rows["A"]["characters"] == 2


def test_accuracy_by_rivals_counts_the_other_task_characters_of_the_query_alphabet():
    from types import SimpleNamespace

    from experiments.episodic.evaluation.breakdowns import accuracy_by_rivals

    data = SimpleNamespace(alphabets=("A", "A", "A", "B", "C"))
    # Task 1 holds classes 0, 1, 3: queries 0 and 1 (alphabet A) have one rival each, query 3 none.
    # Task 2 holds classes 0, 3, 4: every query is alone in its alphabet.
    truth = np.array([[0, 1, 3], [0, 3, 4]])
    answered = np.array([[1, 1, 3], [0, 0, -1]])
    rows = {(row["alphabet"], row["rivals"]): row for row in accuracy_by_rivals(truth, answered, data)}
    assert sorted(rows) == [("A", 0), ("A", 1), ("B", 0), ("C", 0)]
    assert rows["A", 1]["answers"] == 2 and rows["A", 1]["right"] == 1 and rows["A", 1]["mean"] == 0.5
    assert rows["A", 0]["answers"] == 1 and rows["A", 0]["mean"] == 1.0
    assert rows["B", 0]["answers"] == 2 and rows["B", 0]["mean"] == 0.5
    assert rows["C", 0]["answers"] == 1 and rows["C", 0]["mean"] == 0.0


def test_eval_measures_the_validation_alphabets_when_asked(trained_run, tmp_path, capsys):
    run, base = trained_run
    data = base[base.index("--data") + 1:base.index("--config")]
    results_file = tmp_path / "validation.json"
    capsys.readouterr()
    assert main(["omniglot", "eval", "--checkpoint", str(run), "--data", *data, "--split", "validation", "--ways", "5",
                 "--episodes", "5", "--per-shot-episodes", "0", "--no-untrained", "--json", str(results_file)]) == 0
    greek = json.loads((run / "split.json").read_text())["validation_characters"]
    assert f"evaluated on the validation alphabets: {greek} characters of Greek" in capsys.readouterr().out
    results = json.loads(results_file.read_text())
    assert results["evaluated"] == "validation" and {row["ways"] for row in results["nway"]} == {5}
    assert results["within_alphabet"] is False
    assert main(["omniglot", "eval", "--checkpoint", str(run), "--data", *data, "--split", "validation", "--ways", "5",
                 "--episodes", "5", "--per-shot-episodes", "2", "--no-untrained", "--within-alphabet",
                 "--json", str(results_file)]) == 0
    out = capsys.readouterr().out
    assert "1 query per class, the classes of each task from one alphabet" in out
    assert "; the classes of each episode from one alphabet" in out
    assert json.loads(results_file.read_text())["within_alphabet"] is True

    no_validation = tmp_path / "no_validation"
    shutil.copytree(run, no_validation)
    (no_validation / "config.toml").write_text(
        (run / "config.toml").read_text().replace('validation_alphabets = ["Greek"]', "validation_alphabets = []"))
    split = json.loads((no_validation / "split.json").read_text())
    split.pop("validation_alphabets")
    (no_validation / "split.json").write_text(json.dumps(split))
    assert main(["omniglot", "eval", "--checkpoint", str(no_validation), "--data", *data, "--split", "validation",
                 "--episodes", "5"]) == 2
    assert "trained without validation alphabets" in capsys.readouterr().err


def _alphabets_zip(source, out, keep: dict[str, str]):
    """A zip of `source`'s drawings of the alphabets in `keep`, each renamed to keep[alphabet]."""
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(out, "w") as written:
        for name in archive.namelist():
            parts = name.split("/")
            if len(parts) == 4 and parts[1] in keep and parts[3].endswith(".png"):
                written.writestr("/".join([parts[0], keep[parts[1]], *parts[2:]]), archive.read(name))
    return out


def test_unseen_split_measures_every_drawing_of_a_new_set_and_refuses_seen_alphabets(trained_run, tmp_path, capsys):
    run, base = trained_run
    data = base[base.index("--data") + 1:base.index("--config")]
    common = ["--checkpoint", str(run), "--ways", "5", "20", "--shots", "1", "--episodes", "10",
              "--per-shot-episodes", "0", "--no-untrained"]
    # The run's test alphabet alone, as a set of its own: the same drawings, so task for task the test numbers.
    latin = _alphabets_zip(data[0], tmp_path / "latin.zip", {"Latin": "Latin"})
    assert main(["omniglot", "eval", *common, "--data", *data, "--json", str(tmp_path / "test.json")]) == 0
    capsys.readouterr()
    assert main(["omniglot", "eval", *common, "--data", str(latin), "--split", "unseen",
                 "--json", str(tmp_path / "unseen.json")]) == 0
    assert "evaluated on the unseen alphabets: 26 characters of Latin" in capsys.readouterr().out
    tested, unseen = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("test", "unseen"))
    assert unseen["evaluated"] == "unseen" and unseen["split"]["unseen_images"] == 26 * 20
    assert unseen["split"]["train_alphabets"] == tested["split"]["train_alphabets"]
    assert [row["mean"] for row in unseen["nway"]] == [row["mean"] for row in tested["nway"]]

    # A script the checkpoint never had (here: drawings under a new alphabet name) also runs
    # through stream and embed; the default --split test points to --split unseen.
    renamed = _alphabets_zip(data[0], tmp_path / "renamed.zip", {"Latin": "New_Script"})
    assert main(["omniglot", "eval", *common, "--data", str(renamed)]) == 2
    assert "--split unseen" in capsys.readouterr().err
    assert main(["omniglot", "stream", "--checkpoint", str(run), "--data", str(renamed), "--split", "unseen",
                 "--sizes", "10", "--json", str(tmp_path / "stream.json")]) == 0
    assert json.loads((tmp_path / "stream.json").read_text())["alphabets"] == ["New_Script"]
    assert main(["omniglot", "embed", "--checkpoint", str(run), "--data", str(renamed), "--split", "unseen",
                 "--out", str(tmp_path / "keys.npz")]) == 0
    assert set(np.load(tmp_path / "keys.npz")["labels"]) == {f"New_Script/character{i:02d}" for i in range(1, 27)}

    # Within-alphabet tasks larger than every alphabet are refused before anything is embedded,
    # even where the set as a whole has characters enough (26 + 24 for 30-way).
    two = _alphabets_zip(data[0], tmp_path / "two.zip", {"Latin": "Script_A", "Greek": "Script_B"})
    capsys.readouterr()
    assert main(["omniglot", "eval", "--checkpoint", str(run), "--data", str(two), "--split", "unseen",
                 "--ways", "30", "--episodes", "5", "--within-alphabet"]) == 2
    assert "30 classes from one alphabet need an alphabet of at least 30 classes; the largest, Script_A, has 26" in capsys.readouterr().err

    # Alphabets the run trained or validated on are refused by name.
    capsys.readouterr()
    assert main(["omniglot", "eval", *common, "--data", data[1], "--split", "unseen"]) == 2
    err = capsys.readouterr().err
    assert "was trained on" in err and "Japanese_(katakana)" in err and "Latin" not in err
    greek = _alphabets_zip(data[0], tmp_path / "greek.zip", {"Greek": "Greek", "Latin": "Latin"})
    assert main(["omniglot", "eval", *common, "--data", str(greek), "--split", "unseen"]) == 2
    assert "was validated on (Greek)" in capsys.readouterr().err


def test_eval_can_score_the_memory_with_running_mean_merges(trained_run, tmp_path, capsys):
    run, base = trained_run
    data = base[base.index("--data") + 1:base.index("--config")]
    common = ["omniglot", "eval", "--checkpoint", str(run), "--data", *data, "--ways", "5", "--shots", "1", "3",
              "--episodes", "20", "--per-shot-episodes", "0", "--no-untrained"]
    assert main([*common, "--json", str(tmp_path / "paper.json")]) == 0
    capsys.readouterr()
    assert main([*common, "--set", "memory.running_mean=true", "--json", str(tmp_path / "mean.json")]) == 0
    assert "The Kaiser memory merges by running mean" in capsys.readouterr().out
    paper, mean = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("paper", "mean"))
    assert mean["memory_running_mean"] is True and paper["memory_running_mean"] is False

    def memory(results, shots):
        return [row for row in results["nway"] if row["readout"] == "memory" and row["shots"] == shots][0]["mean"]

    assert memory(mean, 1) == memory(paper, 1)  # one drawing per class: nothing is merged
    others = [(r["readout"], r["shots"], r["mean"]) for r in mean["nway"] if r["readout"] != "memory"]
    assert others == [(r["readout"], r["shots"], r["mean"]) for r in paper["nway"] if r["readout"] != "memory"]
