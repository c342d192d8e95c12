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

__all__ = ["delivered_hh", "digit_points", "energy_flags", "grouped_order", "in_service", "int_keys", "read_rows",
           "register_values", "repeats", "rows_in", "slot_cumulative", "slot_differences", "valid_cores"]


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


# ------------------------------------------------------------------------------------------ text joins
# Text as rows of code points (numpy ``<U`` viewed as uint32, zero-padded: equal rows, equal text).


# The same hash and row equality as _processing_kernel._row_hash / _same, written again here on
# purpose: numba's on-disk cache is invalidated by the caller's own file only, so a kernel calling
# one from another module would keep a stale compiled copy of it after that module changed.
@numba.njit(cache=True, nogil=True, boundscheck=False)
def _point_hash(points, i):  # pragma: no cover - compiled; covered through read_rows / rows_in
    h = np.uint64(0x9E3779B97F4A7C15)
    for k in range(points.shape[1]):
        h = (h ^ np.uint64(points[i, k])) * np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(29)
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return h


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _same_points(a, i, b, j):  # pragma: no cover - compiled
    for k in range(a.shape[1]):
        if a[i, k] != b[j, k]:
            return False
    return True


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _point_table(points):  # pragma: no cover - compiled
    size = 16
    while size < 2 * points.shape[0]:
        size *= 2
    table = np.full(size, -1, dtype=np.int64)  # open addressing, linear probing: row or -1
    mask = np.uint64(size - 1)
    for i in range(points.shape[0]):
        s = _point_hash(points, i) & mask
        while True:
            r = table[s]
            if r < 0:
                table[s] = i
                break
            if _same_points(points, r, points, i):
                break  # the first row keeps the key
            s = (s + np.uint64(1)) & mask
    return table


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _point_find(table, points, query, j):  # pragma: no cover - compiled
    mask = np.uint64(table.size - 1)
    s = _point_hash(query, j) & mask
    while True:
        r = table[s]
        if r < 0 or _same_points(points, r, query, j):
            return r
        s = (s + np.uint64(1)) & mask


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _rows_in(table_points, query_points, out):  # pragma: no cover - compiled; covered through rows_in
    table = _point_table(query_points)
    for i in range(table_points.shape[0]):
        q = _point_find(table, query_points, table_points, i)
        if q >= 0:
            out[q] = True
    for j in range(query_points.shape[0]):  # a query row repeated: the first holds the key in the table
        if not out[j]:
            q = _point_find(table, query_points, query_points, j)
            out[j] = out[q]


def _points(text: np.ndarray, width: int) -> np.ndarray:
    """Code points of numpy text as zero-padded rows of ``width`` (>= its own width) uint32."""
    text = np.ascontiguousarray(text)
    if text.dtype.itemsize // 4 != width:
        text = text.astype(f"<U{width}")
    return text.view(np.uint32).reshape(text.size, width)


