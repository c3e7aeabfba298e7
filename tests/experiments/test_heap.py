"""The settled heap: objects alive on entry are out of collection inside the block, back after it."""

import gc

import pytest

from experiments.core.heap import settled_heap


def test_objects_alive_on_entry_are_frozen_inside_and_released_after():
    assert gc.get_freeze_count() == 0
    with settled_heap():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


def test_an_inner_block_keeps_the_outer_blocks_heap_frozen():
    with settled_heap():
        frozen = gc.get_freeze_count()
        with settled_heap():
            pass
        assert gc.get_freeze_count() == frozen, "leaving the inner block must not release the outer one's heap"
    assert gc.get_freeze_count() == 0


def test_the_heap_is_released_when_the_block_raises():
    with pytest.raises(RuntimeError):
        with settled_heap():
            raise RuntimeError("stop")
    assert gc.get_freeze_count() == 0


def test_a_cycle_made_inside_the_block_is_still_collected():
    class Node:
        pass

    with settled_heap():
        a, b = Node(), Node()
        a.other, b.other = b, a
        del a, b
        assert gc.collect() >= 2
