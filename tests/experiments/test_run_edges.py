"""What a researcher hits when running for real: growing runs, partial reports, odd datasets, clear errors.

Each case once printed a traceback, a NaN or nothing; each now gives a result or a one-line
error naming the file or value and what to do.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support import write_embeddings_npz

from experiments.cli import main

REPO = Path(__file__).resolve().parents[2]


def kshot(tmp_path, out, *extra) -> int:
    """`kshot run` on a small synthetic embeddings file (frozen methods only), no figures."""
    npz = tmp_path / "emb.npz"
    if not npz.exists():
        write_embeddings_npz(npz, n_classes=4, per_class=6, dim=8, spread=1.0)
    return main(["run", "--embeddings", str(npz), "--out", str(out), "--no-figures", "--no-progress", *extra])


def test_more_repeats_extend_a_run_and_keep_the_finished_ones(tmp_path):
    out = tmp_path / "run"
    assert kshot(tmp_path, out, "--repeats", "3") == 0
    first = {p: p.stat().st_mtime_ns for p in (out / "repeats").rglob("*.npz")}
    assert kshot(tmp_path, out, "--repeats", "5") == 0
    after = {p: p.stat().st_mtime_ns for p in (out / "repeats").rglob("*.npz")}
    assert all(after[p] == t for p, t in first.items())  # reused, not rewritten
    assert len(after) == 2 * 5
    grown = pd.read_csv(out / "results.csv")
    assert kshot(tmp_path, tmp_path / "fresh", "--repeats", "5") == 0
    assert (out / "results.csv").read_bytes() == (tmp_path / "fresh" / "results.csv").read_bytes()
    assert sorted(grown.repeat.unique()) == [0, 1, 2, 3, 4]


def test_finetune_repeats_are_their_own_setting(tmp_path):
    from experiments.cli import build_parser
    from experiments.cli.run import resolve_run_config

    args = build_parser().parse_args(["run", "--repeats", "7", "--set", "finetune.repeats=2"])
    config, _ = resolve_run_config(args)
    assert (config.run.repeats, config.finetune.repeats) == (7, 2)


def test_report_works_on_an_interrupted_run(tmp_path):
    out = tmp_path / "run"
    assert kshot(tmp_path, out, "--repeats", "4") == 0
    for derived in ("results.csv", "summary.csv", "confusion.npz", "timings.csv"):
        (out / derived).unlink()  # as after a kill before the tables were written
    (out / "repeats" / "memory" / "00003.npz").unlink()
    assert main(["report", str(out), "--no-figures"]) == 0
    frame = pd.read_csv(out / "results.csv")
    assert sorted(frame[frame.model == "memory"].repeat.unique()) == [0, 1, 2]
    assert (out / "summary.csv").is_file() and (out / "paired.csv").is_file()


def test_out_naming_a_file_is_a_one_line_error(tmp_path, capsys):
    a_file = tmp_path / "not_a_dir"
    a_file.write_text("x")
    assert kshot(tmp_path, a_file) == 2
    err = capsys.readouterr().err
    assert "not_a_dir is a file" in err and "Traceback" not in err


def test_an_npz_with_0d_labels_is_named(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    np.savez(bad, embeddings=np.ones((3, 4), np.float32), labels=np.array("x"))
    assert main(["run", "--embeddings", str(bad), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "bad.npz" in err and "`labels` must be a 1-D array" in err


def test_a_memory_too_large_for_the_machine_is_refused_before_allocation(tmp_path, capsys):
    config = tmp_path / "huge.toml"
    config.write_text('[run]\nmodels = ["memory"]\n[memory]\nmemory_size = 100000000000\n')
    assert kshot(tmp_path, tmp_path / "o", "--config", str(config)) == 2
    assert "memory_size = 100000000000 needs about" in capsys.readouterr().err


def test_a_memory_smaller_than_what_store_all_holds_is_warned_with_both_numbers(tmp_path, capsys):
    config = tmp_path / "small.toml"
    config.write_text('[run]\nmodels = ["baseline", "memory"]\nrepeats = 2\nmax_shots = 3\n[memory]\nmemory_size = 6\n')
    with pytest.warns(UserWarning, match="memory_size 6 is smaller than the 12 keys store-all holds at 3 shots"):
        assert kshot(tmp_path, tmp_path / "o", "--config", str(config)) == 0


def test_bare_kshot_prints_help_and_runs_nothing(capsys):
    assert main([]) == 0
    assert "usage: kshot" in capsys.readouterr().out


def test_a_cli_run_prints_no_tensorflow_start_up_lines(tmp_path):
    npz = write_embeddings_npz(tmp_path / "emb.npz", n_classes=3, per_class=4, dim=8, spread=1.0)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run(
        [sys.executable, "-m", "experiments.cli", "run", "--embeddings", str(npz), "--out", str(tmp_path / "o"),
         "--repeats", "2", "--models", "baseline,memory", "--no-figures", "--no-progress"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "oneDNN" not in done.stderr and "absl::InitializeLog" not in done.stderr, done.stderr[:2000]


def test_a_readme_in_the_dataset_root_is_ignored_with_a_note(tmp_path):
    from experiments.faces.datasets import load_folder

    for person in ("ann", "bob"):
        (tmp_path / "people" / person).mkdir(parents=True)
        (tmp_path / "people" / person / "1.jpg").write_bytes(b"x")
    (tmp_path / "people" / "README.md").write_text("my dataset")
    dataset = load_folder(tmp_path / "people")
    assert dataset.classes == ("ann", "bob")
    assert dataset.notes == (f"ignored {tmp_path / 'people' / 'README.md'}: not an image, and not in a class folder",)
    (tmp_path / "people" / "stray.jpg").write_bytes(b"x")
    with pytest.raises(ValueError, match="stray.jpg: an image directly in the dataset folder"):
        load_folder(tmp_path / "people")


def test_identical_files_warn_within_a_class_and_stop_across_classes(tmp_path, celebrity_photo):
    from experiments.faces.run_data import duplicate_notes

    root = tmp_path / "people"
    for name in ("ann/a.jpg", "ann/b.jpg", "bob/c.jpg"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(celebrity_photo, root / name)
    notes = duplicate_notes([str(root / "ann/a.jpg"), str(root / "ann/b.jpg")], ["ann", "ann"], False)
    assert len(notes) == 1 and "identical files in class ann" in notes[0] and "b.jpg" in notes[0]
    paths = [str(root / n) for n in ("ann/a.jpg", "bob/c.jpg")]
    with pytest.raises(ValueError, match=r"several classes \(ann, bob\).*--allow-duplicates"):
        duplicate_notes(paths, ["ann", "bob"], False)
    assert "classes ann, bob" in duplicate_notes(paths, ["ann", "bob"], True)[0]


def test_settings_and_datasets_are_checked_without_starting_tensorflow():
    """Config, dataset scan and run-directory checks come before TensorFlow's start-up cost."""
    code = (
        "import sys\n"
        "from experiments import cli\n"
        "from experiments.core import run_dir\n"
        "from experiments.faces import datasets, methods, run_data, settings\n"
        "from experiments.episodic import settings as episodic_settings\n"
        "settings.load_config(settings.DEFAULT_RUN_CONFIG)\n"
        "episodic_settings.load_omniglot_preset()\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
