"""The `kshot` command: every subcommand, in one module.

    kshot run        the k-shot face experiment (no arguments: the celebrity demo)
    kshot embed      a dataset's FaceNet embeddings in one npz
    kshot report     rebuild a run's summary and figures from its files
    kshot sweep      a grid of runs, on a local process pool or a Ray cluster
    kshot omniglot   train | eval | compare | lake | stream | curve | ship: the memory on Omniglot
    kshot enroll     add people's photos to a face gallery file
    kshot identify   name the people in photos from a gallery, or answer "unknown"
    kshot calibrate  the gallery's open-set threshold: TAR at FAR, EER, ROC figure

Handlers import TensorFlow (and anything that imports it) inside their bodies, so
that `kshot --help` stays fast. Library code raises ValueError, FileNotFoundError or
PermissionError with messages written for the user; `main` prints them without a
traceback and returns 2.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

from experiments.episodic.settings import (
    DEFAULT_OMNIGLOT_PRESET,
    HELD_OUT_SPLITS,
    OMNIGLOT_PRESETS,
)
from experiments.episodic.settings import READOUTS as COMPARED_READOUTS
from experiments.faces.methods import METHODS
from experiments.faces.open_set import DEFAULT_FAR, check_far
from experiments.faces.settings import DEFAULT_RUN_CONFIG
from experiments.gallery.storage import DEFAULT_LOCK_TIMEOUT

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
    parser.add_argument("--repeats", type=int, default=None,
                        help="repeats of the frozen-embedder methods ([run] repeats); on an existing run, more repeats are added")
    parser.add_argument("--finetune-repeats", type=int, default=None,
                        help="repeats of the fine-tuned methods ([finetune] repeats); each costs seconds")
    parser.add_argument("--seed", type=int, default=None, help="seed of every random choice")
    parser.add_argument("--strangers", type=int, default=None,
                        help="open set: hold out this many identities per repeat, never fed, to be rejected "
                             "(overrides [open_set] strangers; 0 = closed set)")
    parser.add_argument("--models", default=None, help=f"comma-separated subset of: {','.join(METHODS)}")
    parser.add_argument("--data", default=None, help="dataset name (celebrities, celebrities_lowres) or folder root/<label>/<image>")
    parser.add_argument("--aligned", action="store_true", default=None, help="images are already face crops: skip MTCNN detection")
    parser.add_argument("--weights", default=None, help="FaceNet weights: registry name or a keras-facenet-style h5 (default: the registry's)")
    parser.add_argument("--skip-bad", action="store_true", default=None,
                        help="skip non-image files and empty class folders (listed in skipped.txt) instead of stopping")
    parser.add_argument("--memory-sizes", default=None, metavar="N,N,...",
                        help="memory sizes to sweep (overrides [memory] memory_size): one model per bounded method and size")
    parser.add_argument("--embeddings", type=Path, default=None,
                        help="npz from `kshot embed`: run the methods that need no images on it, no FaceNet")
    parser.add_argument("--allow-duplicates", action="store_true", default=None,
                        help="run even when the same image content is filed under two classes")
    parser.add_argument("--no-figures", action="store_true", help="write tables only (faster; `kshot report DIR` draws them later)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(handler=handle_run)


def resolve_run_config(args):
    from experiments.faces import settings as cfg
    from experiments.faces.methods import needs_images

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
        open_set__strangers=args.strangers,
        run__repeats=args.repeats,
        finetune__repeats=args.finetune_repeats,
        run__models=models,
        data__source=args.data,
        data__aligned=args.aligned,
        data__skip_bad=args.skip_bad,
        data__weights=args.weights,
        data__embeddings=str(args.embeddings) if args.embeddings is not None else None,
        data__allow_duplicates=args.allow_duplicates,
    )
    out = args.out or Path("runs") / Path(config_path).stem
    return config, Path(out)


def handle_run(args) -> int:
    from experiments.core.run_dir import GROWABLE, check_run_dir
    from experiments.faces import report
    from experiments.faces.methods import needs_images
    from experiments.faces.run_data import prepare_data
    from experiments.faces.runner import run_experiment
    from experiments.faces.settings import config_repeats_note

    started = time.perf_counter()
    config, out_dir = resolve_run_config(args)
    # Everything that can be refused without images is refused before FaceNet is loaded.
    check_run_dir(out_dir, config, may_change=GROWABLE)
    print(f"kshot run: writing to {out_dir}")
    print(config_repeats_note(config))
    need_crops = any(needs_images(m) for m in config.run.models)
    data = prepare_data(config.data, need_crops=need_crops, progress=not args.no_progress)
    outcome = run_experiment(config, out_dir, data, progress=not args.no_progress, make_figures=not args.no_figures)
    print()
    print(f"accuracy, mean [95% interval] over repeats, by shots ({report.metrics.ACCURACY_METHOD}):")
    print(report.accuracy_table(outcome["summary"]).to_string())
    if outcome.get("open_set") is not None:
        print()
        print(f"open set ({config.open_set.strangers} identities held out, threshold at FAR {config.open_set.far:g} "
              "of the fed items): accuracy on known / rejection of strangers, mean over repeats, by shots:")
        print(report.open_set_table(outcome["open_set"]).to_string())
    if config.run.compare_with == "blog":
        from experiments.studies.blog_reference import beside_the_blog

        print()
        print("mean accuracy in percent beside the blog's published curves (its 12 x 8 images):")
        print(beside_the_blog(outcome["summary"]).to_string())
    print()
    verdicts = outcome["paired"]
    if not verdicts.empty:
        print(f"against {report.REFERENCE}, paired over the same shuffles (details in paired.csv):")
        for model, rows in verdicts.groupby("model", sort=False):
            wins = rows[rows.verdict == "wins"].shots.tolist()
            losses = rows[rows.verdict == "loses"].shots.tolist()
            print(f"  {model}: wins at shots {wins or 'none'}, loses at shots {losses or 'none'}, "
                  f"within noise elsewhere")
        print()
    for model, t in outcome["timing"].items():
        print(f"{model}: {t['repeats']} repeats ({t['computed']} computed now), {t['seconds_per_repeat']:.3f} s per repeat")
    for line in data.skipped:
        print(f"skipped {line}")
    for line in data.notes:
        print(line)
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

    from experiments.faces.datasets import load_image_dataset
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
    from experiments.faces import report

    if not args.run_dir.is_dir():
        raise FileNotFoundError(f"run directory {args.run_dir} does not exist")
    progress = report.assemble_tables(args.run_dir)
    if progress:
        print(progress)
    built = report.write_report(args.run_dir, make_figures=not args.no_figures)
    print(report.accuracy_table(built["summary"]).to_string())
    print(f"wrote {args.run_dir / 'summary.csv'}, {args.run_dir / 'summary.md'} and {len(built['figures'])} figure files")
    return 0


# ---------------------------------------------------------------- kshot omniglot train | eval | compare | lake | stream | curve | ship


def add_omniglot(subparsers) -> None:
    parser = subparsers.add_parser(
        "omniglot", help="train and evaluate the memory on Omniglot (Kaiser et al. 2017)",
        description="Train a small conv embedder on Omniglot (classifier pre-training, then the Kaiser memory "
        "loss on episodes) and evaluate the memory readout vs store-all 1-NN and prototypes: N-way k-shot "
        "tasks, Lake et al.'s one-shot runs, and a life-long stream. Without --checkpoint, evaluation uses "
        "the checkpoint shipped in the repository.",
    )
    commands = parser.add_subparsers(dest="omniglot_command", metavar="ACTION")
    parser.set_defaults(handler=lambda args: parser.print_help() or 2)
    data_help = "Omniglot zips or folders (default: $KSHOT_OMNIGLOT or ../shared/omniglot)"

    train = commands.add_parser("train", help="train (or resume) an embedder: classifier pre-training, then the memory loss")
    train.add_argument("--data", nargs="+", default=None, metavar="PATH", help=data_help)
    train.add_argument("--out", required=True, metavar="DIR", help="run directory; an existing one is resumed")
    source = train.add_mutually_exclusive_group()
    source.add_argument("--config", metavar="TOML", help="settings file (see experiments/configs/omniglot_*.toml)")
    source.add_argument("--preset", choices=OMNIGLOT_PRESETS, default=None, help=f"named settings (default: {DEFAULT_OMNIGLOT_PRESET})")
    train.add_argument("--steps", type=int, default=None, help="total optimizer updates (overrides [train] steps)")
    train.add_argument("--seed", type=int, default=None, help="seed of every random choice (overrides [train] seed)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    train.set_defaults(handler=handle_omniglot_train)

    split_help = ("what to measure: test, the checkpoint's held-out test alphabets (reported); validation, its "
                  "validation alphabets (for choosing recipes); unseen, every drawing of --data, a character set it "
                  "never had (alphabets it trained or validated on are refused)")
    evaluate = commands.add_parser("eval", help="N-way k-shot accuracy with 95%% CIs on held-out alphabets")
    checkpoint_help = "a run directory from `omniglot train` (default: the checkpoint shipped in the repository)"
    evaluate.add_argument("--checkpoint", default=None, metavar="DIR", help=checkpoint_help)
    evaluate.add_argument("--data", nargs="+", default=None, metavar="PATH", help=data_help)
    evaluate.add_argument("--ways", type=int, nargs="+", default=[5], help="classes per task (one or more)")
    evaluate.add_argument("--shots", type=int, nargs="+", default=[1], help="labelled examples per class (one or more)")
    evaluate.add_argument("--episodes", type=int, default=1000, help="test tasks per setting")
    evaluate.add_argument("--queries", type=int, default=1, help="query images per class per task")
    evaluate.add_argument("--per-shot-episodes", type=int, default=None,
                          help="Kaiser-style episodes for per-shot accuracy (default: --episodes)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the test tasks")
    evaluate.add_argument("--no-untrained", action="store_true", help="skip the untrained-embedder floor")
    evaluate.add_argument("--split", choices=HELD_OUT_SPLITS, default="test", help=split_help)
    evaluate.add_argument("--running-mean", action="store_true",
                          help="score the Kaiser memory with count-weighted merges ([memory] running_mean, beyond the "
                               "paper) instead of the checkpoint's setting")
    within_help = ("draw the classes of every task (and eval's per-shot episodes) from one alphabet: look-alike "
                   "rivals, as in Lake et al.'s runs, at any N-way k-shot; harder than mixed tasks")
    evaluate.add_argument("--within-alphabet", action="store_true", help=within_help)
    evaluate.add_argument("--by-alphabet", action="store_true",
                          help="also report the trained embedder's accuracy by the query's alphabet")
    evaluate.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    evaluate.set_defaults(handler=handle_omniglot_eval)

    compare = commands.add_parser(
        "compare", help="two checkpoints on the same held-out tasks: paired difference of accuracy with a 95%% CI")
    compare.add_argument("--checkpoint", default=None, metavar="DIR", help=checkpoint_help)
    compare.add_argument("--reference", required=True, metavar="DIR",
                         help="the checkpoint (run directory or shipped layout) to subtract")
    compare.add_argument("--data", nargs="+", default=None, metavar="PATH", help=data_help)
    compare.add_argument("--ways", type=int, nargs="+", default=[5, 20], help="classes per task (one or more)")
    compare.add_argument("--shots", type=int, nargs="+", default=[1, 5], help="labelled examples per class (one or more)")
    compare.add_argument("--episodes", type=int, default=1000, help="test tasks per setting")
    compare.add_argument("--readout", choices=COMPARED_READOUTS, default="memory",
                         help="the readout both embedders are scored with")
    compare.add_argument("--seed", type=int, default=0, help="seed of the test tasks (the same as eval's)")
    compare.add_argument("--split", choices=HELD_OUT_SPLITS, default="test", help=split_help)
    compare.add_argument("--within-alphabet", action="store_true", help=within_help)
    compare.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    compare.set_defaults(handler=handle_omniglot_compare)

    lake = commands.add_parser("lake", help="Lake et al.'s 20 one-shot runs: mean accuracy and error rate over runs")
    lake.add_argument("--runs", required=True, metavar="PATH",
                      help="the all_runs folder or zip (runNN/training, runNN/test, runNN/class_labels.txt)")
    lake.add_argument("--checkpoint", default=None, metavar="DIR", help=checkpoint_help)
    lake.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    lake.set_defaults(handler=handle_omniglot_lake)

    stream = commands.add_parser("stream", help="every held-out drawing streamed once through fixed-size memories")
    stream.add_argument("--checkpoint", default=None, metavar="DIR", help=checkpoint_help)
    stream.add_argument("--data", nargs="+", default=None, metavar="PATH", help=data_help)
    stream.add_argument("--sizes", type=int, nargs="+", default=None, metavar="SLOTS",
                        help="memory / FIFO sizes (default: 1, 2, 4 and 8 slots per held-out character)")
    stream.add_argument("--seed", type=int, default=0, help="seed of the stream order")
    stream.add_argument("--split", choices=("test", "unseen"), default="test", help=split_help)
    stream.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    stream.set_defaults(handler=handle_omniglot_stream)

    curve = commands.add_parser("curve", help="held-out accuracy against training time, from a run's logs")
    curve.add_argument("--checkpoint", default=None, metavar="DIR", help=checkpoint_help)
    curve.add_argument("--png", metavar="FILE", help="also draw the curve into this PNG")
    curve.set_defaults(handler=handle_omniglot_curve)

    ship = commands.add_parser("ship", help="export a run's latest checkpoint in the small float16 layout the repository ships")
    ship.add_argument("--run", required=True, metavar="DIR", help="a run directory from `omniglot train`")
    ship.add_argument("--out", default=None, metavar="DIR", help="destination (default: experiments/episodic/shipped)")
    ship.add_argument("--command", required=True, help="the exact command that trained the run, kept in the manifest")
    ship.add_argument("--float32", action="store_true", help="keep float32 weights")
    ship.set_defaults(handler=handle_omniglot_ship)

    embed = commands.add_parser("embed", help="the trained embedder's keys of held-out drawings, as a `kshot run --embeddings` npz")
    embed.add_argument("--checkpoint", required=True, metavar="DIR", help="a run directory from `omniglot train`")
    embed.add_argument("--out", required=True, type=Path, help="npz file to write")
    embed.add_argument("--data", nargs="+", default=None, metavar="PATH", help=data_help)
    embed.add_argument("--split", choices=("test", "unseen", "train"), default="test",
                       help="test: the run's held-out alphabets (default); unseen: every drawing of --data, a character "
                            "set the run never had; train: its training classes (with rotations if it added them)")
    embed.set_defaults(handler=handle_omniglot_embed)


def handle_omniglot_train(args) -> int:
    from experiments.core import settings as cfg
    from experiments.episodic.settings import OmniglotConfig, load_omniglot_preset
    from experiments.episodic.training.train import train

    if args.config:
        base = cfg.load_config(args.config, OmniglotConfig)
    else:
        base = load_omniglot_preset(args.preset or DEFAULT_OMNIGLOT_PRESET)
    config = cfg.with_overrides(base, origin="command line", train__steps=args.steps, train__seed=args.seed)
    summary = train(config, args.out, sources=args.data, progress=not args.no_progress)
    print(f"trained to step {summary['steps']} in {summary['seconds']} s; checkpoints in {args.out}")
    return 0


def handle_omniglot_embed(args) -> int:
    from experiments.episodic.evaluation.evaluate import export_embeddings

    done = export_embeddings(args.checkpoint, args.out, sources=args.data, split=args.split)
    print(f"kshot omniglot embed: {done['images']} drawings of {done['characters']} characters ({done['split']} split, "
          f"step {done['step']}, {done['key_dim']}-d keys) to {args.out}")
    return 0


def handle_omniglot_eval(args) -> int:
    from experiments.episodic.evaluation.evaluate import evaluate_run, results_markdown
    from kshot_io import write_text_atomic

    results = evaluate_run(
        checkpoint_or_shipped(args.checkpoint), sources=args.data, ways=args.ways, shots=args.shots, episodes=args.episodes,
        queries=args.queries, per_shot_episodes=args.per_shot_episodes, seed=args.seed,
        untrained=not args.no_untrained, progress=True, by_alphabet=args.by_alphabet,
        split=args.split, running_mean=args.running_mean, within_alphabet=args.within_alphabet,
    )
    print(results_markdown(results))
    if args.json:
        write_text_atomic(Path(args.json), json.dumps(results, indent=2) + "\n")
    return 0


def handle_omniglot_compare(args) -> int:
    from experiments.episodic.evaluation.compare import (
        compare_checkpoints,
        comparison_markdown,
    )
    from kshot_io import write_text_atomic

    results = compare_checkpoints(
        checkpoint_or_shipped(args.checkpoint), args.reference, sources=args.data, ways=args.ways, shots=args.shots,
        episodes=args.episodes, readout=args.readout, seed=args.seed, split=args.split,
        within_alphabet=args.within_alphabet,
    )
    print(comparison_markdown(results))
    if args.json:
        write_text_atomic(Path(args.json), json.dumps(results, indent=2) + "\n")
    return 0


def checkpoint_or_shipped(path: str | None) -> str:
    from experiments.episodic.checkpoints import SHIPPED_DIR

    return path if path is not None else str(SHIPPED_DIR)


def handle_omniglot_lake(args) -> int:
    from experiments.episodic.checkpoints import restore_embedder
    from experiments.episodic.evaluation.lake import (
        evaluate_runs,
        lake_markdown,
        load_runs,
    )
    from kshot_io import write_text_atomic

    checkpoint = checkpoint_or_shipped(args.checkpoint)
    config, embedder, _ = restore_embedder(checkpoint)
    results = evaluate_runs(embedder, config, load_runs(args.runs, config.data.image_size))
    print(lake_markdown(results, checkpoint))
    if args.json:
        write_text_atomic(Path(args.json), json.dumps(results, indent=2) + "\n")
    return 0


def handle_omniglot_stream(args) -> int:
    from experiments.episodic.evaluation.stream import run_stream, stream_markdown
    from kshot_io import write_text_atomic

    results = run_stream(checkpoint_or_shipped(args.checkpoint), sources=args.data, sizes=args.sizes, seed=args.seed,
                         split=args.split)
    print(stream_markdown(results))
    if args.json:
        write_text_atomic(Path(args.json), json.dumps(results, indent=2) + "\n")
    return 0


def handle_omniglot_curve(args) -> int:
    from experiments.episodic.evaluation.curves import (
        curve_markdown,
        plot_curve,
        read_curve,
    )

    records = read_curve(checkpoint_or_shipped(args.checkpoint))
    print(curve_markdown(records))
    if args.png:
        plot_curve(records, args.png, title="Omniglot recipe, validation alphabets")
    return 0


def handle_omniglot_ship(args) -> int:
    from experiments.episodic.checkpoints import SHIPPED_DIR, export_run

    manifest = export_run(args.run, args.out or SHIPPED_DIR, args.command, dtype="float32" if args.float32 else "float16")
    print(json.dumps(manifest, indent=2))
    return 0


# ---------------------------------------------------------------- kshot sweep

SWEEP_DESCRIPTION = """\
Many `kshot run` configurations at once: a sweep file names a base run configuration
and a grid (and optionally explicit cells) over any of its keys; each cell is an
ordinary run directory under DIR/cells/, named from its settings. Cells already
complete are skipped and interrupted ones resume, so the same command continues a
sweep. A cell that fails is recorded (DIR/status/) and the sweep goes on. The merged
table is DIR/sweep.csv, the figures DIR/figures/. See docs/SWEEPS.md.
"""


def add_sweep(subparsers) -> None:
    parser = subparsers.add_parser(
        "sweep", help="run a grid of configurations, locally or on a Ray cluster",
        description=SWEEP_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, required=True, help="sweep file (TOML; see docs/SWEEPS.md)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="sweep directory; an existing one is resumed")
    parser.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                        help="run the cells as Ray tasks: on a new local Ray instance, or on the cluster at ADDRESS "
                             "(host:port of `ray start --head`, or auto)")
    parser.add_argument("--shared", action="store_true",
                        help="with --ray: DIR is a path every node mounts; workers write there instead of sending files back")
    parser.add_argument("--workers", type=int, default=None, help="local pool size (default: the number of cores)")
    parser.add_argument("--only", default=None, metavar="CELLS", help="comma-separated cell names to run (the rest are left as they are)")
    parser.add_argument("--dry-run", action="store_true", help="check the sweep file and list its cells; run nothing")
    parser.add_argument("--no-figures", action="store_true", help="tables only, for the cells and the sweep")
    parser.set_defaults(handler=handle_sweep)


def handle_sweep(args) -> int:
    from experiments.sweeps.execute import LocalExecutor, RayExecutor, run_sweep
    from experiments.sweeps.spec import load_sweep

    sweep = load_sweep(args.config)
    if args.dry_run:
        for cell in sweep.cells:
            print(cell.name)
        print(f"{len(sweep.cells)} cell(s); nothing run (--dry-run)")
        return 0
    if args.shared and args.ray is None:
        raise ValueError("--shared only applies with --ray (local workers always write into DIR)")
    if args.workers is not None and args.ray is not None:
        raise ValueError("--workers sizes the local pool; with --ray, Ray places the cells by [resources] num_cpus in the sweep file")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    if args.ray is not None:
        executor = RayExecutor(args.ray or None, sweep.resources, shared=args.shared)
    else:
        executor = LocalExecutor(args.workers, max_retries=sweep.resources.max_retries)
    only = [name.strip() for name in args.only.split(",") if name.strip()] if args.only else None
    outcome = run_sweep(sweep, args.out, executor, only=only, make_figures=not args.no_figures)
    print(outcome["summary"])
    print(f"merged table: {args.out / 'sweep.csv'}; summary: {args.out / 'sweep.md'}")
    return 1 if outcome["failed"] else 0


# ---------------------------------------------------------------- kshot enroll | identify | calibrate

GALLERY_DESCRIPTION = """\
The memory as a persistent face gallery (experiments/gallery/gallery.py):

    kshot enroll --data FOLDER --gallery FILE [--memory-size N | --store-all] [--aligned] [--skip-bad]
    kshot identify --gallery FILE PATHS... [--threshold T] [--out results.csv] [--learn]
    kshot calibrate --gallery FILE [--far 0.001] [--figure STEM]

