"""Tests of tomlib.market: the LCL compact data, the household-day library, the true energy, losses
and the GSP group take."""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path

import astral
import astral.sun
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from tomlib import calendar as cal
from tomlib import market, mpan, reference
from tomlib.scenario import load_scenario

LCL_DIR = Path(market.LCL_PATH).parent


# --------------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny():
    return load_scenario("tiny")


@pytest.fixture(scope="module")
def tiny_market(tiny):
    return market.generate(tiny)


@pytest.fixture(scope="module")
def autumn_market():
    return market.generate(load_scenario("tiny_autumn"))


@pytest.fixture(scope="module")
def demo():
    return load_scenario("demo")


@pytest.fixture(scope="module")
def demo_market(demo):
    return market.generate(demo)


@pytest.fixture(scope="module")
def lcl_raw():
    import zarr

    store = zarr.storage.ZipStore(market.LCL_PATH, mode="r")
    try:
        ds = xr.open_zarr(store, consolidated=False).load()
    finally:
        store.close()
    return ds


@pytest.fixture(scope="module")
def lcl():
    return market.load_lcl_households()


# --------------------------------------------------------------------------------------------------
# the compact LCL data set
# --------------------------------------------------------------------------------------------------
def _units(ds) -> np.ndarray:
    u = ds["energy"].to_numpy().astype(np.int64)
    return np.where(u < 0, 0, u)


def test_lcl_golden_sums_exact(lcl_raw):
    # Golden numbers of /work/shared/data/lcl-smart-meters/README.md, exact in units of 1e-7 kWh.
    u = _units(lcl_raw)
    times = pd.DatetimeIndex(lcl_raw["time"].to_numpy())
    assert u.shape == (40, 17520)
    assert u.sum() == 1_552_875_039_916  # 155,287.5039916 kWh
    assert (lcl_raw["energy"].to_numpy() >= 0).sum() == 676_715
    assert u[:, times.get_loc(pd.Timestamp("2013-01-01 00:00"))].sum() == 179_890_002
    assert u[:, times.get_loc(pd.Timestamp("2013-07-01 18:00"))].sum() == 96_080_000
    assert u[:, (times >= "2013-01-15") & (times < "2013-01-16")].sum() == 5_747_330_005
    per_house = dict(zip(lcl_raw["household"].values.tolist(), u.sum(axis=1)))
    assert per_house["MAC000002"] == 42_146_480_004
    assert per_house["MAC000016"] == 220_250_000


def test_lcl_loader_kwh_and_gaps(lcl):
    e = lcl["energy"]
    assert e.dtype == np.float64 and e.attrs["units"] == "kWh"
    assert float(e.sum()) == pytest.approx(155287.5039916, abs=1e-6)
    assert int(e.isnull().sum()) == 40 * 17520 - 676_715
    assert lcl["tariff"].sel(household="MAC000005").item() == "ToU"
    assert lcl["acorn_grouped"].sel(household="MAC000002").item() == "Affluent"
    assert lcl["time"].values[0] == np.datetime64("2013-01-01T00:00")


def test_lcl_loader_end_label_shifts_back():
    end = market.load_lcl_households(label="end")
    assert end["time"].values[0] == np.datetime64("2012-12-31T23:30")
    with pytest.raises(ValueError, match="start' or 'end"):
        market.load_lcl_households(label="middle")


def test_lcl_provenance_recorded(lcl_raw):
    readme = (LCL_DIR / "README.md").read_text()
    sha_002 = "8f97885cbdf13ebf12cad7075fb3671c325b635a27fb6088a81fb9a98b5f03cd"
    assert sha_002 in readme and sha_002 in lcl_raw.attrs["source_sha256"]
    assert lcl_raw.attrs["source_sha256"].count("MAC0000") == 40
    assert "Open Government Licence" in readme and "Low Carbon London" in readme
    assert (LCL_DIR / "build_lcl.py").is_file()
    assert market.LCL_PATH.stat().st_size < 2_000_000
    with zipfile.ZipFile(market.LCL_PATH) as zf:
        assert zf.testzip() is None


def test_build_lcl_decimal_parser_is_exact():
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_lcl", LCL_DIR / "build_lcl.py")
    build_lcl = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_lcl)
    units = build_lcl.decimal_to_units(pd.Series(["0.219", "1.0779999", "0", "12.5"]), "x.csv")
    assert units.tolist() == [2_190_000, 10_779_999, 0, 125_000_000]
    with pytest.raises(ValueError, match=r"x.csv data row 2: energy '-1' "):
        build_lcl.decimal_to_units(pd.Series(["0.1", "-1"]), "x.csv")


# --------------------------------------------------------------------------------------------------
# household-day library
# --------------------------------------------------------------------------------------------------
def _synthetic_lcl(values: np.ndarray) -> xr.Dataset:
    times = pd.date_range("2013-01-01", periods=17520, freq="30min")
    return xr.Dataset(
        {"energy": (("household", "time"), values)},
        coords={"household": [f"H{i}" for i in range(values.shape[0])], "time": times.to_numpy()},
    )


