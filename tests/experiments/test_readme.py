"""The README keeps its promises: two quick-start commands (CI calls the test one), every Python
block runs as pasted, and each headline result is a generated block with a link to its guide.

Whether the blocks equal their results files is tests/test_docs.py's job; this file checks
what the README itself must hold.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.publish.markers import read_blocks, replace_blocks
from experiments.publish.readme import FIGURES, publish_run
from experiments.publish.registry import BLOCKS

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
HEADLINES = {  # generated block -> the guide its section links to
    "celebrity-demo": "docs/YOUR_DATA.md",
    "blog-published": "docs/BLOG_SETTING.md",
    "finetune-shift": "docs/FINETUNING.md",
    "omniglot-official": "docs/OMNIGLOT.md",
    "footprint-summary": "docs/MEMORY_POLICIES.md",
    "gallery-summary": "docs/GALLERY.md",
}


def readme() -> str:
    return README.read_text(encoding="utf-8")


def quick_start_commands() -> list[str]:
    section = readme().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.split("#", 1)[0].strip()]


def test_quick_start_is_two_make_commands_and_ci_runs_the_test_one():
    assert quick_start_commands() == ["make demo", "make test"]
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci.split("\n", 3)[-1]
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^docs: .*\n\t\$\(BIN\)/python -m experiments\.publish$", makefile, re.M)


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", readme(), re.S)


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_readme_python_block_runs_as_pasted(index, tmp_path):
    """In a fresh process and an empty folder, as a reader who pastes it would run it."""
    code = python_blocks()[index]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"README Python block {index + 1} failed:\n{code}\n{done.stderr[-3000:]}"


def test_readme_has_python_blocks():
    assert python_blocks(), "the README shows the memory API in a runnable Python block"


def section_of(text: str, name: str) -> str:
    """The README's ### section that holds block `name`."""
    end = text.index(f"<!-- /generated:{name} -->")
    start = text.rfind("\n### ", 0, end)
    following = [i for i in (text.find("\n### ", end), text.find("\n## ", end)) if i >= 0]
    return text[start : min(following, default=len(text))]


def test_each_headline_result_is_generated_and_links_its_guide():
    text = readme()
    blocks = read_blocks(text)
    for name, guide in HEADLINES.items():
        assert name in blocks and "README.md" in BLOCKS[name].docs
        assert (REPO / guide).is_file()
        assert f"({guide})" in section_of(text, name), f"the README section of {name!r} should link {guide}"
    assert blocks["omniglot-official"].startswith("OFFICIAL benchmark: Omniglot's 20 evaluation alphabets")
    guide = read_blocks((REPO / "docs" / "OMNIGLOT.md").read_text(encoding="utf-8"))
    assert "DEVELOPMENT table: held-out background alphabets, not the official evaluation set" in guide["omniglot-dev"]


def test_publish_run_copies_the_run_files_the_celebrity_blocks_read(tmp_path):
    run = tmp_path / "run"
    (run / "figures").mkdir(parents=True)
    for name in ("summary.md", "summary.csv", "paired.csv", *(f"figures/{f}" for f in FIGURES)):
        (run / name).write_text(f"content of {name}")
    publish_run(run, tmp_path / "docs")
    assert sorted(p.name for p in (tmp_path / "docs").iterdir()) == sorted(
        ["summary.md", "summary.csv", "paired.csv", *FIGURES])
    (run / "paired.csv").unlink()
    with pytest.raises(FileNotFoundError, match="paired.csv"):
        publish_run(run, tmp_path / "again")


def test_replace_blocks_keeps_the_rest_of_the_document():
    text = "intro\n<!-- generated:a -->\nold\n<!-- /generated:a -->\nmiddle\n<!-- generated:b -->\nkept\n<!-- /generated:b -->\n"
    updated = replace_blocks(text, {"a": "new\ntable"})
    assert updated == text.replace("old", "new\ntable")
    assert read_blocks(updated) == {"a": "new\ntable", "b": "kept"}
    with pytest.raises(ValueError, match="no matching"):
        read_blocks("<!-- generated:a -->\nunclosed\n")
