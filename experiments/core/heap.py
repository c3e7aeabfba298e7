"""Garbage collection that leaves the long-lived heap alone while a tight loop runs.

A process that has imported TensorFlow holds about 400,000 objects the cyclic garbage
collector tracks (modules, op definitions, traced graphs), none of which will ever be
garbage. A loop that makes many small objects (schedules, generators, answers) triggers
full collections, each walking all of them: measured on 1,000 frozen repeats of the
celebrity protocol, about 0.3 s of a 1.4 s run went to collections that found nothing.

`settled_heap()` moves every object alive on entry into the collector's permanent
generation (gc.freeze) and back on exit (gc.unfreeze): collections inside the block look
at new objects only. Nothing is leaked: objects frozen on entry that die inside the block
are freed by reference counting as ever, and cycles among them are collected after exit.
"""

from __future__ import annotations

import contextlib
import gc

_depth = 0  # blocks open now: only the outermost freezes and unfreezes (gc.unfreeze releases everything)


@contextlib.contextmanager
def settled_heap():
    """Run the block with the objects alive on entry left out of garbage collection.

    Blocks nest: an inner block changes nothing, and the heap is released when the
    outermost one ends.
    """
    global _depth
    if _depth == 0:
        gc.freeze()
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            gc.unfreeze()
