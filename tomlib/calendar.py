"""Settlement days, settlement periods and the GB calendar (clock changes, seasons, bank holidays).

Conventions
-----------
- **Times are UTC.** Every instant is a tz-naive ``numpy.datetime64[ns]`` (or a tz-naive
  ``pandas.DatetimeIndex``) that *means* UTC, because xarray has no tz-aware dtype. Functions returning
  instants return a ``DatetimeIndex`` named ``"time"`` in nanosecond resolution. Functions that take
  instants also accept tz-aware values and convert them to UTC.
- **A settlement date is a local date.** It is the UK (``Europe/London``) calendar date, held as a
  tz-naive midnight timestamp (e.g. ``Timestamp("2026-03-29")``). It is a label, not an instant;
  tz-aware or non-midnight settlement dates are rejected.
- **Settlement day D starts at local midnight.** Settlement period (SP) *j* of D starts at
  ``utc(local_midnight(D)) + 30 min x (j - 1)``; D has
  ``(utc(local_midnight(D + 1)) - utc(local_midnight(D))) / 30 min`` periods: 48, 46 on the March
  clock-change day and 50 on the October one (mhhs-domain.md §2.0, F-7, F-8). The addition is done on
  UTC instants only; wall-clock arithmetic on aware local times gives the wrong instant on clock-change
  days. This is the BSC settlement day, not the 23:00-starting wholesale/EFA day.
- **Invalid input raises** ``ValueError`` naming the first offending value, e.g. ``"settlement period
  47 does not exist on 2026-03-29 (valid: 1..46)"``. Nothing is clipped, rolled into the next day or
  dropped.
- **Regions** for bank holidays are ``"england_wales"`` (``holidays.UK(subdiv="ENG")``; Wales has the
  same bank holidays) and ``"scotland"`` (``subdiv="SCT"``). The ``holidays`` package computes its rules
  for any year; it was checked for 1996-2040 (jubilees, the 2022 State Funeral, the 2023 Coronation,
  Scottish 2 January and St Andrew's Day substitutes). Bank holidays announced after the installed
  ``holidays`` release are not known to it.
- **Profiling seasons** are the Elexon load-profile seasons (mhhs-domain.md F-28) built from the two
  clock-change days (taken from the tz database) and the England & Wales August bank holiday (last
  Monday in August).

Scalar inputs give scalar outputs for numbers and labels (``periods_in_day``, ``day_types``,
``profiling_seasons``, ``working_days_between``); functions returning instants or dates always return a
``DatetimeIndex`` (array inputs are broadcast and flattened in C order).
"""

from __future__ import annotations

from functools import cache, lru_cache
from zoneinfo import ZoneInfo

import holidays as _holidays
import numpy as np
import pandas as pd

__all__ = [
    "DAY_TYPES",
    "PERIOD",
    "REGIONS",
    "SEASONS",
    "TZ",
    "add_working_days",
    "day_types",
    "from_utc",
    "local_clock_index",
    "period_starts",
    "periods_in_day",
    "profiling_seasons",
    "time_axis",
    "to_utc",
    "working_days_between",
]

TZ = ZoneInfo("Europe/London")
PERIOD = pd.Timedelta("30min")
REGIONS = ("england_wales", "scotland")
SEASONS = ("winter", "spring", "summer", "high_summer", "autumn")
DAY_TYPES = ("weekday", "saturday", "sunday", "bank_holiday")

_HOLIDAY_SUBDIV = {"england_wales": "ENG", "scotland": "SCT"}
_PERIOD_NS = np.timedelta64(30 * 60 * 10**9, "ns")