def test_library_clock_change_days_and_gaps():
    times = pd.date_range("2013-01-01", periods=17520, freq="30min")
    values = np.ones((2, 17520))
    # 2013-10-27 (50 periods): local 01:00-02:00 happens twice, at 00:00-01:00 and 01:00-02:00 UTC.
    values[:, (times >= "2013-10-27 00:00") & (times < "2013-10-27 01:00")] = 3.0
    values[1, times.get_loc(pd.Timestamp("2013-06-05 12:00"))] = np.nan  # a gap
    lib = market.household_day_library(_synthetic_lcl(values), min_coverage=0.5, min_annual_kwh=1.0)
    d = lib.dates.astype("datetime64[D]")
    assert not (d == np.datetime64("2013-03-31")).any()  # the 46-period day is incomplete
    assert not ((d == np.datetime64("2013-06-05")) & (lib.household == 1)).any()
    assert ((d == np.datetime64("2013-06-05")) & (lib.household == 0)).any()
    long_day = lib.profiles[(d == np.datetime64("2013-10-27")) & (lib.household == 0)][0]
    assert long_day[2] == long_day[3] == 2.0  # mean of the repeated half hours (3 and 1)
    np.testing.assert_array_equal(np.delete(long_day, [2, 3]), 1.0)
    assert lib.excluded["lcl_days_excluded_gaps"] == 1
    assert lib.excluded["lcl_days_excluded_incomplete_day"] == 2
    assert lib.excluded["lcl_days_used"] == 2 * 365 - 3
    # 48 kWh/day, but the long day has 50 (its repeated hour averages 2 kWh per half hour): the pool
    # means times the day counts of the year give back the year's total
    np.testing.assert_allclose(lib.annual_kwh, 365 * 48.0 + 2.0, rtol=1e-12)


def test_library_exclusions_recorded_never_silent(lcl):
    lib = market.household_day_library(lcl, min_coverage=0.9, min_annual_kwh=500.0)
    ex = lib.excluded
    # MAC000008 (82.7 %), MAC000016 (4 %), MAC000028 (76 %) lack coverage; MAC000037 has 30 kWh.
    assert ex["lcl_households_excluded_low_coverage"] == 3
    assert ex["lcl_households_excluded_low_consumption"] == 1
    assert ex["lcl_households_used"] == 36
    assert (ex["lcl_households_used"] + ex["lcl_households_excluded_low_coverage"]
            + ex["lcl_households_excluded_low_consumption"] + ex["lcl_households_excluded_missing_pool"]) == 40
    used = set(lib.households[lib.donors])
    assert not used & {"MAC000008", "MAC000016", "MAC000028", "MAC000037"}
    assert ex["lcl_days_used"] == len(lib.dates)
    assert ex["lcl_days_used"] + ex["lcl_days_excluded_gaps"] + ex["lcl_days_excluded_incomplete_day"] \
        + ex["lcl_days_excluded_with_household"] == ex["lcl_days_total"]
    # Annualised consumption of a complete household is close to its real 2013 total.
    i = list(lib.households).index("MAC000002")
    assert lib.annual_kwh[i] == pytest.approx(4214.648, rel=0.01)
    looser = market.household_day_library(lcl, min_coverage=0.7, min_annual_kwh=500.0)
    assert looser.excluded["lcl_households_excluded_low_coverage"] == 1


def test_library_pools_hold_their_season_and_day_type(lcl):
    lib = market.household_day_library(lcl, min_coverage=0.9, min_annual_kwh=500.0)
    h = lib.donors[0]
    for s in range(5):
        for k in range(3):
            idx = lib.pool_order[lib.pool_start[h, s, k]:lib.pool_start[h, s, k] + lib.pool_count[h, s, k]]
            assert len(idx) >= 2
            assert (lib.household[idx] == h).all() and (lib.season[idx] == s).all() and (lib.day_type[idx] == k).all()
    # autumn 2013 has no England & Wales bank holiday -> its pool is the Sunday pool (counted)
    autumn = cal.SEASONS.index("autumn")
    assert lib.pool_start[h, autumn, 3] == lib.pool_start[h, autumn, 2]
    assert lib.excluded["lcl_bank_holiday_pools_to_sunday"] >= 36


# --------------------------------------------------------------------------------------------------
# shapes, determinism, basic invariants
# --------------------------------------------------------------------------------------------------
def test_short_day_shapes(tiny_market):
    m = tiny_market.meters
    assert m.sizes["time"] == 48 + 46 + 48
    per_day = pd.Series(m["settlement_period"].values).groupby(m["settlement_date"].values).max()
    assert per_day[pd.Timestamp("2026-03-29")] == 46
    assert tiny_market.gsp_group_take.sizes["time"] == 142
    assert tiny_market.line_loss_factors.sizes["time"] == 142


