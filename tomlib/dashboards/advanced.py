"""The advanced services dashboard: a site's channels, main vs check meter, estimated spans, and the
error against the truth by settlement run.

The Metering Service (Advanced, :mod:`tomlib.services.advanced_metering`) gives each site of the
Advanced segment its measurement transformers, outstation, channels and (at larger sites) a check
meter; the Advanced Data Service (:mod:`tomlib.services.advanced`) dials the outstations, converts,
validates and estimates. For one site and one run (two classic Panel widgets, so the static export
embeds every state) the dashboard shows:

- the site's channels (AI, AE [kWh]; RI, RE [kvarh]) as converted with the MTDs the data service
  held at the run's last as-of instant -- a wrong CT ratio scales them all;
- the main and the check meter's active import as converted, with the days the validation refused
  one of them (shaded);
- the true energy against the settled values, coloured by quality code, with the estimated spans
  shaded;
- the error against the truth by run, for the site and for the whole segment.

The numbers are pure functions (:func:`site_series`, :func:`spans`, :func:`showcase_sites`,
:func:`error_by_run`, :func:`service_tables`, :func:`advanced_checks`); no file I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import holoviews as hv
import holoviews.plotting.bokeh  # registers the bokeh backend, so .opts works outside a notebook
import numpy as np
import pandas as pd
import panel as pn
import param

from tomlib import cube
from tomlib.market import Market
from tomlib.services.advanced import FLAGS, METHODS, REASONS, AdvancedInputs, run_summary, site_errors

__all__ = [
    "CHANNEL_COLORS",
    "QUALITY_COLORS",
    "AdvancedDashboard",
    "advanced_checks",
    "advanced_records",
    "error_by_run",
    "run_as_of",
    "service_tables",
    "showcase_sites",
    "site_series",
    "spans",
]

#: Fixed colours, so every embedded widget state draws a series in the same colour.
QUALITY_COLORS = {"A1": "#2ca02c", "A2": "#17becf", "EA1": "#ff7f0e", "EA2": "#9467bd"}
CHANNEL_COLORS = {
    "main AI": "#1f77b4",
    "main AE": "#8c564b",
    "main RI": "#e377c2",
    "main RE": "#bcbd22",
    "check AI": "#ff7f0e",
}
METER_COLORS = {"main": "#1f77b4", "check": "#ff7f0e"}


def run_as_of(result: Any) -> pd.Timestamp:
    """The last as-of instant of a run's result (``meters.attrs["as_of"]``, a comma-separated list)."""
    text = str(result.meters.attrs.get("as_of", ""))
    if not text:
        raise ValueError("the result's meters carry no attrs['as_of']")
    return max(pd.Timestamp(t.strip()) for t in text.split(","))


def spans(mask, times) -> pd.DataFrame:
    """Contiguous runs of True periods as time spans.

    Parameters
    ----------
    mask : array-like of bool (n_time,)
    times : array-like of datetime64
        UTC period starts (contiguous).

    Returns
    -------
    DataFrame
        ``start``, ``end`` (UTC, end exclusive), ``periods``.
    """
    m = np.asarray(mask, dtype=bool)
    t = np.asarray(times, dtype="datetime64[ns]")
    edges = np.diff(np.concatenate([[0], m.astype(np.int8), [0]]))
    s, e = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    ends = np.append(t, t[-1] + np.timedelta64(30, "m")) if t.size else t
    return pd.DataFrame({"start": t[s], "end": ends[e], "periods": (e - s).astype(np.int64)})


