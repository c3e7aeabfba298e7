"""The 2-D embedding map (experiments.faces.embedding_map) and the commands that draw it:
`kshot map` for a gallery and `kshot report --map` for a k-shot run.

Small inputs (t-SNE on fewer than 60 points) and stand-in embedders keep these fast.
"""

import zlib
from pathlib import Path

import numpy as np
import pytest
from matplotlib.offsetbox import AnnotationBbox
from PIL import Image
from support import FAKE_DIM, FakeEmbedder, clustered_embeddings, fake_centre, write_embeddings_npz

from experiments.cli import main
from experiments.faces.embedding_map import embedding_map_figure, map_layout, perplexity_for


def _centres(embeddings, names):
    people = sorted(set(names))
    return np.stack([embeddings[np.asarray(names) == p].mean(axis=0) for p in people]), people


def _gid(fig, gid):
    return [a for ax in fig.axes for a in ax.get_children() if a.get_gid() == gid]


def test_the_layout_is_deterministic_for_a_seed():
    embeddings, names, _ = clustered_embeddings(n_classes=4, per_class=8, dim=16)
    keys, _ = _centres(embeddings, names)
    first, again = map_layout(embeddings, keys, seed=3), map_layout(embeddings, keys, seed=3)
    np.testing.assert_array_equal(first.photos, again.photos)
    np.testing.assert_array_equal(first.slots, again.slots)
    assert first.photos.shape == (32, 2) and first.slots.shape == (4, 2)


def test_each_photo_is_linked_to_its_nearest_slot_by_cosine():
    embeddings, names, _ = clustered_embeddings(n_classes=3, per_class=6, dim=8, spread=1.0)
    keys = np.random.default_rng(1).normal(size=(5, 8))
    layout = map_layout(embeddings, keys, seed=0)
    unit_keys = keys / np.linalg.norm(keys, axis=1, keepdims=True)
    expected = [int(np.argmax([e @ k for k in unit_keys])) for e in embeddings / np.linalg.norm(embeddings, axis=1)[:, None]]
    assert layout.nearest_slot.tolist() == expected


def test_one_thumbnail_per_photo_one_star_per_slot_one_link_per_photo():
    embeddings, names, _ = clustered_embeddings(n_classes=3, per_class=5, dim=8)
    keys, people = _centres(embeddings, names)
    thumbnails = [np.full((12, 12, 3), 40 * i % 256, np.uint8) for i in range(len(names))]
    thumbnails[4] = None   # a photo without a usable face: a dot, no thumbnail
    fig = embedding_map_figure(embeddings, names, keys, people, thumbnails, seed=0, caption="how the slots were made")
    ax = fig.axes[0]
    boxes = [a for a in ax.artists if isinstance(a, AnnotationBbox)]
    assert len(boxes) == len(names) - 1 == len(_gid(fig, "thumbnail"))
    (stars,) = _gid(fig, "slots")
    assert len(stars.get_offsets()) == len(people)
    (links,) = _gid(fig, "slot-links")
    assert len(links.get_segments()) == len(names) and not _gid(fig, "slot-links-other")
    (dots,) = _gid(fig, "photos")
    assert len(dots.get_offsets()) == len(names)
    assert ax.get_xlabel() == "how the slots were made"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [f"{p} (5 photos, 1 slot)" for p in people]


def test_a_photo_answered_by_someone_elses_slot_gets_a_dotted_line_and_stays_out_of_the_hull():
    embeddings, names, _ = clustered_embeddings(n_classes=3, per_class=5, dim=8)
    keys, people = _centres(embeddings, names)
    fig = embedding_map_figure(embeddings, names, keys[:2], people[:2], seed=0)   # the third person holds no slot
    (own,), (other,) = _gid(fig, "slot-links"), _gid(fig, "slot-links-other")
    assert len(own.get_segments()) == 10 and len(other.get_segments()) == 5
    hulls = _gid(fig, "slot-hull")
    assert len(hulls) == 2 and all(len(h.get_xy()) <= 5 + 1 + 1 for h in hulls)   # a slot and its 5 photos, closed


