"""`kshot enroll | identify | calibrate | forget`: the memory as a persistent face gallery (experiments/gallery).

Every check that needs no face (paths, ranges, an existing gallery) runs before
FaceNet and TensorFlow are loaded.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from experiments.faces.identification import DEFAULT_FPIR, check_fpir
from experiments.faces.open_set import Calibration
from experiments.gallery.pictures import write_calibration_figure
from experiments.gallery.storage import DEFAULT_LOCK_TIMEOUT, read_gallery
from kshot_io import write_text_atomic

DESCRIPTION = """\
The memory as a persistent face gallery (experiments/gallery/gallery.py):

    kshot enroll --data FOLDER --gallery FILE [--memory-size N | --store-all] [--aligned] [--skip-bad]
    kshot identify --gallery FILE PATHS... [--threshold T] [--out results.csv] [--learn]
    kshot calibrate --gallery FILE [--fpir 0.001] [--figure STEM]
    kshot forget --gallery FILE NAME...

FOLDER is laid out as FOLDER/<name>/<photo>. Enrolling again adds people or photos to
the same gallery (the same embedder is enforced). The threshold is set at an FPIR: the
share of strangers whose best answer in the gallery reaches it (docs/GALLERY.md).
"""

FAR_RETIRED = ("--far is retired: a gallery answers with the best of all its entries, so a pair false-accept rate "
               "does not bound the strangers it lets in. Use --fpir (share of strangers accepted, default {default:g}); "
               "`kshot calibrate` still reports the pair numbers")


def add_commands(subparsers) -> None:
    enroll = subparsers.add_parser("enroll", help="embed a folder of people's photos into a gallery file",
                                   description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_gallery_options(enroll)
    enroll.add_argument("--data", required=True, help="folder laid out as FOLDER/<name>/<photo>")
    size = enroll.add_mutually_exclusive_group()
    size.add_argument("--memory-size", type=int, default=None,
                      help="Kaiser memory slots of a new gallery (default 1024)")
    size.add_argument("--store-all", action="store_true", help="a new gallery keeps every photo (1-NN) instead")
    add_fpir_option(enroll)
    enroll.add_argument("--aligned", action="store_true", help="photos are already face crops: no detection")
    enroll.add_argument("--skip-bad", action="store_true", help="skip non-image files and empty folders")
    enroll.set_defaults(handler=run_enroll)

    identify = subparsers.add_parser("identify", help="name the people in photos, or say 'unknown'")
    add_gallery_options(identify)
    identify.add_argument("paths", nargs="+", type=Path, help="photos or folders of photos")
    identify.add_argument("--threshold", type=float, default=None, help="similarity threshold (default: the gallery's)")
    identify.add_argument("--out", type=Path, default=None, help="write the answers as CSV")
    identify.add_argument("--aligned", action="store_true", help="photos are already face crops: no detection")
    identify.add_argument("--learn", action="store_true",
                          help="write the accepted answers back into the gallery's memory (life-long mode)")
    identify.set_defaults(handler=run_identify)

    calibrate = subparsers.add_parser("calibrate", help="open-set threshold: TAR at FAR, EER, ROC figure")
    add_gallery_options(calibrate)
    add_fpir_option(calibrate)
    calibrate.add_argument("--figure", type=Path, default=None,
                           help="ROC figure stem, written as .png and .svg (default: next to the gallery)")
    calibrate.set_defaults(handler=run_calibrate)
    add_forget_command(subparsers)
    add_map_command(subparsers)


def add_gallery_options(parser) -> None:
    """The options every gallery command takes: the file, the embedder's weights, the lock's patience."""
    parser.add_argument("--gallery", required=True, type=Path, help="the gallery file (.npz)")
    parser.add_argument("--weights", default=None,
                        help="FaceNet weights: registry name or a keras-facenet-style h5 (default: the gallery's, "
                             "or 20170512-110547 for a new gallery)")
    parser.add_argument("--lock-timeout", type=float, default=DEFAULT_LOCK_TIMEOUT,
                        help="seconds to wait while another command writes the gallery")


def add_fpir_option(parser) -> None:
    """--fpir, and the retired --far kept only to say what replaced it."""
    parser.add_argument("--fpir", type=float, default=None,
                        help=f"target share of strangers accepted (FPIR; default {DEFAULT_FPIR:g}, or the gallery's)")
    parser.add_argument("--far", type=float, default=None, help=argparse.SUPPRESS)


def checked_fpir(args) -> float | None:
    """The --fpir asked for (None: the gallery's), refusing the retired --far."""
    if args.far is not None:
        raise ValueError(FAR_RETIRED.format(default=DEFAULT_FPIR))
    return None if args.fpir is None else check_fpir(args.fpir)


def check_gallery_exists(gallery: Path) -> None:
    """Before FaceNet is loaded (seconds), so a mistyped path fails at once."""
    if not gallery.is_file():
        raise FileNotFoundError(f"gallery {gallery} does not exist; create it with `kshot enroll --gallery {gallery}`")


def gallery_embedder(args, gallery_path: Path):
    """The embedder to use: the given weights, or the existing gallery's, checked against it."""
    from experiments.faces.embedder import FaceEmbedder, embedder_for  # FaceNet: TensorFlow

    if gallery_path.exists():
        header, _ = read_gallery(gallery_path)
        return embedder_for(header["identity"], weights=args.weights)
    return FaceEmbedder(args.weights)


def run_enroll(args) -> int:
    if args.memory_size is not None and args.memory_size < 1:
        raise ValueError(f"--memory-size must be >= 1, got {args.memory_size}")
    fpir = checked_fpir(args)
    exists = args.gallery.exists()
    if exists and (args.memory_size is not None or args.store_all):
        raise ValueError(f"{args.gallery} exists: --memory-size and --store-all only apply to a new gallery; "
                         "leave them out to add to it, or choose another --gallery")
    # The gallery's memory and FaceNet load TensorFlow: only once the options passed.
    from experiments.gallery.gallery import DEFAULT_MEMORY_SIZE, Gallery, embed_named_photos

    embedder = gallery_embedder(args, args.gallery)
    embeddings, names, skipped = embed_named_photos(embedder, args.data, aligned=args.aligned,
                                                    skip_bad=args.skip_bad)
    create = {"memory_size": args.memory_size or DEFAULT_MEMORY_SIZE, "store_all": args.store_all}
    if fpir is not None:
        create["fpir"] = fpir
    with Gallery.edit(args.gallery, embedder=embedder, create=create, timeout=args.lock_timeout,
                      expect_new=not exists and (args.memory_size is not None or args.store_all)) as gallery:
        written = gallery.enroll_embeddings(embeddings, names)
        if fpir is not None and fpir != gallery.fpir:
            gallery.recalibrate(fpir)
    for path, reason in skipped:
        print(f"kshot enroll: skipped {path}: {reason}", file=sys.stderr)
    print(f"kshot enroll: {sum(written.values())} photos of {len(written)} people written to {args.gallery}; "
          f"{len(skipped)} skipped")
    print(f"gallery: {gallery.summary()}")
    return 0


def run_identify(args) -> int:
    if args.out is not None and args.out.suffix.lower() != ".csv":
        raise ValueError(f"--out must name a .csv file, got {args.out}")
    if args.threshold is not None and not -1.0 <= args.threshold <= 1.0:
        raise ValueError(f"--threshold is a cosine similarity in [-1, 1], got {args.threshold}")
    check_gallery_exists(args.gallery)
    # The gallery's memory and FaceNet load TensorFlow: only once the options and the file passed.
    from experiments.gallery.answers import answers_csv  # with the gallery, for the same reason
    from experiments.gallery.gallery import UNKNOWN, Gallery, identifications_frame

    embedder = gallery_embedder(args, args.gallery)
    if args.learn:
        with Gallery.edit(args.gallery, embedder=embedder, timeout=args.lock_timeout) as gallery:
            rows = gallery.identify(args.paths, threshold=args.threshold, aligned=args.aligned, learn=True)
    else:
        gallery = Gallery.load(args.gallery, embedder=embedder)
        rows = gallery.identify(args.paths, threshold=args.threshold, aligned=args.aligned)
    frame = identifications_frame(rows)
    if args.out is not None:
        write_text_atomic(args.out, answers_csv(rows))
    shown = frame.assign(path=[Path(p).name for p in frame["path"]], faces=frame["faces"].astype("string").fillna(""))
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep=""))
    known = sum(1 for r in rows if not r.skipped and r.answer != UNKNOWN)
    unknown = sum(1 for r in rows if r.answer == UNKNOWN)
    threshold = args.threshold if args.threshold is not None else gallery.threshold
    print(f"kshot identify: {len(rows)} photos: {known} named, {unknown} unknown, "
          f"{sum(r.skipped for r in rows)} skipped (threshold {threshold:.4f})"
          + (f"; answers in {args.out}" if args.out else "") + ("; accepted answers learned" if args.learn else ""))
    return 0


