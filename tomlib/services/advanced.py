"""Advanced Retrieval and Processing Service (ADS): outstation data to settled half hours.

The Advanced Data Service (mhhs-domain.md §2.6, ARP in the DWG TOM) dials the outstations of the
Advanced segment's sites, converts the raw channel data to energy with the Meter Technical Details
of :mod:`tomlib.services.advanced_metering`, validates it, estimates what is missing or invalid by
the BSCP502 rule and hands every MPAN x settlement period to settlement with a DI-083 quality code.
:func:`settle_segment` is the segment service of :mod:`tomlib.services.base`.

Retrieval ([INF]; :func:`retrieve_outstations`)
-----------------------------------------------
Each outstation is dialled once a UTC day, at an hour drawn from ``dial_hours_utc``; a dial
succeeds with probability ``success_rate``, never inside the site's spell of communication failure
(a share ``comms_failure_rate`` of sites, geometric length with mean ``comms_spell_mean_days``).
A successful dial collects every settlement day still stored and not yet collected, so a failed dial
only delays data, unless it is older than ``outstation_memory_days`` (then it is lost). A share
``late_data_share`` of site-days reaches settlement ``late_delay_days`` later, and a share
``redelivery_rate`` is delivered a second time the next day (duplicate records). The four
communication knobs come from the scenario's ``retrieval`` section unless ``advanced`` sets them.
``available_at`` is when the data service holds a site-day; a run with as-of instant ``as_of``
sees only data with ``available_at <= as_of``, converted with the MTD versions available then.

Validation (:func:`process`; the first failing rule names a value's reason)
---------------------------------------------------------------------------
==============================  ================================================================
rule                            a value fails when
==============================  ================================================================
negative_value, above_maximum,  the segment-neutral rules of :mod:`tomlib.services.validation`
zero_run                        (one implementation for the Smart and Advanced segments); the
                                maximum is the site's physical maximum from its CTs
                                (``AdvancedMetering.sites["max_energy"]``)
duplicate                       a second record of a period (:func:`~tomlib.services.validation.
                                screen_duplicates`, first arrival kept)
spike                           :func:`spikes`: above ``spike_factor`` x the larger of its two
                                neighbours, by at least ``spike_min_kwh``
main_check_disagreement         :func:`main_check_disagreement`: the day's main and check totals
                                differ by more than ``check_tolerance``; the meter whose day level
                                (:func:`day_levels`) is further from the site's typical level (the
                                median of the main meter's levels on the other days of the same
                                kind within 14 days) is wrong --
                                main values are refused (and the check meter's settled), or the
                                check meter's values are refused
step_change                     :func:`step_changes`: the day lies on a level reached by a step:
                                the mean daily level (:func:`day_levels`, relative to the site's
                                reference day of the same kind) of the week from a day on differs
                                from the week before by more than a factor ``1 + step_tolerance``;
                                a wrong CT ratio in the MTDs shows as such a step.
                                ``step_change_action`` "flag" keeps the data (a real change of
                                consumption looks the same; the days are reported for
                                investigation), "reject" refuses and estimates them
gap                             no value (not recorded, lost, or not yet collected): estimated,
                                not refused (there is no record)
==============================  ================================================================

Gaps and refused values are filled, first rule that gives a value wins:

=====  =================================================================================
code   value (DI-083 ADS codes; tomlib's choice [INF], the catalogue gives no meanings)
=====  =================================================================================
A1     actual, main meter
A2     actual, check meter: the main meter's value is missing or refused and the check
       meter's is valid (check-meter data settled as actual, SIR3100 / CP0873)
EA1    BSCP502 4.2.1(c),(d) (F-34): mean of the site's actual values at the same local clock half
       hour (``same_periods="clock"``; ``"settlement_period"`` matches SP numbers) on the same
       day of the week within one month before or after (days +-7, +-14, +-21, +-28), as held
       at the run's as-of instant (:func:`bscp502_estimate`)
EA2    no history: annual consumption x load shape, ``AC x LS_j / annual_total_j`` (§5 G-9) with the
       Load Shaping Service's shapes of the site's category made from the segment's actual data
       (:mod:`tomlib.services.load_shaping`), or -- ``no_history_shape="profile_class"`` -- the
       site's 1997 profile class shape scaled to its annual consumption (the legacy DPPCC rule)
=====  =================================================================================

A3, AAE1..3 and EAE1..3 are not used. The DI-076 estimation reason of an estimate: ``Invalid``
where a main value was refused, ``CommsFault`` where the site-day was not collected because dials
failed by the as-of instant, else ``Missing``.

Conservation (``SegmentResult.checks``, per run and requested days): main-meter records in =
settled as A1 + refused (``in_minus_out``), and the same in kWh (``energy_in [kWh]`` =
``energy_A1 [kWh]`` + ``energy_rejected [kWh]``); check-meter records in = settled as A2 + refused
+ standby (valid, not needed); MPAN-periods = sum over quality codes.

Accuracy against the truth: :func:`run_summary`, :func:`site_errors`. Benchmark:
:func:`bench_inputs` + :func:`process`.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from tomlib import calendar as cal
from tomlib import cube, reference
from tomlib.services import advanced_metering as am
from tomlib.services.advanced_metering import AdvancedConfig, AdvancedMetering, build_advanced_metering
from tomlib.services.base import REJECTED_COLUMNS, SegmentResult
from tomlib.services.validation import HH_REASONS, screen_duplicates, validate_hh

__all__ = [
    "FLAGS",
    "METHODS",
    "REASONS",
    "AdvancedConfig",
    "AdvancedInputs",
    "OutstationRetrieval",
    "Processed",
    "advanced_data",
    "advanced_inputs",
    "bench_inputs",
    "bscp502_estimate",
    "day_levels",
    "main_check_disagreement",
    "no_history_estimate",
    "process",
    "retrieve_outstations",
    "run_summary",
    "settle_run",
    "settle_segment",
    "site_errors",
    "spikes",
    "step_changes",
    "synthetic_market",
]

#: Quality codes the service gives and what made them.
METHODS = {
    "A1": "actual, main meter",
    "A2": "actual, check meter (main meter missing or refused)",
    "EA1": "BSCP502: same weekday, same periods, within one month",
    "EA2": "no history: annual consumption x load shape",
}
#: Reason codes of refused values: validation.HH_REASONS (same codes), then the Advanced rules.
REASONS = (*HH_REASONS, "spike", "main_check_disagreement", "step_change", "duplicate")
_R = {r: i for i, r in enumerate(REASONS)}
#: Bits of ``Processed.flags``: days kept but reported.
FLAGS = {"step_change": 1, "check_disagrees": 2}
#: Reasons each source can have (no energisation data: ``de_energised`` never applies).
_CHECKED_REASONS = {
    "main": (
        "negative_value",
        "above_maximum",
        "zero_run",
        "spike",
        "main_check_disagreement",
        "step_change",
        "duplicate",
        "conflicting_duplicate",
    ),
    "check": (
        "negative_value",
        "above_maximum",
        "zero_run",
        "spike",
        "main_check_disagreement",
        "step_change",
    ),
}
_Q = cube.QUALITY_CODES
_DAY = np.timedelta64(86_400 * 10**9, "ns")
_NAT = np.datetime64("NaT", "ns")
_WEEKDAY_KINDS = 7  # Monday..Saturday, Sunday (with bank holidays)


def _config(config) -> AdvancedConfig:
    return am._coerce(config)


def _regions(gsp_group) -> np.ndarray:
    table = reference.gsp_groups()["region"]
    g = np.asarray(gsp_group).astype(str)
    out = table.reindex(g).to_numpy()
    if pd.isna(out).any():
        raise ValueError(f"unknown GSP group {g[pd.isna(out)][0]!r}")
    return out.astype(str)


def _days(times) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
    """(settlement days, day index per period, settlement period per period) of a UTC time axis."""
    dates, sp = cal.from_utc(pd.DatetimeIndex(times))
    days, d_idx = np.unique(dates.to_numpy(), return_inverse=True)
    days = pd.DatetimeIndex(days)
    if len(days) > 1 and (np.diff(days.asi8) != _DAY.astype(np.int64)).any():
        raise ValueError("the time axis must cover consecutive settlement days")
    return days, d_idx, np.asarray(sp, dtype=np.int64)


# ------------------------------------------------------------------------------------------ retrieval


@dataclass
class OutstationRetrieval:
    """What the daily dial-ups of the outstations delivered, and when.

    Attributes
    ----------
    available_at : ndarray of datetime64[ns], (n_site, n_day)
        When the data service holds each site-day (NaT: lost, never collected).
    first_dial_at : ndarray of datetime64[ns], (n_site, n_day)
        The first dial-up after the day (from then on a missing day is a communication fault).
    comms : ndarray of bool, (n_site, n_day)
        At least one dial for the day failed.
    days : DataFrame
        One row per site-day: ``mpan``, ``settlement_date``, ``dials`` (attempts until collected),
        ``outcome`` (first_dial, redial, lost), ``comms_failure``, ``late``, ``available_at``.
    duplicates : DataFrame
        Re-delivered records of the main meter's AI channel: ``mpan``, ``row``, ``t`` (period
        index), ``time``, ``available_at``.
    spells : DataFrame
        ``mpan``, ``start``, ``end`` (UTC day starts, end exclusive) of communication failures.
    """

    available_at: np.ndarray
    first_dial_at: np.ndarray
    comms: np.ndarray
    days: pd.DataFrame
    duplicates: pd.DataFrame
    spells: pd.DataFrame
    attrs: dict[str, Any] = field(default_factory=dict)


def _hours(h) -> np.ndarray:
    """Hours [h] as timedelta64[ns], to the second."""
    return np.round(np.asarray(h) * 3600).astype(np.int64) * np.timedelta64(10**9, "ns")


def retrieve_outstations(
    metering: AdvancedMetering, config: AdvancedConfig | Any | None = None, *, seed: int | None = None
) -> OutstationRetrieval:
    """Simulate the daily dial-up of every outstation (schedule in the module docstring).

    Parameters
    ----------
    metering : AdvancedMetering
    config : AdvancedConfig, dict or Scenario, optional
        Default ``metering.config``.
    seed : int, optional
        Default ``metering.seed``.
    """
    cfg = metering.config if config is None else _config(config)
    seed = int(metering.seed if seed is None else seed)
    mpans = metering.mpans
    n = mpans.size
    days, d_idx, _ = _days(metering.times)
    n_d = len(days)
    mem = int(cfg.outstation_memory_days)
    n_a = n_d + mem + 2  # dial days 0..n_a-1 after the first settlement date
    ok = am._rng(seed, "dials").random((n, n_a)) < cfg.success_rate
    rs = am._rng(seed, "spells")
    has_spell = rs.random(n) < cfg.comms_failure_rate
    s0 = rs.integers(1, n_d + 1, n)
    s1 = s0 + rs.geometric(1.0 / cfg.comms_spell_mean_days, n)
    a = np.arange(n_a)
    ok &= ~(has_spell[:, None] & (a >= s0[:, None]) & (a < s1[:, None]))
    big = np.iinfo(np.int64).max // 4
    nxt = np.minimum.accumulate(np.where(ok, a, big)[:, ::-1], axis=1)[:, ::-1]  # next successful dial
    d = np.arange(n_d)
    collect = nxt[:, d + 1]
    lost = collect - d > mem
    hours = am._rng(seed, "dial_time").uniform(*cfg.dial_hours_utc, (n, n_a))
    rl = am._rng(seed, "late")
    late = ~lost & (rl.random((n, n_d)) < cfg.late_data_share)
    late_days = rl.integers(cfg.late_delay_days[0], cfg.late_delay_days[1] + 1, (n, n_d))
    base = days[0].to_datetime64().astype("datetime64[ns]")
    safe = np.minimum(collect, n_a - 1)
    avail = (
        base
        + safe * _DAY
        + _hours(np.take_along_axis(hours, safe, axis=1))
        + np.where(late, late_days, 0) * _DAY
    )
    avail = np.where(lost, _NAT, avail)
    first_dial = base + (d + 1)[None, :] * _DAY + _hours(hours[:, 1 : n_d + 1])
    comms = collect > d + 1

    # second deliveries of whole site-days, the day after the first
    again = ~lost & (am._rng(seed, "redelivery").random((n, n_d)) < cfg.redelivery_rate)
    r_a, d_a = np.nonzero(again)
    day_start = np.searchsorted(d_idx, np.arange(n_d))
    day_len = np.bincount(d_idx, minlength=n_d)
    rows = np.repeat(r_a, day_len[d_a])
    t = np.repeat(day_start[d_a], day_len[d_a]) + (
        np.arange(rows.size) - np.repeat(np.cumsum(day_len[d_a]) - day_len[d_a], day_len[d_a])
    )
    recorded = np.isfinite(metering.pulses["main"][rows, t]) if rows.size else np.zeros(0, dtype=bool)
    dup_avail = np.repeat(avail[r_a, d_a] + _DAY, day_len[d_a])
    duplicates = pd.DataFrame(
        {
            "mpan": pd.array(mpans[rows][recorded], dtype="str"),
            "row": rows[recorded].astype(np.int64),
            "t": t[recorded].astype(np.int64),
            "time": metering.times.to_numpy()[t[recorded]],
            "available_at": dup_avail[recorded],
        }
    )
    outcome = np.where(lost, "lost", np.where(comms, "redial", "first_dial"))
    table = pd.DataFrame(
        {
            "mpan": pd.array(np.repeat(mpans, n_d), dtype="str"),
            "settlement_date": np.tile(days.to_numpy(), n),
            "dials": (collect - d).ravel().clip(max=mem + 1).astype(np.int64),
            "outcome": pd.array(outcome.ravel().astype(str), dtype="str"),
            "comms_failure": comms.ravel(),
            "late": late.ravel(),
            "available_at": avail.ravel(),
        }
    )
    spells = pd.DataFrame(
        {
            "mpan": pd.array(mpans[has_spell], dtype="str"),
            "start": base + s0[has_spell] * _DAY,
            "end": base + s1[has_spell] * _DAY,
        }
    )
    return OutstationRetrieval(
        available_at=avail,
        first_dial_at=first_dial,
        comms=comms,
        days=table,
        duplicates=duplicates,
        spells=spells,
        attrs={
            "site_days": int(n * n_d),
            "lost_days": int(lost.sum()),
            "late_days": int(late.sum()),
            "comms_days": int(comms.sum()),
            "redelivered_days": int(again.sum()),
        },
    )


# ------------------------------------------------------------------------------------------ inputs


@dataclass
class AdvancedInputs:
    """Metering and retrieval of a market's Advanced segment (a pure function of market and config)."""

    metering: AdvancedMetering
    retrieval: OutstationRetrieval
    standing: pd.DataFrame
    config: AdvancedConfig


