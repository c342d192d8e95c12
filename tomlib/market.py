"""The true world: a simulated GB electricity market whose half-hourly consumption is known.

:func:`generate` turns a :class:`~tomlib.scenario.Scenario` into a :class:`Market`:

- **standing data** per MPAN: GSP group, market segment, connection type, domestic flag, supplier
  (drawn by market share), BM unit, LLFC, measurement quantity and annual consumption;
- the **true energy** of every MPAN in every settlement period of the scenario's ``time`` axis
  [kWh per period];
- **line loss factors** per LLFC and period, **unaccounted energy** and the **GSP group take** per
  GSP group and period.

How the true energy is made
---------------------------
- *Smart domestic* (segment S, domestic): real household-days of the Low Carbon London trial
  (``datasets/lcl``, 40 London households, 2013, UTC). Each household's readings are put on local
  settlement days as 48 local-clock half hours; days with gaps and households with low coverage,
  tiny consumption or a missing (season, day type) pool are excluded and counted
  (``Market.attrs``). Each MPAN gets a donor household; for every target settlement day it draws a
  day of that household with the same profiling season and day type (weekday, Saturday, Sunday,
  bank holiday; a bank holiday falls back to a Sunday where the household has too few bank
  holidays in that season). Local half hours go onto settlement periods with
  :func:`tomlib.calendar.local_clock_index`, so the 46-period day skips local 01:00-02:00 and the
  50-period day repeats it. The day is scaled by the MPAN's annual consumption over the donor's
  annual consumption, times mild multiplicative noise.
- *Smart non-domestic* (profile classes 3/4) and *advanced* (5-8): the 1997 profile class shapes
  (:func:`tomlib.reference.profile_class_shapes`) for the season and day type of each day (bank
  holiday -> Sunday shape, [INF]: the 1997 profiles have no bank-holiday day type), normalised so
  that a calendar year sums to the annual consumption, times lognormal AR(1) noise.
- *Solar export*: a share of smart domestic premises have rooftop solar and a second, separate
  export MPAN (measurement quantity AE). Generation = capacity x performance ratio x
  max(sin(solar elevation), 0) x a daily clearness of the GSP group x a site factor; the sun is
  computed with the NOAA formulae at the GSP group's representative point. The premises balance
  is netted each half hour: import = max(demand - generation, 0), export = max(generation - demand,
  0), so the import MPAN of a solar home reads less than its household demand.
- *Unmetered supplies* (segment U) come from :func:`unmetered_supplies`, which runs the UMS
  generator (:mod:`tomlib.services.ums_truth`): inventories, actual switching, PECU and CMS
  observations; their true energy joins the meter cube and the UMS truth rides on ``Market.ums``.

Losses and the GSP group take
-----------------------------
``line_loss_factors(llfc, time)`` come from :func:`tomlib.reference.band_line_loss_factors` by
the voltage level of each LLFC, the local time band and the month ([INF] illustrative values).
Per GSP group H and period j::

    unaccounted[H, j]    = f[H, j] x sum_{m in H, AI} E[m, j] x LLF[llfc(m), j]
    gsp_group_take[H, j] = sum_{m in H, AI} E x LLF - sum_{m in H, AE} E x LLF + unaccounted[H, j]

with f ~ Normal(scenario ``market.unaccounted_energy.mean``, ``sd``) per (H, j): theft, errors
and losses that no meter sees. f is a fraction of the metered import at GSP level, which is
within a few tenths of a percent of a fraction of the take itself.

Determinism
-----------
Every random draw comes from its own stream, ``Generator(PCG64(SeedSequence(seed,
spawn_key=(k,))))`` with a fixed key ``k`` per component (:data:`STREAMS`): the same scenario
gives identical bytes, and a component added later gets a new key without changing the others.

Modelling choices that the scenario file does not (yet) hold are in :class:`GeneratorSettings`
([INF], documented defaults, overridable through ``generate(scenario, settings=...)`` and
recorded in ``Market.attrs["generator_settings"]``).

Why one module: the generator is one pipeline (standing data -> energy -> losses -> take) whose
parts share the time axis and the random streams; the parts are nevertheless pure functions
(:func:`household_day_library`, :func:`draw_donor_days`, :func:`profile_class_energy`,
:func:`solar_elevation`, ...) that tests call directly.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from tomlib import calendar as cal
from tomlib import cube, reference
from tomlib import mpan as mpan_mod

__all__ = [
    "LCL_PATH",
    "STREAMS",
    "GeneratorSettings",
    "HouseholdDays",
    "Market",
    "annual_profile_kwh",
    "ar1_lognormal_noise",
    "donor_mapping",
    "draw_donor_days",
    "generate",
    "household_day_library",
    "load_lcl_households",
    "profile_class_energy",
    "solar_elevation",
    "stream",
    "unmetered_supplies",
]

#: Compact Low Carbon London data set (see datasets/lcl/README.md), in the repository checkout.
LCL_PATH = Path(__file__).resolve().parents[1] / "datasets" / "lcl" / "lcl_households_2013.zarr.zip"

#: Fixed spawn key of each random stream. Append new components; never renumber.
STREAMS = {
    "segments": 0,
    "suppliers": 1,
    "cores": 2,
    "annual_consumption": 3,
    "donors": 4,
    "donor_days": 5,
    "household_noise": 6,
    "profile_classes": 7,
    "profile_noise": 8,
    "solar_sites": 9,
    "solar_weather": 10,
    "unaccounted": 11,
    "unmetered": 12,
}

_SEASON_CODES = {s: i for i, s in enumerate(cal.SEASONS)}
_DAY_TYPES = ("weekday", "saturday", "sunday", "bank_holiday")
_DAY_TYPE_CODES = {d: i for i, d in enumerate(_DAY_TYPES)}
_SUNDAY, _BANK_HOLIDAY = _DAY_TYPE_CODES["sunday"], _DAY_TYPE_CODES["bank_holiday"]
_HALF_HOUR_H = 0.5  # [h] duration of a settlement period, to turn kW into kWh
_LCL_MISSING = -1
_LCL_UNIT_KWH = 1e-7  # [kWh] per stored integer count


@dataclass(frozen=True)
class GeneratorSettings:
    """[INF] Modelling choices of the generator that the scenario file does not hold.

    All are our assumptions; the defaults are documented here and recorded in the Market's attrs.

    Attributes
    ----------
    domestic_mean_kwh : float
        Mean annual consumption of a domestic MPAN [kWh/year] (mhhs-domain.md F-35: PC1 about
        2,700 kWh/year).
    domestic_sigma : float
        Shape of the lognormal spread of domestic annual consumption [-] (log-space sd).
    non_domestic_profile_classes : tuple of (int, float)
        Profile classes of smart non-domestic MPANs and their shares [-].
    non_domestic_sigma : float
        Lognormal spread [-] of smart non-domestic annual consumption around the profile class's
        own annual consumption (the 1997 shapes are per-customer averages).
    advanced_kwh_range : tuple of float
        Advanced (profile class 5-8) annual consumption is log-uniform in this range [kWh/year].
    advanced_hv_from_kwh : float
        Advanced sites at or above this annual consumption connect at HV, below at LV [kWh/year].
    min_household_kwh : float
        LCL households whose annualised consumption is below this are not donors [kWh/year]
        (MAC000037, an almost empty property, has 30 kWh in 2013).
    min_pool_days : int
        Fewest usable days a donor household needs in a (season, day type) pool [days]; a bank
        holiday pool with fewer falls back to the Sunday pool, a weekday/Saturday/Sunday pool with
        fewer excludes the household.
    noise_ar1 : float
        Lag-one autocorrelation per half hour of the non-domestic noise [-].
    solar_performance_ratio : float
        AC output over (capacity x sin(elevation)) on a clear day [-].
    clearness_beta : tuple of float
        Beta(a, b) distribution of the daily clearness of a GSP group [-] (mean a/(a+b)).
    solar_site_sigma : float
        Lognormal spread of the per-site yield factor (orientation, shading) [-].
    deemed_export_share : float
        Share of expected generation taken as the export MPAN's annual figure [-] (the GB
        "deemed export" convention of 50%); the true export is what the half-hourly netting gives.
    donor_region : str
        Bank-holiday region of the LCL households (London).
    mpan_id_range : (int, int), optional
        Range ``[lo, hi)`` of the 10-digit unique part of the MPAN cores drawn (None: all of
        ``[0, 10**10)``). Not a modelling choice: the chunked generator (:mod:`tomlib.scale`)
        gives each block of a national market its own range, so cores are unique across blocks
        that are generated independently.
    """

    domestic_mean_kwh: float = 2700.0
    domestic_sigma: float = 0.5
    non_domestic_profile_classes: tuple[tuple[int, float], ...] = ((3, 0.75), (4, 0.25))
    non_domestic_sigma: float = 0.6
    advanced_kwh_range: tuple[float, float] = (50_000.0, 500_000.0)
    advanced_hv_from_kwh: float = 250_000.0
    min_household_kwh: float = 500.0
    min_pool_days: int = 2
    noise_ar1: float = 0.9
    solar_performance_ratio: float = 0.8
    clearness_beta: tuple[float, float] = (2.0, 1.5)
    solar_site_sigma: float = 0.1
    deemed_export_share: float = 0.5
    donor_region: str = "england_wales"
    mpan_id_range: tuple[int, int] | None = None

    def to_json(self) -> str:
        """Canonical JSON of the settings (for ``Market.attrs``); ``mpan_id_range`` only when set."""
        values = dataclasses.asdict(self)
        if values["mpan_id_range"] is None:
            del values["mpan_id_range"]
        return json.dumps(values, sort_keys=True)


def stream(seed: int, name: str) -> np.random.Generator:
    """Independent random stream of one generator component.

    Parameters
    ----------
    seed : int
        Scenario seed.
    name : str
        Component, a key of :data:`STREAMS`.

    Returns
    -------
    numpy.random.Generator
        PCG64 seeded by ``SeedSequence(seed, spawn_key=(STREAMS[name],))`` (the same as the child
        ``SeedSequence(seed).spawn(...)`` would give at that position).
    """
    if name not in STREAMS:
        raise KeyError(f"random stream {name!r} is not one of {', '.join(STREAMS)}")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(STREAMS[name],))))


# --------------------------------------------------------------------------------------------------
# Low Carbon London households
# --------------------------------------------------------------------------------------------------
def load_lcl_households(path: str | Path | None = None, label: str = "start") -> xr.Dataset:
    """Open the compact Low Carbon London data set.

    Parameters
    ----------
    path : str or Path, optional
        The ``.zarr.zip`` file; default :data:`LCL_PATH`.
    label : {"start", "end"}
        Whether the source timestamps mark the start or the end of the half hour (the data set does
        not say; scenario ``market.lcl_label``). With ``"end"`` the times are moved 30 minutes back
        so that ``time`` is always the period start.

    Returns
    -------
    Dataset
        ``energy(household, time)`` household consumption per half hour [kWh], float64, NaN where
        the source has no reading; ``time`` UTC period starts; coords ``tariff``, ``acorn``,
        ``acorn_grouped`` on ``household``. ``attrs`` carry the provenance of the source.
    """
    import zarr  # only needed here

    if label not in ("start", "end"):
        raise ValueError(f"lcl label must be 'start' or 'end', got {label!r}")
    file = Path(path) if path is not None else LCL_PATH
    if not file.is_file():
        raise FileNotFoundError(
            f"{file}: LCL household data not found; rebuild it with datasets/lcl/build_lcl.py"
        )
    store = zarr.storage.ZipStore(file, mode="r")
    try:
        raw = xr.open_zarr(store, consolidated=False).load()
    finally:
        store.close()
    if "energy" not in raw or raw["energy"].dims != ("household", "time"):
        raise ValueError(f"{file}: expected variable energy(household, time)")
    counts = raw["energy"].to_numpy()
    if counts.dtype != np.int32 or (counts < _LCL_MISSING).any():
        raise ValueError(f"{file}: energy must be int32 counts of 1e-7 kWh >= 0 or -1 (missing)")
    kwh = np.where(counts == _LCL_MISSING, np.nan, counts * _LCL_UNIT_KWH)
    times = pd.DatetimeIndex(raw["time"].to_numpy())
    if label == "end":
        times = times - cal.PERIOD
    ds = xr.Dataset(
        {"energy": (("household", "time"), kwh, {"units": "kWh", "long_name": "household consumption"})},
        coords={
            "household": _str_array(raw["household"]),
            "time": ("time", times.to_numpy(), {"long_name": "period start, UTC"}),
            **{c: ("household", _str_array(raw[c])) for c in ("tariff", "acorn", "acorn_grouped")},
        },
        attrs={**raw.attrs, "lcl_label": label, "path": str(file)},
    )
    return ds


def _str_array(values) -> np.ndarray:
    """Fixed-width numpy unicode from object, StringDType or unicode values."""
    return np.asarray(np.asarray(values, dtype=object).tolist(), dtype=np.str_)


@dataclass(frozen=True)
class HouseholdDays:
    """Library of usable household-days, pooled by household, season and day type.

    Attributes
    ----------
    households : ndarray of str
        All LCL household ids (index ``h`` below refers to this array).
    dates : ndarray of datetime64[D]
        Local settlement date of each library day.
    household : ndarray of int
        Household index of each library day.
    season, day_type : ndarray of int
        Profiling season (index into ``calendar.SEASONS``) and day type (weekday, saturday,
        sunday, bank_holiday = 0..3) of each library day.
    profiles : ndarray of float, shape (n_days, 48)
        Consumption per local half hour [kWh] (on the 50-period day the mean of the two repeated
        half hours; the 46-period day is incomplete and not in the library).
    annual_kwh : ndarray of float
        Annualised consumption of each household [kWh/year]: the mean day of each (season, day
        type) pool times the number of such days in the data year (NaN if not a donor).
    donors : ndarray of int
        Household indices that may be donors.
    pool_start, pool_count : ndarray of int, shape (n_households, 5, 4)
        Pool of (household, season, day type) = ``pool_order[start:start+count]`` (library day
        indices); bank-holiday pools below ``min_pool_days`` already point to the Sunday pool.
    pool_order : ndarray of int
        Library day indices sorted by (household, season, day type, date).
    excluded : dict
        Counts of what was not used, by reason (never silent).
    """

    households: np.ndarray
    dates: np.ndarray
    household: np.ndarray
    season: np.ndarray
    day_type: np.ndarray
    profiles: np.ndarray
    annual_kwh: np.ndarray
    donors: np.ndarray
    pool_start: np.ndarray
    pool_count: np.ndarray
    pool_order: np.ndarray
    excluded: dict[str, int] = field(default_factory=dict)


def household_day_library(
    lcl: xr.Dataset,
    *,
    min_coverage: float,
    min_annual_kwh: float,
    min_pool_days: int = 2,
    region: str = "england_wales",
) -> HouseholdDays:
    """Cut household readings into local settlement days and pool them by season and day type.

    Parameters
    ----------
    lcl : Dataset
        From :func:`load_lcl_households`: ``energy(household, time)`` [kWh], NaN for gaps.
    min_coverage : float
        Households with a smaller share of their half hours present are not donors [-].
    min_annual_kwh : float
        Households with a smaller annualised consumption are not donors [kWh/year].
    min_pool_days : int
        Fewest usable days per (season, day type) pool; see :class:`GeneratorSettings`.
    region : str
        Bank-holiday region of the households.

    Returns
    -------
    HouseholdDays
    """
    energy = lcl["energy"].to_numpy()
    times = pd.DatetimeIndex(lcl["time"].to_numpy())
    n_house = energy.shape[0]
    dates, _ = cal.from_utc(times)
    slot = cal.local_clock_index(times)
    day_values, day_of_t = np.unique(dates.to_numpy().astype("datetime64[D]"), return_inverse=True)
    n_days = len(day_values)

    # Sum (and count) the readings of each local (day, half hour): sorting by that key makes
    # reduceat add the repeated hour of the 50-period day; a gap (NaN) spoils its half hour.
    key = day_of_t * 48 + slot
    order = np.argsort(key, kind="stable")
    keys_sorted = key[order]
    starts = np.flatnonzero(np.r_[True, keys_sorted[1:] != keys_sorted[:-1]])
    present = keys_sorted[starts]
    n_per_key = np.diff(np.r_[starts, len(keys_sorted)])
    sums = np.add.reduceat(energy[:, order], starts, axis=1)
    grid = np.full((n_house, n_days * 48), np.nan)
    grid[:, present] = sums / n_per_key
    grid = grid.reshape(n_house, n_days, 48)

    slot_seen = np.zeros(n_days * 48, dtype=bool)
    slot_seen[present] = True
    complete_day = slot_seen.reshape(n_days, 48).all(axis=1)  # False: 46-period day, edges of the data
    day_ok = np.isfinite(grid).all(axis=2) & complete_day[None, :]

    coverage = np.isfinite(energy).mean(axis=1)
    seasons = np.vectorize(_SEASON_CODES.__getitem__, otypes=[np.int64])(cal.profiling_seasons(day_values))
    dtypes = np.vectorize(_DAY_TYPE_CODES.__getitem__, otypes=[np.int64])(cal.day_types(day_values, region))

    # Pools of complete days per (household, season, day type).
    n_s, n_k = len(cal.SEASONS), len(_DAY_TYPES)
    hh_idx = np.repeat(np.arange(n_house), n_days)
    d_idx = np.tile(np.arange(n_days), n_house)
    ok_flat = day_ok.ravel()
    pool_key_all = (hh_idx * n_s + seasons[d_idx]) * n_k + dtypes[d_idx]
    count = np.bincount(pool_key_all[ok_flat], minlength=n_house * n_s * n_k).reshape(n_house, n_s, n_k)
    day_sum = grid.sum(axis=2)  # [kWh/day], NaN on incomplete days
    pool_sum = np.bincount(
        pool_key_all[ok_flat], weights=day_sum.ravel()[ok_flat], minlength=n_house * n_s * n_k
    ).reshape(n_house, n_s, n_k)

    weak_bh = count[:, :, _BANK_HOLIDAY] < min_pool_days
    missing_pool = (count[:, :, :_BANK_HOLIDAY] < min_pool_days).any(axis=(1, 2))

    # Annualise with the pool means weighted by how many days of each pool the data year has.
    year = pd.Timestamp(times[len(times) // 2]).year
    year_days = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")
    ys = np.vectorize(_SEASON_CODES.__getitem__, otypes=[np.int64])(cal.profiling_seasons(year_days))
    yk = np.vectorize(_DAY_TYPE_CODES.__getitem__, otypes=[np.int64])(cal.day_types(year_days, region))
    with np.errstate(invalid="ignore", divide="ignore"):
        pool_mean = pool_sum / count
    pool_mean_fb = pool_mean.copy()
    pool_mean_fb[:, :, _BANK_HOLIDAY] = np.where(
        weak_bh, pool_mean[:, :, _SUNDAY], pool_mean[:, :, _BANK_HOLIDAY]
    )
    annual = pool_mean_fb[:, ys, yk].sum(axis=1)

    low_coverage = coverage < min_coverage
    low_energy = ~low_coverage & ~missing_pool & ~(annual >= min_annual_kwh)
    missing_only = ~low_coverage & missing_pool
    donor_mask = ~low_coverage & ~missing_pool & ~low_energy
    donors = np.flatnonzero(donor_mask)
    if donors.size == 0:
        raise ValueError(
            f"no LCL household qualifies as a donor (coverage >= {min_coverage}, annual >= {min_annual_kwh} kWh, "
            f"{min_pool_days} days in every season/day-type pool)"
        )

    lib_house, lib_day = np.nonzero(day_ok & donor_mask[:, None])
    lib_season, lib_type = seasons[lib_day], dtypes[lib_day]
    lib_key = (lib_house * n_s + lib_season) * n_k + lib_type
    pool_order = np.argsort(lib_key, kind="stable")
    sorted_keys = lib_key[pool_order]
    all_keys = np.arange(n_house * n_s * n_k)
    pool_start = np.searchsorted(sorted_keys, all_keys, "left").reshape(n_house, n_s, n_k)
    pool_count = (np.searchsorted(sorted_keys, all_keys, "right").reshape(n_house, n_s, n_k) - pool_start)
    fb = weak_bh & donor_mask[:, None]
    pool_start[:, :, _BANK_HOLIDAY] = np.where(fb, pool_start[:, :, _SUNDAY], pool_start[:, :, _BANK_HOLIDAY])
    pool_count[:, :, _BANK_HOLIDAY] = np.where(fb, pool_count[:, :, _SUNDAY], pool_count[:, :, _BANK_HOLIDAY])

    donor_days = day_ok[donor_mask]
    excluded = {
        "lcl_households": int(n_house),
        "lcl_households_used": int(donors.size),
        "lcl_households_excluded_low_coverage": int(low_coverage.sum()),
        "lcl_households_excluded_missing_pool": int(missing_only.sum()),
        "lcl_households_excluded_low_consumption": int(low_energy.sum()),
        "lcl_days_total": int(n_house * n_days),
        "lcl_days_used": int(donor_days.sum()),
        "lcl_days_excluded_incomplete_day": int(donor_mask.sum() * (~complete_day).sum()),
        "lcl_days_excluded_gaps": int((~day_ok[donor_mask] & complete_day[None, :]).sum()),
        "lcl_days_excluded_with_household": int((~donor_mask).sum() * n_days),
        "lcl_bank_holiday_pools_to_sunday": int(fb.sum()),
    }
    return HouseholdDays(
        households=_str_array(lcl["household"]),
        dates=day_values[lib_day],
        household=lib_house,
        season=lib_season,
        day_type=lib_type,
        profiles=grid[lib_house, lib_day],
        annual_kwh=np.where(donor_mask, annual, np.nan),
        donors=donors,
        pool_start=pool_start,
        pool_count=pool_count,
        pool_order=pool_order,
        excluded=excluded,
    )


def draw_donor_days(
    library: HouseholdDays,
    donor: np.ndarray,
    season: np.ndarray,
    day_type: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draw, for every MPAN and target day, a library day of its donor with the same season and day type.

    Parameters
    ----------
    library : HouseholdDays
    donor : ndarray of int, shape (n_mpans,)
        Donor household index of each MPAN (into ``library.households``).
    season : ndarray of int, shape (n_days,)
        Season code of each target settlement day.
    day_type : ndarray of int, shape (n_mpans, n_days)
        Day-type code of each target day for each MPAN (bank holidays depend on its GSP group's region).
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of int, shape (n_mpans, n_days)
        Library day index (into ``library.profiles``).
    """
    start = library.pool_start[donor[:, None], season[None, :], day_type]
    count = library.pool_count[donor[:, None], season[None, :], day_type]
    if (count < 1).any():
        m, d = np.argwhere(count < 1)[0]
        raise ValueError(
            f"donor household {library.households[donor[m]]} has no day for season "
            f"{cal.SEASONS[season[d]]}, day type {_DAY_TYPES[day_type[m, d]]}"
        )
    pick = start + np.floor(rng.random(start.shape) * count).astype(np.int64)
    return library.pool_order[pick]


