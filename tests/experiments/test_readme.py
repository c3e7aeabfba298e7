"""The README keeps its promises: two quick-start commands, CI calls the test one, and the
celebrity result shown is exactly the committed run summary (regenerated, never pasted)."""

import re
from pathlib import Path

from experiments.publish.readme import read_block, replace_block, results_block

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
RESULTS = REPO / "docs" / "results" / "celebrities"


def quick_start_commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.split("#", 1)[0].strip()]


def test_quick_start_is_two_make_commands_and_ci_runs_the_test_one():
    assert quick_start_commands() == ["make demo", "make test"]
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci.split("\n", 3)[-1]


def test_readme_results_block_is_the_committed_run_summary():
    expected = results_block(RESULTS, RESULTS, REPO)
    assert read_block(README.read_text(encoding="utf-8")) == expected, (
        "README's results block differs from docs/results/celebrities; run `make readme-results`"
    )
    assert (RESULTS / "accuracy_vs_shots.png").is_file()


def test_replace_block_keeps_the_rest_of_the_readme(tmp_path):
    from experiments.publish.readme import END_MARKER, START_MARKER

    text = f"intro\n{START_MARKER}\nold\n{END_MARKER}\noutro\n"
    updated = replace_block(text, "new table")
    assert updated == f"intro\n{START_MARKER}\nnew table\n{END_MARKER}\noutro\n"
    assert read_block(updated) == "new table"
