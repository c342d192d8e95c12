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
segment), domestic, supplier/BM unit pair, LLFC, actual/estimated/missing) -- is the key of its
event plus its quality class; the event keys are compacted once (a few thousand). A cell's bin is
then ``(base[event] + quality class) x n_time + t``: a per-row broadcast for the MPANs whose
registration does not change in the run (a gather only for the rows that change), and two
``np.bincount`` passes give the energy sums and counts of every bin — the sorted-segment-sum idea
without a sort, and no pandas groupby. Losses need no per-cell LLF lookup: the LLFC is part of the
key, so each bin's energy is multiplied by its LLF - 1 afterwards. De-energised and unregistered
cells fall in pseudo-bins that are counted, not aggregated.
:func:`bench_inputs` builds synthetic inputs of a given size for the benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from tomlib import cube
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


def _quality_class3(actual_quality) -> np.ndarray:
    """Lookup DI-083 code -> 0 actual, 1 estimated, 2 missing (uint8)."""
    q = quality_classes(actual_quality)
    return np.select([q == 1, q == 2], [0, 1], 2).astype(np.uint8)


def _quality_class3_fast(quality: np.ndarray, actual_quality) -> np.ndarray:
    """0 actual, 1 estimated, 2 missing per cell (uint8) by comparisons: a lookup gather over every
    cell costs more than a few passes of uint8 compares."""
    codes = sorted({cube.QUALITY_CODES[label] for label in actual_quality})
    act = np.zeros(quality.shape, dtype=bool)
    for c in codes:  # a handful of DI-083 codes
        act |= quality == c
    out = (~act).view(np.uint8)
    out += (quality == cube.MISSING).view(np.uint8)
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
    mq_code, mq_uniques = pd.factorize(mq, sort=True)
    seg_code, seg_uniques = pd.factorize(seg, sort=True)
    cls_code, cls_keys = pd.factorize(mq_code.astype(np.int64) * max(len(seg_uniques), 1) + seg_code, sort=True)
    classes = pd.DataFrame({
        "measurement_quantity": np.asarray(mq_uniques, dtype=str)[cls_keys // max(len(seg_uniques), 1)],
        "market_segment": np.asarray(seg_uniques, dtype=str)[cls_keys % max(len(seg_uniques), 1)]})
    table = cccs.reset_index()
    ids = np.full((len(classes), 2, 2), "", dtype=object)
    for dq_i, dq in enumerate(("actual", "estimated")):
        for comp_i, comp in enumerate(("consumption", "losses")):
            sub = table[(table["data_quality"] == dq) & (table["component"] == comp)]
            hit = classes.merge(sub, how="left", on=["measurement_quantity", "market_segment"])
            ids[:, dq_i, comp_i] = hit["ccc"].fillna("").to_numpy(dtype=str)
    return _CccLookup(classes, ids.astype(str)), cls_code.astype(np.int64)


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
    sup_code, sup_uniques = pd.factorize(ev["supplier"].to_numpy(dtype=str), sort=True)
    bmu_code, bmu_uniques = pd.factorize(ev["bm_unit"].to_numpy(dtype=str), sort=True)
    pair_code, pair_keys = pd.factorize(sup_code.astype(np.int64) * max(len(bmu_uniques), 1) + bmu_code, sort=True)
    pair_uniques = np.stack([np.asarray(sup_uniques, dtype=str)[pair_keys // max(len(bmu_uniques), 1)],
                             np.asarray(bmu_uniques, dtype=str)[pair_keys % max(len(bmu_uniques), 1)]], axis=1) \
        if len(pair_keys) else np.zeros((0, 2), dtype=str)
    llfc_code, llfc_uniques = pd.factorize(ev["llfc"].to_numpy(dtype=str), sort=True)
    llfcs = np.asarray(llfc_uniques, dtype=str)
    n_p, n_l = len(pair_keys), max(len(llfcs), 1)
    not_reg, de_en = n_p, n_p + 1
    energised = ev["energised"].to_numpy(dtype=bool)
    pair_of_ev = np.where(energised, pair_code, de_en).astype(np.int64)
    llfc_of_ev = np.where(energised, llfc_code, 0).astype(np.int64)

    # standing part of the key: GSP group, class (MQ, segment), domestic
    gsp_code, gsp_uniques = pd.factorize(np.asarray(meters["gsp_group"].values, dtype=str), sort=True)
    mq = np.asarray(meters["measurement_quantity"].values, dtype=str)
    seg = np.asarray(meters["market_segment"].values, dtype=str)
    lookup, cls_code = _ccc_lookup(cccs, mq, seg)
    n_c = len(lookup.classes)
    dom = np.asarray(meters["domestic"].values, dtype=bool)
    static = ((gsp_code.astype(np.int64) * n_c + cls_code) * 2 + dom)

    # Key of an event = (GSP group, class, domestic, pair, LLFC) of its MPAN; x 3 data qualities
    # (actual, estimated, missing). Each event belongs to one MPAN, so the key space is the event
    # table's, compacted here once.
    m_of_ev = registration.event_row if event is registration.event else \
        pd.Index(mpans).get_indexer(ev["mpan"].to_numpy(dtype=str))
    ev_static = np.where(m_of_ev >= 0, static[np.maximum(m_of_ev, 0)], 0)
    ev_key = ((ev_static * (n_p + 2) + pair_of_ev) * n_l + llfc_of_ev) * 3
    ev_key = np.append(ev_key, not_reg * n_l * 3)  # event -1: not registered
    # ev_key is a multiple of 3 and all three qualities are candidates, so after compaction the
    # keys of an event are base, base + 1, base + 2 (quality actual, estimated, missing)
    used, inverse = np.unique((ev_key[:, None] + np.arange(3)[None, :]).ravel(), return_inverse=True)
    base = inverse.reshape(-1, 3)[:, 0].astype(np.int64)

    # the hot path: flat bin = (base[event] + quality class) x n_t + t, then two bincounts. Most
    # MPANs keep one registration through the run, so base is a per-row broadcast; only rows whose
    # registration changes take a per-cell gather.
    quality = np.asarray(meters["quality"].values)
    est3 = _quality_class3_fast(quality, actual_quality)
    flat = np.multiply(est3, n_t, dtype=np.int64)
    first = event[:, 0] if n_t else np.zeros(n_mpan, dtype=np.int32)
    flat += (base[first] * n_t)[:, None]
    flat += np.arange(n_t)
    varying = np.flatnonzero(first != event[:, -1]) if n_t else np.zeros(0, dtype=np.int64)
    if varying.size:
        flat[varying] += (base[event[varying]] - base[first[varying]][:, None]) * n_t
    flat = flat.ravel()
    n_k = used.size
    # energy is NaN in missing cells: they have keys of their own, whose sums are reset below
    sums = np.bincount(flat, weights=np.asarray(meters["energy"].values, dtype=float).ravel(),
                       minlength=n_k * n_t).reshape(n_k, n_t)
    counts = np.bincount(flat, minlength=n_k * n_t).reshape(n_k, n_t)
    missing = np.flatnonzero(quality.ravel() == cube.MISSING)
    d_flat = flat[missing]
    del flat, est3

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
    row = pd.Index(registration.mpans).get_indexer(mpans)
    out = registration.event[np.maximum(row, 0)] if registration.mpans.size else np.full((mpans.size, n_t), -1)
    out = np.array(out, dtype=np.int32)
    out[row < 0] = -1
    return out


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
    flat = (inverse[:, None] * n_t + np.arange(n_t)[None, :]).ravel()

    def collapse(values):
        return np.bincount(flat, weights=values[active].ravel(), minlength=n_out * n_t).reshape(n_out, n_t)

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
    count = collapse(counts.astype(float)).astype(np.int32)
    dflt = collapse(default_n.astype(float)).astype(np.int32)
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
                 estimated_share: float = 0.1, missing_share: float = 0.01) -> dict:
    """Synthetic inputs of :func:`aggregate` for the benchmark (no market generator needed).

    Parameters
    ----------
    mpan_days : int
        MPANs x settlement days; the MPAN count is ``mpan_days // days``.
    days : int
        Settlement days from 2026-03-23 (a week holding the 46-period day 2026-03-29).
    seed : int
    estimated_share, missing_share : float
        Shares of cells with an estimated / missing (to be defaulted) value [-].

    Returns
    -------
    dict
        Keyword arguments of :func:`aggregate`: ``meters``, ``registration``, ``line_loss_factors``
        (14 GSP groups, 8 suppliers, 2 LLFCs per GSP group, 2 % export MPANs, 1 % de-energised).
    """
    from tomlib import calendar
    from tomlib import registration as reg

    rng = np.random.default_rng(seed)
    n = max(mpan_days // days, 1)
    first = pd.Timestamp("2026-03-23")
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
    u = rng.random((n, times.size))
    quality = np.where(u < missing_share, cube.MISSING,
                       np.where(u < missing_share + estimated_share, cube.QUALITY_CODES["E"],
                                cube.QUALITY_CODES["A"])).astype(np.uint8)
    energy[quality == cube.MISSING] = np.nan
    meters = cube.meter_cube(energy, times, mpans, standing, quality=quality)
    events = reg.initial_events(meters, times[0], times[0] - pd.Timedelta(days=30))
    events.loc[rng.random(n) < 0.01, "energised"] = False
    registration = reg.in_force(events, mpans, times)
    llfcs = np.unique(llfc)
    llf = xr.DataArray(1.0 + rng.uniform(0.01, 0.09, (llfcs.size, times.size)), dims=("llfc", "time"),
                       coords={"llfc": llfcs, "time": times.to_numpy()}, attrs={"units": "-"})
    return {"meters": meters, "registration": registration, "line_loss_factors": llf}
