"""A run or sweep never writes over files it did not write, and settings that break its tables stop it first.

The case that prompted these: `kshot run --out "$RUN"` with $RUN unset wrote the run
into the current folder and replaced the user's own results.csv and summary.md. Each
refusal is one line (exit 2) and leaves every file as it was; a real run directory
still resumes with byte-identical results.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import write_embeddings_npz

from experiments.cli import main
from experiments.core.run_dir import check_run_dir
from experiments.faces.settings import RunConfig, from_dict, load_config
from experiments.sweeps.execute import run_sweep
from experiments.sweeps.spec import load_sweep
from experiments.sweeps.task import Task, run_task

REPO = Path(__file__).resolve().parents[2]
USER_FILES = {"results.csv": "my,own\n1,2\n", "summary.md": "# my notes\n"}


def user_folder(path):
    path.mkdir(parents=True, exist_ok=True)
    for name, text in USER_FILES.items():
        (path / name).write_text(text)
    return path


def untouched(path) -> bool:
    return sorted(p.name for p in path.iterdir()) == sorted(USER_FILES) and all(
        (path / name).read_text() == text for name, text in USER_FILES.items()
    )


def kshot_run(npz, out, *extra) -> int:
    return main(["run", "--embeddings", str(npz), "--out", str(out), "--repeats", "2", "--no-figures", "--no-progress",
                 *extra])


@pytest.fixture
def npz(tmp_path):
    return write_embeddings_npz(tmp_path / "emb.npz", n_classes=3, per_class=4, dim=8, spread=1.0)


def write_sweep(tmp_path, npz, grid="run.seed = [0]"):
    (tmp_path / "base.toml").write_text(
        f'[run]\nrepeats = 2\nmax_shots = 2\nmodels = ["baseline", "memory"]\n[data]\nembeddings = "{npz}"\n'
    )
    (tmp_path / "sweep.toml").write_text(f'[sweep]\nbase = "base.toml"\n[grid]\n{grid}\n')
    return tmp_path / "sweep.toml"


@pytest.mark.parametrize("out", ["", "."])
def test_an_empty_or_current_folder_out_is_refused_and_the_users_files_stay(tmp_path, monkeypatch, capsys, npz, out):
    here = user_folder(tmp_path / "work")
    monkeypatch.chdir(here)
    assert main(["run", "--embeddings", str(npz), "--out", out, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "is the current folder" in err and "$RUN unset" in err and len(err.strip().splitlines()) == 1
    sweep = write_sweep(tmp_path, npz)
    assert main(["sweep", "--config", str(sweep), "--out", out]) == 2
    assert "is the current folder; a sweep writes plan.csv" in capsys.readouterr().err
    assert untouched(here)


def test_a_folder_of_other_files_is_refused_by_run_and_sweep(tmp_path, capsys, npz):
    theirs = user_folder(tmp_path / "theirs")
    assert kshot_run(npz, theirs) == 2
    assert "not empty and holds no run (config.toml is missing)" in capsys.readouterr().err
    assert main(["sweep", "--config", str(write_sweep(tmp_path, npz)), "--out", str(theirs)]) == 2
    assert "holds files a sweep did not write (results.csv, summary.md)" in capsys.readouterr().err
    assert untouched(theirs)


def test_a_config_toml_of_another_kind_is_not_taken_for_a_run(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.toml").write_text('[train]\nsteps = 10\n')  # an Omniglot run's section
    with pytest.raises(FileExistsError, match="holds a config.toml that cannot be read as this run's configuration"):
        check_run_dir(other, RunConfig())


def test_an_empty_folder_is_used_and_a_real_run_resumes_byte_identically(tmp_path, npz):
    out = tmp_path / "run"
    out.mkdir()
    assert kshot_run(npz, out) == 0
    results = (out / "results.csv").read_bytes()
    repeats = {p: p.stat().st_mtime_ns for p in (out / "repeats").rglob("*.npz")}
    assert kshot_run(npz, out) == 0
    assert (out / "results.csv").read_bytes() == results
    assert {p: p.stat().st_mtime_ns for p in (out / "repeats").rglob("*.npz")} == repeats


def test_duplicate_memory_sizes_stop_before_any_work_naming_the_value(tmp_path, capsys, npz):
    assert kshot_run(npz, tmp_path / "run", "--memory-sizes", "8,16,8") == 2
    err = capsys.readouterr().err
    assert "[memory] memory_size lists 8 twice" in err
    assert not (tmp_path / "run").exists()
    assert kshot_run(npz, tmp_path / "run", "--memory-sizes", " , ") == 2
    assert "--memory-sizes ' , ' names no size" in capsys.readouterr().err
    assert kshot_run(npz, tmp_path / "run", "--models", "") == 2
    assert "--models '' names no model; choose from baseline" in capsys.readouterr().err


def test_duplicates_in_a_config_file_are_refused_naming_the_file(tmp_path):
    path = tmp_path / "dup.toml"
    path.write_text('[memory]\nmemory_size = [32, 64, 32]\n')
    with pytest.raises(ValueError, match=r"dup.toml: \[memory\] memory_size lists 32 twice"):
        load_config(path)
    with pytest.raises(ValueError, match=r"\[run\] models lists 'memory' twice"):
        from_dict({"run": {"models": ["baseline", "memory", "memory"]}})


def test_a_sweep_cell_with_duplicate_sizes_is_refused_before_work(tmp_path, npz):
    sweep = write_sweep(tmp_path, npz, grid="memory.memory_size = [[8, 8], [16]]")
    with pytest.raises(ValueError, match="memory_size lists 8 twice"):
        load_sweep(sweep)


class InProcess:
    """An executor that runs each task here, at once (the driver's side of a sweep, without worker processes)."""

    shares_files = True
    command_flags = ""

    def __init__(self):
        self.done: list = []

    def describe(self) -> str:
        return "in process"

    def task_threads(self) -> int:
        return 1

    def submit(self, task) -> None:
        self.done.append((task, run_task(task)))

    def pending(self) -> bool:
        return bool(self.done)

    def wait_any(self) -> list:
        finished, self.done = self.done, []
        return finished

    def close(self) -> None:
        pass

    def stop(self) -> None:
        pass


def test_a_cells_python_warnings_come_back_as_one_line_naming_the_cell(tmp_path, npz):
    sweep = load_sweep(write_sweep(tmp_path, npz, grid="memory.memory_size = [2]"))
    cell = sweep.cells[0]
    outcome = run_task(Task(cell.name, cell.config_toml, run_dir=str(tmp_path / "alone"), make_figures=False))
    assert outcome.ok and len(outcome.warnings) == 1
    assert outcome.warnings[0].startswith("memory_size 2 is smaller than the")
    lines: list[str] = []
    run_sweep(sweep, tmp_path / "out", InProcess(), make_figures=False, log=lambda line: None, warn=lines.append)
    assert lines == [f"kshot sweep: warning in cell memory_size=2: {outcome.warnings[0]}"]


def test_an_out_below_a_file_and_a_config_that_is_not_text_are_named(tmp_path, capsys, npz):
    assert kshot_run(npz, npz / "sub") == 2
    assert "emb.npz is a file, so no folder can be made in it" in capsys.readouterr().err
    assert main(["run", "--config", str(npz), "--out", str(tmp_path / "run")]) == 2
    assert "emb.npz is not a text file (not UTF-8); give the TOML config file" in capsys.readouterr().err
    assert main(["sweep", "--config", str(npz), "--out", str(tmp_path / "sweep")]) == 2
    assert "emb.npz is not a text file (not UTF-8); give the TOML sweep file" in capsys.readouterr().err


def test_data_and_embeddings_together_are_refused(tmp_path, capsys, npz):
    assert kshot_run(npz, tmp_path / "run", "--data", "celebrities") == 2
    assert "--data celebrities and --embeddings" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_embed_replaces_only_its_own_npz_and_checks_its_options_before_facenet(tmp_path, capsys):
    mine = tmp_path / "mine.npz"
    mine.write_text("my own data\n")
    people = tmp_path / "people"
    (people / "ann").mkdir(parents=True)
    for out, extra, message in [
        (mine, [], "exists and is not an embeddings file"),
        (tmp_path, [], "--out must name an .npz file"),
        (tmp_path / "new.npz", ["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    ]:
        assert main(["embed", "--data", str(people), "--out", str(out), *extra]) == 2
        assert message in capsys.readouterr().err
    assert mine.read_text() == "my own data\n"


def test_ctrl_c_stops_a_run_at_once_and_the_finished_repeats_are_reused(tmp_path, npz):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "experiments.cli", "run", "--embeddings", str(npz), "--out", str(out),
               "--models", "baseline", "--repeats", "100000", "--no-figures", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    repeats = out / "repeats" / "baseline"
    deadline = time.monotonic() + 240
    while not (repeats.is_dir() and len(list(repeats.glob("*.npz"))) >= 3):
        assert process.poll() is None and time.monotonic() < deadline, "the run never got going"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGINT)  # as the terminal's Ctrl-C
    try:
        _, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130 and err.strip().endswith("run the same command to resume."), err
    kept = {p: p.stat().st_mtime_ns for p in sorted(repeats.glob("*.npz"))[:3]}
    assert main(["run", "--embeddings", str(npz), "--out", str(out), "--models", "baseline", "--repeats", "3",
                 "--no-figures", "--no-progress"]) == 0
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
