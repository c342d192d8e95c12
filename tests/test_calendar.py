"""Tests for tomlib.calendar: settlement days/periods, clock changes, seasons, bank holidays, working days.

Golden cases: mhhs-domain.md §5 G-1 (2023-10-29, 50 periods) and G-2 (2026-03-29, 46 periods), the
workbench-guide §5.1 table, and NESO demand data for 2022 (tests/data/neso_demand_2022_nd.csv.gz).
"""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tomlib import calendar as cal

DATA = Path(__file__).parent / "data"
LONDON = ZoneInfo("Europe/London")
FIRST, LAST = dt.date(1996, 1, 1), dt.date(2040, 12, 31)
dates_strategy = st.dates(min_value=FIRST, max_value=LAST)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text)


def utc_list(*texts: str) -> list[pd.Timestamp]:
    return [pd.Timestamp(t) for t in texts]


# --------------------------------------------------------------------------------------------------
# golden clock-change days
# --------------------------------------------------------------------------------------------------
def test_g1_long_day_2023_10_29():
    starts = cal.period_starts("2023-10-29")
    assert cal.periods_in_day("2023-10-29") == 50
    assert len(starts) == 50
    assert list(starts[:5]) == utc_list(
        "2023-10-28 23:00", "2023-10-28 23:30", "2023-10-29 00:00", "2023-10-29 00:30", "2023-10-29 01:00"
    )
    assert starts[49] == ts("2023-10-29 23:30")
    assert list(cal.to_utc("2023-10-29", [1, 4, 5, 50])) == utc_list(
        "2023-10-28 23:00", "2023-10-29 00:30", "2023-10-29 01:00", "2023-10-29 23:30"
    )
    with pytest.raises(ValueError, match=r"51 does not exist on 2023-10-29 \(valid: 1\.\.50\)"):
        cal.to_utc("2023-10-29", 51)


def test_g2_short_day_2026_03_29():
    starts = cal.period_starts("2026-03-29")
    assert cal.periods_in_day("2026-03-29") == 46
    assert len(starts) == 46
    assert list(starts[:3]) == utc_list("2026-03-29 00:00", "2026-03-29 00:30", "2026-03-29 01:00")
    assert starts[45] == ts("2026-03-29 22:30")
    assert cal.to_utc("2026-03-29", 46)[0] == ts("2026-03-29 22:30")
    with pytest.raises(ValueError) as err:
        cal.to_utc("2026-03-29", 47)
    assert "2026-03-29" in str(err.value) and "1..46" in str(err.value)
    assert str(err.value) == "settlement period 47 does not exist on 2026-03-29 (valid: 1..46)"


@pytest.mark.parametrize(
    ("day", "n", "sp5", "last"),
    [
        ("2026-03-29", 46, "2026-03-29 02:00", "2026-03-29 22:30"),
        ("2026-10-25", 50, "2026-10-25 01:00", "2026-10-25 23:30"),
        ("2026-06-01", 48, "2026-06-01 01:00", "2026-06-01 22:30"),
    ],
)
def test_workbench_guide_table(day, n, sp5, last):
    starts = cal.period_starts(day)
    assert cal.periods_in_day(day) == n == len(starts)
    assert starts[4] == ts(sp5)
    assert starts[-1] == ts(last)
    assert cal.to_utc(day, [5, n]).equals(pd.DatetimeIndex([ts(sp5), ts(last)], name="time"))
    assert starts.name == "time" and starts.dtype == np.dtype("datetime64[ns]") and starts.tz is None


def test_periods_in_day_shapes_and_types():
    assert isinstance(cal.periods_in_day("2026-06-01"), int)
    grid = cal.periods_in_day(np.array([["2026-03-29", "2026-10-25"], ["2026-06-01", "2022-10-30"]]))
    assert grid.shape == (2, 2)
    assert grid.tolist() == [[46, 50], [48, 50]]
    idx = pd.DatetimeIndex(["2022-03-27", "2022-03-28"])
    assert cal.periods_in_day(idx).tolist() == [46, 48]
    assert cal.periods_in_day(pd.Series(idx)).tolist() == [46, 48]
    assert cal.periods_in_day([dt.date(2026, 3, 29), np.datetime64("2026-10-25")]).tolist() == [46, 50]