def test_long_day_shapes(autumn_market):
    m = autumn_market.meters
    assert m.sizes["time"] == 48 + 50 + 48
    per_day = pd.Series(m["settlement_period"].values).groupby(m["settlement_date"].values).max()
    assert per_day[pd.Timestamp("2026-10-25")] == 50


@pytest.mark.parametrize("which", ["tiny_market", "autumn_market"])
def test_energy_finite_non_negative(which, request):
    m = request.getfixturevalue(which)
    e = m.meters["energy"].values
    assert np.isfinite(e).all() and (e >= 0).all()
    assert e.sum() > 0
    assert np.isfinite(m.gsp_group_take.values).all()


def test_deterministic_by_seed(tiny, tiny_market):
    again = market.generate(tiny)
    assert again.meters["energy"].values.tobytes() == tiny_market.meters["energy"].values.tobytes()
    assert again.gsp_group_take.values.tobytes() == tiny_market.gsp_group_take.values.tobytes()
    np.testing.assert_array_equal(again.meters["mpan"].values, tiny_market.meters["mpan"].values)
    other = market.generate(tiny.with_overrides({"seed": tiny.seed + 1}))
    assert other.meters["energy"].values.tobytes() != tiny_market.meters["energy"].values.tobytes()
    assert not np.array_equal(other.meters["mpan"].values, tiny_market.meters["mpan"].values)


def test_streams_are_independent(tiny, tiny_market):
    # More solar homes change the solar homes only: the other MPANs keep their bytes.
    more_solar = market.generate(tiny.with_overrides({"solar_export_share": 0.5}))
    base = tiny_market.meters
    n_imp = int((base["measurement_quantity"] == "AI").sum())
    new = more_solar.meters.isel(mpan=slice(0, n_imp))
    keep = (new["solar_capacity"].values == 0)
    assert keep.sum() > 20
    np.testing.assert_array_equal(new["mpan"].values, base["mpan"].values[:n_imp])
    np.testing.assert_array_equal(new["energy"].values[keep], base["energy"].values[:n_imp][keep])
    np.testing.assert_array_equal(new["supplier"].values, base["supplier"].values[:n_imp])


def test_stream_keys_fixed():
    a = market.stream(5, "donors").random(3)
    b = np.random.Generator(np.random.PCG64(np.random.SeedSequence(5).spawn(5)[4])).random(3)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(KeyError, match="not one of"):
        market.stream(5, "nope")


# --------------------------------------------------------------------------------------------------
# standing data
# --------------------------------------------------------------------------------------------------
def test_standing_data(demo_market, demo):
    m = demo_market.meters
    cores = m["mpan"].values
    assert mpan.is_valid(cores).all()
    assert len(np.unique(cores)) == len(cores)
    np.testing.assert_array_equal(mpan.gsp_group_of(cores), m["gsp_group"].values)
    counts = pd.Series(m["gsp_group"].values[m["measurement_quantity"].values == "AI"]).value_counts()
    assert counts.to_dict() == dict(demo.mpans)
    bm = m["bm_unit"].values
    expect = np.char.add(np.char.add(np.char.add("2__", np.char.lstrip(m["gsp_group"].values.astype(str), "_")),
                                     m["supplier"].values.astype(str)), "001")
    np.testing.assert_array_equal(bm, expect)
    assert all(re.fullmatch(r"2__[A-P][A-Z]{4}001", b) for b in np.unique(bm))
    llfcs = reference.line_loss_factor_classes()
    rows = llfcs.loc[m["llfc"].values]
    np.testing.assert_array_equal(rows["gsp_group"].values, m["gsp_group"].values)
    np.testing.assert_array_equal(rows["measurement_quantity"].values, m["measurement_quantity"].values)
    np.testing.assert_array_equal(rows["market_segment"].values, m["market_segment"].values)
    seg = m["market_segment"].values
    ct = m["connection_type"].values
    assert set(ct[seg == "S"]) == {"W"} and set(ct[seg == "A"]) <= {"L", "H"}
    metered = seg != "U"  # unmetered supplies have no profile class: their truth is switching
    assert (m["domestic"].values[metered] == (m["profile_class"].values[metered] <= 1)).all()
    assert not m["domestic"].values[~metered].any() and set(ct[~metered]) <= {"U"}
    # the demo's 1 % of unmetered supplies, by largest remainder per GSP group
    assert (seg[imp := m["measurement_quantity"].values == "AI"] == "U").sum() == 20 + 10
    ac = m["annual_consumption"].values
    assert (ac > 0).all()
    dom = (m["profile_class"].values == 1)
    assert np.median(ac[dom]) == pytest.approx(2700 * np.exp(-0.5**2 / 2), rel=0.1)
    assert (ac[seg == "A"] >= 50_000).all() and (ac[seg == "A"] <= 500_000).all()
    # segment shares by largest remainder per GSP group
    imp = m["measurement_quantity"].values == "AI"
    assert (seg[imp] == "A").sum() == round(0.05 * 2000) + round(0.05 * 1000)


