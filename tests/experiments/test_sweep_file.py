"""The sweep file: grid and explicit cells, names, and refusals before anything runs (no TensorFlow)."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomllib

from experiments.sweeps.spec import SweepError, cell_name, load_sweep

BASE = """
[run]
repeats = 3
max_shots = 2
models = ["baseline", "memory"]

[data]
embeddings = "emb.npz"
"""


def write(tmp_path: Path, sweep_text: str, base_text: str = BASE) -> Path:
    (tmp_path / "base.toml").write_text(base_text)
    path = tmp_path / "sweep.toml"
    path.write_text(sweep_text)
    return path


def test_grid_and_explicit_cells_resolve_through_the_run_config(tmp_path):
    path = write(tmp_path, """
[sweep]
base = "base.toml"
[grid]
memory.memory_size = [8, 64]
"run.seed" = [0, 1]
[[cells]]
"finetune.learning_rate" = 1e-4
[resources]
num_cpus = 2
max_retries = 1
""")
    sweep = load_sweep(path)
    assert [c.name for c in sweep.cells] == [
        "memory_size=8__seed=0", "memory_size=8__seed=1", "memory_size=64__seed=0", "memory_size=64__seed=1",
        "learning_rate=0.0001",
    ]
    assert sweep.swept_keys == ("memory.memory_size", "run.seed", "finetune.learning_rate")
    config = tomllib.loads(sweep.cells[3].config_toml)
    assert config["memory"]["memory_size"] == 64 and config["run"]["seed"] == 1
    assert config["run"]["repeats"] == 3  # from the base
    assert tomllib.loads(sweep.cells[4].config_toml)["finetune"]["learning_rate"] == 1e-4
    assert sweep.cells[4].value("memory.memory_size") == 32  # a key the cell does not set: the base's value
    assert sweep.resources.num_cpus == 2 and sweep.resources.max_retries == 1 and sweep.resources.num_gpus == 0


def test_relative_embeddings_path_becomes_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "emb.npz").write_bytes(b"")
    sweep = load_sweep(write(tmp_path, '[sweep]\nbase = "base.toml"\n[grid]\n"run.seed" = [0]\n'))
    assert tomllib.loads(sweep.cells[0].config_toml)["data"]["embeddings"] == str(tmp_path / "emb.npz")


def test_a_typo_in_a_swept_key_is_refused_naming_the_file_and_key(tmp_path):
    path = write(tmp_path, '[sweep]\nbase = "base.toml"\n[grid]\nmemory.memroy_size = [8, 64]\n')
    with pytest.raises(SweepError, match=r"sweep\.toml.*memroy_size"):
        load_sweep(path)


@pytest.mark.parametrize(
    "grid, message",
    [
        ('memory.memory_size = [0, 8]', r"sweep\.toml cell memory_size=0.*memory_size = 0 is out of range"),
        ('memory.memory_size = 8', r"must be a non-empty list"),
        ('memory_size = [8]', r"not a setting; name one as section.key"),
        ('"memory.a.b" = [8]', r"not a setting"),
        ('memroy.memory_size = [8]', r"unknown section \[memroy\]"),
    ],
)
def test_bad_grid_entries_are_refused(tmp_path, grid, message):
    with pytest.raises(SweepError, match=message):
        load_sweep(write(tmp_path, f'[sweep]\nbase = "base.toml"\n[grid]\n{grid}\n'))


def test_bad_sweep_tables_are_refused(tmp_path):
    with pytest.raises(SweepError, match=r"unknown section \[grids\]"):
        load_sweep(write(tmp_path, '[grids]\n"run.seed" = [0]\n'))
    with pytest.raises(SweepError, match=r"unknown key 'repeat_per_task' in \[sweep\]"):
        load_sweep(write(tmp_path, '[sweep]\nrepeat_per_task = 2\n'))
    with pytest.raises(SweepError, match=r"\[resources\] num_cpus = 0"):
        load_sweep(write(tmp_path, '[resources]\nnum_cpus = 0\n'))
    with pytest.raises(FileNotFoundError, match=r"base = 'missing.toml'"):
        load_sweep(write(tmp_path, '[sweep]\nbase = "missing.toml"\n'))


def test_duplicate_cells_run_once_and_no_grid_means_the_base(tmp_path):
    sweep = load_sweep(write(tmp_path, '[sweep]\nbase = "base.toml"\n[grid]\n"run.seed" = [0, 1]\n[[cells]]\n"run.seed" = 1\n'))
    assert [c.name for c in sweep.cells] == ["seed=0", "seed=1"]
    assert [c.name for c in load_sweep(write(tmp_path, '[sweep]\nbase = "base.toml"\n')).cells] == ["base"]


def test_names_are_path_safe_and_disambiguate_shared_keys():
    keys = ("run.max_shots", "finetune.max_shots", "data.source")
    name = cell_name({"run.max_shots": 5, "finetune.max_shots": 2, "data.source": "/data/my faces"}, keys)
    assert name == "run.max_shots=5__finetune.max_shots=2__source=my_faces"
    assert "/" not in cell_name({"data.source": "/a/b/"}, ("data.source",))


def test_ray_missing_says_how_to_install_it(monkeypatch):
    import sys

    from experiments.sweeps.execute import RayExecutor
    from experiments.sweeps.spec import Resources

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(ValueError, match=r'pip install "kshot-memory\[ray\]"'):
        RayExecutor(None, Resources())


def test_cli_dry_run_lists_cells_and_a_typo_exits_2_naming_it(tmp_path, capsys):
    from experiments.cli import main

    good = write(tmp_path, '[sweep]\nbase = "base.toml"\n[grid]\n"run.seed" = [0, 1]\n')
    assert main(["sweep", "--config", str(good), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines()[:2] == ["seed=0", "seed=1"]
    assert not (tmp_path / "out").exists()
    bad = write(tmp_path, '[sweep]\nbase = "base.toml"\n[grid]\n"run.sead" = [0]\n')
    assert main(["sweep", "--config", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "unknown key 'sead' in [run]" in capsys.readouterr().err