FOLDER is laid out as FOLDER/<name>/<photo>. Enrolling again adds people or photos to
the same gallery (the same embedder is enforced).
"""


def _gallery_options(parser) -> None:
    parser.add_argument("--gallery", required=True, type=Path, help="the gallery file (.npz)")
    parser.add_argument("--weights", default=None,
                        help="FaceNet weights: registry name or a keras-facenet-style h5 (default: the gallery's, "
                             "or 20170512-110547 for a new gallery)")
    parser.add_argument("--lock-timeout", type=float, default=DEFAULT_LOCK_TIMEOUT,
                        help="seconds to wait while another command writes the gallery")


def add_gallery(subparsers) -> None:
    enroll = subparsers.add_parser("enroll", help="embed a folder of people's photos into a gallery file",
                                   description=GALLERY_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    _gallery_options(enroll)
    enroll.add_argument("--data", required=True, help="folder laid out as FOLDER/<name>/<photo>")
    size = enroll.add_mutually_exclusive_group()
    size.add_argument("--memory-size", type=int, default=None,
                      help="Kaiser memory slots of a new gallery (default 1024)")
    size.add_argument("--store-all", action="store_true", help="a new gallery keeps every photo (1-NN) instead")
    enroll.add_argument("--far", type=float, default=None,
                        help=f"target false-accept rate of the threshold (default {DEFAULT_FAR}, or the gallery's)")
    enroll.add_argument("--aligned", action="store_true", help="photos are already face crops: no detection")
    enroll.add_argument("--skip-bad", action="store_true", help="skip non-image files and empty folders")
    enroll.set_defaults(handler=run_enroll)

    identify = subparsers.add_parser("identify", help="name the people in photos, or say 'unknown'")
    _gallery_options(identify)
    identify.add_argument("paths", nargs="+", type=Path, help="photos or folders of photos")
    identify.add_argument("--threshold", type=float, default=None, help="similarity threshold (default: the gallery's)")
    identify.add_argument("--out", type=Path, default=None, help="write the answers as CSV")
    identify.add_argument("--aligned", action="store_true", help="photos are already face crops: no detection")
    identify.add_argument("--learn", action="store_true",
                          help="write the accepted answers back into the gallery's memory (life-long mode)")
    identify.set_defaults(handler=run_identify)

    calibrate = subparsers.add_parser("calibrate", help="open-set threshold: TAR at FAR, EER, ROC figure")
    _gallery_options(calibrate)
    calibrate.add_argument("--far", type=float, default=None, help="target false-accept rate (default: the gallery's)")
    calibrate.add_argument("--figure", type=Path, default=None,
                           help="ROC figure stem, written as .png and .svg (default: next to the gallery)")
    calibrate.set_defaults(handler=run_calibrate)


def _check_gallery_exists(gallery: Path) -> None:
    """Before FaceNet is loaded (seconds), so a mistyped path fails at once."""
    if not gallery.is_file():
        raise FileNotFoundError(f"gallery {gallery} does not exist; create it with `kshot enroll --gallery {gallery}`")


def _gallery_embedder(args, gallery_path: Path):
    """The embedder to use: the given weights, or the existing gallery's, checked against it."""
    from experiments.faces.embedder import FaceEmbedder, embedder_for
    from experiments.gallery.storage import read_gallery

    if gallery_path.exists():
        header, _ = read_gallery(gallery_path)
        return embedder_for(header["identity"], weights=args.weights)
    return FaceEmbedder(args.weights)


