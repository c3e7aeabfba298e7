"""A paired comparison's verdict, from its JSON alone.

Apart from compare.py (which embeds drawings, so loads TensorFlow) so that the notebook's
views and the docs read a committed comparison without starting TensorFlow.
"""

from __future__ import annotations

from experiments.core.metrics import interval_verdict


def verdict(cell: dict) -> str:
    """A compared cell's verdict: 'within noise', 'checkpoint better' or 'reference better'."""
    return interval_verdict(cell["ci_low"], cell["ci_high"], cell["difference"], "checkpoint better", "reference better")