# --------------------------------------------------------------------------------------------------
# every day 1996-2040
# --------------------------------------------------------------------------------------------------
def _stdlib_day_lengths(first: dt.date, last: dt.date) -> np.ndarray:
    """Length of each local day [s], from stdlib zoneinfo with UTC subtraction (independent oracle)."""
    n = (last - first).days + 2
    midnights = [
        dt.datetime.combine(first + dt.timedelta(days=i), dt.time(0), tzinfo=LONDON).astimezone(dt.UTC)
        for i in range(n)
    ]
    return np.array([(b - a).total_seconds() for a, b in itertools.pairwise(midnights)])


@pytest.fixture(scope="module")
def all_days() -> pd.DatetimeIndex:
    return pd.date_range(FIRST, LAST, freq="D")


def test_every_day_length_matches_local_day(all_days):
    n = cal.periods_in_day(all_days)
    np.testing.assert_array_equal(n * 1800.0, _stdlib_day_lengths(FIRST, LAST))
    # exactly one short day (last Sunday of March) and one long day (last Sunday of October) a year
    short, long_ = all_days[n == 46], all_days[n == 50]
    assert set(np.unique(n)) == {46, 48, 50}
    assert list(short.year) == list(range(1996, 2041)) == list(long_.year)
    assert set(short.month) == {3} and set(long_.month) == {10}
    assert set(short.day_of_week) == {6} == set(long_.day_of_week)
    assert (short.day > 24).all() and (long_.day > 24).all()


def test_round_trip_every_period_1996_2040(all_days):
    n = cal.periods_in_day(all_days)
    dates = np.repeat(all_days.values, n)
    # 1..n within each day, without a loop: position minus the position of the day's first period
    day_first = np.repeat(np.cumsum(n) - n, n)
    sps = np.arange(n.sum()) - day_first + 1
    times = cal.to_utc(dates, sps)
    axis = cal.time_axis(all_days[0], all_days[-1])
    assert len(times) == len(axis) == n.sum() > 780_000
    assert times.equals(axis)
    assert (np.diff(axis.values) == np.timedelta64(30, "m")).all()
    back_dates, back_sps = cal.from_utc(times)
    assert back_sps.dtype == np.int8
    np.testing.assert_array_equal(back_dates.values, dates)
    np.testing.assert_array_equal(back_sps, sps)


def test_time_axis_gives_contiguous_periods_per_day():
    axis = cal.time_axis("2026-03-28", "2026-10-26")
    dates, sps = cal.from_utc(axis)
    frame = pd.DataFrame({"date": dates, "sp": sps})
    per_day = frame.groupby("date")["sp"].agg(["min", "max", "count"])
    assert (per_day["min"] == 1).all()
    assert (per_day["max"] == per_day["count"]).all()
    assert per_day["count"].to_dict()[ts("2026-03-29")] == 46
    assert per_day["count"].to_dict()[ts("2026-10-25")] == 50
    assert per_day.index[0] == ts("2026-03-28") and per_day.index[-1] == ts("2026-10-26")
    assert dates.name == "settlement_date"
    assert axis[0] == ts("2026-03-28 00:00") and axis[-1] == ts("2026-10-26 23:30")


def test_time_axis_single_day_and_bad_order():
    assert cal.time_axis("2026-03-29", "2026-03-29").equals(cal.period_starts("2026-03-29"))
    with pytest.raises(ValueError, match="before first_date"):
        cal.time_axis("2026-03-30", "2026-03-29")


# --------------------------------------------------------------------------------------------------
# local clock index
# --------------------------------------------------------------------------------------------------
def test_local_clock_index_contract():
    assert cal.local_clock_index(cal.period_starts("2026-06-01")).tolist() == list(range(48))
    assert cal.local_clock_index(cal.period_starts("2026-01-15")).tolist() == list(range(48))
    short = cal.local_clock_index(cal.period_starts("2026-03-29")).tolist()
    assert short == [0, 1] + list(range(4, 48))
    assert 2 not in short and 3 not in short
    long_ = cal.local_clock_index(cal.period_starts("2026-10-25")).tolist()
    assert long_ == [0, 1, 2, 3, 2, 3] + list(range(4, 48))
    assert isinstance(cal.local_clock_index("2026-06-01 12:00"), int)
    assert cal.local_clock_index("2026-06-01 12:00") == 26  # 13:00 BST