def test_supplier_shares_close_to_scenario(demo_market, demo):
    sup = demo_market.meters["supplier"].values[demo_market.meters["measurement_quantity"].values == "AI"]
    n = sup.size
    for s in demo.suppliers:
        share = (sup == s.id).mean()
        assert abs(share - s.market_share) < 4 * np.sqrt(s.market_share * (1 - s.market_share) / n), s.id


def test_export_mpans_linked(demo_market, demo):
    m = demo_market.meters
    ae = m["measurement_quantity"].values == "AE"
    assert ae.sum() > 100
    linked = m["linked_mpan"].values
    index = pd.Index(m["mpan"].values)
    partner = index.get_indexer(linked[ae])
    assert (partner >= 0).all()
    assert (m["measurement_quantity"].values[partner] == "AI").all()
    assert (m["profile_class"].values[partner] == 1).all()
    np.testing.assert_array_equal(m["supplier"].values[partner], m["supplier"].values[ae])
    cap = m["solar_capacity"].values[ae]
    assert (cap >= 2.0).all() and (cap <= 6.0).all()
    share = ae.sum() / (m["profile_class"].values == 1).sum()
    assert share == pytest.approx(demo.solar_export_share, abs=0.02)


# --------------------------------------------------------------------------------------------------
# true energy
# --------------------------------------------------------------------------------------------------
def test_donor_days_matched_on_season_and_day_type(demo):
    mapping = market.donor_mapping(demo)
    assert (mapping["donor_season"] == mapping["target_season"]).all()
    same = mapping["donor_day_type"] == mapping["target_day_type"]
    fallback = (mapping["target_day_type"] == "bank_holiday") & (mapping["donor_day_type"] == "sunday")
    assert (same | fallback).all()
    # Good Friday 2026-04-03 is a spring bank holiday; 2013 spring bank holidays: 1 April and 6 May.
    gf = mapping.sel(settlement_date="2026-04-03")
    assert (gf["target_day_type"] == "bank_holiday").all()
    assert set(pd.DatetimeIndex(gf["donor_date"].values.ravel()).strftime("%Y-%m-%d")) <= {"2013-04-01", "2013-05-06"}
    # donors are real weekdays/Saturdays/Sundays of 2013 (by the calendar, not just the stored labels)
    dates = pd.DatetimeIndex(mapping["donor_date"].values.ravel())
    np.testing.assert_array_equal(cal.profiling_seasons(dates), mapping["donor_season"].values.ravel())
    # different MPANs on the same day get different donor days
    assert len(np.unique(mapping["donor_date"].values[:, 0])) > 10


def test_domestic_energy_is_the_scaled_donor_day(tiny):
    quiet = tiny.with_overrides({"market.household_noise": 0.0, "solar_export_share": 0.0})
    mk = market.generate(quiet)
    mapping = market.donor_mapping(quiet)
    times = pd.DatetimeIndex(mk.meters["time"].values)
    dates, _ = cal.from_utc(times)
    day = pd.DatetimeIndex(mapping["settlement_date"].values).get_indexer(dates)
    slot = cal.local_clock_index(times)
    rows = mapping["mpan_index"].values
    ac = mk.meters["annual_consumption"].values[rows]
    expected = mapping["donor_profile"].values[:, day, slot] * (ac / mapping["donor_annual_kwh"].values)[:, None]
    np.testing.assert_allclose(mk.meters["energy"].values[rows], expected, rtol=1e-12)
    np.testing.assert_array_equal(mk.meters["donor_household"].values[rows], mapping["donor_household"].values)
    # on the 46-period day the local half hours 01:00-02:00 (index 2, 3) are skipped
    short = dates == pd.Timestamp("2026-03-29")
    assert set(np.unique(slot[short])) == set(range(48)) - {2, 3}


def _constant_shapes(value: float = 1.0) -> xr.DataArray:
    return xr.DataArray(
        np.full((2, 5, 3, 48), value),
        dims=("profile_class", "season", "day_type", "settlement_period"),
        coords={"profile_class": [3, 5], "season": list(cal.SEASONS),
                "day_type": ["weekday", "saturday", "sunday"], "settlement_period": np.arange(1, 49)},
    )


