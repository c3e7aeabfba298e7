"""`kshot omniglot train | eval | compare | lake | stream | benchmark | curve | ship | embed`: the memory on Omniglot.

Every action but train reads a checkpoint: a run directory of `omniglot train`, or,
by default, the one shipped in the repository. The settings a checkpoint was trained
with come from the checkpoint; `eval --set` may change only what evaluation can apply.
"""

from __future__ import annotations

import json
from pathlib import Path

from experiments.cli.options import add_set_option
from experiments.core.run_dir import read_run_config
from experiments.core.settings import differences, load_config, with_assignments, with_overrides
from experiments.episodic.evaluation.curves import curve_markdown, plot_curve, read_curve
from experiments.episodic.evaluation.task_spec import TaskSpec
from experiments.episodic.settings import (
    DEFAULT_OMNIGLOT_PRESET,
    HELD_OUT_SPLITS,
    OMNIGLOT_PRESETS,
    READOUTS,
    STREAM_READOUT_KINDS,
    STREAM_READOUTS,
    OmniglotConfig,
    load_omniglot_preset,
)
from kshot_io import write_text_atomic

DESCRIPTION = (
    "Train a small conv embedder on Omniglot (classifier pre-training, then the Kaiser memory loss on episodes) "
    "and evaluate the memory readout vs store-all 1-NN and prototypes: N-way k-shot tasks, Lake et al.'s one-shot "
    "runs, and a life-long stream. Without --checkpoint, evaluation uses the checkpoint shipped in the repository."
)
DATA_HELP = "Omniglot zips or folders (default: $KSHOT_OMNIGLOT or ../shared/omniglot)"
CHECKPOINT_HELP = "a run directory from `omniglot train` (default: the checkpoint shipped in the repository)"
SPLIT_HELP = ("what to measure: test, the checkpoint's held-out test alphabets (reported); validation, its "
              "validation alphabets (for choosing recipes); unseen, every drawing of --data, a character set it "
              "never had (alphabets it trained or validated on are refused)")
WITHIN_HELP = ("draw the classes of every task (and eval's per-shot episodes) from one alphabet: look-alike "
               "rivals, as in Lake et al.'s runs, at any N-way k-shot; harder than mixed tasks")
JSON_HELP = "also write the results as JSON"
# What evaluation can change of a checkpoint's settings (evaluate_run's running_mean); the rest is what it was trained with.
EVAL_SETTABLE = ("memory.running_mean",)


def add_commands(subparsers) -> None:
    parser = subparsers.add_parser(
        "omniglot", help="train and evaluate the memory on Omniglot (Kaiser et al. 2017)", description=DESCRIPTION)
    actions = parser.add_subparsers(dest="omniglot_command", metavar="ACTION")
    parser.set_defaults(handler=lambda args: parser.print_help() or 2)
    for add in (add_train, add_eval, add_compare, add_lake, add_stream, add_benchmark, add_curve, add_ship, add_embed):
        add(actions)


def write_json(path: str | None, results: dict) -> None:
    """The results as indented JSON at `path` (--json), atomically; nothing without a path."""
    if path:
        write_text_atomic(Path(path), json.dumps(results, indent=2) + "\n")


def checkpoint_or_shipped(path: str | None) -> str:
    """--checkpoint, or the checkpoint shipped in the repository when none is given."""
    if path is not None:
        return path
    from experiments.episodic.checkpoints import SHIPPED_DIR  # the checkpoints module loads TensorFlow

    return str(SHIPPED_DIR)


# ---------------------------------------------------------------- train


def add_train(actions) -> None:
    train = actions.add_parser("train", help="train (or resume) an embedder: classifier pre-training, then the memory loss")
    train.add_argument("--data", nargs="+", default=None, metavar="PATH", help=DATA_HELP)
    train.add_argument("--out", required=True, metavar="DIR", help="run directory; an existing one is resumed")
    source = train.add_mutually_exclusive_group()
    source.add_argument("--config", metavar="TOML", help="settings file (see experiments/configs/omniglot_*.toml)")
    source.add_argument("--preset", choices=OMNIGLOT_PRESETS, default=None, help=f"named settings (default: {DEFAULT_OMNIGLOT_PRESET})")
    train.add_argument("--steps", type=int, default=None, help="total optimizer updates (overrides [train] steps)")
    train.add_argument("--seed", type=int, default=None, help="seed of every random choice (overrides [train] seed)")
    add_set_option(train, OmniglotConfig)
    train.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    train.set_defaults(handler=handle_train)


