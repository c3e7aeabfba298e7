"""`kshot run` on a user's own folder and weights: refusals name the file; skips are recorded when asked."""

import pytest

from experiments.cli import main

pytestmark = pytest.mark.weights


@pytest.fixture
def messy_people(messy_folder):
    """The shared messy folder plus an empty class folder."""
    (messy_folder / "nobody").mkdir()
    return messy_folder


def test_run_stops_on_a_non_image_file_naming_it(messy_people, tmp_path, capsys):
    status = main(["run", "--data", str(messy_people), "--out", str(tmp_path / "run"),
                   "--models", "baseline,memory", "--repeats", "2", "--no-figures", "--no-progress"])
    assert status == 2
    error = capsys.readouterr().err
    assert "setlist.txt: not an image" in error and "--skip-bad" in error
    assert not (tmp_path / "run" / "results.csv").exists()


def test_run_with_skip_bad_records_every_skip_in_the_report(messy_people, tmp_path):
    out = tmp_path / "run"
    status = main(["run", "--data", str(messy_people), "--out", str(out), "--skip-bad",
                   "--models", "baseline,memory", "--repeats", "2", "--no-figures", "--no-progress"])
    assert status == 0
    skipped = (out / "skipped.txt").read_text()
    assert "setlist.txt: not an image" in skipped
    assert "nobody" in skipped  # the empty class folder
    assert "blank_wall.png: no face" in skipped
    assert "3 image(s) skipped" in (out / "summary.md").read_text()
    assert "skip_bad = true" in (out / "config.toml").read_text()


def test_run_with_own_weights_uses_that_file(messy_people, tmp_path):
    from facenet_tf.fetch import ensure_weights

    own = tmp_path / "my_facenet.h5"
    own.write_bytes(ensure_weights().read_bytes())
    out = tmp_path / "own"
    status = main(["run", "--data", str(messy_people), "--out", str(out), "--skip-bad", "--weights", str(own),
                   "--models", "baseline,memory", "--repeats", "2", "--no-figures", "--no-progress"])
    assert status == 0
    assert f'weights = "{own}"' in (out / "config.toml").read_text()


def test_run_with_a_broken_weights_file_names_it(messy_people, tmp_path, capsys):
    broken = tmp_path / "broken.h5"
    broken.write_bytes(b"not an hdf5 file")
    status = main(["run", "--data", str(messy_people), "--out", str(tmp_path / "x"), "--skip-bad", "--weights", str(broken),
                   "--models", "baseline,memory", "--repeats", "2", "--no-figures", "--no-progress"])
    assert status == 2
    assert "broken.h5" in capsys.readouterr().err
