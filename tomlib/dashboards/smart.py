"""The smart data services dashboard: what one MPAN truly used against what each run settled, and the
actual / estimate mix by settlement run.

The four services of the smart segment -- Metering (:mod:`tomlib.services.metering`), Retrieval
(:mod:`tomlib.services.retrieval`), Meter Reading (:mod:`tomlib.services.meter_reading`) and
Processing (:mod:`tomlib.services.processing`) -- end in one meter cube per settlement run: energy
per MPAN and period with a DI-083 quality code. The dashboard shows, for one run and one MPAN
(two classic Panel widgets, so the static export embeds every state):

- the MPAN's true energy (line) and the settled values (points coloured by the estimation step
  that made them: actual, shaped daily or register advance, own history, annual consumption x load
  shape, category default);
- the share of energy and of MPAN-periods settled by each step, per run (stacked bars);
- the error of each step against the truth for the selected run.

The numbers are pure functions (:func:`quality_mix`, :func:`mpan_series`, :func:`showcase_mpans`,
:func:`service_tables`, :func:`smart_checks`); no file I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import holoviews as hv
import holoviews.plotting.bokeh
import numpy as np
import pandas as pd
import panel as pn
import param

from tomlib import cube
from tomlib.market import Market
from tomlib.services.processing import METHODS, accuracy_by_method, run_summary

__all__ = [
    "QUALITY_COLORS",
    "SmartDashboard",
    "error_table",
    "mpan_series",
    "quality_mix",
    "service_tables",
    "showcase_mpans",
    "smart_checks",
]

#: Fixed colour per estimation step, so every embedded widget state draws a step in the same colour.
QUALITY_COLORS = {"A": "#2ca02c", "ZE1": "#7f7f7f", "E2": "#17becf", "E3": "#1f77b4", "E4": "#ff7f0e", "E9": "#9467bd",
                  "E7": "#d62728"}
_LABELS = list(METHODS)


def _labels(codes: np.ndarray) -> np.ndarray:
    return cube.quality_label(np.asarray(codes))


def quality_mix(results: Mapping[str, Any], by: str = "energy") -> pd.DataFrame:
    """Share of settled energy (``by="energy"``) or of MPAN-periods (``"periods"``) per estimation step.

    Parameters
    ----------
    results : mapping run -> SegmentResult

    Returns
    -------
    DataFrame
        Index ``run`` (input order), columns the DI-083 labels of :data:`METHODS` [-]; rows sum to 1.
    """
    if by not in ("energy", "periods"):
        raise ValueError(f"quality_mix: by must be 'energy' or 'periods', got {by!r}")
    rows = {}
    for run, res in results.items():  # a handful of runs
        q = _labels(res.meters["quality"].to_numpy()).ravel()
        w = res.meters["energy"].to_numpy().ravel() if by == "energy" else np.ones(q.size)
        s = pd.Series(w).groupby(q).sum().reindex(_LABELS, fill_value=0.0)
        rows[run] = s / s.sum()
    return pd.DataFrame(rows).T.rename_axis("run")


def mpan_series(result: Any, market: Market, mpan: str) -> pd.DataFrame:
    """One MPAN's true and settled energy per period [kWh] with the quality label of each value.

    Returns
    -------
    DataFrame
        Index ``time`` (UTC); columns ``truth``, ``settled`` [kWh], ``quality`` (DI-083 label) and
        ``settlement_period``.
    """
    ds = result.meters.sel(mpan=mpan)
    times = ds["time"].to_numpy()
    return pd.DataFrame({
        "truth": market.meters["energy"].sel(mpan=mpan, time=times).to_numpy(),
        "settled": ds["energy"].to_numpy(),
        "quality": _labels(ds["quality"].to_numpy()),
        "settlement_period": ds["settlement_period"].to_numpy(),
    }, index=pd.DatetimeIndex(times, name="time"))


def showcase_mpans(result: Any, n: int = 8) -> list[str]:
    """A few MPANs that show every estimation step of a run: per estimation step (hierarchy order, then
    actual data) the MPAN with the most periods of it not picked yet, then the MPANs with the most
    estimated periods."""
    q = _labels(result.meters["quality"].to_numpy())
    mpans = result.meters["mpan"].to_numpy().astype(str)
    picked: list[str] = []
    for label in [*_LABELS[1:], _LABELS[0]]:  # six steps, estimates first
        count = (q == label).sum(axis=1)
        order = np.lexsort((mpans, -count))
        for i in order:
            if count[i] == 0:
                break
            if mpans[i] not in picked:
                picked.append(str(mpans[i]))
                break
    est = (q != "A").sum(axis=1)
    for i in np.lexsort((mpans, -est)):
        if len(picked) >= n:
            break
        if mpans[i] not in picked:
            picked.append(str(mpans[i]))
    return picked[:n]


def error_table(results: Mapping[str, Any], market: Market) -> pd.DataFrame:
    """Error of each estimation step against the truth per run (from :func:`accuracy_by_method`).

    Returns
    -------
    DataFrame
        Columns ``run``, ``quality``, ``method``, ``mpan_periods``, ``share_energy``, ``mae_pct``,
        ``bias_pct``, ``daily_mae_pct``, ``mae_kwh``, ``bias_kwh``.
    """
    cols = ["quality", "method", "mpan_periods", "share_energy", "mae_pct", "bias_pct", "daily_mae_pct",
            "mae_kwh", "bias_kwh"]
    parts = [accuracy_by_method(res, market).reset_index()[cols].assign(run=run) for run, res in results.items()]
    return pd.concat(parts, ignore_index=True)[["run", *cols]]


def service_tables(inputs: Any) -> dict[str, pd.DataFrame]:
    """What the metering, retrieval and meter reading services produced (for the notebook).

    Parameters
    ----------
    inputs
        :func:`tomlib.services.processing.smart_inputs` of the market.

    Returns
    -------
    dict of DataFrame
        ``meters`` (count by meter type, DCC enrolment and SSC), ``registers`` (by register count
        and digits), ``retrieval`` (MPAN-days by outcome), ``hh_faults`` (injected HH faults),
        ``reads`` (reads by type) and ``read_faults`` (injected read faults).
    """
    mt, rt, mr = inputs.metering, inputs.retrieval, inputs.meter_reading
    meters = mt.meters.groupby(["meter_type", "dcc_enrolled", "ssc"]).size().rename("meters").reset_index()
    per_meter = mt.registers.groupby(["mpan", "meter_id"]).agg(registers=("register_id", "size"),
                                                                digits=("digits", "first"))
    registers = per_meter.groupby(["registers", "digits"]).size().rename("meters").reset_index()
    retrieval = rt.days.groupby("outcome").agg(mpan_days=("mpan", "size"), late=("late", "sum"),
                                               comms_failure=("comms_failure", "sum")).reset_index()
    hh_faults = rt.faults.groupby("fault").agg(periods=("mpan", "size"), mpans=("mpan", "nunique")).reset_index()
    reads = mr.reads.groupby("read_type").size().rename("reads").reset_index()
    faults = mr.reads[mr.reads["fault"] != ""]
    read_faults = faults.groupby("fault").size().rename("reads").reset_index()
    return {"meters": meters, "registers": registers, "retrieval": retrieval, "hh_faults": hh_faults,
            "reads": reads, "read_faults": read_faults}


def smart_checks(results: Mapping[str, Any], market: Market) -> pd.DataFrame:
    """Invariants of the smart segment's runs, with their numbers.

    Returns
    -------
    DataFrame
        Columns ``check``, ``value``, ``ok``: per run records in = accepted + refused
        (``in_minus_out`` = 0), MPAN-periods = sum over quality codes, no period left without a
        value, every value finite and >= 0, the refused rows counted in ``checks["rejected"]``; over
        the runs, the share settled on actual data never falls and the absolute error never grows.
    """
    rows = []
    for run, res in results.items():  # a handful of runs
        c = res.checks
        e = res.meters["energy"].to_numpy()
        rows += [
            (f"{run}: records in − accepted − refused", c["in_minus_out"], c["in_minus_out"] == 0),
            (f"{run}: MPAN-periods − Σ by quality code", c["mpan_periods_in_minus_out"],
             c["mpan_periods_in_minus_out"] == 0),
            (f"{run}: MPAN-periods without a value", c["mpan_periods_MISSING"], c["mpan_periods_MISSING"] == 0),
            (f"{run}: values not finite or < 0", float((~np.isfinite(e) | (e < 0)).sum()),
             bool(np.isfinite(e).all() and (e >= 0).all())),
            (f"{run}: refused rows − checks['rejected']", float(len(res.rejected) - c["rejected"]),
             len(res.rejected) == c["rejected"]),
        ]
    summary, _ = run_summary(results, market)
    share = summary["actual_share_periods"].to_numpy()
    mae = summary["mae_pct"].to_numpy()
    rows.append(("share of MPAN-periods on actual data: last run − first run", float(share[-1] - share[0]),
                 bool(share[-1] >= share[0])))
    rows.append(("absolute error against the truth [%]: last run − first run", float(mae[-1] - mae[0]),
                 bool(mae[-1] <= mae[0] + 1e-9)))
    return pd.DataFrame(rows, columns=["check", "value", "ok"])


class SmartDashboard(pn.viewable.Viewer):
    """Truth against settled values of one MPAN, and the actual / estimate mix by run.

    Parameters
    ----------
    results : dict
        Run -> :class:`~tomlib.services.base.SegmentResult` of the smart segment
        (:func:`tomlib.services.processing.settle_run`).
    market : Market
        The market they settled (its energy is the truth).
    run : str
        Run shown first (default the last).
    mpan : str
        MPAN shown first (default the first of :func:`showcase_mpans`).
    mpans : list of str, optional
        MPANs offered (default :func:`showcase_mpans` of the last run).
    width : int
        Width of every plot [px].
    """

    results = param.Dict(doc="Run -> SegmentResult of the smart segment")
    market = param.ClassSelector(class_=Market, doc="The market settled")
    run = param.Selector(default=None, objects=[], doc="Settlement run shown")
    mpan = param.Selector(default=None, objects=[], doc="MPAN shown")
    width = param.Integer(default=620, bounds=(300, 1600), doc="Plot width [px]")

    def __init__(self, mpans: list[str] | None = None, **params):
        super().__init__(**params)
        if not self.results or self.market is None:
            raise ValueError("SmartDashboard: results= (run -> SegmentResult) and market= are required")
        runs = list(self.results)
        last = self.results[runs[-1]]
        offered = list(mpans) if mpans else showcase_mpans(last)
        known = set(last.meters["mpan"].to_numpy().astype(str))
        unknown = [m for m in offered if m not in known]
        if unknown:
            raise ValueError(f"SmartDashboard: MPAN(s) {unknown} are not smart-segment MPANs of the results")
        self.param.run.objects = runs
        self.param.mpan.objects = offered
        self.run = self.run if self.run in runs else runs[-1]
        self.mpan = self.mpan if self.mpan in offered else offered[0]
        self._mix = {by: quality_mix(self.results, by) for by in ("energy", "periods")}
        self._errors = error_table(self.results, self.market)

    @param.depends("run", "mpan")
    def mpan_plot(self) -> hv.Overlay:
        """True energy (line) and settled values (points, one colour per estimation step).

        Every step is always in the overlay (NaN where another step made the value), so the
        DynamicMap updates a fixed set of glyphs in place -- small, quick embedded widget states.
        """
        df = mpan_series(self.results[self.run], self.market, self.mpan)
        t = df.index.to_numpy()
        truth = hv.Curve((t, df["truth"].to_numpy()), "time", "kWh", label="truth").opts(
            color="#444444", line_width=1.2, framewise=True)
        points = [hv.Scatter((t, np.where(df["quality"] == q, df["settled"], np.nan)), "time", "kWh",
                             label=f"{q} {METHODS[q]}").opts(color=QUALITY_COLORS[q], size=4, framewise=True)
                  for q in _LABELS]
        mq = str(self.results[self.run].meters["measurement_quantity"].sel(mpan=self.mpan).item())
        return hv.Overlay([truth, *points]).opts(
            # the legend (8 entries, 4 rows) sits inside the height: 400 px leaves the plot ~250
            title=f"MPAN {self.mpan} ({mq}) — run {self.run}: truth vs settled", width=self.width, height=400,
            xlabel="time (UTC)", ylabel="energy [kWh per period]", legend_position="bottom", legend_cols=2,
            show_grid=True, responsive=False)

    def mix_plot(self, by: str = "energy") -> hv.Bars:
        """Stacked share of settled energy (or MPAN-periods) per estimation step and run."""
        mix = self._mix[by]
        frame = mix.reset_index().melt(id_vars="run", var_name="quality", value_name="share")
        return hv.Bars(frame, ["run", "quality"], "share").opts(
            stacked=True, width=self.width, height=260, cmap=QUALITY_COLORS, legend_position="right",
            title=f"Share of {'settled energy' if by == 'energy' else 'MPAN-periods'} by estimation step",
            ylabel="share [-]", tools=["hover"], responsive=False)

    def _error_height(self) -> int:
        """Height of the error table [px]: room for the run with the most estimation steps, so that
        the table keeps one size whichever run is selected (header rows 2, ~26 px a row)."""
        return 20 + 26 * (2 + int(self._errors.groupby("run").size().max()))

    @param.depends("run")
    def error_view(self) -> pn.pane.DataFrame:
        """Error of each estimation step against the truth in the selected run."""
        cols = ["mpan_periods", "share_energy", "mae_pct", "bias_pct", "daily_mae_pct"]
        df = self._errors[self._errors["run"] == self.run].set_index("quality")[cols]
        return pn.pane.DataFrame(df.round(3), width=self.width, height=self._error_height())

    VIEWS = ("mpan", "mix", "errors")

    def view(self, name: str) -> pn.viewable.Viewable:
        """One static view of the current selection: ``"mpan"``, ``"mix"`` or ``"errors"``."""
        # no toolbar: these views are for reading and printing, the dashboard is for exploring
        views = {"mpan": lambda: pn.pane.HoloViews(self.mpan_plot().opts(toolbar=None), width=self.width),
                 # one above the other: side by side they are twice the width of an A4 page
                 "mix": lambda: pn.pane.HoloViews((self.mix_plot("energy") + self.mix_plot("periods")).cols(1)
                                                  .opts(toolbar=None), width=self.width),
                 "errors": self.error_view}
        if name not in views:
            raise ValueError(f"SmartDashboard.view: {name!r} is not one of {list(views)}")
        return views[name]()

    def __panel__(self) -> pn.Column:
        widgets = pn.Row(
            pn.widgets.RadioButtonGroup.from_param(self.param.run, name="Settlement run", width=260),
            pn.widgets.Select.from_param(self.param.mpan, name="MPAN", width=200),
        )
        return pn.Column(
            pn.pane.Markdown(f"### Smart segment of `{self.market.scenario_name}`: truth vs settled",
                             width=self.width),
            widgets,
            pn.pane.HoloViews(hv.DynamicMap(self.mpan_plot), width=self.width),
            # Panel wraps a method's output in a fixed-size column: Bokeh wants its width AND height
            # (validation warning W-1005 FIXED_SIZING_MODE otherwise)
            pn.panel(self.error_view, width=self.width, height=self._error_height()),
            pn.pane.HoloViews(self.mix_plot("energy"), width=self.width),
            pn.pane.HoloViews(self.mix_plot("periods"), width=self.width),
        )
