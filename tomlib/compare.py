"""Two scenarios side by side: what differs in their settings and in their settlement error by run.

A typical question: how much does settlement error fall, run by run, if DCC retrieval succeeds 99.5 %
of the time instead of 95 %? :func:`compare` settles both scenarios in memory
(:func:`tomlib.settlement.settle_all` with ``save=False``) and lines up
:func:`tomlib.settlement.convergence` of each. ``notebooks/compare_scenarios.ipynb`` is the thin
report over it.

A knob acts first on its own service, and only what that service delivers late enough reaches a
settlement run. So the comparison also lines up the Retrieval Service's own outcome
(:func:`retrieval_outcome`): with the shipped ``retry_days: 3`` a day that fails its first attempt is
almost always collected by a retry before the Interim Information run's as-of date, so 95 % and
99.5 % settle the same runs identically and differ in retries and in how much data is held the day
after (93 % against 99 % of DCC MPAN-days on the tiny scenario); with ``retry_days: 0`` the failed
days are never collected and the runs differ too.

Examples
--------
>>> from tomlib.scenario import load_scenario                                    # doctest: +SKIP
>>> base = load_scenario("demo")
>>> cmp = compare(base.with_overrides({"retrieval.success_rate": 0.95, "name": "dcc95"}),
...               base.with_overrides({"retrieval.success_rate": 0.995, "name": "dcc995"}), runs=["SF", "RF"])
>>> cmp.errors, cmp.difference                                                   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ERROR_COLUMNS", "RETRIEVAL_COLUMNS", "Comparison", "compare", "comparison_records",
           "flatten_settings", "labels", "load_pair", "retrieval_outcome", "settings_diff", "shares_market"]

#: Columns of :func:`tomlib.settlement.convergence` compared (units: [kWh] for errors, [-] for shares).
ERROR_COLUMNS = ("abs_error", "relative_abs_error", "actual_share", "default_share")
#: Columns of :func:`retrieval_outcome` (shares of DCC MPAN-days [-], delay [days]).
RETRIEVAL_COLUMNS = ("mpan_days", "first_attempt_share", "retried_share", "gave_up_share", "held_next_day_share",
                     "mean_delay_days")


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The outcome of :func:`compare`.

    Attributes
    ----------
    names : tuple of str
        Labels of the two scenarios (``a``, ``b``), as used in the tables' columns.
    settings : DataFrame
        Settings that differ: index dotted key, columns the two labels.
    errors : DataFrame
        Index run (timetable order); columns (metric, label) with ``metric`` in
        :data:`ERROR_COLUMNS`: absolute allocation error [kWh], relative error [-], actual and
        default shares of settled MPAN-periods [-].
    difference : DataFrame
        Index run; ``b - a`` of each metric.
    results : dict
        Label -> :class:`tomlib.settlement.SettlementRuns` (in memory).
    retrieval : DataFrame
        Index the two labels, then ``b - a``; columns :data:`RETRIEVAL_COLUMNS`
        (:func:`retrieval_outcome` of each scenario's smart segment).
    """

    names: tuple[str, str]
    settings: pd.DataFrame
    errors: pd.DataFrame
    difference: pd.DataFrame
    results: dict[str, Any]
    retrieval: pd.DataFrame | None = None


