"""Forgetting people: every trace of them leaves the gallery, and its slots become free again.

A person who asks to be removed must leave nothing behind: no key, label id, name,
photo count or calibration photo. The memory has no "remove" of its own (the
paper's memory only ever overwrites), so it is done here on the memory's state
arrays, the same arrays its state file holds:
- a Kaiser memory: the person's slots are emptied exactly as a fresh memory's are
  (zero key, label -1, and zero in every other per-slot array: last write time,
  merge counts); the recent-slot table loses their rows;
- store-all: their rows are removed and the others moved up, so the table stays
  dense as the memory expects.
The remaining people are re-numbered 0..n-1 in their old order, in the memory, the
names and the calibration sample alike, so no gap in the label ids hints that
someone was there. The clock and the noise generator are not per person and stay.

Free slots are also what the gallery writes first (`use_free_slots_first`): the
memory picks the slot to overwrite by age plus noise, and an empty slot is only as
old as the memory's clock, so a slot written early could look older than an empty
one and be overwritten while slots were free.
"""

from __future__ import annotations

import math
import unicodedata
import warnings

import numpy as np
import tensorflow as tf

from experiments.gallery.storage import GalleryError
from memory_module import LabelMap

PER_SLOT_SKIPPED = ("keys", "values")   # emptied explicitly; every other [N] array of the state is zeroed


def forget_people(gallery, names) -> dict[str, int]:
    """Remove `names` from the gallery's memory, names, counts and calibration sample; the caller recalibrates.

    Returns the photos each had enrolled. Any name not enrolled is an error listing the
    enrolled ones, and then nothing is removed.
    """
    names = [names] if isinstance(names, str) else names
    names = list(dict.fromkeys(unicodedata.normalize("NFC", n) if isinstance(n, str) else n for n in names))
    missing = [name for name in names if name not in gallery.names]
    if missing or not names:
        raise GalleryError(f"not in the gallery: {', '.join(map(repr, missing)) or 'no name given'}; "
                           f"enrolled: {', '.join(map(str, gallery.names.labels)) or 'nobody'}")
    gone_ids = np.asarray(gallery.names.encode(list(names), add_new=False), np.int64)
    n_old = len(gallery.names)
    kept_ids = np.setdiff1d(np.arange(n_old), gone_ids)
    new_id = np.full(n_old + 1, -1, np.int64)   # old id -> new id; index -1 (an empty slot) stays -1
    new_id[kept_ids] = np.arange(len(kept_ids))
    if hasattr(gallery.memory, "count"):
        _forget_rows(gallery.memory, gone_ids, new_id)
    else:
        _forget_slots(gallery.memory, gone_ids, new_id, kept_ids)
    keep = ~np.isin(gallery._calibration_labels, gone_ids)
    gallery._calibration_embeddings = gallery._calibration_embeddings[keep]
    gallery._calibration_labels = new_id[gallery._calibration_labels[keep]]
    removed = {name: gallery.enrolled.pop(name, 0) for name in names}
    gallery.names = LabelMap([gallery.names.labels[i] for i in kept_ids])
    return removed


def _forget_slots(memory, gone_ids, new_id, kept_ids) -> None:
    state = memory.state_variables()
    values = state["values"].numpy()
    gone = np.isin(values, gone_ids)
    keys = state["keys"].numpy()
    keys[gone] = 0
    state["keys"].assign(keys)
    state["values"].assign(new_id[values])
    for name, variable in state.items():
        array = variable.numpy()
        if name not in PER_SLOT_SKIPPED and array.ndim >= 1 and array.shape[0] == memory.memory_size:
            array[gone] = 0
            variable.assign(array)
    if "recent_slot" in state:
        table = state["recent_slot"].numpy()
        state["recent_slot"].assign(table[kept_ids[kept_ids < len(table)]])


def _forget_rows(memory, gone_ids, new_id) -> None:
    state = memory.state_variables()
    count = int(state["count"].numpy())
    keys, values = state["keys"].numpy(), state["values"].numpy()
    kept_rows = np.flatnonzero(~np.isin(values[:count], gone_ids))
    new_keys, new_values = np.zeros_like(keys), np.full_like(values, -1)
    new_keys[:kept_rows.size] = keys[kept_rows]
    new_values[:kept_rows.size] = new_id[values[kept_rows]]
    state["keys"].assign(new_keys)
    state["values"].assign(new_values)
    state["count"].assign(kept_rows.size)


def use_free_slots_first(memory):
    """Make every empty slot of a Kaiser memory older than any filled one, noise included, for one write.

    The memory overwrites the slot with the largest age + U[-age_noise, age_noise]. An empty
    slot's last write time is moved far enough into the past that no filled slot can win
    while one is empty; among empty slots the noise decides, as before. Returns what
    `restore_free_slots` needs to put the slots that stay empty back as they were (so the
    file keeps a fresh slot's zeros), or None when nothing was changed. A full memory, and
    the memory's own rule, are unchanged.
    """
    if hasattr(memory, "count") or not hasattr(memory, "last_written"):
        return None
    empty = memory.values.numpy() < 0
    if not empty.any() or empty.all():
        return None
    original = memory.last_written.numpy()
    lifted = original.copy()
    lifted[empty] = original[~empty].min() - 2 * math.ceil(memory.age_noise) - 1
    memory.last_written.assign(lifted)
    return empty, original


def restore_free_slots(memory, lifted) -> None:
    if lifted is None:
        return
    was_empty, original = lifted
    still_empty = was_empty & (memory.values.numpy() < 0)
    last_written = memory.last_written.numpy()
    last_written[still_empty] = original[still_empty]
    memory.last_written.assign(last_written)


def write_one_at_a_time(memory, embeddings: np.ndarray, ids: np.ndarray) -> None:
    """Write photos one by one (so batching cannot change the result), each to a free slot first."""
    for row, label in zip(embeddings, ids):
        lifted = use_free_slots_first(memory)
        memory.write(tf.constant(row[None]), tf.constant([label], tf.int64))
        restore_free_slots(memory, lifted)


def warn_if_forgotten(gallery, lost_before: set) -> None:
    """Warn (as the command line does) about people a write left without any slot, naming them."""
    lost = [name for name in gallery.forgotten() if name not in lost_before]
    if lost:
        warnings.warn(f"{len(lost)} enrolled people hold no slot any more and cannot be recognised ("
                      f"{', '.join(map(str, lost[:5]))}{', ...' if len(lost) > 5 else ''}): all "
                      f"{gallery.memory.memory_size} slots are taken; use a larger memory_size, or store_all=True",
                      UserWarning, stacklevel=3)