_CACHE: dict[tuple, tuple[weakref.ref, AdvancedInputs]] = {}


def _standing(meters: xr.Dataset) -> pd.DataFrame:
    cols = list(cube.STANDING_COORDS) + [c for c in ("profile_class",) if c in meters.coords]
    return pd.DataFrame(
        {c: meters[c].to_numpy() for c in cols},
        index=pd.Index(meters["mpan"].to_numpy().astype(str), name="mpan"),
    )


def advanced_inputs(market, config=None) -> AdvancedInputs:
    """MTDs, recorded meter data and outstation retrieval of a market's Advanced segment.

    Computed once per (market, config) and kept while the market lives: every run and as-of instant
    of the market uses the same inputs.
    """
    cfg = _config(config)
    key = (id(market), cfg)
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is market:
        return hit[1]
    mt = build_advanced_metering(market, cfg)
    rt = retrieve_outstations(mt, cfg)
    seg = market.meters["market_segment"].to_numpy().astype(str) == "A"
    standing = _standing(market.meters.isel(mpan=np.flatnonzero(seg)))
    out = AdvancedInputs(metering=mt, retrieval=rt, standing=standing, config=cfg)
    for k in [k for k, v in _CACHE.items() if v[0]() is None or len(_CACHE) >= 4]:
        del _CACHE[k]
    _CACHE[key] = (weakref.ref(market), out)
    return out


