"""`[run] chunk_size`: the user's knob for how many repeats of a frozen method share one batched call.

It changes speed, never results, so it is checked like any setting (a positive integer,
a one-line error naming the value) but is no part of what a run is: a run directory
resumes under another chunk size, a repeat's identity (its digest) ignores it, and a
configuration that never set it writes, reads and hashes as before it existed.
"""

from __future__ import annotations

import dataclasses

import pytest
import tomllib

from experiments.cli import build_parser
from experiments.cli.run import resolve_run_config
from experiments.core.run_dir import GROWABLE, open_run_dir
from experiments.core.run_files import CONFIG_FILE
from experiments.core.settings import ConfigError, from_dict, results_only, to_toml, with_assignments
from experiments.faces import settings as cfg
from experiments.faces.settings import RunConfig


def test_the_default_is_the_runners_and_a_file_or_set_chooses_another(tmp_path):
    from experiments.faces.chunks import DEFAULT_CHUNK_SIZE  # TensorFlow: only this test needs it

    assert RunConfig().run.chunk_size == DEFAULT_CHUNK_SIZE
    assert from_dict({"run": {"chunk_size": 1}}, RunConfig).run.chunk_size == 1
    assert with_assignments(RunConfig(), ["run.chunk_size=40"]).run.chunk_size == 40
    args = build_parser().parse_args(["run", "--set", "run.chunk_size=3", "--out", str(tmp_path / "run")])
    config, _ = resolve_run_config(args)
    assert config.run.chunk_size == 3


@pytest.mark.parametrize(("value", "message"), [
    ("0", "[run] chunk_size = 0 is out of range; allowed: >= 1"),
    ("-4", "[run] chunk_size = -4 is out of range; allowed: >= 1"),
    ("2.5", "[run] chunk_size must be an integer, got 2.5"),
    ('"big"', "[run] chunk_size must be an integer, got 'big'"),
    ("true", "[run] chunk_size must be an integer, got True"),
])
def test_a_chunk_size_that_is_not_a_positive_integer_is_one_line_naming_the_value(value, message):
    with pytest.raises(ConfigError) as error:
        with_assignments(RunConfig(), [f"run.chunk_size={value}"])
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_file_with_a_bad_chunk_size_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text("[run]\nchunk_size = 0\n")
    with pytest.raises(ConfigError, match=r"mine\.toml: \[run\] chunk_size = 0 is out of range"):
        cfg.load_config(path)


def test_it_is_written_only_when_set_and_reads_back():
    default = RunConfig()
    assert "chunk_size" not in to_toml(default)  # run directories made before the knob read and hash the same
    chosen = with_assignments(default, ["run.chunk_size=7"])
    assert "chunk_size = 7" in to_toml(chosen)
    for config in (default, chosen):
        assert cfg.from_dict(tomllib.loads(to_toml(config))) == config


def test_it_is_no_part_of_a_repeats_identity_nor_of_a_run_directory(tmp_path):
    default = RunConfig()
    chosen = with_assignments(default, ["run.chunk_size=7"])
    assert results_only(chosen) == default
    assert to_toml(cfg.with_repeats(chosen, 1)) == to_toml(cfg.with_repeats(default, 1))  # the repeat digest's text
    assert cfg.differences(default, chosen) == []
    other = dataclasses.replace(chosen, run=dataclasses.replace(chosen.run, seed=5))
    assert cfg.differences(default, other) == ["[run] seed: saved 0, now 5"]

    run_dir = tmp_path / "run"
    assert open_run_dir(run_dir, default, may_change=GROWABLE) is False
    assert open_run_dir(run_dir, chosen, may_change=GROWABLE) is True  # resumes: not refused
    assert cfg.load_config(run_dir / CONFIG_FILE).run.chunk_size == 7
    with pytest.raises(ValueError, match=r"\[run\] seed: saved 0, now 5"):
        open_run_dir(run_dir, other, may_change=GROWABLE)
