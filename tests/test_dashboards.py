"""The market dashboard: its numbers on a hand-made market, its widgets, and its static export.

The toy market is built by hand (not by the generator) so every expected number is known exactly:
six MPANs with constant energy per period, two LLFCs with constant LLFs, and an unaccounted
energy of 1 % of the import at the GSP. Its time axis spans the spring clock change (46 periods)
and, in a second variant, the autumn one (50 periods).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import panel as pn
import pytest
import xarray as xr
from bokeh.models import Plot
from bokeh.resources import INLINE

from tomlib import calendar as cal
from tomlib import cube, mpan
from tomlib.dashboards import save_dashboard
from tomlib.dashboards.market import (
    ALL,
    MarketDashboard,
    check_table,
    day_boundaries,
    market_checks,
    metered_energy,
    mpan_counts,
    series_energy,
    take_identity_residual,
)
from tomlib.market import Market

#            gsp,  seg, mq,   llfc,  kWh per period
TOY = [
    ("_C", "S", "AI", "L01", 1.0),
    ("_C", "S", "AI", "L01", 2.0),
    ("_C", "A", "AI", "L02", 10.0),
    ("_C", "S", "AE", "L01", 0.5),
    ("_P", "S", "AI", "L01", 3.0),
    ("_P", "A", "AI", "L02", 20.0),
]
LLF = {"L01": 1.08, "L02": 1.02}
UNACCOUNTED = 0.01


def toy_market(first: str = "2026-03-28", last: str = "2026-03-30") -> Market:
    """The hand-made market of the module docstring on settlement days first..last."""
    times = cal.time_axis(pd.Timestamp(first), pd.Timestamp(last))
    gsp, seg, mq, llfc, kwh = map(np.array, zip(*TOY))
    cores = mpan.generate_cores(gsp, np.random.default_rng(0))
    standing = pd.DataFrame({
        "gsp_group": gsp, "market_segment": seg, "connection_type": np.where(seg == "A", "L", "W"),
        "domestic": seg == "S", "supplier": "ALFA", "bm_unit": "2__AALFA000", "llfc": llfc,
        "measurement_quantity": mq, "annual_consumption": kwh.astype(float) * 17520,
    }, index=pd.Index(cores, name="mpan"))
    energy = np.repeat(kwh.astype(float)[:, None], len(times), axis=1)
    meters = cube.meter_cube(energy, times, cores, standing)
    llfcs = sorted(LLF)
    llf = xr.DataArray(np.repeat([[LLF[k]] for k in llfcs], len(times), axis=1), dims=("llfc", "time"),
                       coords={"llfc": llfcs, "time": times})
    sign = np.where(mq == "AE", -1.0, 1.0)
    at_gsp = kwh.astype(float) * np.array([LLF[k] for k in llfc]) * sign
    groups = ["_C", "_P"]
    imports = np.array([at_gsp[(gsp == g) & (sign > 0)].sum() for g in groups])
    net = np.array([at_gsp[gsp == g].sum() for g in groups])
    ue = xr.DataArray(np.repeat((UNACCOUNTED * imports)[:, None], len(times), axis=1),
                      dims=("gsp_group", "time"), coords={"gsp_group": groups, "time": times})
    take = ue + xr.DataArray(np.repeat(net[:, None], len(times), axis=1), dims=("gsp_group", "time"),
                             coords={"gsp_group": groups, "time": times})
    return Market(scenario_name="toy", seed=0, meters=meters, line_loss_factors=llf,
                  unaccounted_energy=ue, gsp_group_take=take)


@pytest.fixture(scope="module")
def market() -> Market:
    return toy_market()


def test_mpan_counts_by_segment_and_gsp_group(market):
    table = mpan_counts(market.meters)
    assert table.loc["S smart domestic AI", "_C"] == 2
    assert table.loc["S smart domestic AE", "_C"] == 1
    assert table.loc["A advanced non-domestic AI", "_P"] == 1
    assert table.loc["S smart domestic AE", "_P"] == 0
    assert table.loc["total", "total"] == len(TOY)
    assert list(table.columns) == ["_C", "_P", "total"]


def test_series_energy_sums_each_segment_and_export(market):
    da = series_energy(market.meters)
    assert list(da["series"].values) == ["S", "A", "export"]
    first = da.isel(time=0)
    assert first.sel(gsp_group="_C", series="S") == pytest.approx(3.0)
    assert first.sel(gsp_group="_C", series="export") == pytest.approx(0.5)
    assert first.sel(gsp_group="_P", series="A") == pytest.approx(20.0)
    assert first.sel(gsp_group="_P", series="export") == 0.0
    assert "settlement_period" in da.coords


def test_metered_energy_with_and_without_losses(market):
    at_meter = metered_energy(market, with_losses=False).isel(time=0)
    assert at_meter.sel(gsp_group="_C") == pytest.approx(1 + 2 + 10 - 0.5)
    at_gsp = metered_energy(market).isel(time=0)
    assert at_gsp.sel(gsp_group="_P") == pytest.approx(3 * 1.08 + 20 * 1.02)


def test_take_identity_holds_and_a_broken_take_is_caught(market):
    assert float(np.abs(take_identity_residual(market)).max()) < 1e-9
    broken = Market(**{**market.__dict__, "gsp_group_take": market.gsp_group_take + 0.25})
    assert float(take_identity_residual(broken).max()) == pytest.approx(0.25)


@pytest.mark.parametrize(("first", "last", "day", "n"), [
    ("2026-03-28", "2026-03-30", "2026-03-29", 46),
    ("2026-10-24", "2026-10-26", "2026-10-25", 50),
])
def test_day_boundaries_follow_local_midnight(first, last, day, n):
    times = cal.time_axis(pd.Timestamp(first), pd.Timestamp(last))
    days = day_boundaries(times)
    assert days.loc[day, "n_periods"] == n == days.loc[day, "expected_periods"]
    assert (days.loc[day, "end"] - days.loc[day, "start"]) == pd.Timedelta(minutes=30 * n)
    # boundaries touch: each day starts where the previous one ended
    assert (days["start"].iloc[1:].to_numpy() == days["end"].iloc[:-1].to_numpy()).all()


def test_market_checks(market):
    checks = market_checks(market)
    assert checks["n_mpans"] == 6 and checks["n_export_mpans"] == 1
    assert checks["mpans_by_segment"] == {"A": 2, "S": 3}
    assert checks["periods_per_day"] == {"2026-03-28": 48, "2026-03-29": 46, "2026-03-30": 48}
    assert checks["periods_per_day"] == checks["periods_per_day_expected"]
    assert checks["n_periods"] == 48 + 46 + 48
    assert checks["n_nan_energy"] == 0
    assert checks["import_energy_kwh"] == pytest.approx(36.0 * checks["n_periods"])
    assert checks["take_identity_max_abs_residual_kwh"] < 1e-9


def test_checks_count_nan_energy(market):
    meters = market.meters.copy(deep=True)
    meters["energy"][0, 5] = np.nan
    checks = market_checks(Market(**{**market.__dict__, "meters": meters}))
    assert checks["n_nan_energy"] == 1
    table = check_table(checks).set_index("check")
    assert not table.loc["energy values that are NaN", "ok"]


def test_check_table_passes_on_a_consistent_market_and_names_a_broken_take(market):
    table = check_table(market_checks(market), expected_import_mpans=5)
    assert table["ok"].all(), table
    assert "48, 46, 48" in table["value"].tolist()
    broken = Market(**{**market.__dict__, "gsp_group_take": market.gsp_group_take * 1.001})
    bad = check_table(market_checks(broken), expected_import_mpans=6)
    assert bad.loc[~bad["ok"], "check"].str.contains("take identity|import MPANs").sum() == 2


def test_widgets_drive_the_selection(market):
    dash = MarketDashboard(market=market)
    assert dash.param.gsp_group.objects == [ALL, "_C", "_P"]
    assert dash.param.segment.objects == [ALL, "S", "A"]
    assert float(dash.selected_series().sel(series="S").isel(time=0)) == pytest.approx(6.0)
    dash.gsp_group, dash.segment = "_P", "A"
    sel = dash.selected_series()
    assert list(sel["series"].values) == ["A"]
    assert float(sel.isel(time=0, series=0)) == pytest.approx(20.0)
    assert dash.selected_take()["GSP group take"].iloc[0] == pytest.approx(
        (3 * 1.08 + 20 * 1.02) * (1 + UNACCOUNTED))


def test_bad_selection_is_refused(market):
    with pytest.raises(ValueError, match="gsp_group"):
        MarketDashboard(market=market, gsp_group="_A")


@pytest.mark.parametrize(("first", "last", "day", "n"), [
    ("2026-03-28", "2026-03-30", "2026-03-29", 46),
    ("2026-10-24", "2026-10-26", "2026-10-25", 50),
])
def test_heatmap_grid_pads_exactly_the_missing_periods(first, last, day, n):
    dash = MarketDashboard(market=toy_market(first, last))
    grid = dash.selected_grid()
    row = grid.sel(settlement_date=day)
    assert int(row.notnull().sum()) == n
    assert int(grid.sel(settlement_date=first).notnull().sum()) == 48
    data = dash.heatmap().data
    cells = data[data["settlement_date"].str.contains(f"({n})", regex=False)]
    assert cells["kWh"].notna().sum() == n


def test_panel_layout_has_classic_widgets_and_fixed_width_plots(market):
    layout = pn.panel(MarketDashboard(market=market))
    assert isinstance(layout, pn.Column)
    widgets = layout.select(pn.widgets.Widget)
    assert {type(w).__name__ for w in widgets} >= {"Select", "RadioButtonGroup"}
    model = layout.get_root()
    plots = [m for m in model.references() if isinstance(m, Plot)]
    assert len(plots) == 3
    assert all(p.sizing_mode in (None, "fixed") and p.width <= 700 for p in plots)


def test_static_export_embeds_every_widget_state_inline(market, tmp_path):
    path = save_dashboard(MarketDashboard(market=market), tmp_path / "dashboard.html")
    text = path.read_text(encoding="utf-8")
    assert path.stat().st_size > 1_000_000  # BokehJS is inline
    assert not re.search(r"<(script|link)[^>]+(src|href)=[\"']https?:", text)
    # Panel 1.9 serialises widget stylesheets as CDN URLs even with INLINE; save_dashboard inlines them
    assert not re.search(r"ImportedStyleSheet[^}]*https?:", text)
    # the widget states (3 GSP choices x 3 segments) are embedded as a State model with a map of diffs
    assert "panel.models.state.State" in text
    assert re.search(r'\["_P",\{"type":"map"', text)
    assert not list(tmp_path.glob(".*tmp*"))  # atomic: no temporary left behind


def test_inline_resources_is_what_save_uses():
    assert INLINE.mode == "inline"


def test_serve_all_serves_the_market_dashboard(market):
    import socket
    import time
    import urllib.request

    from tomlib.dashboards import serve_all

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = serve_all(market, port=port, threaded=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/market", timeout=10) as response:
                    assert response.status == 200
                    assert b"bokeh" in response.read().lower()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        server.stop()


# ------------------------------------------------------------------------------------------------
# the scenario form: a valid scenario file without writing YAML


def _tiny_scenario():
    from pathlib import Path

    from tomlib.scenario import load_scenario

    return load_scenario(Path(__file__).resolve().parents[1] / "datasets" / "scenarios" / "tiny.yaml")


def test_scenario_form_writes_only_the_changed_knobs_and_it_loads_back(tmp_path):
    from tomlib.compare import settings_diff
    from tomlib.dashboards import scenario_writer
    from tomlib.dashboards.scenario_form import MAIN_KNOBS, ScenarioForm
    from tomlib.scenario import load_scenario

    base = _tiny_scenario()
    form = ScenarioForm(base, write=scenario_writer(tmp_path))
    assert {k for k, _ in MAIN_KNOBS} | {"mpans._C", "mpans._P"} == set(form.fields)
    assert form.overrides() == {}  # the fields hold the base values
    form.fields["name"].value = "tiny_dcc995"
    form.fields["retrieval.success_rate"].value = 0.995
    form.fields["mpans._P"].value = 30
    path = form.write()
    assert path == tmp_path / "tiny_dcc995.yaml" and "Written" in form.message.object
    back = load_scenario(path)
    assert back.retrieval.success_rate == 0.995 and back.mpans["_P"] == 30
    assert list(settings_diff(base, back).index) == ["mpans._P", "name", "retrieval.success_rate"]
    assert form.write() is None and "exists" in form.message.object  # never replaces a file
    assert load_scenario(path).digest() == back.digest()


def test_scenario_form_names_an_invalid_setting_and_writes_nothing(tmp_path):
    from tomlib.dashboards import scenario_writer
    from tomlib.dashboards.scenario_form import ScenarioForm

    form = ScenarioForm(_tiny_scenario(), write=scenario_writer(tmp_path))
    form.fields["name"].value = "bad_mix"
    form.fields["segments.advanced"].value = 0.5  # the shares no longer sum to 1
    assert form.write() is None
    assert "Not valid" in form.message.object and "segments" in form.message.object
    form.fields["segments.advanced"].value = 0.05
    form.fields["retrieval.success_rate"].value = 1.5
    assert form.write() is None and "success_rate" in form.message.object
    assert list(tmp_path.iterdir()) == []
    assert ScenarioForm(_tiny_scenario()).write() is None  # no folder given: says so, writes nothing
