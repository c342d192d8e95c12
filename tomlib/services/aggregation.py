"""Aggregation Service (MHHS MDS, mhhs-domain.md §2.9): settled MPAN energy -> aggregated volumes.

For each GSP group H, supplier s, BM unit b, Consumption Component Class n and period j [INF]::

    V[H, s, b, n, j] = sum_{m in MPANs(H, s, b, n, j)} E[m, j]                       (consumption CCCs)
    L[H, s, b, n, j] = sum_{m in MPANs(H, s, b, n, j)} E[m, j] x (LLF[llfc(m, j), j] - 1)   (losses CCCs)

- Supplier, BM unit, LLFC and energisation are the registration *in force in period j* as known
  at the run's as-of instant (:mod:`tomlib.registration`); GSP group, market segment and
  measurement quantity are the MPAN's standing data.
- The CCC of a cell comes from its measurement quantity (import AI / export AE, kept apart), its
  market segment and its data quality: DI-083 codes in ``actual_quality`` (default
  :data:`ACTUAL_QUALITY`, [INF]) are *actual*, every other non-missing code *estimated*. The CCC
  table is data (:func:`tomlib.reference.consumption_component_classes`); a combination with no
  CCC raises, naming the MPAN.
- Completeness: every registered, energised MPAN contributes to every period. A cell the segment
  service left MISSING (or an MPAN it did not return) is *defaulted* [INF, §2.9 "load shape x
  AC", §5 G-9]: ``E = LS[c, j] x AC / mean AC[c]`` with ``LS[c, j]`` the mean actual energy per
  MPAN of the category c = (GSP group, market segment, measurement quantity, domestic) in period j
  (the LSS definition of a load shape, §2.10) and ``mean AC[c]`` the mean annual consumption of
  the category's MPANs; where the category has no actual value in the period, a flat
  ``AC / 8766 h x 0.5 h``. Defaults are settled in the *estimated* CCC and counted
  (``default_count``, ``default_energy``; statuses ``default`` and ``default_flat`` of
  ``mpan_periods``). De-energised and unregistered cells do not contribute and are counted too.
- Missing LLF for an LLFC in use (or a non-finite LLF in a period it is used) raises, naming the
  LLFC (mhhs-domain.md Q8: no silent 1.0).

Hot path
--------
Each registration event belongs to one MPAN, so the key of a cell -- (GSP group, class (MQ,
segment), domestic, supplier/BM unit pair, LLFC, actual/estimated/missing) -- is the *group* of
its event plus its quality class; the event groups are compacted once (a few hundred per block).
Over the dense MPAN x period array, one compiled pass (:func:`_group_class_sums`, numba): each cell
of a row whose registration does not change in the run adds its energy to its group's actual or
estimated sum and counts itself; the few rows whose registration changes take a per-cell
``np.bincount``; missing cells (rare) are listed for the defaults. No per-cell key array, no sort,
no pandas groupby. Losses need no per-cell LLF lookup: the LLFC is part of the key, so each
group's energy is multiplied by its LLF - 1 afterwards. De-energised and unregistered cells fall
in pseudo-groups that are counted, not aggregated. Sums equal a cell-by-cell sum in MPAN order
up to where the changing rows are added (summation order, ~1e-16 relative); counts and statuses
exactly.
:func:`bench_inputs` builds synthetic inputs of a given size for the benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from tomlib import cube
from tomlib.mpan import positions
from tomlib.registration import RegistrationInForce

__all__ = [
    "ACTUAL_QUALITY",
    "AGGREGATE_COORDS",
    "STATUSES",
    "aggregate",
    "bench_inputs",
    "group_sum",
    "quality_classes",
]

#: DI-083 quality labels settled as *actual* data [INF]: the ADS actual variants A1..A3 count as
#: actual; AAE*/EAE*/EA* (ADS estimation methods) and every E*/ZE* code as estimated.
ACTUAL_QUALITY = ("A", "A1", "A2", "A3")

#: Statuses of ``mpan_periods``: how each MPAN-period of the cube was treated.
STATUSES = ("actual", "estimated", "default", "default_flat", "de_energised", "not_registered")

#: Coordinates on the ``aggregate`` dimension.
AGGREGATE_COORDS = ("gsp_group", "supplier", "bm_unit", "ccc", "measurement_quantity", "market_segment",
                    "data_quality", "component")

_HOURS_PER_YEAR = 8766.0  # [h] 365.25 days
_PERIOD_H = 0.5  # [h]


def _actual_ranges(actual_quality) -> list[tuple[int, int]]:
    """The uint8 DI-083 codes settled as actual, as inclusive ranges (lo, hi) of consecutive codes."""
    codes = np.flatnonzero(quality_classes(actual_quality) == 1)
    ranges: list[list[int]] = []
    for c in codes.tolist():
        if ranges and c == ranges[-1][1] + 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    return [(lo, hi) for lo, hi in ranges]


def _is_actual(quality: np.ndarray, ranges, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """``out`` = quality code in one of ``ranges`` (bool), by uint8 compares: one unsigned
    ``q - lo <= hi - lo`` per range is a few byte passes, cheaper than a table lookup per cell."""
    if not ranges:
        out[...] = False
    for i, (lo, hi) in enumerate(ranges):
        into = out if i == 0 else scratch
        if lo == hi:
            np.equal(quality, lo, out=into)
        else:
            np.less_equal(quality - np.uint8(lo), np.uint8(hi - lo), out=into)  # wraps below lo
        if i:
            out |= scratch
    return out


def quality_classes(actual_quality=ACTUAL_QUALITY) -> np.ndarray:
    """Lookup DI-083 code -> 0 missing, 1 actual, 2 estimated (uint8, one entry per code)."""
    labels = np.array([cube.QUALITY_LABELS[i] for i in range(len(cube.QUALITY_LABELS))])
    unknown = sorted(set(actual_quality) - set(labels))
    if unknown:
        raise ValueError(f"actual_quality: unknown DI-083 label(s) {unknown}")
    out = np.where(np.isin(labels, list(actual_quality)), 1, 2).astype(np.uint8)
    out[cube.MISSING] = 0
    return out


def _factorize(values) -> tuple[np.ndarray, np.ndarray]:
    """Sorted factorisation of strings: (int64 codes, sorted unique values as str).

    Short fixed-width NumPy strings (1 or 2 characters: GSP group, segment, measurement quantity)
    are hashed as integers, and pandas/Arrow strings factorised where they are, instead of
    converting a million strings to Python objects first (the cost that dominated per MPAN).
    """
    if isinstance(values, np.ndarray) and values.dtype.kind == "U" and values.dtype.itemsize in (4, 8):
        arr = np.ascontiguousarray(values)
        codes, uniq = pd.factorize(arr.view(f"u{arr.dtype.itemsize}"))
        uniq = np.asarray(uniq).view(arr.dtype)
        order = np.argsort(uniq, kind="stable")
        rank = np.empty(order.size, dtype=np.int64)
        rank[order] = np.arange(order.size)
        return rank[codes], uniq[order].astype(str)
    codes, uniq = pd.factorize(values, sort=True)
    return np.asarray(codes, dtype=np.int64), np.asarray(uniq, dtype=str)


def group_sum(values: np.ndarray, keys: list[np.ndarray]) -> tuple[pd.DataFrame, np.ndarray]:
    """Sum the rows of ``values`` (n, ...) sharing the same key tuple.

    Parameters
    ----------
    values : ndarray, shape (n, ...)
    keys : list of ndarray, each shape (n,)

    Returns
    -------
    groups : DataFrame
        One row per distinct key tuple (sorted), one column per key (``k0``, ``k1``, ...).
    sums : ndarray, shape (n_groups, ...)
    """
    codes, uniques = [], []
    for k in keys:
        c, u = pd.factorize(np.asarray(k), sort=True)
        codes.append(c)
        uniques.append(np.asarray(u))
    combined = np.ravel_multi_index(codes, [max(u.size, 1) for u in uniques]) if codes else np.zeros(len(values), int)
    used, inverse = np.unique(combined, return_inverse=True)
    values = np.asarray(values, dtype=float)
    flat = values.reshape(values.shape[0], -1)
    width = flat.shape[1]
    idx = (inverse[:, None] * width + np.arange(width)[None, :]).ravel()
    sums = np.bincount(idx, weights=flat.ravel(), minlength=used.size * width).reshape((used.size,) + values.shape[1:])
    parts = np.unravel_index(used, [max(u.size, 1) for u in uniques])
    groups = pd.DataFrame({f"k{i}": uniques[i][p] for i, p in enumerate(parts)})
    return groups, sums


@dataclass(frozen=True)
class _CccLookup:
    classes: pd.DataFrame  # index class code; columns measurement_quantity, market_segment
    ccc: np.ndarray  # (n_class, 2 data qualities, 2 components) ccc id or ""


def _ccc_lookup(cccs: pd.DataFrame, mq: np.ndarray, seg: np.ndarray) -> tuple[_CccLookup, np.ndarray]:
    mq_code, mq_uniques = _factorize(mq)
    seg_code, seg_uniques = _factorize(seg)
    cls_code, cls_keys = pd.factorize(mq_code.astype(np.int64) * max(len(seg_uniques), 1) + seg_code, sort=True)
    classes = pd.DataFrame({
        "measurement_quantity": np.asarray(mq_uniques, dtype=str)[cls_keys // max(len(seg_uniques), 1)],
        "market_segment": np.asarray(seg_uniques, dtype=str)[cls_keys % max(len(seg_uniques), 1)]})
    table = cccs.reset_index()
    # a dictionary of the (small) CCC table: four DataFrame merges cost more than the rest per call
    known = dict(zip(zip(*(table[c].astype(str) for c in ("measurement_quantity", "market_segment", "data_quality",
                                                            "component"))), table["ccc"].astype(str)))
    ids = np.array([[[known.get((m, s, dq, comp), "") for comp in ("consumption", "losses")]
                     for dq in ("actual", "estimated")]
                    for m, s in zip(classes["measurement_quantity"], classes["market_segment"])], dtype=str)
    return _CccLookup(classes, ids.reshape(len(classes), 2, 2)), cls_code.astype(np.int64)


def _llf_rows(llf: xr.DataArray, llfcs: np.ndarray, times: np.ndarray) -> np.ndarray:
    """LLF table (n_llfc, n_time) in the order of ``llfcs``; unknown LLFC -> row of NaN (checked later)."""
    if "llfc" not in llf.dims or "time" not in llf.dims:
        raise ValueError(f"line_loss_factors must have dims (llfc, time), got {llf.dims}")
    known = pd.Index(np.asarray(llf["llfc"].values, dtype=str))
    t_pos = pd.Index(np.asarray(llf["time"].values, dtype="datetime64[ns]")).get_indexer(times)
    if (t_pos < 0).any():
        raise ValueError(f"line_loss_factors: no LLFs for period {pd.Timestamp(times[np.argmax(t_pos < 0)])} UTC "
                         "(expected every period of the meter cube)")
    values = np.asarray(llf.transpose("llfc", "time").values, dtype=float)[:, t_pos]
    rows = known.get_indexer(llfcs)
    out = np.full((llfcs.size, times.size), np.nan)
    out[rows >= 0] = values[rows[rows >= 0]]
    return out


def aggregate(meters: xr.Dataset, registration: RegistrationInForce, line_loss_factors: xr.DataArray, *,
              cccs: pd.DataFrame | None = None, actual_quality=ACTUAL_QUALITY) -> xr.Dataset:
    """Aggregate settled MPAN energy by GSP group, supplier, BM unit, CCC and period.

    Parameters
    ----------
    meters : Dataset
        Meter cube of the settled energy of every segment together (``energy`` [kWh], ``quality``);
        standing coordinates ``gsp_group``, ``market_segment``, ``measurement_quantity``,
        ``domestic`` and ``annual_consumption`` [kWh/year] are used.
    registration : RegistrationInForce
        Registration in force per (mpan, time) as of the run; an MPAN of the cube missing there is
        *not registered*; same time axis as the cube.
    line_loss_factors : DataArray
        LLF [-], dims (llfc, time).
    cccs : DataFrame, optional
        CCC table; default :func:`tomlib.reference.consumption_component_classes`.
    actual_quality : sequence of str
        DI-083 labels settled as actual.

    Returns
    -------
    Dataset
        Dims ``aggregate`` (one row per GSP group x supplier x BM unit x CCC in use; coordinates
        :data:`AGGREGATE_COORDS`), ``time``, ``gsp_group_id`` and ``status``. Variables
        ``energy(aggregate, time)`` [kWh] (losses CCCs hold the losses), ``mpan_count`` and
        ``default_count(aggregate, time)`` [1], ``default_energy(aggregate, time)`` [kWh] (the part
        of ``energy`` that comes from defaults: their consumption, or their losses on a losses row), ``mpan_periods(gsp_group_id,
        status, time)`` [1] (:data:`STATUSES`).

    Raises
    ------
    ValueError
        For an LLFC without LLFs or a non-finite LLF where it is used, a cell whose
        (measurement quantity, segment, quality) has no CCC, or a time axis that differs from the
        registration's.
    """
    from tomlib import reference

    cccs = reference.consumption_component_classes() if cccs is None else cccs
    times = np.asarray(meters["time"].values, dtype="datetime64[ns]")
    if not np.array_equal(times, registration.times.to_numpy()):
        raise ValueError("aggregate: the registration's time axis differs from the meter cube's")
    mpans = np.asarray(meters["mpan"].values, dtype=str)
    n_mpan, n_t = mpans.size, times.size
    if n_mpan == 0:
        return _empty(times)
    event = _events_of(registration, mpans, n_t)
    ev = registration.events

    # per event: supplier/BM unit pair and LLFC; de-energised events become a pseudo pair
    sup_code, sup_uniques = _factorize(ev["supplier"])
    bmu_code, bmu_uniques = _factorize(ev["bm_unit"])
    pair_code, pair_keys = pd.factorize(sup_code * max(len(bmu_uniques), 1) + bmu_code, sort=True)
    pair_uniques = np.stack([sup_uniques[pair_keys // max(len(bmu_uniques), 1)],
                             bmu_uniques[pair_keys % max(len(bmu_uniques), 1)]], axis=1) \
        if len(pair_keys) else np.zeros((0, 2), dtype=str)
    llfc_code, llfcs = _factorize(ev["llfc"])
    n_p, n_l = len(pair_keys), max(len(llfcs), 1)
    not_reg, de_en = n_p, n_p + 1
    energised = ev["energised"].to_numpy(dtype=bool)
    pair_of_ev = np.where(energised, pair_code, de_en).astype(np.int64)
    llfc_of_ev = np.where(energised, llfc_code, 0).astype(np.int64)

    # standing part of the key: GSP group, class (MQ, segment), domestic
    gsp_code, gsp_uniques = _factorize(np.asarray(meters["gsp_group"].values, dtype=str))
    mq = np.asarray(meters["measurement_quantity"].values, dtype=str)
    seg = np.asarray(meters["market_segment"].values, dtype=str)
    lookup, cls_code = _ccc_lookup(cccs, mq, seg)
    n_c = len(lookup.classes)
    dom = np.asarray(meters["domestic"].values, dtype=bool)
    static = ((gsp_code * n_c + cls_code) * 2 + dom)

    # Key of an event = (GSP group, class, domestic, pair, LLFC) of its MPAN; x 3 data qualities
    # (actual, estimated, missing). Each event belongs to one MPAN, so the key space is the event
    # table's, compacted here once: event group g has the keys 3g, 3g + 1, 3g + 2.
    m_of_ev = registration.event_row if event is registration.event else \
        positions(mpans, ev["mpan"])
    ev_static = np.where(m_of_ev >= 0, static[np.maximum(m_of_ev, 0)], 0)
    ev_key = ((ev_static * (n_p + 2) + pair_of_ev) * n_l + llfc_of_ev) * 3
    ev_key = np.append(ev_key, not_reg * n_l * 3)  # event -1: not registered
    group, group_keys = pd.factorize(ev_key, sort=True)
    used = (np.asarray(group_keys, dtype=np.int64)[:, None] + np.arange(3)).ravel()
    n_k = used.size

    # the hot path (see _group_class_sums): sums and counts per (event group, quality class, period)
    # NaN in missing cells stays in their keys' sums, which are reset below
    sums, counts, missing, d_flat = _group_class_sums(
        meters["energy"].values, np.asarray(meters["quality"].values), _actual_ranges(actual_quality), event,
        group.astype(np.int64), n_k // 3)
    sums, counts = sums.reshape(n_k, n_t), counts.reshape(n_k, n_t)

    # decode the compact keys
    parts = {}
    rest = used.copy()
    for name, size in (("est3", 3), ("llfc", n_l), ("pair", n_p + 2)):
        parts[name], rest = rest % size, rest // size
    parts["dom"], rest = rest % 2, rest // 2
    parts["cls"], parts["gsp"] = rest % n_c, rest // n_c
    parts["est"] = np.minimum(parts["est3"], 1)
    active = parts["pair"] < n_p
    sums[parts["est3"] == 2] = 0.0

    # defaults at active cells without a value: mean actual kWh per MPAN of the category x AC / mean AC
    d_key = d_flat // n_t
    d_active = active[d_key]
    missing, d_flat, d_key = missing[d_active], d_flat[d_active], d_key[d_active]
    default_flat = np.zeros(missing.size, dtype=bool)
    default_sum = np.zeros((n_k, n_t))
    default_n = np.zeros((n_k, n_t))
    if missing.size:
        values, default_flat = _defaults(meters, parts, active, sums, counts, missing, n_t, n_c, gsp_code,
                                         cls_code, dom)
        default_sum = np.bincount(d_flat, weights=values, minlength=n_k * n_t).reshape(n_k, n_t)
        default_n = np.bincount(d_flat, minlength=n_k * n_t).reshape(n_k, n_t)
        sums += default_sum

    _check_ccc(lookup, parts, active, counts, mpans, cls_code)
    llf = _llf_rows(line_loss_factors, llfcs, times) if len(llfcs) else np.ones((1, n_t))
    k_llf = llf[parts["llfc"]]  # (n_k, n_t)
    bad = active[:, None] & (counts > 0) & ~np.isfinite(k_llf)
    if bad.any():
        k, j = np.argwhere(bad)[0]
        code = llfcs[parts["llfc"][k]]
        known = np.asarray(line_loss_factors["llfc"].values, dtype=str)
        what = "no line loss factors" if code not in known else f"no finite LLF in period {pd.Timestamp(times[j])} UTC"
        raise ValueError(f"aggregate: LLFC {code} has {what}; a missing LLF is an error, not 1.0 "
                         f"(mhhs-domain.md Q8)")
    loss_rate = np.where(active[:, None] & np.isfinite(k_llf), k_llf - 1.0, 0.0)
    losses = sums * loss_rate
    default_losses = default_sum * loss_rate

    out = _collapse(parts, active, sums, losses, counts, default_n, default_sum, default_losses, lookup,
                    pair_uniques, gsp_uniques, times)
    out["mpan_periods"] = _statuses(parts, n_p, counts, d_key, default_flat, gsp_uniques, n_t, d_flat,
                                    gsp_code, event)
    return cube.add_settlement_coords(out)


def _empty(times: np.ndarray) -> xr.Dataset:
    """The aggregation of a cube without MPANs (e.g. no segment has a data service yet)."""
    n_t = times.size
    coords = {c: ("aggregate", np.array([], dtype=str)) for c in AGGREGATE_COORDS}
    empty = np.zeros((0, n_t))
    out = xr.Dataset(
        {"energy": (("aggregate", "time"), empty, {"units": "kWh"}),
         "mpan_count": (("aggregate", "time"), empty.astype(np.int32), {"units": "1"}),
         "default_count": (("aggregate", "time"), empty.astype(np.int32), {"units": "1"}),
         "default_energy": (("aggregate", "time"), empty, {"units": "kWh"}),
         "mpan_periods": (("gsp_group_id", "status", "time"), np.zeros((0, len(STATUSES), n_t), np.int32),
                          {"units": "1"})},
        coords={"time": ("time", times, dict(cube.TIME_ATTRS)), "gsp_group_id": np.array([], dtype=str),
                "status": list(STATUSES), **coords})
    return cube.add_settlement_coords(out)


def _events_of(registration: RegistrationInForce, mpans: np.ndarray, n_t: int) -> np.ndarray:
    """Event position per cell of the cube's MPANs (-1 for MPANs the registration does not know)."""
    if np.array_equal(registration.mpans, mpans):
        return registration.event
    row = positions(registration.mpans, mpans)
    out = registration.event[np.maximum(row, 0)] if registration.mpans.size else np.full((mpans.size, n_t), -1)
    out = np.array(out, dtype=np.int32)
    out[row < 0] = -1
    return out