def _width(*texts: np.ndarray) -> int:
    return max([t.dtype.itemsize // 4 for t in texts] + [1])


def rows_in(table: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Whether each value of ``query`` is a value of ``table`` (numpy text): ``np.isin(query, table)`` by
    one scan of ``table`` against a hash table of the (few) queries, instead of sorting both.

    Parameters
    ----------
    table, query : ndarray of numpy text (``<U``)

    Returns
    -------
    ndarray of bool, shape query.shape
    """
    table, query = np.asarray(table).ravel(), np.asarray(query).ravel()
    if table.dtype.kind != "U" or query.dtype.kind != "U":
        raise TypeError("rows_in: give numpy text arrays")
    out = np.zeros(query.size, dtype=np.bool_)
    if table.size and query.size:
        w = _width(table, query)
        _rows_in(_points(table, w), _points(query, w), out)
    return out


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _point_search(points, query, j):  # pragma: no cover - compiled
    # row of sorted ``points`` equal to ``query[j]``, -1 where none (rows compare as numpy text does:
    # code point by code point, the zero padding first)
    lo, hi = 0, points.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        cmp = 0
        for k in range(points.shape[1]):
            a, b = points[mid, k], query[j, k]
            if a != b:
                cmp = -1 if a < b else 1
                break
        if cmp == 0:
            return mid
        if cmp < 0:
            lo = mid + 1
        else:
            hi = mid
    return -1


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _read_rows(mpans, meter_count, meter_start, meter_order, meter_ids, reg_count, reg_start, reg_order, m_of_reg,
               reg_meter_ids, register_ids, q_mpan, q_meter, q_register, visit, known, m_pos, r_pos):  # pragma: no cover
    # the tables' keys must be unique: (mpan, meter_id) among meters, (mpan, meter_id, register_id)
    # among registers (a few rows per MPAN: compared pairwise)
    for c in range(meter_count.size):
        a0 = meter_start[c]
        for a in range(a0, a0 + meter_count[c]):
            for b in range(a0, a):
                if _same_points(meter_ids, meter_order[a], meter_ids, meter_order[b]):
                    return 1
    for c in range(reg_count.size):
        a0 = reg_start[c]
        for a in range(a0, a0 + reg_count[c]):
            ra = reg_order[a]
            for b in range(a0, a):
                rb = reg_order[b]
                if not _same_points(register_ids, ra, register_ids, rb):
                    continue
                if m_of_reg[ra] >= 0 and m_of_reg[rb] >= 0:
                    if m_of_reg[ra] == m_of_reg[rb]:
                        return 2
                elif _same_points(reg_meter_ids, ra, reg_meter_ids, rb):
                    return 2
    c = -1
    for v in range(visit.size):
        # reads visited in MPAN order: the last read's MPAN and the next one are tried before a binary
        # search of the sorted MPANs (no hash table to build: at a block's size its random writes cost
        # more than the searches)
        i = visit[v]
        if c >= 0 and _same_points(mpans, c, q_mpan, i):
            pass
        elif c >= 0 and c + 1 < mpans.shape[0] and _same_points(mpans, c + 1, q_mpan, i):
            c += 1
        else:
            c = _point_search(mpans, q_mpan, i)
        known[i] = False
        m_pos[i] = -1
        r_pos[i] = -1
        if c < 0:
            continue
        known[i] = meter_count[c] > 0
        m = -1
        for a in range(meter_start[c], meter_start[c] + meter_count[c]):
            if _same_points(meter_ids, meter_order[a], q_meter, i):
                m = meter_order[a]
                break
        m_pos[i] = m
        for a in range(reg_start[c], reg_start[c] + reg_count[c]):
            r = reg_order[a]
            if not _same_points(register_ids, r, q_register, i):
                continue
            if m_of_reg[r] >= 0:
                hit = m >= 0 and m_of_reg[r] == m
            else:
                hit = _same_points(reg_meter_ids, r, q_meter, i)
            if hit:
                r_pos[i] = r
                break
    return 0


def read_rows(mpans: np.ndarray, meter_mpan: np.ndarray, meter_ids: np.ndarray, reg_mpan: np.ndarray,
              m_of_reg: np.ndarray, reg_meter_ids, register_ids: np.ndarray, q_mpan: np.ndarray,
              q_meter: np.ndarray, q_register: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | int:
    """Rows of the meters and registers tables that reads name, in one compiled pass: a hash probe of
    each read's MPAN, then a look through that MPAN's few meters and registers.

    Parameters
    ----------
    mpans : ndarray of numpy text
        Distinct MPANs of the tables, sorted (code = position).
    meter_mpan, reg_mpan : ndarray of int
        MPAN code of each meter and of each register (within ``0..mpans.size - 1``).
    meter_ids : ndarray of numpy text
        Each meter's id.
    m_of_reg : ndarray of int
        Meter row of each register (its (mpan, meter_id)), -1 where none.
    reg_meter_ids : ndarray of numpy text or None
        Each register's meter id; needed only where ``m_of_reg`` is -1 (None when it never is).
    register_ids : ndarray of numpy text
        Each register's id.
    q_mpan, q_meter, q_register : ndarray of numpy text
        The reads' MPAN, meter id and register id.

    Returns
    -------
    (known, m_pos, r_pos) or int
        Whether each read's MPAN has a meter, the meter row of its (mpan, meter_id) and the register
        row of its (mpan, meter_id, register_id), -1 = none; or 1 (2) when the meters (registers)
        hold a key twice.
    """
    n = q_mpan.size
    known = np.zeros(n, dtype=np.bool_)
    m_pos = np.full(n, -1, dtype=np.int64)
    r_pos = np.full(n, -1, dtype=np.int64)
    meter_mpan = np.ascontiguousarray(meter_mpan, dtype=np.int64)
    reg_mpan = np.ascontiguousarray(reg_mpan, dtype=np.int64)
    meter_count = np.bincount(meter_mpan, minlength=mpans.size).astype(np.int64)
    meter_start = np.cumsum(meter_count) - meter_count
    reg_count = np.bincount(reg_mpan, minlength=mpans.size).astype(np.int64)
    reg_start = np.cumsum(reg_count) - reg_count
    w_m, w_i, w_r = _width(mpans, q_mpan), _width(meter_ids, q_meter), _width(register_ids, q_register)
    if reg_meter_ids is None:
        reg_meter_points = np.zeros((0, w_i), dtype=np.uint32)
    else:
        w_i = max(w_i, _width(reg_meter_ids))
        reg_meter_points = _points(reg_meter_ids, w_i)
    # the reads visited in MPAN order (a stable sort of integer keys of their MPANs, which sort as the
    # text does), so that the MPANs' searches and rows are read in order; in the table's order when
    # the MPANs cannot be keyed (the results do not depend on the order)
    q_keys = int_keys(q_mpan) if n else None
    visit = np.arange(n, dtype=np.int64) if q_keys is None else np.argsort(q_keys, kind="stable")
    status = _read_rows(_points(mpans, w_m), meter_count, meter_start, grouped_order(meter_mpan, meter_start),
                        _points(meter_ids, w_i), reg_count, reg_start, grouped_order(reg_mpan, reg_start),
                        np.ascontiguousarray(m_of_reg, dtype=np.int64), reg_meter_points,
                        _points(register_ids, w_r), _points(q_mpan, w_m), _points(q_meter, w_i),
                        _points(q_register, w_r), visit.astype(np.int64, copy=False), known, m_pos, r_pos)
    return int(status) if status else (known, m_pos, r_pos)


# ------------------------------------------------------------------------------------------ screening


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _repeats(cand, group, at, value, n_groups, repeat, same):  # pragma: no cover - compiled; covered through repeats
    count = np.zeros(n_groups + 1, dtype=np.int64)
    for k in range(cand.size):
        count[group[cand[k]] + 1] += 1
    for g in range(n_groups):
        count[g + 1] += count[g]
    order = np.empty(cand.size, dtype=np.int64)
    fill = count[:-1].copy()
    for k in range(cand.size):  # by group, in the candidates' order
        g = group[cand[k]]
        order[fill[g]] = cand[k]
        fill[g] += 1
    for g in range(n_groups):
        lo, hi = count[g], count[g + 1]
        for k in range(lo + 1, hi):  # then by instant, stable (a group holds a few rows)
            x = order[k]
            j = k
            while j > lo and at[order[j - 1]] > at[x]:
                order[j] = order[j - 1]
                j -= 1
            order[j] = x
        first = -1
        for k in range(lo, hi):
            x = order[k]
            if k == lo or at[x] != at[order[k - 1]]:
                first = x
            else:
                repeat[x] = True
            same[x] = value[first] == value[x]


def repeats(cand: np.ndarray, group: np.ndarray, at: np.ndarray, value: np.ndarray,
            n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Repeats among rows: a candidate row whose (group, instant) an earlier candidate already had.

    The rows ordered by ``np.lexsort((at[cand], group[cand]))`` (by group, instant, then their order in
    ``cand``), by counting the groups and a stable insertion sort of each group's few rows.

    Parameters
    ----------
    cand : ndarray of int
        Candidate rows, in order (the earlier wins).
    group : ndarray of int
        Group of each row (within ``0..n_groups - 1`` for the candidates).
    at : ndarray of datetime64[ns]
        Instant of each row (not NaT for the candidates).
    value : ndarray of float64
        Value of each row.
    n_groups : int

    Returns
    -------
    repeat : ndarray of bool
        Candidates that are not the first of their (group, instant).
    same : ndarray of bool
        Candidates whose value equals that first's (``==``: NaN never does).
    """
    n = group.size
    repeat = np.zeros(n, dtype=np.bool_)
    same = np.zeros(n, dtype=np.bool_)
    if cand.size:
        _repeats(np.ascontiguousarray(cand, dtype=np.int64), np.ascontiguousarray(group, dtype=np.int64),
                 np.ascontiguousarray(at, dtype="datetime64[ns]").view(np.int64),
                 np.ascontiguousarray(value, dtype=np.float64), int(n_groups), repeat, same)
    return repeat, same


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _slot_differences(cumulative, slot, b1, b0, out):  # pragma: no cover - compiled; covered through slot_differences
    for i in range(slot.size):
        s = slot[i]
        out[i] = cumulative[s, b1[i]] - cumulative[s, b0[i]]


def slot_differences(cumulative: np.ndarray, slot: np.ndarray, b1: np.ndarray, b0: np.ndarray) -> np.ndarray:
    """``cumulative[slot, b1] - cumulative[slot, b0]`` in one pass (the two values of a row are read
    together instead of two gathers over the whole table).

    Parameters
    ----------
    cumulative : ndarray of float64, shape (n_slots, n_boundaries)
        Energy accumulated since the window start [kWh].
    slot, b1, b0 : ndarray of int, one shape
        Row, and the two boundaries, of each difference.

    Returns
    -------
    ndarray of float64 [kWh]

    Raises
    ------
    IndexError
        When an index is out of range (as NumPy's indexing).
    """
    slot = np.ascontiguousarray(slot, dtype=np.int64).ravel()
    b1 = np.ascontiguousarray(b1, dtype=np.int64).ravel()
    b0 = np.ascontiguousarray(b0, dtype=np.int64).ravel()
    if slot.size and (int(slot.min()) < 0 or int(slot.max()) >= cumulative.shape[0]
                      or min(int(b1.min()), int(b0.min())) < 0
                      or max(int(b1.max()), int(b0.max())) >= cumulative.shape[1]):
        return cumulative[slot, b1] - cumulative[slot, b0]  # NumPy's indexing (and its errors)
    out = np.empty(slot.size, dtype=np.float64)
    if slot.size:
        _slot_differences(np.ascontiguousarray(cumulative, dtype=np.float64), slot, b1, b0, out)
    return out
