"""The volume allocation dashboard: who gets which volume, the GSP group correction, and who pays.

Built on a reconciliation dataset (:func:`tomlib.settlement.reconcile`: runs stacked on ``run``).
Three classic Panel widgets (run, GSP group, direction) drive three views, so the dashboard also
exports to a static HTML file with every widget state embedded
(:func:`tomlib.dashboards.save_dashboard`):

- the allocated volume of each supplier per settlement period (stacked), with the GSP group take;
- the GSP group correction factor over time, import and export, with the reasonable band
  [0.9, 1.1] (F-11);
- who pays: per supplier, allocated minus true volume over the run's days, i.e. the share of the
  unaccounted energy (theft, unsettled segments, estimation error) the correction gave them.

The numbers behind the views are pure functions (:func:`supplier_allocation`, :func:`gcf_frame`,
:func:`correction_by_supplier`, :func:`gcf_summary`); no file I/O here.
"""

from __future__ import annotations

import holoviews as hv
import holoviews.plotting.bokeh
import numpy as np
import pandas as pd
import panel as pn
import param
import xarray as xr

__all__ = [
    "ALL",
    "VolumeAllocationDashboard",
    "correction_by_supplier",
    "gcf_frame",
    "gcf_summary",
    "supplier_allocation",
]

ALL = "all"
DIRECTIONS = ("net", "import", "export")
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")


def _units_in(recon: xr.Dataset, gsp_group: str) -> np.ndarray:
    groups = recon["bm_unit_gsp_group"].values.astype(str)
    return np.ones(groups.size, bool) if gsp_group == ALL else groups == gsp_group


