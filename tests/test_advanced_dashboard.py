"""The advanced services dashboard: its numbers (spans, site series, showcase sites, error by run,
checks, records), its views, and a static export with every widget state."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import panel as pn
import pytest

from tomlib.dashboards.advanced import (
    AdvancedDashboard,
    advanced_checks,
    advanced_records,
    error_by_run,
    run_as_of,
    service_tables,
    showcase_sites,
    site_series,
    spans,
)
from tomlib.services import advanced as ad


@pytest.fixture(scope="module")
def world():
    market = ad.synthetic_market(12, "2026-03-16", 21, seed=5)
    cfg = ad.AdvancedConfig(
        ct_fault=True,
        ct_fault_from="2026-03-23",
        ct_fault_corrected_after_days=14,
        phase_failure_rate=0.3,
        gap_rate=0.03,
    )
    results = {r: ad.settle_run(market, r, config=cfg) for r in ("II", "R1")}
    return market, ad.advanced_inputs(market, cfg), results


def test_spans():
    t = pd.date_range("2026-01-01", periods=6, freq="30min").to_numpy()
    got = spans([True, True, False, True, False, True], t)
    assert got["periods"].tolist() == [2, 1, 1]
    assert got["start"].tolist() == [t[0], t[3], t[5]]
    assert got["end"].tolist() == [t[2], t[4], t[5] + np.timedelta64(30, "m")]
    assert spans([False] * 6, t).empty


def test_site_series_and_error_by_run(world):
    market, inputs, results = world
    ct = inputs.metering.faults.loc[inputs.metering.faults["fault"] == "wrong_ct_ratio", "mpan"].iloc[0]
    df = site_series(results["II"], market, ct)
    assert list(df.columns) == ["truth", "settled", "main", "check", "quality", "main_reason", "flag_bits"]
    assert len(df) == results["II"].meters.sizes["time"]
    err = error_by_run(results, market, [ct])
    seg = err.xs("segment", level="what")
    site = err.xs(ct, level="what")
    # settled, then reconciled (what is left is the site's two days of a lost phase, kept as flagged)
    assert (
        site.loc["II", "error_pct"] < -10 and site.loc["R1", "error_pct"] - site.loc["II", "error_pct"] > 10
    )
    assert abs(seg.loc["R1", "error_pct"]) < abs(seg.loc["II", "error_pct"])
    assert run_as_of(results["R1"]) > run_as_of(results["II"])


def test_showcase_tables_checks_and_records(world):
    market, inputs, results = world
    sites = showcase_sites(inputs, results, n=5)
    ct = inputs.metering.faults.loc[inputs.metering.faults["fault"] == "wrong_ct_ratio", "mpan"].iloc[0]
    assert sites[0] == ct and len(sites) == 5 == len(set(sites))
    tables = service_tables(inputs)
    assert tables["sites"]["sites"].sum() == 12 and len(tables["mtd_versions"]) == 1
    assert tables["retrieval"]["site_days"].sum() == 12 * 21
    checks = advanced_checks(results, market)
    assert checks["ok"].all(), checks[~checks["ok"]]
    rec = advanced_records(results, market, inputs)
    json.dumps(rec)  # JSON-ready
    assert rec["ct_fault_mpan"] == ct and rec["periods_per_day"]["2026-03-29"] == 46
    assert rec["ct_site_error_pct_by_run"]["II"] < -10


def test_dashboard_views_and_widget_states(world):
    """Every view renders, and switching site and run updates the live layout (the static export,
    which replays every widget state, runs in the notebook test)."""
    market, inputs, results = world
    dash = AdvancedDashboard(
        results=results, market=market, inputs=inputs, mpans=showcase_sites(inputs, results, 3)
    )
    for name in dash.VIEWS:
        assert dash.view(name) is not None
    with pytest.raises(ValueError, match="not one of"):
        dash.view("grid")
    pn.panel(dash).get_root()
    for mpan in dash.param.mpan.objects[1:]:
        dash.mpan = mpan
        dash.run = "R1"
    assert dash.error_view().object.index.get_level_values("what").tolist().count(mpan) == 2
    with pytest.raises(ValueError, match="not advanced sites"):
        AdvancedDashboard(results=results, market=market, inputs=inputs, mpans=["1234567890123"])
