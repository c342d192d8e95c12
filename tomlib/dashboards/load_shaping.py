"""The load-shape explorer: one category's MHHS load shape on one day, its population and default flag,
the legacy profile beside it and, in the simulated market, the truth.

Widgets (classic Panel widgets, so the dashboard exports with every state embedded,
:func:`tomlib.dashboards.save_dashboard`): GSP group, market segment, domestic premise, measurement
quantity (import/export) and settlement date. The x axis is the settlement period 1..50 of the day, so
a 46-period day ends at 46 and a 50-period day at 50. Periods whose value is a default (IF022
``defaultLoadShapeFlag`` other than ``A``) are marked.

Also: :func:`accuracy_bars` (load shape and legacy profile error per category) and
:func:`estimate_bars` (estimate error per method and run) for the notebook's charts. No file I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import holoviews as hv
import holoviews.plotting.bokeh
import numpy as np
import pandas as pd
import panel as pn
import param
import xarray as xr

from tomlib import calendar as cal
from tomlib import cube
from tomlib.services import legacy_profiling as legacy
from tomlib.services import load_shaping as lss
from tomlib.services import processing
from tomlib.services.load_shaping import AGGREGATED

__all__ = ["CURVE_COLORS", "LoadShapeExplorer", "ShapeRuns", "accuracy_bars", "estimate_bars", "shape_runs"]

#: Fixed colours, so every embedded widget state draws a series in the same colour.
CURVE_COLORS = {"MHHS load shape": "#1f77b4", "legacy profile": "#ff7f0e", "true mean": "#2ca02c",
                "default value": "#d62728"}
_PERIODS = np.arange(1, cube.GRID_PERIODS + 1)
_SEGMENTS = {"S": "S smart", "A": "A advanced", "U": "U unmetered"}
_DOMESTIC = {"T": "domestic", "F": "non-domestic"}
_MQ = {"AI": "import (AI)", "AE": "export (AE)"}


def _grid(da: xr.DataArray | None, cats: np.ndarray) -> np.ndarray | None:
    """(category, settlement_date, 50) values of a (category, time) array, NaN padding."""
    if da is None:
        return None
    da = da.sel(category=cats).drop_vars([c for c in da.coords if c not in ("category", "time")])
    return cube.to_grid(da.astype(float)).transpose("category", "settlement_date", "settlement_period").to_numpy()


class LoadShapeExplorer(pn.viewable.Viewer):
    """Pick a GSP group, segment, domestic flag, measurement quantity and date; see the load shape.

    Parameters
    ----------
    shapes : Dataset
        Of :func:`tomlib.services.load_shaping.load_shapes` (one run).
    legacy : DataArray, optional
        Legacy profile per category (:func:`tomlib.services.legacy_profiling.category_profiles`).
    truth : DataArray, optional
        True mean shape per category (:func:`tomlib.services.load_shaping.true_shapes`).
    width : int
        Plot width [px].
    """

    shapes = param.ClassSelector(class_=xr.Dataset, doc="Load shapes of one run")
    legacy = param.ClassSelector(class_=xr.DataArray, default=None, allow_None=True, doc="Legacy profiles")
    truth = param.ClassSelector(class_=xr.DataArray, default=None, allow_None=True, doc="True mean shapes")
    gsp_group = param.Selector(default=None, objects=[], doc="GSP group")
    segment = param.Selector(default=None, objects=[], doc="Market segment")
    domestic = param.Selector(default=None, objects=[], doc="Domestic premise indicator (T/F)")
    measurement_quantity = param.Selector(default=None, objects=[], doc="AI import / AE export")
    date = param.Selector(default=None, objects=[], doc="Settlement date (YYYY-MM-DD)")
    width = param.Integer(default=620, bounds=(300, 1600), doc="Plot width [px]")

    def __init__(self, **params):
        super().__init__(**params)
        if self.shapes is None:
            raise ValueError("LoadShapeExplorer: shapes= is required")
        ls = self.shapes["load_shape"]
        self._cats = ls["category"].to_numpy().astype(str)
        self._keys = {k: ls[k].to_numpy().astype(str) for k in
                      ("gsp_group", "market_segment", "domestic", "measurement_quantity")}
        self._grids = {
            "MHHS load shape": _grid(ls, self._cats),
            "legacy profile": _grid(self.legacy, self._cats),
            "true mean": _grid(self.truth, self._cats),
            "population": _grid(ls["population"], self._cats),
            "default": _grid(ls["default_shape"], self._cats),
        }
        dates = pd.DatetimeIndex(np.unique(cal.from_utc(ls["time"].to_numpy())[0].to_numpy()))
        self._dates = [f"{d:%Y-%m-%d}" for d in dates]
        self._n = dict(zip(self._dates, np.atleast_1d(cal.periods_in_day(dates.to_numpy())).astype(int)))
        self._flags = ls["default_flag"].to_numpy().astype(str)
        self._day = np.unique(cal.from_utc(ls["time"].to_numpy())[0].to_numpy(), return_inverse=True)[1]
        self._mpans = ls["category_mpans"].to_numpy() if "category_mpans" in ls.coords else None
        # start on the category with the most MPANs
        first = int(np.argmax(self._mpans)) if self._mpans is not None else 0
        for name, key in (("gsp_group", "gsp_group"), ("segment", "market_segment"), ("domestic", "domestic"),
                          ("measurement_quantity", "measurement_quantity")):
            values = sorted(set(self._keys[key]) - {AGGREGATED}) or [AGGREGATED]
            self.param[name].objects = values
            if getattr(self, name) is None:
                setattr(self, name, self._keys[key][first] if self._keys[key][first] in values else values[0])
            elif getattr(self, name) not in values:
                raise ValueError(f"LoadShapeExplorer: {name}={getattr(self, name)!r} is not one of {values}")
        self.param.date.objects = self._dates
        if self.date is None:
            self.date = self._dates[0]
        elif self.date not in self._dates:
            raise ValueError(f"LoadShapeExplorer: date={self.date!r} is not one of {self._dates}")

    # -- selection ----------------------------------------------------------------------------

    def category(self) -> str | None:
        """Label of the selected category (None when the selection has none)."""
        want = {"gsp_group": self.gsp_group, "market_segment": self.segment, "domestic": self.domestic,
                "measurement_quantity": self.measurement_quantity}
        match = np.ones(self._cats.size, dtype=bool)
        for key, value in want.items():  # four keys
            match &= (self._keys[key] == value) | (self._keys[key] == AGGREGATED)
        return str(self._cats[np.flatnonzero(match)[0]]) if match.any() else None

    def selected(self) -> pd.DataFrame:
        """Values of the selection on the chosen day, index settlement period 1..50 (NaN beyond the day)."""
        cat = self.category()
        d = self._dates.index(self.date)
        out = pd.DataFrame(index=pd.Index(_PERIODS, name="settlement_period"))
        row = int(np.flatnonzero(self._cats == cat)[0]) if cat is not None else None
        for name, grid in self._grids.items():  # five series
            out[name] = grid[row, d] if (grid is not None and row is not None) else np.nan
        return out

    # -- views -------------------------------------------------------------------------------

    def _title(self) -> str:
        cat = self.category()
        return f"{cat or 'no such category'} — {self.date} ({self._n[self.date]} periods)"

    @param.depends("gsp_group", "segment", "domestic", "measurement_quantity", "date")
    def shape_plot(self) -> hv.Overlay:
        """Load shape, legacy profile and true mean [kWh per MPAN per period]; defaults marked."""
        df = self.selected()
        curves = [hv.Curve((_PERIODS, df[name].to_numpy()), "settlement period", "kWh", label=name).opts(
            color=CURVE_COLORS[name], line_width=2 if name == "MHHS load shape" else 1.5,
            line_dash="dashed" if name == "legacy profile" else "solid", framewise=True)
            for name in ("MHHS load shape", "legacy profile", "true mean")]
        marks = np.where(df["default"].to_numpy() > 0, df["MHHS load shape"].to_numpy(), np.nan)
        dots = hv.Scatter((_PERIODS, marks), "settlement period", "kWh", label="default value").opts(
            color=CURVE_COLORS["default value"], size=6, framewise=True)
        return hv.Overlay([*curves, dots]).opts(
            title=self._title(), width=self.width, height=300, xlabel="settlement period",
            ylabel="energy [kWh per MPAN per period]", legend_position="bottom", legend_cols=4,
            show_grid=True, responsive=False, xlim=(0.5, 50.5))

    @param.depends("gsp_group", "segment", "domestic", "measurement_quantity", "date")
    def population_plot(self) -> hv.Curve:
        """MPANs of the category with an actual value, per period."""
        df = self.selected()
        return hv.Curve((_PERIODS, df["population"].to_numpy()), "settlement period", "MPANs").opts(
            title="population: MPANs with actual data", width=self.width, height=160, color="#555555",
            framewise=True, show_grid=True, responsive=False, xlim=(0.5, 50.5), interpolation="steps-mid")

    @param.depends("gsp_group", "segment", "domestic", "measurement_quantity", "date")
    def info(self) -> pn.pane.Markdown:
        """Category, its MPANs, the day's population range, default flags and day totals."""
        cat = self.category()
        if cat is None:
            return pn.pane.Markdown("No load-shape category for this selection.", width=self.width, height=90)
        row = int(np.flatnonzero(self._cats == cat)[0])
        d = self._dates.index(self.date)
        flags = pd.Series(self._flags[row, self._day == d]).value_counts().to_dict()
        df = self.selected()
        pop = df["population"].dropna()
        totals = ", ".join(f"{name} {df[name].sum():.3f}" for name in ("MHHS load shape", "legacy profile",
                                                                        "true mean") if df[name].notna().any())
        mpans = f"{int(self._mpans[row])} MPANs; " if self._mpans is not None else ""
        text = (f"**{cat}** — {mpans}population {int(pop.min())}–{int(pop.max())} on {self.date}; "
                f"default flags (DI-154) {', '.join(f'{k}: {v}' for k, v in sorted(flags.items()))}.  \n"
                f"Day totals [kWh per MPAN]: {totals}.")
        return pn.pane.Markdown(text, width=self.width, height=90)

    VIEWS = ("shape", "population", "info")

    def view(self, name: str) -> pn.viewable.Viewable:
        """One static view of the current selection (``shape``, ``population`` or ``info``)."""
        views = {
            "shape": lambda: pn.pane.HoloViews(self.shape_plot().opts(toolbar=None), width=self.width),
            "population": lambda: pn.pane.HoloViews(self.population_plot().opts(toolbar=None), width=self.width),
            "info": self.info,
        }
        if name not in views:
            raise ValueError(f"LoadShapeExplorer.view: {name!r} is not one of {list(views)}")
        return views[name]()

    def __panel__(self) -> pn.Column:
        widgets = pn.Column(
            pn.Row(pn.widgets.Select.from_param(self.param.gsp_group, name="GSP group", width=120),
                   pn.widgets.Select.from_param(self.param.date, name="Settlement date", width=150)),
            pn.Row(pn.widgets.RadioButtonGroup.from_param(self.param.segment, name="Segment", width=120),
                   pn.widgets.RadioButtonGroup.from_param(self.param.domestic, name="Domestic (T/F)", width=100),
                   pn.widgets.RadioButtonGroup.from_param(self.param.measurement_quantity, name="Import/export",
                                                          width=120)),
        )
        run = self.shapes.attrs.get("run", "")
        return pn.Column(
            pn.pane.Markdown(f"### Load shapes, run {run}: {self.shapes.attrs.get('categories', '')}",
                             width=self.width),
            widgets,
            pn.pane.HoloViews(hv.DynamicMap(self.shape_plot), width=self.width),
            pn.pane.HoloViews(hv.DynamicMap(self.population_plot), width=self.width),
            pn.panel(self.info, width=self.width, height=90),
        )


