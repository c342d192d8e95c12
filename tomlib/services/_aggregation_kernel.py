"""The compiled inner loop of aggregation (:func:`tomlib.services.aggregation._group_class_sums`).

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

__all__ = ["steady_row_sums"]


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
