"""Evaluating an episodic embedder: every readout answers the same tasks.

    task_spec.py   TaskSpec: which N-way k-shot tasks an evaluation draws
    tasks.py       the readouts and their answers to the tasks a TaskSpec draws
    sequences.py   answer-then-write sequences: per-shot accuracy in Kaiser-style episodes
    breakdowns.py  answers by the query's alphabet and its same-alphabet rivals
    evaluate.py    `eval`: N-way k-shot and per-shot accuracy with intervals, and their tables
    heldout.py     which drawings a checkpoint may be evaluated on
    compare.py     two checkpoints on the same tasks, paired
    verdicts.py    a comparison's verdict, read from its JSON without TensorFlow
    lake.py        Lake et al.'s 20 one-shot runs
    stream.py      every drawing streamed once through fixed-size memories
    benchmark.py   `benchmark`: the official evaluation set, Lake's runs and the stream, refusing seen alphabets
    curves.py      held-out accuracy against training time
    export.py      a checkpoint's keys as a `kshot run --embeddings` npz
"""
