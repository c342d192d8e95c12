"""The unmetered supplies dashboard: switching across the year, energy per period, settled methods vs truth.

Numbers (pure functions, no file I/O; the notebook ``unmetered_supplies`` records them and the tests check
them):

- :func:`switching_year` -- switch-on and switch-off local clock times of each night of a year, passive
  (sunset/sunrise + the regime's offsets) and a clear-sky photocell of the regime's lux levels;
- :func:`annual_hours_table` -- annual equivalent full-power burning hours per regime and location;
- :func:`day_profiles` -- energy per settlement period of 1 kW of circuit load on a winter day, a summer
  day and both clock-change days (46 and 50 periods);
- :func:`method_series`, :func:`method_errors` -- settled energy of each equivalent meter method against
  the truth, per GSP group and period, and their errors;
- :func:`source_table`, :func:`findings_table`, :func:`ums_checks`, :func:`check_table`.

:class:`UmsDashboard` shows them with three classic Select widgets (location, switch regime, method), so
it exports to static HTML with every state embedded (:func:`tomlib.dashboards.save_dashboard`).
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
import xarray as xr

from tomlib import calendar as cal
from tomlib import cube, reference
from tomlib import market as market_mod
from tomlib.services import ums
from tomlib.services import ums_switching as sw
from tomlib.services.ums_truth import UmsSettings

__all__ = [
    "DAY_LABELS",
    "METHODS",
    "UmsDashboard",
    "annual_hours_table",
    "check_table",
    "constructed_period_kwh",
    "daily_table",
    "day_profiles",
    "findings_table",
    "method_errors",
    "method_series",
    "sample_days",
    "settle_methods",
    "source_table",
    "switching_year",
    "ums_checks",
    "ums_dashboard",
    "ums_mpan_counts",
    "ums_truth",
]

DAY_LABELS = ("winter", "summer", "spring clock change", "autumn clock change")
DAY_COLORS = {"winter": "#1f77b4", "summer": "#ff7f0e", "spring clock change": "#2ca02c",
              "autumn clock change": "#d62728"}
SERIES_COLORS = {"truth": "#222222", "passive": "#ff7f0e", "pecu": "#1f77b4", "cms": "#2ca02c",
                 "registered": "#9467bd"}
SWITCH_COLORS = {"passive": "#ff7f0e", "photocell (clear sky)": "#1f77b4"}
#: Equivalent meter methods settled side by side; ``registered`` is each MPAN's own method.
METHODS = ("registered", "passive", "pecu", "cms")


# ------------------------------------------------------------------------------------------------
# numbers (pure functions)


def ums_mpan_counts(scenario: Any, default_per_gsp: int) -> dict[str, int]:
    """UMS MPANs per GSP group: the scenario's ``segments.unmetered`` share of its MPANs, else a default.

    Parameters
    ----------
    scenario : Scenario
    default_per_gsp : int
        Used for every GSP group when the scenario's unmetered share is 0.
    """
    share = float(scenario.segments.unmetered)
    if share > 0:
        return {g: max(1, round(share * int(n))) for g, n in scenario.mpans.items()}
    return {g: int(default_per_gsp) for g in scenario.gsp_groups}


def ums_truth(scenario: Any, market: Any = None, default_per_gsp: int = 20) -> ums.UmsTruth:
    """The unmetered supplies of a market, or, for a market without any, UMS truth made from the scenario.

    Parameters
    ----------
    scenario : Scenario
    market : tomlib.market.Market, optional
        Its ``ums`` is used when it has one.
    default_per_gsp : int
        UMS MPANs per GSP group when the scenario's unmetered share is 0 (:func:`ums_mpan_counts`).
    """
    truth = getattr(market, "ums", None)
    if truth is not None:
        return truth
    times = cal.time_axis(scenario.first_date, scenario.last_date)
    return ums.generate_ums_truth(scenario, reference.gsp_groups(), times, market_mod.stream(scenario.seed, "unmetered"),
                                  ums_mpan_counts(scenario, default_per_gsp))


def settle_methods(truth: ums.UmsTruth, scenario: Any, methods: tuple[str, ...] = METHODS,
                   days_after: int = 30) -> dict[str, Any]:
    """Settle the scenario's days with each equivalent meter method, as of ``days_after`` the last day.

    Returns
    -------
    dict
        Method -> :class:`~tomlib.services.processing.SegmentResult` (run ``RF``).
    """
    as_of = cal.to_utc(scenario.last_date + pd.Timedelta(days=days_after), 1)[0]
    return {m: ums.settle_segment(truth, as_of, run="RF", settlement_dates=scenario.settlement_dates,
                                  config={"method": m}) for m in methods}


def ums_dashboard(truth: ums.UmsTruth, results: Mapping[str, Any], locations: Any, year: int,
                  **selection: Any) -> UmsDashboard:
    """The :class:`UmsDashboard` of settled methods: switching and day profiles of every switch regime
    at ``locations`` (GSP groups) over ``year``, the methods against the truth.

    Parameters
    ----------
    truth : UmsTruth
    results : Mapping
        From :func:`settle_methods`.
    locations : sequence of str
        GSP groups of the switching and day views.
    year : int
        Calendar year of the switching view.
    **selection
        ``location``, ``regime``, ``method``, ``width`` (:class:`UmsDashboard` parameters).
    """
    return UmsDashboard(switching=switching_year(locations, list(ums.switch_regimes().index), year),
                        profiles=day_profiles(locations, year), series=method_series(truth, results),
                        errors=method_errors(truth, results), **selection)


def sample_days(year: int) -> dict[str, pd.Timestamp]:
    """A winter day (15 Jan), a summer day (21 Jun) and the two clock-change days of ``year``."""
    days = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")
    n = np.asarray(cal.periods_in_day(days))
    return {"winter": pd.Timestamp(f"{year}-01-15"), "summer": pd.Timestamp(f"{year}-06-21"),
            "spring clock change": days[n == 46][0], "autumn clock change": days[n == 50][0]}


def _local_hours(t: np.ndarray) -> np.ndarray:
    local = pd.DatetimeIndex(t).tz_localize("UTC").tz_convert(cal.TZ).tz_localize(None)
    return ((local - local.normalize()) / pd.Timedelta(hours=1)).to_numpy(dtype=float)


def switching_year(locations, regime_ids, year: int, regimes: pd.DataFrame | None = None,
                   settings: UmsSettings | None = None) -> pd.DataFrame:
    """Switch-on and switch-off local clock times of every night of a year.

    Parameters
    ----------
    locations : sequence of str
        GSP groups (their representative points).
    regime_ids : sequence of str
        Switch regimes; photocell regimes get dusk/dawn times, fixed ones their clock times,
        continuous ones none.
    year : int
    regimes : DataFrame, optional
        Switch regime table (default the shipped one).
    settings : UmsSettings, optional
        Twilight illuminance model of the clear-sky photocell.

    Returns
    -------
    DataFrame
        Columns ``gsp_group``, ``switch_regime``, ``method`` (``passive``, ``photocell (clear sky)``;
        ``clock`` for fixed regimes), ``night`` (local date of the evening), ``on_h``, ``off_h`` (local
        clock hours of switch-on at dusk and switch-off at dawn [h]).
    """
    regimes = regimes if regimes is not None else ums.switch_regimes()
    settings = settings or UmsSettings()
    nights = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")
    table = reference.gsp_groups()
    dec_dusk = sw.solar_declination(nights)
    dec_dawn = sw.solar_declination(nights + pd.Timedelta(days=1))
    parts = []
    for g in locations:  # a couple of GSP groups
        lat, lon = table.loc[g, ["latitude", "longitude"]].to_numpy(dtype=float)
        _, sunset = sw.sun_times(lat, lon, nights)
        sunrise, _ = sw.sun_times(lat, lon, nights + pd.Timedelta(days=1))
        for r in regime_ids:  # a handful of regimes
            reg = regimes.loc[r]
            if reg["kind"] == "continuous":
                continue
            if reg["kind"] == "fixed":
                on, off = sw.fixed_segments(nights, int(reg["clock_on_min"]), int(reg["clock_off_min"]))
                methods = {"clock": (on, off)}
            else:
                methods = {"passive": ums.passive_switching(reg, lat, lon, nights),
                           "photocell (clear sky)": sw.photocell_times(
                               lat, sunset, sunrise, dec_dusk, dec_dawn, float(reg["on_lux"]), float(reg["off_lux"]),
                               settings.sunset_lux, settings.twilight_slope)}
            for name, (on, off) in methods.items():
                parts.append(pd.DataFrame({"gsp_group": g, "switch_regime": r, "method": name, "night": nights,
                                           "on_h": _local_hours(on), "off_h": _local_hours(off)}))
    return pd.concat(parts, ignore_index=True)


def annual_hours_table(locations, year: int, regimes: pd.DataFrame | None = None,
                       settings: UmsSettings | None = None) -> pd.DataFrame:
    """Annual equivalent full-power burning hours of every regime at each location [h/year].

    Parameters
    ----------
    locations : sequence of str
        GSP groups.
    year : int
    regimes : DataFrame, optional
    settings : UmsSettings, optional
        Twilight model of the clear-sky photocell.

    Returns
    -------
    DataFrame
        Index ``switch_regime``; columns ``kind``, ``description``, per GSP group ``<g>`` (passive) and
        ``<g> photocell`` (a clear-sky photocell of the regime's lux levels; the same as passive for
        clock regimes), and ``table`` (the regime table's ``annual_hours``, used by the certificate).
    """
    regimes = regimes if regimes is not None else ums.switch_regimes()
    settings = settings or UmsSettings()
    table = reference.gsp_groups()
    times = cal.time_axis(pd.Timestamp(f"{year}-01-01"), pd.Timestamp(f"{year}-12-31"))
    nights = sw.nights_of(times)
    dec = sw.solar_declination(nights), sw.solar_declination(nights + pd.Timedelta(days=1))
    out = regimes[["kind", "description"]].copy()
    for g in locations:  # a couple of GSP groups
        lat, lon = table.loc[g, ["latitude", "longitude"]].to_numpy(dtype=float)
        _, sunset = sw.sun_times(lat, lon, nights)
        sunrise, _ = sw.sun_times(lat, lon, nights + pd.Timedelta(days=1))
        passive, photocell = [], []
        for r in regimes.index:  # a handful of regimes
            reg = regimes.loc[r]
            passive.append(ums.regime_minutes(reg, times, lat, lon).sum() / 60.0)
            if reg["kind"] in ums.PHOTOCELL_KINDS:
                dusk, dawn = sw.photocell_times(lat, sunset, sunrise, *dec, float(reg["on_lux"]), float(reg["off_lux"]),
                                                settings.sunset_lux, settings.twilight_slope)
                photocell.append(ums.regime_minutes(reg, times, lat, lon, dusk, dawn).sum() / 60.0)
            else:
                photocell.append(passive[-1])
        out[g] = passive
        out[f"{g} photocell"] = photocell
    out["table"] = regimes["annual_hours"]
    return out


def day_profiles(locations, year: int, regimes: pd.DataFrame | None = None) -> pd.DataFrame:
    """Passive energy per settlement period of 1 kW of circuit load on the days of :func:`sample_days`.

    Returns
    -------
    DataFrame
        Columns ``gsp_group``, ``switch_regime``, ``day`` (:data:`DAY_LABELS`), ``settlement_date``,
        ``settlement_period`` and ``kwh_per_kw`` [kWh per period per kW of circuit watts].
    """
    regimes = regimes if regimes is not None else ums.switch_regimes()
    table = reference.gsp_groups()
    parts = []
    for label, day in sample_days(year).items():  # four days
        times = cal.period_starts(day)
        for g in locations:
            lat, lon = table.loc[g, ["latitude", "longitude"]].to_numpy(dtype=float)
            for r in regimes.index:  # a handful of regimes
                minutes = ums.regime_minutes(regimes.loc[r], times, lat, lon)
                parts.append(pd.DataFrame({"gsp_group": g, "switch_regime": r, "day": label, "settlement_date": day,
                                           "settlement_period": np.arange(1, len(times) + 1),
                                           "kwh_per_kw": minutes / 60.0}))
    return pd.concat(parts, ignore_index=True)


def daily_table(profiles: pd.DataFrame, location: str) -> pd.DataFrame:
    """Energy of 1 kW per regime on each sample day at a location, and the day's periods.

    Returns
    -------
    DataFrame
        Index ``switch_regime``; one column per day of :data:`DAY_LABELS` [kWh per kW per day].
    """
    sel = profiles[profiles["gsp_group"] == location]
    table = sel.pivot_table(index="switch_regime", columns="day", values="kwh_per_kw", aggfunc="sum", sort=False)
    n = sel.groupby("day")["settlement_period"].max()
    table.columns = [f"{d} ({n[d]} SP)" for d in table.columns]
    return table[[c for d in DAY_LABELS for c in table.columns if c.startswith(d + " (")]]


def constructed_period_kwh() -> float:
    """The constructed test of mhhs-domain.md §5 through the equivalent meter: 10 lamps of 70 W lit for the
    whole of the period 20:00-20:30 (regime 901, 19:00 to 09:00) on 15 January 2026 in London [kWh]."""
    inv = pd.DataFrame({"mpan": "1200000000019", "item_id": "L1", "charge_code": "4210066500001",
                        "switch_regime": "901", "quantity": 10, "gsp_group": "_C", "location": "test"}, index=[0])
    codes = ums.charge_codes()
    codes.loc["4210066500001", "control"] = "timeswitch"
    times = cal.period_starts(pd.Timestamp("2026-01-15"))
    em = ums.equivalent_meter(inv, times, methods="passive", config=ums.UmsConfig(charge_codes=codes))
    return float(em.energy[0, times.get_loc(pd.Timestamp("2026-01-15 20:00"))])


def _by_group(meters: xr.Dataset | xr.DataArray, values: np.ndarray, groups: list[str]) -> np.ndarray:
    g = np.asarray(meters["gsp_group"].values, dtype=str)
    onehot = (g[:, None] == np.asarray(groups)[None, :]).astype(float)
    return onehot.T @ np.nan_to_num(values)


def method_series(truth: ums.UmsTruth, results: Mapping[str, Any]) -> xr.DataArray:
    """Settled energy of each method and the truth, summed per GSP group.

    Parameters
    ----------
    truth : UmsTruth
    results : Mapping[str, SegmentResult]
        Method name -> result of :func:`tomlib.services.ums.settle_segment` (same settlement days).

    Returns
    -------
    DataArray
        [kWh per period], dims (gsp_group, series, time); series ``truth`` then the methods.
    """
    first = next(iter(results.values())).meters
    times = first["time"].values
    groups = sorted(set(np.asarray(first["gsp_group"].values, dtype=str)))
    standing = truth.standing.reindex(np.asarray(truth.energy["mpan"].values, dtype=str))
    t = truth.energy.sel(time=times)
    rows = [_by_group(xr.Dataset(coords={"gsp_group": ("mpan", standing["gsp_group"].to_numpy(dtype=str))}),
                      t.values, groups)]
    rows += [_by_group(r.meters, r.meters["energy"].values, groups) for r in results.values()]
    data = np.stack(rows, axis=1)
    return cube.add_settlement_coords(xr.DataArray(
        data, dims=("gsp_group", "series", "time"),
        coords={"gsp_group": groups, "series": ["truth", *results], "time": times},
        name="energy", attrs={"units": "kWh", "long_name": "UMS energy, truth and settled by method"}))


def method_errors(truth: ums.UmsTruth, results: Mapping[str, Any]) -> pd.DataFrame:
    """Error of each method against the truth over the settled MPAN-periods.

    Returns
    -------
    DataFrame
        Index method; columns ``settled_kwh``, ``truth_kwh`` [kWh], ``error_pct`` (total settled / truth
        - 1) [%], ``invalid_lines_pct`` (the true energy of equipment on refused inventory lines, which
        no method settles, as % of the truth), ``error_valid_lines_pct`` (settled / (truth - that) - 1:
        the method's own error, with lamp failures and wrong quantities) [%], ``mae_pct`` (mean
        |settled - truth| per MPAN-period over the mean truth per MPAN-period) [%] and
        ``estimated_share`` (share of MPAN-periods not coded A) [-].
    """
    rows = {}
    for name, r in results.items():
        m = r.meters
        sel = {"mpan": m["mpan"].values, "time": m["time"].values}
        t = truth.energy.sel(**sel).values
        lost = truth.invalid_line_energy.sel(**sel).values if truth.invalid_line_energy is not None else 0 * t
        e = m["energy"].values
        ok = np.isfinite(e)
        rows[name] = {"settled_kwh": float(e[ok].sum()), "truth_kwh": float(t[ok].sum()),
                      "error_pct": 100.0 * (e[ok].sum() / t[ok].sum() - 1.0),
                      "invalid_lines_pct": 100.0 * float(lost[ok].sum() / t[ok].sum()),
                      "error_valid_lines_pct": 100.0 * (e[ok].sum() / (t[ok].sum() - lost[ok].sum()) - 1.0),
                      "mae_pct": 100.0 * float(np.abs(e - t)[ok].mean() / t[ok].mean()),
                      "estimated_share": float((m["quality"].values != cube.QUALITY_CODES["A"]).mean())}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("method")


def source_table(result) -> pd.DataFrame:
    """MPAN-periods of a settled result by source and DI-083 quality / DI-076 reason."""
    m = result.meters
    frame = pd.DataFrame({"source": np.array(ums.SOURCES)[np.asarray(m["ums_source"].values).ravel()],
                          "quality": cube.quality_label(np.asarray(m["quality"].values).ravel()),
                          "estimation_reason": cube.estimation_reason_label(
                              np.asarray(m["estimation_reason"].values).ravel())})
    return frame.value_counts().rename("mpan_periods").reset_index().sort_values(["source", "quality"],
                                                                                   ignore_index=True)


def findings_table(truth: ums.UmsTruth) -> pd.DataFrame:
    """Validation findings of the UMSO on the declared inventory, by finding, with the planted count."""
    inv = truth.inventory
    found = ums.validate_inventory(inv[list(ums.INVENTORY_COLUMNS)])
    counts = found["finding"].value_counts().rename("found")
    planted = inv.loc[inv["injected_error"] != "", "injected_error"].value_counts().rename("planted")
    table = pd.concat([counts, planted], axis=1).fillna(0).astype(int).rename_axis("finding")
    table["meaning"] = [ums.FINDINGS.get(f, "") for f in table.index]
    return table


def ums_checks(truth: ums.UmsTruth, results: Mapping[str, Any], annual: pd.DataFrame) -> dict[str, Any]:
    """Key figures and invariants (JSON-ready) of a UMS run.

    Parameters
    ----------
    truth : UmsTruth
    results : Mapping[str, SegmentResult]
        Settled results by method.
    annual : DataFrame
        From :func:`annual_hours_table`.
    """
    e = truth.energy
    days = pd.DatetimeIndex(pd.unique(e["settlement_date"].values))
    found = pd.Series(e["settlement_date"].values).value_counts().reindex(days).to_numpy()
    planted = int((truth.inventory["injected_error"] != "").sum())
    any_result = next(iter(results.values()))
    certificate = ums.ums_certificate(truth.declared_inventory()[list(ums.INVENTORY_COLUMNS)])
    return {
        "n_ums_mpans": int(e.sizes["mpan"]),
        "n_inventory_lines": len(truth.inventory),
        "n_planted_findings": planted,
        "n_rejected_lines": len(any_result.rejected),
        "inventory_in_minus_out": float(any_result.checks["inventory lines in minus out"]),
        "n_negative_true_energy": int((e.values < 0).sum()),
        "n_nan_true_energy": int(np.isnan(e.values).sum()),
        "periods_per_day": [int(x) for x in found],
        "periods_per_day_expected": [int(x) for x in np.asarray(cal.periods_in_day(days))],
        "n_missing_settled": int(sum((r.meters["quality"].values == cube.MISSING).sum() for r in results.values())),
        "certificate_matches_standing": bool(np.allclose(
            certificate["annual_consumption"].reindex(truth.standing.index).to_numpy(),
            truth.standing["annual_consumption"].to_numpy())),
        "annual_hours_821": {str(g): float(annual.loc["821", g]) for g in annual.columns
                             if str(g).startswith("_") and " " not in str(g)},
    }


def check_table(checks: Mapping[str, Any], constructed_kwh: float) -> pd.DataFrame:
    """The invariants as a table (check, value, expected, ok).

    Parameters
    ----------
    checks : Mapping
        From :func:`ums_checks`.
    constructed_kwh : float
        Energy of 10 x 70 W fully on for one period as computed by the equivalent meter [kWh].
    """
    hours = checks["annual_hours_821"]
    rows = [
        ("inventory lines: in − valid − rejected", checks["inventory_in_minus_out"], 0,
         checks["inventory_in_minus_out"] == 0),
        ("rejected inventory lines = planted findings", checks["n_rejected_lines"], checks["n_planted_findings"],
         checks["n_rejected_lines"] == checks["n_planted_findings"]),
        ("true energy: NaN or negative values", checks["n_nan_true_energy"] + checks["n_negative_true_energy"], 0,
         checks["n_nan_true_energy"] + checks["n_negative_true_energy"] == 0),
        ("settlement periods per day", ", ".join(map(str, checks["periods_per_day"])),
         ", ".join(map(str, checks["periods_per_day_expected"])),
         checks["periods_per_day"] == checks["periods_per_day_expected"]),
        ("settled MPAN-periods without a value", checks["n_missing_settled"], 0, checks["n_missing_settled"] == 0),
        ("certificate annual consumption = standing data", checks["certificate_matches_standing"], True,
         checks["certificate_matches_standing"]),
        ("10 × 70 W on for a whole period [kWh]", f"{constructed_kwh:.6f}", "0.350000",
         abs(constructed_kwh - 0.35) < 1e-9),
        ("dusk-to-dawn (821) annual hours in 3,900..4,400 h", ", ".join(f"{g}: {h:,.0f}" for g, h in hours.items()),
         "3,900..4,400", all(3900 <= h <= 4400 for h in hours.values())),
    ]
    return pd.DataFrame(rows, columns=["check", "value", "expected", "ok"]).astype({"value": str, "expected": str})


# ------------------------------------------------------------------------------------------------
# the dashboard


class UmsDashboard(pn.viewable.Viewer):
    """Unmetered supplies: switching across the year, energy per period, passive vs PECU vs truth.

    Examples
    --------
    ``UmsDashboard(switching=..., profiles=..., series=..., errors=...)`` displays in a notebook;
    :func:`tomlib.dashboards.save_dashboard` writes it as one offline HTML file.

    Parameters
    ----------
    switching : DataFrame
        From :func:`switching_year`.
    profiles : DataFrame
        From :func:`day_profiles`.
    series : DataArray
        From :func:`method_series`.
    errors : DataFrame
        From :func:`method_errors`.
    location, regime : str
        Initial selection (a GSP group, a switch regime); the dashboard's two widgets.
    method : str
        The method drawn thick among all methods of ``series`` (not a widget).
    width : int
        Plot width [px].
    """

    switching = param.DataFrame(doc="Switch-on/off local times per night")
    profiles = param.DataFrame(doc="Energy per period of 1 kW on four days")
    series = param.ClassSelector(class_=xr.DataArray, doc="Truth and settled energy per GSP group")
    errors = param.DataFrame(doc="Errors of the methods against the truth")
    location = param.Selector(objects=[], doc="GSP group")
    regime = param.Selector(objects=[], doc="Switch regime")
    method = param.Selector(objects=[], doc="Equivalent meter method")
    width = param.Integer(default=620, bounds=(300, 1600), doc="Plot width [px]")

    def __init__(self, **params):
        super().__init__(**params)
        for name in ("switching", "profiles", "series", "errors"):
            if getattr(self, name) is None:
                raise ValueError(f"UmsDashboard: {name}= is required")
        self.param.location.objects = sorted(set(self.profiles["gsp_group"]))
        self.param.regime.objects = list(dict.fromkeys(self.profiles["switch_regime"]))
        self.param.method.objects = [s for s in map(str, self.series["series"].values) if s != "truth"]
        for name, default in (("location", self.param.location.objects[0]),
                              ("regime", self.param.regime.objects[0]), ("method", self.param.method.objects[0])):
            if getattr(self, name) is None:
                setattr(self, name, default)
            elif getattr(self, name) not in self.param[name].objects:
                raise ValueError(f"UmsDashboard: {name}={getattr(self, name)!r} is not one of "
                                 f"{self.param[name].objects}")
        self._regimes = ums.switch_regimes()

    def _regime_title(self) -> str:
        return f"{self.regime} ({self._regimes.loc[self.regime, 'description']})" \
            if self.regime in self._regimes.index else self.regime

    @param.depends("location", "regime")
    def switching_plot(self) -> hv.Overlay:
        """Local clock time of switch-on (evening) and switch-off (morning) through the year."""
        df = self.switching
        sel = df[(df["gsp_group"] == self.location) & (df["switch_regime"] == self.regime)]
        curves = []
        for method, color in {**SWITCH_COLORS, "clock": "#555555"}.items():
            part = sel[sel["method"] == method]
            x = part["night"].to_numpy() if len(part) else df["night"].iloc[:1].to_numpy()
            for col, dash in (("on_h", "solid"), ("off_h", "dashed")):
                y = part[col].to_numpy() if len(part) else np.full(x.size, np.nan)
                label = f"{method}: {'on' if col == 'on_h' else 'off'}"
                curves.append(hv.Curve((x, y), "night", "local clock time [h]", label=label).opts(
                    color=color, line_dash=dash, framewise=True))
        return hv.Overlay(curves).opts(
            title=f"Switching across the year — {self.location}, regime {self.regime}", width=self.width,
            height=300, legend_position="bottom", legend_cols=3, show_grid=True, ylim=(0, 24),
            yticks=list(range(0, 25, 3)), responsive=False)

    @param.depends("location", "regime")
    def day_plot(self) -> hv.Overlay:
        """Energy per settlement period of 1 kW on a winter, a summer and both clock-change days."""
        df = self.profiles
        sel = df[(df["gsp_group"] == self.location) & (df["switch_regime"] == self.regime)]
        curves = [hv.Curve((part["settlement_period"].to_numpy(), part["kwh_per_kw"].to_numpy()),
                           "settlement_period", "kWh per kW",
                           label=f"{label} ({len(part)} SP)").opts(color=DAY_COLORS[label], framewise=True)
                  for label, part in ((lab, sel[sel["day"] == lab]) for lab in DAY_LABELS)]
        return hv.Overlay(curves).opts(
            title=f"Energy per period of 1 kW — {self.location}, regime {self.regime}", width=self.width,
            height=280, legend_position="bottom", legend_cols=2, show_grid=True, xlim=(1, 50), ylim=(0, 0.52),
            xlabel="settlement period", ylabel="energy [kWh per period per kW]", responsive=False)

    @param.depends("location")
    def methods_plot(self) -> hv.Overlay:
        """Truth and every method's settled energy, summed over the location's UMS MPANs.

        The chosen ``method`` is drawn thick; passive and PECU are always shown against the truth.
        """
        da = self.series.sel(gsp_group=self.location)
        t = da["time"].values
        curves = [hv.Curve((t, da.sel(series=s).values), "time", "kWh", label=s).opts(
            color=SERIES_COLORS.get(s, "#8c564b"), line_width=2.5 if s in ("truth", self.method) else 1.2,
            line_dash="solid" if s in ("truth", self.method) else "dashed", framewise=True)
            for s in map(str, da["series"].values)]
        return hv.Overlay(curves).opts(
            title=f"Settled vs truth — {self.location}", width=self.width, height=300,
            xlabel="time (UTC)", ylabel="energy [kWh per period]", legend_position="bottom", legend_cols=5,
            show_grid=True, responsive=False)

    @param.depends("location")
    def difference_plot(self) -> hv.Overlay:
        """Settled minus true energy of every method, summed over the location's UMS MPANs."""
        da = self.series.sel(gsp_group=self.location)
        t = da["time"].values
        truth = da.sel(series="truth").values
        curves = [hv.Curve((t, da.sel(series=s).values - truth), "time", "kWh", label=s).opts(
            color=SERIES_COLORS.get(s, "#8c564b"), line_width=2.0 if s == self.method else 1.0, framewise=True)
            for s in map(str, da["series"].values) if s != "truth"]
        return (hv.Overlay(curves) * hv.HLine(0).opts(color="#222222", line_width=1)).opts(
            title=f"Settled − true energy — {self.location}", width=self.width, height=260,
            xlabel="time (UTC)", ylabel="settled − true [kWh per period]", legend_position="bottom", legend_cols=4,
            show_grid=True, responsive=False)

    @param.depends("location")
    def error_note(self) -> pn.pane.Markdown:
        """Each method's error at the selected location."""
        da = self.series.sel(gsp_group=self.location)
        truth = float(da.sel(series="truth").sum())
        parts = [f"{s} {100 * (float(da.sel(series=s).sum()) / truth - 1):+.2f} %"
                 for s in map(str, da["series"].values) if s != "truth"]
        return pn.pane.Markdown(f"Settled − true energy at {self.location} ({truth:,.0f} kWh true): "
                                + ", ".join(parts) + ".", width=self.width, height=60)

    VIEWS = ("switching", "day", "methods", "errors")

    def view(self, name: str) -> pn.viewable.Viewable:
        """One static view of the current selection (``switching``, ``day``, ``methods``, ``errors``)."""
        views = {
            "switching": lambda: pn.pane.HoloViews(self.switching_plot().opts(toolbar=None), width=self.width),
            "day": lambda: pn.pane.HoloViews(self.day_plot().opts(toolbar=None), width=self.width),
            "methods": lambda: pn.Column(pn.pane.HoloViews(self.methods_plot().opts(toolbar=None), width=self.width),
                                         pn.pane.HoloViews(self.difference_plot().opts(toolbar=None), width=self.width),
                                         self.error_note()),
            "errors": lambda: pn.pane.DataFrame(self.errors.round(3), width=self.width),
        }
        if name not in views:
            raise ValueError(f"UmsDashboard.view: {name!r} is not one of {list(views)}")
        return views[name]()

    def __panel__(self) -> pn.Column:
        # two widgets: every (location, regime) state is embedded in the static export, and the
        # methods are all drawn at once rather than multiplying the states by a third widget
        widgets = pn.Row(
            pn.widgets.Select.from_param(self.param.location, name="Location (GSP group)", width=180),
            pn.widgets.Select.from_param(self.param.regime, name="Switch regime", width=180),
        )
        return pn.Column(
            pn.pane.Markdown("### Unmetered supplies", width=self.width),
            widgets,
            pn.pane.HoloViews(hv.DynamicMap(self.switching_plot), width=self.width),
            pn.pane.HoloViews(hv.DynamicMap(self.day_plot), width=self.width),
            pn.pane.HoloViews(hv.DynamicMap(self.methods_plot), width=self.width),
            pn.pane.HoloViews(hv.DynamicMap(self.difference_plot), width=self.width),
            pn.panel(self.error_note, width=self.width, height=60),
            pn.pane.DataFrame(self.errors.round(3), width=self.width),
        )