def resolve_train_config(args) -> OmniglotConfig:
    """The settings file or preset, then every --set, then --steps and --seed (which win), checked."""
    if args.config:
        base, origin = load_config(args.config, OmniglotConfig), args.config
    else:
        preset = args.preset or DEFAULT_OMNIGLOT_PRESET
        base, origin = load_omniglot_preset(preset), f"preset {preset}"
    config = with_assignments(base, args.set, origin=f"{origin} with --set")
    return with_overrides(config, origin="command line", train__steps=args.steps, train__seed=args.seed)


def handle_train(args) -> int:
    config = resolve_train_config(args)
    from experiments.episodic.training.train import train  # TensorFlow: only once the settings are checked

    summary = train(config, args.out, sources=args.data, progress=not args.no_progress)
    print(f"trained to step {summary['steps']} in {summary['seconds']} s; checkpoints in {args.out}")
    return 0


# ---------------------------------------------------------------- eval


def add_eval(actions) -> None:
    evaluate = actions.add_parser("eval", help="N-way k-shot accuracy with 95%% CIs on held-out alphabets")
    evaluate.add_argument("--checkpoint", default=None, metavar="DIR", help=CHECKPOINT_HELP)
    evaluate.add_argument("--data", nargs="+", default=None, metavar="PATH", help=DATA_HELP)
    evaluate.add_argument("--ways", type=int, nargs="+", default=[5], help="classes per task (one or more)")
    evaluate.add_argument("--shots", type=int, nargs="+", default=[1], help="labelled examples per class (one or more)")
    evaluate.add_argument("--episodes", type=int, default=1000, help="test tasks per setting")
    evaluate.add_argument("--queries", type=int, default=1, help="query images per class per task")
    evaluate.add_argument("--per-shot-episodes", type=int, default=None,
                          help="Kaiser-style episodes for per-shot accuracy (default: --episodes)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the test tasks")
    evaluate.add_argument("--no-untrained", action="store_true", help="skip the untrained-embedder floor")
    evaluate.add_argument("--split", choices=HELD_OUT_SPLITS, default="test", help=SPLIT_HELP)
    add_set_option(evaluate, OmniglotConfig, precedence=(
        "of the checkpoint's settings only memory.running_mean may change (true: score the Kaiser memory with "
        "count-weighted merges, beyond the paper); the others are what it was trained with"))
    evaluate.add_argument("--within-alphabet", action="store_true", help=WITHIN_HELP)
    evaluate.add_argument("--by-alphabet", action="store_true",
                          help="also report the trained embedder's accuracy by the query's alphabet")
    evaluate.add_argument("--json", metavar="FILE", help=JSON_HELP)
    evaluate.set_defaults(handler=handle_eval)


def eval_running_mean(checkpoint: str | None, assignments: list[str]) -> bool:
    """evaluate_run's `running_mean` from `eval --set`: the checkpoint's settings with the assignments, checked.

    evaluate_run applies one setting of its own, [memory] running_mean, and only to turn
    it on; a --set that would change anything else, or turn it off, is refused rather
    than ignored. A given checkpoint is read without TensorFlow, so a bad --set fails at once.
    """
    if not assignments:
        return False  # evaluate_run then keeps the checkpoint's own setting
    checkpoint = checkpoint_or_shipped(checkpoint)
    saved = read_run_config(checkpoint, OmniglotConfig, "an Omniglot", "train one with kshot omniglot train")
    wanted = with_assignments(saved, assignments, origin=f"{checkpoint} with --set")
    fixed = differences(saved, wanted, ignore=EVAL_SETTABLE)
    if fixed:
        raise ValueError(f"eval can change only {', '.join(EVAL_SETTABLE)} of a checkpoint's settings, the rest are "
                         f"what it was trained with; --set changed {'; '.join(fixed)}")
    if saved.memory.running_mean and not wanted.memory.running_mean:
        raise ValueError(f"{checkpoint} was trained with [memory] running_mean = true; eval can turn it on, not off")
    return wanted.memory.running_mean


def handle_eval(args) -> int:
    running_mean = eval_running_mean(args.checkpoint, args.set)
    tasks = TaskSpec(ways=args.ways, shots=args.shots, episodes=args.episodes, queries=args.queries, seed=args.seed,
                     split=args.split, within_alphabet=args.within_alphabet, per_shot_episodes=args.per_shot_episodes)
    from experiments.episodic.evaluation.evaluate import evaluate_run, results_markdown  # TensorFlow: after --set is checked

    results = evaluate_run(
        checkpoint_or_shipped(args.checkpoint), tasks, sources=args.data, untrained=not args.no_untrained,
        progress=True, by_alphabet=args.by_alphabet, running_mean=running_mean,
    )
    print(results_markdown(results))
    write_json(args.json, results)
    return 0


# ---------------------------------------------------------------- compare, lake, stream


