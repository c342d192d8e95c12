"""Volume Allocation Service (VAS, mhhs-domain.md §2.11): GSP group correction and BM unit volumes.

GSP group correction [INF algebra, sourced constraints; §2.11 and Q1]
---------------------------------------------------------------------
For one GSP group H, period j and direction (import: AI CCCs, export: AE CCCs), with ``U_n`` the
uncorrected volume of aggregate n (consumption or losses CCC), ``w_n`` its CCC's scaling weight
(data: :func:`tomlib.reference.gsp_correction_scaling_weights`) and ``T`` the direction's take::

    CF  = 1 + (T - sum_n U_n) / sum_n (w_n x U_n)        # GSP group correction factor
    C_n = U_n x (1 + (CF - 1) x w_n)                     # corrected volume
    =>  sum_n C_n = T

With w = 1 for some CCCs and 0 for others this is the classic ``CF = (T - sum U_fixed) / sum
U_corrected``. Every GSP group x period x direction has its own factor.

Import and export takes
-----------------------
The market gives one *net* GSP group take per GSP group and period (GSPGT = imports - exports +
unaccounted, F-10). MHHS publishes separate import and export factors (F-13), so the net take is
split into an import and an export take by a documented rule (``take_split``, [INF]):

- ``"export_metered"`` (default): export take = the uncorrected export volumes (losses included),
  import take = net take + export take. All of the residual is corrected on import (export GCF
  = 1): the synthetic market's unaccounted energy (theft, unmetered load) is import-side.
- ``"weighted"``: the residual R = net take - (sum U_import - sum U_export) is shared in
  proportion to the correctable volumes: with lambda = R / (sum wU_import + sum wU_export),
  import take = sum U_import + lambda x sum wU_import and export take = sum U_export - lambda x
  sum wU_export, i.e. import CF = 1 + lambda, export CF = 1 - lambda (understated imports and
  overstated exports explain a positive residual alike).
- A take with a ``direction`` dimension (``import``/``export``) is used as it is.

Zero correctable volume (Q1)
----------------------------
Where ``sum w x U = 0`` (e.g. only weight-0 volume, or no settled MPAN at all in a GSP group) but
the take differs from ``sum U``, no factor can close the gap: the factor is set to 1, the cell is
flagged ``uncorrectable`` and the gap is kept as an explicit ``unallocated`` volume, so that
``sum corrected + unallocated = take`` still holds exactly and nothing disappears. A factor
outside ``gcf_range`` (default [0.9, 1.1], F-11) is flagged ``gcf_out_of_range``.

Allocation
----------
BM unit allocated volume per period = sum of the corrected volumes (consumption and losses) of
the BM unit's aggregates, import and export apart, net = import - export [kWh], positive numbers
(SAA's sign conventions and kWh -> MWh are not applied here). A BM unit belongs to one supplier
and one GSP group; a BM unit seen with two raises.

Dimensions of the result
------------------------
``aggregate`` (the aggregation's rows, same coordinates), ``time``, ``gsp_group_id``,
``direction`` ("import" = AI, "export" = AE) and ``bm_unit_id`` (coordinates
``bm_unit_gsp_group``, ``bm_unit_supplier``); GSP-level dimensions are not called ``gsp_group``
because that name is a coordinate of ``aggregate`` (as of ``mpan`` in a meter cube).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from tomlib import cube

__all__ = [
    "DIRECTIONS",
    "GCF_RANGE",
    "TAKE_SPLITS",
    "allocate",
    "bench_inputs",
    "correct",
]

DIRECTIONS = ("import", "export")
_MQ_OF = {"import": "AI", "export": "AE"}
TAKE_SPLITS = ("export_metered", "weighted")
#: Range of GSP group correction factors Elexon treats as reasonable (F-11, [SRC]).
GCF_RANGE = (0.9, 1.1)
#: Correctable volumes smaller than this are treated as none [kWh]: dividing the residual by a
#: vanishing volume gives factors that overflow to infinity instead of saying "nothing to correct".
MIN_CORRECTABLE_KWH = 1e-9


def correct(uncorrected, weights, take, min_correctable: float = MIN_CORRECTABLE_KWH):
    """GSP group correction of one set of volumes (one GSP group, direction and period, or many).

    Parameters
    ----------
    uncorrected : array-like, shape (n, ...)
        Uncorrected volume per CCC row [kWh]; trailing dims broadcast with ``take``.
    weights : array-like, shape (n,)
        Scaling weight of each row [-].
    take : array-like, shape (...)
        The take the corrected volumes must sum to [kWh].
    min_correctable : float
        Correctable volume ``|sum w x U|`` at or below which nothing is corrected [kWh].

    Returns
    -------
    gcf : ndarray, shape (...)
        Correction factor [-]; 1 where the correctable volume ``sum w x U`` is (about) 0.
    corrected : ndarray, shape (n, ...)
        Corrected volumes [kWh].
    unallocated : ndarray, shape (...)
        ``take - sum corrected`` [kWh]: 0 except where the correctable volume is 0 and the take
        differs from the uncorrected total.

    Examples
    --------
    The constructed case of mhhs-domain.md §5 (HH weight 0, NHH and UMS weight 1):

    >>> gcf, c, _ = correct([400.0, 550.0, 30.0], [0.0, 1.0, 1.0], 1000.0)
    >>> round(float(gcf), 7), [round(float(x), 6) for x in c]
    (1.0344828, [400.0, 568.965517, 31.034483])
    """
    u = np.asarray(uncorrected, dtype=float)
    w = np.asarray(weights, dtype=float).reshape((-1,) + (1,) * (u.ndim - 1))
    t = np.asarray(take, dtype=float)
    total = u.sum(axis=0)
    correctable = (w * u).sum(axis=0)
    ok = np.abs(correctable) > min_correctable
    gcf = 1.0 + np.divide(t - total, correctable, out=np.zeros(np.broadcast(t, total).shape), where=ok)
    corrected = u * (1.0 + (gcf - 1.0) * w)
    unallocated = np.where(ok, 0.0, t - total)
    return gcf, corrected, unallocated


def _sum(flat: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    # float even when there is nothing to sum (bincount of nothing is integer)
    return np.bincount(flat, weights=np.asarray(values, dtype=float).ravel(), minlength=size).astype(float)


def _weights(aggregates: xr.Dataset, weights: pd.Series | None) -> np.ndarray:
    from tomlib import reference

    w = reference.gsp_correction_scaling_weights() if weights is None else weights
    ccc = np.asarray(aggregates["ccc"].values, dtype=str)
    out = pd.Series(w).reindex(ccc)
    if out.isna().any():
        missing = sorted(set(ccc[out.isna().to_numpy()]))
        raise ValueError(f"allocate: no GSP group correction scaling weight for ccc {', '.join(missing)}")
    return out.to_numpy(dtype=float)


def _take_by_group(take: xr.DataArray, groups: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Take (group, [direction,] time) in the given group and time order; raise naming a missing group."""
    dim = "gsp_group" if "gsp_group" in take.dims else "gsp_group_id"
    if dim not in take.dims or "time" not in take.dims:
        raise ValueError(f"gsp_group_take must have dims (gsp_group, time), got {take.dims}")
    known = pd.Index(np.asarray(take[dim].values, dtype=str))
    pos = known.get_indexer(groups)
    if (pos < 0).any():
        raise ValueError(f"allocate: no GSP group take for GSP group {groups[pos < 0][0]} "
                         f"(the take covers {', '.join(known)})")
    t_pos = pd.Index(np.asarray(take["time"].values, dtype="datetime64[ns]")).get_indexer(times)
    if (t_pos < 0).any():
        raise ValueError(f"allocate: the GSP group take has no value for period {pd.Timestamp(times[t_pos < 0][0])} UTC")
    order = (dim, "direction", "time") if "direction" in take.dims else (dim, "time")
    if "direction" in take.dims:
        take = take.sel(direction=list(DIRECTIONS))
    values = np.asarray(take.transpose(*order).values, dtype=float)[pos][..., t_pos]
    bad = ~np.isfinite(values)
    if bad.any():
        idx = np.argwhere(bad)[0]
        raise ValueError(f"allocate: GSP group take of GSP group {groups[idx[0]]} is missing (not finite) in "
                         f"period {pd.Timestamp(times[idx[-1]])} UTC")
    return values


