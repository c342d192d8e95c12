"""Retrieval Service (DCC-enrolled smart meters): daily HH data and register reads, with what goes wrong.

The Retrieval Service (mhhs-domain.md §2.3) collects each DCC-enrolled smart meter's half-hourly
consumption and its cumulative registers through the DCC. :func:`retrieve` simulates the schedule
for every DCC-enrolled MPAN of a :class:`~tomlib.services.metering.Metering` and every settlement
day of the market's window, and returns what the data service received and WHEN
(``available_at``), so that a settlement run with as-of instant ``as_of`` sees only the values with
``available_at <= as_of`` (:func:`visible`).

Schedule [INF]
--------------
- Attempt ``k = 0, 1, ..., retry_days`` for settlement day D runs on UTC day ``D + 1 + k`` at an
  hour drawn from ``attempt_hours_utc``. Each attempt succeeds with probability ``success_rate``;
  the first success delivers the whole day. If all fail the data service gives up (the day stays
  missing: the processing service must estimate it).
- A share ``comms_failure_rate`` of MPANs has a spell of communication failure: a run of UTC days
  (start uniform over the window, length geometric with mean ``comms_spell_mean_days``) on which
  every attempt fails. With ``backfill_after_spell`` the meter's stored data of the days whose
  attempts all fell in the spell is collected on the first day after the spell (meters keep months
  of HH data), so it arrives late.
- A share ``late_data_share`` of the retrieved days arrives a further ``late_delay_days`` later
  (uniform whole days): late data.
- ``available_at`` is the instant the data service holds a day's data [UTC].

Faults in delivered HH data (truth in :attr:`Retrieval.faults`)
----------------------------------------------------------------
At most one per retrieved MPAN-day, at small rates per MPAN-day: a ``negative_spike`` (one period
replaced by a negative value), a ``zero_run`` (a run of periods delivered as 0, not crossing the
day) or a ``duplicate_conflict`` (a second record for one period with a different value, arriving
later; in :attr:`Retrieval.duplicates`, the grid keeps the first value). The processing service's
validation should catch all three.

Determinism: streams ``SeedSequence(seed, spawn_key=(SERVICE_KEY, k))`` with :data:`STREAMS`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from tomlib import calendar as cal
from tomlib._text import arrow_text as _str_array
from tomlib._text import label_text as _labels
from tomlib._text import take_text as _take_text
from tomlib.services import _smart_inputs_kernel as _kernel
from tomlib.services._smart_inputs_kernel import int_keys as _int_keys
from tomlib.services.metering import (
    Metering,
    _market_mpans,
    _read_frame,
    empty_reads,
    normalise_config,
    rng_stream,
)

__all__ = [
    "OUTCOMES",
    "SERVICE_KEY",
    "STREAMS",
    "Retrieval",
    "RetrievalConfig",
    "bench_inputs",
    "retrieve",
    "visible",
]

#: Spawn-key root of this service's random streams.
SERVICE_KEY = 302
#: Fixed sub-key of each random stream. Append new components; never renumber.
STREAMS = {"attempts": 0, "spells": 1, "attempt_time": 2, "late": 3, "faults": 4}
#: Values of ``Retrieval.days["outcome"]``.
OUTCOMES = ("first_attempt", "retry", "backfill", "gave_up")

_DAY = np.timedelta64(86_400 * 10**9, "ns")
_HOUR_NS = 3_600 * 10**9


@dataclass(frozen=True)
class RetrievalConfig:
    """Knobs of the retrieval model.

    The first four are the scenario's ``retrieval`` section; the others are [INF] defaults that a
    scenario's ``retrieval`` section overrides when it holds a field of the same name.

    Attributes
    ----------
    success_rate : float
        Probability that one daily retrieval attempt succeeds [-].
    retry_days : int
        Days a failed retrieval is retried after the first attempt [days].
    comms_failure_rate : float
        Share of DCC-enrolled MPANs with a spell of communication failure in the window [-].
    late_data_share : float
        Share of retrieved days that arrive late [-].
    comms_spell_mean_days : float
        Mean length of a comms-failure spell [days] (geometric, >= 1).
    backfill_after_spell : bool
        Collect the stored data of the spell's days when communication returns.
    attempt_hours_utc : tuple of float
        Range of the hour of day (UTC) at which a day's attempt delivers [h].
    late_delay_days : tuple of int
        Extra delay of late days, whole days, inclusive range [days].
    negative_spike_rate, zero_run_rate, duplicate_rate : float
        Probability per retrieved MPAN-day of each HH fault [-].
    negative_spike_kwh : tuple of float
        Magnitude range of a negative spike [kWh].
    zero_run_periods : tuple of int
        Length range of a zero run, inclusive [periods].
    duplicate_factor : tuple of float
        The duplicate's value is the true value times a factor in this range, away from 1 [-].
    duplicate_delay_hours : tuple of float
        The duplicate arrives this much after the day's data [h].
    """

    success_rate: float = 0.97
    retry_days: int = 3
    comms_failure_rate: float = 0.01
    late_data_share: float = 0.02
    comms_spell_mean_days: float = 5.0
    backfill_after_spell: bool = True
    attempt_hours_utc: tuple[float, float] = (1.0, 6.0)
    late_delay_days: tuple[int, int] = (2, 10)
    negative_spike_rate: float = 0.001
    zero_run_rate: float = 0.001
    duplicate_rate: float = 0.002
    negative_spike_kwh: tuple[float, float] = (0.5, 20.0)
    zero_run_periods: tuple[int, int] = (4, 12)
    duplicate_factor: tuple[float, float] = (0.5, 1.5)
    duplicate_delay_hours: tuple[float, float] = (1.0, 48.0)

    def __post_init__(self) -> None:
        normalise_config(self)
        for name in (
            "success_rate",
            "comms_failure_rate",
            "late_data_share",
            "negative_spike_rate",
            "zero_run_rate",
            "duplicate_rate",
        ):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"RetrievalConfig.{name} must be within [0, 1], got {v}")
        if self.negative_spike_rate + self.zero_run_rate + self.duplicate_rate > 1.0:
            raise ValueError("RetrievalConfig: the three HH fault rates must sum to at most 1")
        if int(self.retry_days) != self.retry_days or self.retry_days < 0:
            raise ValueError(f"RetrievalConfig.retry_days must be an integer >= 0, got {self.retry_days}")
        if self.comms_spell_mean_days < 1:
            raise ValueError(
                f"RetrievalConfig.comms_spell_mean_days must be >= 1, got {self.comms_spell_mean_days}"
            )
        for name, lo_min in (
            ("attempt_hours_utc", 0),
            ("late_delay_days", 1),
            ("negative_spike_kwh", 0),
            ("zero_run_periods", 1),
            ("duplicate_factor", 0),
            ("duplicate_delay_hours", 0),
        ):
            lo, hi = getattr(self, name)
            if not lo_min <= lo <= hi:
                raise ValueError(
                    f"RetrievalConfig.{name} must be a range {lo_min} <= lo <= hi, got {(lo, hi)}"
                )
        if self.attempt_hours_utc[1] >= 24:
            raise ValueError("RetrievalConfig.attempt_hours_utc must lie within a day (< 24 h)")
        if self.zero_run_periods[1] > 46:
            raise ValueError("RetrievalConfig.zero_run_periods must not exceed 46 periods (one short day)")

    @classmethod
    def from_scenario(cls, scenario: Any = None, **overrides) -> RetrievalConfig:
        """Defaults, overridden by ``scenario.retrieval`` fields of the same name, then ``overrides``."""
        values: dict[str, Any] = {}
        section = getattr(scenario, "retrieval", None)
        if section is not None:
            for f in dataclasses.fields(cls):
                if hasattr(section, f.name):
                    values[f.name] = getattr(section, f.name)
        values.update(overrides)
        return cls(**values)


@dataclass
class Retrieval:
    """What the retrieval service received.

    Attributes
    ----------
    hh : Dataset
        dims (``mpan``, ``time``) over the DCC-enrolled MPANs and the market's time axis; coords
        ``settlement_date``/``settlement_period`` on ``time``. ``energy`` = delivered HH value
        [kWh] (NaN where the day was never retrieved; faults included); ``available_at``
        (datetime64[ns] UTC, NaT where never retrieved) = when the data service held it.
    days : DataFrame
        One row per MPAN x settlement day: ``mpan``, ``settlement_date``, ``attempts`` (int),
        ``outcome`` (:data:`OUTCOMES`), ``comms_failure`` (bool: an attempt fell in a spell),
        ``late`` (bool), ``available_at`` (NaT if never retrieved).
    duplicates : DataFrame
        Extra HH records (a period sent again with another value): ``mpan``, ``time``,
        ``energy`` [kWh], ``available_at``.
    register_reads : DataFrame
        Daily register reads of retrieved days at the end of the settlement day
        (:data:`~tomlib.services.metering.READ_COLUMNS` + truth, ``read_type`` "remote").
    faults : DataFrame
        Truth of the injected HH faults, one row per affected period: ``mpan``, ``time``, ``fault``
        ("negative_spike" | "zero_run" | "duplicate_conflict"), ``true_energy``,
        ``delivered_energy`` [kWh], ``available_at``.
    spells : DataFrame
        Comms-failure spells: ``mpan``, ``start``, ``end`` (UTC day starts, end exclusive).
    config : RetrievalConfig
    """

    hh: xr.Dataset
    days: pd.DataFrame
    duplicates: pd.DataFrame
    register_reads: pd.DataFrame
    faults: pd.DataFrame
    spells: pd.DataFrame
    config: RetrievalConfig
    attrs: dict[str, Any] = field(default_factory=dict)


def _rng(seed: int, name: str) -> np.random.Generator:
    return rng_stream(seed, SERVICE_KEY, STREAMS[name])


def retrieve(
    market, metering: Metering, config: RetrievalConfig | Any | None = None, *, seed: int | None = None
) -> Retrieval:
    """Simulate DCC retrieval for every DCC-enrolled MPAN and settlement day of the market.

    Parameters
    ----------
    market : tomlib.market.Market
        True energy [kWh per period].
    metering : Metering
        From :func:`tomlib.services.metering.build_metering` on the same market.
    config : RetrievalConfig or Scenario, optional
        A Scenario is turned into one by :meth:`RetrievalConfig.from_scenario`.
    seed : int, optional
        Default: ``metering.seed``.

    Returns
    -------
    Retrieval
    """
    if config is None or not isinstance(config, RetrievalConfig):
        config = RetrievalConfig.from_scenario(config)
    seed = int(metering.seed if seed is None else seed)
    keys = metering._keys()
    codes, mpans = metering._mpan_subset(keys, True)  # MPAN codes (for register joins) and MPANs
    n = mpans.size
    times = pd.DatetimeIndex(market.meters["time"].to_numpy())
    dates, _ = cal.from_utc(times)
    days = pd.DatetimeIndex(dates.unique())
    n_d = len(days)
    day_of_t = days.get_indexer(dates)
    day_start = np.searchsorted(day_of_t, np.arange(n_d))
    day_len = np.diff(np.append(day_start, len(times)))
    # true energy of MPAN i is source[source_rows[i]]
    source, source_rows = _energy_rows(market, keys, codes, mpans) if n else (
        np.zeros((0, len(times))), np.zeros(0, dtype=np.int64))

    # Attempts: R + 1 per day; attempt day a = d + 1 + k (UTC days after the first settlement day).
    r = int(config.retry_days)
    k = np.arange(r + 1)
    a = np.arange(n_d)[:, None] + 1 + k[None, :]  # (day, attempt)
    ok = _rng(seed, "attempts").random((n, n_d, r + 1)) < config.success_rate
    rng_s = _rng(seed, "spells")
    has_spell = rng_s.random(n) < config.comms_failure_rate
    spell_start = rng_s.integers(1, n_d + 1, n)
    spell_len = rng_s.geometric(1.0 / config.comms_spell_mean_days, n)
    spell_end = spell_start + spell_len
    in_spell = (
        has_spell[:, None, None]
        & (a[None] >= spell_start[:, None, None])
        & (a[None] < spell_end[:, None, None])
    )
    ok &= ~in_spell
    got = ok.any(axis=2)
    first = np.argmax(ok, axis=2)
    attempt_day = (np.arange(n_d)[None, :] + 1 + first).astype(np.int64)
    attempts = np.where(got, first + 1, r + 1)
    comms = in_spell.any(axis=2)
    backfill = ~got & comms & bool(config.backfill_after_spell)
    attempt_day = np.where(backfill, np.broadcast_to(spell_end[:, None], (n, n_d)), attempt_day)
    attempts = np.where(backfill, r + 2, attempts)
    retrieved = got | backfill
    outcome = np.where(  # position in OUTCOMES
        backfill, 2, np.where(~got, 3, np.where(first == 0, 0, 1))
    )

    # When it arrived: attempt hour, plus a late delay for a share of the retrieved days.
    lo, hi = config.attempt_hours_utc
    hours = _rng(seed, "attempt_time").uniform(lo, hi, (n, n_d))
    rng_l = _rng(seed, "late")
    late = retrieved & (rng_l.random((n, n_d)) < config.late_data_share)
    late_days = rng_l.integers(config.late_delay_days[0], config.late_delay_days[1] + 1, (n, n_d))
    base = days[0].to_datetime64().astype("datetime64[ns]")
    avail = (
        base
        + attempt_day * _DAY
        + np.round(hours * 3600).astype(np.int64) * np.timedelta64(10**9, "ns")
        + np.where(late, late_days, 0) * _DAY
    )
    avail = np.where(retrieved, avail, np.datetime64("NaT"))

    # Delivered HH values and injected faults.
    if source.dtype == np.float64:  # gathered, masked and spread over the periods in one pass
        delivered, avail_t = _kernel.delivered_hh(source, source_rows, retrieved, avail, day_of_t)
    else:
        delivered = np.where(retrieved[:, day_of_t], source[source_rows], np.nan)
        avail_t = np.take(avail, day_of_t, axis=1)  # row-major, as the Dataset keeps it (no reordering copy)
    faults, duplicates = _inject_faults(
        _rng(seed, "faults"),
        config,
        delivered,
        source,
        source_rows,
        avail,
        retrieved,
        day_start,
        day_len,
        mpans,
        times,
    )

    mpan_text = _str_array(mpans)
    if n:  # the MPAN index from the Arrow text already made (xarray would convert every MPAN again)
        coords = xr.Coordinates.from_xindex(
            xr.indexes.PandasIndex(pd.Index(mpan_text, name="mpan"), "mpan", coord_dtype=mpans.dtype))
    else:
        coords = {"mpan": mpans}
    hh = xr.Dataset(
        {
            "energy": (("mpan", "time"), delivered, {"units": "kWh", "long_name": "HH energy as retrieved"}),
            "available_at": (
                ("mpan", "time"),
                avail_t,
                {"long_name": "when the data service held the value (UTC)"},
            ),
        },
        coords=coords,
    ).assign_coords(time=times.to_numpy())
    hh = hh.assign_coords(
        settlement_date=("time", dates.to_numpy()), settlement_period=("time", cal.from_utc(times)[1])
    )
    hh["time"].attrs.update({"timezone": "UTC", "label": "start", "period": "PT30M"})

    day_table = pd.DataFrame(
        {
            "mpan": mpan_text.take(np.repeat(np.arange(n), n_d)),
            "settlement_date": np.tile(days.to_numpy(), n),
            "attempts": attempts.ravel().astype(np.int64),
            "outcome": _labels(OUTCOMES, outcome.ravel()),
            "comms_failure": comms.ravel(),
            "late": late.ravel(),
            "available_at": avail.ravel(),
        }
    )
    spells = pd.DataFrame(
        {
            "mpan": mpan_text.take(np.flatnonzero(has_spell)),
            "start": base + spell_start[has_spell] * _DAY,
            "end": base + spell_end[has_spell] * _DAY,
        }
    )
    reads = _register_reads(metering, keys, codes, days, retrieved, avail)
    return Retrieval(
        hh=hh,
        days=day_table,
        duplicates=duplicates,
        register_reads=reads,
        faults=faults,
        spells=spells,
        config=config,
        attrs={
            "n_mpans": int(n),
            "n_days": int(n_d),
            "retrieved_days": int(retrieved.sum()),
            "gave_up_days": int((~retrieved).sum()),
            "late_days": int(late.sum()),
            "backfilled_days": int(backfill.sum()),
            "n_faults": len(faults),
            "n_duplicates": len(duplicates),
        },
    )


def _inject_faults(rng, config, delivered, source, source_rows, avail, retrieved, day_start, day_len, mpans, times):
    """Apply at most one fault per retrieved MPAN-day in place; return the faults and duplicates tables.
    The true energy of MPAN ``i`` is ``source[source_rows[i]]`` [kWh per period]."""
    n, n_d = retrieved.shape
    u = rng.random((n, n_d))
    c1 = config.negative_spike_rate
    c2 = c1 + config.zero_run_rate
    c3 = c2 + config.duplicate_rate
    kind = np.where(~retrieved, 0, np.where(u < c1, 1, np.where(u < c2, 2, np.where(u < c3, 3, 0))))
    pos_u = rng.random((n, n_d))
    mag = rng.uniform(*config.negative_spike_kwh, (n, n_d))
    run_len = rng.integers(config.zero_run_periods[0], config.zero_run_periods[1] + 1, (n, n_d))
    factor_lo, factor_hi = config.duplicate_factor
    factor = rng.uniform(factor_lo, factor_hi, (n, n_d))
    factor = np.where(np.abs(factor - 1.0) < 0.05, 1.0 + np.copysign(0.05, factor - 1.0 + 1e-12), factor)
    dup_delay = rng.uniform(*config.duplicate_delay_hours, (n, n_d))
    start_j = np.floor(pos_u * day_len[None, :]).astype(np.int64)

    frames = []
    dup = pd.DataFrame(
        {
            "mpan": pd.array([], dtype="str"),
            "time": np.array([], dtype="datetime64[ns]"),
            "energy": np.array([], dtype=float),
            "available_at": np.array([], dtype="datetime64[ns]"),
        }
    )
    t_ns = times.to_numpy()
    # Negative spikes: one period.
    m, d = np.nonzero(kind == 1)
    if m.size:
        j = day_start[d] + start_j[m, d]
        delivered[m, j] = -mag[m, d]
        frames.append(
            _fault_frame(mpans[m], t_ns[j], "negative_spike", source[source_rows[m], j], delivered[m, j],
                         avail[m, d])
        )
    # Zero runs: periods start..start+len-1, cut at the end of the day.
    m, d = np.nonzero(kind == 2)
    if m.size:
        length = np.minimum(run_len[m, d], day_len[d])
        first = day_start[d] + np.minimum(start_j[m, d], day_len[d] - length)
        rep = np.repeat(np.arange(m.size), length)
        j = first[rep] + (np.arange(rep.size) - np.repeat(np.cumsum(length) - length, length))
        mm = m[rep]
        delivered[mm, j] = 0.0
        frames.append(
            _fault_frame(
                mpans[mm], t_ns[j], "zero_run", source[source_rows[mm], j], delivered[mm, j], avail[mm, d[rep]]
            )
        )
    # Duplicates with another value, arriving later.
    m, d = np.nonzero(kind == 3)
    if m.size:
        j = day_start[d] + start_j[m, d]
        true_energy = source[source_rows[m], j]
        value = true_energy * factor[m, d]
        at = avail[m, d] + np.round(dup_delay[m, d] * 3600).astype(np.int64) * np.timedelta64(10**9, "ns")
        dup = pd.DataFrame(
            {"mpan": pd.array(mpans[m], dtype="str"), "time": t_ns[j], "energy": value, "available_at": at}
        )
        frames.append(_fault_frame(mpans[m], t_ns[j], "duplicate_conflict", true_energy, value, at))
    if frames:
        faults = pd.concat(frames, ignore_index=True)
    else:
        faults = _fault_frame(
            np.array([], dtype=str),
            np.array([], dtype="datetime64[ns]"),
            "",
            np.array([], dtype=float),
            np.array([], dtype=float),
            np.array([], dtype="datetime64[ns]"),
        )
    faults = faults.sort_values(["mpan", "time", "fault"], kind="stable").reset_index(drop=True)
    dup = dup.sort_values(["mpan", "time"], kind="stable").reset_index(drop=True)
    return faults, dup


def _fault_frame(mpan, time, fault, true_energy, delivered_energy, available_at) -> pd.DataFrame:
    n = len(mpan)
    return pd.DataFrame(
        {
            "mpan": pd.array(np.asarray(mpan).astype(str), dtype="str"),
            "time": np.asarray(time, dtype="datetime64[ns]"),
            "fault": pd.array(np.full(n, fault).astype(str), dtype="str"),
            "true_energy": np.asarray(true_energy, dtype=float),
            "delivered_energy": np.asarray(delivered_energy, dtype=float),
            "available_at": np.asarray(available_at, dtype="datetime64[ns]"),
        }
    )


def _energy_rows(market, keys, codes, mpans) -> tuple[np.ndarray, np.ndarray]:
    """True energy of the MPANs [kWh per period], ``market.meters["energy"].sel(mpan=mpans)``, as an
    array and the row of each MPAN in it: the market's own array and positions when the metering was
    built on this market's MPAN axis (checked), else the selection by label and its rows."""
    energy = market.meters["energy"]
    rows = keys.market_rows
    axis = _market_mpans(market.meters)
    if rows is not None and energy.dims[0] == "mpan" and rows.size and int(rows.max()) < axis.size \
            and _unique_labels(axis, market.meters.indexes["mpan"]):
        pos = rows[codes]
        if (axis[pos] == mpans).all():
            return energy.to_numpy(), pos
    return energy.sel(mpan=mpans).to_numpy(), np.arange(mpans.size)