def run_enroll(args) -> int:
    from experiments.gallery.gallery import (
        DEFAULT_MEMORY_SIZE,
        Gallery,
        embed_named_photos,
    )

    if args.memory_size is not None and args.memory_size < 1:
        raise ValueError(f"--memory-size must be >= 1, got {args.memory_size}")
    if args.far is not None:
        check_far(args.far)
    exists = args.gallery.exists()
    if exists and (args.memory_size is not None or args.store_all):
        raise ValueError(f"{args.gallery} exists: --memory-size and --store-all only apply to a new gallery; "
                         "leave them out to add to it, or choose another --gallery")
    embedder = _gallery_embedder(args, args.gallery)
    embeddings, names, skipped = embed_named_photos(embedder, args.data, aligned=args.aligned,
                                                    skip_bad=args.skip_bad)
    create = {"memory_size": args.memory_size or DEFAULT_MEMORY_SIZE, "store_all": args.store_all}
    if args.far is not None:
        create["far"] = args.far
    with Gallery.edit(args.gallery, embedder=embedder, create=create, timeout=args.lock_timeout) as gallery:
        written = gallery.enroll_embeddings(embeddings, names)
        if args.far is not None and args.far != gallery.far:
            gallery.recalibrate(args.far)
    for path, reason in skipped:
        print(f"kshot enroll: skipped {path}: {reason}", file=sys.stderr)
    print(f"kshot enroll: {sum(written.values())} photos of {len(written)} people written to {args.gallery}; "
          f"{len(skipped)} skipped")
    print(f"gallery: {gallery.summary()}")
    return 0


