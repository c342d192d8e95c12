"""The market dashboard: who is in the simulated market, what they truly consume, and the GSP group take.

The market is the workbench's "true world" (:mod:`tomlib.market`): every settlement service is later
measured against it. This module shows it in four views, driven by two classic Panel widgets (GSP
group and market segment) so that the dashboard also exports to a static HTML file with every widget
state embedded (:func:`tomlib.dashboards.save_dashboard`):

- true consumption by market segment over UTC time, with the settlement-day boundaries (local
  midnight) drawn, so a 46- or 50-period day is visibly 23 or 25 hours long;
- the GSP group take against the sum of metered energy, at the meter and at the GSP (x LLF);
- MPAN counts by market segment x GSP group;
- a heatmap of settlement_date x settlement_period (1..50) from :func:`tomlib.cube.to_grid`, in which
  the padding of a 46-period day (periods 47..50) and of every 48-period day (49, 50) is grey.

The numbers behind the views are pure functions of a :class:`~tomlib.market.Market`
(:func:`mpan_counts`, :func:`series_energy`, :func:`metered_energy`, :func:`take_identity_residual`,
:func:`day_boundaries`, :func:`market_checks`); the notebook ``market_overview`` records them and the
tests check them. No file I/O here.
"""

from __future__ import annotations

from typing import Any

import holoviews as hv
import holoviews.plotting.bokeh  # registers the bokeh backend, so .opts works outside a notebook
import numpy as np
import pandas as pd
import panel as pn
import param
import xarray as xr

from tomlib import calendar as cal
from tomlib import cube
from tomlib.market import Market

__all__ = [
    "ALL",
    "SERIES_COLORS",
    "MarketDashboard",
    "check_table",
    "day_boundaries",
    "market_checks",
    "metered_energy",
    "mpan_counts",
    "scenario_facts",
    "series_energy",
    "take_identity_residual",
]

ALL = "all"
SEGMENT_NAMES = {"S": "smart", "A": "advanced", "U": "unmetered"}
EXPORT = "export"
# fixed colours, so that every embedded widget state draws a series in the same colour
SERIES_COLORS = {"S": "#1f77b4", "A": "#ff7f0e", "U": "#2ca02c", EXPORT: "#d62728"}
TAKE_COLORS = {"GSP group take": "#222222", "Σ metered × LLF": "#9467bd", "Σ metered at the meter": "#17becf"}
PAD_COLOR = "#e6e6e6"


# ------------------------------------------------------------------------------------------------
# numbers (pure functions)


def _signs(meters: xr.Dataset) -> np.ndarray:
    """+1 for import (AI), -1 for export (AE) MPANs; other quantities are not active energy."""
    mq = meters["measurement_quantity"].to_numpy().astype(str)
    unknown = sorted(set(mq) - {"AI", "AE"})
    if unknown:
        raise ValueError(f"market meters: measurement_quantity {unknown} is not AI or AE; the market "
                         "views sum active import and export only")
    return np.where(mq == "AE", -1.0, 1.0)


def _one_hot(labels: np.ndarray, categories: list[str]) -> np.ndarray:
    """(n, k) indicator matrix: summing over MPANs becomes one matrix product, no loop over meters."""
    return (labels[:, None] == np.asarray(categories, dtype=str)[None, :]).astype(float)


def _series_labels(meters: xr.Dataset) -> np.ndarray:
    seg = meters["market_segment"].to_numpy().astype(str)
    return np.where(_signs(meters) < 0, EXPORT, seg)


def mpan_counts(meters: xr.Dataset) -> pd.DataFrame:
    """MPAN counts by market segment, premises type and measurement quantity x GSP group.

    Parameters
    ----------
    meters : Dataset
        Meter cube with coordinates ``market_segment``, ``domestic``, ``measurement_quantity`` and
        ``gsp_group``.

    Returns
    -------
    DataFrame
        Index ``"<segment> <name> <domestic|non-domestic> <AI|AE>"`` (e.g. ``"S smart domestic AI"``)
        plus a ``"total"`` row; one column per GSP group plus ``"total"``; integer counts [-].
    """
    seg = pd.Series(meters["market_segment"].to_numpy().astype(str), dtype=object)
    mq = pd.Series(meters["measurement_quantity"].to_numpy().astype(str), dtype=object)
    premises = pd.Series(np.where(meters["domestic"].to_numpy(), "domestic", "non-domestic"), dtype=object)
    row = seg + " " + seg.map(SEGMENT_NAMES).fillna(seg) + " " + premises + " " + mq
    gsp = pd.Series(meters["gsp_group"].to_numpy().astype(str), dtype=object)
    table = pd.crosstab(row.rename("segment"), gsp.rename("gsp_group"), margins=True, margins_name="total")
    table.index = table.index.astype(object)
    table.columns = table.columns.astype(object)
    return table.astype(int)


