"""`kshot omniglot train` and `kshot omniglot eval`.

TensorFlow is imported inside the handlers so that `kshot --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from experiments.omniglot.presets import DEFAULT_PRESET, PRESETS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "omniglot",
        help="train and evaluate the memory on Omniglot (Kaiser et al. 2017)",
        description="Episodic training of a small conv embedder with the Kaiser memory loss on Omniglot, "
        "and N-way k-shot evaluation of the memory readout vs store-all 1-NN.",
    )
    commands = parser.add_subparsers(dest="omniglot_command", metavar="ACTION")
    parser.set_defaults(handler=lambda args: parser.print_help() or 2)

    train = commands.add_parser("train", help="train (or resume) an embedder with the memory loss")
    train.add_argument("--data", nargs="+", default=None, metavar="PATH",
                       help="Omniglot zips or folders (default: $KSHOT_OMNIGLOT or ../shared/omniglot)")
    train.add_argument("--out", required=True, metavar="DIR", help="run directory; an existing one is resumed")
    source = train.add_mutually_exclusive_group()
    source.add_argument("--config", metavar="TOML", help="settings file (see experiments/configs/omniglot_*.toml)")
    source.add_argument("--preset", choices=PRESETS, default=None, help=f"named settings (default: {DEFAULT_PRESET})")
    train.add_argument("--steps", type=int, default=None, help="total optimizer updates (overrides the config)")
    train.add_argument("--seed", type=int, default=None, help="seed of every random choice (overrides the config)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser("eval", help="N-way k-shot accuracy with 95%% CIs on held-out alphabets")
    evaluate.add_argument("--checkpoint", default=None, metavar="DIR",
                          help="a run directory from `omniglot train` (default: the checkpoint shipped in the repository)")
    evaluate.add_argument("--data", nargs="+", default=None, metavar="PATH",
                          help="Omniglot zips or folders (default: $KSHOT_OMNIGLOT or ../shared/omniglot)")
    evaluate.add_argument("--ways", type=int, nargs="+", default=[5], help="classes per task (one or more)")
    evaluate.add_argument("--shots", type=int, nargs="+", default=[1], help="labelled examples per class (one or more)")
    evaluate.add_argument("--episodes", type=int, default=1000, help="test tasks per setting (default 1000)")
    evaluate.add_argument("--queries", type=int, default=1, help="query images per class per task")
    evaluate.add_argument("--per-shot-episodes", type=int, default=None,
                          help="Kaiser-style episodes for per-shot accuracy (default: --episodes)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the test tasks")
    evaluate.add_argument("--no-untrained", action="store_true", help="skip the untrained-embedder floor")
    evaluate.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    evaluate.set_defaults(handler=_eval)
    _register_extra(commands)


def _register_extra(commands) -> None:
    lake = commands.add_parser("lake", help="Lake et al.'s 20 one-shot runs: mean accuracy and error rate over runs")
    lake.add_argument("--runs", required=True, metavar="PATH", help="the all_runs folder or zip (runNN/training, runNN/test, class_labels.txt)")
    lake.add_argument("--checkpoint", default=None, metavar="DIR", help="run directory (default: the shipped checkpoint)")
    lake.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    lake.set_defaults(handler=_lake)

    stream = commands.add_parser("stream", help="life-long stream of every held-out drawing through fixed-size memories")
    stream.add_argument("--checkpoint", default=None, metavar="DIR", help="run directory (default: the shipped checkpoint)")
    stream.add_argument("--data", nargs="+", default=None, metavar="PATH",
                        help="Omniglot zips or folders (default: $KSHOT_OMNIGLOT or ../shared/omniglot)")
    stream.add_argument("--sizes", type=int, nargs="+", default=None, metavar="SLOTS",
                        help="memory / FIFO sizes (default: 1, 2, 4 and 8 slots per held-out character)")
    stream.add_argument("--seed", type=int, default=0, help="seed of the stream order")
    stream.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    stream.set_defaults(handler=_stream)

    curve = commands.add_parser("curve", help="held-out accuracy against training time, from a run's logs")
    curve.add_argument("--checkpoint", default=None, metavar="DIR", help="run directory (default: the shipped checkpoint)")
    curve.add_argument("--png", metavar="FILE", help="also draw the curve into this PNG")
    curve.set_defaults(handler=_curve)

    ship = commands.add_parser("ship", help="export a run's latest checkpoint in the small float16 layout the repository ships")
    ship.add_argument("--run", required=True, metavar="DIR", help="a run directory from `omniglot train`")
    ship.add_argument("--out", default=None, metavar="DIR", help="destination (default: experiments/omniglot/shipped)")
    ship.add_argument("--command", required=True, help="the exact command that trained the run, recorded in the manifest")
    ship.add_argument("--float32", action="store_true", help="keep float32 weights")
    ship.set_defaults(handler=_ship)


def _checkpoint_or_shipped(path: str | None) -> str:
    from experiments.omniglot.shipped import SHIPPED_DIR

    return path if path is not None else str(SHIPPED_DIR)


def _lake(args: argparse.Namespace) -> int:
    from experiments.omniglot.lake import evaluate_runs, lake_markdown, load_runs
    from experiments.omniglot.train import restore_embedder
    from kshot_io import write_text_atomic

    checkpoint = _checkpoint_or_shipped(args.checkpoint)
    config, embedder, _ = restore_embedder(checkpoint)
    results = evaluate_runs(embedder, config, load_runs(args.runs, config.image_size))
    print(lake_markdown(results, checkpoint))
    if args.json:
        write_text_atomic(Path(args.json), json.dumps(results, indent=2) + "\n")
    return 0


def _stream(args: argparse.Namespace) -> int:
    from experiments.omniglot.stream import run_stream, stream_markdown
    from kshot_io import write_text_atomic

    results = run_stream(_checkpoint_or_shipped(args.checkpoint), sources=args.data, sizes=args.sizes, seed=args.seed)
    print(stream_markdown(results))
    if args.json:
        write_text_atomic(Path(args.json), json.dumps(results, indent=2) + "\n")
    return 0


def _curve(args: argparse.Namespace) -> int:
    from experiments.omniglot.curves import curve_markdown, plot_curve, read_curve

    checkpoint = _checkpoint_or_shipped(args.checkpoint)
    records = read_curve(checkpoint)
    print(curve_markdown(records))
    if args.png:
        plot_curve(records, args.png, title="Omniglot recipe, validation alphabets")
    return 0


def _ship(args: argparse.Namespace) -> int:
    from experiments.omniglot.shipped import SHIPPED_DIR, export_run

    manifest = export_run(args.run, args.out or SHIPPED_DIR, args.command, dtype="float32" if args.float32 else "float16")
    print(json.dumps(manifest, indent=2))
    return 0


def _train(args: argparse.Namespace) -> int:
    from experiments.omniglot.presets import load_config, load_preset
    from experiments.omniglot.train import config_with_overrides, train

    base = load_config(args.config) if args.config else load_preset(args.preset or DEFAULT_PRESET)
    config = config_with_overrides(base, steps=args.steps, seed=args.seed)
    summary = train(config, args.out, sources=args.data, progress=not args.no_progress)
    print(f"trained to step {summary['steps']} in {summary['seconds']} s; checkpoints in {args.out}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from experiments.omniglot.evaluate import evaluate_run, results_markdown
    from kshot_io import write_text_atomic

    results = evaluate_run(
        _checkpoint_or_shipped(args.checkpoint),
        sources=args.data,
        ways=args.ways,
        shots=args.shots,
        episodes=args.episodes,
        queries=args.queries,
        per_shot_episodes=args.per_shot_episodes,
        seed=args.seed,
        untrained=not args.no_untrained,
        progress=True,
    )
    print(results_markdown(results))
    if args.json:
        write_text_atomic(Path(args.json), json.dumps(results, indent=2) + "\n")
    return 0
