"""The settlement runs dashboard: how volumes move from run to run and converge to the truth.

Built on a reconciliation dataset (:func:`tomlib.settlement.reconcile`). Two classic Panel widgets
(grouping: supplier / BM unit / GSP group, and GSP group) drive the views, so the dashboard exports
to a static HTML file with every widget state embedded (:func:`tomlib.dashboards.save_dashboard`):

- convergence: the total |allocated - true| volume of each run, before and after the GSP group
  correction, and the share of actual MPAN-periods;
- error by key and run: allocated - true volume of each supplier (BM unit, GSP group) per run —
  who carries the unaccounted energy, and how that changes as data arrive;
- run-to-run deltas: the reconciliation volume each key receives between consecutive runs;
- the GCF over time of every run, for one GSP group (import).

Tables come from :func:`tomlib.settlement.convergence`, :func:`tomlib.settlement.who_pays` and
:func:`tomlib.settlement.run_deltas`; no file I/O here.
"""

from __future__ import annotations

import holoviews as hv
import holoviews.plotting.bokeh
import numpy as np
import pandas as pd
import panel as pn
import param
import xarray as xr

from tomlib import settlement

__all__ = ["ALL", "BY", "SettlementRunsDashboard", "error_by_run"]

ALL = "all"
BY = ("supplier", "bm_unit", "gsp_group")
RUN_COLORS = {"II": "#9ecae1", "SF": "#6baed6", "R1": "#4292c6", "R2": "#2171b5", "R3": "#08519c",
              "RF": "#08306b", "DF": "#000000"}


def _subset(recon: xr.Dataset, gsp_group: str) -> xr.Dataset:
    if gsp_group == ALL:
        return recon
    keep = np.flatnonzero(recon["bm_unit_gsp_group"].values.astype(str) == gsp_group)
    return recon.isel(bm_unit_id=keep)


def error_by_run(recon: xr.Dataset, by: str = "supplier", gsp_group: str = ALL) -> pd.DataFrame:
    """Allocated - true volume per key and run, summed over the periods [kWh].

    Returns
    -------
    DataFrame
        Index run (timetable order), one column per key.
    """
    table = settlement.who_pays(_subset(recon, gsp_group), by=by)["error"].unstack(by)
    table.columns = [str(c) for c in table.columns]
    return table.reindex([str(r) for r in recon["run"].values])