def add_compare(actions) -> None:
    compare = actions.add_parser(
        "compare", help="two checkpoints on the same held-out tasks: paired difference of accuracy with a 95%% CI")
    compare.add_argument("--checkpoint", default=None, metavar="DIR", help=CHECKPOINT_HELP)
    compare.add_argument("--reference", required=True, metavar="DIR",
                         help="the checkpoint (run directory or shipped layout) to subtract")
    compare.add_argument("--data", nargs="+", default=None, metavar="PATH", help=DATA_HELP)
    compare.add_argument("--ways", type=int, nargs="+", default=[5, 20], help="classes per task (one or more)")
    compare.add_argument("--shots", type=int, nargs="+", default=[1, 5], help="labelled examples per class (one or more)")
    compare.add_argument("--episodes", type=int, default=1000, help="test tasks per setting")
    compare.add_argument("--readout", choices=READOUTS, default="memory",
                         help="the readout both embedders are scored with")
    compare.add_argument("--seed", type=int, default=0, help="seed of the test tasks (the same as eval's)")
    compare.add_argument("--split", choices=HELD_OUT_SPLITS, default="test", help=SPLIT_HELP)
    compare.add_argument("--within-alphabet", action="store_true", help=WITHIN_HELP)
    compare.add_argument("--json", metavar="FILE", help=JSON_HELP)
    compare.set_defaults(handler=handle_compare)


def handle_compare(args) -> int:
    tasks = TaskSpec(ways=args.ways, shots=args.shots, episodes=args.episodes, seed=args.seed, split=args.split,
                     within_alphabet=args.within_alphabet)
    from experiments.episodic.evaluation.compare import compare_checkpoints, comparison_markdown  # TensorFlow

    results = compare_checkpoints(checkpoint_or_shipped(args.checkpoint), args.reference, tasks, sources=args.data,
                                  readout=args.readout)
    print(comparison_markdown(results))
    write_json(args.json, results)
    return 0


def add_lake(actions) -> None:
    lake = actions.add_parser("lake", help="Lake et al.'s 20 one-shot runs: mean accuracy and error rate over runs")
    lake.add_argument("--runs", required=True, metavar="PATH",
                      help="the all_runs folder or zip (runNN/training, runNN/test, runNN/class_labels.txt)")
    lake.add_argument("--checkpoint", default=None, metavar="DIR", help=CHECKPOINT_HELP)
    lake.add_argument("--json", metavar="FILE", help=JSON_HELP)
    lake.set_defaults(handler=handle_lake)


def handle_lake(args) -> int:
    # Restoring an embedder and scoring it load TensorFlow.
    from experiments.episodic.checkpoints import restore_embedder
    from experiments.episodic.evaluation.lake import evaluate_runs, lake_markdown, load_runs

    checkpoint = checkpoint_or_shipped(args.checkpoint)
    config, embedder, _ = restore_embedder(checkpoint)
    results = evaluate_runs(embedder, config, load_runs(args.runs, config.data.image_size))
    print(lake_markdown(results, checkpoint))
    write_json(args.json, results)
    return 0


def add_stream(actions) -> None:
    stream = actions.add_parser("stream", help="every held-out drawing streamed once through fixed-size memories")
    stream.add_argument("--checkpoint", default=None, metavar="DIR", help=CHECKPOINT_HELP)
    stream.add_argument("--data", nargs="+", default=None, metavar="PATH", help=DATA_HELP)
    sizes = stream.add_mutually_exclusive_group()
    sizes.add_argument("--sizes", type=int, nargs="+", default=None, metavar="SLOTS",
                       help="memory / FIFO sizes (default: 1, 2, 4 and 8 slots per held-out character)")
    sizes.add_argument("--per-character", type=float, nargs="+", default=None, metavar="M",
                       help="sizes as slots per held-out character, e.g. 0.5 1 2 4 (rounded half up)")
    stream.add_argument("--readouts", nargs="+", choices=tuple(STREAM_READOUT_KINDS), default=list(STREAM_READOUTS),
                        help=f"the stream's readouts (default: {' '.join(STREAM_READOUTS)})")
    stream.add_argument("--seed", type=int, default=0, help="seed of the stream order")
    stream.add_argument("--split", choices=("test", "unseen"), default="test", help=SPLIT_HELP)
    stream.add_argument("--json", metavar="FILE", help=JSON_HELP)
    stream.set_defaults(handler=handle_stream)


def handle_stream(args) -> int:
    from experiments.episodic.evaluation.stream import run_stream, stream_markdown  # TensorFlow

    results = run_stream(checkpoint_or_shipped(args.checkpoint), sources=args.data, sizes=args.sizes, seed=args.seed,
                         split=args.split, readouts=tuple(args.readouts), slots_per_character=args.per_character)
    print(stream_markdown(results))
    write_json(args.json, results)
    return 0


