"""The compiled grid of the registration in force (:func:`tomlib.registration.in_force`).

Each event takes effect in one (MPAN, period) cell and stays in force until a later event of the
MPAN: the grid of positions is the latest event placed in each cell, carried forward along the
MPAN's periods. NumPy did it as a ``maximum.at`` scatter and a ``maximum.accumulate`` along the
rows, whose strided inner loop cost more than the rest of ``in_force`` at a block's size; here it
is one pass over the events and one over the grid, with the same integers.

Compiled on first use and cached next to this file (``cache=True``); ``nogil`` so that threads of a
dask worker can run blocks side by side.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["latest_event_grid"]


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _grid(row, place, event, grid):  # pragma: no cover - compiled; covered through latest_event_grid
    n_time = grid.shape[1]
    for k in range(row.size):
        r, p, e = row[k], place[k], event[k]
        grid[r, p] = max(grid[r, p], e)
    for r in range(grid.shape[0]):
        latest = np.int32(-1)
        for t in range(n_time):
            latest = max(latest, grid[r, t])
            grid[r, t] = latest


def latest_event_grid(row: np.ndarray, place: np.ndarray, event: np.ndarray, n_mpan: int, n_time: int) -> np.ndarray:
    """Position of the event in force per (MPAN, period): the latest event placed at or before it.

    Parameters
    ----------
    row, place : ndarray of int, shape (n,)
        MPAN row (0..n_mpan-1) and period (0..n_time-1) where each event takes effect.
    event : ndarray of int, shape (n,)
        Position of each event (>= 0; a larger position wins within a cell and later on).
    n_mpan, n_time : int

    Returns
    -------
    ndarray of int32, shape (n_mpan, n_time)
        -1 where no event is in force.
    """
    row = np.ascontiguousarray(row, dtype=np.int64)
    place = np.ascontiguousarray(place, dtype=np.int64)
    event = np.ascontiguousarray(event, dtype=np.int32)
    if not row.shape == place.shape == event.shape:
        raise ValueError("latest_event_grid: row, place and event must have one value per event")
    if row.size and (row.min() < 0 or row.max() >= n_mpan or place.min() < 0 or place.max() >= n_time
                     or event.min() < 0):
        raise IndexError("latest_event_grid: an event is outside the grid")
    grid = np.full((n_mpan, n_time), -1, dtype=np.int32)
    _grid(row, place, event, grid)
    return grid