# --------------------------------------------------------------------------------------------------
# profile class shapes and noise
# --------------------------------------------------------------------------------------------------
def _codes(values: np.ndarray, codes: dict[str, int]) -> np.ndarray:
    lookup = pd.Series(codes)
    out = lookup.reindex(np.asarray(values).ravel()).to_numpy()
    return out.astype(np.int64).reshape(np.shape(values))


def _shape_cube(shapes: xr.DataArray) -> tuple[np.ndarray, list, dict[str, int], dict[str, int]]:
    """Energy per local half hour [kWh] as (profile_class, season, day_type, 48) with lookups."""
    arr = shapes.transpose("profile_class", "season", "day_type", "settlement_period")
    if arr.sizes["settlement_period"] != 48:
        raise ValueError(f"profile shapes: expected 48 local half hours, got {arr.sizes['settlement_period']}")
    if not np.isfinite(arr.to_numpy()).all() or (arr.to_numpy() < 0).any():
        raise ValueError("profile shapes: expected finite, non-negative GAD [kW]")
    classes = [int(p) for p in arr["profile_class"].to_numpy()]
    s_codes = {str(s): i for i, s in enumerate(arr["season"].to_numpy())}
    k_codes = {str(k): i for i, k in enumerate(arr["day_type"].to_numpy())}
    for need in cal.SEASONS:
        if need not in s_codes:
            raise ValueError(f"profile shapes: no season {need!r}")
    for need in ("weekday", "saturday", "sunday"):
        if need not in k_codes:
            raise ValueError(f"profile shapes: no day type {need!r}")
    # [INF] the 1997 profiles have no bank-holiday day type: a bank holiday takes the Sunday shape.
    k_codes = {**k_codes, "bank_holiday": k_codes["sunday"]}
    return arr.to_numpy() * _HALF_HOUR_H, classes, s_codes, k_codes


