"""Compiled inner loops of the smart inputs (metering's true registers).

:func:`tomlib.services.metering.build_metering` accumulates the true energy of every register slot
(an MPAN's energy in the half hours its TPR is active) over the MPAN x period energy cube. In NumPy
that was five passes over slot x period arrays (check the segment's energy is finite and
non-negative, gather each slot's energy row, build the TPR mask, multiply, cumulative sum into a
strided view); here it is one pass per slot row, writing the cumulative table directly. The
arithmetic is the NumPy one, in the same order: ``energy * 1.0`` or ``energy * 0.0`` (NumPy's
product of a float and a bool mask) and a left-to-right running sum whose first term is the first
period's energy (``np.cumsum``), so the results are bit-identical.

Compiled on first use and cached next to this file (``cache=True``); ``nogil`` so that threads of a
dask worker can run blocks side by side.
"""

from __future__ import annotations

import numba
import numpy as np

from tomlib import _text

__all__ = ["delivered_hh", "digit_points", "energy_flags", "grouped_order", "in_service", "int_keys",
           "register_values", "slot_cumulative", "valid_cores"]


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _energy_flags(energy, rows):  # pragma: no cover - compiled; covered through energy_flags
    finite = True
    negative = False
    n_t = energy.shape[1]
    for i in range(rows.size):
        r = rows[i]
        for j in range(n_t):
            v = energy[r, j]
            if not np.isfinite(v):
                finite = False
            elif v < 0.0:
                negative = True
    return finite, negative


def energy_flags(energy: np.ndarray, rows: np.ndarray) -> tuple[bool, bool]:
    """Whether the rows of an energy array are all finite, and whether any is negative.

    Parameters
    ----------
    energy : ndarray of float64, shape (n_mpan, n_t)
        Energy [kWh per period].
    rows : ndarray of int
        Rows to check.

    Returns
    -------
    finite : bool
        ``np.isfinite(energy[rows]).all()``.
    negative : bool
        ``finite and (energy[rows] < 0).any()``.
    """
    if not rows.size or not energy.shape[1]:
        return True, False
    finite, negative = _energy_flags(np.ascontiguousarray(energy, dtype=np.float64),
                                     np.ascontiguousarray(rows, dtype=np.int64))
    return bool(finite), bool(finite and negative)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _slot_cumulative(energy, slot_rows, slot_tpr, slot_masked, active, out):  # pragma: no cover - compiled
    n_t = energy.shape[1]
    for s in range(slot_rows.size):
        r = slot_rows[s]
        out[s, 0] = 0.0
        if n_t == 0:
            continue
        if slot_masked[s]:
            k = slot_tpr[s]
            acc = energy[r, 0] * (1.0 if active[k, 0] else 0.0)
            out[s, 1] = acc
            for j in range(1, n_t):
                acc = acc + energy[r, j] * (1.0 if active[k, j] else 0.0)
                out[s, j + 1] = acc
        else:
            acc = energy[r, 0]
            out[s, 1] = acc
            for j in range(1, n_t):
                acc = acc + energy[r, j]
                out[s, j + 1] = acc