def test_photos_only_without_slots():
    embeddings, names, _ = clustered_embeddings(n_classes=2, per_class=4, dim=8)
    fig = embedding_map_figure(embeddings, names, seed=0)
    assert not _gid(fig, "slots") and not _gid(fig, "slot-links") and not _gid(fig, "thumbnail")
    assert "8 photos" in fig.axes[0].get_title()


def test_perplexity_stays_below_the_number_of_points():
    assert [perplexity_for(n) for n in (3, 10, 31, 500)] == [2.0, 3.0, 10.0, 30.0]


@pytest.mark.parametrize("kwargs, message", [
    ({"embeddings": np.ones((2, 4)), "names": ["a", "b"]}, "at least 3 photos and slots"),
    ({"embeddings": np.ones((3, 4)), "names": ["a", "b"]}, "3 embeddings but 2 names"),
    ({"embeddings": np.vstack([np.ones((2, 4)), np.zeros((1, 4))]), "names": list("abc")}, "all-zero row .row 2."),
    ({"embeddings": np.ones((3, 4)), "names": list("abc"), "slot_keys": np.ones((1, 5)), "slot_names": ["a"]},
     "slot keys are 5-d"),
    ({"embeddings": np.ones((3, 4)), "names": list("abc"), "thumbnails": [None]}, "1 thumbnails for 3 photos"),
])
def test_bad_inputs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        embedding_map_figure(**kwargs)


# ---------------------------------------------------------------- kshot map on a gallery


class FolderNameEmbedder(FakeEmbedder):
    """The gallery tests' stand-in embedder for real image files: a photo's person is its folder's name."""

    def embed(self, paths, aligned: bool = False):
        from facenet_tf import EmbeddedPaths  # as FakeEmbedder does: its result type

        rows = []
        for path in map(str, paths):
            jitter = np.random.default_rng(zlib.crc32(Path(path).name.encode())).normal(size=FAKE_DIM)
            rows.append(fake_centre(Path(path).parent.name) + self.noise * jitter)
        return EmbeddedPaths(np.asarray(rows, np.float32), list(map(str, paths)), [])


def image_folder(root: Path, people: dict[str, int]) -> Path:
    """root/<name>/<i>.png: small coloured squares standing in for aligned face crops."""
    for p, (name, count) in enumerate(people.items()):
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", (40, 40), (60 * p % 256, 25 * i % 256, 128)).save(root / name / f"{name}_{i}.png")
    return root