# --------------------------------------------------------------------------------------------------
# input coercion
# --------------------------------------------------------------------------------------------------
def _datetimes(values, what: str) -> tuple[np.ndarray, tuple[int, ...], bool, bool]:
    """Coerce values to a flat datetime64[ns] array.

    Returns (flat values, shape, is_scalar, was_tz_aware). Raises ValueError on non-dates and NaT.
    """
    scalar = np.ndim(values) == 0 and not isinstance(values, (pd.Index, pd.Series, np.ndarray))
    if scalar:
        values = [values]
    if isinstance(values, (pd.Series, pd.Index)):
        shape = (len(values),)
        arr = values
        if values.dtype.kind in "iufcb" and len(values):
            raise ValueError(f"{what}: expected dates/times, got numbers of dtype {values.dtype}")
    else:
        arr = np.asarray(values)
        shape = arr.shape
        if arr.dtype.kind in "iufcb" and arr.size:
            raise ValueError(f"{what}: expected dates/times, got numbers of dtype {arr.dtype}")
        arr = arr.ravel()
    aware = isinstance(getattr(arr, "dtype", None), pd.DatetimeTZDtype)
    try:
        idx = pd.DatetimeIndex(pd.to_datetime(arr))
    except (ValueError, TypeError) as err:
        raise ValueError(f"{what}: cannot interpret as dates/times ({err})") from None
    if idx.tz is not None:
        aware = True
        idx = idx.tz_convert("UTC").tz_localize(None)
    out = idx.as_unit("ns").to_numpy()
    nat = np.isnat(out)
    if nat.any():
        raise ValueError(f"{what}: NaT at position {int(np.argmax(nat))} (expected a date/time)")
    return out, shape, scalar, aware


def _dates(values, what: str = "settlement date") -> tuple[np.ndarray, tuple[int, ...], bool]:
    """Coerce settlement dates to a flat datetime64[D] array; reject tz-aware and non-midnight values."""
    ns, shape, scalar, aware = _datetimes(values, what)
    if aware:
        raise ValueError(
            f"{what}: expected tz-naive local dates (midnight), got tz-aware values; "
            "a settlement date is a UK calendar date, not an instant"
        )
    days = ns.astype("datetime64[D]")
    off = days.astype("datetime64[ns]") != ns
    if off.any():
        i = int(np.argmax(off))
        raise ValueError(
            f"{what}: {pd.Timestamp(ns[i])} at position {i} is not a midnight date "
            "(settlement dates are tz-naive local dates at 00:00)"
        )
    return days, shape, scalar


def _check_region(region: str) -> str:
    if region not in REGIONS:
        raise ValueError(f"unknown region {region!r}; valid regions: {', '.join(map(repr, REGIONS))}")
    return region


def _year_span(days: np.ndarray) -> tuple[int, int]:
    years = days.astype("datetime64[Y]").astype(np.int64) + 1970
    return int(years.min()), int(years.max())


def _shape_out(values: np.ndarray, shape: tuple[int, ...], scalar: bool):
    if scalar:
        return values[0].item()
    return values.reshape(shape)


# --------------------------------------------------------------------------------------------------
# settlement periods
# --------------------------------------------------------------------------------------------------
@cache
def _midnight_offsets_year(year: int) -> np.ndarray:
    """UTC offset [timedelta64[ns]] of local midnight on each day of a year, from the tz database.

    UK clocks change at 01:00 UTC, so local midnight is never ambiguous or missing; "raise" guards
    against a changed tz database rather than choosing silently.
    """
    days = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D", unit="ns")
    utc = days.tz_localize(TZ, ambiguous="raise", nonexistent="raise").tz_convert("UTC").tz_localize(None)
    offsets = days.to_numpy() - utc.as_unit("ns").to_numpy()
    offsets.flags.writeable = False
    return offsets


@lru_cache(maxsize=64)
def _midnight_offsets(y0: int, y1: int) -> np.ndarray:
    offsets = np.concatenate([_midnight_offsets_year(y) for y in range(y0, y1 + 1)])
    offsets.flags.writeable = False
    return offsets


def _midnight_utc(days: np.ndarray) -> np.ndarray:
    """UTC instant [datetime64[ns]] of local midnight for each local date in days [datetime64[D]]."""
    if days.size == 0:
        return days.astype("datetime64[ns]")
    y0, y1 = _year_span(days)
    offsets = _midnight_offsets(y0, y1)
    return (
        days.astype("datetime64[ns]") - offsets[(days - np.datetime64(f"{y0}-01-01", "D")).astype(np.int64)]
    )