def slot_cumulative(energy: np.ndarray, slot_rows: np.ndarray, slot_tpr: np.ndarray, slot_masked: np.ndarray,
                    active: np.ndarray) -> np.ndarray:
    """True energy of register slots accumulated from the window start.

    Parameters
    ----------
    energy : ndarray of float64, shape (n_mpan, n_t)
        True energy of the MPANs [kWh per period].
    slot_rows : ndarray of int
        Row of ``energy`` of each slot's MPAN.
    slot_tpr : ndarray of int
        Row of ``active`` of each slot's TPR (used where ``slot_masked``).
    slot_masked : ndarray of bool
        Slots that record only the periods their TPR is active (registers of multi-register meters);
        the others record every period.
    active : ndarray of bool, shape (n_tpr, n_t)
        Whether each TPR is active in each period.

    Returns
    -------
    ndarray of float64, shape (n_slots, n_t + 1)
        Column 0 is 0; column ``j + 1`` is ``np.cumsum(energy[slot_rows] * mask, axis=1)[:, j]`` [kWh],
        with ``mask`` the slot's TPR activity (all True for unmasked slots).
    """
    n_t = energy.shape[1]
    out = np.empty((slot_rows.size, n_t + 1), dtype=np.float64)
    if slot_rows.size:
        _slot_cumulative(np.ascontiguousarray(energy, dtype=np.float64), np.ascontiguousarray(slot_rows, dtype=np.int64),
                         np.ascontiguousarray(slot_tpr, dtype=np.int64), np.ascontiguousarray(slot_masked, dtype=np.bool_),
                         np.ascontiguousarray(active, dtype=np.bool_), out)
    return out


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _fold_keys(points, lut, base, scale, tag, out):  # pragma: no cover - compiled; covered through int_keys
    n, have = points.shape
    for i in range(n):
        k = 0
        for j in range(have):
            p = points[i, j]
            if p >= 128:
                return 2  # not ASCII: no key at all
            d = lut[p]
            if d == 255:
                return 1  # a character outside this base
            k = k * base + d
        out[i] = (k * scale) * 2 + tag
    return 0


def int_keys(text: np.ndarray, width: int | None = None) -> np.ndarray | None:
    """:func:`tomlib._text.int_keys` (the same keys, or None in the same cases) in one compiled pass per
    base instead of a table lookup and a pass per character.

    Parameters
    ----------
    text : ndarray
        Identifiers (numpy text).
    width : int, optional
        Characters (at least the array's) to key two arrays of different widths alike.

    Returns
    -------
    ndarray of int64 or None
        One key per identifier, equal for equal text and ordered as the text sorts.
    """
    if text.dtype.kind != "U" or not text.size:
        return _text.int_keys(text, width)
    have = text.dtype.itemsize // 4
    w = have if width is None else width
    if w == 0 or w < have:
        return None
    points = np.ascontiguousarray(text).view(np.uint32).reshape(text.size, have)
    out = np.empty(text.size, dtype=np.int64)
    for lut, base, most in ((_text._DIGIT_LUT, 11, 17), (_text._KEY_LUT, 64, 10)):
        if w > most:
            continue
        status = _fold_keys(points, lut, base, base ** (w - have), int(base == 64), out)
        if status == 0:
            return out
        if status == 2:
            return None
    return None


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _valid_cores(points, primes, out):  # pragma: no cover - compiled; covered through valid_cores
    n, width = points.shape
    for i in range(n):
        ok = width >= 13
        total = 0
        for j in range(width):
            p = points[i, j]
            if j < 13:
                d = np.int64(p) - 48
                if d < 0 or d > 9:
                    ok = False
                    break
                if j < 12:
                    total += d * primes[j]
            elif p != 0:  # past 13 characters only numpy's padding
                ok = False
                break
        if ok:
            ok = total % 11 % 10 == np.int64(points[i, 12]) - 48
        out[i] = ok


def valid_cores(text: np.ndarray) -> np.ndarray:
    """Whether each value is exactly 13 ASCII digits with a correct check digit: in one compiled pass,
    what ``fullmatch(r"\\d{13}")`` and then :func:`tomlib.mpan.is_valid` give.

    Parameters
    ----------
    text : ndarray of numpy text (``<U``)
        Candidate MPAN cores.

    Returns
    -------
    ndarray of bool
    """
    from tomlib.mpan import PRIMES

    out = np.zeros(text.size, dtype=np.bool_)
    width = text.dtype.itemsize // 4
    if text.size and width:
        points = np.ascontiguousarray(text).view(np.uint32).reshape(text.size, width)
        _valid_cores(points, np.ascontiguousarray(PRIMES, dtype=np.int64), out)
    return out


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _digit_points(values, width, out):  # pragma: no cover - compiled; covered through digit_points
    for i in range(values.size):
        v = values[i]
        for j in range(width - 1, -1, -1):
            out[i, j] = 48 + v % 10
            v //= 10


