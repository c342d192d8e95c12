"""The compiled inner loops of aggregation (:func:`tomlib.services.aggregation._group_class_sums`) and of
its cell-level check (:func:`tomlib.settlement.cell_sums`).

One pass over the dense MPAN x period cube, compiled by numba: for each cell of a row whose
registration does not change in the run, its energy is added to the actual or the estimated sum of
its row's group and period, and the cell counted as actual or missing (estimated counts follow as
rows - actual - missing). Branch-free per cell (table lookups and selects), rows in their own order
(no sort, no gather): the accumulators of a block's few hundred groups stay in cache, so the pass
costs a few times a plain sum over the same energy array (``tom bench``), where the NumPy
formulation it replaces took about eight passes.

Compiled on first use and cached next to this file (``cache=True``); ``nogil`` so that threads of a
dask worker can run blocks side by side.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["steady_row_sums", "valued_cell_sums"]


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _steady_rows(energy, quality, is_actual, is_missing, rows, row_group, actual_sum, estimated_sum, actual_n,
                 missing_n):  # pragma: no cover - compiled; covered through steady_row_sums
    n_t = quality.shape[1]
    for i in range(rows.size):
        m = rows[i]
        g = row_group[i]
        for j in range(n_t):
            q = quality[m, j]
            a = is_actual[q]
            x = is_missing[q]
            v = energy[m, j]
            v = 0.0 if x else v  # a missing cell holds NaN; it adds nothing here (listed for the defaults)
            av = v if a else 0.0
            actual_sum[g, j] += av
            estimated_sum[g, j] += v - av
            actual_n[g, j] += a
            missing_n[g, j] += x


def steady_row_sums(energy: np.ndarray, quality: np.ndarray, actual_codes: np.ndarray, missing_code: int,
                    rows: np.ndarray, row_group: np.ndarray, n_groups: int):
    """Sums and counts per (group, period) of whole rows, each row in one group.

    Parameters
    ----------
    energy : ndarray of float, shape (n_mpan, n_t)
        Energy [kWh]; NaN in missing cells.
    quality : ndarray of uint8, shape (n_mpan, n_t)
        DI-083 codes.
    actual_codes : ndarray of bool, shape (256,)
        Codes settled as actual.
    missing_code : int
        The MISSING code.
    rows : ndarray of int64
        Rows to add.
    row_group : ndarray of int64, shape rows.shape
        Group of each of those rows, in 0..n_groups - 1.
    n_groups : int

    Returns
    -------
    actual_sum, estimated_sum : ndarray of float64, shape (n_groups, n_t)
        Energy of actual and of estimated cells [kWh] (missing cells add nothing).
    actual_n, missing_n : ndarray of int64, shape (n_groups, n_t)
        Actual and missing cells [1].
    """
    n_t = quality.shape[1]
    is_actual = np.ascontiguousarray(actual_codes, dtype=np.uint8)
    is_missing = np.zeros(256, dtype=np.uint8)
    is_missing[missing_code] = 1
    actual_sum, estimated_sum = np.zeros((n_groups, n_t)), np.zeros((n_groups, n_t))
    # int32 counters keep the accumulators in cache; a group would need 2^31 rows to overflow
    actual_n, missing_n = np.zeros((n_groups, n_t), np.int32), np.zeros((n_groups, n_t), np.int32)
    if rows.size and n_t:
        _steady_rows(np.ascontiguousarray(energy), np.ascontiguousarray(quality), is_actual, is_missing,
                     np.ascontiguousarray(rows, dtype=np.int64), np.ascontiguousarray(row_group, dtype=np.int64),
                     actual_sum, estimated_sum, actual_n, missing_n)
    return actual_sum, estimated_sum, actual_n.astype(np.int64), missing_n.astype(np.int64)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _valued_cells(energy, quality, energised, codes, missing_code, energy_by, cells_by):  # pragma: no cover
    n_m, n_t = quality.shape
    energised_sum = 0.0
    for m in range(n_m):
        for j in range(n_t):
            if not energised[m, j]:
                continue
            v = energy[m, j]
            if np.isfinite(v):
                energised_sum += v
            if quality[m, j] != missing_code:
                c = codes[m, j]
                if c < 0:
                    return energised_sum, m * n_t + j
                energy_by[c, j] += v
                cells_by[c, j] += 1
    return energised_sum, -1


def valued_cell_sums(energy: np.ndarray, quality: np.ndarray, energised: np.ndarray, codes: np.ndarray,
                     n_codes: int, missing_code: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Energy and count of the valued cells per (code, period), and the energy of the energised cells.

    One pass over the cube for what took seven (masks, a gather, two bincounts, a where and a sum).
    The per-(code, period) sums add the cells in row-major order, as ``np.bincount`` does, so they
    are the same to the bit; the energised total is a running sum (NumPy's is pairwise: they may
    differ in the last digits).

    Parameters
    ----------
    energy : ndarray of float, shape (n_mpan, n_t)
        Settled energy [kWh]; NaN in missing cells.
    quality : ndarray of uint8, shape (n_mpan, n_t)
        DI-083 codes.
    energised : ndarray of bool, shape (n_mpan, n_t)
        Registered and energised.
    codes : ndarray of int, shape (n_mpan, n_t)
        Code of each cell's key (e.g. its LLFC) in 0..n_codes - 1; -1 where not registered.
    n_codes : int
    missing_code : int
        The MISSING quality code: such cells are not valued.

    Returns
    -------
    energy_by : ndarray of float64, shape (n_codes, n_t)
        Energy of the valued (energised, not missing) cells per code and period [kWh].
    cells_by : ndarray of int64, shape (n_codes, n_t)
        Those cells [1].
    energised_energy : float
        Energy of the energised cells with a finite value [kWh].

    Raises
    ------
    ValueError
        If a valued cell has no code (-1): it would be in no sum.
    """
    n_t = quality.shape[1] if quality.ndim == 2 else 0
    energy_by, cells_by = np.zeros((n_codes, n_t)), np.zeros((n_codes, n_t), np.int64)
    if quality.size == 0:
        return energy_by, cells_by, 0.0
    total, bad = _valued_cells(np.ascontiguousarray(energy, dtype=np.float64), np.ascontiguousarray(quality),
                               np.ascontiguousarray(energised, dtype=np.bool_), np.ascontiguousarray(codes),
                               np.uint8(missing_code), energy_by, cells_by)
    if bad >= 0:
        raise ValueError(f"valued cell (row {bad // n_t}, period {bad % n_t}) has no code: a valued cell must be "
                         "registered")
    return energy_by, cells_by, float(total)