def site_series(result: Any, market: Market, mpan: str) -> pd.DataFrame:
    """One site in one run, per period.

    Returns
    -------
    DataFrame
        Index ``time`` (UTC); ``truth``, ``settled``, ``main``, ``check`` [kWh], ``quality`` (DI-083
        label), ``main_reason`` (rule that refused the main value, "" none), ``flags`` (bits of
        :data:`tomlib.services.advanced.FLAGS`).
    """
    m = result.meters.sel(mpan=str(mpan))
    times = m["time"].to_numpy()
    return pd.DataFrame(
        {
            "truth": market.meters["energy"].sel(mpan=str(mpan), time=times).to_numpy(),
            "settled": m["energy"].to_numpy(),
            "main": m["main_energy"].to_numpy(),
            "check": m["check_energy"].to_numpy(),
            "quality": cube.quality_label(m["quality"].to_numpy()).astype(str),
            "main_reason": np.asarray(REASONS, dtype=object)[m["main_reason"].to_numpy().astype(int)].astype(
                str
            ),
            "flag_bits": m["flags"].to_numpy(),
        },
        index=pd.DatetimeIndex(times, name="time"),
    )


def showcase_sites(inputs: AdvancedInputs, results: Mapping[str, Any], n: int = 8) -> list[str]:
    """Sites worth a look: the wrong-CT-ratio site, phase failures (main, check), gaps, spikes, zero runs,
    the most estimated site of the first run, then the largest sites, up to ``n``."""
    f = inputs.metering.faults
    picks: list[str] = []
    for fault, role in (
        ("wrong_ct_ratio", "main"),
        ("phase_failure", "main"),
        ("phase_failure", "check"),
        ("gap", "main"),
        ("spike", "main"),
        ("zero_run", "main"),
        ("gap", "check"),
    ):
        sel = f[(f["fault"] == fault) & (f["role"] == role)]
        picks += [m for m in sel["mpan"].to_numpy(dtype=str)[:1] if m not in picks]
    first = next(iter(results.values())).meters
    est = np.isin(first["quality"].to_numpy(), [cube.QUALITY_CODES["EA1"], cube.QUALITY_CODES["EA2"]]).sum(
        axis=1
    )
    mpans = first["mpan"].to_numpy().astype(str)
    if est.max(initial=0) > 0:
        m = mpans[int(np.argmax(est))]
        picks += [m] if m not in picks else []
    order = np.argsort(-first["annual_consumption"].to_numpy())
    picks += [m for m in mpans[order] if m not in picks]
    return picks[:n]


def error_by_run(results: Mapping[str, Any], market: Market, mpans=None) -> pd.DataFrame:
    """Error of the settled energy against the truth per run: the segment, and each site asked for.

    Returns
    -------
    DataFrame
        Rows (``run``, ``what``) with ``what`` "segment" or an MPAN; ``settled_kwh``, ``true_kwh``,
        ``error_kwh``, ``error_pct`` (bias) [%] and, for the segment, ``mae_pct`` [%].
    """
    seg = run_summary(results, market)
    rows = pd.DataFrame(
        {
            "settled_kwh": seg["settled_kwh"],
            "true_kwh": seg["true_kwh"],
            "error_kwh": seg["error_kwh"],
            "error_pct": seg["bias_pct"],
            "mae_pct": seg["mae_pct"],
        }
    )
    rows["what"] = "segment"
    parts = [rows.reset_index()]
    if mpans is not None and len(mpans):
        site = site_errors(results, market, mpans).reset_index().rename(columns={"mpan": "what"})
        parts.append(site[["run", "what", "settled_kwh", "true_kwh", "error_kwh", "error_pct"]])
    return pd.concat(parts, ignore_index=True).set_index(["run", "what"])


