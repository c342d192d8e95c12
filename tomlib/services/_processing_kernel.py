"""Compiled inner loops of the smart processing service (:mod:`tomlib.services.processing`).

Joins on string keys (:func:`word_lookup`). The keys (MPAN, meter id, register id) are ASCII rows of
bytes packed eight to a 64-bit word (:func:`tomlib.services._processing_keys._packed_words`); one
hash table over the left side's rows, probed by each row of the right side, finds a row's match in
one pass. The NumPy/pandas formulation it replaces factorized every word column of both sides and
combined the codes (four or five hash passes over ~2.5 x 10^5 rows for a (MPAN, meter, register)
key) before indexing the combined codes: several times the work, for the same answer (a lookup's
result does not depend on how the keys are coded).

Sums of masked cells (:func:`label_energy_sums`, :func:`masked_group_sums`,
:func:`masked_row_sums`). The NumPy formulations made a masked copy of a block's MPAN x period
array (``np.where(mask, values, 0.0)``, ~40 MB) per sum and summed it; these read the cells once and
add them **in NumPy's own order** -- its pairwise summation (``DOUBLE_pairwise_sum``: leaves of at
most 128 values, eight interleaved partial sums in a leaf of 8 or more, longer runs halved at a
multiple of 8), a full sum starting from the identity 0.0, ``np.add.reduceat`` from the segment's
first value -- so the results are bit for bit those of NumPy 2 (the tests compare them). The
pairwise tree is walked with an explicit stack (:func:`_pairwise_plan`): numba's on-disk cache cannot
hold a recursive function (numba issue 6061, a segfault when it is loaded).

Compiled on first use and cached next to this file (``cache=True``); ``nogil`` so that threads of a
dask worker can run blocks side by side.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["actual_cells", "estimation_reasons", "fill_scaled_rows", "hh_reasons", "label_energy_sums",
           "masked_group_sums", "masked_row_sums", "nan_rows", "register_activity_grid", "visible_grid",
           "window_label_energy_sums", "word_lookup"]


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


_BATCH = 32  # rows whose table slots are read ahead together (independent loads overlap in the CPU)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _word_lookup(left, right, out):  # pragma: no cover - compiled; covered through word_lookup
    # The table (~2 x n_left slots, a few MB) and the left rows do not stay in cache: a probe is a
    # miss or two to memory. Taken one row at a time each miss waits for the previous one; so the
    # slots (and the candidates' first words) of a batch of rows are read first, in a loop of
    # independent loads that the CPU overlaps, then the batch is resolved from cache. The sums of
    # what was read ahead are returned (`ahead`) only so that the compiler keeps those loads.
    n_left = left.shape[0]
    size = 16
    while size < 2 * n_left:
        size *= 2
    mask = np.uint64(size - 1)
    table = np.full(size, -1, dtype=np.int64)  # open addressing, linear probing: left row or -1
    home = np.empty(n_left, dtype=np.uint64)
    for i in range(n_left):
        home[i] = _row_hash(left, i) & mask
    ahead = 0
    duplicate = False
    for b0 in range(0, n_left, _BATCH):
        b1 = min(b0 + _BATCH, n_left)
        for i in range(b0, b1):
            ahead += table[home[i]]
        for i in range(b0, b1):
            s = home[i]
            while True:
                r = table[s]
                if r < 0:
                    table[s] = i
                    break
                if _same(left, r, left, i):
                    duplicate = True  # the first row keeps the key in the table (callers refuse such a table)
                    break
                s = (s + np.uint64(1)) & mask
    slots = np.empty(_BATCH, dtype=np.uint64)
    cand = np.empty(_BATCH, dtype=np.int64)
    last = -1
    in_order = 0  # rows of the last batch found by the order of the rows (below): no read-ahead then
    for b0 in range(0, right.shape[0], _BATCH):
        b1 = min(b0 + _BATCH, right.shape[0])
        read_ahead = in_order < _BATCH // 2
        if read_ahead:
            for j in range(b0, b1):
                slots[j - b0] = _row_hash(right, j) & mask
            for j in range(b0, b1):
                cand[j - b0] = table[slots[j - b0]]
            for j in range(b0, b1):
                r = cand[j - b0]
                if r >= 0:
                    ahead += np.int64(left[r, 0] & np.uint64(1))
        in_order = 0
        for j in range(b0, b1):
            # the rows of both sides often run in the same order (a meter's registers, the MPANs of a
            # block): the row after the last match, or the last match again, is tried before hashing
            if last >= 0 and last + 1 < n_left and _same(left, last + 1, right, j):
                last += 1
                out[j] = last
                in_order += 1
                continue
            if last >= 0 and _same(left, last, right, j):
                out[j] = last
                in_order += 1
                continue
            if read_ahead:
                s = slots[j - b0]
                r = cand[j - b0]
            else:
                s = _row_hash(right, j) & mask
                r = table[s]
            found = -1
            while r >= 0:
                if _same(left, r, right, j):
                    found = r
                    break
                s = (s + np.uint64(1)) & mask
                r = table[s]
            out[j] = found
            if found >= 0:
                last = found
    return duplicate, ahead


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
        Whether ``left`` holds a row twice (then ``rows`` may name any of them).
    """
    left = np.ascontiguousarray(left, dtype=np.uint64)
    right = np.ascontiguousarray(right, dtype=np.uint64)
    if left.ndim != 2 or right.ndim != 2 or left.shape[1] != right.shape[1]:
        raise ValueError("word_lookup: give two 2-D arrays of words with the same number of columns")
    out = np.empty(right.shape[0], dtype=np.int64)
    duplicate, _ = _word_lookup(left, right, out)
    return out, bool(duplicate)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _pairwise_plan(n):  # pragma: no cover - compiled; covered through the sums below
    # numpy's pairwise summation of n values (``DOUBLE_pairwise_sum``: runs of <= 128 values are leaves,
    # longer runs are halved at a multiple of 8 and the halves' sums added) as its leaves, left to
    # right (start, length), and a postfix program over them: k >= 0 pushes leaf k's sum, -1 pops
    # two sums and pushes left + right. Built with an explicit stack: numba's cache cannot hold a
    # recursive function (numba issue 6061)
    cap = 2 * (n // 64 + 2)
    leaf_lo = np.empty(cap, dtype=np.int64)
    leaf_n = np.empty(cap, dtype=np.int64)
    ops = np.empty(2 * cap, dtype=np.int64)
    task_lo = np.empty(256, dtype=np.int64)
    task_n = np.empty(256, dtype=np.int64)  # -1: the add of two finished halves
    task_lo[0], task_n[0] = 0, n
    top, n_leaf, n_op = 1, 0, 0
    while top:
        top -= 1
        lo, m = task_lo[top], task_n[top]
        if m < 0:
            ops[n_op] = -1
            n_op += 1
        elif m <= 128:
            leaf_lo[n_leaf], leaf_n[n_leaf] = lo, m
            ops[n_op] = n_leaf
            n_leaf += 1
            n_op += 1
        else:
            m2 = m // 2
            m2 -= m2 % 8
            task_lo[top], task_n[top] = 0, -1  # after both halves
            task_lo[top + 1], task_n[top + 1] = lo + m2, m - m2  # then the right half
            task_lo[top + 2], task_n[top + 2] = lo, m2  # first the left half
            top += 3
    return leaf_lo[:n_leaf], leaf_n[:n_leaf], ops[:n_op]


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _run_plan(ops, leaf_sums, out):  # pragma: no cover - compiled; covered through the sums below
    # evaluate a _pairwise_plan program over the leaves' sums (n_leaf, k): out (k,) = the whole sum
    k = leaf_sums.shape[1]
    stack = np.empty((128, k))
    top = 0
    for op in ops:
        if op >= 0:
            for j in range(k):
                stack[top, j] = leaf_sums[op, j]
            top += 1
        else:
            top -= 1
            for j in range(k):
                stack[top - 1, j] = stack[top - 1, j] + stack[top, j]
    for j in range(k):
        out[j] = stack[0, j]


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _leaf(a, lo, n):  # pragma: no cover - compiled; covered through the sums below
    # a leaf of numpy's pairwise sum: fewer than 8 values added in turn from -0.0, else eight
    # interleaved partial sums, combined in pairs, then the values left over
    if n < 8:
        res = -0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    end = lo + n - n % 8
    for i in range(lo + 8, end, 8):
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for i in range(end, lo + n):
        res += a[i]
    return res


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _pairwise(a, lo, n):  # pragma: no cover - compiled; covered through the sums below
    # numpy's pairwise sum of a[lo:lo + n]
    if n <= 128:
        return _leaf(a, lo, n)
    leaf_lo, leaf_n, ops = _pairwise_plan(n)
    sums = np.empty((leaf_lo.size, 1))
    for k in range(leaf_lo.size):
        sums[k, 0] = _leaf(a, lo + leaf_lo[k], leaf_n[k])
    out = np.empty(1)
    _run_plan(ops, sums, out)
    return out[0]


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _cell(energy, quality, code, i):  # pragma: no cover - compiled; covered through label_energy_sums
    v = energy[i]
    return (0.0 if np.isnan(v) else v) if quality[i] == code else 0.0


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _code_leaf(energy, quality, code, lo, n):  # pragma: no cover - compiled
    # _leaf of the cells where(quality == code, energy (NaN -> 0), 0.0), without making them
    if n < 8:
        res = -0.0
        for i in range(lo, lo + n):
            res += _cell(energy, quality, code, i)
        return res
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


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _code_sums(energy, quality, codes, out):  # pragma: no cover - compiled; covered through label_energy_sums
    # numpy's pairwise sum of where(quality == code, energy (NaN -> 0), 0.0) per code, without the
    # masked copy: every cell is added, 0.0 for another code's, as numpy adds the zeros of its copy
    leaf_lo, leaf_n, ops = _pairwise_plan(energy.size)
    sums = np.empty((leaf_lo.size, 1))
    one = np.empty(1)
    for c in range(codes.size):
        code = np.uint8(codes[c])
        for k in range(leaf_lo.size):
            sums[k, 0] = _code_leaf(energy, quality, code, leaf_lo[k], leaf_n[k])
        _run_plan(ops, sums, one)
        out[c] = one[0]


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
    present = codes[counts[codes] > 0]  # a code without cells sums to 0.0
    got = np.zeros(present.size)
    if present.size:
        _code_sums(e, q, present, got)
    out = np.zeros(codes.size)
    out[counts[codes] > 0] = 0.0 + got  # numpy's sum starts from its identity, 0.0 (so -0.0 -> 0.0)
    return counts, out


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _add_row(values, ok, weights, row, acc, acc_w, count, first):  # pragma: no cover - compiled
    # cell (row, j) of where(ok, values, 0.0) and of where(ok, weight of the row, 0.0), every column:
    # set (first) or added; the row's valid cells counted
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
        count[j] += good


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _rows_leaf(values, ok, weights, order, lo, n, r, r_w, count, out, out_w):  # pragma: no cover - compiled
    # _leaf down the rows order[lo:lo + n], every column at once (rows read whole)
    n_t = values.shape[1]
    if n < 8:
        for j in range(n_t):
            out[j] = -0.0
            out_w[j] = -0.0
        for i in range(lo, lo + n):
            _add_row(values, ok, weights, order[i], out, out_w, count, False)
        return
    for k in range(8):
        _add_row(values, ok, weights, order[lo + k], r[k], r_w[k], count, True)
    end = lo + n - n % 8
    for i in range(lo + 8, end, 8):
        for k in range(8):
            _add_row(values, ok, weights, order[i + k], r[k], r_w[k], count, False)
    for j in range(n_t):
        out[j] = ((r[0, j] + r[1, j]) + (r[2, j] + r[3, j])) + ((r[4, j] + r[5, j]) + (r[6, j] + r[7, j]))
        out_w[j] = ((r_w[0, j] + r_w[1, j]) + (r_w[2, j] + r_w[3, j])) + ((r_w[4, j] + r_w[5, j]) + (r_w[6, j] + r_w[7, j]))
    for i in range(end, lo + n):
        _add_row(values, ok, weights, order[i], out, out_w, count, False)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _group_sums(values, ok, weights, order, starts, ends, total, total_w, count):  # pragma: no cover - compiled
    n_t = values.shape[1]
    r, r_w = np.empty((8, n_t)), np.empty((8, n_t))
    for g in range(starts.size):
        a, b = starts[g], ends[g]
        # np.add.reduceat down a column-major array: the group's first cell, plus the pairwise sum of
        # the rest (rows order[a + 1:b]), leaf by leaf for every column
        _add_row(values, ok, weights, order[a], total[g], total_w[g], count[g], True)
        if b - a > 1:
            leaf_lo, leaf_n, ops = _pairwise_plan(b - a - 1)
            sums = np.empty((leaf_lo.size, n_t))
            sums_w = np.empty((leaf_lo.size, n_t))
            for k in range(leaf_lo.size):
                _rows_leaf(values, ok, weights, order, a + 1 + leaf_lo[k], leaf_n[k], r, r_w, count[g], sums[k],
                           sums_w[k])
            rest = np.empty(n_t)
            _run_plan(ops, sums, rest)
            rest_w = np.empty(n_t)
            _run_plan(ops, sums_w, rest_w)
            for j in range(n_t):
                total[g, j] += rest[j]
                total_w[g, j] += rest_w[j]


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


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _masked_row_sums(values, valid, finite, out):  # pragma: no cover - compiled
    n_t = values.shape[1]
    big = np.finfo(np.float64).max
    row = np.empty(n_t)
    for i in range(values.shape[0]):
        for j in range(n_t):
            x = values[i, j] if valid[i, j] else 0.0
            if finite:  # np.nan_to_num
                if np.isnan(x):
                    x = 0.0
                elif x == np.inf:
                    x = big
                elif x == -np.inf:
                    x = -big
            row[j] = x
        out[i] = 0.0 + _pairwise(row, 0, n_t)  # a row sum starts from numpy's identity, 0.0


def masked_row_sums(values: np.ndarray, valid: np.ndarray, finite: bool = False) -> np.ndarray:
    """Sum of each row's valid values, bit for bit ``np.where(valid, values, 0.0).sum(axis=1)`` (numpy's
    pairwise sum of a C-ordered row), without the masked copy.

    Parameters
    ----------
    values : ndarray of float64, shape (n_row, n_t)
    valid : ndarray of bool, shape (n_row, n_t)
    finite : bool
        Sum ``np.nan_to_num`` of the masked values instead (NaN -> 0, +-inf -> +-largest float): what
        summing ``np.nan_to_num(np.where(valid, values, 0.0))`` gives, also when every value is finite.

    Returns
    -------
    ndarray of float64, shape (n_row,)
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    valid = np.ascontiguousarray(np.broadcast_to(valid, values.shape), dtype=np.bool_)
    out = np.empty(values.shape[0])
    _masked_row_sums(values, valid, bool(finite), out)
    return out


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _nan_rows(energy, out):  # pragma: no cover - compiled; covered through nan_rows
    n = 0
    for i in range(energy.shape[0]):
        for j in range(energy.shape[1]):
            if np.isnan(energy[i, j]):
                out[n] = i
                n += 1
                break
    return n


def nan_rows(energy: np.ndarray) -> np.ndarray:
    """Rows holding a NaN, in order: ``np.flatnonzero(np.isnan(energy).any(axis=1))`` in one pass
    that stops at a row's first NaN.

    Parameters
    ----------
    energy : ndarray of float64, shape (n_mpan, n_t)

    Returns
    -------
    ndarray of int64
    """
    energy = np.ascontiguousarray(energy, dtype=np.float64)
    out = np.empty(energy.shape[0], dtype=np.int64)
    return out[:_nan_rows(energy, out)].copy()


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _fill_scaled_rows(energy, quality, rows, scale, ratio, code, still):  # pragma: no cover - compiled
    n = 0
    for k in range(rows.size):
        i = rows[k]
        left = False
        for j in range(energy.shape[1]):
            if np.isnan(energy[i, j]):
                v = scale[i] * ratio[i, j]
                if np.isfinite(v):
                    energy[i, j] = v
                    quality[i, j] = code
                else:
                    left = True
        if left:
            still[n] = i
            n += 1
    return n


def fill_scaled_rows(energy: np.ndarray, quality: np.ndarray, rows: np.ndarray, scale: np.ndarray,
                     ratio: np.ndarray, code: int) -> np.ndarray:
    """An estimation step filling cells still without a value: ``scale[row] x ratio[row, period]``
    where that is finite, with quality ``code`` -- in place, on ``rows`` only -- and the rows still
    holding a NaN after it.

    The values are those of ``scale[rows, None] * ratio[rows]`` (one product per cell), filled where
    ``energy`` is NaN, as the processing service's ``fill`` fills them, without the gathered copies.

    Parameters
    ----------
    energy : ndarray of float64, shape (n_mpan, n_t)
        [kWh]; NaN = no value yet. Written.
    quality : ndarray of uint8, shape (n_mpan, n_t)
        Written where ``energy`` is.
    rows : ndarray of int64
        Rows to fill, distinct.
    scale : ndarray of float64, shape (n_mpan,)
        E.g. annual consumption [kWh/year].
    ratio : ndarray of float64, shape (n_mpan, n_t)
        E.g. share of a year's consumption per period [1/year].
    code : int
        Quality code of the filled cells.

    Returns
    -------
    ndarray of int64
        Those of ``rows`` (in their order) still holding a NaN.
    """
    if not (energy.flags.c_contiguous and quality.flags.c_contiguous and energy.dtype == np.float64
            and quality.dtype == np.uint8):
        raise ValueError("fill_scaled_rows: energy (float64) and quality (uint8) must be C-contiguous: "
                         "they are written in place")
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    still = np.empty(rows.size, dtype=np.int64)
    n = _fill_scaled_rows(energy, quality, rows, np.ascontiguousarray(scale, dtype=np.float64),
                          np.ascontiguousarray(ratio, dtype=np.float64), np.uint8(code), still)
    return still[:n].copy()


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _zero_checked(energy, reason, energised, has_energised, checked, i, j):  # pragma: no cover - compiled
    # a clean zero where the zero-run rule applies (checked, and energised)
    return (reason[i, j] == 0 and energy[i, j] == 0 and checked[i, j]
            and (not has_energised or energised[i, j]))


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _hh_reasons(energy, max_energy, energised, has_energised, checked, min_zero_run, max_zero_share,
                reason):  # pragma: no cover - compiled; covered through hh_reasons
    n_t = energy.shape[1]
    for i in range(energy.shape[0]):
        # the value rules, first failing rule first; the row's clean values and zeros counted on the way
        n_values = 0
        n_zero = 0
        for j in range(n_t):
            x = energy[i, j]
            r = 0
            if np.isfinite(x):  # a gap is never refused
                if x < 0:
                    r = 1
                elif x > max_energy[i, j]:
                    r = 2
                elif has_energised and not energised[i, j] and x > 0:
                    r = 3
                else:
                    n_values += 1
                    if x == 0:
                        n_zero += 1
            reason[i, j] = r
        if n_zero < min_zero_run:  # no run of the minimum length in this row
            continue
        # runs of clean zeros where the rule applies; a run ends at a non-zero, a gap, a refused
        # value, an unchecked or de-energised cell or the row's end
        j = 0
        while j < n_t:
            if _zero_checked(energy, reason, energised, has_energised, checked, i, j):
                start = j
                while j < n_t and _zero_checked(energy, reason, energised, has_energised, checked, i, j):
                    j += 1
                length = j - start
                share = (n_zero - length) / max(n_values - length, 1)
                if length >= min_zero_run and share < max_zero_share:
                    for k in range(start, j):
                        reason[i, k] = 4
            else:
                j += 1


def hh_reasons(energy: np.ndarray, max_energy: np.ndarray, energised: np.ndarray | None, checked: np.ndarray,
               min_zero_run: int, max_zero_share: float) -> np.ndarray:
    """The HH rules of :mod:`tomlib.services.validation` in one pass per MPAN: reason code per cell
    (0 valid or no value, 1 negative, 2 above the maximum, 3 consumption while de-energised, 4 zero
    run), what ``validate_hh``'s masked NumPy passes and ``zero_runs`` give.

    Parameters
    ----------
    energy : ndarray of float64, shape (n_mpan, n_t)
        HH values [kWh]; NaN = no value.
    max_energy : ndarray of float64, broadcastable to (n_mpan, n_t)
        Physical maximum [kWh], finite.
    energised : ndarray of bool, broadcastable to (n_mpan, n_t), or None
        None: energised everywhere.
    checked : ndarray of bool, broadcastable to (n_mpan, n_t)
        Where the zero-run rule applies (on energised cells only).
    min_zero_run : int
        Shortest suspicious run [periods].
    max_zero_share : float
        A run is suspicious only if the MPAN's share of zeros outside it is below this [-].

    Returns
    -------
    ndarray of uint8, shape (n_mpan, n_t)
    """
    energy = np.asarray(energy, dtype=np.float64)
    shape = energy.shape
    reason = np.empty(shape, dtype=np.uint8)
    has_energised = energised is not None
    on = np.broadcast_to(np.asarray(energised if has_energised else True, dtype=np.bool_), shape)
    _hh_reasons(energy, np.broadcast_to(np.asarray(max_energy, dtype=np.float64), shape), on, has_energised,
                np.broadcast_to(np.asarray(checked, dtype=np.bool_), shape), np.int64(min_zero_run),
                np.float64(max_zero_share), reason)
    return reason


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _register_activity(tpr_active, tpr_codes, single, installed, removed, t, out):  # pragma: no cover - compiled
    for r in range(out.shape[0]):
        c = tpr_codes[r]
        one = single[r]
        lo = installed[r]
        hi = removed[r]
        for j in range(out.shape[1]):
            out[r, j] = (one or tpr_active[c, j]) and t[j] >= lo and t[j] < hi


def register_activity_grid(tpr_active: np.ndarray, tpr_codes: np.ndarray, single: np.ndarray,
                           installed: np.ndarray, removed: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Periods each register records, in one pass: ``(tpr_active[tpr_codes] | single[:, None]) &
    (times >= installed[:, None]) & (times < removed[:, None])`` without the register x period copies.

    Parameters
    ----------
    tpr_active : ndarray of bool, shape (n_tpr, n_t)
        Periods each distinct TPR is active.
    tpr_codes : ndarray of int, shape (n_register,)
        Each register's row of ``tpr_active``.
    single : ndarray of bool, shape (n_register,)
        The register is its meter's only one (it records every period).
    installed, removed : ndarray of datetime64[ns], shape (n_register,)
        The meter's installation and removal instants [UTC], not NaT.
    times : ndarray of datetime64[ns], shape (n_t,)
        Period starts [UTC], not NaT.

    Returns
    -------
    ndarray of bool, shape (n_register, n_t)
    """
    codes = np.ascontiguousarray(tpr_codes, dtype=np.int64).reshape(-1)
    out = np.empty((codes.size, np.asarray(times).size), dtype=np.bool_)
    if codes.size and out.shape[1]:
        if codes.min() < 0 or codes.max() >= tpr_active.shape[0]:
            raise ValueError("register_activity_grid: a TPR code outside tpr_active")
        _register_activity(np.ascontiguousarray(tpr_active, dtype=np.bool_), codes,
                           np.ascontiguousarray(single, dtype=np.bool_),
                           np.asarray(installed, dtype="datetime64[ns]").view(np.int64),
                           np.asarray(removed, dtype="datetime64[ns]").view(np.int64),
                           np.asarray(times, dtype="datetime64[ns]").view(np.int64), out)
    return out


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _visible_grid(energy, available_at, of_row, t, out):  # pragma: no cover - compiled; via visible_grid
    nat = np.iinfo(np.int64).min
    for i in range(out.shape[0]):
        k = of_row[i]
        for j in range(out.shape[1]):
            if k >= 0:
                a = available_at[k, j]
                out[i, j] = energy[k, j] if a != nat and a <= t else np.nan
            else:
                out[i, j] = np.nan


def visible_grid(energy: np.ndarray, available_at: np.ndarray, rows: np.ndarray, n_rows: int, n_t: int,
                 as_of: np.datetime64) -> np.ndarray | None:
    """The HH values visible at ``as_of`` on a grid of ``n_rows`` MPANs x the first ``n_t`` periods:
    ``energy[k, j]`` on row ``rows[k]`` where it arrived by then (``available_at <= as_of``, not NaT),
    NaN elsewhere -- what masking ``energy`` with ``available_at <= as_of`` (xarray's ``where``) and
    scattering it into a NaN grid gives, written in one pass without the masked copy.

    Parameters
    ----------
    energy : ndarray of float64, shape (n_record, >= n_t)
        [kWh]
    available_at : ndarray of datetime64[ns], shape of ``energy``
        When each value arrived [UTC]; NaT = never.
    rows : ndarray of int, shape (n_record,)
        Grid row of each record's MPAN.
    n_rows, n_t : int
        Grid shape.
    as_of : datetime64
        As-of instant [UTC].

    Returns
    -------
    ndarray of float64, shape (n_rows, n_t), or None
        None when ``rows`` names a row twice or a row outside the grid (the caller scatters as
        NumPy does, the last record winning / -1 counting from the end).
    """
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= n_rows):
        return None
    of_row = np.full(n_rows, -1, dtype=np.int64)
    of_row[rows] = np.arange(rows.size)
    if rows.size and np.count_nonzero(of_row >= 0) != rows.size:
        return None
    if energy.shape != available_at.shape or energy.shape[0] != rows.size or energy.shape[1] < n_t:
        raise ValueError("visible_grid: energy and available_at must be (n_record, >= n_t) like rows")
    out = np.empty((n_rows, n_t))
    _visible_grid(np.asarray(energy, dtype=np.float64), np.asarray(available_at, dtype="datetime64[ns]").view(np.int64),
                  of_row, np.datetime64(as_of, "ns").astype(np.int64), out)
    return out



