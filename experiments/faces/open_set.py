"""Open-set verification numbers: genuine / impostor pair scores, TAR at FAR, EER, ROC.

A gallery must say "unknown" to a stranger, and the only knob is a similarity
threshold. It is chosen from the enrolled data itself: every pair of photos of one
identity is a genuine pair, every pair across identities an impostor pair, and the
threshold is the lowest one that lets at most a target fraction (FAR) of impostor
pairs through. The rule everywhere is "accept when similarity >= threshold".

With n impostor pairs, no FAR below 1/n can be measured: the threshold then sits
just above the highest impostor score, and `Calibration.far_resolvable` says so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from experiments.faces import identification

REPORTED_FARS = (1e-2, 1e-3)
DEFAULT_FAR = 1e-3


def check_far(far: float) -> float:
    far = float(far)
    if not 0.0 < far < 1.0:
        raise ValueError(f"the target false-accept rate must be in (0, 1), got {far}")
    return far


def pair_scores(embeddings: np.ndarray, labels) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarity of every unordered pair: (genuine scores, impostor scores), float64."""
    vectors = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels)
    if vectors.ndim != 2 or len(vectors) != len(labels):
        raise ValueError(f"embeddings must be [n, d] with one label per row, got {vectors.shape} and {labels.shape}")
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    similarity = unit @ unit.T
    upper = np.triu_indices(len(labels), k=1)
    same = labels[upper[0]] == labels[upper[1]]
    scores = similarity[upper]
    return scores[same], scores[~same]


def threshold_at_far(impostor: np.ndarray, far: float) -> float:
    """The lowest threshold that accepts at most `far` of the impostor scores."""
    far = check_far(far)
    impostor = np.sort(np.asarray(impostor, dtype=np.float64))[::-1]
    if impostor.size == 0:
        raise ValueError(
            "no impostor pairs: a threshold needs photos of at least two identities; enroll another person"
        )
    allowed = int(np.floor(far * impostor.size))   # impostor pairs that may be accepted
    if allowed >= impostor.size:
        return float(impostor[-1])
    return float(np.nextafter(impostor[allowed], np.inf))


def accept_rate(scores: np.ndarray, threshold: float) -> float:
    scores = np.asarray(scores)
    return float(np.mean(scores >= threshold)) if scores.size else float("nan")