def _empty_rejected() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "mpan": pd.array([], dtype="str"),
            "time": np.array([], dtype="datetime64[ns]"),
            "field": pd.array([], dtype="str"),
            "reason": pd.array([], dtype="str"),
            "value": pd.array([], dtype="str"),
            "source": pd.array([], dtype="str"),
            "energy_kwh": np.array([], dtype=float),
        }
    )


def _rejected_rows(mpans, times, rows, cols, values, reason, source, field_name) -> pd.DataFrame:
    rows = np.asarray(rows, dtype=np.int64)
    v = np.asarray(values, dtype=float)
    return pd.DataFrame(
        {
            "mpan": pd.array(np.asarray(mpans).astype(str)[rows], dtype="str"),
            "time": np.asarray(times, dtype="datetime64[ns]")[np.asarray(cols, dtype=np.int64)],
            "field": pd.array(np.full(rows.size, field_name), dtype="str"),
            "reason": pd.array(np.broadcast_to(np.asarray(reason).astype(str), rows.shape), dtype="str"),
            "value": pd.array(np.char.mod("%.3f", v) if v.size else np.array([], dtype=str), dtype="str"),
            "source": pd.array(np.full(rows.size, source), dtype="str"),
            "energy_kwh": v,
        }
    )


def advanced_data(inputs: AdvancedInputs, as_of) -> tuple[xr.Dataset, pd.DataFrame]:
    """What the data service holds at ``as_of``: converted main and check data, duplicates screened.

    Parameters
    ----------
    inputs : AdvancedInputs
    as_of : datetime-like
        [UTC, tz-naive].

    Returns
    -------
    data : Dataset
        dims (mpan, time): ``energy`` (main meter AI [kWh], NaN = no value), ``check_energy``
        (check meter AI [kWh]), ``comms_fault`` (bool: not collected because dials failed);
        coordinates: the standing data, ``has_check_meter``, ``max_energy`` [kWh per period],
        ``settlement_date``/``settlement_period``; attrs ``as_of``.
    duplicates : DataFrame
        Refused second records (:func:`tomlib.services.validation.screen_duplicates`), columns of
        :data:`~tomlib.services.base.REJECTED_COLUMNS` plus ``source`` and ``energy_kwh``.
    """
    mt, rt = inputs.metering, inputs.retrieval
    t_as_of = np.datetime64(pd.Timestamp(as_of), "ns")
    _, d_idx, _ = _days(mt.times)
    avail = rt.available_at[:, d_idx]
    visible = ~np.isnat(avail) & (avail <= t_as_of)
    conv = mt.sites["meter_constant"].to_numpy(dtype=float)[:, None] * mt.multipliers(as_of)
    main = np.where(visible, mt.pulses["main"] * conv, np.nan)
    check = np.where(visible, mt.pulses["check"] * conv, np.nan)
    comms = ~visible & rt.comms[:, d_idx] & (rt.first_dial_at[:, d_idx] <= t_as_of)
    dups = rt.duplicates
    dups = dups[dups["available_at"].to_numpy(dtype="datetime64[ns]") <= t_as_of]
    r, t = dups["row"].to_numpy(), dups["t"].to_numpy()
    dup_e = mt.pulses["main"][r, t] * conv[r, t]
    reason, _ = screen_duplicates(
        pd.DataFrame({"energy": dup_e, "available_at": dups["available_at"].to_numpy()}),
        main[r, t],
        keep="first",
    )
    dup_rej = _rejected_rows(mt.mpans, mt.times, r, t, dup_e, reason.astype(str), "main", "energy")
    st = inputs.standing.assign(
        has_check_meter=mt.sites["has_check_meter"].to_numpy(), max_energy=mt.sites["max_energy"].to_numpy()
    )
    data = cube.meter_cube(main, mt.times, mt.mpans, st)
    data = data.drop_vars(["quality", "estimation_reason"])
    data["check_energy"] = (
        ("mpan", "time"),
        check,
        {"units": "kWh", "long_name": "check meter active import"},
    )
    data["comms_fault"] = (("mpan", "time"), comms, {"long_name": "not collected: dials failed by as_of"})
    data["energy"].attrs.update(long_name="main meter active import as converted at as_of")
    data["max_energy"].attrs.update(units="kWh", long_name="physical maximum per period")
    data.attrs["as_of"] = str(pd.Timestamp(as_of))
    return data, dup_rej


# ------------------------------------------------------------------------------------------ rules


def _nanmedian(x: np.ndarray) -> np.ndarray:
    """Median along the last axis ignoring NaN (NaN where all are NaN), by one contiguous sort:
    NumPy's nanmedian is slow on short axes and warns once per empty slice."""
    srt = np.sort(x, axis=-1)  # NaN sorts last
    count = np.isfinite(x).sum(axis=-1)
    lo = (np.maximum(count, 1) - 1) // 2
    hi = np.maximum(count, 1) // 2
    pick = np.take_along_axis(srt, np.stack([lo, hi], axis=-1), axis=-1)
    return np.where(count > 0, pick.mean(axis=-1), np.nan)


def spikes(energy: np.ndarray, factor: float = 3.0, min_excess: float = 1.0) -> np.ndarray:
    """Single-period spikes: values far above both neighbours.

    A segment-neutral HH rule (the smart processing service could adopt it beside
    :func:`tomlib.services.validation.validate_hh`).

    Parameters
    ----------
    energy : ndarray (n_mpan, n_time)
        HH values [kWh]; NaN = no value (not a neighbour).
    factor : float
        A value above ``factor`` x the larger of its neighbours t-1, t+1 ... [-]
    min_excess : float
        ... and above it by at least this much is a spike [kWh].

    Returns
    -------
    ndarray of bool, shape of ``energy``
        True at spikes; a value without a neighbour holding a value is not judged.
    """
    e = np.asarray(energy, dtype=float)
    if e.ndim != 2:
        raise ValueError(f"spikes: energy must be 2-D (mpan, time), got shape {e.shape}")
    pad = np.pad(e, ((0, 0), (1, 1)), constant_values=np.nan)
    with np.errstate(invalid="ignore"):
        ref = np.fmax(pad[:, :-2], pad[:, 2:])  # NaN only where both neighbours are
        return np.isfinite(ref) & np.isfinite(e) & (e > factor * ref) & (e - ref >= min_excess)


def _day_kind(days: pd.DatetimeIndex, regions: np.ndarray) -> np.ndarray:
    """(n_mpan, n_day) kind of day: 0..5 Monday..Saturday, 6 Sunday or bank holiday of the MPAN's region."""
    out = np.zeros((regions.size, len(days)), dtype=np.int64)
    for region in np.unique(regions):  # two regions at most
        kind = np.asarray(days.day_of_week, dtype=np.int64).copy()
        kind[np.asarray(cal.day_types(days.to_numpy(), region)).astype(str) == "bank_holiday"] = 6
        out[regions == region] = kind
    return out