def _unique_labels(text: np.ndarray, index: pd.Index) -> bool:
    """``index.is_unique`` of an index whose labels are ``text``: on integer keys of the text when it
    can be keyed (equal keys for equal text) rather than hashing the Arrow strings."""
    keys = _int_keys(text) if text.dtype.kind == "U" and text.size else None
    if keys is None:
        return bool(index.is_unique)
    ordered = np.sort(keys)
    return not bool((ordered[1:] == ordered[:-1]).any())


def _register_reads(metering: Metering, keys, codes, days, retrieved, avail) -> pd.DataFrame:
    """End-of-day register reads of every retrieved MPAN-day (MPANs as codes of ``keys``)."""
    m, d = np.nonzero(retrieved)
    if m.size == 0:
        return empty_reads()
    next_day = np.minimum(np.arange(len(days)) + 1, len(days) - 1)
    end_of_day = cal.to_utc(days[next_day], 1).to_numpy()[d]  # per day once, then per MPAN-day
    last = d == len(days) - 1
    end_of_day[last] = metering.boundaries[-1]
    event, rows = metering._rows_in_service(keys, codes[m], end_of_day)
    at = end_of_day[event]
    true = metering.true_value(rows, at)
    shown, wraps = metering.displayed(rows, true)
    reg = metering.registers
    out = _read_frame(
        _take_text(reg, "mpan", rows),
        _take_text(reg, "meter_id", rows),
        _take_text(reg, "register_id", rows),
        at,
        shown,
        "remote",
        avail[m, d][event],
        shown,
        wraps,
        "",
    )
    return out


