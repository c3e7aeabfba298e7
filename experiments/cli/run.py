"""`kshot run`, `kshot embed`, `kshot report`: the face k-shot experiment, its inputs and its report.

The configuration is resolved and the run directory checked before anything imports
TensorFlow, so a typo in a key, a bad value or a wrong directory fails in a second.
"""

from __future__ import annotations

import argparse
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

from experiments.cli.options import add_set_option
from experiments.core.run_dir import GROWABLE, check_run_dir
from experiments.core.settings import ConfigError, with_assignments, with_overrides
from experiments.faces.datasets import load_image_dataset
from experiments.faces.methods import METHODS, needs_images
from experiments.faces.run_data import prepare_data
from experiments.faces.settings import DEFAULT_RUN_CONFIG, RunConfig, config_repeats_note, load_config
from kshot_io import atomic_write

RUN_DESCRIPTION = """\
The k-shot experiment, memory vs store-all baseline.

With no arguments it runs the default demo: experiments/configs/celebrities.toml (the
built-in 5-person celebrity set, every method) into runs/celebrities. Options and
--set override the configuration; the resolved configuration is saved in the run
directory. Running the same command again resumes: finished repeats are kept.

    kshot run --set finetune.repeats=5 --set open_set.strangers=2 --set memory.alpha=0.2
"""

EMBED_DESCRIPTION = """\
A dataset's FaceNet embeddings in one npz: `embeddings` (float32 [n, d], unit rows),
`labels`, `paths`, `split` (where the dataset has one) and `skipped` ("path: reason"
for every image that was not embedded: no face, face too small, unreadable file, and,
with --skip-bad, non-image entries of the folder). Skips are also printed on stderr.
The file is written atomically.
"""