def _group_class_sums(energy, quality: np.ndarray, ranges, event: np.ndarray, group: np.ndarray, n_groups: int):
    """Energy sums and cell counts per (event group, quality class, period) of an MPAN x period cube.

    Parameters
    ----------
    energy : ndarray, shape (n_mpan, n_t)
        Energy [kWh]; NaN in missing cells, finite elsewhere (the meter cube's invariant).
    quality : ndarray of uint8, shape (n_mpan, n_t)
        DI-083 codes (:data:`tomlib.cube.QUALITY_CODES`).
    ranges : list of (int, int)
        Codes settled as actual, as inclusive ranges (:func:`_actual_ranges`); ``MISSING`` is
        missing, every other code estimated.
    event : ndarray of int, shape (n_mpan, n_t)
        Registration event in force per cell, -1 for none; along a row positions never decrease
        (:func:`tomlib.registration.in_force`), so a row whose first and last equal has one event.
    group : ndarray of int, shape (n_events + 1,)
        Group of each event; the last entry is the group of event -1.
    n_groups : int

    Returns
    -------
    sums : ndarray, shape (n_groups, 3, n_t)
        [kWh] by class 0 actual, 1 estimated, 2 missing (NaN where the group has a missing cell).
    counts : ndarray of int64, shape (n_groups, 3, n_t)
        Cells [1].
    missing : ndarray of int64
        Flat index (row x n_t + period) of every missing cell.
    missing_bin : ndarray of int64
        Its flat bin in the sums: (3 x group + 2) x n_t + period.

    Notes
    -----
    The rows (MPANs) whose registration is the same all run -- nearly all -- go through one
    compiled pass over the cube (:func:`tomlib.services._aggregation_kernel.steady_row_sums`): per
    cell a table lookup of its quality, a select and four adds into its row's group, in row order
    (within a group the rows are added in MPAN order, as a plain loop would). Missing cells (rare)
    are listed from one byte compare over the quality codes for the defaults; rows whose
    registration changes within the run take a per-cell bincount.
    """
    from tomlib.services._aggregation_kernel import steady_row_sums

    energy = np.asarray(energy)
    n, n_t = quality.shape
    sums = np.zeros((n_groups, 3, n_t))
    counts = np.zeros((n_groups, 3, n_t), dtype=np.int64)
    none = np.zeros(0, dtype=np.int64)
    if n == 0 or n_t == 0:
        return sums, counts, none, none
    size = n_groups * 3 * n_t
    first = event[:, 0]
    steady = first == event[:, -1]
    g_row = np.asarray(group, dtype=np.int64)[first]
    rows = np.flatnonzero(steady)
    actual_codes = np.zeros(256, dtype=bool)
    for lo, hi in ranges:  # a few ranges of DI-083 codes
        actual_codes[lo:hi + 1] = True
    sums[:, 0], sums[:, 1], counts[:, 0], counts[:, 2] = steady_row_sums(
        energy, quality, actual_codes, cube.MISSING, rows, g_row[rows], n_groups)
    # estimated = the rest of each group's rows
    counts[:, 1] = np.bincount(g_row[rows], minlength=n_groups)[:, None] - counts[:, 0] - counts[:, 2]
    sums[:, 2][counts[:, 2] > 0] = np.nan  # as a plain sum over the missing cells' NaN would give
    missing = np.flatnonzero(quality.ravel() == cube.MISSING)
    m_row = missing // n_t
    missing = missing[steady[m_row]]
    m_row = missing // n_t
    missing_bin = (g_row[m_row] * 3 + 2) * n_t + (missing - m_row * n_t)

    varying = np.flatnonzero(~steady)
    if varying.size:  # registration changes within the run: a key per cell
        q = quality[varying]
        act = _is_actual(q, ranges, np.empty(q.shape, dtype=bool), np.empty(q.shape, dtype=bool))
        cls = np.where(act, 0, np.where(q == cube.MISSING, 2, 1))
        bins = ((np.asarray(group, dtype=np.int64)[event[varying]] * 3 + cls) * n_t + np.arange(n_t)).ravel()
        sums += np.bincount(bins, weights=np.asarray(energy[varying], dtype=float).ravel(),
                            minlength=size).reshape(sums.shape)
        counts += np.bincount(bins, minlength=size).reshape(counts.shape)
        at = np.flatnonzero(cls.ravel() == 2)
        missing = np.concatenate([missing, (varying[:, None] * n_t + np.arange(n_t)).ravel()[at]])
        missing_bin = np.concatenate([missing_bin, bins[at]])
    return sums, counts, missing, missing_bin