def test_annual_consumption_scaling_constant_shape():
    times = cal.time_axis(pd.Timestamp("2026-01-01"), pd.Timestamp("2026-12-31"))
    ac = np.array([3650.0, 100_000.0])
    e = market.profile_class_energy(_constant_shapes(), np.array([3, 5]), ac,
                                    np.array(["england_wales", "scotland"]), times, reference_year=2026)
    # a whole year sums to the annual consumption, the 46- and 50-period days included
    np.testing.assert_allclose(e.sum(axis=1), ac, rtol=1e-12)
    dates, _ = cal.from_utc(times)
    daily = pd.DataFrame(e.T).groupby(dates).sum()
    np.testing.assert_allclose(daily.mean().to_numpy(), ac / 365, rtol=1e-12)
    assert daily.loc[pd.Timestamp("2026-03-29")].to_numpy() == pytest.approx(ac / 365 * 46 / 48)
    assert daily.loc[pd.Timestamp("2026-10-25")].to_numpy() == pytest.approx(ac / 365 * 50 / 48)
    # mean daily energy over a short window with noise stays near AC/365
    rng = np.random.default_rng(0)
    short = cal.time_axis(pd.Timestamp("2026-03-22"), pd.Timestamp("2026-04-04"))
    noise = market.ar1_lognormal_noise(rng, (400, len(short)), 0.05, 0.9)
    e2 = market.profile_class_energy(_constant_shapes(), np.full(400, 3), np.full(400, 3650.0),
                                     np.full(400, "england_wales"), short, reference_year=2026, noise=noise)
    assert e2.sum() / 400 / 14 == pytest.approx(10 * (14 * 48 - 2) / (14 * 48), rel=0.01)


def test_real_shape_year_sums_close_to_annual_consumption():
    times = cal.time_axis(pd.Timestamp("2026-01-01"), pd.Timestamp("2026-12-31"))
    shapes = reference.profile_class_shapes()
    pcs = np.arange(3, 9)
    e = market.profile_class_energy(shapes, pcs, np.full(pcs.size, 1000.0), np.full(pcs.size, "england_wales"),
                                    times, reference_year=2026)
    # only the clock-change hours differ from the normalising year (a few tenths of a percent at most)
    np.testing.assert_allclose(e.sum(axis=1), 1000.0, rtol=2e-3)
    annual = market.annual_profile_kwh(shapes, 2026, "england_wales")
    # 1997 PC3 winter weekday 48.115 kWh/day (source README) -> the annual figure is of that order
    assert 10_000 < annual.loc[3] < 20_000


def test_year_long_market_matches_annual_consumption(tiny):
    year = tiny.with_overrides({"first_date": "2026-01-01", "last_date": "2026-12-31",
                                "solar_export_share": 0.0, "mpans": {"_C": 150, "_P": 30}})
    mk = market.generate(year)
    m = mk.meters
    ratio = m["energy"].sum("time").values / m["annual_consumption"].values
    dom = m["profile_class"].values == 1
    # donor days are random real days, so a household's year scatters; the mean is unbiased
    assert ratio[dom].mean() == pytest.approx(1.0, abs=0.03)
    assert ratio[~dom] == pytest.approx(1.0, abs=0.03)
    assert m.sizes["time"] == 365 * 48


@settings(max_examples=25, deadline=None)
@given(total=st.integers(0, 10_000), raw=st.lists(st.floats(0.01, 1.0), min_size=1, max_size=6))
def test_largest_remainder(total, raw):
    shares = np.array(raw) / sum(raw)
    counts = market._largest_remainder(total, shares)
    assert counts.sum() == total and (counts >= 0).all()
    assert (np.abs(counts - total * shares) < 1.0 + 1e-9).all()


def test_ar1_noise_moments():
    rng = np.random.default_rng(1)
    x = market.ar1_lognormal_noise(rng, (200, 2000), 0.1, 0.9)
    assert x.mean() == pytest.approx(1.0, abs=0.01)
    assert x.std() == pytest.approx(0.1, rel=0.1)
    y = np.log(x)
    y = y - y.mean()
    lag1 = (y[:, 1:] * y[:, :-1]).mean() / (y * y).mean()
    assert lag1 == pytest.approx(0.9, abs=0.02)
    assert (y[:, 0].std() / y[:, -1].std()) == pytest.approx(1.0, abs=0.15)  # stationary from the start
    iid = market.ar1_lognormal_noise(rng, (200, 2000), 0.1, 0.0)
    z = np.log(iid) - np.log(iid).mean()
    assert abs((z[:, 1:] * z[:, :-1]).mean() / (z * z).mean()) < 0.02
    np.testing.assert_array_equal(market.ar1_lognormal_noise(rng, (2, 3), 0.0, 0.5), 1.0)


# --------------------------------------------------------------------------------------------------
# solar
# --------------------------------------------------------------------------------------------------
def test_solar_elevation_matches_astral():
    points = [(51.51, -0.13), (57.31, -3.16), (50.1, -5.5)]
    stamps = pd.to_datetime(["2026-03-29 00:30", "2026-06-21 12:00", "2026-06-21 04:15", "2026-12-21 15:45",
                             "2026-10-25 09:00", "2013-07-01 18:00", "2030-02-14 11:30"])
    for lat, lon in points:
        ours = market.solar_elevation(stamps.to_numpy(), lat, lon)
        obs = astral.Observer(latitude=lat, longitude=lon)
        ref = [astral.sun.elevation(obs, t.to_pydatetime().replace(tzinfo=dt.UTC), with_refraction=False)
               for t in stamps]
        np.testing.assert_allclose(ours, ref, atol=0.5)
    # broadcast: (groups, times)
    grid = market.solar_elevation(stamps.to_numpy()[None, :], np.array([[51.5], [57.3]]), np.array([[0.0], [-3.0]]))
    assert grid.shape == (2, len(stamps))