# ------------------------------------------------------------------------------------------ inputs


@dataclasses.dataclass(frozen=True)
class ShapeRuns:
    """The smart segment settled run by run, and what the Load Shaping Service makes of each run.

    Attributes
    ----------
    settled : dict
        Run -> :class:`tomlib.services.processing.SegmentResult` of the smart segment.
    shapes, totals : dict
        Run -> load shapes (IF022) and their totals (IF023) [kWh per MPAN].
    truth : dict
        Run -> true mean shape per category [kWh per MPAN per period].
    profiles : dict
        Run -> legacy profile per category [kWh per MPAN per period].
    config : LoadShapeConfig
        The Load Shaping Service's knobs the shapes were made with.
    """

    settled: dict[str, Any]
    shapes: dict[str, xr.Dataset]
    totals: dict[str, xr.Dataset]
    truth: dict[str, xr.DataArray]
    profiles: dict[str, xr.DataArray]
    config: Any

    def explorer(self, run: str, **params: Any) -> LoadShapeExplorer:
        """The :class:`LoadShapeExplorer` of one run."""
        return LoadShapeExplorer(shapes=self.shapes[run], legacy=self.profiles[run], truth=self.truth[run],
                                 **params)


def shape_runs(market: Any, scenario: Any, runs: Sequence[str], config: Any = None,
               processing_config: Any = None) -> ShapeRuns:
    """Settle the smart segment for each run and make its load shapes, totals, truth and legacy profiles.

    What the ``load_shaping`` notebook reports and ``tom serve`` shows, from one call.

    Parameters
    ----------
    market : tomlib.market.Market
    scenario : tomlib.scenario.Scenario
        Its service sections configure processing; its ``timetable`` gives each run's as-of instants.
    runs : sequence of str
        Settlement runs, e.g. ``["SF", "RF"]`` (duplicates are settled once).
    config : LoadShapeConfig or dict, optional
        The Load Shaping Service's knobs; default :class:`~tomlib.services.load_shaping.LoadShapeConfig`.
    processing_config : ProcessingConfig, optional
        Default ``ProcessingConfig.from_scenario(scenario)``.

    Returns
    -------
    ShapeRuns
    """
    cfg = lss.LoadShapeConfig.coerce(config)
    pcfg = processing_config or processing.ProcessingConfig.from_scenario(scenario)
    order = list(dict.fromkeys(runs))
    settled = {r: processing.settle_run(market, r, config=pcfg, preset=scenario.timetable) for r in order}
    shapes = {r: lss.load_shapes(settled[r], run=r, config=cfg) for r in order}
    return ShapeRuns(
        settled=settled, shapes=shapes,
        totals={r: lss.load_shape_totals(shapes[r], cfg) for r in order},
        truth={r: lss.true_shapes(market, shapes[r], settled[r], cfg) for r in order},
        profiles={r: legacy.category_profiles(shapes[r], settled[r], cfg) for r in order},
        config=cfg)