def digit_points(values: np.ndarray, width: int) -> np.ndarray:
    """Code points of the decimal digits of integers in ``[0, 10**width)``, zero-padded on the left.

    Parameters
    ----------
    values : ndarray of int
    width : int
        Digits [-].

    Returns
    -------
    ndarray of uint32, shape (values.size, width)
        ``ord("0") + (values[:, None] // 10 ** (width - 1 - j)) % 10``.
    """
    values = np.ascontiguousarray(values, dtype=np.int64).reshape(-1)
    if values.size and (int(values.min()) < 0 or int(values.max()) >= 10**width):
        raise ValueError(f"digit_points: values must be within [0, 10**{width})")
    out = np.empty((values.size, width), dtype=np.uint32)
    _digit_points(values, width, out)
    return out


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _delivered(energy, rows, retrieved, avail, day_of_t, missing, delivered, avail_t):  # pragma: no cover
    n_t = day_of_t.size
    for i in range(rows.size):
        r = rows[i]
        for j in range(n_t):
            d = day_of_t[j]
            delivered[i, j] = energy[r, j] if retrieved[i, d] else missing
            avail_t[i, j] = avail[i, d]


def delivered_hh(energy: np.ndarray, rows: np.ndarray, retrieved: np.ndarray, avail: np.ndarray,
                 day_of_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """HH values as retrieved and when they arrived, per (MPAN, period), in one pass.

    Parameters
    ----------
    energy : ndarray of float64, shape (n_mpan, n_t)
        True energy [kWh per period].
    rows : ndarray of int
        Row of ``energy`` of each retrieved MPAN.
    retrieved : ndarray of bool, shape (rows.size, n_days)
        Whether the MPAN-day was retrieved.
    avail : ndarray of datetime64[ns], shape (rows.size, n_days)
        When the MPAN-day arrived [UTC] (NaT where not retrieved).
    day_of_t : ndarray of int
        Day of each period.

    Returns
    -------
    delivered : ndarray of float64, shape (rows.size, n_t)
        ``np.where(retrieved[:, day_of_t], energy[rows], np.nan)`` [kWh].
    avail_t : ndarray of datetime64[ns], shape (rows.size, n_t)
        ``np.take(avail, day_of_t, axis=1)``.
    """
    n_t = day_of_t.size
    delivered = np.empty((rows.size, n_t), dtype=np.float64)
    avail_t = np.empty((rows.size, n_t), dtype="datetime64[ns]")
    if rows.size and n_t:
        _delivered(np.ascontiguousarray(energy, dtype=np.float64), np.ascontiguousarray(rows, dtype=np.int64),
                   np.ascontiguousarray(retrieved, dtype=np.bool_),
                   np.ascontiguousarray(avail, dtype="datetime64[ns]").view(np.int64),
                   np.ascontiguousarray(day_of_t, dtype=np.int64), np.float64(np.nan), delivered,
                   avail_t.view(np.int64))
    return delivered, avail_t


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _grouped_order(codes, start, out):  # pragma: no cover - compiled; covered through grouped_order
    at = start.copy()
    for i in range(codes.size):
        c = codes[i]
        out[at[c]] = i
        at[c] += 1


def grouped_order(codes: np.ndarray, start: np.ndarray) -> np.ndarray:
    """``np.argsort(codes, kind="stable")`` of codes in ``0..start.size - 1`` by counting: each code's
    positions, in order, from ``start[code]`` on.

    Parameters
    ----------
    codes : ndarray of int
        Group of each row, within ``0..start.size - 1``.
    start : ndarray of int
        First position of each group: the exclusive running sum of the groups' sizes.

    Returns
    -------
    ndarray of int64
    """
    out = np.empty(codes.size, dtype=np.int64)
    if codes.size:
        _grouped_order(np.ascontiguousarray(codes, dtype=np.int64), np.ascontiguousarray(start, dtype=np.int64), out)
    return out


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _register_values(start_value, slot, cumulative, rows, b, b0, out):  # pragma: no cover - compiled
    for i in range(rows.size):
        r = rows[i]
        s = slot[r]
        out[i] = (start_value[r] + cumulative[s, b[i]]) - cumulative[s, b0[i]]


def register_values(start_value: np.ndarray, slot: np.ndarray, cumulative: np.ndarray, rows: np.ndarray,
                    b: np.ndarray, b0: np.ndarray) -> np.ndarray:
    """Unwrapped register values ``start_value[rows] + cumulative[slot[rows], b] - cumulative[slot[rows], b0]``
    [kWh], in that order, in one pass.

    Parameters
    ----------
    start_value : ndarray of float64
        Each register's value at its start [kWh].
    slot : ndarray of int
        Each register's row of ``cumulative``.
    cumulative : ndarray of float64, shape (n_slots, n_boundaries)
        Energy accumulated since the window start [kWh].
    rows : ndarray of int
        Registers asked for.
    b, b0 : ndarray of int, shape rows.shape
        Boundary of the instant asked for and of the register's start.

    Returns
    -------
    ndarray of float64
    """
    out = np.empty(rows.size, dtype=np.float64)
    if rows.size:
        _register_values(np.ascontiguousarray(start_value, dtype=np.float64), np.ascontiguousarray(slot, dtype=np.int64),
                         np.ascontiguousarray(cumulative, dtype=np.float64), np.ascontiguousarray(rows, dtype=np.int64),
                         np.ascontiguousarray(b, dtype=np.int64), np.ascontiguousarray(b0, dtype=np.int64), out)
    return out


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _in_service(codes, reg_count, reg_start, reg_order, m_of_reg, installed, removed, at, nat, far, e_out,
                r_out):  # pragma: no cover - compiled; covered through in_service
    k = 0
    for i in range(codes.size):
        c = codes[i]
        if c < 0:
            continue
        t = at[i]
        for j in range(reg_count[c]):
            r = reg_order[reg_start[c] + j]
            m = m_of_reg[r]
            if m < 0 or t == nat:
                continue
            a = installed[m]
            if a == nat or a > t:  # NaT compares False: never in service
                continue
            z = removed[m]
            if z == nat:
                z = far
            if t < z:
                e_out[k] = i
                r_out[k] = r
                k += 1
    return k


def in_service(codes: np.ndarray, reg_count: np.ndarray, reg_start: np.ndarray, reg_order: np.ndarray,
               m_of_reg: np.ndarray, installed: np.ndarray, removed: np.ndarray,
               at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Registers in service at (MPAN, instant) events: every register of the event's MPAN whose meter
    was installed at or before the instant and not removed by it, by event then register.

    Parameters
    ----------
    codes : ndarray of int
        MPAN code of each event (-1: none).
    reg_count, reg_start : ndarray of int
        Registers of each MPAN code and where they start in ``reg_order``.
    reg_order : ndarray of int
        Register rows grouped by MPAN code.
    m_of_reg : ndarray of int
        Meter row of each register (-1: none).
    installed, removed : ndarray of datetime64[ns]
        Each meter's installation and removal (NaT: not removed) [UTC].
    at : ndarray of datetime64[ns]
        Instant of each event [UTC].

    Returns
    -------
    event, rows : ndarray of int64
        Event and register row of each register in service.
    """
    codes = np.ascontiguousarray(codes, dtype=np.int64)
    total = int(reg_count[codes[codes >= 0]].sum()) if codes.size else 0
    e_out = np.empty(total, dtype=np.int64)
    r_out = np.empty(total, dtype=np.int64)
    nat = np.datetime64("NaT", "ns").astype(np.int64)
    far = np.datetime64("2262-01-01", "ns").astype(np.int64)
    k = _in_service(codes, np.ascontiguousarray(reg_count, dtype=np.int64),
                    np.ascontiguousarray(reg_start, dtype=np.int64), np.ascontiguousarray(reg_order, dtype=np.int64),
                    np.ascontiguousarray(m_of_reg, dtype=np.int64),
                    np.ascontiguousarray(installed, dtype="datetime64[ns]").view(np.int64),
                    np.ascontiguousarray(removed, dtype="datetime64[ns]").view(np.int64),
                    np.ascontiguousarray(at, dtype="datetime64[ns]").view(np.int64), nat, far, e_out, r_out) if total else 0
    return e_out[:k], r_out[:k]
