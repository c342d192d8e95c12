"""Validation of half-hourly (HH) meter data: segment-neutral rules on (mpan x time) arrays.

mhhs-domain.md §2.5 step 1 ([INF], modelled on the legacy checks): a data service flags HH values
that cannot be right before it settles on them. The rules here know nothing about smart or
advanced meters; the caller passes what they need (physical maxima, which MPANs may read zero for
hours, energisation), so the Advanced segment can reuse them.

Rules, in the order they are applied (the first failing rule names the reason of a value):

=======================  ====================================================================
reason                   a value fails when
=======================  ====================================================================
``negative_value``       it is below zero: active import (AI) and active export (AE) are both
                         magnitudes [kWh], never negative
``above_maximum``        it is above the physical maximum of the connection for half an hour
                         (:func:`physical_maximum`: capacity [kW] x 0.5 h)
``de_energised``         it is above zero while the MPAN is de-energised
``zero_run``             it is part of a run of at least ``min_zero_run`` consecutive zeros on an
                         energised MPAN that is checked for zero runs (no on-site generation
                         behind an import meter, not an export meter), *and* the MPAN's other
                         values are almost never zero (share of zeros outside the run below
                         ``max_zero_share``): a household whose data are often zero is not
                         suspicious, a meter that always consumes and suddenly reads zero for
                         hours is ([INF]; tested against the truth of the simulated market)
=======================  ====================================================================

Duplicates (:func:`screen_duplicates`): records for a period that already has a value. The first
arrival is kept (``keep="first"``, consistent with the register-read intake of
:func:`tomlib.services.meter_reading.screen_reads`); a later record with the same value is refused
as ``duplicate``, one with a different value as ``conflicting_duplicate``. With
``keep="neither"`` a conflicting duplicate also invalidates the period's kept value (it is then
estimated), for a service that will not guess which of two values is right.

Nothing is dropped: :func:`rejected_hh` turns the reasons into one row per refused value, with the
columns of :data:`tomlib.services.base.REJECTED_COLUMNS` plus ``source``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tomlib.services._processing_kernel import hh_reasons
from tomlib.services._processing_keys import str_codes
from tomlib.services.base import REJECTED_COLUMNS

__all__ = [
    "HH_REASONS",
    "MAX_KW_BY_CONNECTION_TYPE",
    "hh_reason_label",
    "physical_maximum",
    "rejected_hh",
    "screen_duplicates",
    "validate_hh",
    "zero_runs",
]

#: HH rejection reasons; the index is the code used in reason arrays (0 = valid).
HH_REASONS = ("", "negative_value", "above_maximum", "de_energised", "zero_run", "conflicting_duplicate")
_CODE = {r: i for i, r in enumerate(HH_REASONS)}

#: [INF] Largest power a connection can take, by connection type (DI-015) [kW]: whole current 100 A
#: three-phase at 400 V (~69 kW) -- a single-phase home is well below, but tomlib does not know
#: the phases; CT-connected sites get generous bounds (the Advanced segment will pass its own).
MAX_KW_BY_CONNECTION_TYPE = {"W": 69.0, "L": 1_000.0, "H": 10_000.0, "E": 100_000.0, "U": 1_000.0}


def hh_reason_label(codes) -> np.ndarray:
    """Reason codes (uint8, 0 = valid) -> labels of :data:`HH_REASONS`."""
    arr = np.asarray(codes)
    if arr.size and (arr.min() < 0 or arr.max() >= len(HH_REASONS)):
        raise ValueError(f"HH reason codes must be 0..{len(HH_REASONS) - 1}")
    return np.asarray(HH_REASONS, dtype=object)[arr.astype(np.intp)]


def physical_maximum(connection_type, measurement_quantity, capacity_kw=None,
                     max_kw_by_connection_type=None, capacity_factor: float = 1.2) -> np.ndarray:
    """Largest energy a connection can record in one settlement period [kWh].

    Parameters
    ----------
    connection_type : array-like of str
        DI-015 connection type per MPAN (``W``, ``L``, ``H``, ``E``, ``U``).
    measurement_quantity : array-like of str
        ``AI`` / ``AE`` per MPAN.
    capacity_kw : array-like of float, optional
        Generation capacity behind an export MPAN [kW]; where it is > 0 an export value is bounded
        by ``capacity x capacity_factor`` instead of the connection.
    max_kw_by_connection_type : mapping, optional
        Default :data:`MAX_KW_BY_CONNECTION_TYPE` [kW].
    capacity_factor : float
        Head room on the generation capacity [-].

    Returns
    -------
    ndarray of float, shape (n_mpan,)
        Maximum per period [kWh] (power [kW] x 0.5 h).

    Raises
    ------
    ValueError
        Naming a connection type that has no maximum.
    """
    table = dict(MAX_KW_BY_CONNECTION_TYPE if max_kw_by_connection_type is None else max_kw_by_connection_type)
    # on the few distinct values of each column (rows: codes into them)
    ct_code, ct = str_codes(connection_type)
    unknown = sorted(set(ct.tolist()) - set(table))
    if unknown:
        raise ValueError(f"physical_maximum: connection type(s) {unknown} have no maximum; expected one of "
                         f"{sorted(table)}")
    kw = pd.Series(table).reindex(ct).to_numpy(dtype=float)[ct_code]
    if capacity_kw is not None:
        cap = np.asarray(capacity_kw, dtype=float)
        mq_code, mq = str_codes(measurement_quantity)
        export = (mq == "AE")[mq_code] & np.isfinite(cap) & (cap > 0)
        kw = np.where(export, np.minimum(kw, cap * capacity_factor), kw)
    return kw * 0.5


def _rows(x, shape: tuple[int, int], dtype, what: str) -> np.ndarray:
    """Broadcast a scalar, a per-MPAN (n_mpan,) or a per-cell (n_mpan, n_time) argument to ``shape``."""
    a = np.asarray(x, dtype=dtype)
    if a.ndim == 1:
        a = a[:, None]
    try:
        return np.broadcast_to(a, shape)
    except ValueError:
        raise ValueError(f"{what} must be a scalar, (n_mpan,) = ({shape[0]},) or (n_mpan, n_time) = {shape}, "
                         f"got shape {np.shape(x)}") from None


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label runs of True along the last axis: (run id per cell, -1 outside runs; length per run)."""
    n, t = mask.shape
    flat = np.zeros((n, t + 1), dtype=bool)
    flat[:, :t] = mask  # a False column between rows stops a run at the row end
    f = flat.ravel()
    start = f & ~np.concatenate([[False], f[:-1]])
    run_id = np.cumsum(start) - 1
    run_id = np.where(f, run_id, -1)
    n_runs = int(start.sum())
    length = np.bincount(run_id[f], minlength=n_runs) if n_runs else np.zeros(0, dtype=np.int64)
    return run_id.reshape(n, t + 1)[:, :t], length