def test_local_clock_index_matches_stdlib():
    axis = cal.time_axis("2025-12-30", "2026-11-02")
    local = [t.to_pydatetime().replace(tzinfo=dt.UTC).astimezone(LONDON) for t in axis]
    expected = [loc.hour * 2 + loc.minute // 30 for loc in local]
    assert cal.local_clock_index(axis).tolist() == expected


# --------------------------------------------------------------------------------------------------
# invalid input
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("day", "sp", "message"),
    [
        ("2026-06-01", 0, r"settlement period 0 does not exist on 2026-06-01 \(valid: 1\.\.48\)"),
        ("2026-03-29", 47, r"settlement period 47 does not exist on 2026-03-29 \(valid: 1\.\.46\)"),
        ("2026-06-01", 49, r"settlement period 49 does not exist on 2026-06-01 \(valid: 1\.\.48\)"),
        ("2026-10-25", -1, r"settlement period -1 does not exist on 2026-10-25 \(valid: 1\.\.50\)"),
        ("2026-06-01", 2.5, r"settlement period 2\.5 on 2026-06-01 is not an integer"),
        ("2026-06-01", np.nan, r"settlement period nan on 2026-06-01 is not an integer"),
        (pd.NaT, 1, r"settlement date: NaT at position 0"),
        ("2026-06-01 00:30", 1, r"not a midnight date"),
        (pd.Timestamp("2026-06-01", tz="Europe/London"), 1, r"tz-aware"),
        ("2026-06-01", "3", r"expected integers"),
    ],
)
def test_to_utc_rejects_bad_input(day, sp, message):
    with pytest.raises(ValueError, match=message):
        cal.to_utc(day, sp)


def test_to_utc_names_first_bad_value_and_accepts_integral_floats():
    days = ["2026-06-01", "2026-03-29", "2026-10-25", "2026-03-29"]
    with pytest.raises(
        ValueError, match=r"^settlement period 47 does not exist on 2026-03-29 .*2 more invalid"
    ):
        cal.to_utc(days, [48, 47, 51, 48])
    assert cal.to_utc(days, [1.0, 2.0, 3.0, 4.0]).equals(cal.to_utc(days, [1, 2, 3, 4]))
    with pytest.raises(ValueError, match="NaT at position 1"):
        cal.periods_in_day(["2026-06-01", None])
    with pytest.raises(ValueError, match="expected dates"):
        cal.periods_in_day(np.array([20260601]))


def test_to_utc_broadcasts():
    grid = cal.to_utc(np.array(["2026-03-29", "2026-06-01"])[:, None], np.array([1, 3]))
    assert list(grid) == utc_list(
        "2026-03-29 00:00", "2026-03-29 01:00", "2026-05-31 23:00", "2026-06-01 00:00"
    )


def test_from_utc_rejects_misaligned_and_accepts_aware():
    with pytest.raises(ValueError, match=r"2026-06-01 00:15:00 \(UTC\) at position 1 is not a settlement"):
        cal.from_utc(["2026-06-01 00:00", "2026-06-01 00:15"])
    with pytest.raises(ValueError, match="NaT"):
        cal.from_utc(pd.DatetimeIndex(["2026-06-01", pd.NaT]))
    aware = pd.DatetimeIndex(["2026-10-25 01:00", "2026-10-25 01:00"], tz="UTC").tz_convert("Europe/London")
    dates, sps = cal.from_utc(aware)
    assert list(dates) == [ts("2026-10-25")] * 2 and sps.tolist() == [5, 5]
    dates, sps = cal.from_utc(pd.DatetimeIndex(["2026-10-24 23:00", "2026-10-25 23:30"]).as_unit("s"))
    assert list(dates) == [ts("2026-10-25")] * 2 and sps.tolist() == [1, 50]


# --------------------------------------------------------------------------------------------------
# real data: NESO demand 2022
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def neso() -> pd.DataFrame:
    frame = pd.read_csv(
        DATA / "neso_demand_2022_nd.csv.gz", dtype={"SETTLEMENT_PERIOD": "int64", "ND": "int64"}
    )
    frame["SETTLEMENT_DATE"] = pd.to_datetime(frame["SETTLEMENT_DATE"], format="%Y-%m-%d")
    frame["time"] = cal.to_utc(frame["SETTLEMENT_DATE"], frame["SETTLEMENT_PERIOD"])
    return frame


def test_neso_2022_periods_and_utc_axis(neso):
    counts = neso.groupby("SETTLEMENT_DATE").size()
    assert counts[ts("2022-03-27")] == 46
    assert counts[ts("2022-10-30")] == 50
    assert (counts.drop([ts("2022-03-27"), ts("2022-10-30")]) == 48).all()
    np.testing.assert_array_equal(counts.to_numpy(), cal.periods_in_day(counts.index))
    times = pd.DatetimeIndex(neso["time"]).sort_values()
    assert len(times) == 17_520 and times.is_unique
    assert times.equals(cal.time_axis("2022-01-01", "2022-12-31"))
    assert times[0] == ts("2022-01-01 00:00") and times[-1] == ts("2022-12-31 23:30")
    dates, sps = cal.from_utc(neso["time"])
    np.testing.assert_array_equal(dates.values, neso["SETTLEMENT_DATE"].values)
    np.testing.assert_array_equal(sps, neso["SETTLEMENT_PERIOD"].values)


