"""Put a finished run's summary table and accuracy figure into the README.

The README shows the celebrity result. Pasted numbers drift as the code changes, so
the block between the two markers below is only ever written by this module, from a
run directory, and a test checks that the block still equals the committed summary:

    make readme-results      # = kshot run --out runs/readme && python -m experiments.publish.readme runs/readme
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import pandas as pd

from experiments.core.run_files import FIGURES_DIR, PAIRED_FILE, SUMMARY_CSV, SUMMARY_MD
from experiments.faces.analysis import describe_run
from kshot_io import write_text_atomic

START_MARKER = "<!-- results:start (written by `make readme-results`; do not edit by hand) -->"
END_MARKER = "<!-- results:end -->"
FIGURES = ("accuracy_vs_shots.png", "accuracy_vs_shots.svg")


def results_block(run_dir: Path, docs_dir: Path, readme_dir: Path) -> str:
    """The Markdown between the markers: figure, a reading computed from the numbers, the table."""
    summary_md = (run_dir / SUMMARY_MD).read_text(encoding="utf-8").strip()
    reading = describe_run(pd.read_csv(run_dir / PAIRED_FILE))
    figure = (docs_dir / FIGURES[0]).relative_to(readme_dir).as_posix()
    parts = [
        f"![k-shot accuracy on the celebrity set, mean and 95% CI]({figure})",
        "",
        "Reading (generated from the table below by `experiments.faces.analysis.describe_run`):",
        "",
        "```text",
        reading,
        "```",
        "",
        # the run summary's headings sit below the README's section heading
        summary_md.replace("# k-shot run summary", "### Run summary", 1).replace("\n## ", "\n#### "),
    ]
    return "\n".join(parts)


def replace_block(readme_text: str, block: str) -> str:
    start = readme_text.find(START_MARKER)
    end = readme_text.find(END_MARKER)
    if start < 0 or end < start:
        raise ValueError(f"the README has no results block; it needs the lines {START_MARKER!r} and {END_MARKER!r}")
    return readme_text[: start + len(START_MARKER)] + "\n" + block + "\n" + readme_text[end:]


def read_block(readme_text: str) -> str:
    start = readme_text.find(START_MARKER)
    end = readme_text.find(END_MARKER)
    if start < 0 or end < start:
        raise ValueError("the README has no results block")
    return readme_text[start + len(START_MARKER) : end].strip("\n")


def publish(run_dir: Path, readme: Path, docs_dir: Path) -> None:
    run_dir, readme, docs_dir = Path(run_dir), Path(readme), Path(docs_dir)
    for name in (SUMMARY_MD, SUMMARY_CSV, PAIRED_FILE, *(f"{FIGURES_DIR}/{f}" for f in FIGURES)):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{run_dir / name} is missing; run `kshot run --out {run_dir}` (or `kshot report {run_dir}`) first")
    docs_dir.mkdir(parents=True, exist_ok=True)
    for name in FIGURES:
        shutil.copyfile(run_dir / FIGURES_DIR / name, docs_dir / name)
    for name in (SUMMARY_MD, SUMMARY_CSV, PAIRED_FILE):
        shutil.copyfile(run_dir / name, docs_dir / name)
    block = results_block(docs_dir, docs_dir, readme.parent.resolve())
    write_text_atomic(readme, replace_block(readme.read_text(encoding="utf-8"), block))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.publish.readme", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--readme", type=Path, default=Path("README.md"))
    parser.add_argument("--docs", type=Path, default=Path("docs/results/celebrities"))
    args = parser.parse_args(argv)
    publish(args.run_dir, args.readme, args.docs.resolve())
    print(f"updated {args.readme} and {args.docs} from {args.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