def zero_runs(energy: np.ndarray, check_rows, min_zero_run: int = 4, max_zero_share: float = 0.01) -> np.ndarray:
    """Cells in suspicious runs of zeros.

    Parameters
    ----------
    energy : ndarray (n_mpan, n_time)
        HH values [kWh]; NaN = no value (a gap ends a run).
    check_rows : array-like of bool, shape (n_mpan,) or (n_mpan, n_time)
        Where zero runs are implausible (energised import without on-site generation).
    min_zero_run : int
        Shortest suspicious run [periods].
    max_zero_share : float
        A run is suspicious only if the MPAN's share of zero values outside the run is below this [-].

    Returns
    -------
    ndarray of bool, shape of ``energy``
    """
    e = np.asarray(energy, dtype=float)
    if e.ndim != 2:
        raise ValueError(f"zero_runs: energy must be 2-D (mpan, time), got shape {e.shape}")
    check = _rows(check_rows, e.shape, bool, "zero_runs: check_rows")
    zero = (e == 0) & check
    # zeros are few: label the runs on the zero cells alone (row-major, as _runs labels them); a run
    # ends where the next zero cell is not the next cell of the same row
    row, col = np.nonzero(zero)
    out = np.zeros(e.shape, dtype=bool)
    if row.size == 0:
        return out
    start = np.ones(row.size, dtype=bool)
    start[1:] = (row[1:] != row[:-1]) | (col[1:] != col[:-1] + 1)
    run_of_cell = np.cumsum(start) - 1
    length = np.bincount(run_of_cell)
    row_of_run = row[start]
    rows, at = np.unique(row_of_run, return_inverse=True)  # the MPANs with a zero run
    n_values = np.isfinite(e[rows]).sum(axis=1)[at.reshape(-1)]
    n_zero = (e[rows] == 0).sum(axis=1)[at.reshape(-1)]
    others = np.maximum(n_values - length, 1)
    share = (n_zero - length) / others
    bad_run = (length >= int(min_zero_run)) & (share < max_zero_share)
    bad = bad_run[run_of_cell]
    out[row[bad], col[bad]] = True
    return out


