"""Meter Reading Service (non-smart meters and smart meters in traditional mode): manual register reads.

The Meter Reading Service (mhhs-domain.md §2.4) obtains cumulative register reads of the meters
that the DCC does not read: traditional meters and smart meters in traditional mode
(``dcc_enrolled`` False in :class:`~tomlib.services.metering.Metering`). :func:`read_meters`
simulates the read schedule of every such MPAN over the market's window and what reaches the data
service, with realistic faults and an ``available_at`` per read. :func:`screen_reads` is the
intake check: reads for unknown MPANs, meters or registers, future-dated reads, impossible values
and duplicates are refused with a reason, one row each, and counted; nothing disappears.

Read schedule [INF]
-------------------
- ``opening``: the last read the data service holds from before the window, placed at the window
  start for every register in service then (the model has no energy before the window).
- ``site_visit``: a routine visit every ``site_visit_interval_days`` with a random phase, on a
  half-hour boundary between local 08:00 and 18:00.
- ``customer``: a share ``customer_read_share`` of MPANs send own reads every
  ``customer_read_interval_days`` (random phase), local 07:00-22:00.
- ``deemed``: with probability ``deemed_read_daily_rate`` per MPAN and day (not the first), a
  deemed read at local midnight whose value is estimated: the register's start value plus the true
  advance times a lognormal error (sd ``deemed_error_sd``).
- ``removal`` / ``installation``: the meter-exchange reads of :attr:`Metering.exchange_reads`.
A read event reads every register of the meter installed at that instant. Values are what the
meter shows: whole kWh, modulo ``10**digits`` (so registers roll over).

Faults (``fault`` column; truth in ``true_value`` and ``true_rollovers``)
-------------------------------------------------------------------------
Only on site-visit and customer reads, at most one per read, at small rates: per read event
``out_of_order`` (arrives 10-40 days late, after later reads), ``duplicate`` (the event sent again,
an extra row), ``future_dated`` (read date keyed a year late), ``unknown_meter`` (serial
mistyped), ``unknown_mpan`` (one MPAN digit wrong); per register ``transposed_digits`` (two
adjacent different digits swapped) and ``impossible_value`` (more digits than the register has).

Determinism: streams ``SeedSequence(seed, spawn_key=(SERVICE_KEY, k))`` with :data:`STREAMS`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc
from pandas.errors import InvalidIndexError

from tomlib import calendar as cal
from tomlib._text import label_text as _labels
from tomlib._text import numpy_text as _unicode
from tomlib._text import take_text as _take_text
from tomlib.services import _smart_inputs_kernel as _kernel
from tomlib.services._processing_keys import joint_codes
from tomlib.services._smart_inputs_kernel import int_keys as _int_keys
from tomlib.services.metering import (
    READ_COLUMNS,
    Metering,
    _market_mpans,
    _read_frame,
    normalise_config,
    rng_stream,
)

__all__ = [
    "REJECT_REASONS",
    "SERVICE_KEY",
    "STREAMS",
    "MeterReading",
    "MeterReadingConfig",
    "ScreenedReads",
    "bench_inputs",
    "read_meters",
    "screen_reads",
    "transpose_digits",
]

#: Spawn-key root of this service's random streams.
SERVICE_KEY = 303
#: Fixed sub-key of each random stream. Append new components; never renumber.
STREAMS = {
    "site": 0,
    "customer": 1,
    "deemed": 2,
    "delays": 3,
    "event_faults": 4,
    "row_faults": 5,
    "deemed_error": 6,
}
#: Reasons :func:`screen_reads` gives, in the order the checks run.
REJECT_REASONS = (
    "invalid_mpan",
    "unknown_mpan",
    "unknown_meter",
    "unknown_register",
    "impossible_value",
    "future_dated",
    "meter_not_installed",
    "duplicate",
    "conflicting_duplicate",
)

#: Values of the ``fault`` column of generated manual reads.
_FAULT_LABELS = ("", "out_of_order", "duplicate", "future_dated", "unknown_meter", "unknown_mpan",
                 "transposed_digits", "impossible_value")

_DAY = np.timedelta64(86_400 * 10**9, "ns")
_SEC = np.timedelta64(10**9, "ns")
_PERIOD_NS = np.timedelta64(30 * 60 * 10**9, "ns")


@dataclass(frozen=True)
class MeterReadingConfig:
    """[INF] Knobs of the meter reading model (a scenario's ``meter_reading`` section overrides
    fields of the same name).

    Attributes
    ----------
    site_visit_interval_days : float
        Days between routine site visits [days].
    customer_read_share : float
        Share of MPANs whose customer sends own reads [-].
    customer_read_interval_days : float
        Days between customer reads [days].
    deemed_read_daily_rate : float
        Probability per MPAN and day of a deemed read [-].
    deemed_error_sd : float
        Log-space sd of the deemed advance's error [-].
    site_visit_delay_hours, customer_delay_hours, deemed_delay_hours : tuple of float
        Range of the delay from ``read_at`` to ``available_at`` per read type [h].
    out_of_order_delay_days : tuple of float
        Extra delay of an out-of-order read [days].
    transposed_rate_customer, transposed_rate_site : float
        Probability per register read of transposed digits [-].
    impossible_value_rate : float
        Probability per register read of an impossible value [-].
    out_of_order_rate, duplicate_rate, future_dated_rate, unknown_meter_rate, unknown_mpan_rate : float
        Probability per read event of each fault [-].
    """

    site_visit_interval_days: float = 91.0
    customer_read_share: float = 0.5
    customer_read_interval_days: float = 30.0
    deemed_read_daily_rate: float = 0.003
    deemed_error_sd: float = 0.25
    site_visit_delay_hours: tuple[float, float] = (2.0, 72.0)
    customer_delay_hours: tuple[float, float] = (0.1, 24.0)
    deemed_delay_hours: tuple[float, float] = (24.0, 120.0)
    out_of_order_delay_days: tuple[float, float] = (10.0, 40.0)
    transposed_rate_customer: float = 0.01
    transposed_rate_site: float = 0.002
    impossible_value_rate: float = 0.001
    out_of_order_rate: float = 0.01
    duplicate_rate: float = 0.005
    future_dated_rate: float = 0.002
    unknown_meter_rate: float = 0.002
    unknown_mpan_rate: float = 0.001

    def __post_init__(self) -> None:
        normalise_config(self)
        shares = (
            "customer_read_share",
            "deemed_read_daily_rate",
            "transposed_rate_customer",
            "transposed_rate_site",
            "impossible_value_rate",
            "out_of_order_rate",
            "duplicate_rate",
            "future_dated_rate",
            "unknown_meter_rate",
            "unknown_mpan_rate",
        )
        for name in shares:
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"MeterReadingConfig.{name} must be within [0, 1], got {v}")
        event = sum(
            getattr(self, n)
            for n in (
                "out_of_order_rate",
                "duplicate_rate",
                "future_dated_rate",
                "unknown_meter_rate",
                "unknown_mpan_rate",
            )
        )
        if event > 1:
            raise ValueError("MeterReadingConfig: the per-event fault rates must sum to at most 1")
        if max(self.transposed_rate_customer, self.transposed_rate_site) + self.impossible_value_rate > 1:
            raise ValueError("MeterReadingConfig: the per-register fault rates must sum to at most 1")
        for name in ("site_visit_interval_days", "customer_read_interval_days"):
            if getattr(self, name) <= 0:
                raise ValueError(f"MeterReadingConfig.{name} must be > 0, got {getattr(self, name)}")
        if self.deemed_error_sd < 0:
            raise ValueError(f"MeterReadingConfig.deemed_error_sd must be >= 0, got {self.deemed_error_sd}")
        for name in (
            "site_visit_delay_hours",
            "customer_delay_hours",
            "deemed_delay_hours",
            "out_of_order_delay_days",
        ):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"MeterReadingConfig.{name} must be a range 0 <= lo <= hi, got {(lo, hi)}")

    @classmethod
    def from_scenario(cls, scenario: Any = None, **overrides) -> MeterReadingConfig:
        """Defaults, overridden by ``scenario.meter_reading`` fields of the same name, then ``overrides``."""
        values: dict[str, Any] = {}
        section = getattr(scenario, "meter_reading", None)
        if section is not None:
            for f in dataclasses.fields(cls):
                if hasattr(section, f.name):
                    values[f.name] = getattr(section, f.name)
        values.update(overrides)
        return cls(**values)


@dataclass
class MeterReading:
    """Reads received by the data service for the hand-read MPANs.

    Attributes
    ----------
    reads : DataFrame
        One row per register read, in arrival order (``available_at``), columns
        :data:`~tomlib.services.metering.READ_COLUMNS` + ``true_value`` [kWh], ``true_rollovers``
        [-], ``fault`` (str, "" none) and ``out_of_order`` (bool: a read of the same register taken
        later arrived earlier). Includes the opening and the exchange reads of these MPANs.
    config : MeterReadingConfig
    attrs : dict
        Counts per read type and fault.
    """

    reads: pd.DataFrame
    config: MeterReadingConfig
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class ScreenedReads:
    """Result of :func:`screen_reads`.

    Attributes
    ----------
    accepted : DataFrame
        Reads that passed, input columns, sorted by ``available_at``.
    rejected : DataFrame
        One row per refused read: ``mpan``, ``time`` (= read_at), ``field``, ``reason``
        (:data:`REJECT_REASONS`), ``value`` (str, the offending field's value), ``meter_id``,
        ``register_id``, ``read_at``, ``available_at``, ``read_type``.
    checks : dict
        ``in_records``, ``accepted``, ``rejected``, ``rejected_<reason>`` per reason and
        ``not_yet_available`` (reads after ``as_of``, in neither table); in = accepted + rejected.
    """

    accepted: pd.DataFrame
    rejected: pd.DataFrame
    checks: dict[str, float]


def _rng(seed: int, name: str) -> np.random.Generator:
    return rng_stream(seed, SERVICE_KEY, STREAMS[name])


def _local_days_to_utc(days: np.ndarray, half_hour: np.ndarray) -> np.ndarray:
    """UTC instants of local wall-clock half hour ``half_hour`` (0..47, outside 01:00-02:00) of local days."""
    local = pd.DatetimeIndex(days.astype("datetime64[ns]") + half_hour * _PERIOD_NS)
    utc = (
        local.tz_localize(cal.TZ, ambiguous="raise", nonexistent="raise").tz_convert("UTC").tz_localize(None)
    )
    return utc.as_unit("ns").to_numpy()


def _periodic(
    rng, n_mpans: int, n_days: int, interval: float, who: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Day indices of a periodic schedule with a random phase: (mpan position, day index)."""
    phase = rng.random(n_mpans) * interval
    k_max = int(np.ceil(n_days / interval)) + 1
    offs = phase[:, None] + np.arange(k_max)[None, :] * interval
    ok = (offs < n_days) & who[:, None]
    m, k = np.nonzero(ok)
    return m, np.floor(offs[m, k]).astype(np.int64)


def _uniform_delay(rng, lo_hi, n, unit_seconds: float) -> np.ndarray:
    return np.round(rng.uniform(lo_hi[0], lo_hi[1], n) * unit_seconds).astype(np.int64) * _SEC


def read_meters(
    market, metering: Metering, config: MeterReadingConfig | Any | None = None, *, seed: int | None = None
) -> MeterReading:
    """Simulate the reads of every hand-read MPAN of the smart segment over the market's window.

    Parameters
    ----------
    market : tomlib.market.Market
        Gives the window and the MPAN list for the unknown-MPAN fault.
    metering : Metering
        From :func:`tomlib.services.metering.build_metering`; gives meters, registers and the truth.
    config : MeterReadingConfig or Scenario, optional
        A Scenario is turned into one by :meth:`MeterReadingConfig.from_scenario`.
    seed : int, optional
        Default: ``metering.seed``.

    Returns
    -------
    MeterReading
    """
    if config is None or not isinstance(config, MeterReadingConfig):
        config = MeterReadingConfig.from_scenario(config)
    seed = int(metering.seed if seed is None else seed)
    keys = metering._keys()
    codes, mpans = metering._mpan_subset(keys, False)  # MPAN codes (for register joins) and MPANs
    n = mpans.size
    b = metering.boundaries
    times = pd.DatetimeIndex(b[:-1])
    days = pd.DatetimeIndex(cal.from_utc(times)[0].unique()).to_numpy().astype("datetime64[D]")
    n_d = days.size

    # Events (mpan position, read_at, type).
    ev_m, ev_at, ev_type = [np.arange(n)], [np.full(n, b[0])], [np.full(n, "opening")]
    rng = _rng(seed, "site")
    m, d = _periodic(rng, n, n_d, config.site_visit_interval_days, np.ones(n, dtype=bool))
    ev_m.append(m)
    ev_at.append(_local_days_to_utc(days[d], rng.integers(16, 36, m.size)))
    ev_type.append(np.full(m.size, "site_visit"))
    rng = _rng(seed, "customer")
    who = rng.random(n) < config.customer_read_share
    m, d = _periodic(rng, n, n_d, config.customer_read_interval_days, who)
    ev_m.append(m)
    ev_at.append(_local_days_to_utc(days[d], rng.integers(14, 44, m.size)))
    ev_type.append(np.full(m.size, "customer"))
    rng = _rng(seed, "deemed")
    hit = rng.random((n, n_d)) < config.deemed_read_daily_rate
    hit[:, 0] = False
    m, d = np.nonzero(hit)
    ev_m.append(m)
    ev_at.append(
        cal.to_utc(days[d].astype("datetime64[ns]"), 1).to_numpy()
        if m.size
        else np.array([], dtype="datetime64[ns]")
    )
    ev_type.append(np.full(m.size, "deemed"))
    ev_m = np.concatenate(ev_m)
    ev_at = np.concatenate(ev_at).astype("datetime64[ns]")
    ev_type = np.concatenate(ev_type).astype(str)
    # One read per MPAN and instant: a site visit wins over a customer read at the same half hour.
    prio = np.select([ev_type == "opening", ev_type == "site_visit", ev_type == "customer"], [0, 1, 2], 3)
    order = np.lexsort((prio, ev_at, ev_m))
    ev_m, ev_at, ev_type = ev_m[order], ev_at[order], ev_type[order]
    # [: size]: with no MPAN read by hand there are no events, and no leading True either
    keep = np.r_[True, (ev_m[1:] != ev_m[:-1]) | (ev_at[1:] != ev_at[:-1])][: ev_m.size]
    # The meter-exchange visit already reads the meters at its instant.
    ex = metering.exchanges
    ex_codes, ev_codes, _ = joint_codes([keys.mpan_codes(_unicode(ex["mpan"])), ex["exchanged_at"].to_numpy()],
                                        [codes[ev_m], ev_at])
    keep &= ~np.isin(ev_codes, ex_codes)
    ev_m, ev_at, ev_type = ev_m[keep], ev_at[keep], ev_type[keep]

    # One row per register of the meter installed at the event.
    event, rows = metering._rows_in_service(keys, codes[ev_m], ev_at)
    at = ev_at[event]
    rtype = ev_type[event]
    true = metering.true_value(rows, at)
    shown, wraps = metering.displayed(rows, true)
    value = shown.copy()
    deemed = rtype == "deemed"
    if deemed.any():
        start = metering.registers["true_start_value"].to_numpy()[rows[deemed]]
        err = np.exp(_rng(seed, "deemed_error").normal(0.0, config.deemed_error_sd, int(deemed.sum())))
        value[deemed] = metering.displayed(rows[deemed], start + (true[deemed] - start) * err)[0]

    # available_at by read type.
    rng = _rng(seed, "delays")
    avail = at.copy()
    for name, lo_hi in (
        ("site_visit", config.site_visit_delay_hours),
        ("customer", config.customer_delay_hours),
        ("deemed", config.deemed_delay_hours),
    ):
        # Every register of one event arrives together.
        ev_sel = np.flatnonzero(ev_type == name)
        delay_ev = np.zeros(ev_type.size, dtype="timedelta64[ns]")
        delay_ev[ev_sel] = _uniform_delay(rng, lo_hi, ev_sel.size, 3600.0)
        mask = rtype == name
        avail[mask] = at[mask] + delay_ev[event[mask]]

    reg = metering.registers
    out_mpan = _take_text(reg, "mpan", rows)
    out_meter = _take_text(reg, "meter_id", rows)
    out_reg = _take_text(reg, "register_id", rows)
    fault = np.zeros(rows.size, dtype=np.int64)  # position in _FAULT_LABELS
    read_at = at.copy()

    # Event faults on actual reads.
    rng = _rng(seed, "event_faults")
    actual_ev = np.isin(ev_type, ("site_visit", "customer"))
    u = rng.random(ev_type.size)
    names = ("out_of_order", "duplicate", "future_dated", "unknown_meter", "unknown_mpan")
    edges = np.cumsum([getattr(config, f"{k}_rate") for k in names])
    ev_fault = np.where(actual_ev & (u < edges[-1]), np.searchsorted(edges, u, side="right"), -1)
    ev_delay = _uniform_delay(rng, config.out_of_order_delay_days, ev_type.size, 86_400.0)
    dup_delay = _uniform_delay(rng, (1.0, 72.0), ev_type.size, 3600.0)
    row_fault = ev_fault[event]
    for code, name in enumerate(names):
        sel = row_fault == code
        fault[sel] = _FAULT_LABELS.index(name)
    sel = row_fault == 0
    avail[sel] += ev_delay[event[sel]]
    sel = row_fault == 2
    read_at[sel] += 365 * _DAY
    sel = np.flatnonzero(row_fault == 3)
    if sel.size:
        out_meter = out_meter.copy()
        out_meter[sel] = np.array([s[0] + "QQ" + s[3:] for s in out_meter.take(sel).to_numpy(dtype=str)])
    sel = np.flatnonzero(row_fault == 4)
    if sel.size:
        out_mpan = out_mpan.copy()
        out_mpan[sel] = _mistype_mpans(
            out_mpan.take(sel).to_numpy(dtype=str), _market_mpans(market.meters)
        )

    # Register faults on actual reads without an event fault.
    rng = _rng(seed, "row_faults")
    u = rng.random(rows.size)
    rate_t = np.where(
        rtype == "customer",
        config.transposed_rate_customer,
        np.where(rtype == "site_visit", config.transposed_rate_site, 0.0),
    )
    free = np.isin(rtype, ("site_visit", "customer")) & (row_fault < 0)
    digits = reg["digits"].to_numpy()[rows]
    pick = rng.random(rows.size)
    extra = rng.integers(1, 10, rows.size)
    sel = np.flatnonzero(free & (u < rate_t))
    if sel.size:
        new, done = transpose_digits(value[sel], digits[sel], pick[sel])
        value[sel[done]] = new[done]
        fault[sel[done]] = _FAULT_LABELS.index("transposed_digits")
    sel = free & (u >= rate_t) & (u < rate_t + config.impossible_value_rate)
    value[sel] = value[sel] + extra[sel] * 10.0 ** digits[sel]
    fault[sel] = _FAULT_LABELS.index("impossible_value")

    type_names, type_code = np.unique(ev_type, return_inverse=True)  # the read types: few labels
    reads = _read_frame(
        out_mpan,
        out_meter,
        out_reg,
        read_at,
        value,
        _labels(type_names, type_code.reshape(-1)[event]),
        avail,
        shown,
        wraps,
        _labels(_FAULT_LABELS, fault),
    )
    # Duplicates: the whole event again, later.
    dup_rows = np.flatnonzero(row_fault == 1)
    if dup_rows.size:
        copy = reads.iloc[dup_rows].copy()
        copy["available_at"] = copy["available_at"].to_numpy() + dup_delay[event[dup_rows]]
        reads.loc[reads.index[dup_rows], "fault"] = ""
        reads = pd.concat([reads, copy], ignore_index=True)

    # Exchange reads of these MPANs.
    ex = metering.exchange_reads
    is_read = np.zeros(keys.mpans.size, dtype=bool)
    is_read[codes] = True
    ex_code = keys.mpan_codes(_unicode(ex["mpan"]))
    ex = ex[(ex_code >= 0) & is_read[np.maximum(ex_code, 0)]]
    reads = pd.concat([reads, ex], ignore_index=True) if len(ex) else reads
    reads, text_keys = _arrival_sorted(reads)
    reads["out_of_order"] = _out_of_order(reads, text_keys)
    attrs = {
        "n_mpans": int(n),
        "n_reads": len(reads),
        **{f"reads_{k}": int(v) for k, v in reads["read_type"].value_counts().sort_index().items()},
        **{f"fault_{k}": int(v) for k, v in reads["fault"].value_counts().sort_index().items() if k},
    }
    return MeterReading(reads=reads, config=config, attrs=attrs)


def _arrival_sorted(reads: pd.DataFrame) -> tuple[pd.DataFrame, list[np.ndarray] | None]:
    """``reads`` sorted (stable) by available_at, mpan, meter_id, read_at, register_id, index reset:
    one lexsort over integer keys of the text columns (they sort as the text does), else pandas.
    Also the integer keys of (mpan, meter_id, register_id) of the sorted rows (None when pandas
    sorted), for :func:`_out_of_order` not to derive them again."""
    text = [_int_keys(_unicode(reads[c])) for c in ("mpan", "meter_id", "register_id")]
    if any(k is None for k in text):
        return reads.sort_values(
            ["available_at", "mpan", "meter_id", "read_at", "register_id"], kind="stable"
        ).reset_index(drop=True), None
    mp, mid, rid = text
    at = reads["read_at"].to_numpy(dtype="datetime64[ns]")
    avail = reads["available_at"].to_numpy(dtype="datetime64[ns]")
    if np.isnat(at).any() or np.isnat(avail).any():  # pandas puts NaT last; keep its order
        return reads.sort_values(
            ["available_at", "mpan", "meter_id", "read_at", "register_id"], kind="stable"
        ).reset_index(drop=True), None
    order = np.lexsort((rid, at, mid, mp, avail))
    return reads.iloc[order].reset_index(drop=True), [k[order] for k in text]


def _mistype_mpans(cores: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Change digit 7 of each core (+1 mod 10), then further digits until none is a known MPAN."""
    out = cores.copy()
    pos = np.full(out.size, 6)
    todo = np.arange(out.size)
    while todo.size:  # one round per digit changed (almost always one): the known MPANs scanned once a round
        for i in todo:  # a few cores
            s, p = str(out[i]), int(pos[i])
            out[i] = s[:p] + str((int(s[p]) + 1) % 10) + s[p + 1 :]
        clash = todo[_kernel.rows_in(known, out[todo])]
        pos[clash] = (pos[clash] + 1) % 12
        todo = clash
    return out


def transpose_digits(values, digits, pick) -> tuple[np.ndarray, np.ndarray]:
    """Swap two adjacent, different digits of register values shown with ``digits`` places.

    Parameters
    ----------
    values : array-like of float
        Whole register values [kWh], 0 <= v < 10**digits.
    digits : array-like of int
        Register digits.
    pick : array-like of float
        Uniform [0, 1) numbers choosing which adjacent pair (among those that differ).

    Returns
    -------
    new : ndarray of float
        Values with the pair swapped (unchanged where no adjacent digits differ).
    done : ndarray of bool
        Where a swap happened.
    """
    v = np.asarray(values, dtype=np.int64)
    d = np.asarray(digits, dtype=np.int64)
    width = int(d.max()) if d.size else 0
    p = np.arange(width)  # place value exponent of the right digit of the pair (p) and left (p + 1)
    dig = (v[:, None] // 10 ** p[None, :]) % 10 if v.size else np.zeros((0, width), np.int64)
    left_ok = (p[None, :] + 1) < d[:, None]
    differ = np.zeros_like(dig, dtype=bool)
    differ[:, :-1] = (dig[:, :-1] != dig[:, 1:]) & left_ok[:, :-1]
    count = differ.sum(axis=1)
    done = count > 0
    choice = np.floor(np.asarray(pick) * np.maximum(count, 1)).astype(np.int64)
    rank = np.cumsum(differ, axis=1) - 1
    hit = differ & (rank == choice[:, None])
    pos = np.argmax(hit, axis=1)
    rows = np.arange(v.size)
    a = dig[rows, pos]
    bb = dig[rows, np.minimum(pos + 1, width - 1)] if width else a
    lo = 10**pos
    new = v - a * lo - bb * lo * 10 + bb * lo + a * lo * 10
    return np.where(done, new, v).astype(float), done


def _out_of_order(reads: pd.DataFrame, text_keys: list[np.ndarray] | None = None) -> np.ndarray:
    """True where a read of the same (mpan, meter, register) with a later read_at arrived earlier.

    ``text_keys``: integer keys of the reads' mpan, meter_id and register_id when already derived
    (:func:`_int_keys`)."""
    if not len(reads):
        return np.zeros(0, dtype=bool)
    fast = _out_of_order_sorted(reads, text_keys)
    if fast is not None:
        return fast
    # (mpan, meter, register) as one integer per read: the groups of the text key, without the text
    key = np.zeros(len(reads), dtype=np.int64)
    for column in ("mpan", "meter_id", "register_id"):
        codes, distinct = pd.factorize(reads[column].astype(str))
        key = pd.factorize(key * max(len(distinct), 1) + codes)[0]
    df = pd.DataFrame(
        {
            "key": key,
            "read_at": reads["read_at"].to_numpy(),
            "available_at": reads["available_at"].to_numpy(),
        }
    )
    grouped = df.groupby(["key", "read_at"], sort=True)
    g = grouped["available_at"].min().reset_index()
    # Earliest arrival among the reads dated strictly later: reverse running minimum, shifted by one.
    g["later_min"] = g.iloc[::-1].groupby("key", sort=False)["available_at"].cummin().iloc[::-1]
    g["later_min"] = g.groupby("key", sort=False)["later_min"].shift(-1)
    group = grouped.ngroup().to_numpy(dtype=float)  # NaN: a read without read_at is in no group
    in_group = np.isfinite(group) & (group >= 0)
    later = np.full(len(df), np.datetime64("NaT"), dtype="datetime64[ns]")
    later[in_group] = g["later_min"].to_numpy(dtype="datetime64[ns]")[group[in_group].astype(np.int64)]
    return ~np.isnat(later) & (later < df["available_at"].to_numpy(dtype="datetime64[ns]"))


def _out_of_order_sorted(reads: pd.DataFrame, text_keys: list[np.ndarray] | None = None) -> np.ndarray | None:
    """:func:`_out_of_order` by one lexsort over integer keys of the text columns (None when the text
    cannot be keyed as integers or an instant is missing: then pandas groups)."""
    text = text_keys or [_int_keys(_unicode(reads[c])) for c in ("mpan", "meter_id", "register_id")]
    at = reads["read_at"].to_numpy(dtype="datetime64[ns]")
    avail = reads["available_at"].to_numpy(dtype="datetime64[ns]")
    if any(k is None for k in text) or np.isnat(at).any() or np.isnat(avail).any():
        return None
    mp, mid, rid = text
    ra, av = at.view(np.int64), avail.view(np.int64)
    o = np.lexsort((av, ra, rid, mid, mp))  # by register, read_at, then arrival
    new_key = np.r_[True, (mp[o][1:] != mp[o][:-1]) | (mid[o][1:] != mid[o][:-1]) | (rid[o][1:] != rid[o][:-1])]
    new_group = new_key | np.r_[True, ra[o][1:] != ra[o][:-1]]
    starts = np.flatnonzero(new_group)
    group_min = av[o][starts]  # earliest arrival of each (register, read_at): the first of its group
    group_key = np.cumsum(new_key)[starts]
    # earliest arrival among the groups dated later in the same register: reverse running minimum,
    # then the next group's
    suffix = pd.Series(group_min[::-1]).groupby(group_key[::-1], sort=False).cummin().to_numpy()[::-1]
    later = np.full(starts.size, np.iinfo(np.int64).max, dtype=np.int64)
    same = group_key[1:] == group_key[:-1]
    later[:-1] = np.where(same, suffix[1:], later[:-1])
    group_of = np.empty(len(reads), dtype=np.int64)
    group_of[o] = np.cumsum(new_group) - 1
    return later[group_of] < av


def screen_reads(reads: pd.DataFrame, metering: Metering, as_of=None) -> ScreenedReads:
    """Intake checks on register reads: refuse, with a reason, what cannot be used.

    Parameters
    ----------
    reads : DataFrame
        At least :data:`~tomlib.services.metering.READ_COLUMNS`.
    metering : Metering
        The MTDs the reads are checked against.
    as_of : datetime-like, optional
        Only reads with ``available_at <= as_of`` are screened (the others have not arrived; they
        are counted as ``not_yet_available``). Also, a ``read_at`` after ``as_of`` is future-dated.

    Returns
    -------
    ScreenedReads
        The first failing check of each read gives its reason, in the order of
        :data:`REJECT_REASONS`: the MPAN core fails its check digit; the MPAN, the meter of the MPAN
        or the register of the meter is not in the MTDs; the value is not finite, negative or has
        more digits than the register; ``read_at`` is after ``available_at`` (or ``as_of``); the
        meter was not installed at ``read_at``; a read of the same (mpan, meter, register, read_at)
        arrived earlier with the same value (duplicate) or another value (conflicting_duplicate)
        -- the first arrival is kept.
    """
    missing = [c for c in READ_COLUMNS if c not in reads.columns]
    if missing:
        raise ValueError(f"screen_reads: reads lack the columns {missing}")
    avail = reads["available_at"].to_numpy(dtype="datetime64[ns]")
    if np.isnat(avail).any():
        i = int(np.flatnonzero(np.isnat(avail))[0])
        raise ValueError(
            f"screen_reads: available_at is missing (NaT) at row {i}; every read needs the "
            "instant it reached the data service"
        )
    if as_of is not None:
        t = np.datetime64(pd.Timestamp(as_of), "ns")
        arrived = avail <= t
    else:
        t = None
        arrived = np.ones(avail.size, dtype=bool)
    later = int((~arrived).sum())
    # arrival order of the reads that arrived (stable: ties keep the table's order)
    order = np.flatnonzero(arrived)
    order = order[np.argsort(avail[order], kind="stable")]
    n = order.size
    # the text keys are checked and joined in the table's order (reads of one source run in MPAN
    # order there) and only the results put in arrival order: gathering text costs more than that
    mp = _unicode(reads["mpan"])
    mid = _unicode(reads["meter_id"])
    rid = _unicode(reads["register_id"])
    value = reads["value"].to_numpy(dtype=float)[order]
    read_at = reads["read_at"].to_numpy(dtype="datetime64[ns]")[order]
    av = avail[order]
    reason = np.zeros(n, dtype=np.int64)  # 1 + position in REJECT_REASONS, 0 = not refused
    fld = np.full(n, "", dtype=object)
    shown = np.full(n, "", dtype=object)

    def flag(mask, why, field_name, source, in_table=False):
        """Give rows not yet refused the reason ``why``; ``source`` holds the offending values (in the
        table's order when ``in_table``, else in arrival order)."""
        new = mask & (reason == 0)
        reason[new] = REJECT_REASONS.index(why) + 1
        fld[new] = field_name
        sel = np.asarray(source)[order[new] if in_table else new]
        if sel.dtype.kind == "M":
            sel = np.datetime_as_string(sel, unit="s")
        elif sel.dtype.kind == "f":
            sel = np.array([repr(float(v)) for v in sel], dtype=object)
        shown[new] = sel.astype(str)

    # 13 digits (fullmatch \d{13}) with a correct check digit (mpan.is_valid), in one compiled pass
    valid = _kernel.valid_cores(mp)
    if _text_column(reads["mpan"]):  # numpy text drops trailing NULs: the Arrow text is 13 bytes too
        valid &= _byte_lengths(reads["mpan"]) == 13
    flag(~valid[order], "invalid_mpan", "mpan", mp, True)
    meters = metering.meters
    known, m_pos, r_pos = (x[order] for x in _known(metering, mp, mid, rid))
    flag(~known, "unknown_mpan", "mpan", mp, True)
    flag(m_pos < 0, "unknown_meter", "meter_id", mid, True)
    reg = metering.registers
    flag(r_pos < 0, "unknown_register", "register_id", rid, True)
    digits = np.where(r_pos >= 0, reg["digits"].to_numpy()[np.maximum(r_pos, 0)], 99)
    with np.errstate(invalid="ignore", over="ignore"):
        bad_value = ~np.isfinite(value) | (value < 0) | (value >= 10.0**digits)
    flag(bad_value, "impossible_value", "value", value)
    future = read_at > av
    if t is not None:
        future |= read_at > t
    flag(future, "future_dated", "read_at", read_at)
    inst = meters["installed_at"].to_numpy(dtype="datetime64[ns]")[np.maximum(m_pos, 0)]
    rem = meters["removed_at"].to_numpy(dtype="datetime64[ns]")[np.maximum(m_pos, 0)]
    rem = np.where(np.isnat(rem), np.datetime64("2262-01-01", "ns"), rem)
    flag((m_pos >= 0) & ((read_at < inst) | (read_at > rem)), "meter_not_installed", "read_at", read_at)
    # Duplicates among the reads that passed so far, in arrival order; the first arrival is kept.
    # A register row stands for its (mpan, meter, register); reads without read_at are in no group.
    # (by register, read_at, arrival: counted and sorted in one compiled pass)
    cand = np.flatnonzero((reason == 0) & ~np.isnat(read_at))
    repeat, same = _kernel.repeats(cand, r_pos, read_at, value, len(reg))
    flag(repeat & same, "duplicate", "read_at", read_at)
    flag(repeat & ~same, "conflicting_duplicate", "value", value)

    bad = reason != 0
    accepted = reads.iloc[order[~bad]].reset_index(drop=True)
    rej = reads.iloc[order[bad]]
    rejected = pd.DataFrame(
        {
            "mpan": pd.array(rej["mpan"].to_numpy(dtype=str), dtype="str"),
            "time": rej["read_at"].to_numpy(dtype="datetime64[ns]"),
            "field": pd.array(fld[bad].astype(str), dtype="str"),
            "reason": pd.array(np.array(("",) + REJECT_REASONS)[reason[bad]].astype(str), dtype="str"),
            "value": pd.array(shown[bad].astype(str), dtype="str"),
            "meter_id": pd.array(rej["meter_id"].to_numpy(dtype=str), dtype="str"),
            "register_id": pd.array(rej["register_id"].to_numpy(dtype=str), dtype="str"),
            "read_at": rej["read_at"].to_numpy(dtype="datetime64[ns]"),
            "available_at": rej["available_at"].to_numpy(dtype="datetime64[ns]"),
            "read_type": pd.array(rej["read_type"].to_numpy(dtype=str), dtype="str"),
        }
    )
    checks: dict[str, float] = {
        "in_records": float(n),
        "accepted": float(len(accepted)),
        "rejected": float(len(rejected)),
        "not_yet_available": float(later),
    }
    counts = np.bincount(reason, minlength=len(REJECT_REASONS) + 1)
    for i, why in enumerate(REJECT_REASONS):
        checks[f"rejected_{why}"] = float(counts[i + 1])
    if checks["accepted"] + checks["rejected"] != checks["in_records"]:
        raise AssertionError("screen_reads: accepted + rejected != in_records")
    return ScreenedReads(accepted=accepted, rejected=rejected, checks=checks)


def _byte_lengths(column: pd.Series) -> np.ndarray:
    """UTF-8 length [bytes] of each value of a "str" column, from its Arrow offsets (the character
    count where the text is ASCII)."""
    data = getattr(column.array, "_pa_array", None)
    if data is None:
        return column.str.encode("utf-8").str.len().to_numpy()
    return np.asarray(pc.binary_length(data).to_numpy(zero_copy_only=False))


def _text_column(column: pd.Series) -> bool:
    """Whether a column already is a "str" column without missing values (what converting its numpy
    text to "str" would give back)."""
    return column.dtype == "str" and not column.isna().any()


def _known(metering: Metering, mp, mid, rid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For reads (text arrays): whether the MPAN has a meter, the meter row of (mpan, meter_id) and
    the register row of (mpan, meter_id, register_id) (-1 = none).

    One compiled pass (:func:`~tomlib.services._smart_inputs_kernel.read_rows`): each read's MPAN found
    among the metering's MPANs (:class:`~tomlib.services.metering._MeterKeys`), then its meter and
    register among that MPAN's few. The same as reindexing on the text keys, including the error
    when the meters or the registers hold a key twice.
    """
    keys = metering._keys()
    meters, reg = metering.meters, metering.registers
    m_of_reg = metering._register_meters(keys)
    got = _kernel.read_rows(keys.mpans, keys.meter_mpan, _unicode(meters["meter_id"]), keys.reg_mpan, m_of_reg,
                            _unicode(reg["meter_id"]) if (m_of_reg < 0).any() else None,
                            _unicode(reg["register_id"]), mp, mid, rid)
    if isinstance(got, int):
        raise InvalidIndexError("Reindexing only valid with uniquely valued Index objects")
    return got


def bench_inputs(mpan_days: int = 100_000, days: int = 7, seed: int = 0) -> dict:
    """Keyword arguments of :func:`read_meters` for the benchmark: a synthetic market whose MPANs are all
    read by hand, and its metering.

    Meter-periods covered = hand-read MPANs x periods = ``market.meters.energy.size``; time
    ``screen_reads(result.reads, metering)`` as well for the intake.
    """
    from tomlib.services.metering import MeteringConfig, bench_market, build_metering

    market = bench_market(mpan_days, days, seed)
    metering = build_metering(
        market, MeteringConfig(dcc_share=0.0, smart_traditional_share=0.3, export_dcc=False)
    )
    return {"market": market, "metering": metering}