# ------------------------------------------------------------------------------------------ charts


def accuracy_bars(table: pd.DataFrame, width: int = 620) -> hv.Bars:
    """Error of each category's load shape (and legacy profile) against its true mean shape [%].

    Parameters
    ----------
    table : DataFrame
        Rows per category (and optionally ``run``) with ``mae_pct`` and optionally ``legacy_mae_pct``
        (:func:`tomlib.services.load_shaping.shape_accuracy`).
    """
    df = table.reset_index()
    if "run" not in df:
        df["run"] = ""
    cols = {"mae_pct": "MHHS load shape", "legacy_mae_pct": "legacy profile"}
    long = df.melt(id_vars=["category", "run"], value_vars=[c for c in cols if c in df],
                   var_name="method", value_name="error").dropna(subset=["error"])
    long["method"] = long["method"].map(cols) + np.where(long["run"] != "", " " + long["run"].astype(str), "")
    return hv.Bars(long, ["category", "method"], "error").opts(
        width=width, height=320, xrotation=60, ylabel="mean absolute error [% of true energy]",
        title="Load shape vs true mean shape, per category", tools=["hover"], show_legend=True,
        multi_level=False, responsive=False, legend_position="top_left", cmap=["#1f77b4", "#ff7f0e", "#aec7e8",
                                                                               "#ffbb78", "#17becf", "#d62728"])


def estimate_bars(table: pd.DataFrame, width: int = 620, group: str = "all") -> hv.Bars:
    """Error of estimated MPAN-periods per method (and run) [%] (:func:`tomlib.services.legacy_profiling
    .estimate_accuracy`, rows (group, method) with a ``run`` column or index level)."""
    df = table.reset_index()
    df = df[df["group"] == group]
    if "run" not in df:
        df["run"] = ""
    return hv.Bars(df, ["run", "method"], "mae_pct").opts(
        # one method a row: side by side their names are wider than an A4 page. (For a bar chart's
        # legend HoloViews 1.2x sets Bokeh's *nrows* from legend_cols.)
        width=width, height=480, ylabel="mean absolute error [% of true energy]", xlabel="settlement run",
        title=f"Estimates against the truth ({group} MPANs)", tools=["hover"], responsive=False,
        multi_level=False, show_legend=True, legend_position="bottom", legend_cols=5,
        cmap=["#7f7f7f", "#1f77b4", "#ff7f0e", "#aec7e8", "#ffbb78"])