def _n_periods(days: np.ndarray) -> np.ndarray:
    start = _midnight_utc(days)
    end = _midnight_utc(days + np.timedelta64(1, "D"))
    return ((end - start) // _PERIOD_NS).astype(np.int64)


def periods_in_day(settlement_dates):
    """Number of settlement periods in each settlement day.

    Parameters
    ----------
    settlement_dates : date-like or array-like of date-like
        Settlement dates (tz-naive local dates at midnight).

    Returns
    -------
    int or numpy.ndarray of int
        Periods in the day [-]: 48, 46 (March clock change) or 50 (October clock change). A scalar in
        gives an ``int``; an array in gives an array of the same shape.
    """
    days, shape, scalar = _dates(settlement_dates)
    return _shape_out(_n_periods(days), shape, scalar)


def _periods(values) -> np.ndarray:
    """Coerce settlement periods to a numeric array (int64 or float64; integrality checked later)."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if arr.dtype.kind == "O":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError("settlement period: expected integers, got non-numeric values") from None
    if arr.dtype.kind != "f":
        raise ValueError(f"settlement period: expected integers, got dtype {arr.dtype}")
    return arr


def to_utc(settlement_dates, settlement_periods) -> pd.DatetimeIndex:
    """UTC start of settlement periods.

    SP *j* of day D starts at ``utc(local_midnight(D)) + 30 min x (j - 1)``.

    Parameters
    ----------
    settlement_dates : date-like or array-like
        Settlement dates (tz-naive local dates at midnight).
    settlement_periods : int or array-like of int
        Settlement periods [-], 1..46/48/50; integral floats are accepted. Broadcast against
        ``settlement_dates``.

    Returns
    -------
    pandas.DatetimeIndex
        Period start times [UTC, tz-naive, ns], name ``"time"``, flattened in C order.

    Raises
    ------
    ValueError
        If a period does not exist on its day (e.g. ``"settlement period 47 does not exist on
        2026-03-29 (valid: 1..46)"``), is not an integer, or a date is NaT / not a midnight date.
    """
    days, dshape, _ = _dates(settlement_dates)
    sps = _periods(settlement_periods)
    try:
        days, sps = np.broadcast_arrays(days.reshape(dshape), sps)
    except ValueError:
        raise ValueError(
            f"settlement dates of shape {dshape} and periods of shape {sps.shape} do not broadcast"
        ) from None
    days, sps = days.ravel(), sps.ravel()
    if sps.dtype.kind == "f":
        bad = ~np.isfinite(sps) | (sps != np.round(sps))
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"settlement period {float(sps[i])} on {days[i]} is not an integer")
        sps = sps.astype(np.int64)
    n = _n_periods(days)
    bad = (sps < 1) | (sps > n)
    if bad.any():
        i = int(np.argmax(bad))
        more = int(bad.sum()) - 1
        tail = f"; {more} more invalid" if more else ""
        raise ValueError(f"settlement period {sps[i]} does not exist on {days[i]} (valid: 1..{n[i]}){tail}")
    times = _midnight_utc(days) + (sps - 1) * _PERIOD_NS
    return pd.DatetimeIndex(times, name="time")


def period_starts(settlement_date) -> pd.DatetimeIndex:
    """UTC start of every settlement period of one settlement day.

    Parameters
    ----------
    settlement_date : date-like
        One settlement date (tz-naive local date at midnight).

    Returns
    -------
    pandas.DatetimeIndex
        46, 48 or 50 period starts [UTC, tz-naive, ns], name ``"time"``.
    """
    days, _, _ = _dates(settlement_date)
    if days.size != 1:
        raise ValueError(f"settlement date: expected one date, got {days.size}")
    start = _midnight_utc(days)[0]
    n = int(_n_periods(days)[0])
    return pd.DatetimeIndex(start + np.arange(n) * _PERIOD_NS, name="time")


def time_axis(first_date, last_date) -> pd.DatetimeIndex:
    """Every period start of the settlement days ``first_date`` .. ``last_date`` inclusive.

    Parameters
    ----------
    first_date, last_date : date-like
        First and last settlement date (tz-naive local dates at midnight), first <= last.

    Returns
    -------
    pandas.DatetimeIndex
        Contiguous half-hourly period starts [UTC, tz-naive, ns] with no gaps, name ``"time"``.
    """
    first, _, _ = _dates(first_date, "first_date")
    last, _, _ = _dates(last_date, "last_date")
    if first.size != 1 or last.size != 1:
        raise ValueError("time_axis: first_date and last_date must be single dates")
    if last[0] < first[0]:
        raise ValueError(f"time_axis: last_date {last[0]} is before first_date {first[0]}")
    start = _midnight_utc(first)[0]
    end = _midnight_utc(last + np.timedelta64(1, "D"))[0]
    n = int((end - start) // _PERIOD_NS)
    return pd.DatetimeIndex(start + np.arange(n) * _PERIOD_NS, name="time")


def _locate(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Settlement date [datetime64[D]] and 0-based period index of UTC instants [datetime64[ns]]."""
    # UK local time is UTC or UTC+1, so the settlement day is the UTC date or the one after it.
    d0 = t.astype("datetime64[D]")
    d1 = d0 + np.timedelta64(1, "D")
    days = np.where(t >= _midnight_utc(d1), d1, d0)
    k = (t - _midnight_utc(days)) // _PERIOD_NS
    return days, k.astype(np.int64)


def from_utc(times) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Settlement date and period of UTC period-start instants.

    Parameters
    ----------
    times : array-like of datetime-like
        Period start times [UTC; tz-naive means UTC, tz-aware values are converted]. Each must be on a
        half-hour boundary.

    Returns
    -------
    settlement_dates : pandas.DatetimeIndex
        Local settlement dates (tz-naive midnight, ns), name ``"settlement_date"``, flattened.
    settlement_periods : numpy.ndarray of int8
        Settlement periods [-], 1..46/48/50, same shape as ``times``.

    Raises
    ------
    ValueError
        If a time is NaT or not the start of a half hour.
    """
    t, shape, _, _ = _datetimes(times, "time")
    misaligned = (t - np.datetime64(0, "ns")) % _PERIOD_NS != np.timedelta64(0, "ns")
    if misaligned.any():
        i = int(np.argmax(misaligned))
        raise ValueError(
            f"time {pd.Timestamp(t[i])} (UTC) at position {i} is not a settlement period start "
            "(expected a multiple of 30 minutes)"
        )
    days, k = _locate(t)
    dates = pd.DatetimeIndex(days.astype("datetime64[ns]"), name="settlement_date")
    return dates, (k + 1).astype(np.int8).reshape(shape)


def local_clock_index(times) -> np.ndarray:
    """Index of the local (UK wall-clock) half hour that each UTC instant falls in.

    Parameters
    ----------
    times : array-like of datetime-like
        Instants [UTC; tz-naive means UTC].

    Returns
    -------
    numpy.ndarray of int
        0..47 [-]: 0 is local 00:00-00:30, 47 is 23:30-24:00. On the 50-period day the repeated hour
        (01:00-02:00) maps twice to indices 2, 3; on the 46-period day indices 2, 3 never occur.
        Used to put local-time behaviour (load profiles, households) onto settlement periods.
    """
    t, shape, scalar, _ = _datetimes(times, "time")
    local = pd.DatetimeIndex(t).tz_localize("UTC").tz_convert(TZ).tz_localize(None).as_unit("ns")
    wall = local.to_numpy()
    index = (wall - wall.astype("datetime64[D]").astype("datetime64[ns]")) // _PERIOD_NS
    return _shape_out(index.astype(np.int64), shape, scalar)


# --------------------------------------------------------------------------------------------------
# clock changes, bank holidays, seasons
# --------------------------------------------------------------------------------------------------
@cache
def _clock_change_days(year: int) -> tuple[np.datetime64, np.datetime64]:
    """The 46-period (spring) and 50-period (autumn) settlement days of a year, from the tz database."""
    days = np.arange(f"{year}-01-01", f"{year + 1}-01-01", dtype="datetime64[D]")
    n = _n_periods(days)
    short, long_ = days[n == 46], days[n == 50]
    if short.size != 1 or long_.size != 1:
        raise ValueError(
            f"year {year}: expected one 46-period and one 50-period day in Europe/London, "
            f"found {short.size} and {long_.size}"
        )
    return short[0], long_[0]


def _august_bank_holiday(year: int) -> np.datetime64:
    """England & Wales late summer bank holiday: the last Monday in August."""
    aug31 = np.datetime64(f"{year}-08-31", "D")
    weekday = (aug31.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    return aug31 - np.timedelta64(int(weekday), "D")


@cache
def _season_starts(year: int) -> np.ndarray:
    """First day of spring, summer, high summer, autumn and (October) winter in a year [datetime64[D]].

    Elexon profiling seasons (mhhs-domain.md F-28): with AugBH a Monday, the n-th Saturday before it
    is AugBH - 2 - 7 (n - 1) days, the Sunday after it AugBH + 6.
    """
    march, october = _clock_change_days(year)
    aug_bh = _august_bank_holiday(year)
    day = np.timedelta64(1, "D")
    summer = aug_bh - (2 + 7 * 15) * day  # 16th Saturday before AugBH
    high_summer = aug_bh - (2 + 7 * 5) * day  # 6th Saturday before AugBH
    autumn = aug_bh + 7 * day  # Monday after AugBH
    starts = np.array([march, summer, high_summer, autumn, october], dtype="datetime64[D]")
    starts.flags.writeable = False
    return starts


_SEASON_BY_INDEX = np.array(["winter", "spring", "summer", "high_summer", "autumn", "winter"])


def profiling_seasons(settlement_dates):
    """Elexon profiling season of each settlement date.

    Seasons (mhhs-domain.md F-28, Elexon 1997 load profiles): spring from the March clock-change day
    to the Friday before summer; summer the ten weeks from the 16th Saturday before the England & Wales
    August bank holiday (AugBH); high summer from the 6th Saturday before AugBH to the Sunday after it;
    autumn from the Monday after AugBH to the day before the October clock change; winter from the
    October clock change to the day before the March clock change.

    Parameters
    ----------
    settlement_dates : date-like or array-like
        Settlement dates (tz-naive local dates at midnight).

    Returns
    -------
    str or numpy.ndarray of str
        One of ``SEASONS`` per date.
    """
    days, shape, scalar = _dates(settlement_dates)
    if days.size == 0:
        return np.array([], dtype=_SEASON_BY_INDEX.dtype).reshape(shape)
    y0, y1 = _year_span(days)
    table = np.stack([_season_starts(y) for y in range(y0, y1 + 1)])
    year_idx = days.astype("datetime64[Y]").astype(np.int64) + 1970 - y0
    idx = (days[:, None] >= table[year_idx]).sum(axis=1)
    return _shape_out(_SEASON_BY_INDEX[idx], shape, scalar)


@cache
def _bank_holidays_year(region: str, year: int) -> np.ndarray:
    cal = _holidays.UK(subdiv=_HOLIDAY_SUBDIV[region], years=year)
    days = np.array(sorted(d for d in cal if d.year == year), dtype="datetime64[D]")
    days.flags.writeable = False
    return days


@lru_cache(maxsize=64)
def _bank_holidays(region: str, y0: int, y1: int) -> np.ndarray:
    days = np.concatenate([_bank_holidays_year(region, y) for y in range(y0, y1 + 1)])
    days.flags.writeable = False
    return days


def _weekday(days: np.ndarray) -> np.ndarray:
    """Day of week, Monday = 0 .. Sunday = 6."""
    return (days.astype(np.int64) + 3) % 7


def day_types(settlement_dates, region: str):
    """Day type of each settlement date in a region.

    Parameters
    ----------
    settlement_dates : date-like or array-like
        Settlement dates (tz-naive local dates at midnight).
    region : {"england_wales", "scotland"}
        Bank-holiday region (``holidays.UK`` subdivision ENG or SCT).

    Returns
    -------
    str or numpy.ndarray of str
        ``"bank_holiday"`` on a weekday that the ``holidays`` package lists for the region (a
        holiday falling on a weekend keeps its Saturday/Sunday type: its bank holiday is the weekday
        substitute the package also lists), else ``"weekday"``, ``"saturday"`` or ``"sunday"``.
    """
    _check_region(region)
    days, shape, scalar = _dates(settlement_dates)
    if days.size == 0:
        return np.array([], dtype="<U12").reshape(shape)
    wd = _weekday(days)
    code = np.where(wd == 5, 1, np.where(wd == 6, 2, 0))
    # Only weekdays can be bank holidays: a Saturday Boxing Day is settled as a Saturday, and the
    # Monday substitute as the bank holiday, which is how the day behaves on the network.
    is_holiday = np.isin(days, _bank_holidays(region, *_year_span(days))) & (wd < 5)
    code = np.where(is_holiday, 3, code)
    return _shape_out(np.array(DAY_TYPES)[code], shape, scalar)


# --------------------------------------------------------------------------------------------------
# working days
# --------------------------------------------------------------------------------------------------
def _busdaycal(region: str, y0: int, y1: int) -> np.busdaycalendar:
    return np.busdaycalendar(weekmask="1111100", holidays=_bank_holidays(region, y0, y1))


def add_working_days(dates, n, region: str = "england_wales") -> pd.DatetimeIndex:
    """Date ``n`` working days after (``n > 0``) or before (``n < 0``) each date.

    A working day is a day that is not a Saturday, Sunday or bank holiday of the region. For ``n > 0``
    the result is the n-th working day strictly after the date; for ``n < 0`` the |n|-th working day
    strictly before it; ``n == 0`` returns the date itself (even if it is not a working day). So
    ``working_days_between(d, add_working_days(d, n)) == n``.

    Parameters
    ----------
    dates : date-like or array-like
        Dates (tz-naive midnight).
    n : int or array-like of int
        Working-day offset [working days], broadcast against ``dates``.
    region : {"england_wales", "scotland"}
        Bank-holiday region.

    Returns
    -------
    pandas.DatetimeIndex
        Resulting dates (tz-naive midnight, ns), flattened in C order.
    """
    _check_region(region)
    days, shape, _ = _dates(dates, "date")
    offsets = np.asarray(n)
    if offsets.dtype.kind not in "iu":
        raise ValueError(f"working-day offset n: expected integers, got dtype {offsets.dtype}")
    days, offsets = np.broadcast_arrays(days.reshape(shape), offsets.astype(np.int64))
    days, offsets = days.ravel(), offsets.ravel()
    if days.size == 0:
        return pd.DatetimeIndex(days.astype("datetime64[ns]"))
    y0, y1 = _year_span(days)
    # Each year has > 200 working days, so this span always contains the result.
    reach = int(np.abs(offsets).max()) // 200 + 1
    cal = _busdaycal(region, y0 - reach, y1 + reach)
    fwd = np.busday_offset(days, np.maximum(offsets, 0), roll="backward", busdaycal=cal)
    back = np.busday_offset(days, np.minimum(offsets, 0), roll="forward", busdaycal=cal)
    out = np.where(offsets > 0, fwd, np.where(offsets < 0, back, days))
    return pd.DatetimeIndex(out.astype("datetime64[ns]"))


def working_days_between(start, end, region: str = "england_wales"):
    """Signed number of working days from ``start`` to ``end``.

    Counts working days after ``start`` up to and including ``end`` when ``end >= start`` and returns
    minus the working days from ``end`` up to but excluding ``start`` otherwise, so that it inverts
    ``add_working_days``.

    Parameters
    ----------
    start, end : date-like or array-like
        Dates (tz-naive midnight), broadcast against each other.
    region : {"england_wales", "scotland"}
        Bank-holiday region.

    Returns
    -------
    int or numpy.ndarray of int
        Working days [working days]; a scalar when both inputs are scalars.
    """
    _check_region(region)
    a, ashape, ascalar = _dates(start, "start")
    b, bshape, bscalar = _dates(end, "end")
    a, b = np.broadcast_arrays(a.reshape(ashape), b.reshape(bshape))
    shape = a.shape
    a, b = a.ravel(), b.ravel()
    if a.size == 0:
        return np.zeros(shape, dtype=np.int64)
    cal = _busdaycal(region, *_year_span(np.concatenate([a, b])))
    one = np.timedelta64(1, "D")
    forward = np.busday_count(a + one, b + one, busdaycal=cal)
    backward = -np.busday_count(b, a, busdaycal=cal)
    out = np.where(b >= a, forward, backward).astype(np.int64)
    return _shape_out(out, shape, ascalar and bscalar)
