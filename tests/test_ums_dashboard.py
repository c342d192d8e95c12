"""The UMS dashboard: its numbers on small inputs, its views, and its static export."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tomlib import calendar as cal
from tomlib import reference
from tomlib.dashboards import save_dashboard
from tomlib.dashboards import ums as du
from tomlib.services import ums


@pytest.fixture(scope="module")
def run():
    days = pd.date_range("2026-10-24", "2026-10-26")
    times = cal.time_axis(days[0], days[-1])
    truth = ums.generate_ums_truth(None, reference.gsp_groups(), times, np.random.default_rng(11), {"_C": 5, "_P": 3})
    as_of = pd.Timestamp("2026-12-01")
    results = {m: ums.settle_segment(truth, as_of, run="RF", settlement_dates=days, config={"method": m})
               for m in ("registered", "passive", "pecu")}
    return truth, results


def test_sample_days_have_46_48_and_50_periods():
    days = du.sample_days(2026)
    assert list(days) == list(du.DAY_LABELS)
    assert [cal.periods_in_day(d) for d in days.values()] == [48, 48, 46, 50]


def test_day_profiles_and_daily_table():
    prof = du.day_profiles(["_C"], 2026, ums.switch_regimes().loc[["821", "999", "901"]])
    n = prof.groupby(["switch_regime", "day"]).size().unstack()
    assert (n["spring clock change"] == 46).all() and (n["autumn clock change"] == 50).all()
    daily = du.daily_table(prof, "_C")
    assert daily.loc["999"].tolist() == pytest.approx([24.0, 24.0, 23.0, 25.0])
    assert daily.loc["901"].tolist() == pytest.approx([14.0, 14.0, 13.0, 15.0])
    assert daily.loc["821", "winter (48 SP)"] > 2 * daily.loc["821", "summer (48 SP)"]
    assert (prof["kwh_per_kw"].between(0, 0.5 + 1e-12)).all()


def test_switching_year_and_annual_hours():
    regs = ["821", "823", "901", "999"]
    sw = du.switching_year(["_C", "_P"], regs, 2026)
    assert set(sw["switch_regime"]) == {"821", "823", "901"}  # continuous has no switching
    d = sw[(sw["switch_regime"] == "821") & (sw["method"] == "passive")].set_index(["gsp_group", "night"])
    # midsummer evening: later switch-on in the north; midwinter: earlier
    assert d.loc[("_P", pd.Timestamp("2026-06-21")), "on_h"] > d.loc[("_C", pd.Timestamp("2026-06-21")), "on_h"]
    assert d.loc[("_P", pd.Timestamp("2026-12-21")), "on_h"] < d.loc[("_C", pd.Timestamp("2026-12-21")), "on_h"]
    clock = sw[sw["method"] == "clock"]
    assert (clock["on_h"] == 19).all() and (clock["off_h"] == 9).all()
    annual = du.annual_hours_table(["_C", "_P"], 2026, ums.switch_regimes().loc[regs])
    assert annual.loc["999", "_C"] == 8760 and annual.loc["901", "_P photocell"] == annual.loc["901", "_P"]
    assert annual.loc["821", "_P photocell"] < annual.loc["821", "_C photocell"] < annual.loc["821", "_C"]


def test_method_numbers_and_checks(run):
    truth, results = run
    series = du.method_series(truth, results)
    assert list(series["series"].values) == ["truth", "registered", "passive", "pecu"]
    np.testing.assert_allclose(float(series.sel(series="truth").sum()),
                               float(truth.energy.sel(time=series["time"].values).sum()))
    errors = du.method_errors(truth, results)
    assert set(errors.index) == set(results) and (errors["truth_kwh"] > 0).all()
    assert errors.loc["passive", "estimated_share"] == 0
    src = du.source_table(results["registered"])
    assert src["mpan_periods"].sum() == results["registered"].meters["energy"].size
    found = du.findings_table(truth)
    assert (found["found"] >= found["planted"]).all()
    annual = du.annual_hours_table(["_C", "_P"], 2026, ums.switch_regimes().loc[["821"]])
    checks = du.ums_checks(truth, results, annual)
    table = du.check_table(checks, du.constructed_period_kwh())
    assert table["ok"].all(), table[~table["ok"]]
    assert 50 in checks["periods_per_day"]


def test_dashboard_views_and_static_export(run, tmp_path):
    truth, results = run
    regimes = ums.switch_regimes().loc[["821", "826"]]
    dash = du.UmsDashboard(switching=du.switching_year(["_C", "_P"], list(regimes.index), 2026, regimes),
                           profiles=du.day_profiles(["_C", "_P"], 2026, regimes),
                           series=du.method_series(truth, results), errors=du.method_errors(truth, results),
                           location="_P", regime="826", method="pecu")
    for name in dash.VIEWS:
        assert dash.view(name) is not None
    with pytest.raises(ValueError, match="not one of"):
        dash.view("nothing")
    with pytest.raises(ValueError, match="regime='000' is not one of"):
        du.UmsDashboard(switching=dash.switching, profiles=dash.profiles, series=dash.series, errors=dash.errors,
                        regime="000")
    path = save_dashboard(dash, tmp_path / "dashboard.html", title="UMS")
    html = path.read_text()
    assert "Switching across the year" in html and "cdn.bokeh.org" not in html