def add_commands(subparsers) -> None:
    add_run(subparsers)
    add_embed(subparsers)
    add_report(subparsers)


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
    parser.add_argument("--seed", type=int, default=None, help="seed of every random choice")
    parser.add_argument("--models", default=None, help=f"comma-separated subset of: {','.join(METHODS)}")
    parser.add_argument("--data", default=None, help="dataset name (celebrities, or a shifted copy celebrities_<variant>: see data/README.md) or folder root/<label>/<image>")
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
    add_set_option(parser, RunConfig)
    parser.add_argument("--no-figures", action="store_true", help="write tables only (faster; `kshot report DIR` draws them later)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(handler=handle_run)


def resolve_run_config(args) -> tuple[RunConfig, Path]:
    """The configuration file, then every --set, then the explicit options (which win), checked; and the run directory."""
    if args.embeddings is not None and args.data is not None:
        raise ConfigError(f"--data {args.data} and --embeddings {args.embeddings} both name the input; give one of them")
    config_path = args.config or DEFAULT_RUN_CONFIG
    config = with_assignments(load_config(config_path), args.set, origin=f"{config_path} with --set")
    models = None
    if args.models is not None:
        models = tuple(m.strip() for m in args.models.split(",") if m.strip())
        if not models:
            raise ConfigError(f"--models {args.models!r} names no model; choose from {', '.join(METHODS)}")
    elif args.embeddings is not None:
        # Precomputed embeddings leave nothing to fine-tune: keep the methods that need no images.
        usable = tuple(m for m in METHODS if not needs_images(m))
        models = tuple(m for m in config.run.models if m in usable) or usable
    sizes = None
    if args.memory_sizes is not None:
        try:
            sizes = [int(s) for s in args.memory_sizes.split(",") if s.strip()]
        except ValueError:
            raise ConfigError(f"--memory-sizes must be comma-separated integers, got {args.memory_sizes!r}") from None
        if not sizes:
            raise ConfigError(f"--memory-sizes {args.memory_sizes!r} names no size; give comma-separated integers, e.g. 32,64")
    config = with_overrides(
        config,
        origin=f"{config_path} with command-line options",
        memory__memory_size=sizes,
        run__seed=args.seed,
        run__repeats=args.repeats,
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
    started = time.perf_counter()
    config, out_dir = resolve_run_config(args)
    # Everything that can be refused without images is refused before TensorFlow and FaceNet are loaded.
    check_run_dir(out_dir, config, may_change=GROWABLE)
    # The runner loads TensorFlow, the report pandas and scipy: only now that the settings and directory passed.
    from experiments.faces import report
    from experiments.faces.runner import run_experiment

    print(f"kshot run: writing to {out_dir}")
    print(config_repeats_note(config))
    need_crops = any(needs_images(m) for m in config.run.models)
    data = prepare_data(config.data, need_crops=need_crops, progress=not args.no_progress)
    outcome = run_experiment(config, out_dir, data, progress=not args.no_progress, make_figures=not args.no_figures,
                             chunk_size=config.run.chunk_size)
    print()
    print(f"accuracy, mean [95% interval] over repeats, by shots ({report.metrics.ACCURACY_METHOD}):")
    print(report.accuracy_table(outcome["summary"]).to_string())
    if outcome.get("open_set") is not None:
        print()
        print(f"open set ({config.open_set.strangers} identities held out, threshold at FPIR {config.open_set.fpir:g} "
              "of the fed items): FNIR (known not named right) / FPIR (strangers accepted), mean over repeats, by shots:")
        print(report.open_set_table(outcome["open_set"]).to_string())
    if config.run.compare_with == "blog":
        from experiments.studies.blog_reference import beside_the_blog  # pandas; only for the blog's configs

        print()
        print("mean accuracy in percent beside the blog's published curves (its 12 x 8 images):")
        print(beside_the_blog(outcome["summary"]).to_string())
    print()
    print_paired_verdicts(outcome["paired"], report.REFERENCE)
    for model, t in outcome["timing"].items():
        print(f"{model}: {t['repeats']} repeats ({t['computed']} computed now), {t['seconds_per_repeat']:.3f} s per repeat")
    for line in data.skipped:
        print(f"skipped {line}")
    for line in data.notes:
        print(line)
    print(f"total wall time {time.perf_counter() - started:.1f} s; summary in {out_dir / 'summary.md'}")
    return 0


def print_paired_verdicts(verdicts, reference: str) -> None:
    """Each model's shots where it beats or loses to `reference` on the same shuffles (paired.csv, in words)."""
    if verdicts.empty:
        return
    print(f"against {reference}, paired over the same shuffles (details in paired.csv):")
    for model, rows in verdicts.groupby("model", sort=False):
        wins = rows[rows.verdict == "wins"].shots.tolist()
        losses = rows[rows.verdict == "loses"].shots.tolist()
        print(f"  {model}: wins at shots {wins or 'none'}, loses at shots {losses or 'none'}, "
              f"within noise elsewhere")
    print()


# ---------------------------------------------------------------- kshot embed


def add_embed(subparsers) -> None:
    parser = subparsers.add_parser(
        "embed", help="align and embed a dataset with the pretrained FaceNet into an npz",
        description=EMBED_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", required=True, help="'celebrities', a shifted copy 'celebrities_<variant>' (data/README.md), or a folder laid out as root/<label>/<image>")
    parser.add_argument("--out", required=True, type=Path, help="npz file to write")
    parser.add_argument("--aligned", action="store_true", help="images are already face crops: no detection, only resize")
    parser.add_argument("--weights", default=None, help="registry name or a keras-facenet-style h5 (default: the registry's)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--skip-bad", action="store_true", help="skip non-image files and empty class folders instead of stopping")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the crop and embedding caches")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(handler=handle_embed)


def handle_embed(args) -> int:
    check_embed_out(args.out)
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    dataset = load_image_dataset(args.data, skip_bad=args.skip_bad)
    # FaceNet loads TensorFlow: only after the output name and the dataset were checked.
    from facenet_tf import Embedder, load_pretrained

    embedder = Embedder.from_pretrained(load_pretrained(args.weights), batch_size=args.batch_size,
                                        progress=not args.quiet)
    aligned = args.aligned or dataset.aligned   # a shifted celebrity set is face crops already: no second detection
    result = embedder.embed_paths([str(p) for p in dataset.paths], aligned=aligned, use_cache=not args.no_cache)
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


def check_embed_out(out: Path) -> None:
    """Refuse an --out that is not an .npz name, or that would replace a file `kshot embed` did not write."""
    if out.suffix != ".npz":
        raise ValueError(f"--out must name an .npz file, got {str(out)!r}")
    if out.is_dir():
        raise IsADirectoryError(f"--out {out} is a folder; name the .npz file to write, e.g. {out / 'embeddings.npz'}")
    if out.exists():
        try:
            with np.load(out, allow_pickle=False) as existing:
                ours = {"embeddings", "labels"} <= set(existing.files)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            ours = False
        if not ours:
            raise FileExistsError(
                f"--out {out} exists and is not an embeddings file (no `embeddings` and `labels` arrays); "
                "kshot embed replaces only its own files. Remove it or give another --out."
            )


# ---------------------------------------------------------------- kshot report


def add_report(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="rebuild summary.csv/.md and figures/ of a `kshot run` directory",
        description="Rebuild the summary table and the figures of a run from its files alone.",
    )
    parser.add_argument("run_dir", type=Path, help="a directory written by `kshot run`")
    parser.add_argument("--no-figures", action="store_true", help="tables only")
    parser.add_argument("--map", action="store_true",
                        help="also draw a 2-D map (t-SNE) of the run's photos with one model's memory slots after "
                             "the last shot of repeat 0, recomputed by replaying that repeat: figures/map_<model>")
    parser.add_argument("--map-model", default=None,
                        help="the model whose slots the map shows (implies --map; default: the first Kaiser-memory model)")
    parser.set_defaults(handler=handle_report)


def handle_report(args) -> int:
    from experiments.faces import report  # pandas, scipy and matplotlib: seconds that `kshot --help` need not pay

    if not args.run_dir.is_dir():
        raise FileNotFoundError(f"run directory {args.run_dir} does not exist")
    progress = report.assemble_tables(args.run_dir)
    if progress:
        print(progress)
    built = report.write_report(args.run_dir, make_figures=not args.no_figures)
    print(report.accuracy_table(built["summary"]).to_string())
    print(f"wrote {args.run_dir / 'summary.csv'}, {args.run_dir / 'summary.md'} and {len(built['figures'])} figure files")
    if args.map or args.map_model is not None:
        from experiments.faces.run_map import write_run_map  # replays a repeat (TensorFlow) and runs t-SNE: only on --map

        print(f"map of the run's photos and slots: {write_run_map(args.run_dir, args.map_model)[0]}")
    return 0