@numba.njit(cache=True, nogil=True, boundscheck=False)
def _window_code_sums(energy, quality, c0, slot, n_slot, leaf_lo, leaf_n, order, sums,
                      counts):  # pragma: no cover - compiled; covered through window_label_energy_sums
    # every leaf of the pairwise plan over the window's cells in column-major order, read from the
    # row-major arrays; leaves taken in the order of their first row (`order`), so the rows a run of
    # leaves reads stay in cache for every column. Per code, a leaf's partial sums start at 0.0 and
    # add only that code's cells: numpy's sum of the masked copy adds 0.0 for the other cells, which
    # changes nothing unless a partial sum is -0.0 -- never, as no cell holds -0.0 (a NaN cell adds
    # 0.0; a leaf of fewer than 8 cells starts at -0.0 but adds at least one cell). Returns False on
    # finding a -0.0 cell in the window (the caller then sums the masked copies).
    m = energy.shape[0]
    acc = np.zeros((n_slot + 1, 8))  # a slot for the codes not wanted (slot n_slot): no branch per cell
    for kk in range(order.size):
        k = order[kk]
        lo = leaf_lo[k]
        n = leaf_n[k]
        r = lo % m
        c = c0 + lo // m
        acc[:, :] = 0.0
        step = 1 if n >= 8 else 0  # eight partial sums in turn, or one
        body = n - n % 8 if n >= 8 else n
        lane = 0
        for i in range(n):
            if i == body:  # the eight partial sums combined in pairs, then the cells left over added
                for s in range(n_slot):
                    acc[s, 0] = (((acc[s, 0] + acc[s, 1]) + (acc[s, 2] + acc[s, 3]))
                                 + ((acc[s, 4] + acc[s, 5]) + (acc[s, 6] + acc[s, 7])))
                step = 0
                lane = 0
            q = quality[r, c]
            counts[q] += 1
            x = energy[r, c]
            if np.isnan(x):
                x = 0.0
            elif x == 0.0 and np.signbit(x):
                return False
            acc[slot[q], lane] += x
            lane = (lane + step) & 7
            r += 1
            if r == m:
                r = 0
                c += 1
        if body == n and n >= 8:
            for s in range(n_slot):
                acc[s, 0] = (((acc[s, 0] + acc[s, 1]) + (acc[s, 2] + acc[s, 3]))
                             + ((acc[s, 4] + acc[s, 5]) + (acc[s, 6] + acc[s, 7])))
        for s in range(n_slot):
            sums[k, s] = acc[s, 0]
    return True


