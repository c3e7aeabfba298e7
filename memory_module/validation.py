"""Input checks shared by the Kaiser memory and the store-all baseline.

A bad batch must be refused before it touches the state: a NaN query would
poison a key for good, a float64 batch silently cast to float32 hides a bug in
the caller, and a label outside the id range would write out of bounds.

Eagerly every problem is a ValueError naming it. Inside a tf.function, shape
and dtype problems are still ValueErrors (raised while tracing); value problems
(NaN, inf, zero rows, labels out of range) can only be seen when the graph runs
and surface as tf.errors.InvalidArgumentError carrying the same message.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

DEFAULT_LABEL_LIMIT = 1 << 24  # 16.7M label ids: a recent-slot table of at most 128 MiB


def check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def check_non_negative(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return float(value)


def check_dtype(dtype) -> tf.DType:
    """float32 or float64 only: the precision of keys and queries is the caller's explicit choice."""
    dtype = tf.as_dtype(dtype)
    if dtype not in (tf.float32, tf.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype.name}")
    return dtype


def _to_tensor(value, what: str) -> tf.Tensor:
    try:
        return tf.convert_to_tensor(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what} could not be turned into a tensor: {error}") from error


def check_queries(queries, key_dim: int, dtype: tf.DType) -> tf.Tensor:
    """Return `queries` as a [B, key_dim] tensor of `dtype`, or raise ValueError."""
    q = _to_tensor(queries, "queries")
    if q.dtype != dtype:
        raise ValueError(
            f"queries must be {dtype.name} (the memory's dtype), got {q.dtype.name}; "
            f"cast them (tf.cast(queries, tf.{dtype.name})) or build the memory with dtype={q.dtype.name}"
        )
    if q.shape.rank != 2:
        raise ValueError(f"queries must have shape [batch, {key_dim}], got shape {q.shape}")
    if q.shape[1] is not None and q.shape[1] != key_dim:
        raise ValueError(
            f"queries have {q.shape[1]} features but the memory's key_dim is {key_dim} "
            f"(shape {q.shape})"
        )
    if tf.executing_eagerly():
        values = q.numpy()
        if values.shape[0] == 0:
            raise ValueError("queries is an empty batch (shape [0, d]); give at least one row")
        bad = ~np.isfinite(values).all(axis=1)
        if bad.any():
            rows = np.flatnonzero(bad)[:5].tolist()
            raise ValueError(
                f"queries contain NaN or infinite values in rows {rows}"
                f"{' and more' if bad.sum() > 5 else ''}; the memory refuses them because a "
                f"non-finite key would corrupt it for good. Check the embedder's input."
            )
        zero = ~np.any(values != 0, axis=1)
        if zero.any():
            rows = np.flatnonzero(zero)[:5].tolist()
            raise ValueError(f"queries rows {rows} are all zeros and cannot be normalised to unit length")
    else:
        q = tf.debugging.assert_all_finite(
            q, "queries contain NaN or infinite values; the memory refuses them"
        )
    return q


def check_labels(labels, batch_size, label_limit: int) -> tf.Tensor:
    """Return `labels` as int64 [B] dense ids in [0, label_limit), or raise ValueError."""
    v = _to_tensor(labels, "labels")
    if v.dtype == tf.string:
        raise ValueError(
            "labels are strings; the memory holds dense integer ids. Map them with "
            "memory_module.LabelMap().encode(labels) and decode the answers with .decode()"
        )
    if not v.dtype.is_integer:
        raise ValueError(f"labels must be integer ids (int32 or int64), got dtype {v.dtype.name}")
    if v.shape.rank != 1:
        raise ValueError(f"labels must have shape [batch], got shape {v.shape}")
    if v.shape[0] is not None and batch_size is not None and v.shape[0] != batch_size:
        raise ValueError(f"labels have {v.shape[0]} entries but queries have {batch_size} rows")
    v = tf.cast(v, tf.int64)
    if tf.executing_eagerly():
        values = v.numpy()
        bad = (values < 0) | (values >= label_limit)
        if bad.any():
            raise ValueError(
                f"labels must be dense ids in [0, {label_limit}), got {values[bad][:5].tolist()}; "
                f"map user labels with memory_module.LabelMap (UNKNOWN_LABEL=-1 cannot be written "
                f"or used as a true label)"
            )
    else:
        checks = [
            tf.debugging.assert_non_negative(v, message="labels must be dense ids >= 0"),
            tf.debugging.assert_less(
                v, tf.constant(label_limit, tf.int64), message=f"labels must be < label_limit={label_limit}"
            ),
        ]
        with tf.control_dependencies(checks):
            v = tf.identity(v)
    return v


def check_similarity(name: str, value) -> float:
    """A cosine-similarity threshold: a finite number in [-1, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not np.isfinite(value) or not -1.0 <= value <= 1.0:
        raise ValueError(f"{name} is a cosine similarity and must be in [-1, 1], got {value}")
    return float(value)


def check_choice(name: str, value, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value
