"""The docs say what the committed results files say.

Every number of README.md and the guides in docs/ sits in a block between
`<!-- generated:NAME -->` markers that only `make docs` (python -m experiments.publish)
writes, from the files experiments/publish/registry.py names. These tests fail when a
committed block differs from what the generator writes now, show on a copy of the
repository that a changed results file does make them fail, and keep the guides short
and free of references a reader cannot follow.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from experiments.publish.generate import documents, placement, render_all, stale, write_all
from experiments.publish.markers import read_blocks
from experiments.publish.registry import BLOCKS

REPO = Path(__file__).resolve().parents[1]
README_MAX_LINES = 250
GUIDE_MAX_LINES = 300


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return render_all(REPO)


def committed(doc: str) -> dict[str, str]:
    return read_blocks((REPO / doc).read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_generated_block_is_what_its_results_files_give(name, rendered):
    """The block is in every document its registry entry names, nowhere else, and equals a fresh render."""
    where = placement(REPO)  # also refuses a block no registry entry knows
    assert where.get(name, set()) == set(BLOCKS[name].docs), (
        f"block {name!r} should be in exactly {sorted(BLOCKS[name].docs)}, found in {sorted(where.get(name, ()))}")
    for doc in BLOCKS[name].docs:
        assert committed(doc)[name].strip("\n") == rendered[name], (
            f"{doc}: block {name!r} differs from what {', '.join(BLOCKS[name].sources)} give; run `make docs`")


# ---------------------------------------------------------------- the check can fail


def copy_of_the_repository(tmp_path: Path) -> Path:
    """README, the docs and every file a block is rendered from, in a fresh folder (figures left out)."""
    root = tmp_path / "repo"
    files = {p.relative_to(REPO) for p in documents(REPO)}
    files |= {Path(source) for block in BLOCKS.values() for source in block.sources}
    for relative in files:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / relative, root / relative)
    return root


EDITS = [  # (results file, old text, new text, a block that must go stale, the document holding it)
    ("docs/results/celebrities/summary.csv", "memory,5,200,0.98", "memory,5,200,0.88", "celebrity-demo", "README.md"),
    ("docs/results/omniglot_eval.json", '"mean": 0.9886', '"mean": 0.9786', "omniglot-dev", "docs/OMNIGLOT.md"),
    ("docs/results/footprint_lowres.md", "| memory_fold@16 | 8,648 | 0.33 | 70.1 |",
     "| memory_fold@16 | 8,648 | 0.33 | 71.1 |", "footprint-goal", "docs/MEMORY_POLICIES.md"),
    ("docs/results/gallery/results.json", '"nonmated_searches": 89', '"nonmated_searches": 90', "gallery-results",
     "docs/GALLERY.md"),
    ("docs/results/finetune_shifts/paired_differences.csv", "5,50,0.003913,-0.009348", "5,50,0.013913,-0.009348",
     "finetune-shifts", "docs/FINETUNING.md"),
    ("docs/results/finetune_shifts/decision.json", '"celebrities_noise / B8_offcons_adam1e-4_s1": "wins"',
     '"celebrities_noise / B8_offcons_adam1e-4_s1": "loses"',
     "finetune-shifts", "docs/FINETUNING.md"),
]


@pytest.mark.parametrize("path, old, new, block, doc", EDITS, ids=[edit[3] for edit in EDITS])
def test_a_changed_results_file_makes_its_block_stale(tmp_path, path, old, new, block, doc):
    root = copy_of_the_repository(tmp_path)
    assert stale(root) == [], "the copy should render exactly as the repository does"
    results = root / path
    text = results.read_text(encoding="utf-8")
    assert old in text, f"{path} no longer holds {old!r}; pick another edit for this test"
    results.write_text(text.replace(old, new, 1), encoding="utf-8")
    assert (doc, block) in stale(root)
    # and `make docs` repairs it, touching only the blocks
    before = (root / doc).read_text(encoding="utf-8")
    assert doc in write_all(root)
    assert stale(root) == []
    after = (root / doc).read_text(encoding="utf-8")
    outside = lambda text: re.sub(r"<!-- generated:([a-z0-9-]+) -->.*?<!-- /generated:\1 -->", "", text, flags=re.S)  # noqa: E731
    assert outside(after) == outside(before)


def test_every_declared_source_is_read_from_the_given_root(tmp_path):
    """Taking away any file a block names makes its render fail: the registry lists what is really read."""
    root = copy_of_the_repository(tmp_path)
    for name, block in BLOCKS.items():
        for source in block.sources:
            path = root / source
            hidden = path.with_name(path.name + ".hidden")
            path.rename(hidden)
            try:
                with pytest.raises(FileNotFoundError):
                    block.render(root)
            finally:
                hidden.rename(path)


# ---------------------------------------------------------------- what a reader can follow


def guides() -> list[Path]:
    return sorted((REPO / "docs").glob("*.md"))


def user_docs() -> list[Path]:
    return [REPO / "README.md", REPO / "data" / "README.md", *guides(), *sorted((REPO / "docs" / "lab").glob("*.md"))]


ISSUE_REFERENCE = re.compile(r"\bissues?\s*#?\d+|(?<![\w&/#])#\d+\b", re.I)


@pytest.mark.parametrize("doc", user_docs(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_bare_issue_references(doc):
    found = [m.group(0) for m in ISSUE_REFERENCE.finditer(doc.read_text(encoding="utf-8"))]
    assert not found, f"{doc.relative_to(REPO)} cites {found}: describe the work instead"


def test_readme_and_guides_stay_short():
    lengths = {doc.relative_to(REPO).as_posix(): len(doc.read_text(encoding="utf-8").splitlines())
               for doc in (REPO / "README.md", *guides())}
    assert lengths.pop("README.md") <= README_MAX_LINES
    too_long = {doc: n for doc, n in lengths.items() if n > GUIDE_MAX_LINES}
    assert not too_long, f"guides over {GUIDE_MAX_LINES} lines: {too_long} (move logs to docs/lab/)"


def test_every_test_the_reliability_table_cites_exists():
    """docs/RELIABILITY.md promises a test per case: a renamed or deleted test must not leave a dead citation."""
    table = (REPO / "docs" / "RELIABILITY.md").read_text(encoding="utf-8")
    cited = re.findall(r"(tests/[\w/]+\.py)::(\w+)", table)
    assert len(cited) >= 50
    missing = [f"{path}::{name}" for path, name in cited
               if not (REPO / path).is_file() or f"def {name}(" not in (REPO / path).read_text(encoding="utf-8")]
    assert not missing, f"docs/RELIABILITY.md cites tests that do not exist: {missing}"
