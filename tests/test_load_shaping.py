"""Load Shaping Service: hand-made categories (mhhs-domain.md §5), fallback, clock-change days, rolling windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tomlib import calendar as cal
from tomlib import cube, reference
from tomlib.market import annual_profile_kwh, profile_class_energy
from tomlib.services import load_shaping as lss
from tomlib.services.processing_estimation import category_labels

A, E9 = cube.QUALITY_CODES["A"], cube.QUALITY_CODES["E9"]


@pytest.fixture(scope="module")
def tiny_market(scenarios_dir):
    from tomlib import market, scenario

    return market.generate(scenario.load_scenario(scenarios_dir / "tiny.yaml"))


def make_cube(energy, quality, rows, first="2026-03-23", last=None):
    """A meter cube of hand-made MPANs: ``rows`` = list of (gsp_group, connection_type, segment, domestic, mq, ac)."""
    times = cal.time_axis(pd.Timestamp(first), pd.Timestamp(last or first))
    n = len(rows)
    standing = pd.DataFrame(rows, columns=["gsp_group", "connection_type", "market_segment", "domestic",
                                           "measurement_quantity", "annual_consumption"])
    standing = standing.assign(supplier="ALFA", bm_unit="2__CALFA001", llfc="100",
                               annual_consumption=standing["annual_consumption"].astype(float))
    standing.index = pd.Index([f"{10**12 + i:013d}" for i in range(n)], name="mpan")
    e = np.broadcast_to(np.asarray(energy, dtype=float).reshape(n, -1), (n, len(times))).copy()
    q = np.broadcast_to(np.asarray(quality, dtype=np.uint8).reshape(n, -1), (n, len(times))).copy()
    return cube.meter_cube(e, times, standing.index.to_numpy(), standing, quality=q)


DOM_C = ("_C", "W", "S", True, "AI", 3000.0)
DOM_P = ("_P", "W", "S", True, "AI", 3000.0)


# ------------------------------------------------------------------------------------------ §5 constructed case


def test_constructed_case_mean_of_actuals_excludes_the_estimate():
    # mhhs-domain.md §5: 3 actual MPANs at SP j: 0.20, 0.30, 0.40 and one estimated 0.90 -> LS_j = 0.30
    ds = make_cube([0.20, 0.30, 0.40, 0.90], [A, A, A, E9], [DOM_C] * 4)
    ls = lss.load_shapes(ds, run="SF", config={"min_population": 3})
    assert ls.sizes["category"] == 1 and str(ls["category"].values[0]) == "_C|W|S|D|AI"
    np.testing.assert_allclose(ls["load_shape"].values, 0.30, rtol=0, atol=1e-15)
    assert (ls["population"].values == 3).all()
    assert (ls["default_flag"].values == "A").all() and not ls["default_shape"].values.any()
    assert int(ls["category_mpans"].values[0]) == 4
    assert ls["load_shape"].attrs["units"] == "kWh" and ls.attrs["run_number"] == lss.RUN_NUMBERS["SF"]


def test_register_advance_shaped_by_the_load_shape_golden():
    # §5: advance 10 kWh over SPs with LS = [0.1, 0.3, 0.6] -> E = [1, 3, 6]; what processing does with LS_j / sum LS
    ls = np.array([0.1, 0.3, 0.6])
    np.testing.assert_allclose(10 * ls / ls.sum(), [1, 3, 6])


# ------------------------------------------------------------------------------------------ fallback


def _fallback_cube():
    rows = ([DOM_C] * 4 + [DOM_P] * 2                       # _P domestic: 2 actual MPANs < 3 -> national
            + [("_C", "L", "S", False, "AI", 20000.0)]        # alone nationally too -> coarse (W and L together)
            + [("_C", "W", "S", False, "AI", 10000.0)] * 3
            + [("_C", "H", "A", False, "AI", 300000.0)]       # no actual data anywhere in segment A -> back stop
            + [("_C", "W", "S", True, "AE", 1500.0)])         # export without data -> no data (0, flag B)
    energy = [0.2, 0.3, 0.4, 0.5, 1.0, 2.0, 9.0, 4.0, 5.0, 6.0, 50.0, 0.7]
    quality = [A] * 10 + [E9, E9]
    return make_cube(energy, quality, rows)


def test_default_fallback_order_and_flags():
    ds = _fallback_cube()
    ls = lss.load_shapes(ds, config={"min_population": 3})
    v = ls["load_shape"].isel(time=0).to_series()
    flag = ls["default_flag"].isel(time=0).to_series()
    level = ls["fallback_level"].isel(time=0).to_series()
    src = ls["source_population"].isel(time=0).to_series()
    # own category
    assert flag["_C|W|S|D|AI"] == "A" and v["_C|W|S|D|AI"] == pytest.approx(0.35)
    # national: same category over _C and _P (6 MPANs)
    assert flag["_P|W|S|D|AI"] == "D" and level["_P|W|S|D|AI"] == 1 and src["_P|W|S|D|AI"] == 6
    assert v["_P|W|S|D|AI"] == pytest.approx(np.mean([0.2, 0.3, 0.4, 0.5, 1.0, 2.0]))
    # coarse: all connection types of S non-domestic import
    assert flag["_C|L|S|N|AI"] == "D" and level["_C|L|S|N|AI"] == 2 and src["_C|L|S|N|AI"] == 4
    assert v["_C|L|S|N|AI"] == pytest.approx(np.mean([9.0, 4.0, 5.0, 6.0]))
    # back stop: the 1997 profile class 3 shape x the category's mean annual consumption
    assert flag["_C|H|A|N|AI"] == "E" and level["_C|H|A|N|AI"] == 3
    times = pd.DatetimeIndex(ls["time"].values)
    expected = profile_class_energy(reference.profile_class_shapes(), np.array([3]), np.array([300000.0]),
                                    np.array(["england_wales"]), times, reference_year=2026)[0]
    np.testing.assert_allclose(ls["load_shape"].sel(category="_C|H|A|N|AI").values, expected)
    # export without any actual data: 0 with flag B
    assert flag["_C|W|S|D|AE"] == "B" and v["_C|W|S|D|AE"] == 0.0
    # population is always the own category's count of actual MPANs
    assert ls["population"].isel(time=0).to_series()["_P|W|S|D|AI"] == 2


def test_annual_total_is_the_mean_annual_consumption_behind_the_value_without_a_year_of_history():
    ds = _fallback_cube()
    ls = lss.load_shapes(ds, config={"min_population": 3})
    total = ls["annual_total"].isel(time=0).to_series()
    assert total["_C|W|S|D|AI"] == pytest.approx(3000.0)
    assert total["_C|L|S|N|AI"] == pytest.approx((20000 + 3 * 10000) / 4)
    assert total["_C|H|A|N|AI"] == pytest.approx(300000.0)


def test_import_mpans_with_generation_can_be_left_out():
    ds = make_cube([0.2, 0.3, 0.4, 0.05, 0.5], [A] * 5, [DOM_C] * 4 + [("_C", "W", "S", True, "AE", 1500.0)])
    ds = ds.assign_coords(linked_mpan=("mpan", ["", "", "", ds["mpan"].values[4], ds["mpan"].values[3]]))
    both = lss.load_shapes(ds, config={"min_population": 1})
    assert both["load_shape"].sel(category="_C|W|S|D|AI").values[0] == pytest.approx(0.2375)
    net = lss.load_shapes(ds, config={"min_population": 1, "exclude_generation_imports": True})
    assert net["load_shape"].sel(category="_C|W|S|D|AI").values[0] == pytest.approx(0.3)
    assert net["population"].sel(category="_C|W|S|D|AI").values[0] == 3
    assert int(net["category_mpans"].sel(category="_C|W|S|D|AI")) == 4
    # the export MPAN of the solar home still counts
    assert net["load_shape"].sel(category="_C|W|S|D|AE").values[0] == pytest.approx(0.5)
    checks = lss.invariants(net, lss.load_shape_totals(net), ds, {"min_population": 1,
                                                                   "exclude_generation_imports": True})
    assert checks["ok"].all()


def test_min_population_below_one_is_refused():
    with pytest.raises(ValueError, match="min_population must be >= 1"):
        lss.LoadShapeConfig(min_population=0)


def test_unknown_run_is_refused():
    with pytest.raises(ValueError, match="run must be one of"):
        lss.load_shapes(_fallback_cube(), run="R9")


# ------------------------------------------------------------------------------------------ invariants


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), min_pop=st.integers(1, 4))
def test_own_values_are_the_mean_of_actuals_and_estimates_never_matter(seed, min_pop):
    rng = np.random.default_rng(seed)
    n = 12
    rows = [(rng.choice(["_C", "_P"]), "W", "S", bool(rng.random() < 0.6), "AI", 3000.0) for _ in range(n)]
    energy = rng.random((n, 48))
    quality = np.where(rng.random((n, 48)) < 0.7, A, E9).astype(np.uint8)
    ds = make_cube(energy, quality, rows)
    ls = lss.load_shapes(ds, config={"min_population": min_pop})
    # brute force with pandas, per category and period
    lab = lss.category_of(ds)
    frame = pd.DataFrame(np.where(quality == A, energy, np.nan), index=lab)
    mean, count = frame.groupby(level=0).mean(), frame.groupby(level=0).count()
    own = ls["fallback_level"].values == 0
    np.testing.assert_allclose(ls["load_shape"].values[own], mean.reindex(ls["category"].values).values[own])
    np.testing.assert_array_equal(ls["population"].values, count.reindex(ls["category"].values).values)
    assert (ls["population"].values[own] >= min_pop).all()
    # estimated values do not enter
    ds2 = ds.copy(deep=True)
    ds2["energy"].values = np.where(quality == A, energy, rng.random((n, 48)) * 100)
    np.testing.assert_array_equal(lss.load_shapes(ds2, config={"min_population": min_pop})["load_shape"].values,
                                  ls["load_shape"].values)
    assert np.isfinite(ls["load_shape"].values).all()


def test_default_labels_are_processings_labels_and_coarsening_aggregates():
    ds = _fallback_cube()
    st_ = lss.standing_table(ds)
    np.testing.assert_array_equal(lss.category_of(ds), category_labels(st_))
    coarse = lss.load_categories().coarsen("connection_type")
    labels = lss.category_of(ds, coarse)
    assert set(np.char.partition(labels, "|")[:, 2]) >= {"*|S|D|AI", "*|S|N|AI"}
    ls = lss.load_shapes(ds, config={"min_population": 3, "categories": coarse})
    assert (ls["connection_type"].values == "*").all()
    # the _C W and L non-domestic MPANs are one category now: 4 actual MPANs
    assert ls["population"].sel(category="_C|*|S|N|AI").values[0] == 4


def test_refined_categories_split_further():
    ds = _fallback_cube()
    ds = ds.assign_coords(tariff=("mpan", np.where(np.arange(ds.sizes["mpan"]) % 2 == 0, "E7", "STD")))
    refined = lss.load_categories().refine("tariff")
    ls = lss.load_shapes(ds, config={"min_population": 1, "categories": refined})
    assert "tariff" in ls.coords and set(ls["tariff"].values) == {"E7", "STD"}
    assert ls.sizes["category"] > lss.load_shapes(ds, config={"min_population": 1}).sizes["category"]


def test_category_table_errors_name_file_line_and_field(tmp_path):
    text = lss.CATEGORIES_PATH.read_text().replace("gsp_group,gspGroupId,,,,,1,0,0", "gsp_group,gspGroupId,,,,,2,0,0")
    bad = tmp_path / "cats.csv"
    bad.write_text(text)
    with pytest.raises(ValueError, match=r"cats.csv, line \d+, field 'category'"):
        lss.load_categories(bad)
    bad.write_text(lss.CATEGORIES_PATH.read_text().replace("gsp_group,gspGroupId,,,,,1,0,0",
                                                           "gsp_group,gspGroupId,,,,,0,1,0"))
    with pytest.raises(ValueError, match="fallback_1_national"):
        lss.load_categories(bad)


def test_shipped_category_definition():
    cats = lss.load_categories()
    assert cats.split == ("gsp_group", "connection_type", "market_segment", "domestic", "measurement_quantity")
    assert [name for name, _ in cats.levels] == ["own", "national", "coarse"]
    assert "gsp_group" not in dict(cats.fallbacks)["national"]


# ------------------------------------------------------------------------------------------ clock changes and totals


@pytest.mark.parametrize(("day", "n", "off_peak"), [("2026-03-29", 46, 12), ("2026-10-25", 50, 16),
                                                    ("2026-03-30", 48, 14)])
def test_clock_change_days_have_46_and_50_values(day, n, off_peak):
    ds = make_cube([1.0, 1.0, 1.0], [A, A, A], [DOM_C] * 3, first=day)
    ls = lss.load_shapes(ds, config={"min_population": 1})
    assert ls.sizes["time"] == n
    np.testing.assert_array_equal(ls["settlement_period"].values, np.arange(1, n + 1))
    tot = lss.load_shape_totals(ls)
    assert int(tot["periods"].values[0]) == n
    assert float(tot["day_total"].values[0, 0]) == pytest.approx(n * 1.0)
    assert float(tot["day_off_peak_total"].values[0, 0]) == pytest.approx(off_peak)
    assert float(tot["day_peak_total"].values[0, 0]) == pytest.approx(n - off_peak)


def test_peak_periods_are_di044_di045_by_local_clock():
    bands = lss.peak_bands()
    assert (bands[:14] == "off_peak").all() and (bands[14:] == "peak").all()


def test_peak_table_must_tile_the_day(tmp_path):
    bad = tmp_path / "peak.csv"
    bad.write_text("band,start_local,end_local\noff_peak,00:00,07:00\npeak,07:30,24:00\n")
    with pytest.raises(ValueError, match="07:00 is in no band"):
        lss.peak_bands(bad)


def test_partial_days_are_refused():
    ds = make_cube([1.0], [A], [DOM_C]).isel(time=slice(0, 40))
    with pytest.raises(ValueError, match="whole settlement day"):
        lss.load_shapes(ds)


def _constant_days(first, last, per_day_kwh):
    """Shapes whose every day totals ``per_day_kwh`` (one MPAN, flat over the day)."""
    days = pd.date_range(first, last, freq="D")
    times = cal.time_axis(days[0], days[-1])
    n = np.asarray(cal.periods_in_day(cal.from_utc(times)[0].to_numpy()))
    ds = make_cube(np.ones(1), [A], [DOM_C], first=first, last=last)
    ds["energy"].values = (per_day_kwh / n)[None, :]
    return lss.load_shapes(ds, config={"min_population": 1})


def test_rolling_windows_across_a_year_boundary_record_coverage():
    ls = _constant_days("2025-12-28", "2026-01-05", 10.0)
    tot = lss.load_shape_totals(ls).isel(category=0).to_dataframe()
    days = tot.index
    assert days[0] == pd.Timestamp("2025-12-28") and days[-1] == pd.Timestamp("2026-01-05")
    np.testing.assert_allclose(tot["day_total"], 10.0)
    np.testing.assert_array_equal(tot["rolling_7day_days"], [1, 2, 3, 4, 5, 6, 7, 7, 7])
    np.testing.assert_allclose(tot["rolling_7day_total"], 10.0 * tot["rolling_7day_days"])
    np.testing.assert_array_equal(tot["rolling_annual_days"], np.arange(1, 10))
    np.testing.assert_allclose(tot["rolling_annual_total"], 10.0 * np.arange(1, 10))
    np.testing.assert_allclose(tot["rolling_7day_peak_total"] + tot["rolling_7day_off_peak_total"],
                               tot["rolling_7day_total"])


def test_history_completes_the_annual_window_and_then_gives_the_annual_total():
    history = lss.load_shape_totals(_constant_days("2025-01-01", "2025-12-31", 2.0))
    ls = _constant_days("2026-01-01", "2026-01-03", 4.0)
    tot = lss.load_shape_totals(ls, history=history).isel(category=0).to_dataframe()
    np.testing.assert_array_equal(tot["rolling_annual_window"], 365)
    np.testing.assert_array_equal(tot["rolling_annual_days"], 365)
    # window of 2026-01-02 = 2025-01-03 .. 2026-01-02: 363 history days x 2 + 2 days x 4
    assert tot.loc["2026-01-02", "rolling_annual_total"] == pytest.approx(363 * 2 + 2 * 4)
    assert tot.loc["2026-01-02", "rolling_7day_total"] == pytest.approx(5 * 2 + 2 * 4)
    assert tot.loc["2026-01-02", "rolling_7day_days"] == 7


def test_leap_year_annual_window_has_366_days():
    ls = _constant_days("2028-02-28", "2028-03-01", 1.0)
    tot = lss.load_shape_totals(ls)
    np.testing.assert_array_equal(tot["rolling_annual_window"].values, [365, 366, 366])


def test_annual_total_uses_the_rolling_annual_total_once_a_year_is_covered():
    # a full year of shapes: the last day's annual window is covered, so annual_total = rolling total there
    ls = _constant_days("2025-01-01", "2026-01-01", 2.0)
    last = ls["annual_total"].isel(category=0).values[-48:]
    np.testing.assert_allclose(last, 365 * 2.0)
    assert ls["annual_total"].isel(category=0).values[0] == pytest.approx(3000.0)  # the MPAN's AC before that


# ------------------------------------------------------------------------------------------ against the truth


def test_with_every_mpan_actual_the_shape_is_the_truth(tiny_market):
    settled = lss.example_settled_input(tiny_market, actual_share=1.0, seed=3)
    ls = lss.load_shapes(settled, config={"min_population": 1})
    truth = lss.true_shapes(tiny_market, ls, settled)
    np.testing.assert_allclose(ls["load_shape"].values, truth.values, rtol=1e-12)
    acc = lss.shape_accuracy(ls, truth)
    assert acc.loc["all", "mae_pct"] == pytest.approx(0.0, abs=1e-9)


def test_example_settled_input_is_a_documented_deterministic_stand_in(tiny_market):
    a = lss.example_settled_input(tiny_market, actual_share=0.7, seed=5)
    b = lss.example_settled_input(tiny_market, actual_share=0.7, seed=5)
    cube.validate_meter_cube(a)
    np.testing.assert_array_equal(a["quality"].values, b["quality"].values)
    actual = a["quality"].values == A
    assert 0.6 < actual.mean() < 0.8
    truth = tiny_market.meters["energy"].values
    np.testing.assert_array_equal(a["energy"].values[actual], truth[actual])
    # actual per MPAN-day: the quality is constant within a settlement day
    day = np.unique(a["settlement_date"].values, return_inverse=True)[1]
    for d in np.unique(day):  # three days
        block = actual[:, day == d]
        assert (block == block[:, :1]).all()
    with pytest.raises(ValueError, match="actual_share"):
        lss.example_settled_input(tiny_market, actual_share=1.5)


def test_shape_accuracy_compares_the_legacy_profile_too(tiny_market):
    from tomlib.services import legacy_profiling

    settled = lss.example_settled_input(tiny_market, actual_share=0.6, seed=1)
    ls = lss.load_shapes(settled, config={"min_population": 2})
    acc = lss.shape_accuracy(ls, lss.true_shapes(tiny_market, ls, settled),
                             legacy_profiling.category_profiles(ls, settled))
    exports = acc.index.str.endswith("|AE")
    assert acc.loc[exports, "legacy_mae_pct"].isna().all() and acc.loc[~exports & (acc.index != "all"),
                                                                          "legacy_mae_pct"].notna().all()
    assert np.isfinite(acc.loc["all", ["mae_pct", "legacy_mae_pct", "shape_mae_pct"]].astype(float)).all()
    assert acc.loc["all", "category_mpans"] == settled.sizes["mpan"]


def test_bench_inputs_are_small_and_valid_when_asked():
    kw = lss.bench_inputs(mpan_days=2_100, days=7, seed=1)
    ls = lss.load_shapes(**kw)
    assert kw["settled"].sizes["mpan"] == 300
    assert 29 in kw["settled"]["settlement_date"].dt.day.values  # the 46-period day is inside
    assert np.isfinite(ls["load_shape"].values).all() and ls.sizes["time"] == 7 * 48 - 2


def test_annual_profile_helper_matches_golden():
    # sanity of the back stop's source: PC1 annual energy for 2026 is positive and ~2,700-3,700 kWh
    total = annual_profile_kwh(reference.profile_class_shapes(), 2026, "england_wales")[1]
    assert 2500 < total < 4000
