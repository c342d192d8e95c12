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

from tomlib.services._processing_kernel import word_lookup

__all__ = ["joint_codes", "key_codes", "lookup", "pairs_on", "str_codes"]


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


def _ascii_rows(values) -> np.ndarray | None:
    """The characters of each string as a zero-padded row of bytes (n, width), or None.

    For numpy unicode arrays and Arrow-backed pandas strings (pandas 3 ``str``; read from the Arrow
    buffers, no conversion to Python or numpy strings) whose characters are all ASCII and that have
    no missing value; anything else gives None. Equal strings give equal rows and (as numpy
    strings compare) trailing NULs do not count.
    """
    if isinstance(values, pd.Series):
        values = values.array
    if isinstance(values, np.ndarray):
        if values.dtype.kind != "U":
            return None
        width = values.dtype.itemsize // 4
        points = np.ascontiguousarray(values).view(np.uint32).reshape(values.size, width)
        if points.size and int(points.max()) >= 128:
            return None
        return points.astype(np.uint8)
    if not hasattr(values, "__arrow_array__"):
        return None
    import pyarrow as pa

    arr = values.__arrow_array__()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    large = pa.types.is_large_string(arr.type)
    if not (large or pa.types.is_string(arr.type)) or arr.null_count:
        return None
    n = len(arr)
    buffers = arr.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int64 if large else np.int32)[arr.offset:arr.offset + n + 1]
    offsets = offsets.astype(np.int64)
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.zeros(0, np.uint8)
    chars = data[offsets[0]:offsets[-1]] if n else data[:0]
    if chars.size and int(chars.max()) >= 128:
        return None
    lengths = np.diff(offsets)
    width = int(lengths.max()) if n else 0
    if n and (lengths == width).all():
        return chars.reshape(n, width)
    rows = np.zeros((n, width), dtype=np.uint8)
    row = np.repeat(np.arange(n), lengths)
    rows[row, np.arange(chars.size) - (offsets[:-1] - offsets[0])[row]] = chars
    return rows


def _digit_rows(ra: np.ndarray, rb: np.ndarray) -> np.ndarray | None:
    """Both sides' rows as int64 numbers when every string is digits of one width (<= 18), else None."""
    width = ra.shape[1]
    if not 0 < width <= 18 or rb.shape[1] != width:
        return None
    rows = np.concatenate([ra, rb])
    if not ((rows >= 48) & (rows <= 57)).all():  # (a shorter string has a padding 0 byte)
        return None
    return (rows - 48).astype(np.int64) @ 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)


def _packed_words(left, right) -> tuple[np.ndarray, int] | None:
    """The key tuples of two tables of ASCII string columns as rows of 64-bit words (left's rows, then
    right's; equal tuples, equal rows) and the number of left rows; None when a column is not such
    strings. Every column is padded to one width on both sides and the columns put side by side, so a
    row's bytes are its key tuple."""
    parts = []
    for a, b in zip(left, right):  # a few key columns
        ra, rb = _ascii_rows(a), _ascii_rows(b)
        if ra is None or rb is None:
            return None
        parts.append((ra, rb))
    n_left = len(parts[0][0])
    widths = [max(ra.shape[1], rb.shape[1], 1) for ra, rb in parts]
    total = -(-sum(widths) // 8) * 8
    packed = np.zeros((n_left + len(parts[0][1]), total), dtype=np.uint8)
    at = 0
    for (ra, rb), w in zip(parts, widths):
        packed[:n_left, at:at + ra.shape[1]] = ra
        packed[n_left:, at:at + rb.shape[1]] = rb
        at += w
    return packed.view(np.uint64), n_left


def _fast_codes(left, right) -> tuple[np.ndarray, np.ndarray] | None:
    """Integer codes of the key tuples of two tables of ASCII string columns (equal tuples, equal
    codes); None when a column is not such strings.

    A single column of digits of one width (MPAN cores) is its own code, the number it spells;
    otherwise the bytes of the columns (:func:`_packed_words`) are packed eight to a 64-bit word, each
    word factorized and the words' codes combined by mixed radix (recoded to their distinct tuples only
    when int64 would overflow).
    """
    if len(left) == 1:
        ra, rb = _ascii_rows(left[0]), _ascii_rows(right[0])
        if ra is None or rb is None:
            return None
        numbers = _digit_rows(ra, rb)
        if numbers is not None:
            return numbers[:len(ra)], numbers[len(ra):]
    got = _packed_words(left, right)
    if got is None:
        return None
    words, n_left = got
    codes = np.zeros(len(words), dtype=np.int64)
    size = 1
    for k in range(words.shape[1]):  # two words for an MPAN, four or five for (MPAN, meter, register)
        more, more_uniques = pd.factorize(words[:, k])
        n_more = max(len(more_uniques), 1)
        if size * n_more >= 2**62:  # recode the words so far to their distinct tuples first
            codes, so_far = pd.factorize(codes)
            codes, size = codes.astype(np.int64), max(len(so_far), 1)
        codes = codes * n_more + more
        size *= n_more
    return codes[:n_left], codes[n_left:]


def _as_numpy(column):
    return column.to_numpy(dtype=str) if isinstance(column, pd.Series) and not (
        pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)) else column