def series_energy(meters: xr.Dataset, name: str = "energy") -> xr.DataArray:
    """True energy summed by GSP group and series (import by market segment, and export).

    Parameters
    ----------
    meters : Dataset
        Meter cube with ``energy`` [kWh per period] on (mpan, time).
    name : str
        Energy variable.

    Returns
    -------
    DataArray
        [kWh per period], dims (gsp_group, series, time); series = the market segments with import
        MPANs (``"S"``, ``"A"``, ``"U"``) then ``"export"`` if there are export MPANs (export energy
        counted positive). NaN energy propagates (it is a defect the checks report, not hidden).
    """
    groups = sorted(np.unique(meters["gsp_group"].to_numpy().astype(str)))
    labels = _series_labels(meters)
    series = [s for s in ("S", "A", "U", EXPORT) if s in set(labels)]
    gh = _one_hot(meters["gsp_group"].to_numpy().astype(str), groups)
    sh = _one_hot(labels, series)
    weights = (gh[:, :, None] * sh[:, None, :]).reshape(len(labels), -1)  # (mpan, group*series)
    energy = meters[name].transpose("mpan", "time").to_numpy()
    summed = (weights.T @ energy).reshape(len(groups), len(series), -1)
    out = xr.DataArray(summed, dims=("gsp_group", "series", "time"),
                       coords={"gsp_group": groups, "series": series, "time": meters["time"].to_numpy()},
                       name=name, attrs={"units": "kWh", "long_name": "true energy by GSP group and series"})
    return cube.add_settlement_coords(out)


def metered_energy(market: Market, with_losses: bool = True) -> xr.DataArray:
    """Σ metered energy per GSP group: import minus export, optionally scaled to the GSP by LLFs.

    Parameters
    ----------
    market : Market
    with_losses : bool
        Multiply each MPAN's energy by the line loss factor of its LLFC in that period.

    Returns
    -------
    DataArray
        [kWh per period], dims (gsp_group, time), GSP groups as in ``market.gsp_group_take``.
    """
    meters = market.meters
    energy = meters["energy"].transpose("mpan", "time")
    if with_losses:
        llf = market.line_loss_factors.sel(llfc=meters["llfc"].to_numpy().astype(str))
        energy = energy * llf.rename(llfc="mpan").transpose("mpan", "time").to_numpy()
    groups = [str(g) for g in market.gsp_group_take["gsp_group"].to_numpy()]
    weights = _one_hot(meters["gsp_group"].to_numpy().astype(str), groups) * _signs(meters)[:, None]
    summed = weights.T @ energy.to_numpy()
    return xr.DataArray(summed, dims=("gsp_group", "time"),
                        coords={"gsp_group": groups, "time": meters["time"].to_numpy()},
                        name="metered_energy", attrs={"units": "kWh"})


def take_identity_residual(market: Market) -> xr.DataArray:
    """GSP group take - Σ energy x LLF (export subtracted) - unaccounted energy.

    Returns
    -------
    DataArray
        [kWh per period], dims (gsp_group, time); zero to rounding when the market is consistent.
    """
    take = market.gsp_group_take.transpose("gsp_group", "time")
    ue = market.unaccounted_energy.sel(gsp_group=take["gsp_group"]).transpose("gsp_group", "time")
    residual = take.to_numpy() - metered_energy(market).to_numpy() - ue.to_numpy()
    return xr.DataArray(residual, dims=take.dims, coords={"gsp_group": take["gsp_group"].to_numpy(),
                                                          "time": take["time"].to_numpy()},
                        name="take_identity_residual", attrs={"units": "kWh"})