def annual_profile_kwh(shapes: xr.DataArray, year: int, region: str) -> pd.Series:
    """Energy of one customer of each profile class over a calendar year [kWh/year].

    Parameters
    ----------
    shapes : DataArray
        GAD [kW] (profile_class, season, day_type, settlement_period 1..48), as
        :func:`tomlib.reference.profile_class_shapes`.
    year : int
        Calendar year whose seasons and day types are used.
    region : str
        Bank-holiday region.

    Returns
    -------
    Series
        Index ``profile_class``, annual energy [kWh/year].
    """
    kwh, classes, s_codes, k_codes = _shape_cube(shapes)
    days = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")
    s = _codes(cal.profiling_seasons(days), s_codes)
    k = _codes(cal.day_types(days, region), k_codes)
    daily = kwh.sum(axis=3)  # (pc, season, day_type) [kWh/day]
    return pd.Series(daily[:, s, k].sum(axis=1), index=pd.Index(classes, name="profile_class"))


def ar1_lognormal_noise(rng: np.random.Generator, shape: tuple[int, int], rel_sd: float, phi: float) -> np.ndarray:
    """Multiplicative noise with mean 1, a relative sd and AR(1) correlation along the last axis.

    The AR(1) recurrence y_t = phi y_(t-1) + sqrt(1 - phi^2) e_t is evaluated as a prefix scan in
    log2(n) vectorised steps (y += phi^s y shifted by s, s = 1, 2, 4, ...), with a stationary start.

    Parameters
    ----------
    rng : numpy.random.Generator
    shape : tuple of int
        (rows, periods).
    rel_sd : float
        Relative standard deviation of the noise [-].
    phi : float
        Lag-one autocorrelation of the log-noise per period [-], 0 <= phi < 1.

    Returns
    -------
    ndarray of float
        exp(sigma y - sigma^2 / 2) with sigma^2 = log(1 + rel_sd^2); mean 1, sd ``rel_sd``.
    """
    if not 0.0 <= phi < 1.0:
        raise ValueError(f"noise autocorrelation phi must be in [0, 1), got {phi}")
    y = rng.standard_normal(shape)
    if rel_sd == 0:
        return np.ones(shape)
    n = shape[-1]
    if phi > 0 and n > 1:
        y[..., 1:] *= math.sqrt(1.0 - phi * phi)
        s, coef = 1, phi
        while s < n and coef > 1e-17:
            # numpy buffers overlapping operands, so the right side uses the values before this step
            y[..., s:] += coef * y[..., :-s]
            s, coef = 2 * s, coef * coef
    sigma2 = math.log1p(rel_sd * rel_sd)
    y *= math.sqrt(sigma2)
    y -= sigma2 / 2.0
    return np.exp(y, out=y)


