"""A 2-D map of embeddings: photos as thumbnails coloured by person, the memory's slots among them.

A Kaiser memory merges photos of one person into a slot, so a slot is no photo at all;
which photos does it stand for? This map answers by looking: t-SNE (scikit-learn)
places the photos and the slots' keys together, in one embedding run, so both share
the map; each photo is drawn as a small thumbnail (or a dot) framed in its person's
colour, each slot as a star in its label's colour, joined by thin lines (and a faint
hull) to the photos whose nearest slot it is, i.e. the photos that slot answers for.

t-SNE keeps neighbours together but not distances: a gap between two groups says they
are apart, not how far. Rows are normalised first, so its Euclidean distances follow
cosine similarity, the memory's own measure. The layout depends only on the inputs
and `seed` (t-SNE's random_state); the start is the points' PCA projection, which keeps
the map's global arrangement and makes it change little from seed to seed.

Pure: arrays in, a matplotlib Figure out; nothing is read or written here.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import numpy as np
from matplotlib import colormaps
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.offsetbox import AnnotationBbox, OffsetImage
from matplotlib.patches import Polygon

from experiments.core.figures import MAX_TICK_NAMES, figure_style

MIN_POINTS = 3                 # t-SNE needs a perplexity below the number of points, and at least 2
MAX_PERPLEXITY = 30.0          # scikit-learn's default, for maps large enough to afford it
THUMBNAIL_PIXELS = 30          # a thumbnail's side on the map, in figure pixels at save_figure's dpi
FIGURE_DPI = 120               # save_figure's dpi: the thumbnails' zoom is computed for it
PHOTO_GID, THUMBNAIL_GID, SLOT_GID, HULL_GID = "photos", "thumbnail", "slots", "slot-hull"
LINK_GID, OTHER_LINK_GID = "slot-links", "slot-links-other"   # to a slot of the photo's person / of someone else


@dataclass(frozen=True)
class MapLayout:
    """Where t-SNE put each photo and each slot, and which slot each photo's nearest is."""

    photos: np.ndarray         # [n, 2]
    slots: np.ndarray          # [m, 2]
    nearest_slot: np.ndarray   # [n] index into slots, -1 without slots


def unit_rows(vectors, what: str) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2 or not np.isfinite(vectors).all():
        raise ValueError(f"{what} must be a finite 2-D array [n, d], got shape {vectors.shape}")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(f"{what} holds an all-zero row (row {int(np.flatnonzero(norms[:, 0] == 0)[0])}); "
                         "an embedding has a direction, so recompute it or drop that row")
    return vectors / norms


def perplexity_for(n_points: int) -> float:
    """t-SNE's perplexity (about the number of neighbours it keeps): 30, less for small maps, always < n."""
    return float(min(MAX_PERPLEXITY, max(2.0, (n_points - 1) / 3.0)))


def map_layout(embeddings, slot_keys=None, seed: int = 0) -> MapLayout:
    """Photos and slot keys embedded jointly by t-SNE; deterministic for `seed`."""
    # scikit-learn takes a second to import; only a map needs it
    from sklearn.manifold import TSNE

    photos = unit_rows(embeddings, "the photos' embeddings")
    keys = np.zeros((0, photos.shape[1])) if slot_keys is None else unit_rows(slot_keys, "the slots' keys")
    if keys.shape[1] != photos.shape[1]:
        raise ValueError(f"slot keys are {keys.shape[1]}-d but the photos' embeddings {photos.shape[1]}-d; "
                         "draw a memory with the embedder that filled it")
    points = np.concatenate([photos, keys])
    if len(points) < MIN_POINTS:
        raise ValueError(f"a map needs at least {MIN_POINTS} photos and slots together, got {len(points)}")
    tsne = TSNE(n_components=2, perplexity=perplexity_for(len(points)), init="pca", random_state=int(seed))
    xy = tsne.fit_transform(points)
    nearest = np.full(len(photos), -1, np.int64)
    if len(keys):
        nearest = np.argmax(photos @ keys.T, axis=1).astype(np.int64)
    return MapLayout(photos=xy[: len(photos)], slots=xy[len(photos):], nearest_slot=nearest)


def person_colours(names: list[str]) -> dict[str, tuple]:
    """One colour per distinct name, in sorted order; tab10/tab20 while they suffice."""
    people = sorted(set(names))
    if len(people) <= 10:
        palette = colormaps["tab10"].colors
    elif len(people) <= 20:
        palette = colormaps["tab20"].colors
    else:
        palette = [colormaps["turbo"](x) for x in np.linspace(0.05, 0.95, len(people))]
    return {name: tuple(palette[i]) for i, name in enumerate(people)}