def test_kshot_map_draws_one_thumbnail_per_photo_and_one_star_per_slot(tmp_path, monkeypatch):
    from experiments.cli import gallery as gallery_cli
    from experiments.gallery.gallery import Gallery

    monkeypatch.setenv("KSHOT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(gallery_cli, "gallery_embedder", lambda args, path: FolderNameEmbedder())
    people = image_folder(tmp_path / "people", {"ada": 4, "bob": 3, "cleo": 3})
    gallery = Gallery(FolderNameEmbedder(), memory_size=8)
    gallery.enroll(people, aligned=True)
    gallery.save(tmp_path / "g.npz")
    slots = gallery.memory.slots_in_use()

    drawn = []
    import experiments.gallery.pictures as pictures

    original = pictures.embedding_map_figure
    monkeypatch.setattr(pictures, "embedding_map_figure", lambda *a, **k: drawn.append(original(*a, **k)) or drawn[-1])
    argv = ["map", "--gallery", str(tmp_path / "g.npz"), "--data", str(people), "--aligned", "--out", str(tmp_path / "m")]
    assert main(argv) == 0
    assert (tmp_path / "m.png").stat().st_size > 0 and (tmp_path / "m.svg").stat().st_size > 0
    (fig,) = drawn
    assert len(_gid(fig, "thumbnail")) == 10
    assert len(_gid(fig, "slots")[0].get_offsets()) == slots
    assert "Kaiser memory slots" in " ".join(fig.axes[0].get_xlabel().split())

    assert main(argv + ["--seed", "0"]) == 0   # the same seed draws the same map
    np.testing.assert_array_equal(_gid(drawn[0], "photos")[0].get_offsets(), _gid(drawn[1], "photos")[0].get_offsets())


@pytest.mark.parametrize("argv, message", [
    (["map", "--gallery", "{tmp}/none.npz", "--data", "{tmp}"], "none.npz does not exist"),
    (["map", "--gallery", "{tmp}/g.npz", "--data", "{tmp}/nowhere"], "is not a folder"),
])
def test_kshot_map_refuses_bad_paths_before_loading_anything(tmp_path, capsys, argv, message):
    (tmp_path / "g.npz").write_bytes(b"")
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    assert message in capsys.readouterr().err


# ---------------------------------------------------------------- kshot report --map on a run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    npz = write_embeddings_npz(tmp / "emb.npz", n_classes=4, per_class=6, dim=8, spread=1.0)
    out = tmp / "run"
    assert main(["run", "--embeddings", str(npz), "--out", str(out), "--models", "baseline,memory",
                 "--repeats", "2", "--set", "memory.memory_size=20", "--no-figures", "--no-progress"]) == 0
    return out


def test_report_map_replays_repeat_0_and_draws_its_slots(tiny_run):
    from experiments.faces.repeats import load_repeat
    from experiments.faces.run_map import run_map_figure

    fig, model = run_map_figure(tiny_run)
    assert model == "memory"
    stored = load_repeat(tiny_run, "memory", 0, None)
    (stars,) = _gid(fig, "slots")
    assert len(stars.get_offsets()) == stored.slots_in_use[-1]
    caption = " ".join(fig.axes[0].get_xlabel().split())
    assert "its answers equal the stored repeat 0" in caption
    assert "Dots: the run was made from an embeddings file" in caption
    assert not _gid(fig, "thumbnail")

    assert main(["report", str(tiny_run), "--map", "--no-figures"]) == 0
    assert (tiny_run / "figures" / "map_memory.png").stat().st_size > 0


def test_report_map_model_picks_the_memory_and_refuses_others(tiny_run, capsys):
    from experiments.faces.repeats import load_repeat
    from experiments.faces.run_map import run_map_figure

    fig, model = run_map_figure(tiny_run, "baseline")
    fed = load_repeat(tiny_run, "baseline", 0, None).feed
    assert model == "baseline" and len(_gid(fig, "slots")[0].get_offsets()) == (fed >= 0).sum()  # store-all: every fed item
    assert main(["report", str(tiny_run), "--map-model", "fifo", "--no-figures"]) == 2
    assert "--map-model 'fifo' is not a model of this run" in capsys.readouterr().err


def test_a_run_from_images_gets_thumbnails_of_its_crops(tmp_path, monkeypatch):
    from experiments.core.settings import with_overrides
    from experiments.faces.run_map import run_thumbnails
    from experiments.faces.settings import RunConfig

    monkeypatch.setenv("KSHOT_CACHE", str(tmp_path / "cache"))
    people = image_folder(tmp_path / "people", {"ada": 2, "bob": 2})
    paths = sorted(str(p) for p in people.rglob("*.png")) + [str(tmp_path / "gone.png")]
    config = with_overrides(RunConfig(), origin="test", data__source=str(people), data__aligned=True)
    thumbnails, note = run_thumbnails(config, paths)
    assert note == "" and [t is None for t in thumbnails] == [False] * 4 + [True]
    assert thumbnails[0].shape == (48, 48, 3) and thumbnails[0].dtype == np.uint8


def test_only_memories_on_frozen_embeddings_can_be_replayed():
    from experiments.core.settings import with_overrides
    from experiments.faces.run_map import chosen_model
    from experiments.faces.settings import RunConfig

    config = with_overrides(RunConfig(), origin="test", run__models=("baseline", "memory_finetune_phase_off", "fifo"))
    with pytest.raises(ValueError, match="cannot be replayed without fine-tuning FaceNet again.*baseline, fifo"):
        chosen_model(config, "memory_finetune_phase_off")
    with pytest.raises(ValueError, match="no Kaiser-memory model on frozen embeddings.*--map-model"):
        chosen_model(config, None)
    assert chosen_model(config, "fifo") == "fifo"
