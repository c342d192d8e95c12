"""Joins on string keys (MPAN, meter, register) by integer codes: the hot path of the smart data services.

pandas 3 holds strings as Arrow arrays, so a ``MultiIndex`` built from numpy string columns first
converts every level to Arrow strings and factorizes them; at national scale (hundreds of thousands
of registers and reads per block) that conversion cost more than the settlement arithmetic. Here
each key column is coded once with :func:`numpy.unique` over both sides, the codes are combined
into one int64 per row, and the join runs on integers. The results are those of the pandas
operations they replace (documented per function).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.errors import InvalidIndexError

__all__ = ["joint_codes", "lookup", "pairs_on"]


def _codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer codes of values (equal values, equal codes) and how many distinct values there are.

    Strings of one-byte characters (MPAN cores, meter ids, register ids) are packed eight
    characters to a 64-bit word and coded by their words, which is several times quicker than
    sorting or hashing the strings themselves; anything else goes through :func:`numpy.unique`.
    """
    if values.dtype.kind == "U" and values.size:
        width = values.dtype.itemsize // 4
        points = np.ascontiguousarray(values).view(np.uint32).reshape(values.size, width)
        if width and int(points.max()) < 256:
            packed = np.zeros((values.size, -(-width // 8) * 8), dtype=np.uint8)
            packed[:, :width] = points
            words = packed.view(np.uint64)
            codes, uniques = pd.factorize(words[:, 0])
            for k in range(1, words.shape[1]):  # two words for an MPAN core
                more, more_uniques = pd.factorize(words[:, k])
                codes, uniques = pd.factorize(codes.astype(np.int64) * len(more_uniques) + more)
            return codes.astype(np.int64), len(uniques)
    uniques, inverse = np.unique(values, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64), uniques.size


def joint_codes(left, right) -> tuple[np.ndarray, np.ndarray, int]:
    """Integer codes of the rows of two tables of key columns, equal codes for equal key tuples.

    Parameters
    ----------
    left, right : sequence of array-like
        The same number of key columns on each side (strings or numbers).

    Returns
    -------
    left_codes, right_codes : ndarray of int64
    size : int
        Number of possible codes (the product of each column's distinct values: an upper bound of
        the distinct key tuples, not their number).
    """
    if len(left) != len(right) or not left:
        raise ValueError("joint_codes: give the same number (at least one) of key columns on both sides")
    n_left = len(left[0])
    combined = np.zeros(n_left + len(right[0]), dtype=np.int64)
    size = 1
    for a, b in zip(left, right):  # a few key columns
        codes, n_distinct = _codes(np.concatenate([np.asarray(a), np.asarray(b)]))
        if size * max(n_distinct, 1) >= 2**62:
            raise OverflowError("joint_codes: too many distinct key tuples for int64 codes")
        combined = combined * max(n_distinct, 1) + codes
        size *= max(n_distinct, 1)
    return combined[:n_left], combined[n_left:], size


def lookup(left, right) -> np.ndarray:
    """Row of ``left`` holding each row's key of ``right``, -1 where none.

    The same as ``pd.MultiIndex.from_arrays(left).get_indexer(pd.MultiIndex.from_arrays(right))``,
    including the error when ``left`` has a key twice.
    """
    lk, rk, _ = joint_codes(left, right)
    index = pd.Index(lk)
    if not index.is_unique:
        raise InvalidIndexError("Reindexing only valid with uniquely valued Index objects")
    return index.get_indexer(rk)


def pairs_on(left_key, right_key) -> tuple[np.ndarray, np.ndarray]:
    """Every (left row, right row) pair with equal keys: an inner many-to-many join on one column.

    Returns
    -------
    left_rows, right_rows : ndarray of int64
        Pairs ordered by left row, then right row (``pandas.merge`` gives the same pairs).
    """
    lk, rk, _ = joint_codes([left_key], [right_key])
    order = np.argsort(rk, kind="stable")
    sorted_keys = rk[order]
    lo = np.searchsorted(sorted_keys, lk, side="left")
    hi = np.searchsorted(sorted_keys, lk, side="right")
    counts = hi - lo
    left_rows = np.repeat(np.arange(lk.size, dtype=np.int64), counts)
    offset = np.arange(left_rows.size, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    right_rows = order[np.repeat(lo, counts) + offset].astype(np.int64)
    return left_rows, right_rows