def _check_ccc(lookup: _CccLookup, parts, active, counts, mpans, cls_code) -> None:
    has = (lookup.ccc[parts["cls"], parts["est"], 0] != "") & (lookup.ccc[parts["cls"], parts["est"], 1] != "")
    bad = active & ~has & (counts.sum(axis=1) > 0)
    if bad.any():
        k = int(np.argmax(bad))
        c, q = parts["cls"][k], parts["est"][k]
        m = mpans[int(np.argmax(cls_code == c))]
        raise ValueError(
            f"aggregate: no consumption component class for measurement quantity {lookup.classes.iloc[c, 0]}, "
            f"market segment {lookup.classes.iloc[c, 1]}, data quality {('actual', 'estimated')[q]} "
            f"(e.g. mpan {m}); add it to the CCC table")


def _defaults(meters, parts, active, sums, counts, missing, n_t, n_c, gsp_code, cls_code, dom):
    """Default energy of the missing active cells and which had no actual data in their category."""
    ac = np.asarray(meters["annual_consumption"].values, dtype=float)
    cat_of_key = (parts["gsp"] * n_c + parts["cls"]) * 2 + parts["dom"]
    cat_of_mpan = (gsp_code.astype(np.int64) * n_c + cls_code) * 2 + dom
    n_cat = int(max(cat_of_key.max(initial=0), cat_of_mpan.max(initial=0))) + 1
    actual_keys = active & (parts["est"] == 0)
    flat = (cat_of_key[actual_keys][:, None] * n_t + np.arange(n_t)[None, :]).ravel()
    e_sum = np.bincount(flat, weights=sums[actual_keys].ravel(), minlength=n_cat * n_t).reshape(n_cat, n_t)
    n_act = np.bincount(flat, weights=counts[actual_keys].ravel(), minlength=n_cat * n_t).reshape(n_cat, n_t)
    mean_ac = np.bincount(cat_of_mpan, weights=ac, minlength=n_cat) / np.maximum(
        np.bincount(cat_of_mpan, minlength=n_cat), 1)
    m, t = np.divmod(missing, n_t)
    c = cat_of_mpan[m]
    has = n_act[c, t] > 0
    shape = np.divide(e_sum[c, t], n_act[c, t], out=np.zeros(m.size), where=has)  # [kWh per MPAN]
    scale = np.divide(ac[m], mean_ac[c], out=np.ones(m.size), where=mean_ac[c] > 0)
    values = np.where(has, shape * scale, ac[m] * _PERIOD_H / _HOURS_PER_YEAR)
    return values, ~has