def test_export_zero_at_night_peaks_near_solar_noon(demo_market):
    m = demo_market.meters
    ae = m["measurement_quantity"].values == "AE"
    export = m["energy"].values[ae]
    times = pd.DatetimeIndex(m["time"].values)
    groups = m["gsp_group"].values[ae]
    table = reference.gsp_groups()
    mid = (times + pd.Timedelta("15min")).to_numpy()
    elev = market.solar_elevation(mid[None, :], table.loc[groups, "latitude"].to_numpy()[:, None],
                                  table.loc[groups, "longitude"].to_numpy()[:, None])
    assert (export[elev <= 0] == 0).all()
    assert export[elev > 20].mean() > 0.05
    # mean export by UTC half hour of day peaks within 1.5 h of solar noon (about 12:00-12:20 UTC)
    hod = (times.hour * 2 + times.minute // 30).to_numpy()
    by_hod = pd.DataFrame(export.T).groupby(hod).mean().mean(axis=1)
    peak = by_hod.idxmax() / 2  # [h UTC]
    assert 10.75 <= peak <= 13.75
    # the import of a solar home is its demand net of generation: never both import and export at once
    partner = pd.Index(m["mpan"].values).get_indexer(m["linked_mpan"].values[ae])
    both = (export > 0) & (m["energy"].values[partner] > 0)
    assert not both.any()


# --------------------------------------------------------------------------------------------------
# losses, unaccounted energy and the GSP group take
# --------------------------------------------------------------------------------------------------
def test_gsp_group_take_identity(demo_market, demo):
    m = demo_market.meters
    llf = demo_market.line_loss_factors.sel(llfc=m["llfc"]).drop_vars(["llfc"])
    at_gsp = m["energy"] * llf
    sign = xr.where(m["measurement_quantity"] == "AE", -1.0, 1.0)
    net = (at_gsp * sign).groupby("gsp_group").sum()
    imports = at_gsp.where(m["measurement_quantity"] == "AI", 0.0).groupby("gsp_group").sum()
    take = demo_market.gsp_group_take
    ue = demo_market.unaccounted_energy
    np.testing.assert_allclose(take.values, (net + ue).transpose(*take.dims).values, rtol=1e-12)
    ratio = (ue / imports.transpose(*ue.dims)).values
    assert ratio.mean() == pytest.approx(demo.unaccounted_energy.mean, abs=3e-4)
    assert ratio.std() == pytest.approx(demo.unaccounted_energy.sd, rel=0.15)
    assert take.attrs["units"] == "kWh" and ue.attrs["units"] == "kWh"
    assert list(take["gsp_group"].values) == list(demo.gsp_groups)


def test_line_loss_factors(demo_market):
    llf = demo_market.line_loss_factors
    assert llf.dims == ("llfc", "time") and llf.attrs["units"] == "-"
    assert set(np.unique(demo_market.meters["llfc"].values)) == set(llf["llfc"].values)
    assert ((llf > 1.0) & (llf < 1.2)).all()
    table = reference.line_loss_factor_classes().loc[llf["llfc"].values]
    times = pd.DatetimeIndex(llf["time"].values)
    expected = reference.band_line_loss_factors(table["voltage_level"].to_numpy()[:, None],
                                                cal.local_clock_index(times)[None, :],
                                                cal.from_utc(times)[0].month.to_numpy()[None, :])
    np.testing.assert_array_equal(llf.values, expected)
    # time of day varies the LLF (night < peak) for an LV class
    lv = table.index[table["voltage_level"] == "LV"][0]
    slot = cal.local_clock_index(times)
    row = llf.sel(llfc=lv).values
    assert row[slot == 2].mean() < row[slot == 34].mean()


# --------------------------------------------------------------------------------------------------
# unmetered hook, attrs, files
# --------------------------------------------------------------------------------------------------
def test_unmetered_supplies_join_the_market(tiny):
    times = cal.time_axis(tiny.first_date, tiny.last_date)
    assert market.unmetered_supplies(tiny, times, market.stream(1, "unmetered"), {"_C": 0, "_P": 0}, []) is None
    with_ums = tiny.with_overrides({"segments.smart_domestic": 0.80, "segments.unmetered": 0.05})
    m = market.generate(with_ums)
    seg = m.meters["market_segment"].values
    ums_mpans = m.meters["mpan"].values[seg == "U"]
    assert len(ums_mpans) == 2 + 1 and m.ums is not None
    # the meter cube holds exactly the UMS truth's energy, and the take includes it through the UMS LLFCs
    np.testing.assert_array_equal(m.meters["energy"].sel(mpan=ums_mpans).values,
                                  m.ums.energy.sel(mpan=ums_mpans).values)
    assert (m.meters["energy"].sel(mpan=ums_mpans).sum("time") > 0).all()
    # and they survive a save and open
    assert sorted(market.Market.from_dataset(m.to_dataset()).ums.standing.index) == sorted(ums_mpans)


def test_attrs_record_provenance_and_exclusions(tiny_market, tiny):
    a = tiny_market.attrs
    assert a["scenario_name"] == "tiny" and a["seed"] == tiny.seed
    assert a["scenario_digest"] == tiny.digest()
    assert a["tomlib_version"]
    assert a["lcl_households_excluded_low_coverage"] == 3
    assert a["lcl_households_excluded_low_consumption"] == 1
    assert a["lcl_days_excluded_gaps"] > 0
    assert "min_household_kwh" in a["generator_settings"]
    assert tiny_market.meters.attrs["scenario_digest"] == tiny.digest()


def test_save_open_roundtrip(tiny_market, tmp_path):
    path = tiny_market.save(tmp_path / "market.zarr")
    back = market.Market.open(path)
    assert back.scenario_name == "tiny" and back.seed == tiny_market.seed
    assert back.meters["energy"].values.tobytes() == tiny_market.meters["energy"].values.tobytes()
    xr.testing.assert_identical(back.gsp_group_take, tiny_market.gsp_group_take)
    xr.testing.assert_identical(back.line_loss_factors, tiny_market.line_loss_factors)
    xr.testing.assert_identical(back.unaccounted_energy, tiny_market.unaccounted_energy)
    np.testing.assert_array_equal(back.meters["llfc"].values, tiny_market.meters["llfc"].values)
    assert back.attrs["lcl_households_used"] == tiny_market.attrs["lcl_households_used"]
    ds = tiny_market.to_dataset()
    assert {"gsp_group_id", "llfc_id", "mpan", "time"} == set(ds.sizes)
    with pytest.raises(ValueError, match="gsp_group_take"):
        market.Market.from_dataset(ds.drop_vars("gsp_group_take"))


@pytest.mark.parametrize("mix", [(1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, 1.0, 0.0)])
def test_single_segment_markets(tiny, mix):
    s = tiny.with_overrides({"segments.smart_domestic": mix[0], "segments.smart_non_domestic": mix[1],
                             "segments.advanced": mix[2]})
    mk = market.generate(s)
    seg = mk.meters["market_segment"].values[mk.meters["measurement_quantity"].values == "AI"]
    assert (seg == ("A" if mix[2] else "S")).all() and seg.size == 60
    assert np.isfinite(mk.gsp_group_take.values).all()
    assert (mk.meters["measurement_quantity"].values == "AE").any() == bool(mix[0])


# --------------------------------------------------------------------------------------------------
# compiled passes of the generator: the NumPy formulations they replace, value for value
# --------------------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(st.integers(0, 12), st.integers(1, 6), st.integers(1, 4), st.booleans(), st.integers(0, 2**32 - 1))
def test_gather_rows_kernel_matches_numpy(n, n_days, n_extra, with_noise, seed):
    from tomlib._market_kernels import gather_rows

    rng = np.random.default_rng(seed)
    n_t = n_days * 3
    table = rng.random((7, 5)) * 10
    pick = rng.integers(0, 7, size=(n, n_days))
    day_of_t = np.sort(rng.integers(0, n_days, size=n_t))
    slot = rng.integers(0, 5, size=n_t)
    scale = rng.lognormal(size=n)
    noise = rng.lognormal(size=(n, n_t)) if with_noise else None
    rows = rng.permutation(n + n_extra)[:n]
    out = np.full((n + n_extra, n_t), -1.0)
    gather_rows(out, rows, table, pick, day_of_t, slot, scale, noise)
    expect = np.full((n + n_extra, n_t), -1.0)
    part = table[pick[:, day_of_t], slot[None, :]]
    part *= scale[:, None]
    if with_noise:
        part *= noise
    expect[rows] = part
    np.testing.assert_array_equal(out, expect)  # bit for bit: same operations, same order


def test_gather_rows_refuses_bad_indices():
    from tomlib._market_kernels import gather_rows

    out = np.zeros((2, 2))
    with pytest.raises(IndexError):
        gather_rows(out, np.array([0]), np.ones((1, 2)), np.array([[1]]), np.zeros(2, int), np.arange(2),
                    np.ones(1), None)
    with pytest.raises(ValueError, match="C-contiguous"):
        gather_rows(np.zeros((2, 2), dtype=np.float32), np.array([0]), np.ones((1, 2)), np.array([[0]]),
                    np.zeros(2, int), np.arange(2), np.ones(1), None)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 30), st.integers(1, 50), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_rows_times_table_kernel_matches_numpy(n, n_t, n_codes, seed):
    from tomlib._market_kernels import rows_times_table

    rng = np.random.default_rng(seed)
    values, table = rng.random((n, n_t)) * 5, 1 + rng.random((n_codes, n_t)) / 10
    code = rng.integers(0, n_codes, size=n)
    np.testing.assert_array_equal(rows_times_table(values, code, table), values * table[code])


