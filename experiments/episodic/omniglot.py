"""Load Omniglot from the dataset's own layout, merge sources, split by alphabet.

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

from experiments.episodic.settings import OmniglotDataSection
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


@dataclass(frozen=True)
class OmniglotData:
    """Decoded images and their character labels.

    images: uint8 [n, size, size], ink = 255 (the PNGs' black strokes, inverted).
    labels: int32 [n], index into `characters`.
    characters: "Alphabet/characterNN" per class (a rotated copy gets a "@rot90" suffix, a mirrored one "@mirror").
    alphabets: the alphabet of each class, parallel to `characters`.
    drawers: the source file name of each image ("0394_01.png"), for tracing back.
    """

    images: np.ndarray
    labels: np.ndarray
    characters: tuple[str, ...]
    alphabets: tuple[str, ...]
    drawers: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.characters)

    def alphabet_names(self) -> list[str]:
        return sorted(set(self.alphabets))

    def indices_by_class(self) -> list[np.ndarray]:
        """For each class, the indices of its images (ascending)."""
        order = np.argsort(self.labels, kind="stable")
        bounds = np.searchsorted(self.labels[order], np.arange(self.num_classes + 1))
        return [order[bounds[c] : bounds[c + 1]] for c in range(self.num_classes)]

    def keep_classes(self, class_ids: Sequence[int]) -> OmniglotData:
        """A new dataset with only these classes, relabelled 0..len(class_ids)-1 in the given order."""
        class_ids = np.asarray(class_ids, dtype=np.int64)
        remap = np.full(self.num_classes, -1, dtype=np.int64)
        remap[class_ids] = np.arange(len(class_ids))
        keep = remap[self.labels] >= 0
        return OmniglotData(
            images=self.images[keep],
            labels=remap[self.labels[keep]].astype(np.int32),
            characters=tuple(self.characters[c] for c in class_ids),
            alphabets=tuple(self.alphabets[c] for c in class_ids),
            drawers=tuple(d for d, k in zip(self.drawers, keep) if k),
        )


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


def _decode_all(drawings: Sequence[_Drawing], image_size: int) -> OmniglotData:
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
    return OmniglotData(
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
) -> tuple[OmniglotData, dict[str, list[str]]]:
    """Load and merge every drawing under `sources` (default: `default_sources()`).

    Returns the data and `sets`: for each alphabet, the set names it was found in
    (e.g. {"Greek": ["images_background_small1", "images_background_small2"]}), which
    `split_by_alphabet` uses to honour an evaluation set.
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
                data = OmniglotData(
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


# ---------------------------------------------------------------- splits and rotations


def choose_test_alphabets(
    data: OmniglotData, sets: dict[str, list[str]] | None = None, test_fraction: float = 0.2
) -> list[str]:
    """The held-out alphabets, chosen deterministically.

    If any alphabet comes from a set whose name contains "evaluation" (the standard
    Lake et al. split), exactly those alphabets are held out. Otherwise alphabets are
    taken in reverse name order until at least `test_fraction` of the characters are
    held out. For the two shared small subsets this holds out Tagalog and Sanskrit
    (59 of 242 characters).
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    names = data.alphabet_names()
    if len(names) < 2:
        raise ValueError(f"need at least two alphabets to hold one out, found {names}")
    if sets:
        evaluation = [a for a in names if any("evaluation" in s for s in sets.get(a, []))]
        if evaluation and len(evaluation) < len(names):
            return evaluation
    per_alphabet = {a: 0 for a in names}
    for alphabet in data.alphabets:
        per_alphabet[alphabet] += 1
    held, count = [], 0
    for alphabet in reversed(names[1:]):  # always keep at least the first alphabet for training
        if count >= test_fraction * data.num_classes:
            break
        held.append(alphabet)
        count += per_alphabet[alphabet]
    return sorted(held)


class AlphabetsNotInData(ValueError):
    """Named held-out alphabets are missing from the loaded drawings (so a caller can say what to do instead)."""


def split_by_alphabet(data: OmniglotData, test_alphabets: Sequence[str]) -> tuple[OmniglotData, OmniglotData]:
    """(train, test): every character of a test alphabet goes to test, the rest to train."""
    unknown = sorted(set(test_alphabets) - set(data.alphabets))
    if unknown:
        raise AlphabetsNotInData(f"test alphabets {unknown} are not in the data; available: {data.alphabet_names()}")
    test_set = set(test_alphabets)
    train_ids = [c for c, a in enumerate(data.alphabets) if a not in test_set]
    test_ids = [c for c, a in enumerate(data.alphabets) if a in test_set]
    if not train_ids or not test_ids:
        raise ValueError(f"test alphabets {sorted(test_set)} leave an empty train or test split")
    return data.keep_classes(train_ids), data.keep_classes(test_ids)


def _with_copies(data: OmniglotData, transforms: Sequence[Callable[[np.ndarray], np.ndarray]],
                 suffixes: Sequence[str]) -> OmniglotData:
    """Each class as len(transforms) classes: class k*c + i holds transforms[i] of class
    c's images ([n, s, s] -> [n, s, s]), named with suffixes[i]."""
    k = len(transforms)
    images = np.stack([transform(data.images) for transform in transforms], axis=1)
    labels = data.labels[:, None].astype(np.int64) * k + np.arange(k)[None, :]
    return OmniglotData(
        images=np.ascontiguousarray(images.reshape((-1,) + data.images.shape[1:])),
        labels=labels.reshape(-1).astype(np.int32),
        characters=tuple(c + suffix for c in data.characters for suffix in suffixes),
        alphabets=tuple(a for a in data.alphabets for _ in range(k)),
        drawers=tuple(d for d in data.drawers for _ in range(k)),
    )


def add_rotations(data: OmniglotData) -> OmniglotData:
    """Each character plus its 90, 180 and 270 degree rotations, as four classes.

    Class 4*c + r is character c rotated by r*90 degrees counter-clockwise (r = 0 is
    the original), the augmentation used for training in the Omniglot literature.
    """
    turns = [lambda images, r=r: np.rot90(images, k=r, axes=(1, 2)) for r in range(4)]
    return _with_copies(data, turns, ["", "@rot90", "@rot180", "@rot270"])


def add_mirrors(data: OmniglotData) -> OmniglotData:
    """Each class plus its left-right mirror image, as two classes.

    Class 2*c + 1 is class c mirrored. With rotations added first, the eight classes of a
    character are its eight symmetries (the dihedral group of the square): a mirrored
    character is as new to the embedder as a rotated one, and the training alphabets are
    the scarce resource.
    """
    return _with_copies(data, [lambda images: images, lambda images: images[:, :, ::-1]], ["", "@mirror"])


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 [n, s, s] -> float32 [n, s, s, 1] in [0, 1], the embedder's input."""
    return (images.astype(np.float32) / 255.0)[..., None]


@dataclass(frozen=True)
class OmniglotSplit:
    """The train and held-out splits as training and evaluation use them."""

    train: OmniglotData  # rotated and mirrored copies added if configured
    test: OmniglotData
    train_alphabets: tuple[str, ...]
    test_alphabets: tuple[str, ...]
    characters_in_train: int  # before rotations and mirrors
    validation: OmniglotData | None = None  # None when no validation alphabets are configured
    validation_alphabets: tuple[str, ...] = ()

    @property
    def monitor(self) -> OmniglotData:
        """The split training logs report on: validation if there is one, else test."""
        return self.validation if self.validation is not None else self.test

    def describe(self) -> dict:
        described = {
            "train_alphabets": list(self.train_alphabets),
            "test_alphabets": list(self.test_alphabets),
            "train_characters": self.characters_in_train,
            "train_classes": self.train.num_classes,  # rotated and mirrored copies included
            "train_images": int(self.train.images.shape[0]),
            "test_characters": self.test.num_classes,
            "test_images": int(self.test.images.shape[0]),
        }
        if self.validation is not None:
            described["validation_alphabets"] = list(self.validation_alphabets)
            described["validation_characters"] = self.validation.num_classes
        return described


def prepare_split(settings: OmniglotDataSection, sources=None) -> OmniglotSplit:
    """Load `sources`, hold out the test alphabets, add rotated and mirrored training classes as configured."""
    data, sets = load_omniglot(sources, image_size=settings.image_size)
    test_alphabets = list(settings.test_alphabets) or choose_test_alphabets(data, sets, settings.test_fraction)
    overlap = sorted(set(test_alphabets) & set(settings.validation_alphabets))
    if overlap:
        raise ValueError(f"alphabets {overlap} are listed for both validation and test; give each to one split")
    train, test = split_by_alphabet(data, test_alphabets)
    validation = None
    if settings.validation_alphabets:
        train, validation = split_by_alphabet(train, settings.validation_alphabets)
    characters = train.num_classes
    if settings.rotations:
        train = add_rotations(train)
    if settings.mirrors:
        train = add_mirrors(train)
    return OmniglotSplit(
        train=train,
        test=test,
        train_alphabets=tuple(train.alphabet_names()),
        test_alphabets=tuple(sorted(test_alphabets)),
        characters_in_train=characters,
        validation=validation,
        validation_alphabets=tuple(sorted(settings.validation_alphabets)),
    )
