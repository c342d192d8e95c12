"""The load-shape explorer: widgets drive the selection; the saved page embeds the states offline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import panel as pn
import pytest

from tomlib import calendar as cal
from tomlib import cube
from tomlib.dashboards import save_dashboard
from tomlib.dashboards.load_shaping import LoadShapeExplorer, accuracy_bars, estimate_bars
from tomlib.services import load_shaping as lss

A, E9 = cube.QUALITY_CODES["A"], cube.QUALITY_CODES["E9"]


def _shapes(first="2026-03-29", last="2026-03-30"):
    times = cal.time_axis(pd.Timestamp(first), pd.Timestamp(last))
    rows = [("_C", True, "AI"), ("_C", True, "AI"), ("_C", False, "AI"), ("_C", True, "AE"), ("_C", True, "AI")]
    st = pd.DataFrame(rows, columns=["gsp_group", "domestic", "measurement_quantity"]).assign(
        market_segment="S", connection_type="W", supplier="ALFA", bm_unit="2__CALFA001", llfc="100",
        annual_consumption=3000.0)
    st.index = pd.Index([f"{10**12 + i:013d}" for i in range(len(rows))], name="mpan")
    rng = np.random.default_rng(0)
    q = np.full((len(rows), len(times)), A, dtype=np.uint8)
    q[4] = E9
    ds = cube.meter_cube(rng.random((len(rows), len(times))), times, st.index.to_numpy(), st, quality=q)
    return lss.load_shapes(ds, config={"min_population": 2})


def test_widgets_pick_the_category_and_day():
    ls = _shapes()
    truth = ls["load_shape"].rename("true_shape") * 1.1
    dash = LoadShapeExplorer(shapes=ls, truth=truth)
    assert dash.category() == "_C|W|S|D|AI"  # the category with the most MPANs first
    dash.date = "2026-03-29"
    df = dash.selected()
    assert df["MHHS load shape"].notna().sum() == 46 and df["true mean"].notna().sum() == 46
    assert df["legacy profile"].isna().all()  # none given
    assert (df["population"].dropna() == 2).all()
    dash.date = "2026-03-30"
    assert dash.selected()["MHHS load shape"].notna().sum() == 48
    dash.domestic = "F"
    assert dash.category() == "_C|W|S|N|AI" and (dash.selected()["default"].dropna() == 1).all()
    dash.measurement_quantity = "AE"
    assert dash.category() is None and dash.selected()["MHHS load shape"].isna().all()
    assert "No load-shape category" in dash.info().object


def test_bad_selection_is_refused():
    with pytest.raises(ValueError, match="date='2026-01-01' is not one of"):
        LoadShapeExplorer(shapes=_shapes(), date="2026-01-01")
    with pytest.raises(ValueError, match="shapes= is required"):
        LoadShapeExplorer()


def test_layout_uses_classic_widgets_and_views():
    dash = LoadShapeExplorer(shapes=_shapes())
    layout = dash.__panel__()
    widgets = [w for w in layout.select(pn.widgets.Widget)]
    assert {type(w).__name__ for w in widgets} == {"Select", "RadioButtonGroup"}
    assert len(widgets) == 5
    for name in LoadShapeExplorer.VIEWS:
        assert dash.view(name) is not None
    with pytest.raises(ValueError, match="is not one of"):
        dash.view("map")


def test_static_export_embeds_the_widget_states(tmp_path):
    ls = _shapes("2026-10-25", "2026-10-25")
    path = save_dashboard(LoadShapeExplorer(shapes=ls), tmp_path / "dashboard.html", title="ls test")
    text = path.read_text(encoding="utf-8")
    assert "cdn.bokeh.org" not in text and "ls test" in text[:3000]


def test_charts_build_from_the_accuracy_tables():
    acc = pd.DataFrame({"mae_pct": [1.0, 2.0], "legacy_mae_pct": [3.0, np.nan]},
                       index=pd.Index(["_C|W|S|D|AI", "_C|W|S|D|AE"], name="category"))
    bars = accuracy_bars(acc)
    assert len(bars.data) == 3  # the NaN legacy value (export) is left out
    est = pd.DataFrame({"group": ["all", "all", "domestic"], "method": ["a", "b", "a"], "mae_pct": [1, 2, 3]})
    assert len(estimate_bars(est.set_index(["group", "method"])).data) == 2