def test_neso_2022_energy_golden(neso):
    energy = neso["ND"] * 0.5  # MW averaged over the half hour -> MWh
    assert energy.sum() == 233_209_660.0
    daily = energy.groupby(neso["SETTLEMENT_DATE"]).sum()
    assert daily[ts("2022-03-27")] == 570_908.5
    assert daily[ts("2022-10-30")] == 564_320.0
    peak = neso.loc[neso["ND"].idxmax()]
    assert (peak["ND"], peak["SETTLEMENT_DATE"], peak["SETTLEMENT_PERIOD"]) == (46_147, ts("2022-12-15"), 35)
    assert peak["time"] == ts("2022-12-15 17:00")


# --------------------------------------------------------------------------------------------------
# seasons
# --------------------------------------------------------------------------------------------------
def test_seasons_2026_hand_checked():
    # March clock change 2026-03-29; AugBH 2026-08-31 (Mon); 16th Saturday before = 2026-05-16;
    # 6th Saturday before = 2026-07-25; Sunday after = 2026-09-06; October clock change 2026-10-25.
    expected = {
        "2026-01-01": "winter",
        "2026-03-28": "winter",
        "2026-03-29": "spring",
        "2026-05-15": "spring",
        "2026-05-16": "summer",
        "2026-07-24": "summer",
        "2026-07-25": "high_summer",
        "2026-08-31": "high_summer",
        "2026-09-06": "high_summer",
        "2026-09-07": "autumn",
        "2026-10-24": "autumn",
        "2026-10-25": "winter",
        "2026-12-31": "winter",
    }
    got = cal.profiling_seasons(list(expected))
    assert dict(zip(expected, got.tolist())) == expected
    assert cal.profiling_seasons("2026-07-25") == "high_summer"
    assert cal.SEASONS == ("winter", "spring", "summer", "high_summer", "autumn")


def test_seasons_2023_hand_checked():
    # AugBH 2023-08-28; clock changes 2023-03-26 and 2023-10-29
    got = cal.profiling_seasons(
        [
            "2023-03-25",
            "2023-03-26",
            "2023-05-12",
            "2023-05-13",
            "2023-07-21",
            "2023-07-22",
            "2023-09-03",
            "2023-09-04",
            "2023-10-28",
            "2023-10-29",
        ]
    ).tolist()
    assert got == [
        "winter",
        "spring",
        "spring",
        "summer",
        "summer",
        "high_summer",
        "high_summer",
        "autumn",
        "autumn",
        "winter",
    ]


def test_seasons_every_year_1996_2040(all_days):
    seasons = cal.profiling_seasons(all_days)
    assert set(seasons) == set(cal.SEASONS)
    eng = holidays.UK(subdiv="ENG", years=range(1996, 2041))
    for year in range(1996, 2041):
        in_year = all_days.year == year
        days, labels = all_days[in_year], seasons[in_year]
        change = np.r_[True, labels[1:] != labels[:-1]]
        assert labels[change].tolist() == ["winter", "spring", "summer", "high_summer", "autumn", "winter"]
        starts = dict(zip(labels[change][1:-1], days[change][1:-1]))
        starts["winter"] = days[change][-1]
        aug_bh = [d for d, name in eng.items() if d.year == year and d.month == 8]
        assert len(aug_bh) == 1
        aug_bh = pd.Timestamp(aug_bh[0])
        assert cal.periods_in_day(starts["spring"]) == 46 and cal.periods_in_day(starts["winter"]) == 50
        assert starts["summer"].day_of_week == 5 and starts["high_summer"].day_of_week == 5
        assert (starts["high_summer"] - starts["summer"]).days == 70
        assert (starts["autumn"] - starts["high_summer"]).days == 44
        assert starts["autumn"] - aug_bh == pd.Timedelta(days=7)


@settings(max_examples=200, deadline=None)
@given(dates_strategy)
def test_season_is_one_of_five_property(day):
    season = cal.profiling_seasons(day)
    assert season in cal.SEASONS
    # the day after is the same season or the next one in the cycle
    nxt = cal.profiling_seasons(day + dt.timedelta(days=1))
    order = ["winter", "spring", "summer", "high_summer", "autumn"]
    assert nxt in (season, order[(order.index(season) + 1) % 5])