def validate_hh(energy: np.ndarray, *, max_energy, zero_run_rows=True, energised=None, min_zero_run: int = 4,
                max_zero_share: float = 0.01) -> np.ndarray:
    """Apply the HH rules of the module docstring.

    Parameters
    ----------
    energy : ndarray (n_mpan, n_time)
        HH values [kWh]; NaN = no value (not a failure: a gap is estimated, not rejected).
    max_energy : array-like, shape (n_mpan,) or (n_mpan, n_time)
        Physical maximum per period [kWh] (:func:`physical_maximum`).
    zero_run_rows : bool or array-like of bool, shape (n_mpan,) or (n_mpan, n_time)
        Where the zero-run rule applies.
    energised : array-like of bool, shape (n_mpan,) or (n_mpan, n_time), optional
        Energisation status; default energised everywhere.
    min_zero_run, max_zero_share
        See :func:`zero_runs`.

    Returns
    -------
    ndarray of uint8, shape of ``energy``
        Reason code per cell (index into :data:`HH_REASONS`; 0 = valid or no value).
    """
    e = np.asarray(energy, dtype=float)
    if e.ndim != 2:
        raise ValueError(f"validate_hh: energy must be 2-D (mpan, time), got shape {e.shape}")
    mx = _rows(max_energy, e.shape, float, "validate_hh: max_energy")
    if not np.isfinite(np.asarray(max_energy, dtype=float)).all():  # (its values, not broadcast per cell)
        raise ValueError("validate_hh: max_energy must be finite for every MPAN [kWh]")
    on = None if energised is None else _rows(energised, e.shape, bool, "validate_hh: energised")
    checked = _rows(zero_run_rows, e.shape, bool, "validate_hh: zero_run_rows")
    # one compiled pass per MPAN: the value rules in order, then the zero runs of the values left
    # (values already refused do not count as data of the MPAN in the zero-run statistics), as
    # :func:`zero_runs` of those values on the checked, energised cells finds them
    return hh_reasons(e, mx, on, checked, int(min_zero_run), float(max_zero_share))


def screen_duplicates(duplicates: pd.DataFrame, grid_value, keep: str = "first") -> tuple[np.ndarray, np.ndarray]:
    """Classify extra HH records of periods that already hold a value.

    Parameters
    ----------
    duplicates : DataFrame
        Columns ``energy`` [kWh] and ``available_at``, one row per extra record, each for a period
        whose first-arrived value is ``grid_value`` (same row order).
    grid_value : array-like of float
        The kept (first-arrived) value of each record's period [kWh].
    keep : {"first", "neither"}
        ``"first"``: the first arrival stands. ``"neither"``: a conflicting duplicate also
        invalidates the kept value.

    Returns
    -------
    reason : ndarray of object
        ``"duplicate"`` (same value) or ``"conflicting_duplicate"`` per record.
    invalidate : ndarray of bool
        Per record: the period's kept value is to be refused too.
    """
    if keep not in ("first", "neither"):
        raise ValueError(f"screen_duplicates: keep must be 'first' or 'neither', got {keep!r}")
    v = duplicates["energy"].to_numpy(dtype=float)
    g = np.asarray(grid_value, dtype=float)
    if g.shape != v.shape:
        raise ValueError(f"screen_duplicates: grid_value has shape {g.shape}, expected {v.shape}")
    same = v == g
    reason = np.where(same, "duplicate", "conflicting_duplicate").astype(object)
    return reason, (~same) & (keep == "neither")


def _refused_cells(reason: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.nonzero(reason > 0)`` of a 2-D array of codes. Refused cells are rare: for C-ordered uint8
    codes the nonzero 64-bit words (eight cells each) are found first and only their cells looked at
    (a pass over 1/8 of the elements instead of a comparison and a scan of every cell)."""
    if (reason.dtype == np.uint8 and reason.ndim == 2 and reason.flags.c_contiguous and reason.size
            and reason.size % 8 == 0):
        flat = reason.reshape(-1)
        words = np.flatnonzero(flat.view(np.uint64))
        cells = (words[:, None] * 8 + np.arange(8)).reshape(-1)
        cells = cells[flat[cells] > 0]
        return np.divmod(cells, reason.shape[1])
    return np.nonzero(reason > 0)


def rejected_hh(reason: np.ndarray, energy: np.ndarray, mpans, times, source: str = "hh") -> pd.DataFrame:
    """One row per refused HH value.

    Parameters
    ----------
    reason : ndarray (n_mpan, n_time) of uint8
        From :func:`validate_hh` (0 = not refused).
    energy : ndarray (n_mpan, n_time)
        The refused values [kWh].
    mpans : array-like of str
    times : array-like of datetime64
        UTC period starts.
    source : str
        Value of the ``source`` column.

    Returns
    -------
    DataFrame
        :data:`~tomlib.services.base.REJECTED_COLUMNS` (``field`` = "energy", ``value`` = the value
        as text) plus ``source``.
    """
    i, j = _refused_cells(np.asarray(reason))
    e = np.asarray(energy, dtype=float)[i, j]
    out = pd.DataFrame({
        "mpan": pd.array(np.asarray(mpans).astype(str)[i], dtype="str"),
        "time": np.asarray(times, dtype="datetime64[ns]")[j],
        "field": pd.array(np.full(i.size, "energy"), dtype="str"),
        "reason": pd.array(hh_reason_label(np.asarray(reason)[i, j]).astype(str), dtype="str"),
        "value": pd.array(e.astype(str), dtype="str"),
        "source": pd.array(np.full(i.size, source), dtype="str"),
    })
    return out[[*REJECTED_COLUMNS, "source"]]