def supplier_allocation(recon: xr.Dataset, run: str, gsp_group: str = ALL, direction: str = "net") -> pd.DataFrame:
    """Allocated volume per supplier and period of one run [kWh].

    Parameters
    ----------
    recon : Dataset
        From :func:`tomlib.settlement.reconcile`.
    run : str
    gsp_group : str
        ``"all"`` or a GSP group id.
    direction : {"net", "import", "export"}

    Returns
    -------
    DataFrame
        Index ``time`` (UTC), one column per supplier (sorted) [kWh per period].
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    da = recon[f"allocated_{direction}"].sel(run=run)
    keep = _units_in(recon, gsp_group)
    da = da.isel(bm_unit_id=np.flatnonzero(keep))
    by = da.groupby(da["bm_unit_supplier"]).sum() if keep.any() else da.sum("bm_unit_id").expand_dims(
        bm_unit_supplier=[])
    frame = by.transpose("time", ...).to_pandas()
    frame.index = pd.DatetimeIndex(recon["time"].values, name="time")
    frame.columns = [str(c) for c in frame.columns]
    return frame.reindex(columns=sorted(frame.columns))


def gcf_frame(recon: xr.Dataset, run: str, gsp_group: str) -> pd.DataFrame:
    """GSP group correction factors of one run and GSP group over time [-].

    Returns
    -------
    DataFrame
        Index ``time``; columns ``import``, ``export`` (NaN where the cell is uncorrectable).
    """
    gcf = recon["gcf"].sel(run=run, gsp_group_id=gsp_group)
    gcf = gcf.where(~recon["uncorrectable"].sel(run=run, gsp_group_id=gsp_group).astype(bool))
    frame = gcf.transpose("time", "direction").to_pandas()
    frame.index = pd.DatetimeIndex(recon["time"].values, name="time")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def correction_by_supplier(recon: xr.Dataset, run: str, gsp_group: str = ALL) -> pd.DataFrame:
    """What the correction did to each supplier in one run, summed over the periods [kWh].

    Returns
    -------
    DataFrame
        Index supplier; columns ``true`` (true net volume at the GSP), ``uncorrected``,
        ``allocated``, ``correction`` (allocated - uncorrected) and ``error`` (allocated - true:
        the supplier's share of theft, unsettled energy and estimation error).
    """
    keep = np.flatnonzero(_units_in(recon, gsp_group))
    sub = recon.isel(bm_unit_id=keep)
    sup = sub["bm_unit_supplier"]
    frame = pd.DataFrame({
        "true": sub["true_net"].sum("time").groupby(sup).sum().to_series(),
        "uncorrected": sub["uncorrected_net"].sel(run=run).sum("time").groupby(sup).sum().to_series(),
        "allocated": sub["allocated_net"].sel(run=run).sum("time").groupby(sup).sum().to_series(),
    })
    frame["correction"] = frame["allocated"] - frame["uncorrected"]
    frame["error"] = frame["allocated"] - frame["true"]
    frame.index = frame.index.astype(str).rename("supplier")
    return frame


def gcf_summary(recon: xr.Dataset) -> pd.DataFrame:
    """GCF range per run and direction: min, mean, max [-], cells outside the range, uncorrectable cells.

    Returns
    -------
    DataFrame
        Index (run, direction).
    """
    unc = recon["uncorrectable"].astype(bool)
    gcf = recon["gcf"].where(~unc)
    dims = ["gsp_group_id", "time"]
    frame = pd.DataFrame({
        "min": gcf.min(dims).to_series(), "mean": gcf.mean(dims).to_series(), "max": gcf.max(dims).to_series(),
        "outside_range": recon["gcf_out_of_range"].astype(bool).sum(dims).to_series(),
        "uncorrectable": unc.sum(dims).to_series(),
    })
    order = {r: i for i, r in enumerate(recon["run"].values)}
    return frame.sort_index(key=lambda s: s.map(order) if s.name == "run" else s)


class VolumeAllocationDashboard(pn.viewable.Viewer):
    """Allocation by supplier per period, the GCF over time, and who pays, for one run at a time.

    Parameters
    ----------
    recon : Dataset
        Runs stacked by :func:`tomlib.settlement.reconcile`.
    run, gsp_group, direction : str
        Initial widget values.
    width : int
        Plot width [px].
    """

    recon = param.ClassSelector(class_=xr.Dataset, doc="Reconciliation dataset")
    run = param.Selector(default=None, objects=[], doc="Settlement run shown")
    gsp_group = param.Selector(default=ALL, objects=[ALL], doc="GSP group shown ('all' sums them)")
    direction = param.Selector(default="net", objects=list(DIRECTIONS), doc="Import, export or net allocation")
    width = param.Integer(default=620, bounds=(300, 1600), doc="Plot width [px]")

    def __init__(self, **params):
        # the selectors' options come from the data: check the wanted values once they are known
        wanted = {k: params.pop(k) for k in ("run", "gsp_group") if k in params}
        super().__init__(**params)
        if self.recon is None:
            raise ValueError("VolumeAllocationDashboard: recon= is required")
        runs = [str(r) for r in self.recon["run"].values]
        self.param.run.objects = runs
        self.run = runs[0]
        self.param.gsp_group.objects = [ALL, *[str(g) for g in self.recon["gsp_group_id"].values]]
        for name, value in wanted.items():
            if value not in self.param[name].objects:
                raise ValueError(f"VolumeAllocationDashboard: {name}={value!r} is not one of "
                                 f"{self.param[name].objects}")
            setattr(self, name, value)
        self._suppliers = sorted(set(self.recon["bm_unit_supplier"].values.astype(str)))
        self._colors = {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(self._suppliers)}

    def _take(self) -> np.ndarray:
        take = self.recon["gsp_group_take"]
        return (take.sum("gsp_group_id") if self.gsp_group == ALL else take.sel(gsp_group_id=self.gsp_group)).values

    @param.depends("run", "gsp_group", "direction")
    def allocation_plot(self) -> hv.Overlay:
        """Allocated volume per supplier per period (stacked areas), and the net GSP group take."""
        frame = supplier_allocation(self.recon, self.run, self.gsp_group, self.direction)
        frame = frame.reindex(columns=self._suppliers, fill_value=0.0)
        t = frame.index.to_numpy()
        areas = hv.Area.stack(hv.Overlay([
            hv.Area((t, frame[s].to_numpy()), "time", "kWh", label=s).opts(color=self._colors[s], alpha=0.7)
            for s in self._suppliers]))
        layers = [areas]
        if self.direction == "net":
            layers.append(hv.Curve((t, self._take()), "time", "kWh", label="GSP group take").opts(
                color="black", line_width=1.5, line_dash="dashed"))
        where = "all GSP groups" if self.gsp_group == ALL else f"GSP group {self.gsp_group}"
        return hv.Overlay(layers).opts(
            title=f"Allocated {self.direction} volume by supplier — run {self.run}, {where}", width=self.width,
            height=300, xlabel="time (UTC)", ylabel="energy [kWh per period]", yformatter="%.0f", legend_position="bottom",
            legend_cols=5, show_grid=True, responsive=False, framewise=True)

    @param.depends("run", "gsp_group")
    def gcf_plot(self) -> hv.Overlay:
        """GCF over time (import and export) for the run; the grey band is [0.9, 1.1]."""
        groups = [g for g in self.param.gsp_group.objects if g != ALL]
        group = groups[0] if self.gsp_group == ALL else self.gsp_group
        frame = gcf_frame(self.recon, self.run, group)
        t = frame.index.to_numpy()
        band = hv.HSpan(0.9, 1.1).opts(color="#dddddd", alpha=0.5)
        curves = [hv.Curve((t, frame[d].to_numpy()), "time", "GCF", label=d).opts(
            color={"import": "#1f77b4", "export": "#d62728"}[d], line_width=1.5) for d in ("import", "export")]
        return (band * hv.Overlay(curves)).opts(
            title=f"GSP group correction factor — run {self.run}, GSP group {group}", width=self.width, height=260,
            xlabel="time (UTC)", ylabel="GCF [-]", legend_position="bottom", show_grid=True, responsive=False,
            framewise=True)

    @param.depends("run", "gsp_group")
    def who_pays_plot(self) -> hv.Bars:
        """Allocated minus true volume per supplier over the run's days [kWh]."""
        frame = correction_by_supplier(self.recon, self.run, self.gsp_group).reindex(self._suppliers,
                                                                                    fill_value=0.0)
        data = pd.DataFrame({"supplier": frame.index, "kWh": frame["error"].to_numpy()})
        return hv.Bars(data, "supplier", "kWh").opts(
            title=f"Who pays: allocated − true volume — run {self.run}", width=self.width, height=240,
            color=hv.dim("supplier").categorize(self._colors), ylabel="allocated − true [kWh]", yformatter="%.0f", show_grid=True,
            responsive=False, framewise=True, tools=["hover"])

    @param.depends("run", "gsp_group")
    def table(self) -> pn.pane.DataFrame:
        """The correction per supplier of the selection, as numbers [kWh]."""
        return pn.pane.DataFrame(correction_by_supplier(self.recon, self.run, self.gsp_group).round(2),
                                 width=self.width)

    VIEWS = ("allocation", "gcf", "who_pays", "table")

    def view(self, name: str) -> pn.viewable.Viewable:
        """One static view of the current selection (``"allocation"``, ``"gcf"``, ``"who_pays"``, ``"table"``)."""
        views = {
            "allocation": lambda: pn.pane.HoloViews(self.allocation_plot().opts(toolbar=None), width=self.width, linked_axes=False),
            "gcf": lambda: pn.pane.HoloViews(self.gcf_plot().opts(toolbar=None), width=self.width, linked_axes=False),
            "who_pays": lambda: pn.pane.HoloViews(self.who_pays_plot().opts(toolbar=None), width=self.width, linked_axes=False),
            "table": self.table,
        }
        if name not in views:
            raise ValueError(f"VolumeAllocationDashboard.view: {name!r} is not one of {list(views)}")
        return views[name]()

    def __panel__(self) -> pn.Column:
        widgets = pn.Row(
            pn.widgets.Select.from_param(self.param.run, name="Run", width=100),
            pn.widgets.Select.from_param(self.param.gsp_group, name="GSP group", width=140),
            pn.widgets.RadioButtonGroup.from_param(self.param.direction, name="Direction", width=240),
        )
        return pn.Column(
            pn.pane.Markdown(f"### Volume allocation — scenario `{self.recon.attrs.get('scenario', '')}`",
                             width=self.width),
            widgets,
            pn.pane.HoloViews(hv.DynamicMap(self.allocation_plot), width=self.width, linked_axes=False),
            pn.pane.HoloViews(hv.DynamicMap(self.gcf_plot), width=self.width, linked_axes=False),
            pn.pane.HoloViews(hv.DynamicMap(self.who_pays_plot), width=self.width, linked_axes=False),
            self.table,
        )