def day_boundaries(times: Any) -> pd.DataFrame:
    """The settlement days of a UTC time axis, with their UTC start and length.

    Parameters
    ----------
    times : array-like of datetime64
        UTC period starts (the ``time`` axis).

    Returns
    -------
    DataFrame
        Index ``settlement_date``; columns ``start`` (UTC start of the day's first period in the axis),
        ``end`` (UTC end of its last period), ``n_periods`` (periods of the day in the axis) and
        ``expected_periods`` (46/48/50 from :func:`tomlib.calendar.periods_in_day`).
    """
    t = pd.DatetimeIndex(np.asarray(times))
    dates, _ = cal.from_utc(t)
    frame = pd.DataFrame({"settlement_date": dates, "time": t})
    days = frame.groupby("settlement_date")["time"].agg(["min", "max", "size"])
    days.columns = ["start", "end", "n_periods"]
    days["end"] = days["end"] + cal.PERIOD
    days["expected_periods"] = np.asarray(cal.periods_in_day(days.index.to_numpy()), dtype=int)
    return days


def market_checks(market: Market) -> dict[str, Any]:
    """Key figures and invariants of a market, as JSON-ready values (recorded by the notebook).

    Returns
    -------
    dict
        ``n_mpans``, ``n_import_mpans``, ``n_export_mpans``, ``mpans_by_segment`` (segment -> count of
        import MPANs), ``mpans_by_gsp_group``, ``n_periods`` (settlement periods on the time axis),
        ``periods_per_day`` (ISO date -> count), ``periods_per_day_expected`` (ISO date -> 46/48/50),
        ``n_nan_energy``, ``n_negative_energy``, ``import_energy_kwh``, ``export_energy_kwh``,
        ``gsp_group_take_kwh``, ``unaccounted_energy_kwh`` [kWh], ``loss_and_unaccounted_share``
        [-] (take / Σ metered at the meter - 1) and ``take_identity_max_abs_residual_kwh`` [kWh].
    """
    meters = market.meters
    energy = meters["energy"].to_numpy()
    signs = _signs(meters)
    days = day_boundaries(meters["time"].to_numpy())
    iso = [d.strftime("%Y-%m-%d") for d in days.index]
    seg = meters["market_segment"].to_numpy().astype(str)[signs > 0]
    imports = float(np.sum(energy[signs > 0]))
    metered = imports - float(np.sum(energy[signs < 0]))
    take = float(market.gsp_group_take.sum())
    return {
        "n_mpans": int(meters.sizes["mpan"]),
        "n_import_mpans": int((signs > 0).sum()),
        "n_export_mpans": int((signs < 0).sum()),
        "mpans_by_segment": {s: int((seg == s).sum()) for s in sorted(set(seg))},
        "mpans_by_gsp_group": {str(g): int(n) for g, n in
                               zip(*np.unique(meters["gsp_group"].to_numpy().astype(str), return_counts=True))},
        "n_periods": int(meters.sizes["time"]),
        "periods_per_day": dict(zip(iso, days["n_periods"].astype(int).tolist())),
        "periods_per_day_expected": dict(zip(iso, days["expected_periods"].astype(int).tolist())),
        "n_nan_energy": int(np.isnan(energy).sum()),
        "n_negative_energy": int((energy < 0).sum()),
        "import_energy_kwh": imports,
        "export_energy_kwh": float(np.sum(energy[signs < 0])),
        "gsp_group_take_kwh": take,
        "unaccounted_energy_kwh": float(market.unaccounted_energy.sum()),
        "loss_and_unaccounted_share": take / metered - 1.0 if metered else float("nan"),
        "take_identity_max_abs_residual_kwh": float(np.abs(take_identity_residual(market)).max()),
    }


def scenario_facts(scenario: Any, market: Market) -> pd.Series:
    """What a report says about the scenario behind a market.

    Parameters
    ----------
    scenario : tomlib.scenario.Scenario
    market : Market

    Returns
    -------
    Series
        name, digest (first 12 hex digits of ``Scenario.digest()``), settlement days, GSP groups,
        import MPANs, seed, and whether the market records the same scenario digest (a market read
        from a store may have been made from other settings).
    """
    digest = scenario.digest()
    made_from = market.attrs.get("scenario_digest")
    return pd.Series({
        "name": scenario.name,
        "digest": digest[:12],
        "settlement days": f"{scenario.first_date:%Y-%m-%d} .. {scenario.last_date:%Y-%m-%d}",
        "GSP groups": ", ".join(scenario.gsp_groups),
        "import MPANs": str(scenario.n_mpans),
        "seed": str(scenario.seed),
        "market made from this scenario": "unknown" if made_from is None else str(made_from == digest),
    }, name="scenario", dtype=object)