# --------------------------------------------------------------------------------------------------
# day types and bank holidays
# --------------------------------------------------------------------------------------------------
def test_day_types_2026():
    days = ["2026-12-25", "2026-08-03", "2026-08-31", "2026-08-01", "2026-08-02", "2026-08-04"]
    assert cal.day_types(days, "england_wales").tolist() == [
        "bank_holiday",
        "weekday",
        "bank_holiday",
        "saturday",
        "sunday",
        "weekday",
    ]
    assert cal.day_types(days, "scotland").tolist() == [
        "bank_holiday",
        "bank_holiday",
        "weekday",
        "saturday",
        "sunday",
        "weekday",
    ]
    assert cal.day_types("2026-12-25", "scotland") == "bank_holiday"


@pytest.mark.parametrize(
    ("day", "england_wales", "scotland"),
    [
        ("2012-06-05", "bank_holiday", "bank_holiday"),  # Diamond Jubilee
        ("2022-06-03", "bank_holiday", "bank_holiday"),  # Platinum Jubilee
        ("2022-09-19", "bank_holiday", "bank_holiday"),  # State Funeral of Queen Elizabeth II
        ("2023-05-08", "bank_holiday", "bank_holiday"),  # Coronation of Charles III
        ("1999-12-31", "bank_holiday", "bank_holiday"),  # Millennium
        ("2026-01-02", "weekday", "bank_holiday"),  # Scottish 2 January
        ("2022-01-04", "weekday", "bank_holiday"),  # 2 Jan (Sunday) substituted to Tuesday
        ("2026-04-06", "bank_holiday", "weekday"),  # Easter Monday: not in Scotland
        ("2026-11-30", "weekday", "bank_holiday"),  # St Andrew's Day
        ("2025-12-01", "weekday", "bank_holiday"),  # St Andrew's Day (Sunday) substitute
        ("2026-12-28", "bank_holiday", "bank_holiday"),  # Boxing Day substitute
        ("2026-12-26", "saturday", "saturday"),  # Boxing Day itself falls on a Saturday
        ("2040-12-25", "bank_holiday", "bank_holiday"),
    ],
)
def test_known_bank_holidays(day, england_wales, scotland):
    assert cal.day_types(day, "england_wales") == england_wales
    assert cal.day_types(day, "scotland") == scotland


def test_bank_holiday_counts_1996_2040(all_days):
    # every year has at least the 8 regular bank holidays; substitutes and one-offs add to that
    for region in cal.REGIONS:
        types = cal.day_types(all_days, region)
        per_year = pd.Series(types == "bank_holiday").groupby(all_days.year).sum()
        assert per_year.min() >= 8 and per_year.max() <= 14  # Scotland 2022: 14
        weekday = pd.Index(all_days.day_of_week)
        plain = types != "bank_holiday"
        assert (types[plain & (weekday == 5)] == "saturday").all()
        assert (types[plain & (weekday == 6)] == "sunday").all()
        assert (types[plain & (weekday < 5)] == "weekday").all()


def test_invalid_region_raises():
    with pytest.raises(ValueError, match=r"'wales'.*'england_wales', 'scotland'"):
        cal.day_types("2026-06-01", "wales")
    with pytest.raises(ValueError, match=r"'ENG'.*england_wales"):
        cal.add_working_days("2026-06-01", 1, region="ENG")
    with pytest.raises(ValueError, match=r"'gb'"):
        cal.working_days_between("2026-06-01", "2026-06-02", region="gb")


# --------------------------------------------------------------------------------------------------
# working days
# --------------------------------------------------------------------------------------------------
def test_add_working_days_christmas_new_year():
    got = cal.add_working_days("2026-12-24", [1, 2, 3, 4, 0, -1])
    # 25 Fri Christmas, 26/27 weekend, 28 Mon Boxing Day substitute, 1 Jan Fri
    assert list(got) == utc_list(
        "2026-12-29", "2026-12-30", "2026-12-31", "2027-01-04", "2026-12-24", "2026-12-23"
    )
    # Scotland: 2 Jan is a Saturday, so its substitute is Monday 4 Jan
    assert cal.add_working_days("2026-12-24", 4, region="scotland")[0] == ts("2027-01-05")
    assert cal.add_working_days("2027-01-04", -1)[0] == ts("2026-12-31")


