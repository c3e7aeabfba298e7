"""The `kshot` command: every subcommand, in one module.

    kshot run        the k-shot face experiment (no arguments: the celebrity demo)
    kshot embed      a dataset's FaceNet embeddings in one npz
    kshot report     rebuild a run's summary and figures from its files
    kshot omniglot   train | eval the memory on Omniglot

Handlers import TensorFlow (and anything that imports it) inside their bodies, so
that `kshot --help` stays fast. Library code raises ValueError, FileNotFoundError or
PermissionError with messages written for the user; `main` prints them without a
traceback and returns 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from experiments.config import DEFAULT_OMNIGLOT_PRESET, DEFAULT_RUN_CONFIG, OMNIGLOT_PRESETS
from experiments.methods import METHODS

RUN_DESCRIPTION = """\
The k-shot experiment, memory vs store-all baseline.

With no arguments it runs the default demo: experiments/configs/celebrities.toml (the
built-in 5-person celebrity set, every method) into runs/celebrities. Options override
the configuration; the resolved configuration is saved in the run directory. Running
the same command again resumes: finished repeats are kept.
"""

EMBED_DESCRIPTION = """\
A dataset's FaceNet embeddings in one npz: `embeddings` (float32 [n, d], unit rows),
`labels`, `paths`, `split` (where the dataset has one) and `skipped` ("path: reason"
for every image that was not embedded: no face, face too small, unreadable file, and,
with --skip-bad, non-image entries of the folder). Skips are also printed on stderr.
The file is written atomically.
"""


# ---------------------------------------------------------------- kshot run


def add_run(subparsers) -> None:
    parser = subparsers.add_parser(
        "run", help="run the k-shot experiment (no arguments: the celebrity demo with every method)",
        description=RUN_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, default=None, help=f"TOML configuration (default: {DEFAULT_RUN_CONFIG.name})")
    parser.add_argument("--out", type=Path, default=None, help="run directory (default: runs/<config name>)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats for every method (overrides [run] and [finetune] repeats)")
    parser.add_argument("--seed", type=int, default=None, help="seed of every random choice")
    parser.add_argument("--models", default=None, help=f"comma-separated subset of: {','.join(METHODS)}")
    parser.add_argument("--data", default=None, help="dataset name (celebrities) or folder root/<label>/<image>")
    parser.add_argument("--aligned", action="store_true", default=None, help="images are already face crops: skip MTCNN detection")
    parser.add_argument("--weights", default=None, help="FaceNet weights: registry name or a keras-facenet-style h5 (default: the registry's)")
    parser.add_argument("--skip-bad", action="store_true", default=None,
                        help="skip non-image files and empty class folders (listed in skipped.txt) instead of stopping")
    parser.add_argument("--memory-sizes", default=None, metavar="N,N,...",
                        help="memory sizes to sweep (overrides [memory] memory_size): one model per bounded method and size")
    parser.add_argument("--embeddings", type=Path, default=None,
                        help="npz from `kshot embed`: run the methods that need no images on it, no FaceNet")
    parser.add_argument("--no-figures", action="store_true", help="write tables only (faster; `kshot report DIR` draws them later)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(handler=handle_run)


def resolve_run_config(args):
    from experiments import config as cfg
    from experiments.methods import needs_images

    config_path = args.config or DEFAULT_RUN_CONFIG
    config = cfg.load_config(config_path)
    models = None
    if args.models is not None:
        models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    elif args.embeddings is not None:
        # Precomputed embeddings leave nothing to fine-tune: keep the methods that need no images.
        usable = tuple(m for m in METHODS if not needs_images(m))
        models = tuple(m for m in config.run.models if m in usable) or usable
    sizes = None
    if args.memory_sizes is not None:
        try:
            sizes = [int(s) for s in args.memory_sizes.split(",") if s.strip()]
        except ValueError:
            raise cfg.ConfigError(f"--memory-sizes must be comma-separated integers, got {args.memory_sizes!r}") from None
    config = cfg.with_overrides(
        config,
        origin=f"{config_path} with command-line options",
        memory__memory_size=sizes,
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
    from experiments.config import config_repeats_note
    from experiments.methods import needs_images
    from experiments.run_data import prepare_data
    from experiments.runner import run_experiment

    started = time.perf_counter()
    config, out_dir = resolve_run_config(args)
    print(f"kshot run: writing to {out_dir}")
    print(config_repeats_note(config))
    need_crops = any(needs_images(m) for m in config.run.models)
    data = prepare_data(config.data, need_crops=need_crops, progress=not args.no_progress)
    outcome = run_experiment(config, out_dir, data, progress=not args.no_progress, make_figures=not args.no_figures)
    print()
    print("accuracy, mean [95% CI] over repeats, by shots:")
    print(report.accuracy_table(outcome["summary"]).to_string())
    print()
    for model, t in outcome["timing"].items():
        print(f"{model}: {t['repeats']} repeats ({t['computed']} computed now), {t['seconds_per_repeat']:.3f} s per repeat")
    print(f"total wall time {time.perf_counter() - started:.1f} s; summary in {out_dir / 'summary.md'}")
    return 0


# ---------------------------------------------------------------- kshot embed


def add_embed(subparsers) -> None:
    parser = subparsers.add_parser(
        "embed", help="align and embed a dataset with the pretrained FaceNet into an npz",
        description=EMBED_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", required=True, help="'celebrities' or a folder laid out as root/<label>/<image>")
    parser.add_argument("--out", required=True, type=Path, help="npz file to write")
    parser.add_argument("--aligned", action="store_true", help="images are already face crops: no detection, only resize")
    parser.add_argument("--weights", default=None, help="registry name or a keras-facenet-style h5 (default: the registry's)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--skip-bad", action="store_true", help="skip non-image files and empty class folders instead of stopping")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the crop and embedding caches")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(handler=handle_embed)


def handle_embed(args) -> int:
    import numpy as np

    from experiments.datasets import load_image_dataset
    from facenet_tf import Embedder, load_pretrained
    from kshot_io import atomic_write

    if args.out.suffix != ".npz":
        raise ValueError(f"--out must name an .npz file, got {args.out}")
    dataset = load_image_dataset(args.data, skip_bad=args.skip_bad)
    embedder = Embedder.from_pretrained(load_pretrained(args.weights), batch_size=args.batch_size,
                                        progress=not args.quiet)
    result = embedder.embed_paths([str(p) for p in dataset.paths], aligned=args.aligned, use_cache=not args.no_cache)
    index_of = {str(p): i for i, p in enumerate(dataset.paths)}
    kept = [index_of[p] for p in result.kept_paths]
    skipped = [f"{p}: {reason}" for p, reason in [*dataset.skipped, *result.skipped]]
    arrays = {
        "embeddings": result.embeddings.astype(np.float32),
        "labels": np.array([dataset.labels[i] for i in kept], dtype=str),
        "paths": np.array(result.kept_paths, dtype=str),
        "skipped": np.array(skipped, dtype=str),
    }
    if dataset.split is not None:
        arrays["split"] = np.array([dataset.split[i] for i in kept], dtype=str)
    with atomic_write(args.out, "wb") as handle:
        np.savez(handle, **arrays)
    for line in skipped:
        print(f"kshot embed: skipped {line}", file=sys.stderr)
    print(f"kshot embed: wrote {len(kept)} embeddings of {len(set(arrays['labels']))} labels to {args.out} "
          f"({len(skipped)} skipped)", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- kshot report


def add_report(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="rebuild summary.csv/.md and figures/ of a `kshot run` directory",
        description="Rebuild the summary table and the figures of a run from its files alone.",
    )
    parser.add_argument("run_dir", type=Path, help="a directory written by `kshot run`")
    parser.add_argument("--no-figures", action="store_true", help="tables only")
    parser.set_defaults(handler=handle_report)


def handle_report(args) -> int:
    from experiments import report

    if not args.run_dir.is_dir():
        raise FileNotFoundError(f"run directory {args.run_dir} does not exist")
    built = report.write_report(args.run_dir, make_figures=not args.no_figures)
    print(report.accuracy_table(built["summary"]).to_string())
    print(f"wrote {args.run_dir / 'summary.csv'}, {args.run_dir / 'summary.md'} and {len(built['figures'])} figure files")
    return 0


# ---------------------------------------------------------------- kshot omniglot train | eval


def add_omniglot(subparsers) -> None:
    parser = subparsers.add_parser(
        "omniglot", help="train and evaluate the memory on Omniglot (Kaiser et al. 2017)",
        description="Episodic training of a small conv embedder with the Kaiser memory loss on Omniglot, "
        "and N-way k-shot evaluation of the memory readout vs store-all 1-NN.",
    )
    commands = parser.add_subparsers(dest="omniglot_command", metavar="ACTION")
    parser.set_defaults(handler=lambda args: parser.print_help() or 2)
    data_help = "Omniglot zips or folders (default: $KSHOT_OMNIGLOT or ../shared/omniglot)"

    train = commands.add_parser("train", help="train (or resume) an embedder with the memory loss")
    train.add_argument("--data", nargs="+", default=None, metavar="PATH", help=data_help)
    train.add_argument("--out", required=True, metavar="DIR", help="run directory; an existing one is resumed")
    source = train.add_mutually_exclusive_group()
    source.add_argument("--config", metavar="TOML", help="settings file (see experiments/configs/omniglot_*.toml)")
    source.add_argument("--preset", choices=OMNIGLOT_PRESETS, default=None, help=f"named settings (default: {DEFAULT_OMNIGLOT_PRESET})")
    train.add_argument("--steps", type=int, default=None, help="total optimizer updates (overrides [train] steps)")
    train.add_argument("--seed", type=int, default=None, help="seed of every random choice (overrides [train] seed)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    train.set_defaults(handler=handle_omniglot_train)

    evaluate = commands.add_parser("eval", help="N-way k-shot accuracy with 95%% CIs on held-out alphabets")
    evaluate.add_argument("--checkpoint", required=True, metavar="DIR", help="a run directory from `omniglot train`")
    evaluate.add_argument("--data", nargs="+", default=None, metavar="PATH", help=data_help)
    evaluate.add_argument("--ways", type=int, nargs="+", default=[5], help="classes per task (one or more)")
    evaluate.add_argument("--shots", type=int, nargs="+", default=[1], help="labelled examples per class (one or more)")
    evaluate.add_argument("--episodes", type=int, default=1000, help="test tasks per setting")
    evaluate.add_argument("--queries", type=int, default=1, help="query images per class per task")
    evaluate.add_argument("--per-shot-episodes", type=int, default=None,
                          help="Kaiser-style episodes for per-shot accuracy (default: --episodes)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the test tasks")
    evaluate.add_argument("--no-untrained", action="store_true", help="skip the untrained-embedder floor")
    evaluate.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    evaluate.set_defaults(handler=handle_omniglot_eval)

    embed = commands.add_parser("embed", help="the trained embedder's keys of held-out drawings, as a `kshot run --embeddings` npz")
    embed.add_argument("--checkpoint", required=True, metavar="DIR", help="a run directory from `omniglot train`")
    embed.add_argument("--out", required=True, type=Path, help="npz file to write")
    embed.add_argument("--data", nargs="+", default=None, metavar="PATH", help=data_help)
    embed.add_argument("--split", choices=("test", "train"), default="test",
                       help="test: the run's held-out alphabets (default); train: its training classes (with rotations if it added them)")
    embed.set_defaults(handler=handle_omniglot_embed)


def handle_omniglot_train(args) -> int:
    from experiments import config as cfg
    from experiments.omniglot.train import train

    if args.config:
        base = cfg.load_config(args.config, cfg.OmniglotConfig)
    else:
        base = cfg.load_omniglot_preset(args.preset or DEFAULT_OMNIGLOT_PRESET)
    config = cfg.with_overrides(base, origin="command line", train__steps=args.steps, train__seed=args.seed)
    summary = train(config, args.out, sources=args.data, progress=not args.no_progress)
    print(f"trained to step {summary['steps']} in {summary['seconds']} s; checkpoints in {args.out}")
    return 0


def handle_omniglot_embed(args) -> int:
    from experiments.omniglot.evaluate import export_embeddings

    done = export_embeddings(args.checkpoint, args.out, sources=args.data, split=args.split)
    print(f"kshot omniglot embed: {done['images']} drawings of {done['characters']} characters ({done['split']} split, "
          f"step {done['step']}, {done['key_dim']}-d keys) to {args.out}")
    return 0


def handle_omniglot_eval(args) -> int:
    from experiments.omniglot.evaluate import evaluate_run, results_markdown
    from kshot_io import write_text_atomic

    results = evaluate_run(
        args.checkpoint, sources=args.data, ways=args.ways, shots=args.shots, episodes=args.episodes,
        queries=args.queries, per_shot_episodes=args.per_shot_episodes, seed=args.seed,
        untrained=not args.no_untrained, progress=True,
    )
    print(results_markdown(results))
    if args.json:
        write_text_atomic(Path(args.json), json.dumps(results, indent=2) + "\n")
    return 0


# ---------------------------------------------------------------- entry point

SUBCOMMANDS = (add_run, add_embed, add_report, add_omniglot)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kshot",
        description="Memory-augmented k-shot learning: Kaiser memory vs store-all 1-NN on FaceNet and Omniglot.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        # `kshot` alone behaves like `kshot run`: the default demo.
        args = parser.parse_args(["run", *(argv or [])])
    try:
        return int(args.handler(args) or 0)
    except (ValueError, FileNotFoundError, PermissionError) as error:
        print(f"kshot {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"kshot {args.command}: interrupted; finished work is on disk, run the same command to resume.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