def _collapse(parts, active, sums, losses, counts, default_n, default_sum, default_losses, lookup, pair_uniques,
              gsp_uniques, times) -> xr.Dataset:
    """Sum the compact keys over (domestic, LLFC) into output aggregates (GSP group, pair, class, quality)."""
    n_t = times.size
    active = active & (counts.sum(axis=1) > 0)  # candidate keys no cell used are dropped
    keys = [parts[n][active] for n in ("gsp", "pair", "cls", "est")]
    combined = np.ravel_multi_index(keys, [int(k.max(initial=0)) + 1 for k in keys]) if active.any() \
        else np.zeros(0, dtype=np.int64)
    out_keys, inverse = np.unique(combined, return_inverse=True)
    n_out = out_keys.size
    # an output row sums its keys (a few: domestic x LLFC) in key order: the j-th key of every output
    # is added in one vectorised step per j, row by row (np.add.reduceat along this axis is slow)
    order = np.argsort(inverse, kind="stable")
    out_of = inverse[order]
    rank = np.arange(out_of.size) - np.searchsorted(out_of, out_of)  # position among its output's keys
    rows = np.flatnonzero(active)[order]
    steps = [(out_of[rank == j], rows[rank == j]) for j in range(int(rank.max(initial=-1)) + 1)]

    def collapse(values):
        out = np.zeros((n_out, n_t), dtype=values.dtype)
        for to, take in steps:  # distinct outputs within a step
            out[to] += values[take]
        return out

    first = np.zeros(n_out, dtype=np.int64)
    first[inverse[::-1]] = np.arange(inverse.size)[::-1]
    gsp, pair, cls, est = (k[first] for k in keys)
    pairs = pair_uniques
    base = {
        "gsp_group": np.asarray(gsp_uniques, dtype=str)[gsp] if n_out else np.array([], str),
        "supplier": np.array(pairs[pair, 0].tolist() if n_out else [], dtype=str),
        "bm_unit": np.array(pairs[pair, 1].tolist() if n_out else [], dtype=str),
        "measurement_quantity": lookup.classes["measurement_quantity"].to_numpy(dtype=str)[cls],
        "market_segment": lookup.classes["market_segment"].to_numpy(dtype=str)[cls],
        "data_quality": np.where(est == 1, "estimated", "actual").astype(str),
    }
    coords = {c: ("aggregate", np.concatenate([v, v]).astype(str)) for c, v in base.items()}
    coords["component"] = ("aggregate", np.repeat(["consumption", "losses"], n_out).astype(str))
    coords["ccc"] = ("aggregate", np.concatenate([lookup.ccc[cls, est, 0], lookup.ccc[cls, est, 1]]).astype(str))
    count = collapse(counts).astype(np.int32)
    dflt = collapse(default_n).astype(np.int32)
    dflt_e = collapse(default_sum)
    return xr.Dataset(
        {
            "energy": (("aggregate", "time"), np.concatenate([collapse(sums), collapse(losses)]),
                       {"units": "kWh", "long_name": "aggregated volume (losses CCCs: line losses)"}),
            "mpan_count": (("aggregate", "time"), np.concatenate([count, count]),
                           {"units": "1", "long_name": "MPANs contributing"}),
            "default_count": (("aggregate", "time"), np.concatenate([dflt, dflt]),
                              {"units": "1", "long_name": "MPANs contributing a default (no settled value)"}),
            "default_energy": (("aggregate", "time"), np.concatenate([dflt_e, collapse(default_losses)]),
                               {"units": "kWh", "long_name": "part of the aggregate that comes from defaults"}),
        },
        coords={"time": ("time", times, dict(cube.TIME_ATTRS)), **coords},
    )