def run_identify(args) -> int:
    from experiments.gallery.gallery import UNKNOWN, Gallery, identifications_frame
    from kshot_io import write_text_atomic

    if args.out is not None and args.out.suffix.lower() != ".csv":
        raise ValueError(f"--out must name a .csv file, got {args.out}")
    if args.threshold is not None and not -1.0 <= args.threshold <= 1.0:
        raise ValueError(f"--threshold is a cosine similarity in [-1, 1], got {args.threshold}")
    _check_gallery_exists(args.gallery)
    embedder = _gallery_embedder(args, args.gallery)
    if args.learn:
        with Gallery.edit(args.gallery, embedder=embedder, timeout=args.lock_timeout) as gallery:
            rows = gallery.identify(args.paths, threshold=args.threshold, aligned=args.aligned, learn=True)
    else:
        gallery = Gallery.load(args.gallery, embedder=embedder)
        rows = gallery.identify(args.paths, threshold=args.threshold, aligned=args.aligned)
    frame = identifications_frame(rows)
    if args.out is not None:
        write_text_atomic(args.out, frame.to_csv(index=False, float_format="%.6f"))
    shown = frame.assign(path=[Path(p).name for p in frame["path"]])
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep=""))
    known = sum(1 for r in rows if not r.skipped and r.answer != UNKNOWN)
    unknown = sum(1 for r in rows if r.answer == UNKNOWN)
    threshold = args.threshold if args.threshold is not None else gallery.threshold
    print(f"kshot identify: {len(rows)} photos: {known} named, {unknown} unknown, "
          f"{sum(r.skipped for r in rows)} skipped (threshold {threshold:.4f})"
          + (f"; answers in {args.out}" if args.out else "") + ("; accepted answers learned" if args.learn else ""))
    return 0