def visible(retrieval: Retrieval, as_of) -> tuple[xr.Dataset, pd.DataFrame, pd.DataFrame]:
    """What a settlement run with as-of instant ``as_of`` can see.

    Parameters
    ----------
    retrieval : Retrieval
    as_of : datetime-like
        As-of instant of the run [UTC, tz-naive].

    Returns
    -------
    hh : Dataset
        ``retrieval.hh`` with ``energy`` set to NaN where ``available_at > as_of`` (or NaT).
    duplicates : DataFrame
        The duplicate records with ``available_at <= as_of``.
    register_reads : DataFrame
        The register reads with ``available_at <= as_of``.
    """
    t = np.datetime64(pd.Timestamp(as_of), "ns")
    seen = retrieval.hh["available_at"] <= t
    hh = retrieval.hh.copy()
    hh["energy"] = retrieval.hh["energy"].where(seen)
    dup = retrieval.duplicates[retrieval.duplicates["available_at"].to_numpy() <= t].reset_index(drop=True)
    reads = retrieval.register_reads[retrieval.register_reads["available_at"].to_numpy() <= t].reset_index(
        drop=True
    )
    return hh, dup, reads


def bench_inputs(mpan_days: int = 100_000, days: int = 7, seed: int = 0) -> dict:
    """Keyword arguments of :func:`retrieve` for the benchmark: a synthetic market whose MPANs are all
    DCC-enrolled, its metering, and the default config.

    Meter-periods processed = ``result.hh.energy.size`` (DCC MPANs x periods).
    """
    from tomlib.services.metering import MeteringConfig, bench_market, build_metering

    market = bench_market(mpan_days, days, seed)
    metering = build_metering(market, MeteringConfig(dcc_share=1.0, smart_traditional_share=0.0))
    return {"market": market, "metering": metering}