def profile_class_energy(
    shapes: xr.DataArray,
    profile_class: np.ndarray,
    annual_consumption: np.ndarray,
    region: np.ndarray,
    times: pd.DatetimeIndex,
    *,
    reference_year: int,
    noise: np.ndarray | None = None,
) -> np.ndarray:
    """True energy of MPANs that follow a profile class shape [kWh per period].

    Parameters
    ----------
    shapes : DataArray
        GAD [kW], dims (profile_class, season, day_type, settlement_period 1..48 = local half hour).
    profile_class : ndarray of int, shape (n,)
    annual_consumption : ndarray of float, shape (n,)
        [kWh/year].
    region : ndarray of str, shape (n,)
        Bank-holiday region of each MPAN's GSP group.
    times : DatetimeIndex
        Period starts [UTC].
    reference_year : int
        Year over which the shape is normalised: a full year of this shape sums to the annual
        consumption.
    noise : ndarray, shape (n, len(times)), optional
        Multiplicative noise (mean 1); None for none.

    Returns
    -------
    ndarray of float, shape (n, len(times))
        Energy per period [kWh].
    """
    kwh, classes, s_codes, k_codes = _shape_cube(shapes)
    if np.size(profile_class) == 0:
        return np.zeros((0, len(times)))
    pc_index = pd.Index(classes)
    pc = pc_index.get_indexer(np.asarray(profile_class))
    if (pc < 0).any():
        bad = np.asarray(profile_class)[pc < 0][0]
        raise ValueError(f"profile class {bad} has no shape (known: {classes})")
    dates, _ = cal.from_utc(times)
    slot = cal.local_clock_index(times)
    s_t = _codes(cal.profiling_seasons(dates), s_codes)
    regions = np.asarray(region).astype(str)
    region_names = list(dict.fromkeys(regions))
    k_rt = np.stack([_codes(cal.day_types(dates, r), k_codes) for r in region_names])
    r_idx = pd.Index(region_names).get_indexer(regions)
    annual = np.stack(
        [annual_profile_kwh(shapes, reference_year, r).to_numpy() for r in region_names]
    )  # (region, pc)
    scale = np.asarray(annual_consumption, dtype=float) / annual[r_idx, pc]
    out = kwh[pc[:, None], s_t[None, :], k_rt[r_idx], slot[None, :]]
    out *= scale[:, None]
    if noise is not None:
        out *= noise
    return out


def _profile_class_energy_into(energy: np.ndarray, rows: np.ndarray, shapes: xr.DataArray, profile_class: np.ndarray,
                               annual_consumption: np.ndarray, region_names: list, r_idx: np.ndarray,
                               target_days: pd.DatetimeIndex, day_of_t: np.ndarray, slot: np.ndarray, *,
                               reference_year: int, noise: np.ndarray, annual_memo: dict | None = None) -> None:
    """:func:`profile_class_energy` written into ``energy[rows]``: the same values, in one pass.

    The regions come as names and each row's index (:func:`_region_codes`); seasons and day types are
    looked up per target day (they are functions of the settlement date) and each row's shape per day
    picked from the flattened (profile class, season, day type) shapes, so no (rows x periods) index
    array or gathered cube is made (:func:`tomlib._market_kernels.gather_rows`).
    """
    from tomlib._market_kernels import gather_rows

    kwh, classes, s_codes, k_codes = _shape_cube(shapes)
    if np.size(profile_class) == 0:
        return
    pc = pd.Index(classes).get_indexer(np.asarray(profile_class))
    if (pc < 0).any():
        bad = np.asarray(profile_class)[pc < 0][0]
        raise ValueError(f"profile class {bad} has no shape (known: {classes})")
    s_d = _codes(cal.profiling_seasons(target_days), s_codes)
    k_rd = np.stack([_codes(cal.day_types(target_days, r), k_codes) for r in region_names])
    annual = np.stack([_annual_kwh(shapes, reference_year, r, annual_memo).to_numpy() for r in region_names])
    scale = np.asarray(annual_consumption, dtype=float) / annual[r_idx, pc]
    n_s, n_k = kwh.shape[1], kwh.shape[2]
    pick = (pc[:, None] * n_s + s_d[None, :]) * n_k + k_rd[r_idx]  # row of the flattened shapes per day
    gather_rows(energy, rows, kwh.reshape(-1, kwh.shape[3]), pick, day_of_t, slot, scale, noise)


# --------------------------------------------------------------------------------------------------
# the sun
# --------------------------------------------------------------------------------------------------
def solar_elevation(times, latitude, longitude) -> np.ndarray:
    """Solar elevation angle without refraction (NOAA solar calculator formulae).

    Parameters
    ----------
    times : array-like of datetime64
        Instants [UTC], shape (..., n) or broadcastable with ``latitude``/``longitude``.
    latitude, longitude : float or array-like
        [deg, WGS84; east positive], broadcast against ``times``.

    Returns
    -------
    ndarray of float
        Elevation of the sun's centre above the horizon [deg], broadcast shape.
    """
    t = np.asarray(pd.DatetimeIndex(np.ravel(times)).as_unit("ns").to_numpy()).reshape(np.shape(times))
    ns = t.astype("datetime64[ns]").astype(np.int64)
    jd = ns / 86_400e9 + 2440587.5
    jc = (jd - 2451545.0) / 36525.0
    l0 = np.radians(np.mod(280.46646 + jc * (36000.76983 + jc * 0.0003032), 360.0))
    m = np.radians(357.52911 + jc * (35999.05029 - 0.0001537 * jc))
    e = 0.016708634 - jc * (0.000042037 + 0.0000001267 * jc)
    centre = (
        np.sin(m) * (1.914602 - jc * (0.004817 + 0.000014 * jc))
        + np.sin(2 * m) * (0.019993 - 0.000101 * jc)
        + np.sin(3 * m) * 0.000289
    )
    omega = np.radians(125.04 - 1934.136 * jc)
    apparent_long = np.radians(np.degrees(l0) + centre - 0.00569 - 0.00478 * np.sin(omega))
    mean_obliquity = 23.0 + (26.0 + (21.448 - jc * (46.815 + jc * (0.00059 - jc * 0.001813))) / 60.0) / 60.0
    obliquity = np.radians(mean_obliquity + 0.00256 * np.cos(omega))
    declination = np.arcsin(np.sin(obliquity) * np.sin(apparent_long))
    y = np.tan(obliquity / 2.0) ** 2
    equation_of_time = 4.0 * np.degrees(
        y * np.sin(2 * l0)
        - 2 * e * np.sin(m)
        + 4 * e * y * np.sin(m) * np.cos(2 * l0)
        - 0.5 * y * y * np.sin(4 * l0)
        - 1.25 * e * e * np.sin(2 * m)
    )  # [min]
    minutes = (ns % 86_400_000_000_000) / 60e9
    true_solar_time = np.mod(minutes + equation_of_time + 4.0 * np.asarray(longitude, dtype=float), 1440.0)
    hour_angle = np.radians(true_solar_time / 4.0 - 180.0)
    lat = np.radians(np.asarray(latitude, dtype=float))
    cos_zenith = np.sin(lat) * np.sin(declination) + np.cos(lat) * np.cos(declination) * np.cos(hour_angle)
    return 90.0 - np.degrees(np.arccos(np.clip(cos_zenith, -1.0, 1.0)))


# --------------------------------------------------------------------------------------------------
# unmetered supplies (hook)
# --------------------------------------------------------------------------------------------------
def unmetered_supplies(scenario, times: pd.DatetimeIndex, rng: np.random.Generator, ums_per_gsp: dict,
                       existing_mpans, mpan_id_range: tuple[int, int] | None = None) -> Any:
    """Unmetered supplies (segment U): street lights and other equipment settled on inventories.

    The truth is the actual switching of each item (photocells scatter, lamps fail; see
    :mod:`tomlib.services.ums_truth`); the UMS data service later settles what its method computes.

    Parameters
    ----------
    scenario : Scenario
    times : DatetimeIndex
        Period starts [UTC].
    rng : numpy.random.Generator
        Stream ``"unmetered"``.
    ums_per_gsp : dict
        GSP group -> number of UMS MPANs (from the scenario's ``segments.unmetered`` share).
    existing_mpans : array-like of str
        Cores already in the market, which the UMS cores avoid.
    mpan_id_range : (int, int), optional
        Range of the unique part of the UMS cores (:attr:`GeneratorSettings.mpan_id_range`).

    Returns
    -------
    UmsTruth or None
        None when the scenario has no unmetered supplies.
    """
    if not sum(ums_per_gsp.values()):
        return None
    from tomlib.services import ums_truth

    wanted = {g: n for g, n in ums_per_gsp.items() if n}
    return ums_truth.generate_ums_truth(scenario, reference.gsp_groups(), times, rng, wanted,
                                        existing_mpans=existing_mpans, mpan_id_range=mpan_id_range)