def allocate(aggregates: xr.Dataset, gsp_group_take: xr.DataArray, *, weights: pd.Series | None = None,
             take_split: str = "export_metered", gcf_range: tuple[float, float] = GCF_RANGE) -> xr.Dataset:
    """GSP group correction of aggregated volumes and BM unit allocation.

    Parameters
    ----------
    aggregates : Dataset
        From :func:`tomlib.services.aggregation.aggregate`: ``energy(aggregate, time)`` [kWh] with
        coordinates ``gsp_group``, ``supplier``, ``bm_unit``, ``ccc``, ``measurement_quantity``.
    gsp_group_take : DataArray
        Net take [kWh], dims (gsp_group, time) — or (gsp_group, direction, time) for separate
        import and export takes. Must cover every GSP group of ``aggregates`` and every period.
    weights : Series, optional
        Scaling weight per CCC id [-]; default the reference table.
    take_split : {"export_metered", "weighted"}
        How a net take is split into import and export takes (module docstring).
    gcf_range : (float, float)
        Factors outside are flagged [-].

    Returns
    -------
    Dataset
        ``uncorrected``, ``corrected(aggregate, time)`` [kWh] with coordinate ``weight``;
        ``gcf``, ``take``, ``uncorrected_total``, ``correctable_volume``, ``corrected_total``,
        ``unallocated(gsp_group_id, direction, time)``; ``gcf_out_of_range``,
        ``uncorrectable`` (bool, same dims); ``gsp_group_take(gsp_group_id, time)`` [kWh] (net);
        ``allocated_import``, ``allocated_export``, ``allocated_net(bm_unit_id, time)`` [kWh].

    Raises
    ------
    ValueError
        Missing take or weight (naming the GSP group / CCC), an unknown ``take_split``, a BM unit
        of two suppliers or GSP groups.
    """
    if take_split not in TAKE_SPLITS:
        raise ValueError(f"take_split must be one of {TAKE_SPLITS}, got {take_split!r}")
    times = np.asarray(aggregates["time"].values, dtype="datetime64[ns]")
    n_t = times.size
    u = np.asarray(aggregates["energy"].transpose("aggregate", "time").values, dtype=float)
    w = _weights(aggregates, weights)
    agg_group = np.asarray(aggregates["gsp_group"].values, dtype=str)
    take_dim = "gsp_group" if "gsp_group" in gsp_group_take.dims else "gsp_group_id"
    groups = np.union1d(agg_group, np.asarray(gsp_group_take[take_dim].values, dtype=str)) \
        if take_dim in gsp_group_take.dims else np.unique(agg_group)
    take_values = _take_by_group(gsp_group_take, groups, times)
    mq = np.asarray(aggregates["measurement_quantity"].values, dtype=str)
    unknown = sorted(set(mq) - {"AI", "AE"})
    if unknown:
        raise ValueError(f"allocate: measurement quantity {unknown} is neither import (AI) nor export (AE)")
    direction = (mq == "AE").astype(np.int64)
    s_idx = np.searchsorted(groups, agg_group) * 2 + direction  # set = (group, direction)
    n_s = groups.size * 2
    flat = (s_idx[:, None] * n_t + np.arange(n_t)[None, :]).ravel()
    total = _sum(flat, u, n_s * n_t).reshape(groups.size, 2, n_t)
    wu = _sum(flat, w[:, None] * u, n_s * n_t).reshape(groups.size, 2, n_t)

    if take_values.ndim == 3:
        take = take_values
    else:
        take = np.empty((groups.size, 2, n_t))
        if take_split == "export_metered":
            take[:, 1] = total[:, 1]
        else:
            resid = take_values - (total[:, 0] - total[:, 1])
            both = wu[:, 0] + wu[:, 1]
            both_ok = np.abs(both) > MIN_CORRECTABLE_KWH
            lam = np.divide(resid, both, out=np.zeros_like(resid), where=both_ok)
            take[:, 1] = total[:, 1] - lam * wu[:, 1]
        take[:, 0] = take_values + take[:, 1]

    ok = np.abs(wu) > MIN_CORRECTABLE_KWH
    gcf = np.where(ok, 1.0 + np.divide(take - total, wu, out=np.zeros_like(wu), where=ok), 1.0)
    unallocated = np.where(ok, 0.0, take - total)
    factor = gcf.reshape(n_s, n_t)[s_idx]  # (aggregate, time)
    corrected = u * (1.0 + (factor - 1.0) * w[:, None])
    corrected_total = _sum(flat, corrected, n_s * n_t).reshape(groups.size, 2, n_t)
    lo, hi = gcf_range
    out_of_range = ok & ((gcf < lo) | (gcf > hi))
    uncorrectable = ~ok & (unallocated != 0)

    gdims = ("gsp_group_id", "direction", "time")
    ds = xr.Dataset(
        {
            "uncorrected": (("aggregate", "time"), u, {"units": "kWh", "long_name": "uncorrected volume"}),
            "corrected": (("aggregate", "time"), corrected, {"units": "kWh", "long_name": "corrected volume"}),
            "gcf": (gdims, gcf, {"units": "-", "long_name": "GSP group correction factor"}),
            "take": (gdims, take, {"units": "kWh", "long_name": "take of the direction"}),
            "uncorrected_total": (gdims, total, {"units": "kWh", "long_name": "sum of uncorrected volumes"}),
            "correctable_volume": (gdims, wu, {"units": "kWh", "long_name": "sum of weight x uncorrected volume"}),
            "corrected_total": (gdims, corrected_total, {"units": "kWh", "long_name": "sum of corrected volumes"}),
            "unallocated": (gdims, unallocated, {"units": "kWh",
                                                 "long_name": "take left unallocated (no correctable volume)"}),
            "gcf_out_of_range": (gdims, out_of_range, {"units": "1", "range": list(gcf_range),
                                                       "long_name": "factor outside the reasonable range"}),
            "uncorrectable": (gdims, uncorrectable, {"units": "1",
                                                     "long_name": "take differs but nothing is correctable"}),
            "gsp_group_take": (("gsp_group_id", "time"), take[:, 0] - take[:, 1],
                               {"units": "kWh", "long_name": "net GSP group take"}),
        },
        coords={
            "time": ("time", times, dict(cube.TIME_ATTRS)),
            "gsp_group_id": ("gsp_group_id", groups),
            "direction": ("direction", np.array(DIRECTIONS)),
            **{c: aggregates[c].variable for c in aggregates.coords if aggregates[c].dims == ("aggregate",)},
            "weight": ("aggregate", w, {"units": "-", "long_name": "GSP group correction scaling weight"}),
        },
        attrs={"take_split": take_split},
    )
    ds = ds.merge(_bm_units(aggregates, corrected, direction, times))
    return cube.add_settlement_coords(ds)