def check_table(checks: dict[str, Any], expected_import_mpans: int | None = None,
                tolerance_kwh: float = 1e-6) -> pd.DataFrame:
    """The market's invariants as a table: what was checked, the value found, what was expected.

    Parameters
    ----------
    checks : dict
        From :func:`market_checks`.
    expected_import_mpans : int, optional
        Import MPANs the scenario asks for (``Scenario.n_mpans``); None skips that row.
    tolerance_kwh : float
        Largest accepted take identity residual [kWh].

    Returns
    -------
    DataFrame
        Columns ``check``, ``value``, ``expected``, ``ok`` (bool); one row per invariant.
    """
    found = list(checks["periods_per_day"].values())
    expected = list(checks["periods_per_day_expected"].values())
    residual = checks["take_identity_max_abs_residual_kwh"]
    rows = [
        ("GSP group take identity: max |take − Σ E×LLF − unaccounted| [kWh]", f"{residual:.3g}",
         f"≤ {tolerance_kwh:g}", residual <= tolerance_kwh),
        ("energy values that are NaN", checks["n_nan_energy"], 0, checks["n_nan_energy"] == 0),
        ("negative energy values (import and export are both ≥ 0)", checks["n_negative_energy"], 0,
         checks["n_negative_energy"] == 0),
        ("settlement periods per settlement day", ", ".join(map(str, found)),
         ", ".join(map(str, expected)) + " (calendar)", found == expected),
        ("settlement periods in total", checks["n_periods"], sum(expected), checks["n_periods"] == sum(expected)),
    ]
    if expected_import_mpans is not None:
        rows.append(("import MPANs", checks["n_import_mpans"], f"{expected_import_mpans} (scenario)",
                     checks["n_import_mpans"] == expected_import_mpans))
    return pd.DataFrame(rows, columns=["check", "value", "expected", "ok"]).astype({"value": str,
                                                                                    "expected": str})


# ------------------------------------------------------------------------------------------------
# the dashboard