# --------------------------------------------------------------------------------------------------
# the market
# --------------------------------------------------------------------------------------------------
_STANDING_COLUMNS = [
    "gsp_group", "market_segment", "connection_type", "domestic", "supplier", "bm_unit", "llfc",
    "measurement_quantity", "annual_consumption",
]

#: Market-level arrays are stored beside the meter cube in one Dataset; their dimensions get these
#: names there because ``gsp_group`` and ``llfc`` are already per-MPAN coordinates.
_DATASET_DIMS = {"gsp_group": "gsp_group_id", "llfc": "llfc_id"}


@dataclass
class Market:
    """The simulated market with its truth.

    Attributes
    ----------
    scenario_name : str
    seed : int
    meters : Dataset
        Meter cube (:func:`tomlib.cube.meter_cube`): ``energy`` = TRUE energy [kWh per period],
        dims (mpan, time), standing data as coordinates on ``mpan``; extra coordinates
        ``profile_class`` (1-8; 0 for export), ``donor_household`` (LCL id or ""),
        ``linked_mpan`` (the import MPAN of an export MPAN and vice versa, or "") and
        ``solar_capacity`` [kWp] (0 where none).
    line_loss_factors : DataArray
        LLF [-], dims (llfc, time).
    unaccounted_energy : DataArray
        [kWh], dims (gsp_group, time).
    gsp_group_take : DataArray
        [kWh], dims (gsp_group, time) = sum import x LLF - sum export x LLF + unaccounted.
    attrs : dict
        Provenance and counts: scenario name, digest and seed, tomlib version, generator settings,
        LCL exclusion counts.
    """

    scenario_name: str
    seed: int
    meters: xr.Dataset
    line_loss_factors: xr.DataArray
    unaccounted_energy: xr.DataArray
    gsp_group_take: xr.DataArray
    attrs: dict[str, Any] = field(default_factory=dict)
    ums: Any = None  # tomlib.services.ums.UmsTruth: inventories, PECU/CMS observations (None: no UMS)

    def to_dataset(self) -> xr.Dataset:
        """One Dataset: the meter cube plus ``line_loss_factor(llfc_id, time)``,
        ``unaccounted_energy(gsp_group_id, time)`` and ``gsp_group_take(gsp_group_id, time)``."""
        ds = self.meters.copy()
        extra = {
            "line_loss_factor": self.line_loss_factors.rename({"llfc": _DATASET_DIMS["llfc"]}),
            "unaccounted_energy": self.unaccounted_energy.rename({"gsp_group": _DATASET_DIMS["gsp_group"]}),
            "gsp_group_take": self.gsp_group_take.rename({"gsp_group": _DATASET_DIMS["gsp_group"]}),
        }
        for name, da in extra.items():
            ds[name] = da.drop_vars([c for c in da.coords if c not in da.dims and c != "time"])
        ds.attrs = {**self.meters.attrs, **self.attrs, "scenario_name": self.scenario_name, "seed": self.seed}
        if self.ums is not None:
            ums_ds = self.ums.to_dataset()
            ds = xr.merge([ds, ums_ds.drop_vars("time", errors="ignore")], combine_attrs="override")
            ds.attrs.update({k: v for k, v in ums_ds.attrs.items()})
        return ds

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> Market:
        """Inverse of :meth:`to_dataset`."""
        for name in ("energy", "line_loss_factor", "unaccounted_energy", "gsp_group_take"):
            if name not in ds:
                raise ValueError(f"market dataset: variable {name!r} is missing")
        ums = None
        if "ums_energy" in ds:
            from tomlib.services.ums import UmsTruth

            ums = UmsTruth.from_dataset(ds)
            ums_dims = [d for d in ds.dims if d.startswith("ums_")]
            ds = ds.drop_vars([v for v in ds.variables if v.startswith("ums_")]).drop_dims(ums_dims, errors="ignore")
        market_vars = ["line_loss_factor", "unaccounted_energy", "gsp_group_take"]
        meters = ds.drop_vars(market_vars).drop_dims(list(_DATASET_DIMS.values()), errors="ignore")
        attrs = {k: v for k, v in ds.attrs.items() if k not in ("scenario_name", "seed", "ums_attrs", "ums_columns")}
        meters.attrs = dict(attrs)
        return cls(
            scenario_name=str(ds.attrs.get("scenario_name", "")),
            seed=int(ds.attrs.get("seed", 0)),
            meters=meters,
            line_loss_factors=_with_settlement_coords(ds["line_loss_factor"].rename({"llfc_id": "llfc"})),
            unaccounted_energy=_with_settlement_coords(
                ds["unaccounted_energy"].rename({"gsp_group_id": "gsp_group"})
            ),
            gsp_group_take=_with_settlement_coords(ds["gsp_group_take"].rename({"gsp_group_id": "gsp_group"})),
            attrs=attrs,
            ums=ums,
        )

    def save(self, path: str | Path) -> Path:
        """Write the market (``.zarr`` or ``.nc``) atomically via :func:`tomlib.cube.save`."""
        cube.save(self.to_dataset(), path)
        return Path(path)

    @classmethod
    def open(cls, path: str | Path) -> Market:
        """Read a market written by :meth:`save`; its LLFs and GSP group take are checked against its meters
        (:mod:`tomlib.flows.market_inputs`: a missing LLF or take raises, naming the file, LLFC or group and period)."""
        from tomlib.flows import market_inputs

        market = cls.from_dataset(market_inputs.open_market_dataset(path))
        market_inputs.check_market(market, Path(path).name)
        return market


def _tomlib_version() -> str:
    import tomlib

    try:
        return str(tomlib.__version__)
    except AttributeError:  # e.g. imported as a namespace package from an odd working directory
        from importlib.metadata import version

        return version("tomlib")


def _with_settlement_coords(da: xr.DataArray) -> xr.DataArray:
    da = da.drop_vars([c for c in ("settlement_date", "settlement_period") if c in da.coords])
    dates, periods = cal.from_utc(da["time"].to_numpy())
    return da.assign_coords(settlement_date=("time", dates.to_numpy()), settlement_period=("time", periods))


def _largest_remainder(total: int, shares: np.ndarray) -> np.ndarray:
    """Integer counts summing to ``total`` closest to ``total x shares`` (Hamilton's method)."""
    exact = total * np.asarray(shares, dtype=float)
    counts = np.floor(exact).astype(np.int64)
    short = total - counts.sum()
    if short:
        counts[np.argsort(-(exact - counts), kind="stable")[:short]] += 1
    return counts


@dataclass(frozen=True)
class _Plan:
    """Standing data and draws of the import MPANs, before any energy is computed."""

    gsp_group: np.ndarray
    kind: np.ndarray  # "smart_domestic" | "smart_non_domestic" | "advanced"
    supplier: np.ndarray
    annual_consumption: np.ndarray
    profile_class: np.ndarray
    solar: np.ndarray  # bool: domestic premises with rooftop solar and an export MPAN
    solar_capacity: np.ndarray  # [kWp], drawn for every MPAN, used where solar
    solar_site_factor: np.ndarray  # [-], drawn for every MPAN, used where solar
    ums_per_gsp: dict  # GSP group -> number of unmetered-supply MPANs (segment U)
    # the same draws as codes, so that later steps compare integers instead of every MPAN's string
    gsp_code: np.ndarray  # index into scenario.gsp_groups
    kind_code: np.ndarray  # index into _KINDS
    supplier_code: np.ndarray  # index into supplier_ids
    supplier_ids: np.ndarray  # the scenario's supplier ids


_KINDS = ("smart_domestic", "smart_non_domestic", "advanced")


def _annual_kwh(shapes: xr.DataArray, year: int, region: str, memo: dict | None) -> pd.Series:
    """:func:`annual_profile_kwh`, remembered in ``memo`` (one generation asks for a region twice)."""
    if memo is None:
        return annual_profile_kwh(shapes, year, region)
    if (year, region) not in memo:
        memo[year, region] = annual_profile_kwh(shapes, year, region)
    return memo[year, region]