def service_tables(inputs: AdvancedInputs) -> dict[str, pd.DataFrame]:
    """What the Metering Service and the retrieval did, as report tables.

    Returns
    -------
    dict
        ``sites`` (count and mean multiplier by connection type and check meter), ``channels`` (the
        channels of the first site), ``retrieval`` (site-days by outcome, comms failures, late),
        ``faults`` (injected faults by meter and kind: events, sites), ``mtd_versions`` (MTD changes
        after commissioning).
    """
    mt, rt = inputs.metering, inputs.retrieval
    sites = (
        mt.sites.groupby(["connection_type", "code_of_practice", "has_check_meter"])
        .agg(
            sites=("mpan", "size"),
            mean_max_demand_kw=("max_demand_kw", "mean"),
            ct_primary_a=("ct_primary_a", "median"),
            multiplier=("multiplier", "median"),
        )
        .reset_index()
    )
    first = mt.mpans[0] if mt.mpans.size else ""
    channels = mt.channels[mt.channels["mpan"] == first].reset_index(drop=True)
    retrieval = (
        rt.days.groupby("outcome")
        .agg(site_days=("mpan", "size"), comms_failure=("comms_failure", "sum"), late=("late", "sum"))
        .reset_index()
    )
    faults = (
        mt.faults.groupby(["role", "fault"])
        .agg(events=("mpan", "size"), sites=("mpan", "nunique"))
        .reset_index()
    )
    versions = mt.ratios[mt.ratios["effective_from"].notna()].reset_index(drop=True)
    return {
        "sites": sites,
        "channels": channels,
        "retrieval": retrieval,
        "faults": faults,
        "mtd_versions": versions,
    }


def advanced_checks(results: Mapping[str, Any], market: Market, tolerance_kwh: float = 1e-6) -> pd.DataFrame:
    """Invariants of the Advanced segment's runs, with their numbers.

    Returns
    -------
    DataFrame
        Columns ``check``, ``value``, ``ok``: per run, main-meter records in = settled (A1) +
        refused, the same in kWh (energy in = energy settled + energy refused, to ``tolerance_kwh``),
        check-meter records in = settled (A2) + refused + standby, MPAN-periods = sum over quality
        codes, no period without a value, every value finite and >= 0, refused rows = the counts in
        ``checks``; over the runs, the absolute error never grows.
    """
    rows = []
    for run, res in results.items():  # a handful of runs
        c = res.checks
        e = res.meters["energy"].to_numpy()
        rows += [
            (f"{run}: main records in − A1 − refused", c["in_minus_out"], c["in_minus_out"] == 0),
            (
                f"{run}: energy in − energy settled (A1) − energy refused [kWh]",
                c["energy_in_minus_out [kWh]"],
                abs(c["energy_in_minus_out [kWh]"]) <= tolerance_kwh * max(1.0, c["energy_in [kWh]"]),
            ),
            (
                f"{run}: check records in − A2 − refused − standby",
                c["check_in_minus_out"],
                c["check_in_minus_out"] == 0,
            ),
            (
                f"{run}: MPAN-periods − Σ by quality code",
                c["mpan_periods_in_minus_out"],
                c["mpan_periods_in_minus_out"] == 0,
            ),
            (
                f"{run}: MPAN-periods without a value",
                c["mpan_periods_MISSING"],
                c["mpan_periods_MISSING"] == 0,
            ),
            (
                f"{run}: values not finite or < 0",
                float((~np.isfinite(e) | (e < 0)).sum()),
                bool(np.isfinite(e).all() and (e >= 0).all()),
            ),
            (
                f"{run}: refused rows − checks (main + check)",
                float(len(res.rejected) - c["rejected"] - c["check_rejected"]),
                len(res.rejected) == c["rejected"] + c["check_rejected"],
            ),
        ]
    summary = run_summary(results, market)
    mae = summary["mae_pct"].to_numpy()
    rows.append(
        (
            "absolute error against the truth [%]: last run − first run",
            float(mae[-1] - mae[0]),
            bool(mae[-1] <= mae[0] + 1e-9),
        )
    )
    return pd.DataFrame(rows, columns=["check", "value", "ok"])