def run_calibrate(args) -> int:
    fpir = checked_fpir(args)
    check_gallery_exists(args.gallery)
    from experiments.gallery.gallery import Gallery  # its memory loads TensorFlow: only once the file is known to exist

    with Gallery.edit(args.gallery, timeout=args.lock_timeout) as gallery:
        calibration = gallery.recalibrate(fpir)
        if calibration is None:
            raise ValueError(f"{args.gallery} holds photos of fewer than two people; calibration searches each "
                             "person's photos against the others, so enroll another person first")
    stem = args.figure or args.gallery.with_name(args.gallery.stem + "_roc")
    verification = Calibration.from_dict(calibration.verification)
    figures = write_calibration_figure(gallery, stem)   # score distributions with the threshold, beside the ROC
    write_text_atomic(Path(stem).with_suffix(".json"), json.dumps(calibration.to_dict(), indent=2) + "\n")
    print("verification (photo against photo; not the stored threshold):")
    for line in verification.lines():
        if not line.startswith(("chosen threshold", "note:")):   # the pair threshold is not the one stored
            print(f"  {line}")
    for line in calibration.lines():
        print(line)
    print(f"kshot calibrate: threshold {calibration.threshold:.4f} at FPIR {calibration.fpir_target:g} for "
          f"{calibration.people} people stored in {args.gallery}; ROC (pairs) in {figures[0]}")
    return 0