def _plan_imports(scenario, settings: GeneratorSettings, shapes: xr.DataArray, annual_memo: dict | None = None
                  ) -> _Plan:
    groups = list(scenario.gsp_groups)
    shares = np.array([scenario.segments.smart_domestic, scenario.segments.smart_non_domestic,
                       scenario.segments.advanced, scenario.segments.unmetered])
    rng = stream(scenario.seed, "segments")
    kinds, gsp, ums_per_gsp = [], [], {}
    for i, g in enumerate(groups):  # a loop over GSP groups only
        n = int(scenario.mpans[g])
        *counts, ums_per_gsp[g] = _largest_remainder(n, shares)  # UMS MPANs come from unmetered_supplies()
        # the kinds' codes shuffled: the permutation of a generator depends on the length only, so
        # this is the shuffle of the kinds' strings, without moving 18-character strings
        kinds.append(rng.permutation(np.repeat(np.arange(len(_KINDS), dtype=np.int8), counts)))
        gsp.append(np.full(kinds[-1].size, i, dtype=np.int64))
    kind_code = np.concatenate(kinds)
    kind = np.array(_KINDS)[kind_code]
    gsp_code = np.concatenate(gsp)
    gsp_group = np.array(groups)[gsp_code]
    n_all = kind.size

    sup_ids = np.array([s.id for s in scenario.suppliers])
    sup_p = np.array([s.market_share for s in scenario.suppliers])
    supplier_code = stream(scenario.seed, "suppliers").choice(len(sup_ids), size=n_all, p=sup_p / sup_p.sum())
    supplier = sup_ids[supplier_code]

    rng_pc = stream(scenario.seed, "profile_classes")
    pcs = np.array([p for p, _ in settings.non_domestic_profile_classes])
    pc_p = np.array([w for _, w in settings.non_domestic_profile_classes], dtype=float)
    nd_pc = pcs[rng_pc.choice(len(pcs), size=n_all, p=pc_p / pc_p.sum())]
    adv_pc = rng_pc.integers(5, 9, size=n_all)
    is_dom, is_nd = kind_code == _KINDS.index("smart_domestic"), kind_code == _KINDS.index("smart_non_domestic")
    profile_class = np.select([is_dom, is_nd], [1, nd_pc], adv_pc)

    rng_ac = stream(scenario.seed, "annual_consumption")
    z = rng_ac.standard_normal(n_all)
    u = rng_ac.random(n_all)
    dom_ac = settings.domestic_mean_kwh * np.exp(settings.domestic_sigma * z - settings.domestic_sigma**2 / 2)
    year = scenario.first_date.year
    pc_annual = _annual_kwh(shapes, year, "england_wales", annual_memo)
    nd_mean = pc_annual.reindex(profile_class).to_numpy()
    nd_ac = nd_mean * np.exp(settings.non_domestic_sigma * z - settings.non_domestic_sigma**2 / 2)
    lo, hi = settings.advanced_kwh_range
    adv_ac = np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo)))
    annual = np.select([is_dom, is_nd], [dom_ac, nd_ac], adv_ac)

    rng_solar = stream(scenario.seed, "solar_sites")
    solar = is_dom & (rng_solar.random(n_all) < scenario.solar_export_share)
    cap = scenario.market.solar_capacity_kwp
    capacity = cap.min + (cap.max - cap.min) * rng_solar.random(n_all)
    ss = settings.solar_site_sigma
    site = np.exp(ss * rng_solar.standard_normal(n_all) - ss * ss / 2)
    return _Plan(gsp_group, kind, supplier, annual, profile_class, solar, capacity, site,
                 {g: int(n) for g, n in ums_per_gsp.items()}, gsp_code, kind_code, supplier_code, sup_ids)


def _time_frame(scenario) -> tuple[pd.DatetimeIndex, pd.DatetimeIndex, np.ndarray, np.ndarray, np.ndarray]:
    times = cal.time_axis(scenario.first_date, scenario.last_date)
    dates, periods = cal.from_utc(times)
    target_days = pd.DatetimeIndex(pd.unique(dates))
    day_of_t = target_days.get_indexer(dates)
    slot = cal.local_clock_index(times)
    return times, target_days, day_of_t, slot, periods


def _region_of(gsp_group: np.ndarray) -> np.ndarray:
    code, groups = pd.factorize(np.asarray(gsp_group))  # 14 GSP groups looked up, not every MPAN
    return reference.gsp_groups()["region"].reindex(groups).to_numpy().astype(str)[code]


def _region_codes(scenario, gsp_code: np.ndarray) -> tuple[list, np.ndarray]:
    """Bank-holiday regions of the GSP groups of some rows (:func:`_region_of`), as the distinct regions
    and each row's index among them: looked up per GSP group present, never per row."""
    groups = np.array(scenario.gsp_groups)
    present = np.flatnonzero(np.bincount(gsp_code, minlength=groups.size))
    names, of_present = np.unique(_region_of(groups[present]), return_inverse=True)
    of_group = np.zeros(groups.size, dtype=np.int64)
    of_group[present] = of_present
    return names.tolist(), of_group[gsp_code]


def _domestic_draws(scenario, plan: _Plan, target_days, library: HouseholdDays):
    dom = np.flatnonzero(plan.kind_code == _KINDS.index("smart_domestic"))
    if dom.size == 0:
        empty = np.zeros((0, len(target_days)), dtype=np.int64)
        return dom, dom.copy(), _codes(cal.profiling_seasons(target_days), _SEASON_CODES), empty, empty
    donor = library.donors[stream(scenario.seed, "donors").integers(library.donors.size, size=dom.size)]
    season = _codes(cal.profiling_seasons(target_days), _SEASON_CODES)
    region_names, r_idx = _region_codes(scenario, plan.gsp_code[dom])
    k_rd = np.stack([_codes(cal.day_types(target_days, r), _DAY_TYPE_CODES) for r in region_names])
    day_type = k_rd[r_idx]
    picks = draw_donor_days(library, donor, season, day_type, stream(scenario.seed, "donor_days"))
    return dom, donor, season, day_type, picks


def donor_mapping(scenario, settings: GeneratorSettings | None = None, lcl_path: str | Path | None = None) -> xr.Dataset:
    """The household-days that :func:`generate` gives each smart domestic MPAN (for inspection and tests).

    Parameters
    ----------
    scenario : Scenario
    settings : GeneratorSettings, optional
    lcl_path : path, optional
        LCL data set; default :data:`LCL_PATH`.

    Returns
    -------
    Dataset
        Dims (mpan_index, settlement_date): ``donor_household`` (per MPAN), ``donor_date`` (local date
        of the donor day), ``donor_season``/``donor_day_type`` and ``target_season``/``target_day_type``
        (names); ``mpan_index`` is the row of the MPAN in ``Market.meters``.
    """
    settings = settings or GeneratorSettings()
    shapes = reference.profile_class_shapes()
    plan = _plan_imports(scenario, settings, shapes)
    _, target_days, _, _, _ = _time_frame(scenario)
    library = _library(scenario, settings, lcl_path)
    dom, donor, season, day_type, picks = _domestic_draws(scenario, plan, target_days, library)
    seasons = np.array(cal.SEASONS)
    types = np.array(_DAY_TYPES)
    dims = ("mpan_index", "settlement_date")
    return xr.Dataset(
        {
            "donor_household": ("mpan_index", library.households[donor]),
            "donor_date": (dims, library.dates[picks].astype("datetime64[ns]")),
            "donor_season": (dims, seasons[library.season[picks]]),
            "donor_day_type": (dims, types[library.day_type[picks]]),
            "target_season": (dims, np.broadcast_to(seasons[season], picks.shape).copy()),
            "target_day_type": (dims, types[day_type]),
            "donor_profile": (dims + ("local_half_hour",), library.profiles[picks]),
            "donor_annual_kwh": ("mpan_index", library.annual_kwh[donor]),
        },
        coords={"mpan_index": dom, "settlement_date": target_days.to_numpy()},
        attrs=dict(library.excluded),
    )


def _library(scenario, settings: GeneratorSettings, lcl_path) -> HouseholdDays:
    return _cached_library(None if lcl_path is None else str(Path(lcl_path).resolve()), scenario.market.lcl_label,
                           float(scenario.market.min_household_coverage), float(settings.min_household_kwh),
                           int(settings.min_pool_days), settings.donor_region)


@functools.lru_cache(maxsize=4)
def _cached_library(lcl_path, label: str, min_coverage: float, min_annual_kwh: float, min_pool_days: int,
                    region: str) -> HouseholdDays:
    """The household-day library, read and cut once per process: a national market is generated in
    hundreds of blocks, and each would otherwise re-read the LCL file (its arrays are only read from)."""
    lcl = load_lcl_households(lcl_path, label=label)
    return household_day_library(lcl, min_coverage=min_coverage, min_annual_kwh=min_annual_kwh,
                                 min_pool_days=min_pool_days, region=region)


def _llfc_of(gsp_group: np.ndarray, segment_use: np.ndarray) -> np.ndarray:
    g_code, g_values = pd.factorize(np.asarray(gsp_group))
    u_code, u_values = pd.factorize(np.asarray(segment_use))
    return _llfc_of_codes(np.asarray(g_values, dtype=str), np.asarray(u_values, dtype=str), g_code, u_code)


