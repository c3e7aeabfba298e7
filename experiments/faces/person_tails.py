"""Per-person tail models of stranger scores: where a gallery's threshold goes when searches are too few.

A gallery of P people gives a stranger P chances, one per enrolled person, and the
leave-one-out searches that calibrate it are too few to resolve FPIR 0.001 by counting.
These models extrapolate from the (searched person, enrolled person) scores instead, each
read at the per-person rate; experiments.faces.identification takes the largest of a model,
the sample rule and the photo-pair floor. Which model is the default, and why, is in
docs/lab/2026-12-gallery-thresholds.md.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
from scipy.stats import t as student_t

PERSON_RULES = ("pairs", "pairs_t", "extreme", "pairs_t+extreme")
EXTREME_MIN_TOP = 10        # an exponential tail is fitted to at least this many top scores ...
EXTREME_TOP_SHARE = 0.05    # ... or this share of them, whichever is more


def pair_groups(by_person: np.ndarray, query_labels) -> list[np.ndarray]:
    """Fisher z of the scores of each (searched person, enrolled person) pair, one array per pair."""
    query_labels = np.asarray(query_labels)
    return [np.arctanh(np.clip(by_person[query_labels == q, j], -0.999999, 0.999999))
            for q in np.unique(query_labels) for j in range(by_person.shape[1])
            if np.isfinite(by_person[query_labels == q, j]).all() and (query_labels == q).any()]


def per_person_rate(fpir: float, people: int) -> float:
    """The rate per enrolled person that gives gallery FPIR `fpir` when each person is one independent chance."""
    return 1.0 - (1.0 - fpir) ** (1.0 / max(people, 1))


def pairs_threshold(by_person: np.ndarray, query_labels, fpir: float, predictive: bool = False) -> float:
    """A normal on the Fisher z of (stranger, enrolled person) scores, with the spread between such pairs.

    A stranger who resembles one enrolled person scores high against them on every photo,
    so the scores come in pairs of identities, and few people give few pairs. The spread
    is the variance of the pair means plus the pooled variance within pairs; the gallery
    holds all `by_person.shape[1]` people, each one chance (per_person_rate).
    `predictive`: read a Student-t prediction (g - 1 degrees of freedom for g pairs, spread
    widened by sqrt(1 + 1/g)) instead of the normal, so the spread of a few pairs is not
    trusted as if it were known. NaN without two pairs.
    """
    groups = pair_groups(by_person, query_labels)
    if len(groups) < 2:
        return float("nan")
    means = np.array([g.mean() for g in groups])
    within = sum(((g - g.mean()) ** 2).sum() for g in groups) / max(sum(g.size - 1 for g in groups), 1)
    spread = np.sqrt(means.var(ddof=1) + within)
    rate = per_person_rate(fpir, by_person.shape[1])
    if predictive:
        width = np.sqrt(1.0 + 1.0 / len(groups)) * student_t.ppf(1.0 - rate, len(groups) - 1)
    else:
        width = NormalDist().inv_cdf(1.0 - rate)
    return float(np.tanh(means.mean() + spread * width))


def extreme_threshold(by_person: np.ndarray, fpir: float) -> float:
    """An exponential tail (peaks over threshold) on the top of the (kept photo, other person) best scores.

    Best-of-N similarity scores lie in the Gumbel domain, whose tail is exponential: above
    u, the (k+1)-th highest Fisher z of n scores, P(z > u + y) = (k / n) exp(-y / b), with b
    the mean excess of the top k = max(EXTREME_MIN_TOP, EXTREME_TOP_SHARE * n). Read at the
    per-person rate. Unlike a normal on all scores, the top few look-alike pairs set it.
    NaN with n <= k or no spread at the top.
    """
    scores = by_person[np.isfinite(by_person)]
    top = max(EXTREME_MIN_TOP, int(np.ceil(EXTREME_TOP_SHARE * scores.size)))
    if scores.size <= top:
        return float("nan")
    z = np.sort(np.arctanh(np.clip(scores, -0.999999, 0.999999)))[::-1]
    excess = float(np.mean(z[:top] - z[top]))
    if not excess > 0:
        return float("nan")
    rate = per_person_rate(fpir, by_person.shape[1])
    return float(np.tanh(z[top] + excess * np.log(top / (scores.size * rate))))


def model_threshold(rule: str, by_person: np.ndarray, query_labels, fpir: float) -> float:
    """The per-person model threshold of one of PERSON_RULES (NaN where its model cannot be fitted)."""
    if rule == "pairs":
        return pairs_threshold(by_person, query_labels, fpir)
    if rule == "pairs_t":
        return pairs_threshold(by_person, query_labels, fpir, predictive=True)
    if rule == "extreme":
        return extreme_threshold(by_person, fpir)
    return float(np.fmax(pairs_threshold(by_person, query_labels, fpir, predictive=True),
                         extreme_threshold(by_person, fpir)))