def advanced_records(results: Mapping[str, Any], market: Market, inputs: AdvancedInputs) -> dict[str, Any]:
    """Key figures of the runs, JSON-ready, for a notebook to record.

    Returns
    -------
    dict
        ``runs``; ``n_sites``, ``n_check_meters``; ``periods_per_day`` (ISO date -> periods);
        ``faults`` ("role fault" -> events); ``ct_fault_mpan`` ("" without the fault);
        ``bias_pct_by_run``, ``mae_pct_by_run`` (segment) [%]; ``ct_site_error_pct_by_run`` [%];
        ``share_by_run`` (run -> quality code -> share of MPAN-periods) [-]; ``rejected_by_reason``
        (run -> "source reason" -> records); ``checks`` (run -> the service's checks).
    """
    summary = run_summary(results, market)
    f = inputs.metering.faults
    ct = f.loc[f["fault"] == "wrong_ct_ratio", "mpan"].to_numpy(dtype=str)
    first = next(iter(results.values())).meters
    dates = pd.DatetimeIndex(first["settlement_date"].to_numpy())
    per_day = pd.Series(1, index=dates).groupby(level=0).size()
    out: dict[str, Any] = {
        "runs": list(results),
        "n_sites": int(inputs.metering.mpans.size),
        "n_check_meters": int(inputs.metering.sites["has_check_meter"].sum()),
        "periods_per_day": {f"{d:%Y-%m-%d}": int(n) for d, n in per_day.items()},
        "faults": {f"{r} {k}": int(n) for (r, k), n in f.groupby(["role", "fault"]).size().items()},
        "ct_fault_mpan": str(ct[0]) if ct.size else "",
        "bias_pct_by_run": summary["bias_pct"].to_dict(),
        "mae_pct_by_run": summary["mae_pct"].to_dict(),
        "share_by_run": {r: {k: float(summary.loc[r, f"share_{k}"]) for k in METHODS} for r in summary.index},
        "rejected_by_reason": {
            r: {f"{s} {k}": int(n) for (s, k), n in res.rejected.groupby(["source", "reason"]).size().items()}
            for r, res in results.items()
        },
        "checks": {r: dict(res.checks) for r, res in results.items()},
    }
    if ct.size:
        site = site_errors(results, market, ct[:1])
        out["ct_site_error_pct_by_run"] = {r: float(v) for (r, _), v in site["error_pct"].items()}
    else:
        out["ct_site_error_pct_by_run"] = {}
    return out


# ------------------------------------------------------------------------------------------------
# the dashboard


def _shade(mask: np.ndarray, times: np.ndarray, label: str, color: str, alpha: float) -> hv.VSpans:
    """Shaded time spans; typed as datetimes even when empty, so linked time axes stay datetimes."""
    s = spans(mask, times)
    frame = pd.DataFrame(
        {"time": s["start"].astype("datetime64[ns]"), "time_end": s["end"].astype("datetime64[ns]")}
    )
    return hv.VSpans(frame, kdims=["time", "time_end"], label=label).opts(color=color, alpha=alpha)


