"""Omniglot, the registry's first dataset: reading its zips or folders, decoding, the drawing cache.

The dataset ships as zips laid out `<set>/<Alphabet>/<characterNN>/<drawer>.png`
(105x105 one-bit PNGs, 20 drawers per character). Users have the two small MIT
subsets, the full background/evaluation sets, or extracted copies of any of them, so
every source may be a zip, a folder holding zips, an extracted set folder or a folder
of set folders. Alphabets that occur in several sources (Greek and Latin are in both
small subsets) are merged by `Alphabet/characterNN/drawer.png`, so no character or
drawing is counted twice.

Decoding thousands of PNGs is the slow part, so the decoded, resized arrays are cached
once per distinct set of source files (keyed by their content hashes) under
`kshot_io.cache_root()/omniglot/`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
from PIL import Image

from experiments.episodic.data import EpisodicData
from kshot_io import atomic_write, cache_root, sha256_of_file

# Bump when decoding or the cache layout changes, so that old cache entries are ignored.
LOADER_VERSION = 1
# The paper (Kaiser et al. 2017, and the TF1 code's data_utils) resizes to 28x28.
PAPER_IMAGE_SIZE = 28
DATA_ENV_VAR = "KSHOT_OMNIGLOT"
# Read only when named as a file, never picked up by scanning a folder: the evaluation set
# is for reporting (nothing may be trained or chosen on it by accident), and Lake's runs
# have a layout of their own (experiments.episodic.evaluation.lake reads them).
NAMED_ONLY = ("images_evaluation.zip", "all_runs.zip")
LAYOUT_HELP = "expected <set>/<Alphabet>/<characterNN>/<image>.png inside a zip or a folder"


# ---------------------------------------------------------------- finding the sources


def default_sources() -> list[Path]:
    """The sources used when the user names none: $KSHOT_OMNIGLOT, else ../shared/omniglot.

    `../shared/omniglot` is relative to the repository root (where CI and the project's
    machines keep the background set and its subsets); a folder's evaluation set and
    Lake's runs are skipped (NAMED_ONLY), so the default is the background set alone.
    """
    configured = os.environ.get(DATA_ENV_VAR)
    if configured:
        return [Path(p).expanduser() for p in configured.split(os.pathsep) if p]
    repo_root = Path(__file__).resolve().parents[2]
    return [repo_root.parent / "shared" / "omniglot"]


@dataclass(frozen=True)
class _Drawing:
    set_name: str
    alphabet: str
    character: str
    file_name: str
    read: Callable[[], bytes]


def _drawing_from_parts(parts: Sequence[str], fallback_set: str, read: Callable[[], bytes]) -> _Drawing | None:
    if len(parts) < 3 or not parts[-1].lower().endswith(".png"):
        return None
    if any(p.startswith(".") or p == "__MACOSX" for p in parts):
        return None
    set_name = parts[-4] if len(parts) >= 4 else fallback_set
    return _Drawing(set_name, parts[-3], parts[-2], parts[-1], read)


def _zip_drawings(path: Path) -> list[_Drawing]:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise ValueError(f"Omniglot source {path} is not a readable zip file ({error}); {LAYOUT_HELP}") from error
    drawings = []
    for name in archive.namelist():
        drawing = _drawing_from_parts(
            name.split("/"), path.stem, lambda archive=archive, name=name: archive.read(name)
        )
        if drawing is not None:
            drawings.append(drawing)
    return drawings


def _folder_drawings(path: Path) -> list[_Drawing]:
    drawings = []
    for png in sorted(path.rglob("*.png")):
        parts = png.relative_to(path).parts
        drawing = _drawing_from_parts(parts, path.name, png.read_bytes)
        if drawing is not None:
            drawings.append(drawing)
    return drawings


def _source_files(source: Path) -> list[Path]:
    """The zips and PNG files one user-named source stands for, in a fixed order."""
    if not source.exists():
        raise FileNotFoundError(
            f"Omniglot source {source} does not exist; pass --data with a zip or folder ({LAYOUT_HELP}), "
            f"or set {DATA_ENV_VAR}"
        )
    if source.is_file():
        if source.suffix.lower() != ".zip":
            raise ValueError(f"Omniglot source {source} is a file but not a .zip; {LAYOUT_HELP}")
        return [source]
    zips = [z for z in sorted(source.rglob("*.zip")) if z.name not in NAMED_ONLY]
    return zips + sorted(source.rglob("*.png"))


def _collect(sources: Iterable[Path]) -> tuple[list[_Drawing], list[Path]]:
    drawings: list[_Drawing] = []
    files: list[Path] = []
    for source in sources:
        source = Path(source)
        found = _source_files(source)
        if source.is_file():
            drawings += _zip_drawings(source)
        else:
            for zip_path in (f for f in found if f.suffix.lower() == ".zip"):
                drawings += _zip_drawings(zip_path)
            drawings += _folder_drawings(source)
        if not found:
            raise FileNotFoundError(f"Omniglot source {source} holds no zips or PNGs; {LAYOUT_HELP}")
        files += found
    if not drawings:
        raise ValueError(f"no Omniglot drawings found in {', '.join(map(str, sources))}; {LAYOUT_HELP}")
    return drawings, files


def _cache_key(files: Sequence[Path], image_size: int) -> str:
    digest = hashlib.sha256(f"omniglot-v{LOADER_VERSION}-size{image_size}".encode())
    for content_hash in sorted(sha256_of_file(f) for f in files):
        digest.update(content_hash.encode())
    return digest.hexdigest()[:32]


# ---------------------------------------------------------------- decoding


def decode_drawing(png_bytes: bytes, image_size: int, origin: str = "image") -> np.ndarray:
    """One Omniglot PNG -> uint8 [image_size, image_size], ink = 255.

    Box (area) resampling keeps thin strokes visible when 105 pixels shrink to 28.
    """
    try:
        with Image.open(io.BytesIO(png_bytes)) as image:
            gray = image.convert("L")
    except Exception as error:  # PIL raises several types for corrupt files
        raise ValueError(f"cannot decode Omniglot image {origin}: {error}") from error
    inverted = Image.fromarray(255 - np.asarray(gray, dtype=np.uint8))
    if inverted.size != (image_size, image_size):
        inverted = inverted.resize((image_size, image_size), Image.Resampling.BOX)
    return np.asarray(inverted, dtype=np.uint8)


def _decode_all(drawings: Sequence[_Drawing], image_size: int) -> EpisodicData:
    # Merge: one entry per Alphabet/character/drawer, whichever source it came from.
    unique: dict[tuple[str, str, str], _Drawing] = {}
    for drawing in drawings:
        unique.setdefault((drawing.alphabet, drawing.character, drawing.file_name), drawing)
    keys = sorted(unique)
    characters = sorted({(a, c) for a, c, _ in keys})
    class_of = {ac: i for i, ac in enumerate(characters)}
    images = np.empty((len(keys), image_size, image_size), dtype=np.uint8)
    for i, key in enumerate(keys):
        drawing = unique[key]
        images[i] = decode_drawing(drawing.read(), image_size, origin="/".join(key))
    return EpisodicData(
        images=images,
        labels=np.array([class_of[(a, c)] for a, c, _ in keys], dtype=np.int32),
        characters=tuple(f"{a}/{c}" for a, c in characters),
        alphabets=tuple(a for a, _ in characters),
        drawers=tuple(f for _, _, f in keys),
    )


def load_omniglot(
    sources: Sequence[str | os.PathLike] | str | os.PathLike | None = None,
    image_size: int = PAPER_IMAGE_SIZE,
    use_cache: bool = True,
) -> tuple[EpisodicData, dict[str, list[str]]]:
    """Load and merge every drawing under `sources` (default: `default_sources()`).

    Returns the data and `sets`: for each alphabet, the set names it was found in
    (e.g. {"Greek": ["images_background_small1", "images_background_small2"]}), which
    split.choose_test_alphabets uses to hold out an evaluation set.
    """
    if image_size < 4:
        raise ValueError(f"image_size must be >= 4, got {image_size}")
    if sources is None:
        sources = default_sources()
    elif isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    sources = [Path(s).expanduser() for s in sources]
    if not sources:
        raise ValueError("no Omniglot sources given")
    drawings, files = _collect(sources)
    sets: dict[str, set[str]] = {}
    for drawing in drawings:
        sets.setdefault(drawing.alphabet, set()).add(drawing.set_name)
    sets_sorted = {a: sorted(s) for a, s in sorted(sets.items())}

    cache_path = cache_root() / "omniglot" / f"{_cache_key(files, image_size)}.npz" if use_cache else None
    if cache_path is not None and cache_path.exists():
        try:
            with np.load(cache_path, allow_pickle=False) as stored:
                data = EpisodicData(
                    images=stored["images"],
                    labels=stored["labels"],
                    characters=tuple(stored["characters"].tolist()),
                    alphabets=tuple(stored["alphabets"].tolist()),
                    drawers=tuple(stored["drawers"].tolist()),
                )
            return data, sets_sorted
        except (OSError, KeyError, ValueError):
            pass  # unreadable entry (another version, disk trouble): decode again and overwrite
    data = _decode_all(drawings, image_size)
    if cache_path is not None:
        with atomic_write(cache_path, "wb") as handle:
            np.savez(
                handle,
                images=data.images,
                labels=data.labels,
                characters=np.array(data.characters),
                alphabets=np.array(data.alphabets),
                drawers=np.array(data.drawers),
                sources=np.array([json.dumps([str(s) for s in sources])]),
            )
    return data, sets_sorted
