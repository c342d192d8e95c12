"""Compiled inner loops of market generation (:mod:`tomlib.market`, :func:`tomlib.mpan.generate_cores`).

Each kernel does in one pass over a block's MPAN x period arrays what took several NumPy passes and
their temporaries of the whole cube:

- :func:`core_code_points`: the 13 digits of MPAN cores as code points, check digit included (NumPy
  divided a (n, 12) int64 matrix twice, a tenth of a second per 200,000 cores);
- :func:`core_numbers_of_points`: the inverse, 13-digit cores (their code points) as int64 numbers,
  or "not all cores" (NumPy checked, cast and multiplied a (n, 13) matrix: 10 ms per 100,000 cores,
  and every join on MPAN cores does it);
- :func:`gather_rows`: the true energy of the rows of one kind (a household-day or profile-class
  shape picked per row and period, times the row's scale, times its noise), written straight into
  the market's energy array (NumPy built the gathered cube, multiplied it twice and copied it in);
- :func:`rows_times_table`: energy times the line loss factor of each row's LLFC (NumPy gathered a
  whole cube of factors first).

The arithmetic is the NumPy formulation's, operation by operation in the same order (``(shape x
scale) x noise``; no fused multiply-add, no fast-math), so the values are bit-identical; what goes
away is the temporaries and the passes. Random draws and ``exp`` stay in NumPy.

Compiled on first use and cached next to this file (``cache=True``); ``nogil`` so that threads of a
dask worker can run blocks side by side.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["core_code_points", "core_numbers_of_points", "gather_rows", "rows_times_table"]

_PRIMES = np.array([3, 5, 7, 13, 17, 19, 23, 29, 31, 37, 41, 43], dtype=np.int64)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _code_points(stem, primes, out):  # pragma: no cover - compiled; covered through core_code_points
    # unsigned: division by 10 becomes a multiply and shift without sign fix-ups (stems are >= 0)
    ten = np.uint64(10)
    for i in range(stem.size):
        s = np.uint64(stem[i])
        check = np.uint64(0)
        for k in range(11, -1, -1):
            q = s // ten
            d = s - q * ten
            s = q
            out[i, k] = d + np.uint64(48)
            check += d * np.uint64(primes[k])
        out[i, 12] = check % np.uint64(11) % ten + np.uint64(48)


def core_code_points(stem: np.ndarray) -> np.ndarray:
    """Code points of the 13-digit MPAN cores of 12-digit stems (distributor id + unique id).

    Parameters
    ----------
    stem : ndarray of int64, shape (n,)
        The first 12 digits as a number, 0 <= stem < 10**12.

    Returns
    -------
    ndarray of uint32, shape (n, 13)
        Unicode code points of the 12 digits and the check digit (:mod:`tomlib.mpan`); ``.view("<U13")``
        makes the cores.
    """
    stem = np.ascontiguousarray(stem, dtype=np.int64)
    if stem.size and (stem.min() < 0 or stem.max() >= 10**12):
        raise ValueError("core_code_points: stems must be 12-digit numbers (0 <= stem < 10**12)")
    out = np.empty((stem.size, 13), dtype=np.uint32)
    _code_points(stem, _PRIMES, out)
    return out


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _numbers(points, out):  # pragma: no cover - compiled; covered through core_numbers_of_points
    width = points.shape[1]
    for i in range(points.shape[0]):
        number = 0
        for k in range(13):
            p = points[i, k]
            if p < 48 or p > 57:
                return False
            number = number * 10 + (p - 48)
        for k in range(13, width):
            if points[i, k] != 0:
                return False
        out[i] = number
    return True


def core_numbers_of_points(points: np.ndarray) -> np.ndarray | None:
    """13-digit MPAN cores given as code points (a ``<U`` array's ``uint32`` view, or the UTF-8 bytes
    of Arrow text, shape (n, width), width >= 13) as int64 numbers; None if any row is not 13 digits
    followed by padding (0).

    Parameters
    ----------
    points : ndarray of uint32 or uint8, shape (n, width)

    Returns
    -------
    ndarray of int64, shape (n,), or None
    """
    if points.dtype not in (np.uint8, np.uint32):  # UTF-8 bytes of Arrow text or a <U array's code points
        points = points.astype(np.uint32)
    points = np.ascontiguousarray(points)
    if points.ndim != 2 or points.shape[1] < 13:
        raise ValueError("core_numbers_of_points: expected (n, width >= 13) code points")
    out = np.empty(points.shape[0], dtype=np.int64)
    return out if _numbers(points, out) else None


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _gather_rows(table, pick, day_of_t, slot, scale, noise, rows, out):  # pragma: no cover - compiled
    n_t = slot.size
    for i in range(rows.size):
        r = rows[i]
        s = scale[i]
        for t in range(n_t):
            out[r, t] = (table[pick[i, day_of_t[t]], slot[t]] * s) * noise[i, t]


def gather_rows(out: np.ndarray, rows: np.ndarray, table: np.ndarray, pick: np.ndarray, day_of_t: np.ndarray,
                slot: np.ndarray, scale: np.ndarray, noise: np.ndarray | None) -> None:
    """``out[rows[i], t] = (table[pick[i, day_of_t[t]], slot[t]] x scale[i]) x noise[i, t]``, in place.

    Parameters
    ----------
    out : ndarray of float64, shape (n_out, n_t), C-contiguous
        Energy array written in rows ``rows`` [kWh per period].
    rows : ndarray of int, shape (n,)
        Row of ``out`` of each input row.
    table : ndarray of float64, shape (n_shapes, n_slots)
        Day shapes [kWh per local half hour].
    pick : ndarray of int, shape (n, n_days)
        Shape (row of ``table``) of each input row and day.
    day_of_t : ndarray of int, shape (n_t,)
        Day (column of ``pick``) of each period.
    slot : ndarray of int, shape (n_t,)
        Local half hour (column of ``table``) of each period.
    scale : ndarray of float64, shape (n,)
        Factor of each row [-].
    noise : ndarray of float64, shape (n, n_t), optional
        Multiplicative noise [-]; None for none (a factor 1.0, the same values).
    """
    n, n_t = rows.size, slot.size
    if out.dtype != np.float64 or not out.flags.c_contiguous or out.ndim != 2 or out.shape[1] != n_t:
        raise ValueError("gather_rows: out must be a C-contiguous float64 array of n_t columns")
    if pick.shape[0] != n or scale.shape != (n,) or day_of_t.shape != (n_t,):
        raise ValueError("gather_rows: pick, scale and day_of_t do not match rows and slot")
    if n == 0 or n_t == 0:
        return
    noise = np.ones((n, n_t)) if noise is None else np.ascontiguousarray(noise, dtype=np.float64)
    if noise.shape != (n, n_t):
        raise ValueError(f"gather_rows: noise must have shape {(n, n_t)}, got {noise.shape}")
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    pick = np.ascontiguousarray(pick, dtype=np.int64)
    day_of_t = np.ascontiguousarray(day_of_t, dtype=np.int64)
    slot = np.ascontiguousarray(slot, dtype=np.int64)
    # bounds are checked here once (the kernel runs without boundscheck)
    if (rows.min() < 0 or rows.max() >= out.shape[0] or pick.min() < 0 or pick.max() >= table.shape[0]
            or day_of_t.min() < 0 or day_of_t.max() >= pick.shape[1] or slot.min() < 0
            or slot.max() >= table.shape[1]):
        raise IndexError("gather_rows: an index is out of bounds")
    _gather_rows(np.ascontiguousarray(table, dtype=np.float64), pick, day_of_t, slot,
                 np.ascontiguousarray(scale, dtype=np.float64), noise, rows, out)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _rows_times_table(values, code, table, out):  # pragma: no cover - compiled; covered through rows_times_table
    n_t = values.shape[1]
    for i in range(values.shape[0]):
        c = code[i]
        for t in range(n_t):
            out[i, t] = values[i, t] * table[c, t]


def rows_times_table(values: np.ndarray, code: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``values x table[code]`` without the gathered (n, n_t) table: each row times its code's row.

    Parameters
    ----------
    values : ndarray of float64, shape (n, n_t)
        E.g. energy [kWh].
    code : ndarray of int, shape (n,)
        Row of ``table`` of each row, 0 <= code < len(table).
    table : ndarray of float64, shape (n_codes, n_t)
        E.g. line loss factors [-].

    Returns
    -------
    ndarray of float64, shape (n, n_t)
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    table = np.ascontiguousarray(table, dtype=np.float64)
    code = np.ascontiguousarray(code, dtype=np.int64)
    if values.ndim != 2 or code.shape != values.shape[:1] or table.ndim != 2 or table.shape[1] != values.shape[1]:
        raise ValueError("rows_times_table: values (n, n_t), code (n,) and table (n_codes, n_t) do not match")
    out = np.empty(values.shape)
    if code.size and (code.min() < 0 or code.max() >= table.shape[0]):
        raise IndexError("rows_times_table: a code is out of bounds")
    if values.size:
        _rows_times_table(values, code, table, out)
    return out
