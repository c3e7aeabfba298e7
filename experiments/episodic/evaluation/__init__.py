"""Evaluating an episodic embedder: every readout answers the same tasks.

    evaluate.py   N-way k-shot tasks with intervals, for the memory, store-all 1-NN and class means
    heldout.py    which drawings a checkpoint may be evaluated on
    compare.py    two checkpoints on the same tasks, paired
    lake.py       Lake et al.'s 20 one-shot runs
    stream.py     every drawing streamed once through fixed-size memories
    curves.py     held-out accuracy against training time
"""
