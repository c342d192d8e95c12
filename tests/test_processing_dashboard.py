"""The smart data services dashboard (tomlib.dashboards.smart): its numbers and that it builds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import panel as pn
import pytest

from tomlib import cube
from tomlib import market as market_mod
from tomlib import scenario as scenario_mod
from tomlib.dashboards import smart
from tomlib.services import processing as P
from tomlib.services.retrieval import RetrievalConfig


@pytest.fixture(scope="module")
def runs():
    market = market_mod.generate(scenario_mod.load_scenario("tiny"))
    cfg = P.ProcessingConfig(retrieval=RetrievalConfig(success_rate=0.6))
    return market, {r: P.settle_run(market, r, config=cfg) for r in ("II", "R1")}


def test_quality_mix_rows_sum_to_one(runs):
    _, results = runs
    for by in ("energy", "periods"):
        mix = smart.quality_mix(results, by)
        assert list(mix.index) == ["II", "R1"] and list(mix.columns) == list(P.METHODS)
        assert mix.sum(axis=1).to_numpy() == pytest.approx(1.0)
    periods = smart.quality_mix(results, "periods")
    assert periods.loc["R1", "A"] >= periods.loc["II", "A"]
    with pytest.raises(ValueError):
        smart.quality_mix(results, "kwh")


def test_mpan_series_and_showcase(runs):
    market, results = runs
    picked = smart.showcase_mpans(results["II"])
    assert len(picked) == len(set(picked)) and 1 <= len(picked) <= 8
    q = results["II"].meters["quality"].sel(mpan=picked[0]).to_numpy()
    assert (q != cube.QUALITY_CODES["A"]).any()  # estimates first
    df = smart.mpan_series(results["II"], market, picked[0])
    assert len(df) == market.meters.sizes["time"]
    assert np.isfinite(df["settled"]).all()
    assert set(df["quality"]) <= set(P.METHODS)


def test_checks_and_error_table(runs):
    market, results = runs
    checked = smart.smart_checks(results, market)
    assert checked["ok"].all(), checked[~checked["ok"]]
    errors = smart.error_table(results, market)
    assert set(errors["run"]) == {"II", "R1"} and (errors["mpan_periods"] > 0).all()


def test_dashboard_builds_and_rejects_unknown_mpans(runs):
    market, results = runs
    dash = smart.SmartDashboard(results=results, market=market, run="II")
    assert dash.run == "II" and dash.mpan == smart.showcase_mpans(results["R1"])[0]
    layout = dash.__panel__()
    assert isinstance(layout, pn.Column)
    for name in smart.SmartDashboard.VIEWS:
        assert dash.view(name) is not None
    with pytest.raises(ValueError, match="not smart-segment MPANs"):
        smart.SmartDashboard(results=results, market=market, mpans=["0000000000000"])


def test_service_tables(runs):
    market, _ = runs
    tables = smart.service_tables(P.smart_inputs(market))
    assert {"meters", "registers", "retrieval", "hh_faults", "reads", "read_faults"} == set(tables)
    assert tables["meters"]["meters"].sum() >= int((market.meters["market_segment"] == "S").sum())
    assert isinstance(tables["retrieval"], pd.DataFrame)