class SettlementRunsDashboard(pn.viewable.Viewer):
    """Run-by-run convergence, errors by supplier/BM unit/GSP group, deltas and GCFs.

    Parameters
    ----------
    recon : Dataset
        Runs stacked by :func:`tomlib.settlement.reconcile`.
    by : {"supplier", "bm_unit", "gsp_group"}
        Grouping of the error and delta views.
    gsp_group : str
        ``"all"`` or a GSP group id (the GCF view shows the first group for ``"all"``).
    width : int
        Plot width [px].
    """

    recon = param.ClassSelector(class_=xr.Dataset, doc="Reconciliation dataset")
    by = param.Selector(default="supplier", objects=list(BY), doc="Grouping of errors and deltas")
    gsp_group = param.Selector(default=ALL, objects=[ALL], doc="GSP group shown ('all' sums them)")
    width = param.Integer(default=620, bounds=(300, 1600), doc="Plot width [px]")

    def __init__(self, **params):
        # the GSP group options come from the data: check the wanted value once they are known
        wanted = params.pop("gsp_group", ALL)
        super().__init__(**params)
        if self.recon is None:
            raise ValueError("SettlementRunsDashboard: recon= is required")
        self.param.gsp_group.objects = [ALL, *[str(g) for g in self.recon["gsp_group_id"].values]]
        if wanted not in self.param.gsp_group.objects:
            raise ValueError(f"SettlementRunsDashboard: gsp_group={wanted!r} is not one of "
                             f"{self.param.gsp_group.objects}")
        self.gsp_group = wanted
        self._runs = [str(r) for r in self.recon["run"].values]

    def convergence_plot(self) -> hv.Bars:
        """Sum of |allocated - true| per run, before and after the correction (static)."""
        conv = settlement.convergence(self.recon)
        # stage labels sort alphabetically in display order: Bokeh orders the factors, the colours follow rows
        stages = (("before", "abs_error_uncorrected"), ("with", "abs_error"))
        rows = [(run, stage, float(conv.loc[run, col])) for run in self._runs for stage, col in stages]
        data = pd.DataFrame(rows, columns=["run", "stage", "kWh"])
        return hv.Bars(data, ["run", "stage"], "kWh").opts(
            title="Convergence: Σ |settled − true| over BM units and periods", width=self.width, height=260,
            ylabel="Σ |settled − true| [kWh]", yformatter="%.0f", show_grid=True, responsive=False, tools=["hover"],
            multi_level=True, color=hv.dim("stage").categorize({"before": "#bbbbbb", "with": "#1f77b4"}),
            xlabel="run: before and with the GSP group correction")

    @param.depends("by", "gsp_group")
    def error_plot(self) -> hv.Overlay:
        """Allocated - true volume per key across runs (lines over the runs)."""
        table = error_by_run(self.recon, self.by, self.gsp_group)
        x = np.arange(len(self._runs))
        curves = [hv.Curve((x, table[c].to_numpy()), "run", "kWh", label=c).opts(line_width=2)
                  * hv.Scatter((x, table[c].to_numpy()), "run", "kWh", label=c).opts(size=6)
                  for c in table.columns]
        zero = hv.HLine(0).opts(color="grey", line_width=1)
        return hv.Overlay([zero, *curves]).opts(
            title=f"Who pays, run by run: allocated − true volume by {self.by.replace('_', ' ')}",
            width=self.width, height=300, xticks=list(zip(x, self._runs)), ylabel="allocated − true [kWh]", yformatter="%.0f",
            xlabel="run", legend_position="right", show_grid=True, responsive=False, framewise=True)

    @param.depends("by", "gsp_group")
    def delta_plot(self) -> hv.Bars:
        """Reconciliation between consecutive runs per key [kWh] (first run omitted)."""
        deltas = settlement.run_deltas(_subset(self.recon, self.gsp_group), by=self.by).reset_index()
        deltas = deltas[deltas["previous_run"] != ""]
        data = pd.DataFrame({"step": deltas["previous_run"] + "→" + deltas["run"].astype(str),
                             "key": deltas[self.by].astype(str), "kWh": deltas["delta"].to_numpy()})
        return hv.Bars(data, ["step", "key"], "kWh").opts(
            title=f"Run-to-run deltas of allocated volume by {self.by.replace('_', ' ')}", width=self.width,
            height=280, ylabel="delta [kWh]", yformatter="%.0f", show_grid=True, responsive=False, tools=["hover"], xrotation=45,
            framewise=True)

    @param.depends("gsp_group")
    def gcf_plot(self) -> hv.Overlay:
        """Import GCF over time for every run, one GSP group; grey band [0.9, 1.1]."""
        groups = [g for g in self.param.gsp_group.objects if g != ALL]
        group = groups[0] if self.gsp_group == ALL else self.gsp_group
        gcf = self.recon["gcf"].sel(gsp_group_id=group, direction="import")
        gcf = gcf.where(~self.recon["uncorrectable"].sel(gsp_group_id=group, direction="import").astype(bool))
        t = self.recon["time"].values
        curves = [hv.Curve((t, gcf.sel(run=r).values), "time", "GCF", label=r).opts(
            color=RUN_COLORS.get(r, "#555555"), line_width=1.2) for r in self._runs]
        return (hv.HSpan(0.9, 1.1).opts(color="#dddddd", alpha=0.5) * hv.Overlay(curves)).opts(
            title=f"Import GCF by run — GSP group {group}", width=self.width, height=260, xlabel="time (UTC)",
            ylabel="GCF [-]", legend_position="bottom", legend_cols=7, show_grid=True, responsive=False,
            framewise=True)

    def convergence_table(self) -> pn.pane.DataFrame:
        """The convergence table (static)."""
        conv = settlement.convergence(self.recon)[["abs_error", "abs_error_uncorrected", "relative_abs_error",
                                                   "actual_share", "import_gcf_min", "import_gcf_max"]]
        return pn.pane.DataFrame(conv.round(4), width=self.width)

    VIEWS = ("convergence", "errors", "deltas", "gcf", "table")

    def view(self, name: str) -> pn.viewable.Viewable:
        """One static view of the current selection."""
        views = {
            "convergence": lambda: pn.pane.HoloViews(self.convergence_plot().opts(toolbar=None), width=self.width, linked_axes=False),
            "errors": lambda: pn.pane.HoloViews(self.error_plot().opts(toolbar=None), width=self.width, linked_axes=False),
            "deltas": lambda: pn.pane.HoloViews(self.delta_plot().opts(toolbar=None), width=self.width, linked_axes=False),
            "gcf": lambda: pn.pane.HoloViews(self.gcf_plot().opts(toolbar=None), width=self.width, linked_axes=False),
            "table": self.convergence_table,
        }
        if name not in views:
            raise ValueError(f"SettlementRunsDashboard.view: {name!r} is not one of {list(views)}")
        return views[name]()

    def __panel__(self) -> pn.Column:
        widgets = pn.Row(
            pn.widgets.RadioButtonGroup.from_param(self.param.by, name="Group by", width=300),
            pn.widgets.Select.from_param(self.param.gsp_group, name="GSP group", width=140),
        )
        return pn.Column(
            pn.pane.Markdown(f"### Settlement runs — scenario `{self.recon.attrs.get('scenario', '')}`",
                             width=self.width),
            pn.pane.HoloViews(self.convergence_plot(), width=self.width, linked_axes=False),
            self.convergence_table(),
            widgets,
            pn.pane.HoloViews(hv.DynamicMap(self.error_plot), width=self.width, linked_axes=False),
            pn.pane.HoloViews(hv.DynamicMap(self.delta_plot), width=self.width, linked_axes=False),
            pn.pane.HoloViews(hv.DynamicMap(self.gcf_plot), width=self.width, linked_axes=False),
        )