def _bm_units(aggregates: xr.Dataset, corrected: np.ndarray, direction: np.ndarray, times) -> xr.Dataset:
    bmu = np.asarray(aggregates["bm_unit"].values, dtype=str)
    sup = np.asarray(aggregates["supplier"].values, dtype=str)
    grp = np.asarray(aggregates["gsp_group"].values, dtype=str)
    code, units = pd.factorize(bmu, sort=True)
    units = np.asarray(units, dtype=str)
    for name, values in (("supplier", sup), ("GSP group", grp)):
        v_code, v_uniques = pd.factorize(values)
        width = max(len(v_uniques), 1)
        seen = np.bincount(np.unique(code.astype(np.int64) * width + v_code) // width, minlength=units.size)
        if (seen > 1).any():
            b = units[int(np.argmax(seen > 1))]
            raise ValueError(f"allocate: BM unit {b} is registered to more than one {name}: "
                             f"{sorted(set(values[bmu == b].tolist()))}")
    first = np.zeros(units.size, dtype=np.int64)
    first[code[::-1]] = np.arange(code.size)[::-1]
    n_b, n_t = units.size, len(times)
    flat = ((code.astype(np.int64) * 2 + direction)[:, None] * n_t + np.arange(n_t)[None, :]).ravel()
    by = _sum(flat, corrected, n_b * 2 * n_t).reshape(n_b, 2, n_t)
    dims = ("bm_unit_id", "time")
    return xr.Dataset(
        {
            "allocated_import": (dims, by[:, 0], {"units": "kWh", "long_name": "BM unit allocated import volume"}),
            "allocated_export": (dims, by[:, 1], {"units": "kWh", "long_name": "BM unit allocated export volume"}),
            "allocated_net": (dims, by[:, 0] - by[:, 1], {"units": "kWh",
                                                          "long_name": "BM unit allocated volume, import - export"}),
        },
        coords={"bm_unit_id": units, "bm_unit_supplier": ("bm_unit_id", sup[first] if n_b else sup[:0]),
                "bm_unit_gsp_group": ("bm_unit_id", grp[first] if n_b else grp[:0]), "time": times},
    )


def bench_inputs(mpan_days: int = 1_000_000, days: int = 7, seed: int = 0, *, aggregates: xr.Dataset | None = None,
                 unaccounted: float = 0.02) -> dict:
    """Keyword arguments of :func:`allocate` for the benchmark: aggregates and a synthetic net take.

    Parameters
    ----------
    mpan_days, days, seed : int
        Size of the synthetic market aggregated first (:func:`tomlib.services.aggregation.bench_inputs`,
        not timed); ignored when ``aggregates`` is given.
    aggregates : Dataset, optional
        Use these aggregates instead.
    unaccounted : float
        Mean unaccounted energy as a fraction of the metered net volume [-].

    Returns
    -------
    dict
        ``aggregates`` (with ``attrs["meter_periods"]``: the MPAN x period cells behind them) and
        ``gsp_group_take`` (gsp_group, time) [kWh].
    """
    from tomlib.services import aggregation

    if aggregates is None:
        inputs = aggregation.bench_inputs(mpan_days=mpan_days, days=days, seed=seed)
        aggregates = aggregation.aggregate(**inputs)
        aggregates.attrs["meter_periods"] = int(inputs["meters"]["energy"].size)
    rng = np.random.default_rng(seed)
    sign = np.where(np.asarray(aggregates["measurement_quantity"].values) == "AE", -1.0, 1.0)
    net = (aggregates["energy"] * xr.DataArray(sign, dims="aggregate")).groupby("gsp_group").sum()
    take = net * (1.0 + unaccounted * rng.uniform(0.5, 1.5, net.shape))
    return {"aggregates": aggregates, "gsp_group_take": take.rename("gsp_group_take")}