@settings(max_examples=80, deadline=None)
@given(st.lists(st.text(alphabet="0189AZ_é\U0001F600", max_size=3), max_size=40))
def test_sorted_codes_is_numpy_unique(values):
    text = np.array(values, dtype=str) if values else np.zeros(0, dtype="<U3")
    uniques, inverse = market._sorted_codes(text)
    expect, expect_inverse = np.unique(text, return_inverse=True)
    assert uniques.dtype == expect.dtype
    np.testing.assert_array_equal(uniques, expect)
    np.testing.assert_array_equal(inverse, expect_inverse.reshape(-1))


def test_profile_class_energy_into_matches_profile_class_energy(demo):
    """The generator's in-place path gives profile_class_energy's values for MPANs of several
    regions (bank holidays differ) over the demo's fortnight."""
    times, target_days, day_of_t, slot, _ = market._time_frame(demo)
    shapes = reference.profile_class_shapes()
    groups = np.array(demo.gsp_groups)
    rng = np.random.default_rng(3)
    n = 40
    gsp_code = rng.integers(0, groups.size, size=n)
    pc = rng.integers(1, 9, size=n)
    ac = rng.uniform(1e3, 1e5, size=n)
    noise = rng.lognormal(0, 0.1, size=(n, len(times)))
    expect = market.profile_class_energy(shapes, pc, ac, market._region_of(groups[gsp_code]), times,
                                         reference_year=demo.first_date.year, noise=noise)
    names, r_idx = market._region_codes(demo, gsp_code)
    out = np.full((n + 3, len(times)), np.nan)
    rows = np.arange(3, n + 3)
    market._profile_class_energy_into(out, rows, shapes, pc, ac, names, r_idx, target_days, day_of_t, slot,
                                      reference_year=demo.first_date.year, noise=noise)
    np.testing.assert_array_equal(out[rows], expect)
    assert np.isnan(out[:3]).all()