def flatten_settings(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted key -> value of nested scenario settings (lists stay whole: suppliers compare as one value)."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_settings(value, f"{dotted}."))
        else:
            out[dotted] = value
    return out


def settings_diff(a: Any, b: Any, names: tuple[str, str] = ("a", "b")) -> pd.DataFrame:
    """The settings two scenarios do not share.

    Parameters
    ----------
    a, b : tomlib.scenario.Scenario
    names : (str, str)
        Column labels.

    Returns
    -------
    DataFrame
        Index ``setting`` (dotted key, sorted); one column per scenario; values as in the YAML
        (``None`` where a key exists in one scenario only).
    """
    fa, fb = flatten_settings(a.to_dict()), flatten_settings(b.to_dict())
    keys = sorted(k for k in fa.keys() | fb.keys() if fa.get(k) != fb.get(k))
    df = pd.DataFrame({names[0]: [fa.get(k) for k in keys], names[1]: [fb.get(k) for k in keys]},
                      index=pd.Index(keys, name="setting"), dtype=object)
    return df


def load_pair(a: Any, b: Any, overrides_a: Mapping[str, Any] | None = None,
              overrides_b: Mapping[str, Any] | None = None) -> tuple[Any, Any]:
    """Two scenarios from names/paths/objects, each with its overrides applied.

    Parameters
    ----------
    a, b : str, path or Scenario
        Scenario names in ``datasets/scenarios``, YAML paths, or Scenario objects.
    overrides_a, overrides_b : Mapping, optional
        Dotted key -> value (:meth:`Scenario.with_overrides`), e.g. ``{"retrieval.success_rate": 0.995}``.

    Returns
    -------
    (Scenario, Scenario)

    Raises
    ------
    tomlib.scenario.ScenarioError
        If an override is invalid (the message names the key).
    """
    from tomlib.scenario import Scenario, load_scenario

    def one(spec: Any, overrides: Mapping[str, Any] | None) -> Scenario:
        scn = spec if isinstance(spec, Scenario) else load_scenario(spec)
        return scn.with_overrides(overrides) if overrides else scn

    return one(a, overrides_a), one(b, overrides_b)


#: Top-level settings the market generator does not read: scenarios differing only in these share one market.
SERVICE_SECTIONS = ("name", "description", "timetable", "retrieval", "metering", "meter_reading", "registration")


def shares_market(a: Any, b: Any) -> bool:
    """True if two scenarios differ only in service settings (:data:`SERVICE_SECTIONS`), so one
    generated market serves both."""
    return all(k.split(".", 1)[0] in SERVICE_SECTIONS for k in settings_diff(a, b).index)


def retrieval_outcome(market: Any, scenario: Any) -> pd.Series:
    """What the Retrieval Service made of a scenario's DCC-enrolled MPAN-days.

    Parameters
    ----------
    market : tomlib.market.Market
    scenario : tomlib.scenario.Scenario
        Its ``retrieval``, ``metering`` and ``meter_reading`` sections configure the smart segment.

    Returns
    -------
    Series
        Index :data:`RETRIEVAL_COLUMNS`: ``mpan_days`` (DCC-enrolled MPAN-days) [-];
        ``first_attempt_share``, ``retried_share`` (collected by a later attempt or after a
        communications failure) and ``gave_up_share`` (never collected) [-]; ``held_next_day_share``,
        the share held by the end of the day after the settlement day [-]; ``mean_delay_days``, from
        the end of the settlement day to the data's arrival, over the collected days [days].
    """
    from tomlib import calendar as cal
    from tomlib.services import processing

    days = processing.smart_inputs(market, processing.ProcessingConfig.from_scenario(scenario)).retrieval.days
    n = len(days)
    dates = pd.DatetimeIndex(days["settlement_date"])
    day_end = cal.to_utc(dates + pd.Timedelta(days=1), 1) if n else pd.DatetimeIndex([])
    delay = (pd.DatetimeIndex(days["available_at"]) - day_end) / pd.Timedelta(days=1)  # NaT: never collected
    outcome = days["outcome"].to_numpy()
    share = (lambda mask: float(np.mean(mask)) if n else float("nan"))
    return pd.Series({
        "mpan_days": n,
        "first_attempt_share": share(outcome == "first_attempt"),
        "retried_share": share(np.isin(outcome, ["retry", "backfill"])),
        "gave_up_share": share(outcome == "gave_up"),
        "held_next_day_share": share(np.asarray(delay <= 1.0)),
        "mean_delay_days": float(np.nanmean(delay)) if np.isfinite(delay).any() else float("nan"),
    }, name="retrieval")[list(RETRIEVAL_COLUMNS)]


def labels(a: Any, b: Any) -> tuple[str, str]:
    if a.name != b.name:
        return a.name, b.name
    return f"{a.name} (a)", f"{b.name} (b)"  # same name, different knobs: keep the columns apart


def compare(a: Any, b: Any, runs: Sequence[str] | None = None, settlement_dates: Any = None,
            markets: Mapping[str, Any] | None = None) -> Comparison:
    """Settle two scenarios in memory and line up their settlement error by run.

    Parameters
    ----------
    a, b : tomlib.scenario.Scenario
        The scenarios (see :func:`load_pair`).
    runs : sequence of str, optional
        Runs settled, e.g. ``["SF", "RF"]``; default every run of each scenario's timetable.
        Fewer runs keep tiny comparisons fast.
    settlement_dates : array-like, optional
        Days settled; default every day of each market.
    markets : Mapping, optional
        Label -> an already generated :class:`tomlib.market.Market`; a market is generated
        from its scenario otherwise. Two scenarios that differ only in service knobs (e.g.
        retrieval) share one generated true market, since the generator does not read those knobs.

    Returns
    -------
    Comparison

    Raises
    ------
    ValueError
        If the two scenarios settle no run in common.
    """
    from tomlib import settlement
    from tomlib.market import generate

    names = labels(a, b)
    markets = dict(markets or {})
    for label, scn in zip(names, (a, b)):  # two scenarios; one market when only service knobs differ
        if label not in markets:
            same = names[0] if label == names[1] and shares_market(a, b) else None
            markets[label] = markets[same] if same in markets else generate(scn)
    results = {label: settlement.settle_all(scn, runs, market=markets.get(label), save=False,
                                            settlement_dates=settlement_dates)
               for label, scn in zip(names, (a, b))}  # two scenarios
    conv = {label: settlement.convergence(res.reconciliation)[list(ERROR_COLUMNS)] for label, res in results.items()}
    common = [r for r in conv[names[0]].index if r in set(conv[names[1]].index)]
    if not common:
        raise ValueError(f"scenarios {names[0]!r} and {names[1]!r} settle no run in common "
                         f"({list(conv[names[0]].index)} vs {list(conv[names[1]].index)})")
    errors = pd.concat({label: c.loc[common] for label, c in conv.items()}, axis=1)
    errors = errors.swaplevel(axis=1).sort_index(axis=1, level=0, sort_remaining=False)
    errors = errors[[(m, n) for m in ERROR_COLUMNS for n in names]]
    errors.columns.names = ["metric", "scenario"]
    difference = conv[names[1]].loc[common] - conv[names[0]].loc[common]
    difference.columns.name = "metric"
    retrieval = pd.DataFrame({label: retrieval_outcome(markets[label], scn) for label, scn in zip(names, (a, b))}).T
    retrieval.loc["b - a"] = retrieval.loc[names[1]] - retrieval.loc[names[0]]
    retrieval.index.name, retrieval.columns.name = "scenario", "metric"
    return Comparison(names=names, settings=settings_diff(a, b, names), errors=errors,
                      difference=difference, results=results, retrieval=retrieval)


def comparison_records(cmp: Comparison) -> dict[str, Any]:
    """JSON-ready key figures of a comparison (what the notebook records).

    Returns
    -------
    dict
        ``scenarios`` (the two labels); ``settings_differ`` (dotted key -> [a, b]);
        ``abs_error_by_run`` (label -> run -> [kWh]); ``actual_share_by_run`` (label -> run -> [-]);
        ``error_difference_by_run`` (run -> metric -> b - a); ``runs``; ``retrieval_by_scenario``
        (label or ``"b - a"`` -> :data:`RETRIEVAL_COLUMNS` -> value).
    """
    def num(v: Any) -> float | None:
        v = float(v)
        return v if np.isfinite(v) else None

    return {
        "scenarios": list(cmp.names),
        "runs": list(cmp.errors.index),
        "settings_differ": {k: [row.iloc[0], row.iloc[1]] for k, row in cmp.settings.iterrows()},
        "abs_error_by_run": {n: {r: num(v) for r, v in cmp.errors[("abs_error", n)].items()} for n in cmp.names},
        "actual_share_by_run": {n: {r: num(v) for r, v in cmp.errors[("actual_share", n)].items()}
                                for n in cmp.names},
        "error_difference_by_run": {r: {m: num(v) for m, v in row.items()} for r, row in cmp.difference.iterrows()},
        "retrieval_by_scenario": ({} if cmp.retrieval is None else
                                  {k: {m: num(v) for m, v in row.items()} for k, row in cmp.retrieval.iterrows()}),
    }
