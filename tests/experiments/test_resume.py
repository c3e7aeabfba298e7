"""kill -9 of a real `kshot run` at random points, then the same command: same results.csv bytes.

The runner is started as a subprocess on a small synthetic embeddings file (no FaceNet),
killed with SIGKILL a few times at random moments after it has started writing
repeats, then run to the end. Its results.csv must equal, byte for byte, that of an
uninterrupted run with the same seed; repeats finished before a kill must be kept.
"""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import write_embeddings_npz

REPO = Path(__file__).resolve().parents[2]
CONFIG = """
[run]
seed = 3
repeats = 30
max_shots = 4
models = ["baseline", "memory"]
[memory]
memory_size = 8
"""


def command(tmp_path, out):
    return [
        sys.executable, "-m", "experiments.cli", "run",
        "--config", str(tmp_path / "c.toml"), "--embeddings", str(tmp_path / "emb.npz"),
        "--out", str(out), "--no-figures", "--no-progress",
    ]


def finished_repeats(out: Path) -> set[Path]:
    return {p for p in (out / "repeats").rglob("*.npz")} if (out / "repeats").is_dir() else set()


@pytest.mark.slow
def test_kill_minus_nine_then_rerun_gives_identical_results(tmp_path):
    (tmp_path / "c.toml").write_text(CONFIG)
    write_embeddings_npz(tmp_path / "emb.npz", n_classes=5, per_class=8, dim=16, spread=1.0)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

    reference = subprocess.run(command(tmp_path, tmp_path / "ref"), cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert reference.returncode == 0, reference.stderr[-2000:]

    out = tmp_path / "killed"
    chooser = random.Random(12345)
    kills = 0
    for attempt in range(2):
        before = finished_repeats(out)
        process = subprocess.Popen(command(tmp_path, out), cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        # wait until this attempt has written at least one new repeat, then kill at a random moment
        while process.poll() is None and len(finished_repeats(out)) <= len(before) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(chooser.uniform(0.0, 0.6))
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            kills += 1
        process.wait(timeout=60)
        kept = finished_repeats(out)
        assert before <= kept, "finished repeats were lost by a kill"
    assert kills >= 1, "the run finished before any kill; make it longer"
    
    final = subprocess.run(command(tmp_path, out), cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr[-2000:]
    assert (out / "results.csv").read_bytes() == (tmp_path / "ref" / "results.csv").read_bytes()
    assert "resuming" in final.stderr or "resuming" in final.stdout or len(finished_repeats(out)) == 60
