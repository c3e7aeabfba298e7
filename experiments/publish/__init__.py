"""Every published number, rendered by code from a committed results file (`make docs`).

README.md and docs/ hold blocks between markers that only this package writes; a
test (tests/test_docs.py) fails when a committed block differs from what the
generator writes now from the committed files.

    registry.py    block name -> (the files it is rendered from, its renderer, the docs that show it)
    generate.py    render every block into README.md and docs/**/*.md; list stale blocks
    markers.py     the `<!-- generated:NAME -->` ... `<!-- /generated:NAME -->` blocks of a file
    readme.py      the celebrity demo: copy a run into docs/results/celebrities; its blocks
    faces.py       the blog's curves, the fine-tuning study, footprint sweeps, gallery, open set
    omniglot.py    the Omniglot evaluations, comparisons, logs and manifest
    references.py  numbers published by others (the paper's Omniglot table)
    tables.py      reading results files relative to a root; Markdown tables and number formats

`python -m experiments.publish` (= `make docs`) rewrites the blocks; `--check` only reports.
"""