def _llfc_of_codes(group_names: np.ndarray, use_names: np.ndarray, g_code: np.ndarray, u_code: np.ndarray
                   ) -> np.ndarray:
    """LLFC of each row from its GSP group and segment use given as codes into ``group_names`` and
    ``use_names``; looked up per distinct (GSP group, segment use) pair -- a few dozen -- not per MPAN."""
    table = reference.line_loss_factor_classes()
    key = table["gsp_group"].astype(str) + "|" + table["segment_use"].astype(str)
    if key.duplicated().any():
        dup = key[key.duplicated()].iloc[0]
        raise ValueError(f"line_loss_factor_classes: more than one LLFC for {dup!r}; expected one per "
                         "(GSP group, segment use)")
    lookup = pd.Series(table.index.to_numpy(), index=key.to_numpy())
    n_u = max(len(use_names), 1)
    # pairs in the order the rows first show them, so that the error names the first row's pair
    pair_code, pairs = pd.factorize(np.asarray(g_code, dtype=np.int64) * n_u + u_code)
    wanted = [f"{group_names[p // n_u]}|{use_names[p % n_u]}" for p in pairs]
    found = lookup.reindex(wanted)
    if found.isna().any():
        g, use = np.asarray(wanted)[found.isna().to_numpy()][0].split("|")
        raise ValueError(f"line_loss_factor_classes: no LLFC with segment_use {use!r} for GSP group {g}")
    return found.to_numpy().astype(str)[pair_code]