def roc_points(genuine: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(FAR, TAR, threshold) at every distinct score, thresholds descending."""
    genuine = np.sort(np.asarray(genuine, dtype=np.float64))
    impostor = np.sort(np.asarray(impostor, dtype=np.float64))
    thresholds = np.unique(np.concatenate([genuine, impostor]))[::-1]
    tar = 1.0 - np.searchsorted(genuine, thresholds, side="left") / max(genuine.size, 1)
    far = 1.0 - np.searchsorted(impostor, thresholds, side="left") / max(impostor.size, 1)
    return far, tar, thresholds


def equal_error_rate(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """(EER, its threshold): where the false-accept and false-reject rates are closest."""
    far, tar, thresholds = roc_points(genuine, impostor)
    frr = 1.0 - tar
    best = int(np.argmin(np.abs(far - frr)))
    return float((far[best] + frr[best]) / 2), float(thresholds[best])


@dataclass(frozen=True)
class Calibration:
    """What a calibration found; `threshold` is the one chosen at `far_target`."""

    far_target: float
    threshold: float
    genuine_pairs: int
    impostor_pairs: int
    far_resolvable: float          # 1 / impostor pairs: smaller FARs cannot be measured
    tar_at_far: dict               # {"0.01": TAR, "0.001": TAR} (NaN without genuine pairs)
    threshold_at_far: dict         # the threshold behind each of those TARs
    eer: float
    eer_threshold: float

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Calibration":
        return cls(**data)

    def lines(self) -> list[str]:
        """A readable report, one fact a line."""
        out = [f"pairs: {self.genuine_pairs} genuine, {self.impostor_pairs} impostor "
               f"(smallest measurable FAR {self.far_resolvable:.1e})"]
        for far, tar in self.tar_at_far.items():
            out.append(f"TAR at FAR {float(far):.0e}: {tar:.4f} (threshold {self.threshold_at_far[far]:.4f})")
        out.append(f"EER: {self.eer:.4f} (threshold {self.eer_threshold:.4f})")
        out.append(f"chosen threshold at FAR {self.far_target:.0e}: {self.threshold:.4f}")
        if self.far_target < self.far_resolvable:
            out.append(f"note: FAR {self.far_target:.0e} is below what {self.impostor_pairs} impostor pairs can "
                       "measure; the threshold sits just above the highest impostor score. Enroll more people "
                       "for a better estimate.")
        return out


def calibrate(embeddings: np.ndarray, labels, far: float = DEFAULT_FAR) -> Calibration:
    """Threshold at `far` and the report numbers, from labelled embeddings."""
    far = check_far(far)
    genuine, impostor = pair_scores(embeddings, labels)
    threshold = threshold_at_far(impostor, far)
    fars = sorted(set(REPORTED_FARS) | {far}, reverse=True)
    thresholds = {str(f): threshold_at_far(impostor, f) for f in fars}
    tars = {str(f): accept_rate(genuine, t) for f, t in thresholds.items()}
    eer, eer_threshold = equal_error_rate(genuine, impostor) if genuine.size else (float("nan"), float("nan"))
    return Calibration(
        far_target=far, threshold=threshold, genuine_pairs=int(genuine.size), impostor_pairs=int(impostor.size),
        far_resolvable=1.0 / impostor.size, tar_at_far=tars, threshold_at_far=thresholds,
        eer=eer, eer_threshold=eer_threshold,
    )


# ---------------------------------------------------------------- open-set k-shot evaluation

def check_strangers(n_classes: int, strangers: int) -> None:
    """Refuse a number of held-out identities that leaves fewer than two known ones."""
    if strangers < 1 or strangers > n_classes - 2:
        raise ValueError(
            f"open_set strangers must be between 1 and {n_classes - 2} for {n_classes} classes (at least two "
            f"identities must stay known for k-shot classification), got {strangers}"
        )


def hold_out_identities(n_classes: int, strangers: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted class ids that a repeat never feeds (its strangers), drawn from `rng`."""
    check_strangers(n_classes, strangers)
    return np.sort(rng.choice(n_classes, size=strangers, replace=False)).astype(np.int64)


def fed_threshold(fed_embeddings: np.ndarray, fed_labels: np.ndarray, memory, fpir: float) -> float:
    """The threshold a gallery of the fed items would use at FPIR `fpir` (experiments.faces.identification).

    Each fed item is searched against the memory's filled entries of other identities (its
    slots, or store-all's rows), leaving its own identity out, as the gallery's calibration
    does (the chosen rule, with the photo-pair floor among the fed items). +inf while the
    memory holds fewer than two identities (nothing can be accepted).
    """
    keys, values = np.asarray(memory.keys.numpy()), np.asarray(memory.values.numpy())
    filled = values >= 0
    queries = np.asarray(fed_embeddings, np.float64)
    if getattr(memory, "projection", None) is not None:   # [memory] query_projection: keys live in projected space
        queries = queries @ np.asarray(memory.projection.numpy(), np.float64)
    return identification.threshold_for(queries, fed_labels, keys[filled], values[filled], fpir)


def open_set_counts(truth: np.ndarray, predicted: np.ndarray, similarity: np.ndarray,
                    stranger: np.ndarray, threshold: float) -> dict[str, int]:
    """Known items named right at the threshold, and strangers rejected (similarity below it).

    In NIST FRVT 1:N terms: FNIR = 1 - n_known_correct / n_known (a mated search that does
    not return the right identity at or above the threshold), FPIR = 1 - n_stranger_rejected
    / n_stranger (a non-mated search whose best answer reaches it).
    """
    accepted = np.asarray(similarity) >= threshold
    known = ~np.asarray(stranger, bool)
    return {
        "n_known": int(known.sum()),
        "n_known_correct": int(np.sum(known & accepted & (np.asarray(predicted) == np.asarray(truth)))),
        "n_stranger": int((~known).sum()),
        "n_stranger_rejected": int(np.sum(~known & ~accepted)),
    }
