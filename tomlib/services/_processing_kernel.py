"""Compiled inner loops of the smart processing service (:mod:`tomlib.services.processing`).

Joins on string keys. The keys (MPAN, meter id, register id) are ASCII rows of bytes packed eight to
a 64-bit word (:func:`tomlib.services._processing_keys._fast_codes` packs them); one hash table over
the left side's rows, probed by each row of the right side, finds a row's match in one pass. The
NumPy/pandas formulation it replaces factorized every word column of both sides and combined the
codes (four or five hash passes over ~2.5 x 10^5 rows for a (MPAN, meter, register) key) before
indexing the combined codes: several times the work, for the same answer (a lookup's result does
not depend on how the keys are coded).

Compiled on first use and cached next to this file (``cache=True``); ``nogil`` so that threads of a
dask worker can run blocks side by side.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["label_energy_sums", "masked_group_sums", "word_lookup"]


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _row_hash(words, i):  # pragma: no cover - compiled; covered through word_lookup
    h = np.uint64(0x9E3779B97F4A7C15)
    for k in range(words.shape[1]):
        h = (h ^ words[i, k]) * np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(29)
    # splitmix64's finaliser: every bit of the key reaches the low bits the table uses
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return h


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _same(a, i, b, j):  # pragma: no cover - compiled; covered through word_lookup
    for k in range(a.shape[1]):
        if a[i, k] != b[j, k]:
            return False
    return True


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _word_lookup(left, right, out):  # pragma: no cover - compiled; covered through word_lookup
    n_left = left.shape[0]
    size = 16
    while size < 2 * n_left:
        size *= 2
    mask = np.uint64(size - 1)
    table = np.full(size, -1, dtype=np.int64)  # open addressing, linear probing: left row or -1
    duplicate = False
    for i in range(n_left):
        s = _row_hash(left, i) & mask
        while True:
            r = table[s]
            if r < 0:
                table[s] = i
                break
            if _same(left, r, left, i):
                duplicate = True  # the first row keeps the key (the caller refuses the table anyway)
                break
            s = (s + np.uint64(1)) & mask
    for j in range(right.shape[0]):
        s = _row_hash(right, j) & mask
        found = -1
        while True:
            r = table[s]
            if r < 0:
                break
            if _same(left, r, right, j):
                found = r
                break
            s = (s + np.uint64(1)) & mask
        out[j] = found
    return duplicate


def word_lookup(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, bool]:
    """Row of ``left`` holding each row of ``right``, -1 where none, by hashing whole rows.

    Parameters
    ----------
    left, right : ndarray of uint64, shape (n_left, n_words) and (n_right, n_words)
        Keys packed into words (equal keys, equal rows).

    Returns
    -------
    rows : ndarray of int64, shape (n_right,)
        Row of ``left`` equal to each row of ``right``; -1 where none.
    duplicate : bool
        Whether ``left`` holds a row twice (then ``rows`` names the first of them).
    """
    left = np.ascontiguousarray(left, dtype=np.uint64)
    right = np.ascontiguousarray(right, dtype=np.uint64)
    if left.ndim != 2 or right.ndim != 2 or left.shape[1] != right.shape[1]:
        raise ValueError("word_lookup: give two 2-D arrays of words with the same number of columns")
    out = np.empty(right.shape[0], dtype=np.int64)
    duplicate = bool(_word_lookup(left, right, out))
    return out, duplicate


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _cell(energy, quality, code, i):  # pragma: no cover - compiled; covered through label_energy_sums
    v = energy[i]
    return (0.0 if np.isnan(v) else v) if quality[i] == code else 0.0


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _code_pairwise(energy, quality, code, lo, n):  # pragma: no cover - compiled
    # numpy's pairwise summation (``DOUBLE_pairwise_sum``: runs of < 8 added in turn, runs of <= 128 in
    # eight interleaved partial sums, longer runs halved at a multiple of 8) of the array
    # where(quality == code, energy (NaN -> 0), 0.0), without making it: every cell is added, 0.0 for
    # another code's, as numpy adds the zeros of its masked copy
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += _cell(energy, quality, code, i)
        return res
    if n <= 128:
        r0 = _cell(energy, quality, code, lo)
        r1 = _cell(energy, quality, code, lo + 1)
        r2 = _cell(energy, quality, code, lo + 2)
        r3 = _cell(energy, quality, code, lo + 3)
        r4 = _cell(energy, quality, code, lo + 4)
        r5 = _cell(energy, quality, code, lo + 5)
        r6 = _cell(energy, quality, code, lo + 6)
        r7 = _cell(energy, quality, code, lo + 7)
        end = lo + n - n % 8
        for i in range(lo + 8, end, 8):
            r0 += _cell(energy, quality, code, i)
            r1 += _cell(energy, quality, code, i + 1)
            r2 += _cell(energy, quality, code, i + 2)
            r3 += _cell(energy, quality, code, i + 3)
            r4 += _cell(energy, quality, code, i + 4)
            r5 += _cell(energy, quality, code, i + 5)
            r6 += _cell(energy, quality, code, i + 6)
            r7 += _cell(energy, quality, code, i + 7)
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        for i in range(end, lo + n):
            res += _cell(energy, quality, code, i)
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _code_pairwise(energy, quality, code, lo, n2) + _code_pairwise(energy, quality, code, lo + n2, n - n2)


def label_energy_sums(energy: np.ndarray, quality: np.ndarray, codes) -> tuple[np.ndarray, np.ndarray]:
    """Cells per quality code, and the energy of the cells of each of ``codes``, summed as NumPy sums.

    The energy of code ``c`` is ``np.sum(np.where(quality == c, np.where(np.isnan(energy), 0.0,
    energy), 0.0))`` bit for bit, for every code at once (one pass instead of a masked copy and a
    sum per code): the cells are taken in the arrays' column-major order, as NumPy sums a
    column-major array, and added by NumPy's pairwise summation.

    Parameters
    ----------
    energy : ndarray of float64, shape (n_mpan, n_t)
        [kWh]; NaN adds nothing.
    quality : ndarray of uint8, shape (n_mpan, n_t)
        DI-083 codes.
    codes : sequence of int
        Codes whose energy is wanted (distinct, 0..255).

    Returns
    -------
    counts : ndarray of int64, shape (256,)
        Cells per code [1].
    sums : ndarray of float64, shape (len(codes),)
        Energy per code of ``codes`` [kWh].
    """
    e = np.asarray(energy, dtype=np.float64).ravel(order="F")
    q = np.asarray(quality, dtype=np.uint8).ravel(order="F")
    if e.size != q.size:
        raise ValueError("label_energy_sums: energy and quality must have the same shape")
    codes = np.asarray(codes, dtype=np.int64)
    counts = np.bincount(q, minlength=256).astype(np.int64)
    out = np.zeros(codes.size)
    for k, code in enumerate(codes):  # a handful of codes; a code without cells sums to 0.0
        if counts[code]:
            # numpy's sum starts from its identity, 0.0 (so -0.0 -> 0.0)
            out[k] = 0.0 + _code_pairwise(e, q, np.uint8(code), 0, e.size)
    return counts, out


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _add_row(values, ok, weights, row, acc, acc_w, first):  # pragma: no cover - compiled
    # cell (row, j) of where(ok, values, 0.0) and of where(ok, weight of the row, 0.0): set (first) or added
    w = weights[row]
    for j in range(values.shape[1]):
        good = ok[row, j]
        x = values[row, j] if good else 0.0
        y = w if good else 0.0
        if first:
            acc[j] = x
            acc_w[j] = y
        else:
            acc[j] += x
            acc_w[j] += y


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _rows_pairwise(values, ok, weights, order, lo, n, r, r_w, out, out_w):  # pragma: no cover - compiled
    # numpy's pairwise summation down the rows order[lo:lo + n], every column at once (see _code_pairwise;
    # runs of < 8 start from -0.0, as numpy's do)
    n_t = values.shape[1]
    if n < 8:
        for j in range(n_t):
            out[j] = -0.0
            out_w[j] = -0.0
        for i in range(lo, lo + n):
            _add_row(values, ok, weights, order[i], out, out_w, False)
    elif n <= 128:
        for k in range(8):
            _add_row(values, ok, weights, order[lo + k], r[k], r_w[k], True)
        end = lo + n - n % 8
        for i in range(lo + 8, end, 8):
            for k in range(8):
                _add_row(values, ok, weights, order[i + k], r[k], r_w[k], False)
        for j in range(n_t):
            out[j] = ((r[0, j] + r[1, j]) + (r[2, j] + r[3, j])) + ((r[4, j] + r[5, j]) + (r[6, j] + r[7, j]))
            out_w[j] = ((r_w[0, j] + r_w[1, j]) + (r_w[2, j] + r_w[3, j])) + (
                (r_w[4, j] + r_w[5, j]) + (r_w[6, j] + r_w[7, j]))
        for i in range(end, lo + n):
            _add_row(values, ok, weights, order[i], out, out_w, False)
    else:
        n2 = n // 2
        n2 -= n2 % 8
        first, first_w = np.empty(n_t), np.empty(n_t)
        _rows_pairwise(values, ok, weights, order, lo, n2, r, r_w, first, first_w)
        _rows_pairwise(values, ok, weights, order, lo + n2, n - n2, r, r_w, out, out_w)
        for j in range(n_t):
            out[j] = first[j] + out[j]
            out_w[j] = first_w[j] + out_w[j]


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _group_sums(values, ok, weights, order, starts, ends, total, total_w, count):  # pragma: no cover - compiled
    n_t = values.shape[1]
    r, r_w = np.empty((8, n_t)), np.empty((8, n_t))
    rest, rest_w = np.empty(n_t), np.empty(n_t)
    for g in range(starts.size):
        a, b = starts[g], ends[g]
        # np.add.reduceat down a column-major array: the group's first cell, plus the pairwise sum of the rest
        _add_row(values, ok, weights, order[a], total[g], total_w[g], True)
        if b - a > 1:
            _rows_pairwise(values, ok, weights, order, a + 1, b - a - 1, r, r_w, rest, rest_w)
            for j in range(n_t):
                total[g, j] += rest[j]
                total_w[g, j] += rest_w[j]
        for i in range(a, b):
            row = order[i]
            for j in range(n_t):
                count[g, j] += ok[row, j]


def masked_group_sums(values: np.ndarray, ok: np.ndarray, weights: np.ndarray, order: np.ndarray,
                      starts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group of rows and column: the sum of the valid values, of the row weights of the valid
    cells, and the count of valid cells, in one pass over the rows.

    The sums are bit for bit ``np.add.reduceat(X[order], starts, axis=0)`` of the column-major
    ``X = np.where(ok, values, 0.0)`` (and of ``np.where(ok, weights[:, None], 0.0)``): each group's
    first cell, plus numpy's pairwise sum of the group's other cells.

    Parameters
    ----------
    values : ndarray of float64, shape (n_row, n_t)
    ok : ndarray of bool, shape (n_row, n_t)
        Cells that count.
    weights : ndarray of float64, shape (n_row,)
    order : ndarray of int64, shape (n_row,)
        Rows in group order.
    starts : ndarray of int64, shape (n_group,)
        Start of each group in ``order``, increasing; every group holds a row.

    Returns
    -------
    total, total_weights : ndarray of float64, shape (n_group, n_t)
    count : ndarray of int64, shape (n_group, n_t)
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    ok = np.ascontiguousarray(ok, dtype=np.bool_)
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    order = np.ascontiguousarray(order, dtype=np.int64)
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    ends = np.append(starts[1:], order.size).astype(np.int64)
    if (ends <= starts).any():
        raise ValueError("masked_group_sums: every group must hold a row")
    n_t = values.shape[1]
    total, total_w = np.empty((starts.size, n_t)), np.empty((starts.size, n_t))
    count = np.zeros((starts.size, n_t), dtype=np.int64)
    _group_sums(values, ok, weights, order, starts, ends, total, total_w, count)
    return total, total_w, count
