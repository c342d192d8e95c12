"""The compiled check of a meter cube's energy against its quality (:func:`tomlib.cube.validate_meter_cube`).

Every service output and the market's cube is validated; the rule "energy is finite where the
quality is not MISSING and NaN where it is" took four NumPy passes over the MPAN x period arrays
and three temporaries of their size. Here it is one pass that only counts the offending cells; the
message (which cell first) is still worded from NumPy masks, on the error path only.

:func:`quality_of_energy` is the default quality of a cube built from true energy (MISSING where
NaN, else actual) in one pass instead of a NaN mask and a select over the whole cube.

Compiled on first use and cached next to this file (``cache=True``); ``nogil`` so that threads of a
dask worker can run blocks side by side.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["energy_quality_mismatches", "quality_of_energy"]


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _mismatches(energy, quality, missing):  # pragma: no cover - compiled; covered through the wrapper
    not_finite = 0
    not_nan = 0
    for i in range(energy.shape[0]):
        for j in range(energy.shape[1]):
            v = energy[i, j]
            if quality[i, j] != missing:
                not_finite += not np.isfinite(v)
            else:
                not_nan += not np.isnan(v)
    return not_finite, not_nan


def energy_quality_mismatches(energy: np.ndarray, quality: np.ndarray, missing: int) -> tuple[int, int]:
    """Cells whose energy does not fit their quality.

    Parameters
    ----------
    energy : ndarray of float, shape (n_mpan, n_t)
        [kWh].
    quality : ndarray of uint8, shape (n_mpan, n_t)
        DI-083 codes.
    missing : int
        The MISSING code.

    Returns
    -------
    not_finite : int
        Cells not MISSING whose energy is not finite.
    not_nan : int
        MISSING cells whose energy is not NaN.
    """
    energy, quality = np.asarray(energy), np.asarray(quality)
    if energy.shape != quality.shape or energy.ndim != 2:
        raise ValueError(f"energy {energy.shape} and quality {quality.shape} must be (n_mpan, n_t) arrays")
    if energy.dtype.kind != "f" or quality.dtype != np.uint8 or not energy.flags.c_contiguous \
            or not quality.flags.c_contiguous:
        # other layouts and dtypes (a selection, float32): the NumPy formulation, no copy for the kernel
        present = quality != missing
        return int((present & ~np.isfinite(energy)).sum()), int((~present & ~np.isnan(energy)).sum())
    n_f, n_n = _mismatches(energy, quality, np.uint8(missing))
    return int(n_f), int(n_n)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _quality_of_energy(energy, missing, present, out):  # pragma: no cover - compiled; covered through the wrapper
    for i in range(energy.shape[0]):
        for j in range(energy.shape[1]):
            out[i, j] = missing if np.isnan(energy[i, j]) else present


def quality_of_energy(energy: np.ndarray, missing: int, present: int) -> np.ndarray:
    """``np.where(np.isnan(energy), missing, present)`` as uint8 codes.

    Parameters
    ----------
    energy : ndarray of float, shape (n_mpan, n_t)
        [kWh].
    missing, present : int
        Codes of NaN cells and of the others (0..255).

    Returns
    -------
    ndarray of uint8, shape of ``energy``
    """
    energy = np.asarray(energy)
    if energy.ndim != 2 or energy.dtype.kind != "f" or not energy.flags.c_contiguous:
        return np.where(np.isnan(energy), np.uint8(missing), np.uint8(present))
    out = np.empty(energy.shape, dtype=np.uint8)
    _quality_of_energy(energy, np.uint8(missing), np.uint8(present), out)
    return out
