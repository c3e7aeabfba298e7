"""Pictures of a gallery: its photos and slots on one map, and its threshold among the scores.

- `gallery_map_figure`: photos (embedded with the gallery's own embedder, so they are
  comparable with its memory) and the gallery's filled entries (the Kaiser memory's
  slots, or store-all's rows) on one t-SNE map (experiments.faces.embedding_map), each
  photo joined to the entry that would answer it. `kshot map` draws it for a folder.
- `calibration_figure`: the score distributions and the ROC with the stored threshold
  (experiments.faces.score_figures). `kshot calibrate` draws it.
- `render_examples`: both pictures for the celebrity set into docs/results/gallery/:

    python -m experiments.gallery.pictures docs/results/gallery
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from experiments.core.figures import save_figure
from experiments.faces import identification, score_figures
from experiments.faces.datasets import load_folder
from experiments.faces.embedding_map import embedding_map_figure
from experiments.faces.thumbnails import MAX_THUMBNAILS, face_thumbnails
from experiments.gallery.photos import embed_named_photos


def gallery_slots(gallery) -> tuple[np.ndarray, list[str]]:
    """(keys [m, d], names [m]) of the entries `identify` searches: filled slots, or store-all's rows."""
    keys, ids = gallery.entries()
    return keys, [str(name) for name in gallery.names.decode(ids)]


def folder_photos(embedder, folder, aligned: bool = False, skip_bad: bool = False):
    """(embeddings, names, paths, skipped) of the usable photos of FOLDER/<name>/<photo>."""
    dataset = load_folder(folder, skip_bad=skip_bad)
    paths = [str(p) for p in dataset.paths]
    embeddings, names, skipped = embed_named_photos(embedder, paths, list(dataset.labels), aligned=aligned)
    dropped = {path for path, _ in skipped}
    kept = [path for path in paths if path not in dropped]
    return embeddings, names, kept, list(dataset.skipped) + list(skipped)


def entries_word(gallery) -> str:
    if gallery.memory_kind == "StoreAllNearestNeighbour":
        return "store-all rows (every enrolled photo)"
    return f"Kaiser memory slots ({gallery.memory.slots_in_use()} of {gallery.memory.memory_size} in use)"


def gallery_map_figure(gallery, embeddings, names, paths=None, aligned: bool = False, seed: int = 0,
                       source: str = ""):
    """The map of these photos and the gallery's entries; thumbnails of `paths` (None: dots)."""
    keys, slot_names = gallery_slots(gallery)
    thumbnails, note = None, ""
    if paths is not None and len(paths) <= MAX_THUMBNAILS:
        thumbnails = face_thumbnails(paths, aligned, int(gallery.identity["input_size"]))
    elif paths is not None:
        note = f" Dots, not thumbnails: more than {MAX_THUMBNAILS} photos."
    caption = (f"Stars: the gallery's {entries_word(gallery)}; each photo{' of ' + source if source else ''} "
               f"is joined to the entry that answers it (its nearest by cosine similarity).{note}")
    return embedding_map_figure(embeddings, names, keys, slot_names, thumbnails, seed=seed, caption=caption)


def write_gallery_map(gallery, folder, stem, aligned: bool = False, skip_bad: bool = False,
                      seed: int = 0) -> tuple[list[Path], list[tuple[str, str]]]:
    """Embed FOLDER with the gallery's embedder and write its map as `stem`.png/.svg; (paths, skipped)."""
    embeddings, names, paths, skipped = folder_photos(gallery.embedder, folder, aligned, skip_bad)
    figure = gallery_map_figure(gallery, embeddings, names, paths, aligned, seed, source=str(folder))
    return save_figure(figure, stem), skipped


def calibration_scores(gallery) -> tuple[score_figures.ScoreSets, str]:
    """The searches behind the gallery's threshold (mated, non-mated), and what it was chosen for.

    A mated search whose best answer is someone else is given as -inf: never accepted.
    """
    embeddings, labels = gallery.calibration_sample()
    keys, values = gallery.entries()
    mated, nonmated = identification.search_scores(
        embeddings, labels, keys, values, keys_are_photos=gallery.memory_kind == "StoreAllNearestNeighbour")
    searched = np.isfinite(mated)
    mated = np.where(mated[searched] > nonmated[searched], mated[searched], -np.inf)
    target = f"FPIR {gallery.calibration.fpir_target:g} of searches, for {gallery.calibration.people} people"
    return score_figures.identification_scores(mated, nonmated[np.isfinite(nonmated)]), target


def calibration_figure(gallery):
    """Score distributions with the stored threshold, beside the ROC."""
    sets, target = calibration_scores(gallery)
    return score_figures.score_figure(sets, gallery.threshold, target)


def write_calibration_figure(gallery, stem) -> list[Path]:
    """`calibration_figure` as `stem`.png and .svg (what `kshot calibrate` writes)."""
    return save_figure(calibration_figure(gallery), stem)


def render_examples(out_dir: Path, enrolled_people: int = 3) -> list[Path]:
    """The celebrity gallery's pictures, enrolled as `make gallery-results` does (experiments.gallery.demo):
    the train photos of the first `enrolled_people` (sorted by name), every photo of all five on the maps."""
    # FaceNet, the gallery's memory and the demo's choices load TensorFlow: only when rendering
    from experiments.faces.datasets import load_image_dataset
    from experiments.faces.embedder import FaceEmbedder
    from experiments.gallery.gallery import Gallery

    data = load_image_dataset("celebrities")
    embedder = FaceEmbedder()
    every = embedder.embed(data.paths)
    name_of = dict(zip(map(str, data.paths), data.labels))
    names = [name_of[p] for p in every.kept_paths]
    train = [(str(p), label) for p, label, split in zip(data.paths, data.labels, data.split) if split == "train"]
    enrolled = set(sorted(set(data.labels))[:enrolled_people])
    written = []
    for kind, store_all in (("kaiser", False), ("store_all", True)):
        gallery = Gallery(embedder, store_all=store_all)
        gallery.enroll([p for p, label in train if label in enrolled], names=[l for _, l in train if l in enrolled])
        figure = gallery_map_figure(gallery, every.embeddings, names, every.kept_paths,
                                    source=f"all five celebrities ({len(enrolled)} enrolled, the others strangers)")
        written += save_figure(figure, out_dir / f"map_{kind}", formats=("png",))
    everyone = Gallery(embedder, store_all=True)
    everyone.enroll([p for p, _ in train], names=[label for _, label in train])
    written += write_calibration_figure(everyone, out_dir / "scores_train_all5")
    return written


if __name__ == "__main__":
    for path in render_examples(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/gallery_pictures")):
        print(path)