def key_codes(left, right) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of the rows of two tables of key columns, equal codes for equal key tuples.

    Like :func:`joint_codes` (without the code count; the codes themselves differ), but columns may
    also be pandas Series: ASCII string columns (MPANs, meter and register ids) are coded from their
    bytes without converting pandas' Arrow strings to numpy; anything else as ``joint_codes`` codes
    them (string Series through ``to_numpy(dtype=str)``).
    """
    if len(left) != len(right) or not left:
        raise ValueError("joint_codes: give the same number (at least one) of key columns on both sides")
    fast = _fast_codes(left, right)
    if fast is not None:
        return fast
    lk, rk, _ = joint_codes([_as_numpy(c) for c in left], [_as_numpy(c) for c in right])
    return lk, rk


def lookup(left, right) -> np.ndarray:
    """Row of ``left`` holding each row's key of ``right``, -1 where none.

    The same as ``pd.MultiIndex.from_arrays(left).get_indexer(pd.MultiIndex.from_arrays(right))``,
    including the error when ``left`` has a key twice. Columns are numpy arrays or pandas Series
    (string Series compare as their ``to_numpy(dtype=str)``): ASCII keys are matched on their packed
    bytes by one compiled hash join (:func:`~tomlib.services._processing_kernel.word_lookup`), any
    other keys coded by :func:`key_codes` and indexed.
    """
    if len(left) != len(right) or not left:
        raise ValueError("joint_codes: give the same number (at least one) of key columns on both sides")
    got = _packed_words(left, right)
    if got is not None:  # ASCII keys: one compiled hash join on their packed bytes
        words, n_left = got
        rows, duplicate = word_lookup(words[:n_left], words[n_left:])
        if duplicate:
            raise InvalidIndexError("Reindexing only valid with uniquely valued Index objects")
        return rows
    lk, rk = key_codes(left, right)
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


def str_codes(column) -> tuple[np.ndarray, np.ndarray]:
    """(codes, distinct values as numpy strings) of a column: ``distinct[codes]`` equals
    ``np.asarray(column.to_numpy()).astype(str)`` (width included), distinct values in order of first
    appearance.

    For standing data (GSP group, connection type, measurement quantity, ...): a few distinct values
    over ~10^5 MPANs, so pandas' factorize (Arrow-native for pandas 3 strings) then converting the
    distinct values is much quicker than converting every row.
    """
    values = column if isinstance(column, pd.Series) else pd.Series(np.asarray(column), copy=False)
    if len(values) == 0 or not pd.api.types.is_string_dtype(values.dtype) or values.isna().any():
        # numbers (numpy's width for them), missing values (their rendering): convert every row
        strings = np.asarray(values.to_numpy()).astype(str)
        codes, uniques = pd.factorize(strings)
        return codes.astype(np.int64), strings[np.unique(codes, return_index=True)[1]] if strings.size \
            else strings
    codes, uniques = pd.factorize(values)
    return codes.astype(np.int64), np.asarray(uniques, dtype=object).astype(str)
