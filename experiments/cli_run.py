"""`kshot run`: the k-shot experiment, memory vs store-all baseline.

With no arguments it runs the default demo: experiments/configs/celebrities.toml (the
built-in 5-person celebrity set, all four models) into runs/celebrities. Options
override the configuration; the resolved configuration is saved in the run
directory. Running the same command again resumes: finished repeats are kept.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from experiments.config import MODEL_NAMES

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "celebrities.toml"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the k-shot experiment (no arguments: the celebrity demo with all four models)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, default=None, help=f"TOML configuration (default: {DEFAULT_CONFIG.name})")
    parser.add_argument("--out", type=Path, default=None, help="run directory (default: runs/<config name>)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats for every model (overrides [run] and [finetune] repeats)")
    parser.add_argument("--seed", type=int, default=None, help="seed of every random choice")
    parser.add_argument("--models", default=None, help="comma-separated subset of: " + ",".join(MODEL_NAMES))
    parser.add_argument("--data", default=None, help="dataset name (celebrities) or folder root/<label>/<image>")
    parser.add_argument("--aligned", action="store_true", default=None, help="images are already face crops: skip MTCNN detection")
    parser.add_argument("--weights", default=None,
                        help="FaceNet weights: registry name or a keras-facenet-style h5 (default: 20170512-110547)")
    parser.add_argument("--skip-bad", action="store_true", default=None,
                        help="skip non-image files and empty class folders (listed in skipped.txt) instead of stopping")
    parser.add_argument("--embeddings", type=Path, default=None, help="npz from `kshot embed`: run the frozen-embedder models on it, no FaceNet")
    parser.add_argument("--no-figures", action="store_true", help="write tables only (faster; `kshot report DIR` draws them later)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(handler=handle_run)


def resolve_config(args):
    from experiments import config as cfg

    config_path = args.config or DEFAULT_CONFIG
    config = cfg.load_config(config_path)
    models = None
    if args.models is not None:
        models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    elif args.embeddings is not None:
        # Precomputed embeddings leave nothing to fine-tune: keep only the frozen models.
        models = tuple(m for m in config.run.models if m in cfg.FROZEN_MODELS) or cfg.FROZEN_MODELS
    config = cfg.with_overrides(
        config,
        origin=f"{config_path} with command-line options",
        run__seed=args.seed,
        run__repeats=args.repeats,
        finetune__repeats=args.repeats,
        run__models=models,
        data__source=args.data,
        data__aligned=args.aligned,
        data__skip_bad=args.skip_bad,
        data__weights=args.weights,
        data__embeddings=str(args.embeddings) if args.embeddings is not None else None,
    )
    out = args.out or Path("runs") / Path(config_path).stem
    return config, Path(out)


def handle_run(args) -> int:
    from experiments import report
    from experiments.config import FINETUNE_MODELS, config_repeats_note
    from experiments.run_data import prepare_data
    from experiments.runner import run_experiment

    started = time.perf_counter()
    config, out_dir = resolve_config(args)
    print(f"kshot run: writing to {out_dir}")
    print(config_repeats_note(config))
    need_crops = any(m in FINETUNE_MODELS for m in config.run.models)
    if need_crops and config.data.embeddings:
        raise ValueError(
            f"models {', '.join(m for m in config.run.models if m in FINETUNE_MODELS)} fine-tune FaceNet and need "
            "images, not --embeddings. Use --models baseline,memory with --embeddings."
        )
    data = prepare_data(config.data, need_crops=need_crops, progress=not args.no_progress)
    outcome = run_experiment(config, out_dir, data, progress=not args.no_progress, make_figures=not args.no_figures)
    timing = outcome["timing"]
    print()
    print("accuracy, mean [95% CI] over repeats, by shots:")
    print(report.accuracy_table(outcome["summary"]).to_string())
    if config.run.compare_with == "blog":
        from experiments.blog_reference import beside_the_blog

        print()
        print("mean accuracy in percent beside the blog's published curves (its 12 x 8 images):")
        print(beside_the_blog(outcome["summary"]).to_string())
    print()
    for model, t in timing.items():
        print(f"{model}: {t['repeats']} repeats ({t['computed']} computed now), {t['seconds_per_repeat']:.3f} s per repeat")
    print(f"total wall time {time.perf_counter() - started:.1f} s; summary in {out_dir / 'summary.md'}")
    return 0