def test_region_codes_are_the_regions_of_the_groups(demo):
    groups = np.array(demo.gsp_groups)
    code = np.random.default_rng(0).integers(0, groups.size, size=200)
    names, r_idx = market._region_codes(demo, code)
    np.testing.assert_array_equal(np.asarray(names)[r_idx], market._region_of(groups[code]))


def test_cms_log_is_the_pandas_formulation():
    """The UMS truth's CMS log (tomlib.services.ums_truth._cms_log) equals the pandas MultiIndex /
    reindex / multi-column sort it replaced, draws included."""
    from tomlib.services import ums
    from tomlib.services import ums_truth as ut

    rng = np.random.default_rng(11)
    nights = pd.date_range("2026-01-20", periods=4, freq="D").to_numpy()
    line_mpan = np.array(["1000000000017", "1000000000025", "1000000000017", "1000000000033"])
    line_item = np.array(["L0001", "L0001", "L0002", "L0001"])
    events = []
    for _ in range(2):  # two regimes
        n = 40
        events.append(pd.DataFrame({"line": rng.integers(0, 4, n), "night": nights[rng.integers(0, 4, n)],
                                    "time": nights[0] + rng.integers(0, 10**6, n).astype("timedelta64[s]"),
                                    "level": rng.random(n)}))
    settings = ut.UmsSettings(cms_missing_night=0.3, cms_late_night=0.3)
    got = ut._cms_log(settings, np.random.default_rng(5), events, line_mpan, line_item)

    ev = pd.concat(events, ignore_index=True)
    ev["mpan"] = line_mpan[ev["line"].to_numpy()]
    ev["item_id"] = line_item[ev["line"].to_numpy()]
    ln = pd.MultiIndex.from_frame(ev[["mpan", "night"]]).unique()
    at = ut._delivery(settings, np.random.default_rng(5), ln.get_level_values("night").to_numpy(), settings.cms_hour,
                      3.0, settings.cms_missing_night, settings.cms_late_night)
    ev["available_at"] = pd.Series(at, index=ln).reindex(pd.MultiIndex.from_frame(ev[["mpan", "night"]])).to_numpy()
    ev = ev[~ev["available_at"].isna()]
    expect = ev[list(ums.CMS_COLUMNS)].sort_values(["mpan", "item_id", "time"], kind="stable").reset_index(drop=True)
    assert 0 < len(got) < 80
    pd.testing.assert_frame_equal(got, expect, check_exact=True)
    assert got.dtypes.to_dict() == expect.dtypes.to_dict()