def window_label_energy_sums(energy: np.ndarray, quality: np.ndarray, start: int, stop: int,
                             codes) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`label_energy_sums` of the columns ``start:stop`` of row-major arrays, bit for bit,
    without their column-major copies: one pass over the window's cells for every code at once.

    Parameters
    ----------
    energy : ndarray of float64, shape (n_mpan, n_t), C-contiguous
        [kWh]; NaN adds nothing.
    quality : ndarray of uint8, shape (n_mpan, n_t), C-contiguous
        DI-083 codes.
    start, stop : int
        The window's columns.
    codes : sequence of int
        Codes whose energy is wanted (distinct, 0..255).

    Returns
    -------
    (counts, sums) as :func:`label_energy_sums` gives them, or None when a cell of the window
    holds -0.0 (these sums would not keep NumPy's signed zeros: use :func:`label_energy_sums`).
    """
    if not (energy.flags.c_contiguous and quality.flags.c_contiguous and energy.dtype == np.float64
            and quality.dtype == np.uint8 and energy.shape == quality.shape and energy.ndim == 2):
        raise ValueError("window_label_energy_sums: energy (float64) and quality (uint8) of one shape, C-contiguous")
    if not 0 <= start <= stop <= energy.shape[1]:
        raise ValueError(f"window_label_energy_sums: columns {start}:{stop} outside 0:{energy.shape[1]}")
    codes = np.asarray(codes, dtype=np.int64)
    slot = np.full(256, codes.size, dtype=np.int64)
    slot[codes] = np.arange(codes.size)
    counts = np.zeros(256, dtype=np.int64)
    n_cells = energy.shape[0] * (stop - start)
    sums = np.zeros(codes.size)
    if n_cells:
        leaf_lo, leaf_n, ops = _pairwise_plan(n_cells)
        order = np.argsort(leaf_lo % energy.shape[0], kind="stable")
        leaf_sums = np.empty((leaf_lo.size, codes.size))
        if not _window_code_sums(energy, quality, np.int64(start), slot, np.int64(codes.size), leaf_lo, leaf_n,
                                 order, leaf_sums, counts):
            return None
        _run_plan(ops, leaf_sums, sums)
    out = np.zeros(codes.size)
    out[counts[codes] > 0] = 0.0 + sums[counts[codes] > 0]  # numpy's sum starts from 0.0; a code without cells: 0.0
    return counts, out


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _actual_cells(hh, hh_reason, actual, missing, valid, energy, quality):  # pragma: no cover - compiled
    for i in range(hh.shape[0]):
        for j in range(hh.shape[1]):
            x = hh[i, j]
            ok = np.isfinite(x) and hh_reason[i, j] == 0
            valid[i, j] = ok
            energy[i, j] = x if ok else np.nan
            quality[i, j] = actual if ok else missing


def actual_cells(hh: np.ndarray, hh_reason: np.ndarray, actual: int, missing: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The valid actual cells of the HH grid and the grids the estimation starts from, in one pass:
    ``valid = isfinite(hh) & (hh_reason == 0)``, ``energy = where(valid, hh, nan)`` and
    ``quality = where(valid, actual, missing)``.

    Parameters
    ----------
    hh : ndarray of float64, shape (n_mpan, n_t)
        HH values [kWh]; NaN = none.
    hh_reason : ndarray of uint8, shape of ``hh``
        Rejection reason per cell (0 = not rejected).
    actual, missing : int
        Quality codes of actual and of not yet estimated cells.

    Returns
    -------
    valid : ndarray of bool
    energy : ndarray of float64 [kWh]
    quality : ndarray of uint8
    """
    hh = np.asarray(hh, dtype=np.float64)
    hh_reason = np.asarray(hh_reason, dtype=np.uint8)
    if hh.ndim != 2 or hh_reason.shape != hh.shape:
        raise ValueError("actual_cells: hh and hh_reason must be 2-D arrays of one shape")
    valid = np.empty(hh.shape, dtype=np.bool_)
    energy = np.empty(hh.shape)
    quality = np.empty(hh.shape, dtype=np.uint8)
    _actual_cells(hh, hh_reason, np.uint8(actual), np.uint8(missing), valid, energy, quality)
    return valid, energy, quality


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _estimation_reasons(valid, missing_reason, hh_reason, hh, quality, invalid, de_energised_quality,
                        de_energised, out):  # pragma: no cover - compiled; covered through estimation_reasons
    for i in range(valid.shape[0]):
        for j in range(valid.shape[1]):
            r = np.uint8(0) if valid[i, j] else missing_reason[i, j]
            if hh_reason[i, j] > 0 and np.isfinite(hh[i, j]):
                r = invalid
            if quality[i, j] == de_energised_quality:
                r = de_energised
            out[i, j] = r


def estimation_reasons(valid: np.ndarray, missing_reason: np.ndarray, hh_reason: np.ndarray, hh: np.ndarray,
                       quality: np.ndarray, invalid: int, de_energised_quality: int, de_energised: int) -> np.ndarray:
    """DI-076 estimation reason per cell in one pass: 0 for valid actual data, else ``missing_reason``;
    ``invalid`` where a value was refused, ``de_energised`` where the cell's quality is
    ``de_energised_quality`` (later rules win), what ``np.where`` and two masked assignments give.

    Parameters
    ----------
    valid : ndarray of bool, shape (n_mpan, n_t)
    missing_reason : array-like of int, broadcastable to that shape
        Reason of a cell without actual data (cast to uint8 as ``astype`` casts).
    hh_reason : ndarray of uint8
        HH rejection reason per cell (0 = not rejected).
    hh : ndarray of float64
        HH values [kWh] (a refused cell counts only if it holds a value).
    quality : ndarray of uint8
        Quality code per cell.
    invalid, de_energised_quality, de_energised : int
        The codes.

    Returns
    -------
    ndarray of uint8, shape (n_mpan, n_t)
    """
    shape = valid.shape
    mr = np.asarray(missing_reason)
    mr = np.broadcast_to(mr if mr.dtype == np.uint8 else mr.astype(np.uint8), shape)
    out = np.empty(shape, dtype=np.uint8)
    _estimation_reasons(np.asarray(valid, dtype=np.bool_), mr, np.asarray(hh_reason, dtype=np.uint8),
                        np.asarray(hh, dtype=np.float64), np.asarray(quality, dtype=np.uint8), np.uint8(invalid),
                        np.uint8(de_energised_quality), np.uint8(de_energised), out)
    return out