def embedding_map_figure(embeddings, names, slot_keys=None, slot_names=None, thumbnails=None,
                         seed: int = 0, title: str = "", caption: str = "") -> Figure:
    """The map as a Figure.

    embeddings [n, d] and names [n]: the photos and who is in each.
    slot_keys [m, d] and slot_names [m]: the memory's filled slots (None: photos only).
    thumbnails: n images ([h, w, 3], uint8 or floats in [0, 1]) or None entries; None: dots only.
    caption: a sentence under the map saying how the slots were obtained.
    """
    names = [str(n) for n in names]
    if len(names) != len(embeddings):
        raise ValueError(f"{len(embeddings)} embeddings but {len(names)} names; give one name per photo")
    slot_names = [] if slot_keys is None else [str(n) for n in slot_names]
    if slot_keys is not None and len(slot_names) != len(slot_keys):
        raise ValueError(f"{len(slot_keys)} slot keys but {len(slot_names)} slot names; give one label per slot")
    if thumbnails is not None and len(thumbnails) != len(names):
        raise ValueError(f"{len(thumbnails)} thumbnails for {len(names)} photos; give one (or None) per photo")
    layout = map_layout(embeddings, slot_keys, seed)
    colours = person_colours(names + slot_names)
    with figure_style(sorted(set(names + slot_names))):
        fig = Figure(figsize=(10, 8.5), layout="constrained")
        ax = fig.subplots()
        draw_slot_links(ax, layout, names, slot_names, colours)
        draw_photos(ax, layout.photos, names, thumbnails, colours)
        if len(slot_names):
            ax.scatter(layout.slots[:, 0], layout.slots[:, 1], marker="*", s=260, zorder=5,
                       c=[colours[n] for n in slot_names], edgecolors="black", linewidths=1.0, gid=SLOT_GID)
        draw_legend(ax, names, slot_names, colours)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title or map_title(len(names), len(slot_names), seed), fontsize=10)
        if caption:
            ax.set_xlabel("\n".join(textwrap.wrap(caption, 150)), fontsize=8)
    return fig


def map_title(photos: int, slots: int, seed: int) -> str:
    what = f"{photos} photos" + (f" and {slots} memory slots (stars)" if slots else "")
    joined = "; lines join each slot to the photos it answers for (dotted: someone else's slot)" if slots else ""
    return f"t-SNE map of {what}{joined} (seed {seed})"


def draw_photos(ax, xy: np.ndarray, names: list[str], thumbnails, colours: dict) -> None:
    ax.scatter(xy[:, 0], xy[:, 1], s=18, c=[colours[n] for n in names], zorder=2, gid=PHOTO_GID)
    if thumbnails is None:
        return
    for point, name, image in zip(xy, names, thumbnails):
        if image is None:
            continue
        image = np.asarray(image)
        box = OffsetImage(image, zoom=THUMBNAIL_PIXELS * 72 / (max(image.shape[:2]) * FIGURE_DPI))
        frame = AnnotationBbox(box, tuple(point), frameon=True, pad=0.08, zorder=3,
                               bboxprops={"edgecolor": colours[name], "linewidth": 1.6})
        frame.set_gid(THUMBNAIL_GID)
        ax.add_artist(frame)
    # Thumbnails are not data limits: pad the axes so those on the edge stay inside.
    ax.margins(0.08)


def draw_slot_links(ax, layout: MapLayout, names: list[str], slot_names: list[str], colours: dict) -> None:
    """A line from every photo to its nearest slot (dotted when the slot holds someone else), and a
    faint hull round each slot and the photos of its own person it answers for."""
    if not len(slot_names):
        return
    own = np.array([names[i] == slot_names[s] for i, s in enumerate(layout.nearest_slot)], bool)
    for chosen, style, alpha, gid in ((own, "solid", 0.6, LINK_GID), (~own, ":", 0.5, OTHER_LINK_GID)):
        if not chosen.any():
            continue
        slots = layout.nearest_slot[chosen]
        segments = [(tuple(layout.slots[s]), tuple(p)) for p, s in zip(layout.photos[chosen], slots)]
        ax.add_collection(LineCollection(segments, colors=[colours[slot_names[s]] for s in slots], linestyles=style,
                                         linewidths=0.8, alpha=alpha, zorder=1, gid=gid))
    for slot, name in enumerate(slot_names):
        members = np.concatenate([layout.photos[(layout.nearest_slot == slot) & own], layout.slots[slot][None]])
        hull = convex_hull(members)
        if hull is not None:
            ax.add_patch(Polygon(hull, closed=True, facecolor=colours[name], edgecolor="none", alpha=0.10,
                                 zorder=0, gid=HULL_GID))


def convex_hull(points: np.ndarray) -> np.ndarray | None:
    """The hull's corners in order, or None when the points span no area (fewer than 3, or on a line)."""
    # scipy's Qhull: only a map with slots needs it
    from scipy.spatial import ConvexHull, QhullError

    if len(np.unique(np.round(points, 9), axis=0)) < 3:
        return None
    try:
        return points[ConvexHull(points).vertices]
    except QhullError:
        return None


def draw_legend(ax, names: list[str], slot_names: list[str], colours: dict) -> None:
    people = sorted(set(names + slot_names))
    if len(people) > MAX_TICK_NAMES:
        ax.text(0.01, 0.01, f"{len(people)} people: colours only (too many to name)", transform=ax.transAxes,
                fontsize=7, va="bottom")
        return
    counts = {p: names.count(p) for p in people}
    slots = {p: slot_names.count(p) for p in people}
    handles = [Line2D([], [], marker="o", linestyle="", color=colours[p],
                      label=f"{p} ({counts[p]} photos" + (f", {slots[p]} slot{'s' * (slots[p] != 1)})" if slot_names else ")"))
               for p in people]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
