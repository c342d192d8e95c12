"""Metering Service (Advanced): Meter Technical Details of HH sites and what their meters record.

The Metering Service (Advanced) installs and maintains the meters of the Advanced segment and owns
their Meter Technical Details (MTDs, mhhs-domain.md §2.2): the measurement transformers (current
transformers, CT; voltage transformers, VT) and their ratios, the meter constant, the outstation
that stores the half-hourly data, its channels (active import AI and export AE [kWh], reactive
import RI and export RE [kvarh]) and, at larger sites, a check meter beside the main meter.
:func:`build_advanced_metering` draws all of that for the segment-A MPANs of a
:class:`tomlib.market.Market` and computes what each meter records from the market's TRUE energy,
with the meter faults a data service must catch.

Sites and measurement transformers ([INF] unless marked)
--------------------------------------------------------
=================  ==========================================================================
connection type    metering (DI-015; measurement class, Code of Practice)
=================  ==========================================================================
``W``              whole current (class G, CoP10): the meter carries the load, no CT or VT
                   (multiplier 1); the market generator makes none today, tests and the
                   benchmark do
``L``              LV current-transformer operated (class C/E, CoP5): CTs ``N/5 A`` at 400 V
``H``              HV (class C, CoP3): CTs ``N/5 A`` and VTs 11 000/110 V
=================  ==========================================================================

A site's maximum demand is its mean demand ``AC / 8766 h`` over a load factor drawn from
``load_factor``, or ``ct_headroom`` x its highest true demand in the window if that is more
(the agreed capacity covers peaks a short window may not show); the CT primary is the smallest
standard rating (``ct_primaries_a``) at or above
``ct_headroom`` x the maximum current ``P / (sqrt(3) V pf)``. The **multiplier** is
``CT ratio x VT ratio`` and the **meter constant** ``k`` [kWh per pulse, at the meter] a power of ten
chosen so that an average half hour holds ``pulses_per_period`` to ten times as many pulses.
Energy at the site (primary side) is, per mhhs-domain.md §2.6 [INF]::

    kWh = pulses x k x CT ratio x VT ratio

Check meters: a share of sites by connection type (``check_meter_share``) has a check meter on
the same outstation. [INF] Main and check meters share the measurement transformers (one set of
CTs and VTs), so a wrong CT ratio in the MTDs affects both alike; a meter's own fault (a phase
lost, a gain error) affects one only.

Meter recording
---------------
The meter sees the secondary-side energy ``E / multiplier`` and counts whole pulses. Pulses are
cumulative, so the rounding never accumulates: ``pulses_j = floor(C_j / k + u) - floor(C_{j-1} / k
+ u)`` with ``C`` the secondary energy since the window start and ``u`` a fixed phase. The main
meter is the reference (no gain error: the market's energy is what a perfect main meter records);
the check meter has a gain error drawn from N(0, ``check_gain_sd``).

Reactive channels are derived from the active energy: a lagging part ``E x tan(acos(pf))`` plus
magnetising ``q0``, less the power-factor correction of the sites that have it; the net is
reactive import (RI) when positive and reactive export (RE) when negative. AE is 0: the market
has no generation behind advanced meters.

Faults (truth in :attr:`AdvancedMetering.faults`)
-------------------------------------------------
=====================  ===========================================================================
fault                  what the meter records
=====================  ===========================================================================
``phase_failure``      a spell of days on which one meter (main, or check where the site has one)
                       loses a phase: it records ``phase_failure_factor`` of the energy
``spike``              one main-meter period multiplied by a factor in ``spike_factor_range``
``zero_run``           a run of main-meter periods recorded as 0 (``zero_run_periods``)
``gap``                a run of periods the main (or check) meter did not record at all (NaN);
                       runs may cross days and clock changes
``wrong_ct_ratio``     (scenario switch ``ct_fault``) the CTs of one site are replaced by CTs of
                       ``ct_fault_factor`` x the ratio at ``ct_fault_from``, but the MTDs keep the
                       old ratio until the Metering Service sends corrected MTDs, available
                       ``ct_fault_corrected_after_days`` later (:attr:`AdvancedMetering.ratios`)
=====================  ===========================================================================

Determinism: streams ``SeedSequence(seed, spawn_key=(SERVICE_KEY, k))`` with :data:`STREAMS`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tomlib import calendar as cal
from tomlib.services.metering import normalise_config, rng_stream

__all__ = [
    "CHANNEL_QUANTITIES",
    "CT_PRIMARIES_A",
    "FAULTS",
    "ROLES",
    "SERVICE_KEY",
    "STREAMS",
    "AdvancedConfig",
    "AdvancedMetering",
    "build_advanced_metering",
    "multipliers",
    "run_mask",
]

#: Spawn-key root of this service's random streams (metering 301, retrieval 302, meter reading 303).
SERVICE_KEY = 304
#: Fixed sub-key of each random stream. Append new components; never renumber.
STREAMS = {
    "sites": 0,
    "check": 1,
    "ids": 2,
    "phase": 3,
    "check_gain": 4,
    "phase_failure": 5,
    "spike": 6,
    "zero_run": 7,
    "gap": 8,
    "check_gap": 9,
    "reactive": 10,
    "dials": 11,
    "spells": 12,
    "dial_time": 13,
    "late": 14,
    "redelivery": 15,
}
#: Meter roles at a site.
ROLES = ("main", "check")
#: Channels of every advanced meter: measurement quantity (DI-052) and unit.
CHANNEL_QUANTITIES = (("AI", "kWh"), ("AE", "kWh"), ("RI", "kvarh"), ("RE", "kvarh"))
#: Meter faults injected (value of ``AdvancedMetering.faults["fault"]``).
FAULTS = ("phase_failure", "spike", "zero_run", "gap", "wrong_ct_ratio")
#: [INF] Standard CT primary ratings [A] (secondary 5 A).
CT_PRIMARIES_A = (
    5,
    10,
    15,
    20,
    25,
    30,
    40,
    50,
    60,
    75,
    100,
    150,
    200,
    250,
    300,
    400,
    500,
    600,
    800,
    1000,
    1200,
    1500,
    2000,
    2500,
    3000,
    4000,
    5000,
)

_PERIOD_NS = np.timedelta64(30 * 60 * 10**9, "ns")
_DAY_NS = np.timedelta64(86_400 * 10**9, "ns")
_HOURS_PER_YEAR = 8766.0
_SQRT3 = float(np.sqrt(3.0))


# ------------------------------------------------------------------------------------------ configuration


@dataclass(frozen=True)
class AdvancedConfig:
    """[INF] Knobs of the Advanced segment: metering, retrieval, validation and estimation.

    :meth:`from_scenario` takes every field a scenario's ``advanced`` section holds; the four
    communication fields (``success_rate``, ``comms_failure_rate``, ``comms_spell_mean_days``,
    ``late_data_share``) fall back to the scenario's ``retrieval`` section when ``advanced`` lacks
    them, so a scenario's communication faults reach the advanced outstations too.

    Attributes
    ----------
    check_meter_share : tuple of (str, float)
        Share of sites with a check meter, by connection type (W, L, H) [-].
    load_factor : tuple of float
        Range of mean / maximum demand [-] (uniform).
    ct_headroom : float
        CT primary rating over the maximum current [-].
    ct_primaries_a : tuple of int
        Standard CT primary ratings [A]; secondary ``ct_secondary_a``.
    ct_secondary_a : float
        CT secondary rating [A].
    lv_voltage_v, hv_voltage_v : float
        Line voltage of LV (W, L) and HV (H) sites [V].
    vt_secondary_v : float
        VT secondary voltage [V] (HV sites).
    whole_current_max_a : float
        Largest current of a whole-current meter [A].
    extended_rating : float
        Overload a CT (or whole-current meter) measures before saturating [-]: the physical
        maximum per period is ``rating x extended_rating x sqrt(3) V x 0.5 h``.
    pulses_per_period : float
        Least pulses in an average half hour (sets the meter constant) [-].
    power_factor : tuple of float
        Range of site power factors [-].
    pfc_share : float
        Share of sites with power-factor correction (reactive export at light load) [-].
    check_gain_sd : float
        Sd of the check meter's gain error [-].
    phase_failure_rate : float
        Share of sites with a phase-failure spell on one meter [-].
    phase_failure_days : tuple of int
        Length range of a phase-failure spell [days].
    phase_failure_factor : float
        Share of the energy a meter with a lost phase records [-].
    phase_failure_check_share : float
        Share of the phase failures of sites with a check meter that hit the check meter [-].
    spike_rate, zero_run_rate, gap_rate, check_gap_rate : float
        Probability per site-day of a main-meter spike, zero run, gap; of a check-meter gap [-].
    spike_factor_range : tuple of float
        Factor of a spiked value [-].
    zero_run_periods, gap_periods : tuple of int
        Length ranges [periods].
    ct_fault : bool
        Switch the wrong-CT-ratio fault on.
    ct_fault_mpan : str
        Site with the fault; "" = the first CT-connected site without a check meter (MPAN order).
    ct_fault_from : str, optional
        Settlement date (start of that day) or UTC instant of the CT change; None = the day 7 days
        after the window's first day (the middle day of a window shorter than 8 days).
    ct_fault_factor : float
        Installed CT ratio over the ratio in the MTDs [-].
    ct_fault_corrected_after_days : float
        Days after ``ct_fault_from`` at which the corrected MTDs reach the data service [days].
    success_rate : float
        Probability that the daily dial-up of an outstation succeeds [-].
    comms_failure_rate : float
        Share of outstations with a spell of communication failure [-].
    comms_spell_mean_days : float
        Mean length of a spell (geometric) [days].
    late_data_share : float
        Share of collected site-days that reach settlement late [-].
    late_delay_days : tuple of int
        Extra delay of late site-days [days] (whole days, inclusive).
    dial_hours_utc : tuple of float
        Hour range (UTC) of the daily dial-up [h].
    outstation_memory_days : int
        Days of HH data an outstation stores: data not collected within it are lost [days].
    redelivery_rate : float
        Share of collected site-days delivered a second time (same values) the next day [-].
    check_tolerance : float
        Largest relative difference of a day's main and check totals [-].
    spike_factor : float
        A value above ``spike_factor`` x the larger of its two neighbours (and above it by
        ``spike_min_kwh``) is a spike [-].
    spike_min_kwh : float
        Least excess of a spike [kWh].
    step_tolerance : float
        A change of the daily level by more than a factor ``1 + step_tolerance`` (either way) from one
        week to the next is a step change [-].
    step_min_periods : int
        Fewest comparable periods a day needs for its level [periods].
    step_min_days : int
        Fewest day levels on each side of a step [days].
    step_change_action : str
        ``"flag"`` (keep the data, report the days) or ``"reject"`` (refuse and estimate them).
    min_zero_run : int
        Shortest suspicious zero run (:func:`tomlib.services.validation.zero_runs`) [periods].
    max_zero_share : float
        See :func:`tomlib.services.validation.zero_runs` [-].
    use_check_data : bool
        Settle check-meter data (A2) where the main meter's are missing or invalid.
    history_weeks : int
        Weekly offsets either side used by the BSCP502 estimate (4 = within one month) [weeks].
    min_history_values : int
        Fewest history values for a BSCP502 estimate [-].
    same_periods : str
        ``"clock"`` (same local clock half hour) or ``"settlement_period"`` (same SP number).
    no_history_shape : str
        ``"lss"`` (Load Shaping Service shapes from the segment's actual data) or
        ``"profile_class"`` (the site's 1997 profile class shape) for the no-history estimate.
    """

    check_meter_share: tuple = (("W", 0.0), ("L", 0.25), ("H", 1.0))
    load_factor: tuple[float, float] = (0.35, 0.65)
    ct_headroom: float = 1.25
    ct_primaries_a: tuple = CT_PRIMARIES_A
    ct_secondary_a: float = 5.0
    lv_voltage_v: float = 400.0
    hv_voltage_v: float = 11_000.0
    vt_secondary_v: float = 110.0
    whole_current_max_a: float = 100.0
    extended_rating: float = 1.2
    pulses_per_period: float = 1000.0
    power_factor: tuple[float, float] = (0.85, 0.98)
    pfc_share: float = 0.3
    check_gain_sd: float = 0.001
    phase_failure_rate: float = 0.03
    phase_failure_days: tuple[int, int] = (2, 6)
    phase_failure_factor: float = 2.0 / 3.0
    phase_failure_check_share: float = 0.5
    spike_rate: float = 0.003
    spike_factor_range: tuple[float, float] = (4.0, 12.0)
    zero_run_rate: float = 0.002
    zero_run_periods: tuple[int, int] = (4, 16)
    gap_rate: float = 0.01
    check_gap_rate: float = 0.005
    gap_periods: tuple[int, int] = (2, 96)
    ct_fault: bool = False
    ct_fault_mpan: str = ""
    ct_fault_from: str | None = None
    ct_fault_factor: float = 2.0
    ct_fault_corrected_after_days: float = 28.0
    success_rate: float = 0.97
    comms_failure_rate: float = 0.02
    comms_spell_mean_days: float = 3.0
    late_data_share: float = 0.02
    late_delay_days: tuple[int, int] = (1, 5)
    dial_hours_utc: tuple[float, float] = (1.0, 6.0)
    outstation_memory_days: int = 40
    redelivery_rate: float = 0.01
    check_tolerance: float = 0.01
    spike_factor: float = 3.0
    spike_min_kwh: float = 1.0
    step_tolerance: float = 0.3
    step_min_periods: int = 12
    step_min_days: int = 2
    step_change_action: str = "flag"
    min_zero_run: int = 4
    max_zero_share: float = 0.01
    use_check_data: bool = True
    history_weeks: int = 4
    min_history_values: int = 1
    same_periods: str = "clock"
    no_history_shape: str = "lss"

    def __post_init__(self) -> None:
        normalise_config(self)
        shares = dict(self.check_meter_share)
        for name in (
            "pfc_share",
            "check_gain_sd",
            "phase_failure_rate",
            "phase_failure_check_share",
            "spike_rate",
            "zero_run_rate",
            "gap_rate",
            "check_gap_rate",
            "success_rate",
            "comms_failure_rate",
            "late_data_share",
            "redelivery_rate",
            "check_tolerance",
            "max_zero_share",
            *(f"check_meter_share[{k}]" for k in shares),
        ):
            v = shares[name[18:-1]] if name.startswith("check_meter_share[") else getattr(self, name)
            if not 0.0 <= float(v) <= 1.0:
                raise ValueError(f"AdvancedConfig.{name} must be within [0, 1], got {v}")
        if self.spike_rate + self.zero_run_rate + self.gap_rate > 1.0:
            raise ValueError("AdvancedConfig: spike_rate + zero_run_rate + gap_rate must be <= 1")
        for name, lo_min in (
            ("load_factor", 1e-6),
            ("phase_failure_days", 1),
            ("spike_factor_range", 1.0),
            ("zero_run_periods", 1),
            ("gap_periods", 1),
            ("late_delay_days", 0),
            ("dial_hours_utc", 0.0),
            ("power_factor", 1e-6),
        ):
            lo, hi = getattr(self, name)
            if not lo_min <= lo <= hi:
                raise ValueError(
                    f"AdvancedConfig.{name} must be a range {lo_min} <= lo <= hi, got {(lo, hi)}"
                )
        if self.load_factor[1] > 1 or self.power_factor[1] > 1:
            raise ValueError("AdvancedConfig: load_factor and power_factor must not exceed 1")
        if self.dial_hours_utc[1] >= 24:
            raise ValueError("AdvancedConfig.dial_hours_utc must lie within a day (< 24 h)")
        for name in (
            "ct_headroom",
            "ct_secondary_a",
            "lv_voltage_v",
            "hv_voltage_v",
            "vt_secondary_v",
            "whole_current_max_a",
            "extended_rating",
            "pulses_per_period",
            "ct_fault_factor",
            "spike_factor",
            "spike_min_kwh",
            "step_tolerance",
            "comms_spell_mean_days",
            "phase_failure_factor",
        ):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"AdvancedConfig.{name} must be > 0, got {getattr(self, name)}")
        if self.comms_spell_mean_days < 1:
            raise ValueError(
                f"AdvancedConfig.comms_spell_mean_days must be >= 1, got {self.comms_spell_mean_days}"
            )
        if self.ct_fault_corrected_after_days < 0:
            raise ValueError(
                "AdvancedConfig.ct_fault_corrected_after_days must be >= 0 days, got "
                f"{self.ct_fault_corrected_after_days}"
            )
        for name in (
            "outstation_memory_days",
            "history_weeks",
            "min_history_values",
            "step_min_periods",
            "step_min_days",
            "min_zero_run",
        ):
            v = getattr(self, name)
            if int(v) != v or v < 1:
                raise ValueError(f"AdvancedConfig.{name} must be an integer >= 1, got {v}")
        if self.history_weeks > 4:
            raise ValueError("AdvancedConfig.history_weeks must be <= 4: BSCP502 uses data within one month")
        if sorted(shares) != ["H", "L", "W"]:
            raise ValueError(f"AdvancedConfig.check_meter_share must give W, L and H a share, got {shares}")
        choices = {
            "step_change_action": ("flag", "reject"),
            "same_periods": ("clock", "settlement_period"),
            "no_history_shape": ("lss", "profile_class"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"AdvancedConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}"
                )
        if list(self.ct_primaries_a) != sorted(self.ct_primaries_a) or min(self.ct_primaries_a) <= 0:
            raise ValueError("AdvancedConfig.ct_primaries_a must be positive ratings in increasing order")

    #: Fields that fall back to the scenario's ``retrieval`` section.
    RETRIEVAL_FIELDS = ("success_rate", "comms_failure_rate", "comms_spell_mean_days", "late_data_share")

    @classmethod
    def from_scenario(cls, scenario: Any = None, **overrides) -> AdvancedConfig:
        """Defaults, overridden by the scenario's ``retrieval`` section (the four communication
        fields), then by its ``advanced`` section (any field), then by ``overrides``.

        Parameters
        ----------
        scenario : Scenario, optional
        **overrides
            Field values that win over the scenario.
        """
        values: dict[str, Any] = {}
        names = {f.name for f in dataclasses.fields(cls)}
        retrieval = getattr(scenario, "retrieval", None)
        if retrieval is not None:
            values.update({k: getattr(retrieval, k) for k in cls.RETRIEVAL_FIELDS if hasattr(retrieval, k)})
        section = getattr(scenario, "advanced", None)
        if section is not None:
            items = (
                section.items()
                if isinstance(section, dict)
                else ((k, getattr(section, k)) for k in names if hasattr(section, k))
            )
            values.update({k: v for k, v in items if k in names})
        values.update(overrides)
        return cls(**values)


def _coerce(config: Any) -> AdvancedConfig:
    if isinstance(config, AdvancedConfig):
        return config
    if isinstance(config, dict):
        return AdvancedConfig(**config)
    return AdvancedConfig.from_scenario(config)


def _rng(seed: int, name: str) -> np.random.Generator:
    return rng_stream(seed, SERVICE_KEY, STREAMS[name])


# ------------------------------------------------------------------------------------------ helpers


def run_mask(n_rows: int, n_time: int, rows, start, length) -> np.ndarray:
    """Cells covered by runs: row ``rows[i]`` from period ``start[i]`` for ``length[i]`` periods.

    Runs are clipped to the time axis; vectorised with a +1/-1 difference array, so runs may overlap.

    Returns
    -------
    ndarray of bool, shape (n_rows, n_time)
    """
    rows = np.asarray(rows, dtype=np.int64)
    s = np.clip(np.asarray(start, dtype=np.int64), 0, n_time)
    e = np.clip(s + np.asarray(length, dtype=np.int64), 0, n_time)
    diff = np.zeros((n_rows, n_time + 1), dtype=np.int64)
    np.add.at(diff, (rows, s), 1)
    np.add.at(diff, (rows, e), -1)
    return np.cumsum(diff[:, :n_time], axis=1) > 0


def multipliers(ratios: pd.DataFrame, mpans, times, as_of=None) -> np.ndarray:
    """Multiplier (CT ratio x VT ratio) of each site and period from MTD versions [-].

    Parameters
    ----------
    ratios : DataFrame
        MTD versions: ``mpan``, ``effective_from`` (UTC; NaT = since installation), ``available_at``
        (UTC; NaT = held before the window) and ``multiplier``.
    mpans : array-like of str
        Sites, in row order of the result; each needs a version effective since installation.
    times : array-like of datetime64
        Period starts [UTC].
    as_of : datetime-like, optional
        Only versions available at this instant count; None = every version.

    Returns
    -------
    ndarray (n_site, n_time)
        For each period, the multiplier of the latest-effective version (the latest available
        among equal effective instants).
    """
    mp = np.asarray(mpans).astype(str)
    t = np.asarray(times, dtype="datetime64[ns]")
    r = ratios
    if as_of is not None:
        avail = r["available_at"].to_numpy(dtype="datetime64[ns]")
        r = r[np.isnat(avail) | (avail <= np.datetime64(pd.Timestamp(as_of), "ns"))]
    row = pd.Index(mp).get_indexer(r["mpan"].to_numpy(dtype=str))
    r = r[row >= 0]
    row = row[row >= 0]
    eff = r["effective_from"].to_numpy(dtype="datetime64[ns]")
    base_v = np.isnat(eff)
    base = np.full(mp.size, np.nan)
    order = np.argsort(r["available_at"].to_numpy(dtype="datetime64[ns]")[base_v], kind="stable")
    base[row[base_v][order]] = r["multiplier"].to_numpy(dtype=float)[base_v][order]  # latest available wins
    if np.isnan(base).any():
        raise ValueError(
            f"multipliers: MPAN {mp[np.isnan(base)][0]} has no MTD version effective since installation"
        )
    out = np.repeat(base[:, None], t.size, axis=1)
    later = ~base_v
    if later.any() and t.size:
        # each later version holds from its first period on, until a later-effective version: one
        # sorted key (row, period) and a searchsorted give every cell its version, no loop over sites
        start = np.searchsorted(t, eff[later])
        key = row[later].astype(np.int64) * (t.size + 1) + start
        avail = r["available_at"].to_numpy(dtype="datetime64[ns]")[later]
        order = np.lexsort((avail, key))
        key, mult = key[order], r["multiplier"].to_numpy(dtype=float)[later][order]
        cells = np.arange(mp.size, dtype=np.int64)[:, None] * (t.size + 1) + np.arange(t.size)[None, :]
        pos = np.searchsorted(key, cells, side="right") - 1
        hit = (pos >= 0) & (key[np.maximum(pos, 0)] // (t.size + 1) == np.arange(mp.size)[:, None])
        out = np.where(hit, mult[np.maximum(pos, 0)], out)
    return out


def _pulses(secondary: np.ndarray, k: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Whole pulses per period of a cumulative pulse counter [-] (rounding never accumulates)."""
    cum = np.cumsum(secondary, axis=1) / k[:, None] + phase[:, None]
    counts = np.floor(cum)
    counts[:, 1:] -= np.floor(cum[:, :-1])
    counts[:, 0] -= np.floor(phase)
    return counts


def _ids(rng: np.random.Generator, prefix: str, n: int, digits: int) -> np.ndarray:
    if n == 0:
        return np.zeros(0, dtype=str)
    u = rng.choice(10**digits, size=n, replace=False)
    return np.char.add(prefix, np.char.zfill(u.astype(str), digits)).astype(str)


def _fault_date(config: AdvancedConfig, days: pd.DatetimeIndex) -> np.datetime64:
    if config.ct_fault_from is None:
        day = days[7] if len(days) >= 8 else days[len(days) // 2]
        return np.datetime64(cal.to_utc(day, 1)[0], "ns")
    ts = pd.Timestamp(str(config.ct_fault_from))
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    if ts == ts.normalize() and len(str(config.ct_fault_from)) <= 10:  # a settlement date
        return np.datetime64(cal.to_utc(ts, 1)[0], "ns")
    return np.datetime64(ts, "ns")


# ------------------------------------------------------------------------------------------ the result


@dataclass
class AdvancedMetering:
    """MTDs of the Advanced segment and what its meters recorded.

    Attributes
    ----------
    sites : DataFrame
        One row per advanced MPAN (market order): ``mpan``, ``connection_type``,
        ``measurement_class`` (G whole current, E CT < 100 kW, C >= 100 kW), ``code_of_practice``,
        ``outstation_id``, ``has_check_meter``, ``voltage_v`` [V], ``max_demand_kw`` [kW],
        ``power_factor`` [-], ``ct_primary_a``, ``ct_secondary_a`` [A] (NaN whole current),
        ``vt_primary_v``, ``vt_secondary_v`` [V] (NaN below HV), ``ct_ratio``, ``vt_ratio``,
        ``multiplier`` [-] (as first installed), ``meter_constant`` [kWh per pulse],
        ``max_energy`` [kWh per period] (physical maximum), ``annual_consumption`` [kWh/year];
        truth: ``check_gain_error`` [-], ``pfc_kvar`` [kvar].
    meters : DataFrame
        ``mpan``, ``meter_id``, ``role`` (main/check), ``outstation_id``.
    channels : DataFrame
        ``mpan``, ``meter_id``, ``role``, ``outstation_id``, ``channel`` ("01".."04"),
        ``measurement_quantity`` (AI, AE, RI, RE), ``units``, ``meter_constant``.
    ratios : DataFrame
        MTD versions of the measurement transformers as the data service receives them: ``mpan``,
        ``effective_from`` (NaT = since installation), ``available_at`` (NaT = before the window),
        ``ct_primary_a``, ``ct_secondary_a``, ``vt_primary_v``, ``vt_secondary_v``, ``multiplier``,
        ``note``.
    installed : DataFrame
        TRUTH: the transformers on site, same columns (``available_at`` NaT).
    faults : DataFrame
        TRUTH: one row per injected fault: ``mpan``, ``role``, ``fault``, ``start``, ``end`` (UTC,
        end exclusive), ``factor`` [-].
    pulses : dict of str -> ndarray
        ``"main"`` and ``"check"`` active import pulses recorded per period, (n_site, n_time);
        NaN = not recorded (gap; every period of a site without a check meter).
    times : DatetimeIndex
        Period starts [UTC].
    config : AdvancedConfig
    seed : int
    """

    sites: pd.DataFrame
    meters: pd.DataFrame
    channels: pd.DataFrame
    ratios: pd.DataFrame
    installed: pd.DataFrame
    faults: pd.DataFrame
    pulses: dict[str, np.ndarray]
    times: pd.DatetimeIndex
    config: AdvancedConfig
    seed: int
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def mpans(self) -> np.ndarray:
        """Advanced MPANs, row order of every array."""
        return self.sites["mpan"].to_numpy(dtype=str)

    def multipliers(self, as_of=None, true: bool = False) -> np.ndarray:
        """Multiplier per site and period [-]: from the MTDs held at ``as_of`` (None: all), or the
        installed transformers with ``true=True``."""
        return multipliers(
            self.installed if true else self.ratios, self.mpans, self.times, None if true else as_of
        )

    def energy(self, role: str = "main", as_of=None) -> np.ndarray:
        """Active import recorded by the ``role`` meters, converted with the MTDs held at ``as_of``
        [kWh per period] (NaN where not recorded)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        k = self.sites["meter_constant"].to_numpy(dtype=float)[:, None]
        return self.pulses[role] * k * self.multipliers(as_of)

    def channel_values(self, mpan: str, as_of=None) -> pd.DataFrame:
        """Every channel of one site, converted with the MTDs held at ``as_of``.

        Returns
        -------
        DataFrame
            Index ``time`` [UTC]; columns ``"<role> <quantity>"`` (e.g. ``"main AI"``) in kWh / kvarh
            per period; NaN where the meter did not record; no check columns without a check meter.
        """
        rows = np.flatnonzero(self.mpans == str(mpan))
        if rows.size != 1:
            raise ValueError(f"channel_values: {mpan!r} is not an advanced MPAN of this metering")
        i = int(rows[0])
        site = self.sites.iloc[i]
        k = float(site["meter_constant"])
        conv = self.multipliers(as_of)[i]
        true_mult = self.multipliers(true=True)[i]
        out = {}
        for role in ROLES if bool(site["has_check_meter"]) else ROLES[:1]:
            p = self.pulses[role][i]
            recorded = np.isfinite(p)
            active_primary = p * k * true_mult  # what the meter measured, at the primary side
            tan_phi = np.tan(np.arccos(float(site["power_factor"])))
            mean = np.nanmean(active_primary) if recorded.any() else 0.0
            q = active_primary * tan_phi + 0.1 * mean * tan_phi - float(site["pfc_kvar"]) * 0.5
            scale = conv / true_mult  # the data service converts with the MTDs it holds
            out[f"{role} AI"] = p * k * conv
            out[f"{role} AE"] = np.where(recorded, 0.0, np.nan)
            out[f"{role} RI"] = np.where(recorded, np.maximum(q, 0.0) * scale, np.nan)
            out[f"{role} RE"] = np.where(recorded, np.maximum(-q, 0.0) * scale, np.nan)
        return pd.DataFrame(out, index=pd.DatetimeIndex(self.times, name="time"))


def _empty_faults() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "mpan": pd.array([], dtype="str"),
            "role": pd.array([], dtype="str"),
            "fault": pd.array([], dtype="str"),
            "start": np.array([], dtype="datetime64[ns]"),
            "end": np.array([], dtype="datetime64[ns]"),
            "factor": np.array([], dtype=float),
        }
    )


def _fault_rows(mpans, role, fault, rows, start_t, end_t, times, factor) -> pd.DataFrame:
    n_t = len(times)
    bounds = np.append(
        np.asarray(times, dtype="datetime64[ns]"), np.asarray(times, dtype="datetime64[ns]")[-1] + _PERIOD_NS
    )
    rows = np.asarray(rows, dtype=np.int64)
    return pd.DataFrame(
        {
            "mpan": pd.array(np.asarray(mpans)[rows].astype(str), dtype="str"),
            "role": pd.array(np.full(rows.size, role), dtype="str"),
            "fault": pd.array(np.full(rows.size, fault), dtype="str"),
            "start": bounds[np.clip(np.asarray(start_t, dtype=np.int64), 0, n_t)],
            "end": bounds[np.clip(np.asarray(end_t, dtype=np.int64), 0, n_t)],
            "factor": np.broadcast_to(np.asarray(factor, dtype=float), rows.shape).astype(float),
        }
    )


# ------------------------------------------------------------------------------------------ the model


def build_advanced_metering(
    market, config: AdvancedConfig | Any | None = None, *, seed: int | None = None
) -> AdvancedMetering:
    """MTDs and recorded meter data of the Advanced segment of a market.

    Parameters
    ----------
    market : tomlib.market.Market
        Its ``meters`` cube gives the segment-A MPANs (``market_segment`` A), their standing data
        and TRUE energy [kWh per period].
    config : AdvancedConfig, dict or Scenario, optional
        A Scenario is turned into one by :meth:`AdvancedConfig.from_scenario`.
    seed : int, optional
        Default ``market.seed``.

    Returns
    -------
    AdvancedMetering

    Raises
    ------
    ValueError
        Naming the MPAN: an unknown connection type, non-finite or negative true energy, a site too
        large for the largest CT or for whole-current metering, an unknown ``ct_fault_mpan``.
    """
    cfg = _coerce(config)
    seed = int(market.seed if seed is None else seed)
    ds = market.meters
    sel = np.flatnonzero(ds["market_segment"].to_numpy().astype(str) == "A")
    # the segment's MPANs taken from the index before converting (its .values would convert every MPAN)
    mpans = np.asarray(ds.indexes["mpan"][sel]).astype(str)
    n = mpans.size
    times = pd.DatetimeIndex(ds["time"].to_numpy())
    n_t = len(times)
    if n_t == 0:
        raise ValueError("market: empty time axis")
    energy = ds["energy"].isel(mpan=sel).transpose("mpan", "time").to_numpy().astype(float)
    bad = ~np.isfinite(energy) | (energy < 0)
    if bad.any():
        i = int(np.argwhere(bad)[0][0])
        raise ValueError(f"market: true energy of advanced MPAN {mpans[i]} is not finite and >= 0")
    conn = ds["connection_type"].to_numpy().astype(str)[sel]
    unknown = ~np.isin(conn, ("W", "L", "H"))
    if unknown.any():
        raise ValueError(
            f"market: advanced MPAN {mpans[unknown][0]} has connection type "
            f"{str(conn[unknown][0])!r}; expected W (whole current), L (LV CT) or H (HV CT)"
        )
    ac = ds["annual_consumption"].to_numpy().astype(float)[sel]
    if (~np.isfinite(ac) | (ac <= 0)).any():
        i = int(np.flatnonzero(~np.isfinite(ac) | (ac <= 0))[0])
        raise ValueError(
            f"market: advanced MPAN {mpans[i]} has annual_consumption {ac[i]}, expected > 0 kWh/year"
        )

    # Sites: demand, voltage, transformers, meter constant.
    rng = _rng(seed, "sites")
    lf = rng.uniform(*cfg.load_factor, n)
    pf = rng.uniform(*cfg.power_factor, n)
    # the agreed capacity covers the site's highest demand, which a short window may not show
    peak_kw = energy.max(axis=1) / 0.5 if n_t else np.zeros(n)
    max_kw = np.maximum(ac / _HOURS_PER_YEAR / lf, peak_kw * cfg.ct_headroom)
    hv = conn == "H"
    whole = conn == "W"
    volts = np.where(hv, cfg.hv_voltage_v, cfg.lv_voltage_v)
    amps = max_kw * 1000.0 / (_SQRT3 * volts * pf)
    primaries = np.asarray(cfg.ct_primaries_a, dtype=float)
    need = amps * cfg.ct_headroom
    pick = np.searchsorted(primaries, need)
    too_big = ~whole & (pick >= primaries.size)
    if too_big.any():
        i = int(np.flatnonzero(too_big)[0])
        raise ValueError(
            f"advanced MPAN {mpans[i]}: {need[i]:.0f} A exceeds the largest CT primary "
            f"{primaries[-1]:.0f} A (AdvancedConfig.ct_primaries_a)"
        )
    wc_big = whole & (need > cfg.whole_current_max_a)
    if wc_big.any():
        i = int(np.flatnonzero(wc_big)[0])
        raise ValueError(
            f"advanced MPAN {mpans[i]}: whole-current site needs {need[i]:.0f} A, more than "
            f"{cfg.whole_current_max_a:.0f} A (AdvancedConfig.whole_current_max_a)"
        )
    ct_primary = np.where(whole, np.nan, primaries[np.minimum(pick, primaries.size - 1)])
    ct_secondary = np.where(whole, np.nan, cfg.ct_secondary_a)
    vt_primary = np.where(hv, cfg.hv_voltage_v, np.nan)
    vt_secondary = np.where(hv, cfg.vt_secondary_v, np.nan)
    ct_ratio = np.where(whole, 1.0, ct_primary / cfg.ct_secondary_a)
    vt_ratio = np.where(hv, cfg.hv_voltage_v / cfg.vt_secondary_v, 1.0)
    mult = ct_ratio * vt_ratio
    mean_secondary = ac / _HOURS_PER_YEAR * 0.5 / mult
    k = 10.0 ** np.floor(np.log10(mean_secondary / cfg.pulses_per_period))
    rating = np.where(whole, cfg.whole_current_max_a, ct_primary)
    max_energy = rating * cfg.extended_rating * _SQRT3 * volts / 1000.0 * 0.5
    share = dict(cfg.check_meter_share)
    has_check = (
        _rng(seed, "check").random(n) < np.array([float(share[c]) for c in conn])
        if n
        else np.zeros(0, dtype=bool)
    )
    rng_ids = _rng(seed, "ids")
    outstation = _ids(rng_ids, "OS", n, 8)
    main_id = _ids(rng_ids, "M", n, 9)
    check_id = np.where(has_check, np.char.add("K", np.char.lstrip(main_id, "M")), "")
    gain = _rng(seed, "check_gain").normal(0.0, cfg.check_gain_sd, n)
    rng_q = _rng(seed, "reactive")
    pfc = np.where(
        rng_q.random(n) < cfg.pfc_share, rng_q.uniform(0.1, 0.4, n) * max_kw * np.tan(np.arccos(pf)), 0.0
    )
    measurement_class = np.where(whole, "G", np.where(max_kw >= 100.0, "C", "E"))
    cop = np.where(whole, "10", np.where(hv, "3", "5"))
    sites = pd.DataFrame(
        {
            "mpan": pd.array(mpans, dtype="str"),
            "connection_type": pd.array(conn, dtype="str"),
            "measurement_class": pd.array(measurement_class.astype(str), dtype="str"),
            "code_of_practice": pd.array(cop.astype(str), dtype="str"),
            "outstation_id": pd.array(outstation, dtype="str"),
            "has_check_meter": has_check,
            "voltage_v": volts,
            "max_demand_kw": max_kw,
            "power_factor": pf,
            "ct_primary_a": ct_primary,
            "ct_secondary_a": ct_secondary,
            "vt_primary_v": vt_primary,
            "vt_secondary_v": vt_secondary,
            "ct_ratio": ct_ratio,
            "vt_ratio": vt_ratio,
            "multiplier": mult,
            "meter_constant": k,
            "max_energy": max_energy,
            "annual_consumption": ac,
            "check_gain_error": gain,
            "pfc_kvar": pfc,
        }
    )
    meter_rows = np.concatenate([np.arange(n), np.flatnonzero(has_check)])
    roles = np.concatenate([np.full(n, "main"), np.full(int(has_check.sum()), "check")])
    meter_ids = np.concatenate([main_id, check_id[has_check]])
    meters = pd.DataFrame(
        {
            "mpan": pd.array(mpans[meter_rows], dtype="str"),
            "meter_id": pd.array(meter_ids.astype(str), dtype="str"),
            "role": pd.array(roles, dtype="str"),
            "outstation_id": pd.array(outstation[meter_rows], dtype="str"),
        }
    )
    nq = len(CHANNEL_QUANTITIES)
    ch_rows = np.repeat(np.arange(len(meters)), nq)
    channels = pd.DataFrame(
        {
            "mpan": pd.array(meters["mpan"].to_numpy(dtype=str)[ch_rows], dtype="str"),
            "meter_id": pd.array(meters["meter_id"].to_numpy(dtype=str)[ch_rows], dtype="str"),
            "role": pd.array(roles[ch_rows], dtype="str"),
            "outstation_id": pd.array(outstation[meter_rows][ch_rows], dtype="str"),
            "channel": pd.array(np.tile([f"{i + 1:02d}" for i in range(nq)], len(meters)), dtype="str"),
            "measurement_quantity": pd.array(
                np.tile([q for q, _ in CHANNEL_QUANTITIES], len(meters)), dtype="str"
            ),
            "units": pd.array(np.tile([u for _, u in CHANNEL_QUANTITIES], len(meters)), dtype="str"),
            "meter_constant": k[meter_rows][ch_rows],
        }
    )

    # MTD versions and installed transformers (truth); the wrong-CT-ratio fault.
    def version_frame(rows, eff, avail, ctp, note):
        rows = np.asarray(rows, dtype=np.int64)
        ctp = np.asarray(ctp, dtype=float)
        return pd.DataFrame(
            {
                "mpan": pd.array(mpans[rows], dtype="str"),
                "effective_from": np.asarray(eff, dtype="datetime64[ns]"),
                "available_at": np.asarray(avail, dtype="datetime64[ns]"),
                "ct_primary_a": ctp,
                "ct_secondary_a": ct_secondary[rows],
                "vt_primary_v": vt_primary[rows],
                "vt_secondary_v": vt_secondary[rows],
                "multiplier": np.where(whole[rows], 1.0, ctp / cfg.ct_secondary_a) * vt_ratio[rows],
                "note": pd.array(np.broadcast_to(np.asarray(note), rows.shape).astype(str), dtype="str"),
            }
        )

    nat = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    ratios = version_frame(np.arange(n), nat, nat, ct_primary, "commissioned")
    installed = ratios.copy()
    days = pd.DatetimeIndex(np.unique(cal.from_utc(times)[0]))
    fault_tables = [_empty_faults()]
    if cfg.ct_fault:
        if cfg.ct_fault_mpan:
            hit = np.flatnonzero(mpans == str(cfg.ct_fault_mpan))
            if hit.size != 1 or whole[hit[0]]:
                raise ValueError(
                    f"AdvancedConfig.ct_fault_mpan {cfg.ct_fault_mpan!r} is not a CT-connected "
                    "advanced MPAN of the market"
                )
            f_row = int(hit[0])
        else:
            ct_sites = np.flatnonzero(~whole)
            if ct_sites.size == 0:
                raise ValueError("AdvancedConfig.ct_fault: the market has no CT-connected advanced site")
            plain = ct_sites[~has_check[ct_sites]]
            cand = plain if plain.size else ct_sites
            f_row = int(cand[np.argmin(mpans[cand])])
        fault_at = _fault_date(cfg, days)
        corrected_at = fault_at + np.timedelta64(round(cfg.ct_fault_corrected_after_days * 86_400), "s")
        new_ct = ct_primary[f_row] * cfg.ct_fault_factor
        installed = pd.concat(
            [installed, version_frame([f_row], [fault_at], [np.datetime64("NaT")], [new_ct], "CTs replaced")],
            ignore_index=True,
        )
        ratios = pd.concat(
            [ratios, version_frame([f_row], [fault_at], [corrected_at], [new_ct], "corrected: CTs replaced")],
            ignore_index=True,
        )
        fault_tables.append(
            pd.DataFrame(
                {
                    "mpan": pd.array([mpans[f_row]], dtype="str"),
                    "role": pd.array(["main"], dtype="str"),
                    "fault": pd.array(["wrong_ct_ratio"], dtype="str"),
                    "start": np.array([fault_at]),
                    "end": np.array([corrected_at]),
                    "factor": np.array([1.0 / cfg.ct_fault_factor]),
                }
            )
        )

    # What the meters record.
    true_mult = multipliers(installed, mpans, times)
    secondary = energy / true_mult
    day_of_t = np.unique(cal.from_utc(times)[0].to_numpy(), return_inverse=True)[1]
    n_d = len(days)
    day_start = np.searchsorted(day_of_t, np.arange(n_d))
    day_len = np.diff(np.append(day_start, n_t))

    # phase failures: a spell of whole days on the main or the check meter
    rng_p = _rng(seed, "phase_failure")
    failing = rng_p.random(n) < cfg.phase_failure_rate
    on_check = has_check & (rng_p.random(n) < cfg.phase_failure_check_share)
    d0 = rng_p.integers(0, n_d, n)
    length = rng_p.integers(cfg.phase_failure_days[0], cfg.phase_failure_days[1] + 1, n)
    f_rows = np.flatnonzero(failing)
    s_t = day_start[d0[f_rows]]
    e_t = np.where(
        d0[f_rows] + length[f_rows] < n_d, day_start[np.minimum(d0[f_rows] + length[f_rows], n_d - 1)], n_t
    )
    lost = {
        role: run_mask(n, n_t, f_rows[sel_], s_t[sel_], (e_t - s_t)[sel_])
        for role, sel_ in (("main", ~on_check[f_rows]), ("check", on_check[f_rows]))
    }
    for role, sel_ in (("main", ~on_check[f_rows]), ("check", on_check[f_rows])):
        fault_tables.append(
            _fault_rows(
                mpans,
                role,
                "phase_failure",
                f_rows[sel_],
                s_t[sel_],
                e_t[sel_],
                times,
                cfg.phase_failure_factor,
            )
        )
    phase = _rng(seed, "phase").random((2, n))
    main_sec = np.where(lost["main"], secondary * cfg.phase_failure_factor, secondary)
    main = _pulses(main_sec, k, phase[0]) if n else np.zeros((0, n_t))
    check_sec = secondary * (1.0 + gain)[:, None]
    check_sec = np.where(lost["check"], check_sec * cfg.phase_failure_factor, check_sec)
    check = _pulses(check_sec, k, phase[1]) if n else np.zeros((0, n_t))

    # per site-day events of the main meter: spike, zero run, gap (exclusive per site-day)
    u = _rng(seed, "spike").random((n, n_d))
    kind = np.select(
        [
            u < cfg.spike_rate,
            u < cfg.spike_rate + cfg.zero_run_rate,
            u < cfg.spike_rate + cfg.zero_run_rate + cfg.gap_rate,
        ],
        [1, 2, 3],
        0,
    )
    rng_e = _rng(seed, "zero_run")
    at = day_start[None, :] + (rng_e.random((n, n_d)) * day_len[None, :]).astype(np.int64)
    zlen = rng_e.integers(cfg.zero_run_periods[0], cfg.zero_run_periods[1] + 1, (n, n_d))
    factor = rng_e.uniform(*cfg.spike_factor_range, (n, n_d))
    rng_g = _rng(seed, "gap")
    glen = rng_g.integers(cfg.gap_periods[0], cfg.gap_periods[1] + 1, (n, n_d))
    r_s, d_s = np.nonzero(kind == 1)
    spike = np.zeros((n, n_t), dtype=bool)
    spike[r_s, at[r_s, d_s]] = True
    spike_factor = np.ones((n, n_t))
    spike_factor[r_s, at[r_s, d_s]] = factor[r_s, d_s]
    main = np.where(spike, np.round(main * spike_factor), main)
    fault_tables.append(
        _fault_rows(mpans, "main", "spike", r_s, at[r_s, d_s], at[r_s, d_s] + 1, times, factor[r_s, d_s])
    )
    r_z, d_z = np.nonzero(kind == 2)
    zero = run_mask(n, n_t, r_z, at[r_z, d_z], zlen[r_z, d_z])
    main = np.where(zero, 0.0, main)
    fault_tables.append(
        _fault_rows(mpans, "main", "zero_run", r_z, at[r_z, d_z], at[r_z, d_z] + zlen[r_z, d_z], times, 0.0)
    )
    r_g, d_g = np.nonzero(kind == 3)
    gap = run_mask(n, n_t, r_g, at[r_g, d_g], glen[r_g, d_g])
    main = np.where(gap, np.nan, main)
    fault_tables.append(
        _fault_rows(mpans, "main", "gap", r_g, at[r_g, d_g], at[r_g, d_g] + glen[r_g, d_g], times, np.nan)
    )
    rng_c = _rng(seed, "check_gap")
    cgap_hit = has_check[:, None] & (rng_c.random((n, n_d)) < cfg.check_gap_rate)
    c_at = day_start[None, :] + (rng_c.random((n, n_d)) * day_len[None, :]).astype(np.int64)
    c_len = rng_c.integers(cfg.gap_periods[0], cfg.gap_periods[1] + 1, (n, n_d))
    r_c, d_c = np.nonzero(cgap_hit)
    check = np.where(
        run_mask(n, n_t, r_c, c_at[r_c, d_c], c_len[r_c, d_c]) | ~has_check[:, None], np.nan, check
    )
    fault_tables.append(
        _fault_rows(
            mpans, "check", "gap", r_c, c_at[r_c, d_c], c_at[r_c, d_c] + c_len[r_c, d_c], times, np.nan
        )
    )

    faults = pd.concat([f for f in fault_tables if len(f)] or [_empty_faults()], ignore_index=True)
    faults = faults.sort_values(["mpan", "start", "role", "fault"], kind="stable").reset_index(drop=True)
    return AdvancedMetering(
        sites=sites,
        meters=meters,
        channels=channels,
        ratios=ratios.reset_index(drop=True),
        installed=installed.reset_index(drop=True),
        faults=faults,
        pulses={"main": main, "check": check},
        times=times,
        config=cfg,
        seed=seed,
        attrs={
            "n_sites": int(n),
            "n_check_meters": int(has_check.sum()),
            "n_faults": {f: int((faults["fault"].to_numpy(dtype=str) == f).sum()) for f in FAULTS},
        },
    )


def site_table(metering: AdvancedMetering) -> pd.DataFrame:
    """The MTDs a report shows, one row per site (no truth columns)."""
    cols = [
        "mpan",
        "connection_type",
        "measurement_class",
        "code_of_practice",
        "outstation_id",
        "has_check_meter",
        "max_demand_kw",
        "ct_primary_a",
        "ct_secondary_a",
        "vt_primary_v",
        "vt_secondary_v",
        "multiplier",
        "meter_constant",
    ]
    return metering.sites[cols].copy()