def _statuses(parts, n_p, counts, d_key, default_flat, gsp_uniques, n_t, d_flat, gsp_code, event) -> xr.DataArray:
    n_g, n_s = len(gsp_uniques), len(STATUSES)
    out = np.zeros((n_g, n_s, n_t))
    keep = parts["pair"] != n_p  # not-registered keys carry no GSP group: counted from the events below
    status_of_key = np.select([parts["pair"] == n_p + 1, parts["est"] == 1], [4, 1], 0)
    flat = ((parts["gsp"][keep] * n_s + status_of_key[keep])[:, None] * n_t + np.arange(n_t)[None, :]).ravel()
    out += np.bincount(flat, weights=counts[keep].ravel().astype(float),
                       minlength=n_g * n_s * n_t).reshape(n_g, n_s, n_t)
    # defaults were counted as estimated: move them
    t = d_flat % n_t
    g = parts["gsp"][d_key]
    for status, mask in ((2, ~default_flat), (3, default_flat)):
        moved = np.bincount(g[mask] * n_t + t[mask], minlength=n_g * n_t).reshape(n_g, n_t)
        out[:, status] += moved
        out[:, 1] -= moved
    # not registered cells are a prefix of each MPAN's row (in_force carries events forward)
    prefix = np.where(event[:, 0] < 0, n_t, 0) if n_t else np.zeros(event.shape[0], dtype=np.int64)
    part = np.flatnonzero((event[:, 0] < 0) & (event[:, -1] >= 0)) if n_t else np.zeros(0, dtype=np.int64)
    prefix[part] = (event[part] < 0).sum(axis=1)
    hist = np.bincount(gsp_code.astype(np.int64) * (n_t + 1) + prefix, minlength=n_g * (n_t + 1)).reshape(n_g, -1)
    # MPANs of group g not registered in period j: those whose prefix is longer than j
    out[:, 5] = hist[:, ::-1].cumsum(axis=1)[:, ::-1][:, 1:]
    return xr.DataArray(out.astype(np.int32), dims=("gsp_group_id", "status", "time"),
                        coords={"gsp_group_id": np.asarray(gsp_uniques, dtype=str), "status": list(STATUSES)},
                        attrs={"units": "1", "long_name": "MPAN-periods by treatment"})