def test_add_working_days_easter():
    # Good Friday 2026-04-03, Easter Monday 2026-04-06 (England & Wales only)
    assert cal.add_working_days("2026-04-02", 1)[0] == ts("2026-04-07")
    assert cal.add_working_days("2026-04-02", 1, region="scotland")[0] == ts("2026-04-06")
    assert cal.add_working_days("2026-04-04", 1)[0] == ts("2026-04-07")  # from a Saturday
    assert cal.add_working_days("2026-04-06", -1)[0] == ts("2026-04-02")  # from a bank holiday
    assert cal.working_days_between("2026-04-02", "2026-04-07") == 1
    assert cal.working_days_between("2026-04-07", "2026-04-02") == -1
    assert cal.working_days_between("2026-04-02", "2026-04-02") == 0


def test_add_working_days_broadcast_and_long_offsets():
    got = cal.add_working_days(["2026-06-01", "2026-06-05"], [[1], [5]])
    assert list(got) == utc_list("2026-06-02", "2026-06-08", "2026-06-08", "2026-06-12")
    far = cal.add_working_days("2026-01-01", 2000)[0]
    assert cal.working_days_between("2026-01-01", far) == 2000
    with pytest.raises(ValueError, match="expected integers"):
        cal.add_working_days("2026-06-01", 1.5)


def _brute_force_working_days(start: dt.date, end: dt.date, region: str) -> int:
    """Working days in (start, end] (or minus those in [end, start)), counted day by day."""
    lo, hi, sign = (start + dt.timedelta(1), end, 1) if end >= start else (end, start - dt.timedelta(1), -1)
    if hi < lo:
        return 0
    types = cal.day_types(pd.date_range(lo, hi, freq="D"), region)
    return sign * int((types == "weekday").sum())


@settings(max_examples=150, deadline=None)
@given(dates_strategy, st.integers(-400, 400), st.sampled_from(cal.REGIONS))
def test_working_days_round_trip_property(day, n, region):
    result = cal.add_working_days(day, n, region=region)[0]
    assert cal.working_days_between(day, result, region=region) == n
    assert _brute_force_working_days(day, result.date(), region) == n
    if n != 0:
        assert cal.day_types(result, region) == "weekday"
        assert (result > pd.Timestamp(day)) == (n > 0)


@settings(max_examples=150, deadline=None)
@given(dates_strategy, st.integers(-60, 60), st.sampled_from(cal.REGIONS))
def test_working_days_between_matches_brute_force(day, span, region):
    end = day + dt.timedelta(days=span)
    assert cal.working_days_between(day, end, region=region) == _brute_force_working_days(day, end, region)


# --------------------------------------------------------------------------------------------------
# property tests on period arithmetic
# --------------------------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(dates_strategy, st.integers(1, 50))
def test_to_utc_from_utc_property(day, sp):
    n = cal.periods_in_day(day)
    if sp > n:
        with pytest.raises(
            ValueError, match=rf"{sp} does not exist on {day.isoformat()} \(valid: 1\.\.{n}\)"
        ):
            cal.to_utc(day, sp)
        return
    time = cal.to_utc(day, sp)[0]
    midnight = dt.datetime.combine(day, dt.time(0), tzinfo=LONDON).astimezone(dt.UTC)
    assert time == pd.Timestamp(midnight.replace(tzinfo=None)) + (sp - 1) * cal.PERIOD
    dates, sps = cal.from_utc([time])
    assert dates[0] == pd.Timestamp(day) and sps[0] == sp


@settings(max_examples=200, deadline=None)
@given(st.integers(0, (LAST - FIRST).days * 48))
def test_from_utc_to_utc_property(k):
    time = pd.Timestamp(FIRST) + k * cal.PERIOD
    dates, sps = cal.from_utc([time])
    assert 1 <= sps[0] <= cal.periods_in_day(dates[0])
    assert cal.to_utc(dates, sps)[0] == time
    # the settlement date is the local date of the instant
    local = time.tz_localize("UTC").tz_convert("Europe/London")
    assert dates[0] == pd.Timestamp(local.date())


def test_empty_inputs_give_empty_outputs():
    assert cal.periods_in_day([]).shape == (0,)
    assert len(cal.to_utc([], [])) == 0
    dates, sps = cal.from_utc([])
    assert len(dates) == 0 and sps.dtype == np.int8
    assert cal.profiling_seasons([]).shape == (0,) == cal.day_types([], "scotland").shape
    assert len(cal.add_working_days([], 3)) == 0
