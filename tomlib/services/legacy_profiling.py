"""Legacy (pre-MHHS) profiling: the comparator that MHHS load shaping replaces.

Before MHHS, a non-half-hourly MPAN was settled on its Estimated Annual Consumption (EAC) spread over
the settlement periods by the profile coefficients of its **profile class** (F-25..F-29, F-34):
``E[m, j] = EAC[m] x PPC[pc(m), j]`` with ``PPC = GAD x 0.5 h / (annual energy of the class)``, GAD the
profile's group average demand for the day's season and day type (F-28) at the local half hour. Here
the 1997 profile class shapes (:func:`tomlib.reference.profile_class_shapes`) stand in for the
regression-based coefficients of the time ([INF]: the real D0018 coefficients came from regressions on
temperature and sunset, F-27), and the standing ``annual_consumption`` for the EAC; a bank holiday takes
the Sunday shape ([INF]: the 1997 profiles have no bank-holiday day type). The arithmetic is
:func:`tomlib.market.profile_class_energy`, the same the market generator uses: the shape is put on
settlement periods by local clock half hour, so the 46-period day lacks local 01:00-02:00 and the
50-period day has it twice, and a calendar year of periods sums to the EAC only up to that
difference (a few parts in 10^5).

Profile class of an MPAN: the market's ``profile_class`` coordinate where it is 1-8 (smart domestic
MPANs carry 1, smart non-domestic 3 or 4); otherwise 1 for domestic and 3 for non-domestic import
MPANs ([INF]). Export MPANs had no profile class (legacy export was settled on deemed or metered
half-hourly values), so they are not profiled: :func:`profiled` says which MPANs are.

Caveat for comparisons: the market makes the TRUE energy of smart non-domestic and advanced MPANs
from these same 1997 shapes (with noise), so the legacy profile is their expected value and wins by
construction there; domestic truth comes from real Low Carbon London households, a fair test.

Comparison with MHHS load shaping (:func:`estimate_accuracy`): on the MPAN-periods a run estimated,
the estimate from the run's load shapes (``AC x LS / annual_total``, §5 G-9) and the legacy estimate
(``EAC x PPC``) against the truth; and the shape alone, with each MPAN-day's true total known, as when
a register advance is spread over the day.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from tomlib import calendar as cal
from tomlib import cube, reference
from tomlib.market import profile_class_energy
from tomlib.services import load_shaping as lss

__all__ = [
    "DEFAULT_PROFILE_CLASS",
    "category_profiles",
    "estimate_accuracy",
    "legacy_energy",
    "profile_class_of",
    "profiled",
    "settle",
]

#: [INF] profile class of an import MPAN without one: domestic -> 1 (domestic unrestricted),
#: non-domestic -> 3 (non-domestic unrestricted) (F-25).
DEFAULT_PROFILE_CLASS = {"domestic": 1, "non_domestic": 3}


def profile_class_of(standing: Any, default: dict[str, int] | None = None) -> np.ndarray:
    """Profile class of each MPAN (0 = not profiled: export).

    Parameters
    ----------
    standing : DataFrame or Dataset
        Standing data indexed by MPAN (``domestic``, ``measurement_quantity``, optional
        ``profile_class``) or a meter cube.
    default : dict, optional
        Profile class for ``domestic`` / ``non_domestic`` import MPANs without one
        (default :data:`DEFAULT_PROFILE_CLASS`).

    Returns
    -------
    ndarray of int64 (n_mpan,)
    """
    d = {**DEFAULT_PROFILE_CLASS, **(default or {})}
    st = lss.standing_table(standing)
    dom = st["domestic"].to_numpy(dtype=bool)
    pc = np.where(dom, d["domestic"], d["non_domestic"]).astype(np.int64)
    if "profile_class" in st:
        given = pd.to_numeric(st["profile_class"], errors="coerce").to_numpy()
        pc = np.where((given >= 1) & (given <= 8), given, pc).astype(np.int64)
    return np.where(st["measurement_quantity"].to_numpy().astype(str) == "AI", pc, 0).astype(np.int64)


def profiled(standing: Any) -> np.ndarray:
    """Boolean mask of the MPANs legacy profiling can settle (import MPANs)."""
    return profile_class_of(standing) > 0


def legacy_energy(standing: Any, times, *, annual_consumption=None, profile_class=None) -> np.ndarray:
    """Legacy profiled energy ``EAC x PPC`` per MPAN and period [kWh].

    Parameters
    ----------
    standing : DataFrame or Dataset
        Standing data of the MPANs (GSP group gives the bank-holiday region).
    times : DatetimeIndex
        UTC period starts.
    annual_consumption : array-like (n_mpan,), optional
        EAC [kWh/year]; default the standing ``annual_consumption``.
    profile_class : array-like (n_mpan,), optional
        Default :func:`profile_class_of`.

    Returns
    -------
    ndarray (n_mpan, n_time)
        NaN for MPANs that are not profiled (export).
    """
    st = lss.standing_table(standing)
    times = pd.DatetimeIndex(times)
    pc = profile_class_of(st) if profile_class is None else np.asarray(profile_class, dtype=np.int64)
    ac = st["annual_consumption"].to_numpy(dtype=float) if annual_consumption is None else \
        np.asarray(annual_consumption, dtype=float)
    out = np.full((len(st), len(times)), np.nan)
    ok = pc > 0
    if ok.any() and len(times):
        year = int(cal.from_utc(times[:1])[0][0].year)
        out[ok] = profile_class_energy(reference.profile_class_shapes(), pc[ok], ac[ok],
                                       lss.regions_of(st["gsp_group"].to_numpy()[ok]), times, reference_year=year)
    return out


def settle(meters: xr.Dataset, mpans=None) -> xr.Dataset:
    """Settle MPANs the legacy way: a meter cube of ``EAC x PPC`` over the cube's periods.

    Parameters
    ----------
    meters : Dataset
        A meter cube (e.g. ``market.meters``) giving the standing data and the time axis.
    mpans : array-like of str, optional
        MPANs to settle; default every profiled (import) MPAN of ``meters``.

    Returns
    -------
    Dataset
        Meter cube: ``energy`` [kWh], quality ``E`` (an estimate), estimation reason ``NonSmart``,
        ``profile_class`` coordinate.

    Raises
    ------
    ValueError
        If an MPAN asked for is not in ``meters`` or has no profile class (export).
    """
    st = lss.standing_table(meters)
    mp = st.index.to_numpy().astype(str)[profiled(st)] if mpans is None else np.asarray(mpans).astype(str)
    rows = pd.Index(st.index.astype(str)).get_indexer(mp)
    if (rows < 0).any():
        raise ValueError(f"legacy_profiling.settle: MPAN {mp[rows < 0][0]} is not in the meter cube")
    sel = st.iloc[rows]
    pc = profile_class_of(sel)
    if (pc == 0).any():
        raise ValueError(f"legacy_profiling.settle: MPAN {mp[pc == 0][0]} has no profile class (export MPANs are "
                         "not profiled)")
    times = pd.DatetimeIndex(meters["time"].to_numpy())
    energy = legacy_energy(sel, times, profile_class=pc)
    out = cube.meter_cube(energy, times, mp, sel.assign(profile_class=pc),
                          quality=np.full(energy.shape, cube.QUALITY_CODES["E"], dtype=np.uint8),
                          estimation_reason=np.full(energy.shape, cube.ESTIMATION_REASONS["NonSmart"], np.uint8))
    out.attrs["source"] = "tomlib.services.legacy_profiling.settle: EAC x 1997 profile class coefficients"
    return out


def category_profiles(shapes: xr.Dataset, settled: Any, config: Any = None) -> xr.DataArray:
    """The legacy counterpart of each load shape: mean legacy energy per MPAN of the category [kWh].

    Parameters
    ----------
    shapes : Dataset
        Of :func:`tomlib.services.load_shaping.load_shapes` (categories and periods).
    settled : Dataset or SegmentResult
        The settled input of ``shapes`` (its MPANs make the categories).
    config : LoadShapeConfig, optional
        The config of ``shapes`` (category definition).

    Returns
    -------
    DataArray ``legacy_profile`` (category, time)
        Mean over the category's profiled MPANs of ``EAC x PPC``; NaN for a category without any
        (export).
    """
    cfg = lss.LoadShapeConfig.coerce(config)
    st = lss.standing_table(lss.as_cube(settled))
    times = pd.DatetimeIndex(shapes["time"].to_numpy())
    cats = shapes["category"].to_numpy().astype(str)
    code = pd.Index(cats).get_indexer(lss.category_of(st, cfg.definition))
    keep = code >= 0
    sums, counts, _ = lss.group_sums(legacy_energy(st[keep], times), code[keep], cats.size,
                                     chunk_cells=cfg.chunk_cells)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts
    return xr.DataArray(mean, dims=("category", "time"), coords={"category": cats, "time": times.to_numpy()},
                        name="legacy_profile", attrs={"units": "kWh", "long_name": "legacy profile: mean EAC x PPC "
                                                                                     "per MPAN of the category"})


_METHODS = {
    "settled": "MHHS settled value (processing)",
    "mhhs_ac": "MHHS load shape x AC",
    "legacy_ac": "legacy profile x EAC",
    "mhhs_day": "MHHS load shape, day total known",
    "legacy_day": "legacy profile, day total known",
}


def estimate_accuracy(settled: Any, shapes: xr.Dataset, market: Any, config: Any = None) -> pd.DataFrame:
    """Error against the truth of estimates made with MHHS load shapes and with legacy profiles.

    On the MPAN-periods that ``settled`` ESTIMATED (quality neither actual nor MISSING) of profiled
    (import) MPANs, five estimates: the settled value itself (what processing made, using reads and
    history where it had them); ``AC x LS[c, j] / annual_total[c, j]`` with the run's load shapes
    (§5 G-9); the legacy ``EAC x PPC[j]``; and, on the MPAN-days estimated in every period, each shape
    scaled to the MPAN-day's TRUE total (the shape error alone, as when spreading a register advance).
    AC = EAC = the standing ``annual_consumption`` for both, so only the shape differs.

    Parameters
    ----------
    settled : Dataset or SegmentResult
        The run's settled cube (the input of ``shapes``).
    shapes : Dataset
        Of :func:`tomlib.services.load_shaping.load_shapes` for the same run.
    market : Market
        The truth.
    config : LoadShapeConfig, optional
        The config of ``shapes``.

    Returns
    -------
    DataFrame
        One row per (group, method), group ``domestic`` / ``non-domestic`` / ``all``: ``mpan_periods``,
        ``true_kwh``, ``estimate_kwh``, ``mae_pct`` (sum |estimate - truth| / sum truth), ``bias_pct``,
        ``daily_mae_pct`` (absolute error of each MPAN-day's total over the estimated periods) [%].
    """
    cfg = lss.LoadShapeConfig.coerce(config)
    ds = lss.as_cube(settled)
    st = lss.standing_table(ds)
    times = pd.DatetimeIndex(ds["time"].to_numpy())
    truth = market.meters["energy"].sel(mpan=ds["mpan"].values, time=ds["time"].values).transpose(
        "mpan", "time").to_numpy()
    q = ds["quality"].transpose("mpan", "time").to_numpy()
    actual = np.isin(q, cube.quality_code(list(cfg.actual_quality)))
    est = ~actual & (q != cube.MISSING) & profiled(st)[:, None]
    lab = lss.category_of(st, cfg.definition)
    rows = pd.Index(shapes["category"].to_numpy().astype(str)).get_indexer(lab)
    if (rows < 0).any():
        raise ValueError(f"estimate_accuracy: the load shapes lack category {lab[rows < 0][0]!r}")
    cols = pd.Index(shapes["time"].to_numpy()).get_indexer(times)
    if (cols < 0).any():
        raise ValueError(f"estimate_accuracy: the load shapes lack the period starting {times[cols < 0][0]} (UTC)")
    ls = shapes["load_shape"].transpose("category", "time").to_numpy()[rows][:, cols]
    total = shapes["annual_total"].transpose("category", "time").to_numpy()[rows][:, cols]
    ac = st["annual_consumption"].to_numpy(dtype=float)[:, None]
    legacy = legacy_energy(st, times)
    day_starts = np.unique(cal.from_utc(times)[0].to_numpy(), return_index=True)[1]
    reps = np.diff(np.append(day_starts, len(times)))
    whole_day = np.repeat(np.add.reduceat(est, day_starts, axis=1) == reps, reps, axis=1)
    day_truth = np.repeat(np.add.reduceat(truth, day_starts, axis=1), reps, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        estimates = {
            "settled": ds[cfg.energy_var].transpose("mpan", "time").to_numpy(),
            "mhhs_ac": ac * ls / total,
            "legacy_ac": legacy,
            "mhhs_day": day_truth * ls / np.repeat(np.add.reduceat(ls, day_starts, axis=1), reps, axis=1),
            "legacy_day": day_truth * legacy / np.repeat(np.add.reduceat(legacy, day_starts, axis=1), reps, axis=1),
        }
    dom = st["domestic"].to_numpy(dtype=bool)
    groups = {"domestic": dom, "non-domestic": ~dom, "all": np.ones_like(dom)}
    records = []
    for group, members in groups.items():  # three groups x five methods
        for key, method in _METHODS.items():
            cells = est & members[:, None] & (whole_day if key.endswith("_day") else True)
            records.append(_errors(estimates[key], truth, cells, day_starts, group, method))
    return pd.DataFrame(records).set_index(["group", "method"])


def _errors(x: np.ndarray, truth: np.ndarray, cells: np.ndarray, day_starts: np.ndarray, group: str,
            method: str) -> dict:
    n = int(cells.sum())
    t = np.where(cells, truth, 0.0)
    e = np.where(cells, x - truth, 0.0)
    t_sum = float(t.sum())
    day_err = np.abs(np.add.reduceat(e, day_starts, axis=1)).sum()
    pct = (lambda v: 100 * float(v) / t_sum) if t_sum else (lambda v: np.nan)
    return {"group": group, "method": method, "mpan_periods": n, "true_kwh": t_sum,
            "estimate_kwh": float(np.where(cells, x, 0.0).sum()), "mae_pct": pct(np.abs(e).sum()),
            "bias_pct": pct(e.sum()), "daily_mae_pct": pct(day_err)}