def run_calibrate(args) -> int:
    from experiments.faces.open_set import plot_roc
    from experiments.gallery.gallery import Gallery
    from kshot_io import write_text_atomic

    _check_gallery_exists(args.gallery)
    with Gallery.edit(args.gallery, timeout=args.lock_timeout) as gallery:
        calibration = gallery.recalibrate(args.far)
        if calibration is None:
            raise ValueError(f"{args.gallery} holds photos of fewer than two people; calibration needs impostor "
                             "pairs, so enroll another person first")
    stem = args.figure or args.gallery.with_name(args.gallery.stem + "_roc")
    genuine, impostor = gallery.calibration_pairs()
    figures = plot_roc(genuine, impostor, calibration, stem)
    write_text_atomic(Path(stem).with_suffix(".json"), json.dumps(calibration.to_dict(), indent=2) + "\n")
    for line in calibration.lines():
        print(line)
    print(f"kshot calibrate: threshold {calibration.threshold:.4f} stored in {args.gallery}; "
          f"ROC in {figures[0]}")
    return 0


# ---------------------------------------------------------------- entry point

SUBCOMMANDS = (add_run, add_embed, add_report, add_sweep, add_omniglot, add_gallery)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kshot",
        description="Memory-augmented k-shot learning: Kaiser memory vs store-all 1-NN on FaceNet and Omniglot.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