# ------------------------------------------------------------------------------------------ benchmark


def bench_inputs(mpan_days: int = 1_000_000, days: int = 7, seed: int = 0,
                 estimated_share: float = 0.1, missing_share: float = 0.01, first_date: str = "2026-03-23",
                 change_share: float = 0.01) -> dict:
    """Synthetic inputs of :func:`aggregate` for the benchmark (no market generator needed).

    Parameters
    ----------
    mpan_days : int
        MPANs x settlement days; the MPAN count is ``mpan_days // days``.
    days : int
        Settlement days from ``first_date`` (by default a week holding the 46-period day 2026-03-29).
    seed : int
    estimated_share, missing_share : float
        Shares of cells with an estimated / missing (to be defaulted) value [-].
    first_date : str
        First settlement day (ISO date).
    change_share : float
        Share of MPANs whose supplier changes at a random period of the run [-] (their rows take
        aggregation's per-cell path).

    Returns
    -------
    dict
        Keyword arguments of :func:`aggregate`: ``meters``, ``registration``, ``line_loss_factors``
        (14 GSP groups, 8 suppliers, 2 LLFCs per GSP group, 2 % export MPANs, 1 % de-energised,
        ``change_share`` changing supplier within the run).
    """
    from tomlib import calendar
    from tomlib import registration as reg

    rng = np.random.default_rng(seed)
    n = max(mpan_days // days, 1)
    first = pd.Timestamp(first_date)
    times = calendar.time_axis(first, first + pd.Timedelta(days=days - 1))
    groups = np.array(["_A", "_B", "_C", "_D", "_E", "_F", "_G", "_H", "_J", "_K", "_L", "_M", "_N", "_P"])
    suppliers = np.array([f"SUP{c}" for c in "ABCDEFGH"])
    g = groups[rng.integers(0, groups.size, n)]
    s = suppliers[rng.integers(0, suppliers.size, n)]
    export = rng.random(n) < 0.02
    mpans = np.char.zfill((10**12 + np.arange(n)).astype(str), 13)
    llfc_id = np.where(export, "9", "1")
    llfc = np.char.add(llfc_id, np.char.zfill(np.searchsorted(groups, g).astype(str), 2))
    standing = pd.DataFrame({
        "gsp_group": g, "market_segment": np.where(rng.random(n) < 0.05, "A", "S"),
        "connection_type": "W", "domestic": True, "supplier": s,
        "bm_unit": np.char.add(np.char.add(np.char.add("2__", np.char.lstrip(g, "_")), s), "001"),
        "llfc": llfc, "measurement_quantity": np.where(export, "AE", "AI"),
        "annual_consumption": rng.uniform(1000, 6000, n)}, index=pd.Index(mpans, name="mpan"))
    standing.loc[export, "market_segment"] = "S"
    energy = rng.gamma(2.0, 0.1, (n, times.size))
    # quality from float32 draws and uint8 writes: at 10^7 MPAN-days nested np.where would hold
    # several int64 temporaries of 4 GB each
    u = rng.random((n, times.size), dtype=np.float32)
    quality = np.full((n, times.size), cube.QUALITY_CODES["A"], dtype=np.uint8)
    quality[u < np.float32(missing_share + estimated_share)] = cube.QUALITY_CODES["E"]
    quality[u < np.float32(missing_share)] = cube.MISSING
    del u
    energy[quality == cube.MISSING] = np.nan
    meters = cube.meter_cube(energy, times, mpans, standing, quality=quality)
    events = reg.initial_events(meters, times[0], times[0] - pd.Timedelta(days=30))
    events.loc[rng.random(n) < 0.01, "energised"] = False
    moving = np.random.default_rng([seed, 1])  # its own stream: the other draws stay as they were
    who = np.flatnonzero(moving.random(n) < change_share)
    if who.size and times.size > 1:
        change = events.iloc[who].copy()
        change["effective_from"] = times.to_numpy()[moving.integers(1, times.size, who.size)]
        new = suppliers[(np.searchsorted(suppliers, s[who]) + moving.integers(1, suppliers.size, who.size))
                        % suppliers.size]
        change["supplier"] = new
        change["bm_unit"] = np.char.add(np.char.add(np.char.add("2__", np.char.lstrip(g[who], "_")), new), "001")
        change["change"] = "supplier"
        events = pd.concat([events, change], ignore_index=True)
    registration = reg.in_force(events, mpans, times)
    llfcs = np.unique(llfc)
    llf = xr.DataArray(1.0 + rng.uniform(0.01, 0.09, (llfcs.size, times.size)), dims=("llfc", "time"),
                       coords={"llfc": llfcs, "time": times.to_numpy()}, attrs={"units": "-"})
    return {"meters": meters, "registration": registration, "line_loss_factors": llf}
