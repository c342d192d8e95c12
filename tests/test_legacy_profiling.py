"""Legacy profiling comparator: golden day energies of the 1997 profiles, clock-change days, the comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tomlib import calendar as cal
from tomlib import cube, reference
from tomlib.market import annual_profile_kwh
from tomlib.services import legacy_profiling as lp
from tomlib.services import load_shaping as lss


@pytest.fixture(scope="module")
def tiny_market(scenarios_dir):
    from tomlib import market, scenario

    return market.generate(scenario.load_scenario(scenarios_dir / "tiny.yaml"))


def _standing(pc, domestic=True, mq="AI", gsp="_C", ac=None):
    ac = annual_profile_kwh(reference.profile_class_shapes(), 2026, "england_wales")[pc] if ac is None else ac
    return pd.DataFrame({"gsp_group": [gsp], "domestic": [domestic], "measurement_quantity": [mq],
                         "annual_consumption": [float(ac)], "profile_class": [pc]},
                        index=pd.Index(["1200000000001"], name="mpan"))


@pytest.mark.parametrize(("pc", "day", "kwh"), [
    # golden numbers of /work/shared/data/elexon-load-profiles/README.md (sum of GAD x 0.5 h)
    (1, "2026-01-14", 12.290),   # winter weekday
    (1, "2026-07-26", 9.520),    # high-summer Sunday
    (3, "2026-01-14", 48.115),
    (8, "2026-07-26", 474.195),
])
def test_a_customer_with_the_class_annual_energy_gets_the_golden_day(pc, day, kwh):
    times = cal.period_starts(pd.Timestamp(day))
    e = lp.legacy_energy(_standing(pc), times)
    assert e.shape == (1, 48)
    assert e.sum() == pytest.approx(kwh, abs=1e-9)


def test_a_year_of_legacy_energy_is_the_eac():
    times = cal.time_axis(pd.Timestamp("2026-01-01"), pd.Timestamp("2026-12-31"))
    e = lp.legacy_energy(_standing(1, ac=3100.0), times)
    # up to the clock-change days: the profile is normalised over 48 local half hours a day, and the
    # 50-period day repeats local 01:00-02:00 that the 46-period day lacks (winter vs spring values)
    assert e.sum() == pytest.approx(3100.0, rel=1e-4)
    assert e.sum() != pytest.approx(3100.0, rel=1e-12)


@pytest.mark.parametrize(("day", "n"), [("2026-03-29", 46), ("2026-10-25", 50)])
def test_clock_change_days_follow_the_local_clock(day, n):
    times = cal.period_starts(pd.Timestamp(day))
    e = lp.legacy_energy(_standing(1), times)[0]
    assert e.size == n
    k = cal.local_clock_index(times)
    if n == 50:  # the repeated local hour 01:00-02:00 gets its profile value twice
        np.testing.assert_allclose(e[2:4], e[4:6])
    else:  # local 01:00-02:00 does not exist
        assert 2 not in k and 3 not in k


def test_profile_class_of_uses_the_market_class_and_skips_export():
    st = pd.DataFrame({"domestic": [True, False, True, True], "measurement_quantity": ["AI", "AI", "AE", "AI"],
                       "profile_class": [0, 4, 0, 2], "gsp_group": "_C", "annual_consumption": 1.0},
                      index=pd.Index([f"120000000000{i}" for i in range(4)], name="mpan"))
    np.testing.assert_array_equal(lp.profile_class_of(st), [1, 4, 0, 2])
    np.testing.assert_array_equal(lp.profiled(st), [True, True, False, True])
    assert np.isnan(lp.legacy_energy(st, cal.period_starts(pd.Timestamp("2026-03-30")))[2]).all()


def test_settle_makes_a_meter_cube_and_refuses_export(tiny_market):
    c = lp.settle(tiny_market.meters)
    cube.validate_meter_cube(c)
    assert (tiny_market.meters["measurement_quantity"].values == "AI").sum() == c.sizes["mpan"]
    assert (cube.quality_label(c["quality"].values) == "E").all()
    export = tiny_market.meters["mpan"].values[tiny_market.meters["measurement_quantity"].values == "AE"][0]
    with pytest.raises(ValueError, match=f"MPAN {export} has no profile class"):
        lp.settle(tiny_market.meters, mpans=[export])
    with pytest.raises(ValueError, match="is not in the meter cube"):
        lp.settle(tiny_market.meters, mpans=["1234567890123"])


def test_category_profiles_are_the_mean_legacy_energy_of_the_category(tiny_market):
    settled = lss.example_settled_input(tiny_market, actual_share=0.8, seed=2)
    ls = lss.load_shapes(settled, config={"min_population": 2})
    prof = lp.category_profiles(ls, settled)
    times = pd.DatetimeIndex(ls["time"].values)
    lab = lss.category_of(settled)
    rows = lab == "_C|W|S|D|AI"
    expected = lp.legacy_energy(lss.standing_table(settled)[rows], times).mean(axis=0)
    np.testing.assert_allclose(prof.sel(category="_C|W|S|D|AI").values, expected)
    assert prof.sel(category=[c for c in prof["category"].values if c.endswith("AE")]).isnull().all()


def test_estimate_accuracy_compares_the_same_cells(tiny_market):
    settled = lss.example_settled_input(tiny_market, actual_share=0.6, seed=4)
    ls = lss.load_shapes(settled, config={"min_population": 2})
    acc = lp.estimate_accuracy(settled, ls, tiny_market)
    assert set(acc.index.get_level_values("group")) == {"domestic", "non-domestic", "all"}
    allg = acc.loc["all"]
    q = settled["quality"].values
    estimated_import = ((q != cube.QUALITY_CODES["A"]) & (settled["measurement_quantity"].values == "AI")[:, None])
    for m in ("MHHS settled value (processing)", "MHHS load shape x AC", "legacy profile x EAC"):
        assert allg.loc[m, "mpan_periods"] == estimated_import.sum()
    # shaping a known day total keeps each MPAN-day's energy: no bias, no daily error
    for m in ("MHHS load shape, day total known", "legacy profile, day total known"):
        assert abs(allg.loc[m, "bias_pct"]) < 1e-9 and allg.loc[m, "daily_mae_pct"] < 1e-9
        assert allg.loc[m, "mae_pct"] > 0
    parts = acc.xs("MHHS load shape x AC", level="method")["mpan_periods"]
    assert parts["domestic"] + parts["non-domestic"] == parts["all"]