def _solar_generation(scenario, settings: GeneratorSettings, plan: _Plan, solar_rows: np.ndarray,
                      times: pd.DatetimeIndex, day_of_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rooftop generation of the solar homes [kWh per period] and their AE annual figure [kWh/year]."""
    groups = list(scenario.gsp_groups)
    table = reference.gsp_groups()
    lat = table.loc[groups, "latitude"].to_numpy(dtype=float)[:, None]
    lon = table.loc[groups, "longitude"].to_numpy(dtype=float)[:, None]
    mid = (times + cal.PERIOD / 2).to_numpy()[None, :]
    sun = np.maximum(np.sin(np.radians(solar_elevation(mid, lat, lon))), 0.0)  # (group, time)
    a, b = settings.clearness_beta
    n_days = int(day_of_t.max()) + 1
    clearness = stream(scenario.seed, "solar_weather").beta(a, b, size=(len(groups), n_days))
    capacity = plan.solar_capacity[solar_rows]
    site = plan.solar_site_factor[solar_rows]
    g_idx = pd.Index(groups).get_indexer(plan.gsp_group[solar_rows])
    generation = sun[g_idx] * clearness[g_idx][:, day_of_t]
    generation *= (capacity * site * settings.solar_performance_ratio * _HALF_HOUR_H)[:, None]
    # Expected generation of a year at mean clearness; the export MPAN's annual figure is the deemed
    # share of it (the true export is what the half-hourly netting gives).
    year_sun = _year_sun(scenario.first_date.year, tuple(lat[:, 0].tolist()), tuple(lon[:, 0].tolist()))
    expected_yield = year_sun * _HALF_HOUR_H * settings.solar_performance_ratio * a / (a + b)
    export_annual = capacity * site * expected_yield[g_idx] * settings.deemed_export_share
    return generation, export_annual


#: Segment uses of the metered MPANs (:func:`reference.line_loss_factor_classes`), by code.
_SEGMENT_USES = ("smart_domestic", "smart_non_domestic", "advanced_lv", "advanced_hv", "smart_export")


@functools.lru_cache(maxsize=16)
def _year_sun(year: int, lat: tuple, lon: tuple) -> np.ndarray:
    """Sum over a year's half hours of max(sin(solar elevation), 0) at each point [-]: the same for
    every block of a GSP group, so computed once per process (17,520 sun positions per group)."""
    times = pd.date_range(f"{year}-01-01", periods=365 * 48, freq="30min")
    lat_a, lon_a = np.array(lat, dtype=float)[:, None], np.array(lon, dtype=float)[:, None]
    year_sun = np.maximum(np.sin(np.radians(solar_elevation((times + cal.PERIOD / 2).to_numpy()[None, :],
                                                            lat_a, lon_a))), 0.0)
    out = year_sun.sum(axis=1)
    out.flags.writeable = False  # shared by the cache
    return out


def _standing_columns(scenario, settings: GeneratorSettings, plan: _Plan, solar_rows: np.ndarray,
                      export_annual: np.ndarray, dom: np.ndarray, donor_households: np.ndarray
                      ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """MPAN cores and standing data of the import MPANs (plan order) followed by the export MPANs.

    One NumPy array per column (:func:`tomlib.cube.meter_cube` takes them as they are: no table,
    no conversion of a national block's strings to pandas' Arrow strings and back). The text
    columns are made per distinct value (GSP group, segment use, supplier: a few dozen) and taken
    by each row's integer code, never by comparing or concatenating every MPAN's strings.
    """
    n_imp, n_exp = plan.kind.size, solar_rows.size
    # One core per import plus one reserved for its possible export MPAN, so that the import cores do
    # not depend on which homes have solar (and cores are unique across both by construction).
    pool = np.asarray(mpan_mod.generate_cores(np.concatenate([plan.gsp_group, plan.gsp_group]),
                                              stream(scenario.seed, "cores"), settings.mpan_id_range)).astype(str)
    cores = np.concatenate([pool[:n_imp], pool[n_imp + solar_rows]])
    gsp_all = np.concatenate([plan.gsp_group, plan.gsp_group[solar_rows]])
    g_all = np.concatenate([plan.gsp_code, plan.gsp_code[solar_rows]])
    supplier_all = np.concatenate([plan.supplier, plan.supplier[solar_rows]])
    s_all = np.concatenate([plan.supplier_code, plan.supplier_code[solar_rows]])
    # segment use by code (_SEGMENT_USES): the kinds' codes, advanced split by annual consumption
    use = np.concatenate([plan.kind_code.astype(np.int64), np.full(n_exp, _SEGMENT_USES.index("smart_export"))])
    adv = use == _KINDS.index("advanced")
    use[adv] = np.where(plan.annual_consumption[adv[:n_imp]] >= settings.advanced_hv_from_kwh,
                        _SEGMENT_USES.index("advanced_hv"), _SEGMENT_USES.index("advanced_lv"))
    export = use == _SEGMENT_USES.index("smart_export")
    linked = np.full(n_imp + n_exp, "", dtype=cores.dtype)
    linked[solar_rows] = cores[n_imp:]
    linked[n_imp:] = cores[solar_rows]
    donor_house = np.zeros(n_imp + n_exp, dtype=np.asarray(donor_households).dtype if dom.size else "<U1")
    donor_house[dom] = donor_households
    capacity = np.zeros(n_imp + n_exp)
    capacity[solar_rows] = plan.solar_capacity[solar_rows]
    capacity[n_imp:] = plan.solar_capacity[solar_rows]
    # BM unit 2__<GSP group letter><supplier>001 of every (GSP group, supplier) pair, taken by row
    letters = np.array([g[1] for g in scenario.gsp_groups], dtype=str)
    sup_ids = plan.supplier_ids.astype(str)
    bm_units = np.char.add(np.char.add("2__", letters[:, None]), np.char.add(sup_ids[None, :], "001")).ravel()
    # DI-015: W whole current (smart), L / H LV / HV current-transformer (advanced)
    connection = np.array(["W", "W", "L", "H", "W"])  # by _SEGMENT_USES

    return cores, {
        "gsp_group": gsp_all.astype(str),
        "market_segment": np.where(adv, "A", "S"),
        "connection_type": connection[use],
        "domestic": (use == _SEGMENT_USES.index("smart_domestic")) | export,
        "supplier": supplier_all.astype(str),
        "bm_unit": bm_units[g_all * sup_ids.size + s_all],
        "llfc": np.asarray(_llfc_of_codes(np.array(scenario.gsp_groups, dtype=str), np.array(_SEGMENT_USES), g_all,
                                          use), dtype=str),
        "measurement_quantity": np.where(export, "AE", "AI"),
        "annual_consumption": np.concatenate([plan.annual_consumption, export_annual]),
        # extra columns become extra mpan coordinates of the cube
        "profile_class": np.concatenate([plan.profile_class, np.zeros(n_exp, dtype=np.int64)]),
        "donor_household": donor_house,
        "linked_mpan": linked,
        "solar_capacity": capacity,
    }


def _with_unmetered(cores: np.ndarray, standing: dict[str, np.ndarray], ums) -> tuple[np.ndarray, dict]:
    """The UMS MPANs' standing data appended to the metered MPANs' (columns they lack: no profile
    class, donor or linked MPAN, no solar); a null left in a text column is refused by meter_cube."""
    extra = ums.standing.reindex(columns=list(standing))
    extra["profile_class"] = 0
    extra["donor_household"] = ""
    extra["linked_mpan"] = ""
    extra["solar_capacity"] = 0.0
    out = {}
    for col, values in standing.items():  # a dozen columns
        part = extra[col].to_numpy()
        if values.dtype.kind == "U" and not pd.isna(part).any():
            part = part.astype(str)
        out[col] = np.concatenate([values, part])
    return np.concatenate([cores, extra.index.to_numpy().astype(str)]), out


def _sorted_codes(text: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(text, return_inverse=True)`` of a NumPy text array; strings of up to three characters
    (LLFCs) are sorted as the integers their code points make (21 bits each, first character
    highest: the strings' order), not as strings."""
    width = text.dtype.itemsize // 4
    if text.dtype.kind != "U" or not 1 <= width <= 3 or text.size == 0:
        uniques, inverse = np.unique(text, return_inverse=True)
        return uniques, inverse.reshape(-1)
    points = np.ascontiguousarray(text).view(np.uint32).reshape(text.size, width).astype(np.int64)
    key = points[:, 0]
    for k in range(1, width):
        key = (key << 21) | points[:, k]
    keys, inverse = np.unique(key, return_inverse=True)
    first = np.zeros(keys.size, dtype=np.int64)
    first[inverse[::-1]] = np.arange(text.size - 1, -1, -1)  # a row of each distinct key
    return text[first], inverse.reshape(-1)


def _losses_and_take(scenario, energy: np.ndarray, standing: dict[str, np.ndarray], times: pd.DatetimeIndex,
                     slot: np.ndarray) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    """Line loss factors (llfc x time), unaccounted energy and GSP group take (gsp_group x time)."""
    from tomlib._market_kernels import rows_times_table

    llfc = np.asarray(standing["llfc"], dtype=str)
    used, llfc_code = _sorted_codes(llfc)
    voltage = reference.line_loss_factor_classes().loc[used, "voltage_level"].to_numpy()
    months = pd.DatetimeIndex(cal.from_utc(times)[0]).month.to_numpy()
    llf_values = reference.band_line_loss_factors(voltage[:, None], slot[None, :], months[None, :])
    # the settlement coordinates of the three arrays, computed once (_with_settlement_coords' values)
    dates, periods = cal.from_utc(times.to_numpy())
    settlement = {"settlement_date": ("time", dates.to_numpy()), "settlement_period": ("time", periods)}
    llf = (xr.DataArray(
        llf_values, dims=("llfc", "time"), coords={"llfc": used, "time": times.to_numpy()},
        name="line_loss_factor", attrs={"units": "-", "long_name": "line loss factor"},
    ).assign_coords(settlement))
    at_gsp = rows_times_table(energy, llfc_code, llf_values)  # energy x LLF, no gathered cube of LLFs
    groups = np.array(scenario.gsp_groups)
    member = np.asarray(standing["gsp_group"], dtype=str)[None, :] == groups[:, None]  # (group, mpan)
    is_import = np.asarray(standing["measurement_quantity"], dtype=str) == "AI"
    # einsum's own loops, not a BLAS product, whose rounding depends on its thread count: the take of a
    # block must not depend on the process that generates it (a one-thread dask worker, or not)
    imports_llf = np.einsum("gm,mt->gt", (member & is_import).astype(float), at_gsp)
    exports_llf = np.einsum("gm,mt->gt", (member & ~is_import).astype(float), at_gsp)
    del at_gsp
    ue = scenario.market.unaccounted_energy
    fraction = ue.mean + ue.sd * stream(scenario.seed, "unaccounted").standard_normal(imports_llf.shape)
    unaccounted = fraction * imports_llf
    take = imports_llf - exports_llf + unaccounted
    coords = {"gsp_group": groups, "time": times.to_numpy()}
    unaccounted_da = xr.DataArray(
        unaccounted, dims=("gsp_group", "time"), coords=coords, name="unaccounted_energy",
        attrs={"units": "kWh", "long_name": "energy in the GSP group take that no meter sees"},
    ).assign_coords(settlement)
    take_da = xr.DataArray(
        take, dims=("gsp_group", "time"), coords=coords, name="gsp_group_take",
        attrs={"units": "kWh", "long_name": "true GSP group take"},
    ).assign_coords(settlement)
    return llf, unaccounted_da, take_da


def generate(scenario, settings: GeneratorSettings | None = None, lcl_path: str | Path | None = None) -> Market:
    """Build the true world of a scenario.

    Parameters
    ----------
    scenario : Scenario
        From :func:`tomlib.scenario.load_scenario`.
    settings : GeneratorSettings, optional
        [INF] modelling choices; default :class:`GeneratorSettings()`.
    lcl_path : path, optional
        LCL data set; default :data:`LCL_PATH`.

    Returns
    -------
    Market

    Raises
    ------
    ValueError
        If reference data needed for an MPAN is missing.
    """
    from tomlib._market_kernels import gather_rows

    settings = settings or GeneratorSettings()
    shapes = reference.profile_class_shapes()
    times, target_days, day_of_t, slot, _ = _time_frame(scenario)
    n_t = len(times)
    annual_memo: dict = {}
    plan = _plan_imports(scenario, settings, shapes, annual_memo)
    n_imp = plan.kind.size
    solar_rows = np.flatnonzero(plan.solar)
    n_exp = solar_rows.size
    # rows for the unmetered supplies too (appended below), so that their energy is not a copy of all
    n_ums = int(sum(plan.ums_per_gsp.values()))
    energy = np.empty((n_imp + n_exp + n_ums, n_t))

    # Smart domestic: real household-days, times the MPAN's scale and noise, written in place.
    library = _library(scenario, settings, lcl_path)
    dom, donor, _, _, picks = _domestic_draws(scenario, plan, target_days, library)
    scale = plan.annual_consumption[dom] / library.annual_kwh[donor]
    noise = ar1_lognormal_noise(
        stream(scenario.seed, "household_noise"), (dom.size, n_t), scenario.market.household_noise, 0.0
    )
    gather_rows(energy, dom, library.profiles, picks, day_of_t, slot, scale, noise)
    del noise

    # Smart non-domestic and advanced: profile class shapes.
    other = np.flatnonzero(plan.kind_code != _KINDS.index("smart_domestic"))
    noise = ar1_lognormal_noise(
        stream(scenario.seed, "profile_noise"), (other.size, n_t), scenario.market.non_domestic_noise,
        settings.noise_ar1,
    )
    region_names, r_idx = _region_codes(scenario, plan.gsp_code[other])
    _profile_class_energy_into(energy, other, shapes, plan.profile_class[other], plan.annual_consumption[other],
                               region_names, r_idx, target_days, day_of_t, slot,
                               reference_year=scenario.first_date.year, noise=noise, annual_memo=annual_memo)
    del noise

    # Solar homes: generation nets against the household's demand, the surplus is exported.
    generation, export_annual = _solar_generation(scenario, settings, plan, solar_rows, times, day_of_t)
    demand = energy[solar_rows]
    energy[n_imp:n_imp + n_exp] = np.maximum(generation - demand, 0.0)
    energy[solar_rows] = np.maximum(demand - generation, 0.0)
    del demand, generation

    cores, standing = _standing_columns(scenario, settings, plan, solar_rows, export_annual,
                                       dom, library.households[donor])

    # Unmetered supplies: their own generator; they join the meter cube like any other MPAN.
    ums = unmetered_supplies(scenario, times, stream(scenario.seed, "unmetered"), plan.ums_per_gsp,
                             cores, settings.mpan_id_range)
    if ums is not None:
        n_metered = cores.size
        cores, standing = _with_unmetered(cores, standing, ums)
        ums_energy = ums.energy.sel(mpan=cores[n_metered:]).to_numpy()
        if ums_energy.shape != (n_ums, n_t):
            raise RuntimeError(f"unmetered supplies: {ums_energy.shape[0]} MPANs made, {n_ums} planned")
        energy[n_metered:] = ums_energy
    elif n_ums:
        raise RuntimeError(f"unmetered supplies: none made, {n_ums} planned")
    meters = cube.meter_cube(energy, times, cores, standing)
    meters["solar_capacity"].attrs.update(units="kWp", long_name="rooftop solar capacity (0: none)")
    meters["profile_class"].attrs.update(long_name="profile class of the shape behind the true energy "
                                         "(1: LCL households; 0: export)")
    meters["donor_household"].attrs.update(long_name="LCL household whose days make the true energy")
    meters["linked_mpan"].attrs.update(long_name="export MPAN of a solar home's import MPAN and vice versa")

    llf, unaccounted_da, take_da = _losses_and_take(scenario, energy, standing, times, slot)

    attrs = {
        "scenario_name": scenario.name,
        "scenario_digest": scenario.digest(),
        "seed": int(scenario.seed),
        "tomlib_version": _tomlib_version(),
        "generator_settings": settings.to_json(),
        "lcl_label": scenario.market.lcl_label,
        **library.excluded,
    }
    meters.attrs.update(attrs)
    return Market(
        scenario_name=scenario.name,
        seed=int(scenario.seed),
        meters=meters,
        line_loss_factors=llf,
        unaccounted_energy=unaccounted_da,
        gsp_group_take=take_da,
        attrs=attrs,
        ums=ums,
    )