def add_forget_command(subparsers) -> None:
    forget = subparsers.add_parser("forget", help="remove people from a gallery file, leaving nothing of them",
                                   description="Remove people (their slots, name, photo counts and calibration "
                                               "photos) from a gallery, then recalibrate its threshold.")
    add_gallery_options(forget)
    forget.add_argument("names", nargs="+", help="the enrolled names to remove (as `kshot enroll` listed them)")
    forget.set_defaults(handler=run_forget)


def run_forget(args) -> int:
    check_gallery_exists(args.gallery)
    from experiments.gallery.gallery import Gallery  # its memory loads TensorFlow: only once the file is known to exist

    # No embedder is needed: nothing is embedded, and the weights named in the gallery stay bound to it.
    with Gallery.edit(args.gallery, timeout=args.lock_timeout) as gallery:
        removed = gallery.forget(args.names)
    print(f"kshot forget: removed {', '.join(f'{name} ({count} photos)' for name, count in removed.items())} "
          f"from {args.gallery}")
    print(f"gallery: {gallery.summary()}")
    return 0


def add_map_command(subparsers) -> None:
    drawing = subparsers.add_parser(
        "map", help="draw a folder's photos and the gallery's slots on one 2-D map (t-SNE, thumbnails)",
        description="Embed FOLDER/<name>/<photo> with the gallery's embedder and draw the photos (thumbnails of "
                    "their face crops, framed in each person's colour) with the gallery's memory slots (stars), "
                    "each photo joined to the slot that answers it; t-SNE places both on one map.")
    add_gallery_options(drawing)
    drawing.add_argument("--data", required=True, type=Path, help="folder laid out as FOLDER/<name>/<photo>")
    drawing.add_argument("--aligned", action="store_true", help="photos are already face crops: no detection")
    drawing.add_argument("--skip-bad", action="store_true", help="skip non-image files and empty folders")
    drawing.add_argument("--out", type=Path, default=None,
                         help="figure stem, written as .png and .svg (default: <gallery>_map next to the gallery)")
    drawing.add_argument("--seed", type=int, default=0, help="t-SNE's seed: the same seed draws the same map")
    drawing.set_defaults(handler=run_map)


def run_map(args) -> int:
    check_gallery_exists(args.gallery)
    if not args.data.is_dir():
        raise FileNotFoundError(f"--data {args.data} is not a folder; give one laid out as FOLDER/<name>/<photo>")
    # The gallery's memory, FaceNet and scikit-learn load TensorFlow and more: only once the paths passed.
    from experiments.gallery.gallery import Gallery
    from experiments.gallery.pictures import write_gallery_map

    gallery = Gallery.load(args.gallery, embedder=gallery_embedder(args, args.gallery))
    stem = args.out or args.gallery.with_name(args.gallery.stem + "_map")
    written, skipped = write_gallery_map(gallery, args.data, stem, aligned=args.aligned, skip_bad=args.skip_bad,
                                         seed=args.seed)
    for path, reason in skipped:
        print(f"kshot map: skipped {path}: {reason}", file=sys.stderr)
    print(f"kshot map: {gallery.summary()}; map in {written[0]} and {written[1]}")
    return 0