class AdvancedDashboard(pn.viewable.Viewer):
    """A site's channels, main vs check, settled vs true, and the error by run.

    Parameters
    ----------
    results : dict
        Run -> :class:`~tomlib.services.base.SegmentResult` of the Advanced segment
        (:func:`tomlib.services.advanced.settle_run`), in run order.
    market : Market
        The market they settled (its energy is the truth).
    inputs : AdvancedInputs
        The metering and retrieval behind the results (:func:`tomlib.services.advanced.advanced_inputs`).
    run : str
        Run shown first (default the first).
    mpan : str
        Site shown first (default the first of :func:`showcase_sites`).
    mpans : list of str, optional
        Sites offered (default :func:`showcase_sites`).
    width : int
        Width of every plot [px].
    """

    results = param.Dict(doc="Run -> SegmentResult of the Advanced segment")
    market = param.ClassSelector(class_=Market, doc="The market settled")
    inputs = param.ClassSelector(class_=AdvancedInputs, doc="Metering and retrieval of the segment")
    run = param.Selector(default=None, objects=[], doc="Settlement run shown")
    mpan = param.Selector(default=None, objects=[], doc="Site shown")
    width = param.Integer(default=620, bounds=(300, 1600), doc="Plot width [px]")

    def __init__(self, mpans: list[str] | None = None, **params):
        super().__init__(**params)
        if not self.results or self.market is None or self.inputs is None:
            raise ValueError(
                "AdvancedDashboard: results= (run -> SegmentResult), market= and inputs= are required"
            )
        runs = list(self.results)
        offered = [str(m) for m in (mpans if mpans else showcase_sites(self.inputs, self.results))]
        known = set(self.inputs.metering.mpans)
        unknown = [m for m in offered if m not in known]
        if unknown or not offered:
            raise ValueError(
                f"AdvancedDashboard: MPAN(s) {unknown or offered} are not advanced sites of the inputs"
            )
        self.param.run.objects = runs
        self.param.mpan.objects = offered
        self.run = self.run if self.run in runs else runs[0]
        self.mpan = self.mpan if self.mpan in offered else offered[0]
        self._as_of = {r: run_as_of(res) for r, res in self.results.items()}
        self._errors = error_by_run(self.results, self.market, offered)

    # -- views ----------------------------------------------------------------------------------

    def _opts(self, title: str, ylabel: str, height: int = 260) -> dict:
        return {
            "title": title,
            "width": self.width,
            "height": height,
            "xlabel": "time (UTC)",
            "ylabel": ylabel,
            "legend_position": "bottom",
            "legend_cols": 3,
            "show_grid": True,
            "responsive": False,
            # Panel's axis linking compares range ends across plots and fails on time axes whose
            # range a state leaves partly undefined (all-NaN series); each plot keeps its own
            "shared_axes": False,
        }

    @param.depends("run", "mpan")
    def channel_plot(self) -> hv.Overlay:
        """Every channel of the site as converted with the MTDs held at the run's last as-of instant."""
        df = self.inputs.metering.channel_values(self.mpan, as_of=self._as_of[self.run])
        t = df.index.to_numpy()
        curves = [
            hv.Curve(
                (t, df[c].to_numpy() if c in df else np.full(t.size, np.nan)), "time", "value", label=c
            ).opts(color=color, line_width=1.2, framewise=True)
            for c, color in CHANNEL_COLORS.items()
        ]
        return hv.Overlay(curves).opts(
            **self._opts(
                f"Channels of {self.mpan} as converted at {self._as_of[self.run]:%Y-%m-%d %H:%M} "
                f"(run {self.run})",
                "kWh or kvarh per period",
            )
        )

    @param.depends("run", "mpan")
    def meter_plot(self) -> hv.Overlay:
        """Main and check meter active import; shaded: days a meter's values were refused or flagged."""
        df = site_series(self.results[self.run], self.market, self.mpan)
        t = df.index.to_numpy()
        refused = (df["main_reason"] == "main_check_disagreement") | (
            (df["flag_bits"] & FLAGS["check_disagrees"]) > 0
        )
        stepped = (df["flag_bits"] & FLAGS["step_change"]) > 0
        shade = [
            _shade(mask.to_numpy(), t, label, color, 0.2)
            for mask, label, color in (
                (refused, "main and check disagree", "#d62728"),
                (stepped, "step change (flagged)", "#9467bd"),
            )
        ]
        curves = [
            hv.Curve((t, df[role].to_numpy()), "time", "kWh", label=f"{role} meter").opts(
                color=METER_COLORS[role], line_width=1.2, framewise=True
            )
            for role in ("main", "check")
        ]
        return hv.Overlay([*shade, *curves]).opts(
            **self._opts(f"Main vs check meter — {self.mpan}, run {self.run}", "AI [kWh per period]")
        )

    @param.depends("run", "mpan")
    def settled_plot(self) -> hv.Overlay:
        """True energy (line) and settled values (points by quality code); shaded: estimated spans."""
        df = site_series(self.results[self.run], self.market, self.mpan)
        t = df.index.to_numpy()
        est = df["quality"].isin(["EA1", "EA2"]).to_numpy()
        shade = _shade(est, t, "estimated", "#ffbb78", 0.35)
        truth = hv.Curve((t, df["truth"].to_numpy()), "time", "kWh", label="truth").opts(
            color="#444444", line_width=1.2, framewise=True
        )
        points = [
            hv.Scatter(
                (t, np.where(df["quality"] == q, df["settled"], np.nan)),
                "time",
                "kWh",
                label=f"{q} {METHODS[q]}",
            ).opts(color=QUALITY_COLORS[q], size=3, framewise=True)
            for q in METHODS
        ]
        # the quality codes' long labels in one column: three side by side are wider than an A4 page
        return hv.Overlay([shade, truth, *points]).opts(
            **{**self._opts(f"Truth vs settled — {self.mpan}, run {self.run}", "kWh per period", height=400),
               "legend_cols": 1}
        )

    @param.depends("mpan")
    def error_plot(self) -> hv.Bars:
        """Error of the site's settled energy against the truth, per run [%]."""
        df = self._errors.xs(self.mpan, level="what").reset_index()
        return hv.Bars(df, "run", "error_pct").opts(
            title=f"Settled − true energy of {self.mpan} by run [%]",
            width=self.width,
            height=220,
            color="#1f77b4",
            ylabel="error [%]",
            tools=["hover"],
            show_grid=True,
            responsive=False,
            framewise=True,
            shared_axes=False,
        )

    def _table_height(self) -> int:
        # header rows plus one row per run for the segment and one for the site [px]
        return 80 + 2 * 30 * len(self.results)

    @param.depends("mpan")
    def error_view(self) -> pn.pane.DataFrame:
        """The site's and the segment's error by run."""
        df = self._errors.reset_index()
        df = df[df["what"].isin(["segment", self.mpan])].set_index(["run", "what"])
        return pn.pane.DataFrame(df.round(3), width=self.width, height=self._table_height())

    VIEWS = ("channels", "meters", "settled", "errors")

    def view(self, name: str) -> pn.viewable.Viewable:
        """One static view of the current selection.

        Parameters
        ----------
        name : str
            ``"channels"``, ``"meters"``, ``"settled"`` or ``"errors"``.
        """
        views = {
            "channels": lambda: pn.pane.HoloViews(self.channel_plot().opts(toolbar=None), width=self.width),
            "meters": lambda: pn.pane.HoloViews(self.meter_plot().opts(toolbar=None), width=self.width),
            "settled": lambda: pn.pane.HoloViews(self.settled_plot().opts(toolbar=None), width=self.width),
            "errors": lambda: pn.Column(
                pn.pane.HoloViews(self.error_plot().opts(toolbar=None), width=self.width), self.error_view()
            ),
        }
        if name not in views:
            raise ValueError(f"AdvancedDashboard.view: {name!r} is not one of {list(views)}")
        return views[name]()

    def __panel__(self) -> pn.Column:
        widgets = pn.Row(
            pn.widgets.RadioButtonGroup.from_param(self.param.run, name="Settlement run", width=280),
            pn.widgets.Select.from_param(self.param.mpan, name="Site (MPAN)", width=200),
        )
        return pn.Column(
            pn.pane.Markdown(
                f"### Advanced segment of `{self.market.scenario_name}`: a site by run", width=self.width
            ),
            widgets,
            pn.pane.HoloViews(hv.DynamicMap(self.channel_plot), width=self.width),
            pn.pane.HoloViews(hv.DynamicMap(self.meter_plot), width=self.width),
            pn.pane.HoloViews(hv.DynamicMap(self.settled_plot), width=self.width),
            pn.pane.HoloViews(hv.DynamicMap(self.error_plot), width=self.width),
            # a fixed height too: Panel wraps the pane in a fixed-size column, which Bokeh wants complete
            pn.panel(self.error_view, width=self.width, height=self._table_height()),
        )
