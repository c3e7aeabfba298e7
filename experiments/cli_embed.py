"""`kshot embed --data DATA --out FILE.npz [--aligned]`: a dataset's FaceNet embeddings in one file.

The npz holds `embeddings` (float32 [n, 128], unit rows), `labels`, `paths`,
`split` (where the dataset has one) and `skipped` ("path: reason" for every image
that was not embedded: no face, face too small, unreadable file, and, with
--skip-bad, non-image entries of the folder). Skips are also printed on stderr.
The file is written atomically.
"""

from __future__ import annotations

import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "embed", help="align and embed a dataset with the pretrained FaceNet into an npz",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--data", required=True, help="'celebrities' or a folder laid out as root/<label>/<image>")
    parser.add_argument("--out", required=True, type=Path, help="npz file to write")
    parser.add_argument("--aligned", action="store_true", help="images are already face crops: no detection, only resize")
    parser.add_argument("--weights", default=None, help="registry name or a keras-facenet-style h5 (default: 20170512-110547)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--skip-bad", action="store_true", help="skip non-image files and empty class folders instead of stopping")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the crop and embedding caches")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(handler=run_embed)


def run_embed(args) -> int:
    import numpy as np

    from experiments.datasets import load_image_dataset
    from facenet_tf import Embedder, load_pretrained
    from kshot_io import atomic_write

    if args.out.suffix != ".npz":
        raise ValueError(f"--out must name an .npz file, got {args.out}")
    dataset = load_image_dataset(args.data, skip_bad=args.skip_bad)
    embedder = Embedder.from_pretrained(load_pretrained(args.weights), batch_size=args.batch_size,
                                        progress=not args.quiet)
    result = embedder.embed_paths([str(p) for p in dataset.paths], aligned=args.aligned,
                                  use_cache=not args.no_cache)
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
