"""Same configuration and seed: byte-identical results.csv; another seed: different results."""

from support import write_embeddings_npz

from experiments.faces import settings as cfg
from experiments.faces.run_data import load_embeddings_file
from experiments.faces.runner import run_experiment


def run(tmp_path, name, seed):
    path = write_embeddings_npz(tmp_path / "emb.npz", n_classes=5, per_class=8, dim=16, spread=1.0)
    data = load_embeddings_file(path, cfg.DataSection(embeddings=str(path)))
    config = cfg.from_dict(
        {"run": {"seed": seed, "repeats": 8, "max_shots": 4, "models": ["baseline", "memory"]}, "memory": {"memory_size": 6}}
    )
    run_experiment(config, tmp_path / name, data, progress=False, make_figures=False)
    return (tmp_path / name / "results.csv").read_bytes()


def test_same_seed_same_bytes_other_seed_other_results(tmp_path):
    first = run(tmp_path, "a", seed=7)
    assert first == run(tmp_path, "b", seed=7)
    assert first != run(tmp_path, "c", seed=8)