def add_benchmark(actions) -> None:
    bench = actions.add_parser(
        "benchmark", help="the official benchmark: the evaluation alphabets, Lake's runs and the life-long stream")
    bench.add_argument("--data", default=None, metavar="DIR",
                       help="folder holding images_evaluation.zip and all_runs.zip (default: the default Omniglot "
                            "folder, $KSHOT_OMNIGLOT or ../shared/omniglot)")
    bench.add_argument("--checkpoint", default=None, metavar="DIR", help=CHECKPOINT_HELP)
    bench.add_argument("--out", default="docs/results", metavar="DIR", help="where the JSON files go (default: docs/results)")
    bench.add_argument("--no-stream", action="store_true", help="skip the life-long stream (the longest part)")
    bench.set_defaults(handler=handle_benchmark)


def handle_benchmark(args) -> int:
    from experiments.episodic.evaluation import benchmark  # TensorFlow
    from experiments.episodic.evaluation.evaluate import results_markdown  # TensorFlow
    from experiments.episodic.evaluation.lake import lake_markdown  # TensorFlow
    from experiments.episodic.evaluation.stream import stream_markdown  # TensorFlow

    checkpoint = checkpoint_or_shipped(args.checkpoint)
    show = {benchmark.OFFICIAL_FILE: results_markdown, benchmark.LAKE_FILE: lambda r: lake_markdown(r, checkpoint),
            benchmark.STREAM_FILE: stream_markdown}
    # A checkpoint that had an evaluation alphabet raises benchmark.BenchmarkRefused (a ValueError): one line, exit 2.
    benchmark.run_benchmark(checkpoint, args.data or benchmark.default_folder(), args.out, stream=not args.no_stream,
                            progress=True, report=lambda name, r: print(show[name](r) + f"(written: {Path(args.out) / name})\n"))
    return 0


# ---------------------------------------------------------------- curve, ship, embed


def add_curve(actions) -> None:
    curve = actions.add_parser("curve", help="held-out accuracy against training time, from a run's logs")
    curve.add_argument("--checkpoint", default=None, metavar="DIR", help=CHECKPOINT_HELP)
    curve.add_argument("--png", metavar="FILE", help="also draw the curve into this PNG")
    curve.set_defaults(handler=handle_curve)


def handle_curve(args) -> int:
    records = read_curve(checkpoint_or_shipped(args.checkpoint))
    print(curve_markdown(records))
    if args.png:
        plot_curve(records, args.png, title="Omniglot recipe, validation alphabets")
    return 0


def add_ship(actions) -> None:
    ship = actions.add_parser("ship", help="export a run's latest checkpoint in the small float16 layout the repository ships")
    ship.add_argument("--run", required=True, metavar="DIR", help="a run directory from `omniglot train`")
    ship.add_argument("--out", default=None, metavar="DIR", help="destination (default: experiments/episodic/shipped)")
    ship.add_argument("--command", required=True, help="the exact command that trained the run, kept in the manifest")
    ship.add_argument("--float32", action="store_true", help="keep float32 weights")
    ship.set_defaults(handler=handle_ship)


def handle_ship(args) -> int:
    from experiments.episodic.checkpoints import SHIPPED_DIR, export_run  # the checkpoints module loads TensorFlow

    manifest = export_run(args.run, args.out or SHIPPED_DIR, args.command, dtype="float32" if args.float32 else "float16")
    print(json.dumps(manifest, indent=2))
    return 0


def add_embed(actions) -> None:
    embed = actions.add_parser("embed", help="the trained embedder's keys of held-out drawings, as a `kshot run --embeddings` npz")
    embed.add_argument("--checkpoint", required=True, metavar="DIR", help="a run directory from `omniglot train`")
    embed.add_argument("--out", required=True, type=Path, help="npz file to write")
    embed.add_argument("--data", nargs="+", default=None, metavar="PATH", help=DATA_HELP)
    embed.add_argument("--split", choices=("test", "validation", "unseen", "train"), default="test",
                       help="test: the run's held-out alphabets (default); validation: its validation alphabets (for "
                            "choosing settings, such as the gallery's threshold rule); unseen: every drawing of --data, "
                            "a character set the run never had; train: its training classes (with rotations if it "
                            "added them)")
    embed.set_defaults(handler=handle_embed)


def handle_embed(args) -> int:
    from experiments.episodic.evaluation.export import export_embeddings  # TensorFlow

    done = export_embeddings(args.checkpoint, args.out, sources=args.data, split=args.split)
    print(f"kshot omniglot embed: {done['images']} drawings of {done['characters']} characters ({done['split']} split, "
          f"step {done['step']}, {done['key_dim']}-d keys) to {args.out}")
    return 0
