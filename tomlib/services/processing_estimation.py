"""Load shapes and the estimation steps of the Smart Processing Service.

Part of :mod:`tomlib.services.processing` (mhhs-domain.md §2.5 steps 4-7, §2.10). Everything is
vectorised over MPANs (or meter registers) x periods.

Load shapes in tomlib
---------------------
A load shape is an ``xarray.DataArray`` named ``load_shape``, dims ``(category, time)``, values
[kWh per MPAN per period] (F-16: the simple mean of the actual data of the category), with the
category keys as coordinates on ``category`` (:data:`CATEGORY_KEYS`) and, optionally,
``annual_total(category, time)`` [kWh/year] -- the LSS rolling annual total (IF023) -- and
``default_shape(category, time)`` (bool, IF022 ``defaultLoadShapeFlag``).

The estimation uses the shape **per unit of annual consumption**,
``r[c, j] = LS[c, j] / annual_total[c, j]`` [1/year]: the share of a year's consumption expected in
period j (§5 G-9: ``E_j = LS_j / T x AC``). Shaping an advance only needs ``r`` up to a factor, so
§2.5 step 4 is unchanged; using ``r`` keeps periods filled from different sources (own category,
national category, default) comparable. When the shape carries no ``annual_total`` (a window of
days cannot give a rolling annual total), it is estimated [INF] as the mean annual consumption of
the MPANs behind each value: the annual total of a mean shape is the mean of the annual
consumptions behind it.

Until the Load Shaping Service (issue 5) delivers shapes, :func:`interim_load_shapes` derives them
from the validated actual HH data the processing service itself holds, and says so in the attrs.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import xarray as xr

from tomlib import calendar as cal
from tomlib import reference
from tomlib.services._processing_kernel import masked_group_sums
from tomlib.services._processing_keys import _codes, str_codes

__all__ = [
    "CATEGORY_KEYS",
    "DAYS_PER_YEAR",
    "INTERIM_SOURCE",
    "category_labels",
    "column_major",
    "expected_cumulative",
    "group_sum",
    "hh_history",
    "interim_load_shapes",
    "one_day_without_repeats",
    "per_mpan",
    "read_rate_history",
    "shape_advance",
    "shape_ratio",
    "shaped_spans",
    "span_of_cells",
]

#: Standing data that make a load-shape category (the keys of IF022/IF023 that tomlib models).
CATEGORY_KEYS = ("gsp_group", "connection_type", "market_segment", "domestic", "measurement_quantity")
#: Mean days per year, for flat defaults [days/year].
DAYS_PER_YEAR = 365.25
#: attrs["source"] of interim shapes.
INTERIM_SOURCE = ("interim: mean of the validated actual HH data held by the smart processing service at the "
                  "run's as-of instant (tomlib.services.processing_estimation.interim_load_shapes); stands in "
                  "for the Load Shaping Service (tomlib.services.load_shaping)")


def category_labels(standing: pd.DataFrame) -> np.ndarray:
    """Load-shape category of each MPAN, e.g. ``"_C|W|S|D|AI"`` (D domestic / N non-domestic).

    Parameters
    ----------
    standing : DataFrame
        One row per MPAN with the columns :data:`CATEGORY_KEYS`.
    """
    missing = [k for k in CATEGORY_KEYS if k not in standing.columns]
    if missing:
        raise ValueError(f"category_labels: standing data lack {missing}")
    # each key column as codes into its few distinct values; the labels are joined for the distinct
    # combinations only (the same strings, of the same width, as joining every row's)
    coded = [str_codes(standing[k]) for k in ("gsp_group", "connection_type", "market_segment")]
    coded.append((standing["domestic"].to_numpy(dtype=bool).astype(np.int64), np.array(["N", "D"])))
    coded.append(str_codes(standing["measurement_quantity"]))
    combined = np.zeros(len(standing), dtype=np.int64)
    for codes, distinct in coded:  # five key columns, a handful of values each
        combined = combined * max(distinct.size, 1) + codes
    _, first, row_of = np.unique(combined, return_index=True, return_inverse=True)
    out = coded[0][1][coded[0][0][first]]
    for codes, distinct in coded[1:]:
        out = np.char.add(np.char.add(out, "|"), distinct[codes[first]])
    return out.astype(str)[row_of.reshape(-1)]


def _national(labels: np.ndarray) -> np.ndarray:
    """Category label without its GSP group (``"*|W|S|D|AI"``)."""
    if labels.size == 0:
        return labels.astype(str)
    return np.char.add("*|", np.char.partition(labels.astype(str), "|")[:, 2]).astype(str)


def _label_codes(labels) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique labels, position of each label among them): ``np.unique(labels,
    return_inverse=True)``, hashing the labels packed into integers
    (:func:`tomlib.services._processing_keys._codes`) and sorting only the distinct ones."""
    lab = np.asarray(labels).astype(str)
    if lab.size == 0:
        return lab.copy(), np.zeros(0, dtype=np.int64)
    codes, n = _codes(lab)  # dense codes in order of first appearance
    _, first = np.unique(codes, return_index=True)
    distinct = lab[first]
    by_label = np.argsort(distinct, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[by_label] = np.arange(n)
    return distinct[by_label], rank[codes]


def _grouping_of(cats: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(cats.size))
    return cats, order, starts


def _grouping(labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sorted unique labels, row order that sorts the labels, start of each label in that order)."""
    return _grouping_of(*_label_codes(labels))


def column_major(a: np.ndarray, rows_per_block: int = 1024) -> np.ndarray:
    """A column-major (Fortran-order) copy of a 2-D array (the array itself when it is one already).

    Transposed block by block of rows, so that each block stays in cache: a plain transposing copy of
    a block's ~10^5 MPANs x 48 periods is several times slower. ``np.add.reduceat`` along the rows of
    a column-major array sums each column's contiguous run (the same sums as over the row-major array,
    several times quicker); ``np.sum`` of one adds the cells column after column.
    """
    a = np.asarray(a)
    if a.ndim != 2 or a.flags.f_contiguous:
        return a
    out = np.empty((a.shape[1], a.shape[0]), dtype=a.dtype)
    for r in range(0, a.shape[0], rows_per_block):  # blocks of rows (~100 for 10^5 MPANs), not MPANs
        out[:, r:r + rows_per_block] = a[r:r + rows_per_block].T
    return out.T


def group_sum(labels: np.ndarray, values: np.ndarray, grouping=None) -> tuple[np.ndarray, np.ndarray]:
    """Sum the rows of ``values`` by label: (sorted unique labels, sums (n_label, ...)).

    Sorting and ``np.add.reduceat`` keep it exact and deterministic (a BLAS product would depend
    on the thread count), and no loop runs over MPANs. ``grouping`` (from ``_grouping(labels)``)
    saves sorting the labels again for several sums.
    """
    cats, order, starts = grouping if grouping is not None else _grouping(labels)
    v = np.asarray(values, dtype=float)
    if cats.size == 0:
        return cats, np.zeros((0,) + v.shape[1:])
    return cats, np.add.reduceat(v[order], starts, axis=0)


def _mean_by(labels, values, valid, weights=None, grouping=None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per label and period: mean of valid values, count, and mean of ``weights`` over the valid cells.

    The values are summed as :func:`group_sum` sums them (by
    :func:`~tomlib.services._processing_kernel.masked_group_sums` when every label has a row); the
    counts as integers, label by label (exact in any order).
    """
    cats, order, starts = grouping if grouping is not None else _grouping(labels)
    v = np.asarray(values, dtype=float)
    if cats.size == 0:
        empty = np.zeros((0,) + v.shape[1:])
        return cats, empty, empty, (empty if weights is not None else None)
    if v.ndim == 2 and (np.diff(np.append(starts, order.size)) > 0).all():
        # one compiled pass over the rows in group order: the same sums, counts and weights as below
        total, total_w, count = masked_group_sums(
            v, valid, weights if weights is not None else np.zeros(len(v)), order, starts)
        n = count.astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            return cats, total / n, n, (total_w / n if weights is not None else None)
    ok = np.asarray(valid, dtype=bool)[order]
    ends = np.append(starts[1:], order.size)
    n = np.stack([ok[a:b].sum(axis=0) for a, b in zip(starts, ends)]).astype(float)  # a few labels
    # where(ok, ., 0) made period by period (rows of the transposed, column-major copies): the arrays
    # summed are column-major without transposing a float array more than once
    ok_t = column_major(ok).T
    total = np.add.reduceat(np.where(ok_t, column_major(v[order]).T, 0.0).T, starts, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / n
        if weights is None:
            return cats, mean, n, None
        wg = np.asarray(weights, dtype=float)[order]
        w = np.add.reduceat(np.where(ok_t, wg[None, :], 0.0).T, starts, axis=0) / n
    return cats, mean, n, w


def _clock_profile(values: np.ndarray, times: pd.DatetimeIndex, region: str = "england_wales") -> np.ndarray:
    """Fill NaN cells with the mean of the row's values at the same local clock half hour and day type
    (any day type when that has none)."""
    k = cal.local_clock_index(times)
    dates, _ = cal.from_utc(times)
    dt = pd.Index(list(cal.DAY_TYPES)).get_indexer(cal.day_types(dates.to_numpy(), region))
    out = values.copy()
    for key in (dt * 48 + k, k):  # by day type and clock half hour, then by clock half hour
        labels = key.astype(str)
        ok = np.isfinite(out)
        uniq, total = group_sum(labels, np.where(ok, out, 0.0).T)
        _, n = group_sum(labels, ok.T)
        inv = np.searchsorted(uniq, labels)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = (total / n).T
        out = np.where(ok, out, mean[:, inv])
    return out


def profile_class_ratio(profile_class, times: pd.DatetimeIndex, region: str = "england_wales") -> np.ndarray:
    """Share of a year's consumption per period from the 1997 profile class shapes [1/year].

    Parameters
    ----------
    profile_class : array-like of int
        Profile classes 1..8.
    times : DatetimeIndex
        UTC period starts.

    Returns
    -------
    ndarray (n, n_time)
        ``GAD x 0.5 h / annual energy of the class`` for the season, day type (bank holiday ->
        Sunday, [INF]) and local clock half hour of each period.
    """
    pc = np.asarray(profile_class, dtype=int)
    times = pd.DatetimeIndex(times)
    classes, of_row = np.unique(pc, return_inverse=True)
    by_class = _class_ratio(tuple(int(c) for c in classes), times.as_unit("ns").asi8.tobytes(), region)
    return by_class[of_row.reshape(-1)]  # a new array (the caller may write to it)


@functools.lru_cache(maxsize=8)
def _class_ratio(classes: tuple, time_key: bytes, region: str) -> np.ndarray:
    """:func:`profile_class_ratio` of each of a few profile classes (rows), for the period starts held in
    ``time_key`` (int64 ns): remembered, as every block of a day asks it again of the package's
    fixed 1997 shapes (their copy and selection cost more than the block's use of them)."""
    from tomlib.market import annual_profile_kwh

    shapes = reference.profile_class_shapes()
    pc = np.asarray(classes, dtype=int)
    times = pd.DatetimeIndex(np.frombuffer(time_key, dtype=np.int64).view("datetime64[ns]"))
    dates, _ = cal.from_utc(times)
    season = cal.profiling_seasons(dates.to_numpy())
    day_type = np.asarray(cal.day_types(dates.to_numpy(), region)).astype(object)
    day_type[day_type == "bank_holiday"] = "sunday"
    sp = cal.local_clock_index(times) + 1
    gad = shapes.sel(profile_class=xr.DataArray(pc, dims="row")).sel(
        season=xr.DataArray(season, dims="time"), day_type=xr.DataArray(day_type.astype(str), dims="time"),
        settlement_period=xr.DataArray(sp, dims="time")).transpose("row", "time").to_numpy()
    years = np.unique(pd.DatetimeIndex(dates).year)
    annual = np.mean([annual_profile_kwh(shapes, int(y), region).reindex(pc).to_numpy() for y in years], axis=0)
    out = gad * 0.5 / annual[:, None]
    out.flags.writeable = False
    return out


def interim_load_shapes(energy, valid, category, times, annual_consumption, *, include=None, min_mpans: int = 5,
                        region: str = "england_wales") -> xr.DataArray:
    """Load shapes from the actual HH data at hand, standing in for the Load Shaping Service.

    Parameters
    ----------
    energy : ndarray (n_mpan, n_time)
        HH values [kWh].
    valid : ndarray of bool (n_mpan, n_time)
        Validated actual values (estimates and refused values excluded, F-16).
    category : array-like of str (n_mpan,)
        :func:`category_labels` of each MPAN.
    times : DatetimeIndex
        UTC period starts.
    annual_consumption : array-like of float (n_mpan,)
        [kWh/year]; gives the annual total behind each value.
    include : array-like of bool (n_mpan,), optional
        MPANs whose data make the shape (default all). The processing service leaves out import
        MPANs with generation behind them: their import is demand net of generation, unlike the
        rest of the category, while their annual consumption is the household's demand -- in the
        demo market they import ~2/3 of it in spring, which would bias the shape's annual total.
    min_mpans : int
        [INF] Fewest MPANs with actual data for a category's own value (open question Q2).
    region : str
        Day-type region of the clock-profile fallback.

    Returns
    -------
    DataArray ``load_shape`` (category, time) [kWh per MPAN per period]
        Coordinates: the :data:`CATEGORY_KEYS` per category; ``annual_total(category, time)``
        [kWh/year]; ``n_mpans(category, time)``; ``default_shape(category, time)`` (bool) and
        ``shape_source(category, time)`` (0 own category, 1 national category without GSP group,
        2 the category's own clock profile, 3 the 1997 profile class 1/3, flat for export).
        ``attrs["source"]`` = :data:`INTERIM_SOURCE`.
    """
    e = np.asarray(energy, dtype=float)
    ok = np.asarray(valid, dtype=bool) & np.isfinite(e)
    lab = np.asarray(category).astype(str)
    ac = np.asarray(annual_consumption, dtype=float)
    times = pd.DatetimeIndex(times)
    ok &= np.isfinite(ac)[:, None] & (ac > 0)[:, None]
    if include is not None:
        ok &= np.asarray(include, dtype=bool)[:, None]
    cats, codes = _label_codes(lab)
    # national categories: of the distinct labels only, then by row through the category
    nat_cats, to_nat = np.unique(_national(cats), return_inverse=True)
    to_nat = to_nat.reshape(-1)
    _, mean, n, total = _mean_by(None, e, ok, ac, grouping=_grouping_of(cats, codes))
    if cats.size and (np.bincount(to_nat, minlength=nat_cats.size) == 1).all():
        # each national category is one category (a block of one GSP group): the same rows in the same
        # order, so the same sums
        one = np.empty(nat_cats.size, dtype=np.int64)
        one[to_nat] = np.arange(cats.size)
        nat_mean, nat_n, nat_total = mean[one], n[one], total[one]
    else:
        _, nat_mean, nat_n, nat_total = _mean_by(None, e, ok, ac, grouping=_grouping_of(nat_cats, to_nat[codes]))
    own = n >= min_mpans
    nat = ~own & (nat_n[to_nat] >= min_mpans)
    r = np.where(own, mean / total, np.where(nat, nat_mean[to_nat] / nat_total[to_nat], np.nan))
    source = np.where(own, 0, np.where(nat, 1, 2)).astype(np.uint8)
    r = _clock_profile(r, times, region)
    keys = np.char.split(cats.astype(str), "|")
    key_cols = {k: np.array([p[i] for p in keys]) for i, k in enumerate(CATEGORY_KEYS)}
    export = key_cols["measurement_quantity"] == "AE"
    pc = np.where(key_cols["domestic"] == "D", 1, 3)
    last = profile_class_ratio(pc, times, region)
    last[export] = 1.0 / (DAYS_PER_YEAR * 48)
    missing = ~np.isfinite(r)
    source[missing] = 3
    r = np.where(missing, last, r)
    annual = np.where(own, total, np.where(nat, nat_total[to_nat], np.nan))
    # cells filled from a profile keep a level: the category's mean annual consumption behind its data
    cat_ac = pd.Series(ac).groupby(codes).mean().reindex(np.arange(cats.size)).to_numpy()
    annual = np.where(np.isfinite(annual), annual, cat_ac[:, None])
    annual = np.where(np.isfinite(annual), annual, 1.0)
    da = xr.DataArray(
        r * annual, dims=("category", "time"), name="load_shape",
        coords={"category": cats, "time": times.to_numpy(),
                "gsp_group": ("category", key_cols["gsp_group"]),
                "connection_type": ("category", key_cols["connection_type"]),
                "market_segment": ("category", key_cols["market_segment"]),
                "domestic": ("category", key_cols["domestic"] == "D"),
                "measurement_quantity": ("category", key_cols["measurement_quantity"]),
                "annual_total": (("category", "time"), annual, {"units": "kWh/year"}),
                "n_mpans": (("category", "time"), n.astype(np.int64)),
                "default_shape": (("category", "time"), source > 0),
                "shape_source": (("category", "time"), source)},
        attrs={"units": "kWh", "long_name": "load shape: mean energy per MPAN in the period",
               "source": INTERIM_SOURCE, "interim": 1, "min_mpans": int(min_mpans)})
    return da


def shape_ratio(shapes: xr.DataArray, category, times, energy=None, valid=None,
                annual_consumption=None) -> np.ndarray:
    """Per MPAN and period, the share of a year's consumption the shape expects, ``LS / annual_total``.

    Parameters
    ----------
    shapes : DataArray
        ``load_shape`` (category, time) as described in the module docstring.
    category : array-like of str (n_mpan,)
        Category of each MPAN (:func:`category_labels`).
    times : DatetimeIndex
        Periods wanted; the shape must hold every one.
    energy, valid, annual_consumption : optional
        Used to estimate the annual total when ``shapes`` has no ``annual_total`` coordinate.

    Returns
    -------
    ndarray (n_mpan, n_time) [1/year]

    Raises
    ------
    ValueError
        Naming a category or period the shape lacks.
    """
    lab = np.asarray(category).astype(str)
    if tuple(shapes.dims) != ("category", "time"):
        shapes = shapes.transpose("category", "time")
    cats = np.asarray(shapes["category"].values).astype(str)
    distinct, code = _label_codes(lab)  # looked up once per distinct label
    rows = pd.Index(cats).get_indexer(distinct)[code]
    if (rows < 0).any():
        raise ValueError(f"load shapes lack category {lab[rows < 0][0]!r} (have {sorted(set(cats))[:6]} ...)")
    t = np.asarray(pd.DatetimeIndex(times).values, dtype="datetime64[ns]")
    cols = pd.Index(np.asarray(shapes["time"].values, dtype="datetime64[ns]")).get_indexer(t)
    if (cols < 0).any():
        raise ValueError(f"load shapes lack the period starting {pd.Timestamp(t[cols < 0][0])} (UTC)")
    ls = np.asarray(shapes.values, dtype=float)
    if "annual_total" in shapes.coords:
        total = np.broadcast_to(np.asarray(shapes["annual_total"].values, dtype=float).reshape(len(cats), -1),
                                ls.shape)
    else:
        if energy is None or valid is None or annual_consumption is None:
            raise ValueError("load shapes without annual_total need energy, valid and annual_consumption")
        # [INF] the annual total of a mean shape is the mean annual consumption of the MPANs behind it
        n_valid = np.asarray(valid, dtype=bool).sum(axis=1)
        ac = np.asarray(annual_consumption, dtype=float)
        ok = (n_valid > 0) & np.isfinite(ac)
        num = pd.Series(ac[ok] * n_valid[ok]).groupby(lab[ok]).sum()
        den = pd.Series(n_valid[ok].astype(float)).groupby(lab[ok]).sum()
        total = np.broadcast_to((num / den).reindex(cats).to_numpy()[:, None], ls.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = ls / total
    if cols.size == r.shape[1] and (cols == np.arange(cols.size)).all():
        return r[rows]  # the shape's own periods, in order
    return r[rows][:, cols]


def per_mpan(values_by_register: np.ndarray, mpan_row: np.ndarray, n_mpan: int) -> np.ndarray:
    """Put register-level values (NaN = none) onto MPANs; the registers of a meter record disjoint periods.

    A loop over the rank of a register within its MPAN (at most a few: two meters of two or four
    registers), each step one vectorised assignment.
    """
    v = np.asarray(values_by_register, dtype=float)
    rows = np.asarray(mpan_row, dtype=np.int64)
    out = np.full((n_mpan, v.shape[1]), np.nan)
    rank = pd.Series(rows).groupby(rows).cumcount().to_numpy() if rows.size else rows
    for k in range(int(rank.max()) + 1 if rank.size else 0):
        sel = np.flatnonzero(rank == k)
        vs = v[sel]
        # the first register of each MPAN meets rows still all NaN
        cur = np.nan if k == 0 else out[rows[sel]]
        out[rows[sel]] = np.where(np.isfinite(vs), vs, cur)
    return out


def expected_cumulative(ratio_by_register: np.ndarray, active: np.ndarray, annual_consumption,
                        known_by_register: np.ndarray | None = None) -> np.ndarray:
    """Cumulative expected energy of each register at each period boundary [kWh].

    Expected energy of a period: the actual HH value where the MPAN has a validated one (a DCC
    meter's register must agree with its own HH data), else annual consumption x shape ratio.

    Parameters
    ----------
    ratio_by_register : ndarray (n_register, n_time)
        Shape ratio ``r`` of the register's MPAN [1/year].
    active : ndarray of bool (n_register, n_time)
        Periods the register records.
    annual_consumption : array-like (n_register,)
        Annual consumption of the register's MPAN [kWh/year].
    known_by_register : ndarray (n_register, n_time), optional
        Validated actual HH energy of the register's MPAN, NaN where none [kWh].

    Returns
    -------
    ndarray (n_register, n_time + 1)
        0 at the first boundary.
    """
    e = np.nan_to_num(ratio_by_register) * np.nan_to_num(np.asarray(annual_consumption, dtype=float))[:, None]
    if known_by_register is not None:
        e = np.where(np.isfinite(known_by_register), known_by_register, e)
    e = np.where(active, e, 0.0)
    out = np.zeros((e.shape[0], e.shape[1] + 1))
    np.cumsum(e, axis=1, out=out[:, 1:])
    return out


def shape_advance(advance: float, weights) -> np.ndarray:
    """Spread an advance over periods in proportion to the load shape (§2.5 step 4).

    ``E_j = A x w_j / sum(w)``; if every weight is 0 the advance is spread evenly (a flat shape),
    so the periods always sum to the advance.

    Parameters
    ----------
    advance : float
        Register advance [kWh].
    weights : array-like of float
        Load shape (or shape ratio) of the periods, >= 0.

    Returns
    -------
    ndarray
        Energy per period [kWh]; sums to ``advance``.
    """
    w = np.asarray(weights, dtype=float)
    if w.size == 0:
        raise ValueError("shape_advance: no periods to shape the advance over")
    if (w < 0).any() or not np.isfinite(w).all():
        raise ValueError("shape_advance: load shape weights must be finite and >= 0")
    s = w.sum()
    return advance * (w / s if s > 0 else np.full(w.size, 1.0 / w.size))


def span_of_cells(register: np.ndarray, b1: np.ndarray, b2: np.ndarray, n_register: int,
                  n_time: int) -> np.ndarray:
    """For each (register, period), the span (row of the spans) that covers it, or -1.

    Spans of one register do not overlap (consecutive reads); period t is covered when
    ``b1 <= t < b2``. A difference array (+(s+1) at b1, -(s+1) at b2) summed along time marks each
    span's periods in O(registers x periods).
    """
    mark = np.zeros((n_register, n_time + 1), dtype=np.int64)
    s = np.arange(np.size(register), dtype=np.int64) + 1
    np.add.at(mark, (np.asarray(register, dtype=np.int64), np.asarray(b1, dtype=np.int64)), s)
    np.add.at(mark, (np.asarray(register, dtype=np.int64), np.asarray(b2, dtype=np.int64)), -s)
    return np.cumsum(mark, axis=1)[:, :n_time] - 1


def shaped_spans(spans: pd.DataFrame, ratio_by_register: np.ndarray, active: np.ndarray,
                 known_by_register: np.ndarray,
                 resolution_kwh: float = 1.0) -> tuple[np.ndarray, pd.DataFrame, np.ndarray]:
    """Energy of the periods between bounding reads that have no actual value (§2.5 step 4 / 6b).

    For a span of register r with advance A, the actual energy K of its periods that have actual
    HH values is subtracted and the remainder ``A - K`` is shaped over the periods without:
    ``E_j = (A - K) x r_j / sum r`` over the periods of the span the register records. The register
    shows whole kWh, so a remainder within ``-resolution_kwh`` of zero counts as zero; a more
    negative one means the advance and the HH data disagree: the span is not used.

    Parameters
    ----------
    spans : DataFrame
        ``register``, ``b1``, ``b2``, ``advance`` [kWh] (from
        :func:`tomlib.services.processing_reads.validate_reads`).
    ratio_by_register : ndarray (n_register, n_time)
        Shape ratio of the register's MPAN [1/year].
    active : ndarray of bool (n_register, n_time)
        Periods each register records (its TPR, while its meter is installed).
    known_by_register : ndarray (n_register, n_time)
        Actual HH energy of the register's MPAN where it has a validated value, NaN elsewhere [kWh].
    resolution_kwh : float
        Register resolution [kWh].

    Returns
    -------
    values : ndarray (n_register, n_time)
        Shaped energy [kWh] in the unknown recorded periods of usable spans, NaN elsewhere.
    spans : DataFrame
        Input plus ``known`` [kWh], ``remainder`` [kWh], ``n_unknown``, ``weight`` (sum of r over
        the unknown periods), ``rate`` (advance / sum of r over all recorded periods of the span,
        the annualised consumption it implies [kWh/year]) and ``status``: ``"shaped"``,
        ``"all_actual"`` (nothing to fill) or ``"inconsistent"``.
    cell_span : ndarray of int (n_register, n_time)
        Row of ``spans`` whose advance filled each cell, -1 elsewhere.
    """
    reg_all = spans["register"].to_numpy(dtype=np.int64)
    b1 = spans["b1"].to_numpy(dtype=np.int64)
    b2 = spans["b2"].to_numpy(dtype=np.int64)
    adv = spans["advance"].to_numpy(dtype=float)
    n_r_all, n_t = np.shape(active)
    n_s = reg_all.size
    # only the rows of registers with a span hold anything: work on those (in register order, so every
    # sum below adds the same values in the same order), put them back in the full arrays at the end
    rows = np.unique(reg_all)
    reg = np.searchsorted(rows, reg_all)
    n_r = rows.size
    active = np.asarray(active, dtype=bool)[rows]
    known_by_register = np.asarray(known_by_register)[rows]
    ratio_by_register = np.asarray(ratio_by_register)[rows]
    known = np.isfinite(known_by_register) & active
    unknown = active & ~known
    ratio = np.where(np.isfinite(ratio_by_register), ratio_by_register, 0.0)
    cell_span = span_of_cells(reg, b1, b2, n_r, n_t) if n_s else np.full((n_r, n_t), -1, dtype=np.int64)
    inside = cell_span >= 0
    at = np.flatnonzero(inside.ravel())  # the cells of some span
    s_in = cell_span.ravel()[at]

    def per_span(values: np.ndarray) -> np.ndarray:
        # sums by span with bincount (plain summation, no cumulative-sum differences: exact enough
        # that the shaped periods add up to the remainder even when the shape spans many magnitudes)
        return np.bincount(s_in, weights=values, minlength=n_s)

    kn, un, ac = known.ravel()[at], unknown.ravel()[at], active.ravel()[at]
    rt = ratio.ravel()[at]
    k_sum = per_span(np.where(kn, np.asarray(known_by_register).ravel()[at], 0.0))
    w_unknown = per_span(np.where(un, rt, 0.0))
    w_all = per_span(np.where(ac, rt, 0.0))
    n_unknown = per_span(un.astype(float))
    remainder = adv - k_sum
    status = np.where(n_unknown == 0, "all_actual",
                      np.where(remainder < -float(resolution_kwh), "inconsistent", "shaped"))
    remainder = np.where(status == "shaped", np.maximum(remainder, 0.0), remainder)
    out = spans.copy()
    out["known"] = k_sum
    out["remainder"] = remainder
    out["n_unknown"] = n_unknown.astype(np.int64)
    out["weight"] = w_unknown
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        out["rate"] = np.where(w_all > 0, adv / w_all, np.nan)
    out["status"] = pd.array(status, dtype="str")
    if n_s == 0:
        return np.full((n_r_all, n_t), np.nan), out, np.full((n_r_all, n_t), -1, dtype=np.int64)
    s = np.maximum(cell_span, 0)
    use = inside & unknown & (status == "shaped")[s]
    s_use = cell_span[use]
    # shares of the span's largest shape value (no overflow however small the shape), flat if all 0;
    # normalised per span, then scaled: the periods of a span sum to its remainder
    top = np.zeros(n_s)
    np.maximum.at(top, s_use, ratio[use])
    share = np.zeros((n_r, n_t))
    share[use] = np.where(top[s_use] > 0, ratio[use] / np.where(top[s_use] > 0, top[s_use], 1.0), 1.0)
    total = np.bincount(s_use, weights=share[use], minlength=n_s)
    values = np.full((n_r, n_t), np.nan)
    values[use] = share[use] / total[s_use] * remainder[s_use]
    values_all = np.full((n_r_all, n_t), np.nan)
    values_all[rows] = values
    cell_all = np.full((n_r_all, n_t), -1, dtype=np.int64)
    cell_all[rows] = np.where(use, cell_span, -1)
    return values_all, out, cell_all


def read_rate_history(spans: pd.DataFrame, ratio_by_register: np.ndarray, active: np.ndarray,
                      fill: np.ndarray, boundary_days: np.ndarray, min_span_days: float = 3.0) -> np.ndarray:
    """Estimate from the register's own read history (§2.5 step 6c for read meters).

    The rate of the nearest usable span of the same register (the latest one ending at or before
    the period, else the first one after), ``rate = advance / sum r`` [kWh/year], times the shape
    ratio of the period: ``E_j = rate x r_j``.

    Parameters
    ----------
    spans : DataFrame
        From :func:`shaped_spans` (``register``, ``b1``, ``b2``, ``rate``, ``status``).
    ratio_by_register, active : ndarray (n_register, n_time)
    fill : ndarray of bool (n_register, n_time)
        Cells wanted.
    boundary_days : ndarray of float (n_time + 1,)
        Time of each period boundary [days since the window start].
    min_span_days : float
        Shortest span whose rate is used [days].

    Returns
    -------
    ndarray (n_register, n_time)
        [kWh], NaN where no usable span.
    """
    n_r, n_t = active.shape
    reg = spans["register"].to_numpy(dtype=np.int64)
    b1 = spans["b1"].to_numpy(dtype=np.int64)
    b2 = spans["b2"].to_numpy(dtype=np.int64)
    rate = spans["rate"].to_numpy(dtype=float)
    usable = (spans["status"].to_numpy(dtype=str) != "inconsistent") & np.isfinite(rate) & \
        ((boundary_days[b2] - boundary_days[b1]) >= min_span_days)
    reg, b1, b2, rate = reg[usable], b1[usable], b2[usable], rate[usable]
    out = np.full((n_r, n_t), np.nan)
    if reg.size == 0:
        return out
    cols = np.arange(n_t + 1)
    # latest span ending at or before each boundary: mark its end, carry it forward along time
    end_rate = np.full((n_r, n_t + 1), np.nan)
    end_rate[reg, b2] = rate
    pos = np.maximum.accumulate(np.where(np.isfinite(end_rate), cols, 0), axis=1)
    before = np.take_along_axis(end_rate, pos, axis=1)[:, :n_t]
    # first span starting at or after each boundary: mark its start, carry it backward
    start_rate = np.full((n_r, n_t + 1), np.nan)
    start_rate[reg, b1] = rate
    pos = np.minimum.accumulate(np.where(np.isfinite(start_rate), cols, n_t)[:, ::-1], axis=1)[:, ::-1]
    after = np.take_along_axis(start_rate, pos, axis=1)[:, :n_t]
    chosen = np.where(np.isfinite(before), before, after)
    return np.where(fill & active, chosen * ratio_by_register, np.nan)


def one_day_without_repeats(times) -> bool:
    """Whether the periods are of one settlement day and no local clock half hour occurs twice (any day
    but the 50-period one): :func:`hh_history` then has, for each period, only the MPAN's own value."""
    times = pd.DatetimeIndex(times)
    if len(times) == 0:
        return False
    k = cal.local_clock_index(times)
    return np.unique(cal.from_utc(times)[0].to_numpy()).size == 1 and np.unique(k).size == len(times)


def hh_history(energy: np.ndarray, valid: np.ndarray, times, region_of_mpan, *, window_days: int = 28,
               min_values: int = 1, bank_holiday_as: str = "sunday") -> np.ndarray:
    """Estimate from the MPAN's own HH history on days of the same type (§2.5 step 6c, F-34).

    For MPAN m, settlement day d and local clock half hour k: the mean of m's validated actual
    values at half hour k on the days of d's day type (weekday, Saturday, Sunday; bank holidays
    count as ``bank_holiday_as``) within ``window_days`` of d. Local clock half hours align a
    46- or 50-period day with the others (the 50-period day's repeated hour takes the mean twice).

    Parameters
    ----------
    energy : ndarray (n_mpan, n_time) [kWh]
    valid : ndarray of bool (n_mpan, n_time)
    times : DatetimeIndex
        UTC period starts (whole settlement days).
    region_of_mpan : array-like of str (n_mpan,)
        Bank-holiday region (``"england_wales"`` / ``"scotland"``).
    window_days : int
        Days either side of the day [days].
    min_values : int
        Fewest history values needed [-].

    Returns
    -------
    ndarray (n_mpan, n_time) [kWh], NaN where the history is too short.
    """
    times = pd.DatetimeIndex(times)
    e = np.where(valid, energy, 0.0)
    m, n_t = e.shape
    dates, _ = cal.from_utc(times)
    days, d_idx = np.unique(dates.to_numpy(), return_inverse=True)
    n_d = days.size
    k = cal.local_clock_index(times)
    col = d_idx * 48 + k
    if n_d == 1 and np.unique(k).size == n_t:  # one_day_without_repeats
        # one settlement day without a repeated clock half hour: each (day, half hour) holds one period,
        # so the mean below is of one value per cell -- computed in place, without spreading the values
        # over the 48 clock half hours and gathering them back (the same quotients)
        c1 = np.zeros((m, n_t))
        c1[:] = valid
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(c1 >= min_values, e / c1, np.nan)
    v = np.zeros((m, n_d * 48))
    c = np.zeros((m, n_d * 48))
    # each (day, clock half hour) once, except the repeated hour of a 50-period day: assign, then add
    _, first = np.unique(col, return_index=True)
    repeated = np.ones(n_t, dtype=bool)
    repeated[first] = False
    again = np.flatnonzero(repeated)  # the periods not first at their (day, half hour), in order
    v[:, col[first]] = e[:, first]
    c[:, col[first]] = valid[:, first]
    if again.size:
        v[:, col[again]] += e[:, again]
        c[:, col[again]] += valid[:, again]
    if n_d == 1:
        # one settlement day: every MPAN's window is that day, whatever its day type, so the mean of
        # its values at each clock half hour is the estimate (what the general path below computes
        # with sums over one day, which are exact)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(c >= min_values, v / c, np.nan)[:, k]
    v = v.reshape(m, n_d, 48)
    c = c.reshape(m, n_d, 48)
    regions = np.asarray(region_of_mpan).astype(str)
    kinds = {"weekday": 0, "saturday": 1, "sunday": 2}
    dt_of = np.zeros((m, n_d), dtype=np.int8)
    for region in np.unique(regions):  # two regions at most
        labels = np.asarray(cal.day_types(days, region)).astype(object)
        labels[labels == "bank_holiday"] = bank_holiday_as
        dt_of[regions == region] = np.array([kinds[x] for x in labels], dtype=np.int8)
    lo = np.maximum(np.arange(n_d) - int(window_days), 0)
    hi = np.minimum(np.arange(n_d) + int(window_days), n_d - 1) + 1
    est = np.full((m, n_d, 48), np.nan)
    whole = (lo == 0).all() and (hi == n_d).all()  # every window holds every day: one sum per day type
    for kind in kinds.values():  # three day types
        same = (dt_of == kind)[:, :, None]
        if whole:
            sv = np.einsum("mdk,md->mk", v, same[:, :, 0].astype(float))[:, None, :]
            sc = np.einsum("mdk,md->mk", c, same[:, :, 0].astype(float))[:, None, :]
        else:
            cv = np.concatenate([np.zeros((m, 1, 48)), np.cumsum(np.where(same, v, 0.0), axis=1)], axis=1)
            cc = np.concatenate([np.zeros((m, 1, 48)), np.cumsum(np.where(same, c, 0.0), axis=1)], axis=1)
            sv = cv[:, hi] - cv[:, lo]
            sc = cc[:, hi] - cc[:, lo]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(sc >= min_values, sv / sc, np.nan)
        est = np.where(same, mean, est)
    return est[:, d_idx, k]