# TensorFlow's native start-up lines (absl's pre-init notice, the oneDNN and CPU-feature
# notices). They are written by C++ straight to file descriptor 2 whenever one of its
# libraries loads, before and regardless of TF_CPP_MIN_LOG_LEVEL, so they can only be
# removed from the stream itself.
NATIVE_NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\)|[IW]\d{4} [\d:. ]+\d+ \S+\.cc:\d+\]"
    rb"|To enable the following instructions: .* rebuild TensorFlow)"
)


def quiet_runtime() -> None:
    """Give Python warnings one line each (no source line), and keep TF's own logging at errors."""
    import warnings

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.formatwarning = lambda message, category, *rest, **kw: f"kshot: warning: {message}\n"
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def filter_native_stderr() -> None:
    """Route file descriptor 2 through a thread that drops NATIVE_NOISE lines and passes the rest.

    Writes are forwarded as they arrive (progress bars stay live); a native log line is
    one write, so it arrives whole. At exit the pipe is closed and drained.
    """
    import atexit
    import threading

    real = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump() -> None:
        with os.fdopen(read_end, "rb", buffering=0) as source:
            while chunk := source.read(65536):
                kept = b"".join(line for line in chunk.splitlines(keepends=True) if not NATIVE_NOISE.match(line))
                if kept:
                    os.write(real, kept)

    thread = threading.Thread(target=pump, name="kshot-stderr", daemon=True)
    thread.start()

    def drain() -> None:
        sys.stderr.flush()
        os.dup2(real, 2)  # the pipe's last writer closes: the pump reads to the end and stops
        thread.join(timeout=2)

    atexit.register(drain)


def main(argv: list[str] | None = None) -> int:
    quiet_runtime()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()  # the demo is `kshot run`; a bare command only explains itself
        return 0
    try:
        return int(args.handler(args) or 0)
    except (ValueError, OSError) as error:
        # Library code raises these with messages written for the user (OSError covers a
        # full disk, a file where a folder must be, and permissions).
        print(f"kshot {args.command}: error: {error}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"kshot {args.command}: error: out of memory; use a smaller [memory] memory_size or dataset", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"kshot {args.command}: interrupted; finished work is on disk, run the same command to resume.", file=sys.stderr)
        return 130


def console_main() -> int:
    """The `kshot` executable: `main` with TensorFlow's native start-up lines filtered out."""
    if os.environ.get("KSHOT_RAW_STDERR") != "1":  # 1: see everything TensorFlow prints (debugging)
        filter_native_stderr()
    return main()


if __name__ == "__main__":
    sys.exit(console_main())
