"""Open-set identification thresholds (FPIR / FNIR, as NIST FRVT 1:N defines them).

A gallery answers a photo with the best of its N entries (the Kaiser memory's slots,
or store-all's rows), so a stranger gets N chances to reach the threshold. A threshold
chosen from photo-to-photo pairs at a false-accept rate (experiments.faces.open_set)
therefore lets strangers in at up to N times that rate. Here the threshold is chosen
for the quantity `identify` actually produces:

- FPIR (false positive identification rate): the share of non-mated searches (a
  stranger's photo) whose best answer reaches the threshold.
- FNIR (false negative identification rate): the share of mated searches (a known
  person's photo) that do not return the right person at or above the threshold
  (the best entry is another person's, or it is below the threshold).

Non-mated searches are made from the enrolled data by leaving each person out in turn:
a photo of person p is searched against the entries whose label is not p, and its
non-mated score is its best similarity among them. For store-all this is exactly the
gallery rebuilt without p (its rows are the photos, and p's rows are simply absent).
For the Kaiser memory it is an approximation: without p, a few photos of others that
were written as new slots because their nearest slot was p's would have merged into
their own person's slot instead, and slots p evicted would still be there; the other
people's slots are otherwise the ones they wrote. Either way the search reads the
gallery as `identify` reads it: cosine similarity of the unit photo to every filled entry.

Mated searches must not find the photo itself. Store-all: the photo's own row is left
out (the person's other rows answer). Kaiser memory: a slot the photo was merged into
partly is that photo, and a merge cannot be undone, so a mated search compares the photo
with the person's other kept photos instead (photo to photo, as store-all would). This
is honest about the photo, not exact about the slots; the slot-level FNIR is measured on
photos never enrolled (`make gallery-results`, the open-set k-shot runner).

Gallery size. Each leave-one-out gallery has P - 1 people; the real one has P, one more
chance for a stranger. Treating a stranger's best score against each person as
independent, P(best of P < t) = P(best of P - 1 < t) ** (P / (P - 1)), so the real
gallery's FPIR is `1 - (1 - f) ** (P / (P - 1))` for a leave-one-out rate f, and the
threshold is chosen at the leave-one-out rate `1 - (1 - fpir) ** ((P - 1) / P)`.

Too few searches. n non-mated searches cannot resolve an FPIR much below 1 / n, and the
searches of one person are not independent (a stranger who resembles one enrolled person
scores high against them on every photo). The threshold (rule "pairs_t+extreme", the
default) is the largest of four lower limits, the two models read at the per-person rate
1 - (1 - fpir) ** (1 / P) for a gallery of P people:
- the sample rule: just above the highest leave-one-out stranger score allowed at the rate;
- "pairs_t": a Student-t prediction on the Fisher z (atanh) of the (searched person,
  enrolled person) scores, whose spread includes the spread between such pairs; with few
  people there are few pairs, and the t refuses to trust their spread (a 2-person gallery
  names almost no one at FPIR 0.001: it cannot show that strangers stay out);
- "extreme": an exponential tail (peaks over threshold) on the top (kept photo, other
  person) scores, which follows the heavy tail of look-alike identities among many people;
- the photo-pair threshold at FAR = fpir (a gallery's FPIR is at least the pair rate).
The calibration says when the FPIR is not resolved, and what the counts alone guarantee: with
k of n searches accepted, FPIR <= the one-sided 95% Clopper-Pearson bound (about 3 / n for
none), corrected for gallery size. The rule was chosen among RULES on two choosing sets, the
celebrity train photos and Omniglot validation-alphabet keys (docs/lab/2026-12-gallery-thresholds.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np
from scipy.stats import beta

from experiments.faces.person_tails import PERSON_RULES, model_threshold

REPORTED_FPIRS = (1e-2, 1e-3)
DEFAULT_FPIR = 1e-3
CONFIDENCE = 0.95
MIN_TAIL_SEARCHES = 3       # a normal tail needs a spread: fewer searches use the sample rule alone
SELF_MATCH = 1.0 - 1e-5     # similarity at which a store-all row is the searched photo itself
RULES = ("sample", "tail", "max", *PERSON_RULES)   # threshold rules compared in docs/lab/2026-12-gallery-thresholds.md
DEFAULT_RULE = "pairs_t+extreme"   # chosen on two choosing sets, with the pair floor on (docs/lab/2026-12-gallery-thresholds.md)


def check_fpir(fpir: float) -> float:
    fpir = float(fpir)
    if not 0.0 < fpir < 1.0:
        raise ValueError(f"the target FPIR (share of strangers accepted) must be in (0, 1), got {fpir}")
    return fpir


def unit_rows(vectors) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def nonmated_scores(queries, query_labels, keys, key_labels) -> np.ndarray:
    """Each query's best similarity over the entries of other labels (leave its identity out).

    -inf for a query whose gallery holds no one else.
    """
    query_labels, key_labels = np.asarray(query_labels), np.asarray(key_labels)
    similarity = unit_rows(queries) @ unit_rows(keys).T if len(key_labels) else np.zeros((len(query_labels), 0))
    similarity = np.where(query_labels[:, None] == key_labels[None, :], -np.inf, similarity)
    return similarity.max(axis=1, initial=-np.inf)


def person_scores(queries, query_labels, keys, key_labels) -> np.ndarray:
    """[queries, people] each query's best similarity to each person's entries (-inf for its own person).

    People are the distinct key labels in sorted order; the row max is `nonmated_scores`.
    """
    query_labels, key_labels = np.asarray(query_labels), np.asarray(key_labels)
    people = np.unique(key_labels)
    similarity = unit_rows(queries) @ unit_rows(keys).T
    out = np.stack([similarity[:, key_labels == p].max(axis=1) for p in people], axis=1) if people.size else \
        np.zeros((len(query_labels), 0))
    return np.where(query_labels[:, None] == people[None, :], -np.inf, out)


def mated_scores(queries, query_labels, keys, key_labels, self_in_keys: bool) -> np.ndarray:
    """Each query's best similarity over its own label's entries, never the query itself.

    `self_in_keys` (store-all rows, or kept photos searched against each other): the one
    entry that is the query (similarity >= SELF_MATCH, the best one) is left out.
    -inf when nothing of the query's label is left.
    """
    query_labels, key_labels = np.asarray(query_labels), np.asarray(key_labels)
    similarity = unit_rows(queries) @ unit_rows(keys).T if len(key_labels) else np.zeros((len(query_labels), 0))
    similarity = np.where(query_labels[:, None] == key_labels[None, :], similarity, -np.inf)
    if self_in_keys and similarity.shape[1]:
        best = similarity.argmax(axis=1)
        rows = np.arange(len(query_labels))
        itself = similarity[rows, best] >= SELF_MATCH
        similarity[rows[itself], best[itself]] = -np.inf
    return similarity.max(axis=1, initial=-np.inf)


def gallery_size_rate(loo_rate, people: int):
    """FPIR of a gallery of `people` from the rate of its (people - 1)-person leave-one-out galleries."""
    if people < 2:
        return loo_rate
    return 1.0 - (1.0 - np.asarray(loo_rate, np.float64)) ** (people / (people - 1))


def loo_target(fpir: float, people: int) -> float:
    """The leave-one-out rate whose gallery-size-corrected FPIR is `fpir` (inverse of gallery_size_rate)."""
    return fpir if people < 2 else 1.0 - (1.0 - fpir) ** ((people - 1) / people)


def upper_bound(accepted: int, searches: int, confidence: float = CONFIDENCE) -> float:
    """One-sided Clopper-Pearson upper bound of a rate (1 - (1 - confidence) ** (1 / n) when none was accepted)."""
    if searches <= 0 or accepted >= searches:
        return 1.0
    return float(beta.ppf(confidence, accepted + 1, searches - accepted))


def clopper_pearson(count: int, total: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Two-sided exact interval of a proportion, always inside [0, 1]; (0, 1) for nothing counted."""
    if total <= 0:
        return 0.0, 1.0
    tail = (1.0 - confidence) / 2
    low = 0.0 if count <= 0 else float(beta.ppf(tail, count, total - count + 1))
    high = 1.0 if count >= total else float(beta.ppf(1 - tail, count + 1, total - count))
    return low, high


