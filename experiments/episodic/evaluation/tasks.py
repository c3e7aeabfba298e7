"""N-way k-shot tasks as a TaskSpec draws them, and every readout's answers to them.

A task is N held-out classes, k labelled drawings of each written into a cleared
readout, then `queries` unseen drawings of each classified by a lookup. The Kaiser
memory is written one round per shot (one drawing of every class per write), so from
the second shot on it merges a drawing into its class's slot when that slot answers
correctly, as in the paper; store-all keeps every drawing, and class means average
them. With k = 1 the three therefore hold the same N keys and give the same answers.

The tasks depend only on the drawings and the TaskSpec, never on the embedder or the
readout, so two embedders (compare.py) or two readouts answer exactly the same tasks
and pair task by task.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

import memory_module
from experiments.core.memories import build_memory
from experiments.core.metrics import proportion
from experiments.episodic.data import EpisodicData
from experiments.episodic.episodes import alphabet_pools, sample_task
from experiments.episodic.evaluation import closed_form, touched_rows
from experiments.episodic.evaluation.sequences import chunk_that_fits, one_at_a_time, padded_chunks
from experiments.episodic.evaluation.task_spec import TaskSpec
from experiments.episodic.settings import READOUT_KINDS


def build_readout(name: str, config, seed_offset: int, classes: int | None = None):
    """The readout labelled `name` in results (settings.READOUT_KINDS) on the config's key width.

    The Kaiser memory takes the run's [memory] settings and the seed [train] seed + seed_offset
    (each use its own offset, as model.episodic_memory); class means get room for `classes`
    labels, the most any task asks of them.
    """
    if name not in READOUT_KINDS:
        raise ValueError(f"readout must be one of {', '.join(READOUT_KINDS)}, got {name!r}")
    return build_memory(READOUT_KINDS[name], config.model.output_dim, config.memory,
                        seed=config.train.seed + seed_offset, classes=classes)


def make_readouts(config, max_ways: int) -> dict:
    """The readouts every N-way k-shot table compares, by label ("memory", "1-NN", "prototype").
    One builder, so eval and compare score with the same ones."""
    return {name: build_readout(name, config, seed_offset=2, classes=max_ways) for name in READOUT_KINDS}


def make_task_runner(memory):
    """A tf.function running one task on a cleared memory: write the support round by round, answer the queries.

    support [shots, ways, d] (round r = the r-th drawing of every class), labels [ways],
    queries [m, d] -> answers [m]. Compiled, because eager dispatch of the memory's many
    small ops dominates thousands of tasks.
    """

    @tf.function(reduce_retracing=True)
    def run(support, labels, queries):
        memory.reset()
        for r in range(support.shape[0]):  # unrolled: shots is fixed per setting
            memory.write(support[r], labels)
        return memory.lookup(queries).labels

    return run


def accuracy_of_answers(truth: np.ndarray, answered: dict[str, np.ndarray]) -> dict[str, dict]:
    """Pooled accuracy with its Wilson interval of each readout's answers:
    `accuracy_of_answers(*task_answers(...))` is the N-way k-shot accuracy of each readout."""
    return {name: {**proportion(int(np.sum(a == truth)), truth.size), "episodes": truth.shape[0]}
            for name, a in answered.items()}


TASK_CHUNK = 250  # tasks per batched call, at most (sequences.chunk_that_fits bounds their memory)


def make_batched_task_runner(memory, tasks: int):
    """`make_task_runner` for `tasks` tasks at once, through the memory's batched twin.

    support [tasks, shots, ways, d], labels [tasks, ways], queries [tasks, m, d] -> answers
    [tasks, m], each task's answers those of `make_task_runner(memory)` to the last bit
    (memory_module.batched). Every task starts from the memory's own seed, as memory.reset().
    """
    twin = memory_module.batched(memory, tasks)
    seeds = [getattr(memory, "seed", 0)] * tasks

    @tf.function(reduce_retracing=True, autograph=False)
    def write_and_answer(support, labels, queries):
        for r in range(support.shape[1]):  # unrolled: shots is fixed per setting
            twin(support[:, r], labels, update=True)
        return twin.lookup(queries).labels

    def run(support, labels, queries):
        twin.reset(seeds)
        return write_and_answer(support, labels, queries)

    return run


def task_answers(
    keys: np.ndarray,
    data: EpisodicData,
    readouts: dict,
    ways: int,
    shots: int,
    tasks: TaskSpec,
    chunk: int = TASK_CHUNK,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(true class ids [episodes, ways*queries], {readout: answered class ids, same shape}) of one cell.

    Class ids index `data.characters`, so answers can be grouped by the query's alphabet.
    With `tasks.within_alphabet` the N classes of each task come from one alphabet
    (alphabets drawn uniformly among those with >= N characters). The tasks are drawn
    first, then answered `chunk` at a time: the paper's Kaiser memory as the rows each task
    writes (touched_rows), store-all and class means in closed form (closed_form), other
    readouts by their batched twin (one task at a time through make_task_runner for chunk 0
    or a memory too large to batch, sequences.one_at_a_time); the answers do not depend on
    the chunk.
    """
    episodes, queries = tasks.episodes, tasks.queries
    by_class = data.indices_by_class()
    pools = alphabet_pools(data, ways) if tasks.within_alphabet else None
    rng = np.random.default_rng([tasks.seed, ways, shots, queries])
    drawn = [sample_task(by_class, rng, ways, shots, queries, pools) for _ in range(episodes)]
    truth = np.stack([data.labels[task.query] for task in drawn]).astype(np.int64)
    class_of_label = truth[:, ::queries]  # queries are grouped by label 0..ways-1
    # [episodes, shots, ways]: round r holds the r-th support drawing of every class, in label order
    rounds = np.stack([task.support[np.argsort(task.support_labels, kind="stable")].reshape(ways, shots).T
                       for task in drawn])
    query_items = np.stack([task.query for task in drawn])
    predicted = {name: _answers(memory, keys, rounds, query_items, ways, chunk) for name, memory in readouts.items()}
    answered = {}
    for name, labels in predicted.items():
        known = (labels >= 0) & (labels < ways)  # an empty memory answers -1
        picked = np.take_along_axis(class_of_label, np.clip(labels, 0, ways - 1), axis=1)
        answered[name] = np.where(known, picked, -1)
    return truth, answered


def _answers(memory, keys: np.ndarray, rounds: np.ndarray, query_items: np.ndarray, ways: int, chunk: int) -> np.ndarray:
    """[episodes, ways*queries] dense answers of one readout to every drawn task."""
    episodes, shots = rounds.shape[:2]
    labels = np.arange(ways, dtype=np.int64)
    if chunk and touched_rows.supports(memory, ways * shots):
        return touched_rows.task_answers(memory, keys, rounds, query_items, ways, chunk)
    if chunk and closed_form.supports(memory):
        return closed_form.task_answers(memory, keys, rounds, query_items, ways, chunk)
    if one_at_a_time(memory, chunk):
        run = make_task_runner(memory)
        return np.stack([run(tf.constant(keys[rounds[e]]), tf.constant(labels), tf.constant(keys[query_items[e]])).numpy()
                         for e in range(episodes)])
    size = min(chunk_that_fits(memory, chunk), episodes)
    run = make_batched_task_runner(memory, size)
    out = []
    for part, padded in padded_chunks(episodes, size):
        answers = run(tf.constant(keys[rounds[padded]]), tf.constant(np.tile(labels, (size, 1))),
                      tf.constant(keys[query_items[padded]]))
        out.append(answers.numpy()[: part.size])
    return np.concatenate(out)