class MarketDashboard(pn.viewable.Viewer):
    """Interactive view of a market: consumption, GSP group take, MPAN counts, the settlement grid.

    Parameters
    ----------
    market : Market
        The market to show (not modified).
    gsp_group : str
        ``"all"`` or a GSP group id of the market.
    segment : str
        ``"all"`` or a market segment with import MPANs (``"S"``, ``"A"``, ``"U"``).
    width : int
        Width of every plot [px]; fixed so the printed layout is stable (A4 fits 620 + toolbar).

    Examples
    --------
    In a notebook, ``MarketDashboard(market=market)`` displays it; ``pn.serve(dash)`` serves it and
    :func:`tomlib.dashboards.save_dashboard` writes a static, offline HTML file.
    """

    market = param.ClassSelector(class_=Market, doc="The market shown")
    gsp_group = param.Selector(default=ALL, objects=[ALL], doc="GSP group shown ('all' sums them)")
    segment = param.Selector(default=ALL, objects=[ALL], doc="Market segment shown ('all' = each)")
    width = param.Integer(default=620, bounds=(300, 1600), doc="Plot width [px]")

    def __init__(self, **params):
        super().__init__(**params)
        if self.market is None:
            raise ValueError("MarketDashboard: market= is required")
        self._energy = series_energy(self.market.meters)
        self._take = self.market.gsp_group_take
        self._at_gsp = metered_energy(self.market, with_losses=True)
        self._at_meter = metered_energy(self.market, with_losses=False)
        self._residual = take_identity_residual(self.market)
        self._days = day_boundaries(self.market.meters["time"].to_numpy())
        self._counts = mpan_counts(self.market.meters)
        self.param.gsp_group.objects = [ALL, *map(str, self._energy["gsp_group"].to_numpy())]
        self.param.segment.objects = [ALL, *[s for s in map(str, self._energy["series"].to_numpy())
                                             if s != EXPORT]]
        for name in ("gsp_group", "segment"):
            if getattr(self, name) not in self.param[name].objects:
                raise ValueError(f"MarketDashboard: {name}={getattr(self, name)!r} is not one of "
                                 f"{self.param[name].objects}")

    # -- data for the current selection ---------------------------------------------------------

    def _groups(self, da: xr.DataArray) -> xr.DataArray:
        return da.sum("gsp_group") if self.gsp_group == ALL else da.sel(gsp_group=self.gsp_group)

    def selected_series(self) -> xr.DataArray:
        """Energy of the selection [kWh per period], dims (series, time)."""
        da = self._groups(self._energy)
        return da if self.segment == ALL else da.sel(series=[self.segment])

    def selected_take(self) -> pd.DataFrame:
        """Take, Σ metered × LLF and Σ metered at the meter of the selected GSP group(s) [kWh]."""
        return pd.DataFrame({
            "GSP group take": self._groups(self._take).to_numpy(),
            "Σ metered × LLF": self._groups(self._at_gsp).to_numpy(),
            "Σ metered at the meter": self._groups(self._at_meter).to_numpy(),
        }, index=pd.DatetimeIndex(self._take["time"].to_numpy(), name="time"))

    def selected_grid(self) -> xr.DataArray:
        """Import energy of the selection on the (settlement_date × settlement_period 1..50) grid."""
        da = self.selected_series()
        imports = da.sel(series=[s for s in da["series"].to_numpy() if s != EXPORT]).sum("series")
        return cube.to_grid(imports.drop_vars(["settlement_date", "settlement_period"], errors="ignore"))

    # -- views ----------------------------------------------------------------------------------

    def _title(self) -> str:
        where = "all GSP groups" if self.gsp_group == ALL else f"GSP group {self.gsp_group}"
        what = "all segments" if self.segment == ALL else f"segment {self.segment}"
        return f"{where}, {what}"

    def _boundaries(self, top: float) -> hv.Overlay:
        days = self._days
        lines = hv.VLines(list(days["start"]) + [days["end"].iloc[-1]]).opts(
            color="grey", line_dash="dashed", line_width=1)
        # Over more than a few days one label per day overlaps; the clock-change days are the ones a
        # reader looks for, so only they are labelled then.
        if len(days) > 4:
            days = days[days["n_periods"] != 48]
        mids = days["start"] + (days["end"] - days["start"]) / 2
        text = [f"{d:%d %b}: {n} SP" for d, n in zip(days.index, days["n_periods"])]
        labels = hv.Labels((mids, np.full(len(days), top), text), ["time", "kWh"], "text").opts(
            text_font_size="8pt", text_color="#444444", text_baseline="bottom")
        return lines * labels

    @param.depends("gsp_group", "segment")
    def consumption_plot(self) -> hv.Overlay:
        """True energy per series over UTC time, with the settlement-day boundaries.

        Every series is always in the overlay (NaN when not selected): the dashboard wraps this
        method in a DynamicMap, which updates a fixed set of glyphs in place; that keeps the
        embedded widget states small and quick to record.
        """
        da = self._groups(self._energy)
        shown = set(map(str, self.selected_series()["series"].to_numpy()))
        curves = [hv.Curve((da["time"].to_numpy(), da.sel(series=s).to_numpy() if s in shown
                            else np.full(da.sizes["time"], np.nan)), "time", "kWh",
                           label=_series_label(s)).opts(color=SERIES_COLORS[s], line_width=1.5, framewise=True)
                  for s in map(str, da["series"].to_numpy())]
        values = da.sel(series=sorted(shown)).to_numpy()
        top = float(np.nanmax(values)) if np.isfinite(values).any() else 1.0
        overlay = hv.Overlay(curves) * self._boundaries(top * 1.03)
        return overlay.opts(
            title=f"True consumption — {self._title()}", width=self.width, height=280,
            xlabel="time (UTC)", ylabel="energy [kWh per period]", legend_position="bottom",
            legend_cols=4, padding=(0, (0, 0.15)), show_grid=True, responsive=False)

    @param.depends("gsp_group")
    def take_plot(self) -> hv.Overlay:
        """GSP group take against Σ metered energy (at the meter, and scaled by LLFs)."""
        df = self.selected_take()
        curves = [hv.Curve((df.index.to_numpy(), df[c].to_numpy()), "time", "kWh", label=c).opts(
            color=TAKE_COLORS[c], line_dash="solid" if c == "GSP group take" else "dashed", framewise=True)
            for c in df.columns]
        where = "all GSP groups" if self.gsp_group == ALL else f"GSP group {self.gsp_group}"
        return hv.Overlay(curves).opts(
            title=f"GSP group take vs Σ metered energy — {where}", width=self.width, height=280,
            xlabel="time (UTC)", ylabel="energy [kWh per period]", legend_position="bottom", legend_cols=3,
            show_grid=True, responsive=False)

    @param.depends("gsp_group")
    def take_note(self) -> pn.pane.Markdown:
        """The take identity residual and the losses + unaccounted share of the selection."""
        res = float(np.abs(self._groups(self._residual)).max())
        df = self.selected_take()
        share = df["GSP group take"].sum() / df["Σ metered at the meter"].sum() - 1.0
        # a fixed height too: Panel wraps the pane in a fixed-size column, which Bokeh wants complete
        return pn.pane.Markdown(
            f"Take identity residual max |take − Σ E×LLF − unaccounted| = {res:.2e} kWh. "
            f"Losses and unaccounted energy: {share:.2%} of the metered energy.", width=self.width, height=60)

    def count_table(self) -> pn.pane.DataFrame:
        """MPAN counts by segment × GSP group (static: it does not depend on the widgets)."""
        return pn.pane.DataFrame(self._counts, width=self.width)

    @param.depends("gsp_group", "segment")
    def heatmap(self) -> hv.HeatMap:
        """Import energy on the settlement_date × settlement_period grid; grey = no such period."""
        grid = self.selected_grid()
        dates = pd.DatetimeIndex(grid["settlement_date"].to_numpy())
        n = np.asarray(cal.periods_in_day(dates.to_numpy()), dtype=int)
        rows = [f"{d:%a %d %b %Y} ({k})" for d, k in zip(dates, n)]
        periods = grid["settlement_period"].to_numpy().astype(int)
        frame = pd.DataFrame({
            "settlement_period": np.tile(periods, len(rows)),
            "settlement_date": np.repeat(rows, len(periods)),
            "kWh": grid.to_numpy().ravel(),
        })
        return hv.HeatMap(frame, ["settlement_period", "settlement_date"], "kWh").opts(
            title=f"Settlement grid — {self._title()}", width=self.width,
            height=80 + 22 * len(rows), cmap="viridis", colorbar=True, invert_yaxis=True,
            clipping_colors={"NaN": PAD_COLOR}, xlabel="settlement period", ylabel="settlement date",
            xticks=[1, 10, 20, 30, 40, 46, 48, 50], tools=["hover"], responsive=False,
            line_color="white", line_width=0.5, framewise=True)

    VIEWS = ("consumption", "take", "counts", "grid")

    def view(self, name: str) -> pn.viewable.Viewable:
        """One view of the current selection, static, for a report section.

        Parameters
        ----------
        name : str
            ``"consumption"``, ``"take"`` (plot and residual note), ``"counts"`` or ``"grid"``.
        """
        # no toolbar: these views are for reading and printing, the dashboard is for exploring
        views = {
            "consumption": lambda: pn.pane.HoloViews(self.consumption_plot().opts(toolbar=None),
                                                     width=self.width),
            "take": lambda: pn.Column(pn.pane.HoloViews(self.take_plot().opts(toolbar=None), width=self.width),
                                      self.take_note()),
            "counts": self.count_table,
            "grid": lambda: pn.pane.HoloViews(self.heatmap().opts(toolbar=None), width=self.width),
        }
        if name not in views:
            raise ValueError(f"MarketDashboard.view: {name!r} is not one of {list(views)}")
        return views[name]()

    def __panel__(self) -> pn.Column:
        widgets = pn.Row(
            pn.widgets.Select.from_param(self.param.gsp_group, name="GSP group", width=160),
            pn.widgets.RadioButtonGroup.from_param(self.param.segment, name="Market segment", width=240),
        )
        # DynamicMaps update the Bokeh glyphs in place when a widget changes; re-rendering whole
        # figures instead makes the static export (every widget state embedded) 3-4 times slower
        return pn.Column(
            pn.pane.Markdown(f"### Market of scenario `{self.market.scenario_name}`", width=self.width),
            widgets,
            pn.pane.HoloViews(hv.DynamicMap(self.consumption_plot), width=self.width),
            pn.pane.HoloViews(hv.DynamicMap(self.take_plot), width=self.width),
            pn.panel(self.take_note, width=self.width, height=60),
            pn.pane.Markdown("**MPANs by segment × GSP group**", width=self.width),
            self.count_table(),
            pn.pane.HoloViews(hv.DynamicMap(self.heatmap), width=self.width),
        )


def _series_label(series: str) -> str:
    return "export (AE)" if series == EXPORT else f"{series} {SEGMENT_NAMES.get(series, series)}"