def sample_threshold(scores: np.ndarray, rate: float) -> float:
    """The lowest threshold accepting at most floor(rate * n) of `scores` (just above the top ones)."""
    ordered = np.sort(np.asarray(scores, np.float64))[::-1]
    allowed = int(np.floor(rate * ordered.size))
    if allowed >= ordered.size:
        return float(ordered[-1])
    return float(np.nextafter(ordered[allowed], np.inf))


def tail_threshold(scores: np.ndarray, rate: float) -> float:
    """A normal fitted to atanh(scores), read at 1 - rate; NaN with fewer than MIN_TAIL_SEARCHES or no spread."""
    z = np.arctanh(np.clip(np.asarray(scores, np.float64), -0.999999, 0.999999))
    if z.size < MIN_TAIL_SEARCHES or not np.std(z) > 0:
        return float("nan")
    return float(np.tanh(z.mean() + z.std(ddof=1) * NormalDist().inv_cdf(1.0 - rate)))


def threshold_at_fpir(nonmated: np.ndarray, fpir: float, people: int, rule: str = "max",
                      by_person: np.ndarray | None = None, query_labels=None) -> float:
    """The threshold at gallery FPIR `fpir` from leave-one-out non-mated scores; +inf without any.

    The PERSON_RULES also need `by_person` (person_scores) and the queries' labels.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    nonmated = np.asarray(nonmated, np.float64)
    finite = nonmated[np.isfinite(nonmated)]
    if finite.size == 0:
        return float("inf")
    rate = loo_target(check_fpir(fpir), people)
    sample = sample_threshold(finite, rate)
    if rule in PERSON_RULES:
        tail = model_threshold(rule, by_person, query_labels, fpir)
    else:
        tail = tail_threshold(finite, rate)
    if rule == "sample" or np.isnan(tail):
        return sample
    return tail if rule == "tail" else max(sample, tail)


def impostor_pair_scores(queries, query_labels) -> np.ndarray:
    """Cosine similarity of every unordered pair of queries of different labels (as open_set.pair_scores)."""
    query_labels = np.asarray(query_labels)
    similarity = unit_rows(queries) @ unit_rows(queries).T
    upper = np.triu_indices(len(query_labels), k=1)
    return similarity[upper][query_labels[upper[0]] != query_labels[upper[1]]]


def threshold_for(queries, query_labels, keys, key_labels, fpir: float, rule: str = DEFAULT_RULE,
                  pair_floor: bool = True) -> float:
    """The threshold at gallery FPIR `fpir`: kept photos searched against the other people's entries.

    `pair_floor`: never below the photo-pair threshold at FAR = fpir. A stranger's best
    score over the entries is at least its score against any one of them, so a gallery's
    FPIR is at least the pair false-accept rate at the same threshold; with few people
    there are many more pairs than searches, so the pairs resolve this bound where the
    searches cannot. +inf while the entries hold fewer than two people; at most 1 otherwise.
    """
    query_labels, key_labels = np.asarray(query_labels), np.asarray(key_labels)
    people = int(np.unique(key_labels).size)
    if people < 2 or query_labels.size == 0:
        return float("inf")
    by_person = person_scores(queries, query_labels, keys, key_labels)
    threshold = threshold_at_fpir(by_person.max(axis=1, initial=-np.inf), fpir, people, rule, by_person,
                                  query_labels)
    impostor = impostor_pair_scores(queries, query_labels) if pair_floor else np.zeros(0)
    if impostor.size:
        threshold = max(threshold, sample_threshold(impostor, fpir))
    return min(threshold, 1.0)   # "just above" a similarity of 1 (one photo under two names) stays a cosine


def fnir(mated: np.ndarray, nonmated: np.ndarray, threshold: float) -> float:
    """Share of mated searches not answered with the right person at or above `threshold`."""
    mated, nonmated = np.asarray(mated), np.asarray(nonmated)
    if mated.size == 0:
        return float("nan")
    return float(np.mean(~((mated >= threshold) & (mated > nonmated))))


@dataclass(frozen=True)
class IdentificationCalibration:
    """An open-set threshold and the numbers behind it; `threshold` is the one at `fpir_target`."""

    fpir_target: float
    threshold: float
    people: int                    # the gallery size it was set for
    entries: int                   # slots in use (memory) or rows (store-all) it was set for
    nonmated_searches: int
    mated_searches: int
    fpir_resolvable: float         # gallery FPIR of one accepted search in n: smaller rates are not resolved
    fpir_bound: float              # 95% bound on gallery FPIR the counts alone give at the threshold
    loo_fpir: float                # leave-one-out non-mated searches accepted at the threshold, size-corrected
    fnir_at_fpir: dict             # {"0.01": FNIR, "0.001": FNIR}
    threshold_at_fpir: dict
    verification: dict | None = None   # experiments.faces.open_set.Calibration, as a dict

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "IdentificationCalibration":
        return cls(**data)

    @property
    def resolved(self) -> bool:
        return self.fpir_target >= self.fpir_resolvable

    def lines(self) -> list[str]:
        """A readable report, one fact a line."""
        out = [f"identification (leave one person out, as identify searches): {self.nonmated_searches} "
               f"non-mated searches, {self.mated_searches} mated, gallery of {self.people} people / "
               f"{self.entries} entries"]
        for rate, value in self.fnir_at_fpir.items():
            out.append(f"FNIR at FPIR {float(rate):.0e}: {value:.4f} (threshold {self.threshold_at_fpir[rate]:.4f})")
        out.append(f"chosen threshold at FPIR {self.fpir_target:.0e}: {self.threshold:.4f} "
                   f"(leave-one-out strangers accepted there: {self.loo_fpir:.4f}, gallery-size corrected)")
        if not self.resolved:
            out.append(f"note: {self.nonmated_searches} non-mated searches cannot resolve FPIR {self.fpir_target:.0e} "
                       f"(one accepted search is {self.fpir_resolvable:.1e}); the threshold rests on per-person tail "
                       f"models and the photo-pair rate, and the counts alone guarantee "
                       f"only FPIR <= {self.fpir_bound:.1e} (95%). Enroll more people for a better estimate.")
        if self.threshold >= 1.0:
            out.append(f"note: at FPIR {self.fpir_target:.0e} this gallery of {self.people} people names no one: it cannot "
                       f"show that strangers stay out. Enroll more people, or set a larger --fpir (strangers then get "
                       f"in more often).")
        return out


def outgrown(calibration: IdentificationCalibration | None, entry_labels) -> str | None:
    """Why `calibration` no longer fits a gallery with these entry labels (more people or entries), or None."""
    if calibration is None:
        return None
    people, entries = int(np.unique(entry_labels).size), int(np.size(entry_labels))
    if calibration.people >= people and calibration.entries >= entries:
        return None
    return (f"the threshold was set for a gallery of {calibration.people} people and {calibration.entries} "
            f"entries, but it holds {people} and {entries}: strangers get more chances than FPIR "
            f"{calibration.fpir_target:g} allows for; run `kshot calibrate --gallery FILE` to recalibrate")


def search_scores(queries, query_labels, keys, key_labels, keys_are_photos: bool) -> tuple[np.ndarray, np.ndarray]:
    """(mated, non-mated) best scores of the kept photos, as `calibrate` searches them.

    Non-mated: against the other people's entries. Mated: against the photo's own
    person, never the photo itself: the entries when they are the photos (store-all
    rows), else the other kept photos (a memory slot cannot give a merged photo back).
    -inf where nothing is left to search.
    """
    nonmated = nonmated_scores(queries, query_labels, keys, key_labels)
    if keys_are_photos:
        mated = mated_scores(queries, query_labels, keys, key_labels, self_in_keys=True)
    else:
        mated = mated_scores(queries, query_labels, queries, query_labels, self_in_keys=True)
    return mated, nonmated


def calibrate(queries, query_labels, keys, key_labels, fpir: float = DEFAULT_FPIR,
              keys_are_photos: bool = True, verification: dict | None = None,
              rule: str = DEFAULT_RULE, pair_floor: bool = True) -> IdentificationCalibration:
    """Threshold at gallery FPIR `fpir` from kept photos `queries` searched against the entries `keys`.

    `keys_are_photos`: the entries are the photos themselves (store-all rows), so mated
    searches run against them with the photo left out; otherwise (memory slots) mated
    searches run against the other kept photos (see the module docstring). `rule` and
    `pair_floor`: see threshold_for (the alternatives are there to compare, docs/lab/2026-12-gallery-thresholds.md).
    """
    fpir = check_fpir(fpir)
    query_labels, key_labels = np.asarray(query_labels), np.asarray(key_labels)
    people = int(np.unique(key_labels).size)
    mated, nonmated = search_scores(queries, query_labels, keys, key_labels, keys_are_photos)
    searchable = np.isfinite(mated)
    mated, mated_nonmated = mated[searchable], nonmated[searchable]
    finite = nonmated[np.isfinite(nonmated)]
    rates = sorted(set(REPORTED_FPIRS) | {fpir}, reverse=True)
    thresholds = {str(r): threshold_for(queries, query_labels, keys, key_labels, r, rule, pair_floor) for r in rates}
    threshold = thresholds[str(fpir)]
    n = int(finite.size)
    loo = float(np.mean(finite >= threshold)) if n else float("nan")
    return IdentificationCalibration(
        fpir_target=fpir, threshold=threshold, people=people, entries=int(key_labels.size),
        nonmated_searches=n, mated_searches=int(mated.size),
        fpir_resolvable=float(gallery_size_rate(1.0 / max(n, 1), people)),
        fpir_bound=float(gallery_size_rate(upper_bound(int(np.sum(finite >= threshold)), n), people)),
        loo_fpir=float(gallery_size_rate(loo, people)),
        fnir_at_fpir={k: fnir(mated, mated_nonmated, t) for k, t in thresholds.items()},
        threshold_at_fpir=thresholds, verification=verification,
    )
