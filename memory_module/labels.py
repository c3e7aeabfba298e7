"""Dense label ids inside the memory, user labels outside it.

The memory stores labels as dense non-negative int64 ids because its bookkeeping
(the most recently written slot per label) is a table indexed by label id. Users
have strings ("Ada Lovelace") or sparse integers (WordNet ids, 10**9 + 7). A
`LabelMap` translates at the boundary, in both directions, so that every output a
user sees carries their own labels again.
"""

from __future__ import annotations

from typing import Any, Hashable, Iterable, Sequence

import numpy as np

UNKNOWN_LABEL = -1
"""The answer of an empty memory and the value held by an empty slot.

It is outside every class: dense ids are >= 0, so an UNKNOWN answer never
matches a true label and counts as wrong when scored.
"""


def _as_python(label: Any) -> Hashable:
    """NumPy scalars become Python scalars so that np.str_('a') and 'a' are one key."""
    if isinstance(label, np.generic):
        return label.item()
    return label


class LabelMap:
    """A two-way map between user labels (any hashable) and dense ids 0, 1, 2, ...

    Ids are handed out in order of first appearance, so the same sequence of
    labels always gives the same ids.
    """

    def __init__(self, labels: Iterable[Hashable] = ()) -> None:
        self._id_of: dict[Hashable, int] = {}
        self._labels: list[Hashable] = []
        self.encode(labels)

    def __len__(self) -> int:
        return len(self._labels)

    def __contains__(self, label: Hashable) -> bool:
        return _as_python(label) in self._id_of

    @property
    def labels(self) -> list[Hashable]:
        """User labels in id order: `labels[i]` is the label of id i."""
        return list(self._labels)

    def encode(self, labels: Iterable[Hashable], add_new: bool = True) -> np.ndarray:
        """User labels -> int64 ids.

        With `add_new=True` an unseen label gets the next free id (use this when
        writing to the memory). With `add_new=False` an unseen label becomes
        UNKNOWN_LABEL (use this for query labels that must not grow the map).
        """
        if isinstance(labels, (str, bytes)):
            raise ValueError(
                f"LabelMap.encode expects a sequence of labels, got the single string {labels!r}; "
                f"wrap it in a list"
            )
        ids = []
        for raw in labels:
            label = _as_python(raw)
            try:
                known = self._id_of.get(label)
            except TypeError as error:
                raise ValueError(f"label {raw!r} is not hashable and cannot be mapped to an id") from error
            if known is None:
                if not add_new:
                    ids.append(UNKNOWN_LABEL)
                    continue
                known = len(self._labels)
                self._id_of[label] = known
                self._labels.append(label)
            ids.append(known)
        return np.asarray(ids, dtype=np.int64)

    def decode(self, ids: Sequence[int] | np.ndarray, unknown: Any = None) -> list:
        """int ids -> user labels; UNKNOWN_LABEL becomes `unknown` (None by default)."""
        flat = np.asarray(ids).reshape(-1)
        if flat.size and not np.issubdtype(flat.dtype, np.integer):
            raise ValueError(f"LabelMap.decode expects integer ids, got dtype {flat.dtype}")
        out = []
        for raw in flat.tolist():
            if raw == UNKNOWN_LABEL:
                out.append(unknown)
            elif 0 <= raw < len(self._labels):
                out.append(self._labels[raw])
            else:
                raise ValueError(
                    f"id {raw} is not in this LabelMap (it holds ids 0..{len(self._labels) - 1} "
                    f"and UNKNOWN_LABEL={UNKNOWN_LABEL})"
                )
        return out

    def decode_output(self, output, unknown: Any = None) -> dict:
        """A memory's answers (LookupResult or the dict of __call__) with user labels.

        `labels` becomes a list of user labels (`unknown` where the memory had no
        answer); every other entry becomes a NumPy value.
        """
        items = output._asdict() if hasattr(output, "_asdict") else dict(output)
        decoded = {name: np.asarray(value) for name, value in items.items()}
        decoded["labels"] = self.decode(decoded["labels"], unknown=unknown)
        return decoded