def _day_sums(values: np.ndarray, d_idx: np.ndarray, n_d: int) -> np.ndarray:
    starts = np.searchsorted(d_idx, np.arange(n_d))
    return np.add.reduceat(values, starts, axis=1) if values.shape[1] else np.zeros((values.shape[0], n_d))


def day_levels(
    energy: np.ndarray, reference: np.ndarray, times, regions, *, min_periods: int = 12
) -> tuple[np.ndarray, np.ndarray]:
    """Level of each settlement day relative to the site's reference day [log ratio].

    The reference day of a site and kind of day (Monday..Saturday; Sunday and bank holidays) is
    the first day of that kind on which ``reference`` has at least ``min_periods`` positive values.
    A day's level is the median over its periods of ``log(energy_t / reference at the same local
    clock half hour of the reference day)`` -- 0 on the reference day itself, ``log(1/2)`` for a
    day converted with half the true CT ratio. The median is robust to a few odd periods.

    Parameters
    ----------
    energy : ndarray (n_mpan, n_time)
        Values judged [kWh]; NaN = not used.
    reference : ndarray (n_mpan, n_time)
        Values defining the reference days [kWh] (the main meter's valid data; ``energy`` itself
        for the main meter); NaN = not used.
    times : DatetimeIndex
        UTC period starts of consecutive whole settlement days.
    regions : array-like of str (n_mpan,)
        Bank-holiday region of each MPAN.
    min_periods : int
        Fewest comparable periods for a day's level [periods].

    Returns
    -------
    level : ndarray (n_mpan, n_day)
        NaN where the day has no reference or too few comparable periods.
    reference_day : ndarray of int (n_mpan, n_day)
        Day index of each day's reference day, -1 where none.
    """
    e = np.asarray(energy, dtype=float)
    ref = np.asarray(reference, dtype=float)
    m = e.shape[0]
    days, d_idx, sp = _days(times)
    n_d = len(days)
    k = np.asarray(cal.local_clock_index(pd.DatetimeIndex(times)), dtype=np.int64)
    good = np.isfinite(ref) & (ref > 0)
    col = d_idx * 48 + k
    _, first = np.unique(col, return_index=True)  # the repeated hour of a 50-period day counts once
    grid = np.full((m, n_d * 48), np.nan)
    grid[:, col[first]] = np.where(good, ref, np.nan)[:, first]
    ok_day = _day_sums(good.astype(np.int64), d_idx, n_d) >= int(min_periods)
    kind = _day_kind(days, np.asarray(regions).astype(str))
    ref_day = np.full((m, n_d), -1, dtype=np.int64)
    for c in range(_WEEKDAY_KINDS):  # seven kinds of day
        cand = ok_day & (kind == c)
        first_day = np.where(cand.any(axis=1), np.argmax(cand, axis=1), -1)
        ref_day = np.where(kind == c, first_day[:, None], ref_day)
    rd = ref_day[:, d_idx]
    ref_t = np.take_along_axis(grid, np.maximum(rd, 0) * 48 + k[None, :], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where((rd >= 0) & np.isfinite(e) & (e > 0) & (ref_t > 0), np.log(e / ref_t), np.nan)
    g = np.full((m, n_d * 50), np.nan)
    g[:, d_idx * 50 + sp - 1] = ratio
    g = g.reshape(m, n_d, 50)
    count = np.isfinite(g).sum(axis=2)
    level = np.where(count >= int(min_periods), _nanmedian(g), np.nan)
    return level, ref_day


def _shifted(x: np.ndarray, offsets) -> np.ndarray:
    """Stack of ``x[:, d + o]`` for each offset o (NaN outside the axis): (n_offset, n_mpan, n_day)."""
    m, n_d = x.shape
    out = np.full((len(offsets), m, n_d), np.nan)
    for i, o in enumerate(offsets):  # a handful of day offsets
        lo, hi = max(0, -o), min(n_d, n_d - o)
        if lo < hi:
            out[i, :, lo:hi] = x[:, lo + o : hi + o]
    return out


def _nan_stat(stack: np.ndarray, how: str, min_count: int = 1) -> np.ndarray:
    count = np.isfinite(stack).sum(axis=0)
    if how == "median":
        value = _nanmedian(np.moveaxis(stack, 0, -1))
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.nansum(stack, axis=0) / count
    return np.where(count >= min_count, value, np.nan)


def _same_kind_median(level: np.ndarray, kind: np.ndarray, radius: int = 14) -> np.ndarray:
    """Per day, the median level of the other days of the same kind within ``radius`` days [log ratio]."""
    offsets = [o for o in range(-radius, radius + 1) if o]
    same = _shifted(kind.astype(float), offsets) == kind[None].astype(float)
    return _nan_stat(np.where(same, _shifted(level, offsets), np.nan), "median")


def step_changes(
    level: np.ndarray, *, tolerance: float = 0.3, window: int = 7, min_days: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Step changes in the daily level of a site, and the days that sit on a changed level.

    A step is a day d where the mean level of days d .. d+window-1 differs from that of days
    d-window .. d-1 by more than ``log(1 + tolerance)`` (each window with at least ``min_days``
    levels), the difference peaks there (greater than on the three days before, not less than
    on the three after) and day d itself differs from the days before by more than that, the same
    way. Steps accumulate: a day is on a changed level where the sum of the steps
    up to it is beyond ``log(1 + tolerance) / 2`` -- a wrong CT ratio gives one step down when it
    starts and, if the data are converted again with the old MTDs, none after (the correction
    removes the step from the data). Gradual change (seasons) makes no step.

    Parameters
    ----------
    level : ndarray (n_mpan, n_day)
        :func:`day_levels` [log ratio]; NaN = no level.
    tolerance : float
        [-]
    window : int
        Days either side [days].
    min_days : int
        Fewest levels in each window [days].

    Returns
    -------
    changed : ndarray of bool (n_mpan, n_day)
    jump : ndarray (n_mpan, n_day)
        The step [log ratio] on step days, 0 elsewhere.
    """
    limit = np.log1p(tolerance)
    before = _nan_stat(_shifted(level, range(-window, 0)), "mean", min_days)
    after = _nan_stat(_shifted(level, range(window)), "mean", min_days)
    stat = after - before
    a = np.nan_to_num(np.abs(stat), nan=0.0)
    earlier = np.nan_to_num(_shifted(a, range(-3, 0)), nan=0.0).max(axis=0)
    later = np.nan_to_num(_shifted(a, range(1, 4)), nan=0.0).max(axis=0)
    # the day itself must sit on the new level, so that a step is placed on its first day
    own = level - before
    starts = np.nan_to_num(own * np.sign(stat), nan=0.0) > limit
    jump = np.where((a > limit) & (a > earlier) & (a >= later) & starts, stat, 0.0)
    return np.abs(np.cumsum(jump, axis=1)) > limit / 2, jump


def main_check_disagreement(
    main: np.ndarray, check: np.ndarray, times, tolerance: float = 0.01
) -> np.ndarray:
    """Days on which a site's main and check meters disagree.

    Parameters
    ----------
    main, check : ndarray (n_mpan, n_time)
        Valid values of the two meters [kWh]; NaN = no valid value.
    times : DatetimeIndex
        UTC period starts of consecutive whole settlement days.
    tolerance : float
        Largest relative difference of the day totals over the periods both meters hold [-].

    Returns
    -------
    ndarray of bool (n_mpan, n_day)
        ``|sum main - sum check| > tolerance x sum check``, over the periods with both values.
    """
    _, d_idx, _ = _days(times)
    n_d = int(d_idx.max()) + 1 if d_idx.size else 0
    both = np.isfinite(main) & np.isfinite(check)
    sm = _day_sums(np.where(both, main, 0.0), d_idx, n_d)
    sc = _day_sums(np.where(both, check, 0.0), d_idx, n_d)
    return (sc > 0) & (np.abs(sm - sc) > tolerance * sc)


def bscp502_estimate(
    energy: np.ndarray,
    valid: np.ndarray,
    times,
    *,
    weeks: int = 4,
    same_periods: str = "clock",
    min_values: int = 1,
) -> np.ndarray:
    """BSCP502 estimate: mean of the same periods on the same weekday within one month (F-34).

    For MPAN m and period j of day d: the mean of m's valid values in the same period on days
    d +- 7, +- 14, ..., +- 7 x ``weeks`` (a masked mean over shifted copies of a (mpan, day, slot)
    grid: one shift per weekly offset, no loop over MPANs or periods).

    Parameters
    ----------
    energy : ndarray (n_mpan, n_time) [kWh]
    valid : ndarray of bool (n_mpan, n_time)
        Values that may be used (actual data held at the as-of instant).
    times : DatetimeIndex
        UTC period starts of consecutive whole settlement days.
    weeks : int
        Weekly offsets either side (4 = within one month) [weeks].
    same_periods : {"clock", "settlement_period"}
        ``"clock"`` [INF]: the same local clock half hour, so on the 46-period day SP 3 (02:00 local)
        takes other days' 02:00 values and both periods of the repeated hour of the 50-period day
        take the 01:00/01:30 values; ``"settlement_period"``: the same SP number (the literal reading;
        SP 49/50 of a 50-period day then have no history).
    min_values : int
        Fewest history values for an estimate [-].

    Returns
    -------
    ndarray (n_mpan, n_time) [kWh], NaN where the history is too short.
    """
    if same_periods not in ("clock", "settlement_period"):
        raise ValueError(
            f"bscp502_estimate: same_periods must be 'clock' or 'settlement_period', got {same_periods!r}"
        )
    e = np.where(valid, np.asarray(energy, dtype=float), 0.0)
    m, n_t = e.shape
    days, d_idx, sp = _days(times)
    n_d = len(days)
    if same_periods == "clock":
        slot, n_s = np.asarray(cal.local_clock_index(pd.DatetimeIndex(times)), dtype=np.int64), 48
    else:
        slot, n_s = sp - 1, 50
    col = d_idx * n_s + slot
    v = np.zeros((m, n_d * n_s))
    c = np.zeros((m, n_d * n_s))
    _, first = np.unique(col, return_index=True)
    again = np.setdiff1d(np.arange(n_t), first)  # the repeated clock hour of a 50-period day
    v[:, col[first]] = e[:, first]
    c[:, col[first]] = np.asarray(valid, dtype=float)[:, first]
    v[:, col[again]] += e[:, again]
    c[:, col[again]] += np.asarray(valid, dtype=float)[:, again]
    v = v.reshape(m, n_d, n_s)
    c = c.reshape(m, n_d, n_s)
    sv = np.zeros_like(v)
    sc = np.zeros_like(c)
    for off in [s * 7 * w for w in range(1, int(weeks) + 1) for s in (-1, 1)]:  # at most 8 offsets
        if abs(off) >= n_d:
            continue
        lo, hi = max(0, -off), min(n_d, n_d - off)  # day d takes day d + off
        sv[:, lo:hi] += v[:, lo + off : hi + off]
        sc[:, lo:hi] += c[:, lo + off : hi + off]
    with np.errstate(invalid="ignore", divide="ignore"):
        est = np.where(sc >= int(min_values), sv / sc, np.nan)
    return est[:, d_idx, slot]


def no_history_estimate(
    data: xr.Dataset,
    energy: np.ndarray,
    actual: np.ndarray,
    quality: np.ndarray,
    config: AdvancedConfig | None = None,
    shapes=None,
    run: str = "SF",
) -> tuple[np.ndarray, str]:
    """Annual consumption x load shape for every MPAN and period [kWh], and where the shape came from.

    Parameters
    ----------
    data : Dataset
        From :func:`advanced_data` (standing coordinates, ``annual_consumption`` [kWh/year]).
    energy, actual, quality : ndarray (n_mpan, n_time)
        The settled actual values, where they are actual, and their DI-083 codes.
    config : AdvancedConfig, optional
        ``no_history_shape``: ``"lss"`` or ``"profile_class"``.
    shapes : Dataset or DataArray, optional
        Load shapes of :func:`tomlib.services.load_shaping.load_shapes` to use instead of making them.
    run : str
        Settlement run the shapes are made for.
    """
    cfg = config or AdvancedConfig()
    times = pd.DatetimeIndex(data["time"].to_numpy())
    ac = data["annual_consumption"].to_numpy().astype(float)
    if cfg.no_history_shape == "profile_class" and shapes is None:
        from tomlib.market import profile_class_energy

        if "profile_class" not in data.coords:
            raise ValueError(
                "no_history_estimate: no_history_shape='profile_class' needs a profile_class coordinate"
            )
        pc = data["profile_class"].to_numpy().astype(int)
        year = int(cal.from_utc(times[:1])[0][0].year)
        est = profile_class_energy(
            reference.profile_class_shapes(),
            pc,
            ac,
            _regions(data["gsp_group"].to_numpy()),
            times,
            reference_year=year,
        )
        return (
            est,
            "profile class shapes (tomlib.reference.profile_class_shapes) scaled to annual consumption",
        )
    from tomlib.services import load_shaping

    if shapes is None:
        st = pd.DataFrame(
            {c: data[c].to_numpy() for c in cube.STANDING_COORDS},
            index=pd.Index(data["mpan"].to_numpy().astype(str), name="mpan"),
        )
        settled = cube.meter_cube(
            np.where(actual, energy, np.nan),
            times,
            st.index.to_numpy(),
            st,
            quality=np.where(actual, quality, cube.MISSING).astype(np.uint8),
        )
        shapes = load_shaping.load_shapes(settled, run=run)
    ls = shapes["load_shape"] if isinstance(shapes, xr.Dataset) else shapes
    labels = load_shaping.category_of(data)
    rows = pd.Index(ls["category"].to_numpy().astype(str)).get_indexer(labels)
    if (rows < 0).any():
        raise ValueError(f"no_history_estimate: the load shapes lack category {labels[rows < 0][0]!r}")
    cols = pd.Index(np.asarray(ls["time"].values, dtype="datetime64[ns]")).get_indexer(times.to_numpy())
    if (cols < 0).any():
        raise ValueError(f"no_history_estimate: the load shapes lack the period {times[cols < 0][0]} (UTC)")
    value = np.asarray(ls.transpose("category", "time").values, dtype=float)[rows][:, cols]
    total = np.asarray(ls["annual_total"].transpose("category", "time").values, dtype=float)[rows][:, cols]
    with np.errstate(invalid="ignore", divide="ignore"):
        est = np.where(total > 0, value / total, 0.0) * ac[:, None]
    return est, str(ls.attrs.get("source", "tomlib.services.load_shaping"))


# ------------------------------------------------------------------------------------------ processing


@dataclass
class Processed:
    """Validated and estimated energy of the Advanced segment at one as-of instant.

    Attributes
    ----------
    energy : ndarray (n_mpan, n_time)
        Settled energy [kWh]; NaN only where ``quality`` is MISSING.
    quality, estimation_reason : ndarray of uint8
        DI-083 and DI-076 codes.
    main_reason, check_reason : ndarray of uint8
        Index into :data:`REASONS` of the rule that refused each main / check value (0 = none).
    flags : ndarray of uint8
        Bits of :data:`FLAGS`: values kept but reported.
    level_main, level_check : ndarray (n_mpan, n_day)
        :func:`day_levels` of the two meters [log ratio].
    disagree : ndarray of bool (n_mpan, n_day)
        :func:`main_check_disagreement`.
    rejected : DataFrame
        Every refused value (main and check), :data:`~tomlib.services.base.REJECTED_COLUMNS` plus
        ``source`` ("main" / "check") and ``energy_kwh``.
    shapes_source : str
        Where the no-history load shape came from ("" if not needed).
    """

    energy: np.ndarray
    quality: np.ndarray
    estimation_reason: np.ndarray
    main_reason: np.ndarray
    check_reason: np.ndarray
    flags: np.ndarray
    level_main: np.ndarray
    level_check: np.ndarray
    disagree: np.ndarray
    rejected: pd.DataFrame
    shapes_source: str = ""


def process(
    data: xr.Dataset, config: AdvancedConfig | Any | None = None, shapes=None, run: str = "SF"
) -> Processed:
    """Validate and estimate the Advanced segment's data held at one as-of instant (module docstring).

    Parameters
    ----------
    data : Dataset
        From :func:`advanced_data` (or :func:`bench_inputs`): ``energy``, ``check_energy``,
        ``comms_fault`` on (mpan, time) over consecutive whole settlement days, coordinates
        ``max_energy``, ``gsp_group``, ``annual_consumption`` and the standing data.
    config : AdvancedConfig, dict or Scenario, optional
    shapes : load shapes, optional
        For the no-history estimate (default: made by the Load Shaping Service when needed).
    run : str
        Settlement run (the load shapes' run).

    Returns
    -------
    Processed
    """
    cfg = _config(config)
    times = pd.DatetimeIndex(data["time"].to_numpy())
    mpans = data["mpan"].to_numpy().astype(str)
    main = data["energy"].transpose("mpan", "time").to_numpy().astype(float)
    check = data["check_energy"].transpose("mpan", "time").to_numpy().astype(float)
    comms = data["comms_fault"].transpose("mpan", "time").to_numpy().astype(bool)
    mx = data["max_energy"].to_numpy().astype(float)
    regions = _regions(data["gsp_group"].to_numpy())
    days, d_idx, _ = _days(times)

    # segment-neutral HH rules (validation.py) on both meters, then spikes
    def hh_rules(values):
        reason = validate_hh(
            values,
            max_energy=mx,
            zero_run_rows=True,
            min_zero_run=cfg.min_zero_run,
            max_zero_share=cfg.max_zero_share,
        )
        sp = spikes(np.where(reason == 0, values, np.nan), cfg.spike_factor, cfg.spike_min_kwh)
        reason[sp & (reason == 0)] = _R["spike"]
        return reason

    main_reason = hh_rules(main)
    check_reason = hh_rules(check)
    ok_m = np.isfinite(main) & (main_reason == 0)
    ok_c = np.isfinite(check) & (check_reason == 0)

    # main vs check: on a day they disagree, the meter further from the site's typical level is wrong
    vm, vc = np.where(ok_m, main, np.nan), np.where(ok_c, check, np.nan)
    level_m, _ = day_levels(vm, vm, times, regions, min_periods=cfg.step_min_periods)
    level_c, _ = day_levels(vc, vm, times, regions, min_periods=cfg.step_min_periods)
    typical = _same_kind_median(level_m, _day_kind(days, regions))
    disagree = main_check_disagreement(vm, vc, times, cfg.check_tolerance)
    main_worse = (
        disagree
        & np.isfinite(level_c)
        & (np.abs(level_c - typical) < np.abs(np.nan_to_num(level_m, nan=np.inf) - typical))
    )
    main_reason[ok_m & main_worse[:, d_idx]] = _R["main_check_disagreement"]
    check_reason[ok_c & (disagree & ~main_worse)[:, d_idx]] = _R["main_check_disagreement"]

    # step change (wrong CT ratio): flag, or refuse
    ok_m = np.isfinite(main) & (main_reason == 0)
    ok_c = np.isfinite(check) & (check_reason == 0)
    level_m, _ = day_levels(
        np.where(ok_m, main, np.nan),
        np.where(ok_m, main, np.nan),
        times,
        regions,
        min_periods=cfg.step_min_periods,
    )
    step_m = step_changes(level_m, tolerance=cfg.step_tolerance, min_days=cfg.step_min_days)[0][:, d_idx]
    step_c = step_changes(level_c, tolerance=cfg.step_tolerance, min_days=cfg.step_min_days)[0][:, d_idx]
    flags = np.zeros(main.shape, dtype=np.uint8)
    flags[ok_m & step_m] |= FLAGS["step_change"]
    flags[np.isfinite(check) & (check_reason == _R["main_check_disagreement"])] |= FLAGS["check_disagrees"]
    if cfg.step_change_action == "reject":
        main_reason[ok_m & step_m] = _R["step_change"]
        check_reason[ok_c & step_c] = _R["step_change"]
    ok_m = np.isfinite(main) & (main_reason == 0)
    ok_c = np.isfinite(check) & (check_reason == 0)

    # settle: actual main, actual check, BSCP502, annual consumption x load shape
    a1 = ok_m
    a2 = ~a1 & ok_c & bool(cfg.use_check_data)
    actual = a1 | a2
    energy = np.where(a1, main, np.where(a2, check, np.nan))
    quality = np.where(a1, _Q["A1"], np.where(a2, _Q["A2"], cube.MISSING)).astype(np.uint8)
    ea1 = bscp502_estimate(
        energy,
        actual,
        times,
        weeks=cfg.history_weeks,
        same_periods=cfg.same_periods,
        min_values=cfg.min_history_values,
    )
    fill1 = ~actual & np.isfinite(ea1)
    energy = np.where(fill1, ea1, energy)
    quality[fill1] = _Q["EA1"]
    source = ""
    rest = ~np.isfinite(energy)
    if rest.any():
        ea2, source = no_history_estimate(data, energy, actual, quality, cfg, shapes, run)
        fill2 = rest & np.isfinite(ea2)
        energy = np.where(fill2, ea2, energy)
        quality[fill2] = _Q["EA2"]
    estimated = ~actual & np.isfinite(energy)
    why = np.where(
        np.isfinite(main),
        cube.ESTIMATION_REASONS["Invalid"],
        np.where(comms, cube.ESTIMATION_REASONS["CommsFault"], cube.ESTIMATION_REASONS["Missing"]),
    )
    reason = np.where(estimated, why, 0).astype(np.uint8)

    labels = np.asarray(REASONS, dtype=object)
    parts = [_empty_rejected()]
    for values, rs, src, fname in (
        (main, main_reason, "main", "energy"),
        (check, check_reason, "check", "check_energy"),
    ):
        i, j = np.nonzero(np.isfinite(values) & (rs > 0))
        parts.append(
            _rejected_rows(mpans, times, i, j, values[i, j], labels[rs[i, j]].astype(str), src, fname)
        )
    rejected = pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True)
    return Processed(
        energy=energy,
        quality=quality,
        estimation_reason=reason,
        main_reason=main_reason,
        check_reason=check_reason,
        flags=flags,
        level_main=level_m,
        level_check=level_c,
        disagree=disagree,
        rejected=rejected,
        shapes_source=source,
    )


# ---------------------------------------------------------------------------------------- the segment service


def settle_segment(market, as_of, *, run: str, settlement_dates, config=None) -> SegmentResult:
    """The Advanced segment's settlement data for some settlement days, as known at ``as_of``.

    Parameters
    ----------
    market : tomlib.market.Market
    as_of : datetime-like
        The run's as-of instant [UTC, tz-naive]: only data with ``available_at <= as_of`` are used,
        converted with the MTD versions available then.
    run : str
        Settlement run (II, SF, R1, ...).
    settlement_dates : array-like of datetime-like
        Settlement days to return (local dates of the market's window).
    config : AdvancedConfig, dict or Scenario, optional

    Returns
    -------
    SegmentResult
        ``meters``: meter cube of the segment-A MPANs over the days' periods (``energy``,
        ``quality``, ``estimation_reason``; also ``main_energy``, ``check_energy`` [kWh] as converted,
        ``main_reason`` (index into :data:`REASONS`) and ``flags``); ``rejected``: every refused
        main and check value and duplicate record of those days (plus ``source``, ``energy_kwh``);
        ``checks``: the counts of the module docstring.
    """
    cfg = _config(config)
    t_as_of = pd.Timestamp(as_of)
    days = pd.DatetimeIndex(np.atleast_1d(np.asarray(settlement_dates, dtype="datetime64[ns]"))).normalize()
    market_days = pd.DatetimeIndex(np.unique(np.asarray(market.meters["settlement_date"].values)))
    outside = days[~days.isin(market_days)]
    if len(outside) or len(days) == 0:
        raise ValueError(
            f"settle_segment: settlement dates must be days of the market's window "
            f"({market_days[0]:%Y-%m-%d}..{market_days[-1]:%Y-%m-%d}), got "
            f"{', '.join(f'{d:%Y-%m-%d}' for d in (outside if len(outside) else days))}"
        )
    inputs = advanced_inputs(market, cfg)
    data, dup_rej = advanced_data(inputs, t_as_of)
    out = process(data, cfg, run=run)
    times = pd.DatetimeIndex(data["time"].to_numpy())
    cols = np.flatnonzero(cal.from_utc(times)[0].isin(days))
    mpans = data["mpan"].to_numpy().astype(str)
    st = inputs.standing
    meters = cube.meter_cube(
        out.energy[:, cols],
        times[cols],
        mpans,
        st,
        quality=out.quality[:, cols],
        estimation_reason=out.estimation_reason[:, cols],
    )
    for name, values, attrs in (
        (
            "main_energy",
            data["energy"].to_numpy()[:, cols],
            {"units": "kWh", "long_name": "main meter AI as converted"},
        ),
        (
            "check_energy",
            data["check_energy"].to_numpy()[:, cols],
            {"units": "kWh", "long_name": "check meter AI as converted"},
        ),
        (
            "main_reason",
            out.main_reason[:, cols],
            {
                "units": "1",
                "long_name": "validation rule refusing the main value",
                "flag_meanings": " ".join(r or "none" for r in REASONS),
            },
        ),
        (
            "flags",
            out.flags[:, cols],
            {"units": "1", "long_name": "kept but reported: 1 step change, 2 check disagrees"},
        ),
    ):
        meters[name] = (("mpan", "time"), values, attrs)
    meters.attrs.update(
        {
            "segment": "A",
            "run": str(run),
            "as_of": str(t_as_of),
            "no_history_shape": out.shapes_source,
            "quality_codes": "; ".join(f"{k} {v}" for k, v in METHODS.items()),
        }
    )
    rejected = pd.concat([_in_days(out.rejected, days), _in_days(dup_rej, days)], ignore_index=True)
    checks = _checks(data, out, rejected, cols)
    return SegmentResult(
        segment="A",
        meters=meters,
        rejected=rejected[[*REJECTED_COLUMNS, "source", "energy_kwh"]],
        checks=checks,
    )


def _in_days(records: pd.DataFrame, days: pd.DatetimeIndex) -> pd.DataFrame:
    """The records whose period lies in the settlement days."""
    if not len(records):
        return records
    record_day = cal.from_utc(pd.DatetimeIndex(records["time"].to_numpy()))[0].to_numpy()
    return records[np.isin(record_day, days.to_numpy())]


def _checks(data: xr.Dataset, out: Processed, rejected: pd.DataFrame, cols: np.ndarray) -> dict[str, float]:
    main = data["energy"].to_numpy()[:, cols]
    check = data["check_energy"].to_numpy()[:, cols]
    q = out.quality[:, cols]
    e = out.energy[:, cols]
    src = rejected["source"].to_numpy(dtype=str)
    dup = rejected["reason"].to_numpy(dtype=str) == "duplicate"
    rej_e = rejected["energy_kwh"].to_numpy(dtype=float)
    main_rej = src == "main"
    check_rej = src == "check"
    c: dict[str, float] = {}
    c["in_records"] = float(np.isfinite(main).sum() + (main_rej & dup).sum())
    c["accepted_records"] = float((q == _Q["A1"]).sum())
    c["rejected"] = float(main_rej.sum())
    c["in_minus_out"] = c["in_records"] - c["accepted_records"] - c["rejected"]
    c["energy_in [kWh]"] = float(np.nansum(main) + rej_e[main_rej & dup].sum())
    c["energy_A1 [kWh]"] = float(e[q == _Q["A1"]].sum())
    c["energy_rejected [kWh]"] = float(rej_e[main_rej].sum())
    c["energy_in_minus_out [kWh]"] = c["energy_in [kWh]"] - c["energy_A1 [kWh]"] - c["energy_rejected [kWh]"]
    standby = np.isfinite(check) & (out.check_reason[:, cols] == 0) & (q != _Q["A2"])
    c["check_in_records"] = float(np.isfinite(check).sum())
    c["check_used"] = float((q == _Q["A2"]).sum())
    c["check_rejected"] = float(check_rej.sum())
    c["check_standby"] = float(standby.sum())
    c["check_in_minus_out"] = (
        c["check_in_records"] - c["check_used"] - c["check_rejected"] - c["check_standby"]
    )
    c["check_energy_in [kWh]"] = float(np.nansum(check))
    c["check_energy_in_minus_out [kWh]"] = (
        c["check_energy_in [kWh]"]
        - float(e[q == _Q["A2"]].sum())
        - float(rej_e[check_rej].sum())
        - float(check[standby].sum())
    )
    c["mpan_periods"] = float(q.size)
    for label in (*METHODS, "MISSING"):
        sel = q == _Q[label]
        c[f"mpan_periods_{label}"] = float(sel.sum())
        c[f"energy_{label} [kWh]"] = float(np.nansum(np.where(sel, e, 0.0)))
    c["mpan_periods_in_minus_out"] = c["mpan_periods"] - sum(
        c[f"mpan_periods_{k}"] for k in (*METHODS, "MISSING")
    )
    c["gap_periods"] = float((~np.isfinite(main)).sum())
    c["comms_fault_periods"] = float(data["comms_fault"].to_numpy()[:, cols].sum())
    c["step_change_flagged_periods"] = float(((out.flags[:, cols] & FLAGS["step_change"]) > 0).sum())
    reasons = rejected["reason"].to_numpy(dtype=str)
    for source, names in _CHECKED_REASONS.items():
        for r in names:
            c[f"rejected_{source}_{r}"] = float(((src == source) & (reasons == r)).sum())
    return c


# ------------------------------------------------------------------------------------------ runs and accuracy


def settle_run(
    market,
    run: str,
    *,
    settlement_dates=None,
    config=None,
    preset: str = "mhhs",
    region: str = "england_wales",
) -> SegmentResult:
    """The Advanced segment of one settlement run, each day at its own as-of instant (one
    :func:`settle_segment` call per distinct instant, as :mod:`tomlib.settlement` does).

    Returns
    -------
    SegmentResult
        Meters of all the days (time-ordered; ``attrs["as_of"]`` lists the instants), their rejected
        records and the summed checks.
    """
    from tomlib.settlement import as_of_instants

    all_days = pd.DatetimeIndex(np.unique(np.asarray(market.meters["settlement_date"].values)))
    days = (
        all_days
        if settlement_dates is None
        else pd.DatetimeIndex(np.atleast_1d(np.asarray(settlement_dates, dtype="datetime64[ns]")))
    )
    as_of = as_of_instants(days, run, preset, region)
    parts = [
        settle_segment(
            market, pd.Timestamp(t), run=run, settlement_dates=pd.DatetimeIndex(g.index), config=config
        )
        for t, g in as_of.groupby(as_of.values)
    ]
    meters = xr.concat(
        [p.meters for p in parts], dim="time", coords="minimal", compat="override", combine_attrs="override"
    ).sortby("time")
    meters.attrs["as_of"] = ", ".join(str(pd.Timestamp(t)) for t in np.unique(as_of.values))
    checks: dict[str, float] = {}
    for p in parts:
        for k, v in p.checks.items():
            checks[k] = checks.get(k, 0.0) + v
    rejected = pd.concat([p.rejected for p in parts], ignore_index=True)
    return SegmentResult(segment="A", meters=meters, rejected=rejected, checks=checks)


def _truth(market, meters: xr.Dataset) -> np.ndarray:
    return (
        market.meters["energy"]
        .sel(mpan=meters["mpan"].values, time=meters["time"].values)
        .transpose("mpan", "time")
        .to_numpy()
    )


def run_summary(results: Mapping[str, SegmentResult], market) -> pd.DataFrame:
    """Settled energy against the truth per run.

    Returns
    -------
    DataFrame
        Index ``run``; ``settled_kwh``, ``true_kwh``, ``error_kwh``, ``bias_pct``, ``mae_pct``
        (sum |settled - true| / sum true) [%], ``share_<code>`` (share of MPAN-periods per quality
        code) [-], ``rejected`` (records), ``in_minus_out`` and ``energy_in_minus_out [kWh]``.
    """
    rows = []
    for run, res in results.items():
        e = res.meters["energy"].transpose("mpan", "time").to_numpy()
        truth = _truth(market, res.meters)
        q = res.meters["quality"].to_numpy()
        row = {
            "run": run,
            "settled_kwh": float(e.sum()),
            "true_kwh": float(truth.sum()),
            "error_kwh": float((e - truth).sum()),
            "bias_pct": 100 * float((e - truth).sum() / truth.sum()),
            "mae_pct": 100 * float(np.abs(e - truth).sum() / truth.sum()),
        }
        row.update({f"share_{k}": float((q == _Q[k]).mean()) for k in METHODS})
        row.update(
            {
                "rejected": float(len(res.rejected)),
                "in_minus_out": res.checks.get("in_minus_out", np.nan),
                "energy_in_minus_out [kWh]": res.checks.get("energy_in_minus_out [kWh]", np.nan),
            }
        )
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")


def site_errors(results: Mapping[str, SegmentResult], market, mpans) -> pd.DataFrame:
    """Settled minus true energy of some sites per run.

    Returns
    -------
    DataFrame
        Rows (``run``, ``mpan``): ``settled_kwh``, ``true_kwh``, ``error_kwh``, ``error_pct`` [%] and
        ``actual_share`` (A1/A2 periods) [-].
    """
    mp = np.asarray(mpans).astype(str)
    rows = []
    for run, res in results.items():
        sub = res.meters.sel(mpan=mp)
        e = sub["energy"].transpose("mpan", "time").to_numpy()
        truth = _truth(market, sub)
        q = sub["quality"].transpose("mpan", "time").to_numpy()
        actual = np.isin(q, [_Q["A1"], _Q["A2"]]).mean(axis=1)
        for i, m in enumerate(mp):  # the few sites a report looks at
            rows.append(
                {
                    "run": run,
                    "mpan": m,
                    "settled_kwh": float(e[i].sum()),
                    "true_kwh": float(truth[i].sum()),
                    "error_kwh": float((e[i] - truth[i]).sum()),
                    "error_pct": 100 * float((e[i] - truth[i]).sum() / truth[i].sum()),
                    "actual_share": float(actual[i]),
                }
            )
    return pd.DataFrame(rows).set_index(["run", "mpan"])


# ------------------------------------------------------------------------------------------ synthetic data


def synthetic_market(
    n_sites: int = 60,
    first_date: str = "2026-03-01",
    days: int = 56,
    seed: int = 0,
    *,
    whole_current_share: float = 0.2,
    hv_share: float = 0.3,
    noise: float = 0.05,
):
    """A market of advanced sites only, without the market generator (tests, benchmark, demos).

    Parameters
    ----------
    n_sites : int
    first_date : str
        First settlement day (the default window holds the 46-period day 2026-03-29).
    days : int
        Settlement days.
    seed : int
    whole_current_share, hv_share : float
        Shares of whole-current (W) and HV CT (H) sites; the rest are LV CT (L) [-].
    noise : float
        Relative sd of the AR(1) lognormal noise on the profile class shapes [-].

    Returns
    -------
    tomlib.market.Market
        All MPANs in segment A (profile classes 5-8, GSP groups _C and _P), true energy from the 1997
        profile class shapes scaled to each site's annual consumption.
    """
    from tomlib import mpan as mpan_mod
    from tomlib.market import Market, ar1_lognormal_noise, profile_class_energy

    rng = np.random.default_rng(seed)
    first = pd.Timestamp(first_date)
    times = cal.time_axis(first, first + pd.Timedelta(days=days - 1))
    g = np.where(rng.random(n_sites) < 0.6, "_C", "_P")
    cores = np.asarray(mpan_mod.generate_cores(g, rng)).astype(str)
    u = rng.random(n_sites)
    conn = np.where(u < whole_current_share, "W", np.where(u < whole_current_share + hv_share, "H", "L"))
    ac = np.where(
        conn == "W",
        rng.uniform(20_000, 60_000, n_sites),
        np.where(
            conn == "H",
            np.exp(rng.uniform(np.log(250_000), np.log(1_000_000), n_sites)),
            np.exp(rng.uniform(np.log(50_000), np.log(250_000), n_sites)),
        ),
    )
    pc = rng.integers(5, 9, n_sites)
    standing = pd.DataFrame(
        {
            "gsp_group": g,
            "market_segment": "A",
            "connection_type": conn,
            "domestic": False,
            "supplier": "ALFA",
            "bm_unit": "2__CALFA001",
            "llfc": "500",
            "measurement_quantity": "AI",
            "annual_consumption": ac,
            "profile_class": pc,
        },
        index=pd.Index(cores, name="mpan"),
    )
    energy = profile_class_energy(
        reference.profile_class_shapes(),
        pc,
        ac,
        _regions(g),
        times,
        reference_year=first.year,
        noise=ar1_lognormal_noise(rng, (n_sites, len(times)), noise, 0.9),
    )
    meters = cube.meter_cube(energy, times, cores, standing)
    empty = xr.DataArray(np.zeros((0, len(times))), dims=("gsp_group", "time"))
    return Market(
        scenario_name="advanced_synthetic",
        seed=int(seed),
        meters=meters,
        line_loss_factors=empty,
        unaccounted_energy=empty,
        gsp_group_take=empty,
    )


def bench_inputs(mpan_days: int = 100_000, days: int = 7, seed: int = 0) -> dict:
    """Keyword arguments of :func:`process` for the benchmark: ``data`` and ``config``.

    ``mpan_days // days`` advanced sites over ``days`` days from 2026-03-23 (a week holding the
    46-period day 2026-03-29), with the default faults and communication failures, as held at the
    end of the window + 3 days; the no-history shape is the profile class shape (the benchmark times
    the data service, not the Load Shaping Service). Meter-periods = ``data["energy"].size``.
    """
    market = synthetic_market(max(mpan_days // days, 2), "2026-03-23", days, seed)
    cfg = AdvancedConfig(no_history_shape="profile_class")
    inputs = advanced_inputs(market, cfg)
    as_of = pd.Timestamp(market.meters["time"].values[-1]) + pd.Timedelta(days=3)
    data, _ = advanced_data(inputs, as_of)
    return {"data": data, "config": cfg}
