"""Metering Service (Smart and Non-Smart): Meter Technical Details and the true registers.

The Metering Service owns the Meter Technical Details (MTDs) of the Smart segment (mhhs-domain.md
§2.1): which meter each MPAN has, whether it is a DCC-enrolled smart meter or read by hand, its
Standard Settlement Configuration (SSC), its registers with their Time Pattern Regimes (TPR) and
number of digits, and when it was installed or exchanged. :func:`build_metering` draws all of that
for the smart-segment MPANs of a :class:`tomlib.market.Market` and computes the TRUE cumulative
register of every register from the market's true half-hourly energy.

Registers and TPRs
------------------
A register of a multi-register meter accumulates the MPAN's energy only in the half hours its TPR
is active. A TPR's clock intervals (``ssc_tpr_clock_intervals.csv``, an MDD extract) are in GMT
(GMT indicator ``Y``) or UK local clock time (``N``); :func:`tpr_active` maps them onto UTC
settlement periods with :mod:`tomlib.calendar`, so on the 46-period day the missing local hour is
skipped and on the 50-period day the repeated local hour is active twice. [INF] A meter with a
single register has no time switch and records every half hour. The TPRs of every multi-register
SSC used partition the week, so the advances of a meter's registers add up to its energy.

Register values
---------------
``value(T) = start_value + C(T) - C(start_at)`` [kWh], where ``C(T)`` is the energy of the register
in the periods that start before ``T`` since the window start, ``start_at`` is the later of the
window start and the installation, and ``start_value`` is drawn (a new meter starts near 0). The
meter displays ``floor(value) mod 10**digits`` (whole kWh), so a register rolls over; a share of
registers start close enough to ``10**digits`` that they roll over inside the window.

Meter exchanges
---------------
A share of import MPANs without a linked export MPAN get an exchange inside the window (on a
working-hours half-hour boundary): the old meter is removed (``removed_at``) with a removal read
and a like-for-like new meter (same type and SSC, new serial and digits) installed at the same
instant with an installation read. Both reads are in :attr:`Metering.exchange_reads`.

Read records
------------
Every read (exchange reads here, remote register reads in :mod:`~tomlib.services.retrieval`, manual
reads in :mod:`~tomlib.services.meter_reading`) has the columns :data:`READ_COLUMNS` plus the truth
columns :data:`TRUTH_COLUMNS` (never used by the settlement services; for tests and notebooks).

Determinism
-----------
Random draws come from ``SeedSequence(seed, spawn_key=(SERVICE_KEY, k))`` with a fixed ``k`` per
component (:data:`STREAMS`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from tomlib import calendar as cal
from tomlib._text import STR_DTYPE as _STR_DTYPE
from tomlib._text import arrow_text as _str_array
from tomlib._text import label_text as _labels
from tomlib._text import numpy_text as _unicode
from tomlib._text import take_text as _take_text
from tomlib._text import text_column as _text
from tomlib._text import tight as _tight
from tomlib.reference._io import Col, read_table
from tomlib.services import _smart_inputs_kernel as _kernel
from tomlib.services._smart_inputs_kernel import int_keys as _int_keys

__all__ = [
    "DATA_DIR",
    "FAULTS",
    "READ_COLUMNS",
    "READ_TYPES",
    "SERVICE_KEY",
    "STREAMS",
    "TRUTH_COLUMNS",
    "Metering",
    "MeteringConfig",
    "bench_inputs",
    "bench_market",
    "build_metering",
    "clock_intervals",
    "empty_reads",
    "measurement_requirements",
    "normalise_config",
    "rng_stream",
    "ssc_configurations",
    "ssc_registers",
    "time_pattern_regimes",
    "tpr_active",
]

DATA_DIR = Path(__file__).resolve().parents[1] / "reference" / "data"

#: Spawn-key root of this service's random streams (the market uses 0..99).
SERVICE_KEY = 301
#: Fixed sub-key of each random stream. Append new components; never renumber.
STREAMS = {
    "meter_type": 0,
    "ssc": 1,
    "digits": 2,
    "start_value": 3,
    "installed": 4,
    "exchange": 5,
    "meter_id": 6,
    "near_rollover": 7,
    "exchange_delay": 8,
}

#: Columns of every read record (dtypes: str, str, str, datetime64[ns] UTC, float64 [kWh], str,
#: datetime64[ns] UTC).
READ_COLUMNS = ("mpan", "meter_id", "register_id", "read_at", "value", "read_type", "available_at")
#: Truth columns carried by generated reads: the value a correct read would show [kWh], the number of
#: rollovers of the register between its start and ``read_at`` [-], and the injected fault ("" none).
TRUTH_COLUMNS = ("true_value", "true_rollovers", "fault")
#: Read types: opening (last read held from before the window), site_visit, customer, deemed,
#: removal / installation (meter exchange), remote (DCC daily register read).
READ_TYPES = ("opening", "site_visit", "customer", "deemed", "removal", "installation", "remote")
#: Faults injected into generated reads and HH data (value of the ``fault`` column).
FAULTS = (
    "",
    "transposed_digits",
    "out_of_order",
    "duplicate",
    "future_dated",
    "unknown_meter",
    "unknown_mpan",
    "impossible_value",
    "negative_spike",
    "zero_run",
    "duplicate_conflict",
)

_PERIOD_NS = np.timedelta64(30 * 60 * 10**9, "ns")
def rng_stream(seed: int, service_key: int, stream: int) -> np.random.Generator:
    """Independent random stream ``PCG64(SeedSequence(seed, spawn_key=(service_key, stream)))``."""
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(int(seed), spawn_key=(service_key, stream)))
    )


def normalise_config(config) -> None:
    """Turn YAML-style values of a frozen config dataclass into the tuple fields it declares.

    A mapping ``{"0393": 0.8, ...}`` becomes ``(("0393", 0.8), ...)`` and a list ``[2, 72]`` becomes
    ``(2, 72)`` wherever the field's default is a tuple, so that scenario sections can use plain
    YAML mappings and lists.
    """
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if not isinstance(f.default, tuple):
            continue
        if isinstance(value, dict) or hasattr(value, "items"):
            value = tuple((k, v) for k, v in value.items())
        elif isinstance(value, list | tuple):
            value = tuple(tuple(v) if isinstance(v, list | tuple) else v for v in value)
        else:
            raise ValueError(f"{type(config).__name__}.{f.name}: expected a list or mapping, got {value!r}")
        object.__setattr__(config, f.name, value)


def _rng(seed: int, name: str) -> np.random.Generator:
    return rng_stream(seed, SERVICE_KEY, STREAMS[name])


# ------------------------------------------------------------------------------------------ reference data

_ID4 = r"\d{4}"
_ID5 = r"\d{5}"
_HHMM = r"([01]\d|2[0-3]):[0-5]\d|24:00"


@lru_cache(maxsize=4)
def _configurations(path: Path) -> pd.DataFrame:
    cols = (
        Col("ssc", pattern=_ID4),
        Col("description"),
        Col("ssc_type", choices=("I", "E")),
        Col("effective_from", pattern=r"\d{4}-\d{2}-\d{2}"),
        Col("effective_to", pattern=r"\d{4}-\d{2}-\d{2}", optional=True),
    )
    return read_table(path, cols, key=("ssc",)).frame("ssc")


@lru_cache(maxsize=4)
def _requirements(path: Path) -> pd.DataFrame:
    cols = (Col("ssc", pattern=_ID4), Col("tpr", pattern=_ID5))
    return read_table(path, cols, key=("ssc", "tpr")).frame()


@lru_cache(maxsize=4)
def _regimes(path: Path) -> pd.DataFrame:
    cols = (
        Col("tpr", pattern=_ID5),
        Col("teleswitch_clock", choices=("C", "S")),
        Col("gmt_indicator", choices=("Y", "N")),
    )
    return read_table(path, cols, key=("tpr",)).frame("tpr")


@lru_cache(maxsize=4)
def _intervals(path: Path) -> pd.DataFrame:
    cols = (
        Col("tpr", pattern=_ID5),
        Col("day_of_week", "int", lo=1, hi=7),
        Col("start_day", "int", lo=1, hi=31),
        Col("start_month", "int", lo=1, hi=12),
        Col("end_day", "int", lo=1, hi=31),
        Col("end_month", "int", lo=1, hi=12),
        Col("start_time", pattern=_HHMM),
        Col("end_time", pattern=_HHMM),
    )
    rows = read_table(path, cols)
    df = rows.frame()
    for i, (s, e) in enumerate(zip(df["start_time"], df["end_time"], strict=True)):
        sm, em = _minutes(s), _minutes(e)
        if sm % 30 or em % 30:
            raise rows.fail(
                i,
                "start_time",
                f"clock interval {s}-{e} is not on half-hour boundaries "
                "(tomlib maps TPRs onto settlement periods)",
            )
        if em <= sm:
            raise rows.fail(i, "end_time", f"end {e} is not after start {s}")
    df["start_index"] = df["start_time"].map(lambda s: _minutes(s) // 30).astype(np.int64)
    df["end_index"] = df["end_time"].map(lambda s: _minutes(s) // 30).astype(np.int64)
    return df


def _minutes(hhmm: str) -> int:
    h, m = str(hhmm).split(":")
    return int(h) * 60 + int(m)


def ssc_configurations(path: str | Path | None = None) -> pd.DataFrame:
    """Standard Settlement Configurations of the extract.

    Returns
    -------
    DataFrame
        Index ``ssc`` (4-digit id); columns ``description``, ``ssc_type`` (``I`` import, ``E``
        export), ``effective_from``, ``effective_to`` (ISO dates, NA = open).
    """
    return _configurations(Path(path) if path else DATA_DIR / "ssc_tpr_configurations.csv").copy()


def measurement_requirements(path: str | Path | None = None) -> pd.DataFrame:
    """SSC -> TPR rows (columns ``ssc``, ``tpr``), one per register of the configuration."""
    return _requirements(Path(path) if path else DATA_DIR / "ssc_tpr_measurement_requirements.csv").copy()


def time_pattern_regimes(path: str | Path | None = None) -> pd.DataFrame:
    """TPRs: index ``tpr``; ``teleswitch_clock`` (C/S) and ``gmt_indicator`` (Y GMT, N local time)."""
    return _regimes(Path(path) if path else DATA_DIR / "ssc_tpr_regimes.csv").copy()


def clock_intervals(path: str | Path | None = None) -> pd.DataFrame:
    """Clock intervals of the TPRs (MDD layout) plus ``start_index``/``end_index`` (half hour 0..48)."""
    return _intervals(Path(path) if path else DATA_DIR / "ssc_tpr_clock_intervals.csv").copy()


def ssc_registers(ssc: str) -> list[str]:
    """TPRs of an SSC in register order (register ``01`` is the first).

    Raises
    ------
    ValueError
        If the SSC is not in the extract.
    """
    tprs = list(_ssc_tprs(DATA_DIR / "ssc_tpr_measurement_requirements.csv").get(str(ssc), ()))
    if not tprs:
        req = measurement_requirements()
        known = ", ".join(sorted(set(req["ssc"].astype(str))))
        raise ValueError(f"SSC {ssc!r} is not in ssc_tpr_measurement_requirements.csv (known: {known})")
    return tprs


@lru_cache(maxsize=4)
def _ssc_tprs(path: Path) -> dict[str, tuple[str, ...]]:
    """SSC -> its TPRs, sorted (register order)."""
    req = _requirements(path)
    out: dict[str, list[str]] = {}
    for ssc, tpr in zip(req["ssc"].astype(str), req["tpr"].astype(str), strict=True):
        out.setdefault(ssc, []).append(tpr)
    return {k: tuple(sorted(v)) for k, v in out.items()}


def tpr_active(tprs, times) -> np.ndarray:
    """Whether each TPR is active in each settlement period.

    Parameters
    ----------
    tprs : sequence of str
        TPR ids (5 digits) of the extract.
    times : array-like of datetime-like
        Settlement period starts [UTC, tz-naive].

    Returns
    -------
    numpy.ndarray of bool, shape (len(tprs), len(times))
        True where the period lies in one of the TPR's clock intervals, evaluated on the GMT clock
        (GMT indicator ``Y``) or the UK local clock (``N``): weekday 1 = Monday, inclusive date
        ranges, half-hour index ``start_index <= k < end_index``.
    """
    t = pd.DatetimeIndex(pd.to_datetime(np.asarray(times).ravel()))
    # blocks of one settlement day ask for the same TPRs and periods: computed once per process
    key = (tuple(str(x) for x in tprs), t.asi8.tobytes())
    held = _TPR_ACTIVE.get(key)
    if held is None:
        held = _tpr_active(tprs, t)
        if len(_TPR_ACTIVE) >= 16:
            _TPR_ACTIVE.clear()
        _TPR_ACTIVE[key] = held
    return held.copy()


#: tpr_active's results by (TPRs, period starts); the reference tables are read once per process too.
_TPR_ACTIVE: dict[tuple, np.ndarray] = {}


def _tpr_active(tprs, t: pd.DatetimeIndex) -> np.ndarray:
    """:func:`tpr_active` of period starts ``t`` (computed)."""
    regimes = _regimes(DATA_DIR / "ssc_tpr_regimes.csv")
    intervals = _interval_table(DATA_DIR / "ssc_tpr_clock_intervals.csv")
    clocks = {}
    if len(t):
        utc_day = t.normalize()
        local_day, _ = cal.from_utc(t)
        for name, day, k in (
            ("Y", utc_day, ((t - utc_day) // cal.PERIOD).to_numpy().astype(np.int64)),
            ("N", pd.DatetimeIndex(local_day), np.asarray(cal.local_clock_index(t), dtype=np.int64)),
        ):
            clocks[name] = (day.day_of_week.to_numpy() + 1, (day.month * 100 + day.day).to_numpy(), k)
    out = np.zeros((len(tprs), len(t)), dtype=bool)
    for i, tpr in enumerate(tprs):  # a handful of TPRs; their clock intervals at once
        tpr = str(tpr)
        if tpr not in regimes.index:
            raise ValueError(f"TPR {tpr!r} is not in ssc_tpr_regimes.csv")
        if regimes.loc[tpr, "teleswitch_clock"] != "C":
            raise ValueError(f"TPR {tpr} is teleswitched: its active periods are not fixed clock times")
        if not len(t) or tpr not in intervals:
            continue
        dow, md, k = clocks[str(regimes.loc[tpr, "gmt_indicator"])]
        day_of_week, lo, hi, start, end = (c[:, None] for c in intervals[tpr])  # (interval, 1)
        in_dates = np.where(lo <= hi, (md >= lo) & (md <= hi), (md >= lo) | (md <= hi))
        out[i] = ((dow == day_of_week) & in_dates & (k >= start) & (k < end)).any(axis=0)
    return out


@lru_cache(maxsize=4)
def _interval_table(path: Path) -> dict[str, tuple[np.ndarray, ...]]:
    """Clock intervals per TPR as arrays: day of week, start and end (month * 100 + day), start and
    end half-hour index."""
    ci = _intervals(path)
    out = {}
    for tpr, rows in ci.groupby(ci["tpr"].to_numpy(dtype=str), sort=False):
        out[str(tpr)] = tuple(
            rows[c].to_numpy(dtype=np.int64) if isinstance(c, str) else c(rows)
            for c in (
                "day_of_week",
                lambda r: (r["start_month"] * 100 + r["start_day"]).to_numpy(dtype=np.int64),
                lambda r: (r["end_month"] * 100 + r["end_day"]).to_numpy(dtype=np.int64),
                "start_index",
                "end_index",
            )
        )
    return out


# ------------------------------------------------------------------------------------------ configuration


@dataclass(frozen=True)
class MeteringConfig:
    """[INF] Knobs of the metering model (defaults are our assumptions; see :meth:`from_scenario`).

    Attributes
    ----------
    dcc_share : float
        Share of smart-segment import MPANs with a DCC-enrolled smart meter (HH data retrieved) [-].
    smart_traditional_share : float
        Share of smart-segment import MPANs with a smart meter in traditional mode (not enrolled or
        not communicating: read by hand) [-]. The rest (1 - both) have traditional meters.
    export_dcc : bool
        Export MPANs, and the import MPANs linked to them, are DCC-enrolled smart meters.
    ssc_mix_domestic, ssc_mix_non_domestic, ssc_mix_two_rate : tuple of (str, float)
        SSC shares [-] of domestic import MPANs, non-domestic ones (profile class 3) and two-rate
        non-domestic ones (profile class 4).
    export_ssc : str
        SSC of export MPANs.
    digits : tuple of (int, float)
        Register digit counts and their shares [-].
    near_rollover_share : float
        Share of registers whose start value is set so that they roll over inside the window [-].
    exchange_share : float
        Share of import MPANs (without linked export) with a meter exchange inside the window [-].
    installed_from, smart_installed_from : str
        Earliest installation date (ISO) of traditional and of smart meters.
    new_meter_max_kwh : float
        A new meter's registers start uniformly in [0, this) [kWh].
    exchange_read_delay_hours : tuple of float
        Removal/installation reads reach the data service this many hours after the exchange
        (uniform range) [h].
    """

    dcc_share: float = 0.70
    smart_traditional_share: float = 0.08
    export_dcc: bool = True
    ssc_mix_domestic: tuple[tuple[str, float], ...] = (
        ("0393", 0.80),
        ("0151", 0.09),
        ("0154", 0.05),
        ("0997", 0.03),
        ("0972", 0.03),
    )
    ssc_mix_non_domestic: tuple[tuple[str, float], ...] = (("0393", 0.85), ("0132", 0.15))
    ssc_mix_two_rate: tuple[tuple[str, float], ...] = (("0151", 0.5), ("0244", 0.5))
    export_ssc: str = "0498"
    digits: tuple[tuple[int, float], ...] = ((5, 0.6), (6, 0.4))
    near_rollover_share: float = 0.03
    exchange_share: float = 0.02
    installed_from: str = "2000-01-01"
    smart_installed_from: str = "2016-01-01"
    new_meter_max_kwh: float = 20.0
    exchange_read_delay_hours: tuple[float, float] = (2.0, 72.0)

    def __post_init__(self) -> None:
        normalise_config(self)
        for name in ("dcc_share", "smart_traditional_share", "near_rollover_share", "exchange_share"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"MeteringConfig.{name} must be within [0, 1], got {v}")
        if self.dcc_share + self.smart_traditional_share > 1.0 + 1e-12:
            raise ValueError(
                "MeteringConfig: dcc_share + smart_traditional_share must be <= 1, got "
                f"{self.dcc_share + self.smart_traditional_share}"
            )
        for name in ("ssc_mix_domestic", "ssc_mix_non_domestic", "ssc_mix_two_rate", "digits"):
            shares = np.array([s for _, s in getattr(self, name)], dtype=float)
            if len(shares) == 0 or (shares < 0).any() or abs(shares.sum() - 1.0) > 1e-9:
                raise ValueError(
                    f"MeteringConfig.{name}: shares must be >= 0 and sum to 1, got {shares.tolist()}"
                )
        for d, _ in self.digits:
            if not 3 <= int(d) <= 9:
                raise ValueError(f"MeteringConfig.digits: digit counts must be within 3..9, got {d}")
        lo, hi = self.exchange_read_delay_hours
        if not 0 <= lo <= hi:
            raise ValueError(
                f"MeteringConfig.exchange_read_delay_hours must be 0 <= lo <= hi, got {(lo, hi)}"
            )

    @classmethod
    def from_scenario(cls, scenario: Any = None, **overrides) -> MeteringConfig:
        """Defaults, overridden by a scenario's ``metering`` section (when the scenario has one).

        Parameters
        ----------
        scenario : Scenario, optional
            Any attribute of ``scenario.metering`` whose name is a field here overrides it.
        **overrides
            Field values that win over both.
        """
        values: dict[str, Any] = {}
        section = getattr(scenario, "metering", None)
        if section is not None:
            names = {f.name for f in dataclasses.fields(cls)}
            for name in names:
                if hasattr(section, name):
                    values[name] = getattr(section, name)
        values.update(overrides)
        return cls(**values)


# ------------------------------------------------------------------------------------------ the result


@dataclass
class Metering:
    """Meter Technical Details of the smart segment and the true registers.

    Attributes
    ----------
    meters : DataFrame
        One row per physical meter: ``mpan`` (str), ``meter_id`` (str, serial, may contain a space),
        ``meter_type`` ("smart" | "traditional"), ``dcc_enrolled`` (bool: HH data retrieved via the
        DCC; False = read by hand, incl. smart meters in traditional mode), ``ssc`` (str),
        ``measurement_quantity`` ("AI" | "AE"), ``digits`` (int, register digits),
        ``installed_at`` and ``removed_at`` (datetime64[ns] UTC; NaT = still installed).
    registers : DataFrame
        One row per meter register: ``mpan``, ``meter_id``, ``register_id`` ("01", "02", ...),
        ``tpr`` (str), ``digits`` (int), ``slot`` (int, row of :attr:`cumulative`); truth:
        ``true_start_at`` (datetime64[ns], later of window start and installation) and
        ``true_start_value`` (register value then, unwrapped [kWh]).
    exchanges : DataFrame
        ``mpan``, ``old_meter_id``, ``new_meter_id``, ``exchanged_at`` (datetime64[ns] UTC).
    exchange_reads : DataFrame
        Removal and installation reads (:data:`READ_COLUMNS` + :data:`TRUTH_COLUMNS`).
    cumulative : DataArray
        TRUE energy of each register slot accumulated since the window start [kWh], dims
        (``slot``, ``boundary``); ``boundary`` holds the n_time + 1 period boundaries [UTC].
        Coordinates ``slot_mpan`` and ``slot_register`` on ``slot``.
    config : MeteringConfig
    seed : int
    """

    meters: pd.DataFrame
    registers: pd.DataFrame
    exchanges: pd.DataFrame
    exchange_reads: pd.DataFrame
    cumulative: xr.DataArray
    config: MeteringConfig
    seed: int
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def boundaries(self) -> np.ndarray:
        """Period boundaries of the window [datetime64[ns] UTC], n_time + 1 values."""
        return self.cumulative["boundary"].to_numpy()

    @property
    def dcc_mpans(self) -> np.ndarray:
        """MPANs whose meters are DCC-enrolled (HH retrieval), sorted."""
        return self._mpans_where(True)

    @property
    def read_mpans(self) -> np.ndarray:
        """MPANs read by hand (traditional meters and smart meters in traditional mode), sorted."""
        return self._mpans_where(False)

    def _mpans_where(self, enrolled: bool) -> np.ndarray:
        """Sorted distinct MPANs of the meters whose ``dcc_enrolled`` is ``enrolled``."""
        return self._mpan_subset(self._keys(), enrolled)[1]

    def _mpan_subset(self, keys: _MeterKeys, enrolled: bool) -> tuple[np.ndarray, np.ndarray]:
        """Codes (of ``keys``) and sorted distinct MPANs of the meters whose ``dcc_enrolled`` is
        ``enrolled``."""
        flag = self.meters["dcc_enrolled"]
        if flag.dtype != bool:  # anything but a plain bool column: pandas decides, as it always did
            sel = flag if enrolled else ~flag
            mpans = np.unique(self.meters.loc[sel, "mpan"].to_numpy(dtype=str))
            return keys.mpan_codes(mpans), mpans
        sel = flag.to_numpy() if enrolled else ~flag.to_numpy()
        # codes are positions in the sorted distinct MPANs: distinct codes in order = np.unique
        codes = np.flatnonzero(np.bincount(keys.meter_mpan[sel], minlength=keys.mpans.size) > 0)
        return codes, _tight(keys.mpans[codes])

    def _keys(self) -> _MeterKeys:
        """Integer keys of the current tables (derived again when a key column changed)."""
        sources = tuple(_arrow_source(f, c) for f, c in ((self.meters, "mpan"), (self.meters, "meter_id"),
                                                          (self.registers, "mpan"), (self.registers, "meter_id"),
                                                          (self.registers, "register_id")))
        held = self.__dict__.get("_key_index")
        if held is not None and all(a is not None and a is b for a, b in zip(sources, held.sources, strict=True)):
            return held
        meter_mpan = self.meters["mpan"].to_numpy(dtype=str)
        reg_mpan = self.registers["mpan"].to_numpy(dtype=str)
        mpans, codes = np.unique(np.concatenate([meter_mpan, reg_mpan]), return_inverse=True)
        codes = codes.reshape(-1).astype(np.int64)
        keys = _MeterKeys(sources, mpans, codes[: meter_mpan.size], codes[meter_mpan.size :])
        self.__dict__["_key_index"] = keys
        return keys

    def register_meter_rows(self) -> np.ndarray:
        """Row in :attr:`meters` of each register's meter (its ``(mpan, meter_id)``), -1 where none.

        The same as reindexing ``meters`` on ``(mpan, meter_id)`` by the registers' keys (a left
        join), without joining text: e.g. ``meters["installed_at"].to_numpy()[rows]`` where
        ``rows >= 0``.

        Raises
        ------
        pandas.errors.InvalidIndexError
            If ``meters`` holds an ``(mpan, meter_id)`` twice.
        """
        return self._register_meters(self._keys()).copy()

    def _register_meters(self, keys: _MeterKeys) -> np.ndarray:
        """Meter row of each register (-1 where its (mpan, meter_id) is not a meter)."""
        if keys.reg_meter is None:
            from tomlib.services._processing_keys import lookup

            meters, reg = self.meters, self.registers
            # integer-coded join: the same as reindexing on (mpan, meter_id), error on a repeated meter
            keys.reg_meter = lookup(
                [meters["mpan"].to_numpy(dtype=str), meters["meter_id"].to_numpy(dtype=str)],
                [reg["mpan"].to_numpy(dtype=str), reg["meter_id"].to_numpy(dtype=str)],
            )
        return keys.reg_meter

    def boundary_index(self, at, what: str = "read_at") -> np.ndarray:
        """Index into :attr:`boundaries` of instants that must be period boundaries of the window."""
        b = self.boundaries
        at = np.asarray(pd.to_datetime(np.asarray(at).ravel()), dtype="datetime64[ns]")
        idx = np.searchsorted(b, at)
        bad = (idx >= b.size) | (b[np.minimum(idx, b.size - 1)] != at)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{what} {pd.Timestamp(at[i])} (position {i}) is not a period boundary of the "
                f"window {pd.Timestamp(b[0])}..{pd.Timestamp(b[-1])} (UTC)"
            )
        return idx

    def true_value(self, register_rows, at) -> np.ndarray:
        """Unwrapped true value of registers at period boundaries [kWh].

        Parameters
        ----------
        register_rows : array-like of int
            Positions in :attr:`registers`.
        at : array-like of datetime-like
            Instants [UTC]; each a period boundary of the window at or after the register's start.
        """
        rows = np.asarray(register_rows, dtype=np.int64).ravel()
        b = self.boundary_index(at)
        reg = self.registers
        b0 = self.boundary_index(reg["true_start_at"].to_numpy()[rows], "true_start_at")
        if (b < b0).any():
            i = int(np.flatnonzero(b < b0)[0])
            raise ValueError(f"register row {rows[i]}: instant before the register's start")
        c = self.cumulative.values
        start, slot = reg["true_start_value"].to_numpy(), reg["slot"].to_numpy()
        # gathered in one pass where every index is in range (else NumPy indexes, or raises, as always)
        if c.dtype == np.float64 and start.dtype == np.float64 and slot.dtype.kind in "iu" and (
                not rows.size or (rows.min() >= 0 and rows.max() < start.size
                                  and slot.min() >= 0 and slot.max() < c.shape[0])):
            return _kernel.register_values(start, slot, c, rows, b, b0)
        return start[rows] + c[slot[rows], b] - c[slot[rows], b0]

    def displayed(self, register_rows, values) -> tuple[np.ndarray, np.ndarray]:
        """What the registers show for unwrapped values: ``floor(v) mod 10**digits`` [kWh], and the
        number of rollovers since the register's start [-]."""
        rows = np.asarray(register_rows, dtype=np.int64).ravel()
        reg = self.registers
        modulus = 10.0 ** reg["digits"].to_numpy()[rows]
        whole = np.floor(np.asarray(values, dtype=float))
        start_wraps = np.floor(np.floor(reg["true_start_value"].to_numpy()[rows]) / modulus)
        wraps = np.floor(whole / modulus)
        return whole - wraps * modulus, (wraps - start_wraps).astype(np.int64)

    def rows_in_service(self, mpans, at) -> tuple[np.ndarray, np.ndarray]:
        """Register rows of the meter installed at each (mpan, instant).

        Returns
        -------
        event : ndarray of int
            Position of the (mpan, instant) pair each row belongs to.
        rows : ndarray of int
            Positions in :attr:`registers`; an MPAN with an n-register meter gives n rows.
        """
        mp = np.asarray(mpans).astype(str).ravel()
        keys = self._keys()
        return self._rows_in_service(keys, keys.mpan_codes(mp), at)

    def _rows_in_service(self, keys: _MeterKeys, codes: np.ndarray, at) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`rows_in_service` of (MPAN code, instant) pairs (codes of ``keys``, -1 = unknown MPAN)."""
        at = np.asarray(pd.to_datetime(np.asarray(at).ravel()), dtype="datetime64[ns]")
        meters = self.meters
        m_of_reg = self._register_meters(keys)
        if len(meters) and m_of_reg.size and int(m_of_reg.max()) < len(meters) and codes.size \
                and int(codes.max()) < keys.reg_count.size:  # one compiled pass over the events' registers
            return _kernel.in_service(codes, keys.reg_count, keys.reg_start, keys.reg_order, m_of_reg,
                                      meters["installed_at"].to_numpy(dtype="datetime64[ns]"),
                                      meters["removed_at"].to_numpy(dtype="datetime64[ns]"), at)
        nat = np.datetime64("NaT", "ns")
        inst = np.where(m_of_reg >= 0, meters["installed_at"].to_numpy(dtype="datetime64[ns]")[m_of_reg], nat) \
            if len(meters) else np.full(len(m_of_reg), nat)
        rem = np.where(m_of_reg >= 0, meters["removed_at"].to_numpy(dtype="datetime64[ns]")[m_of_reg], nat) \
            if len(meters) else np.full(len(m_of_reg), nat)
        rem = np.where(np.isnat(rem), np.datetime64("2262-01-01", "ns"), rem)
        # every register of each event's MPAN, by event then register row (registers grouped by MPAN)
        known = codes >= 0
        count = np.where(known, keys.reg_count[np.maximum(codes, 0)], 0)
        e = np.repeat(np.arange(codes.size, dtype=np.int64), count)
        offset = np.arange(e.size, dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
        r = keys.reg_order[keys.reg_start[codes[e]] + offset].astype(np.int64)
        ok = (inst[r] <= at[e]) & (at[e] < rem[r])
        return e[ok], r[ok]


def _arrow_source(frame: pd.DataFrame, column: str):
    """The immutable Arrow data behind a text column (None when not Arrow-backed): a new table or any
    change to the column gives new Arrow data, so holding it tells whether derived keys still hold."""
    return getattr(frame[column].array, "_pa_array", None)


class _MeterKeys:
    """Integer keys of the MPANs, meters and registers of a :class:`Metering` (private).

    pandas keeps text columns as Arrow strings; joining on them means converting to numpy text and
    sorting or hashing it at every call. The keys are derived once per table version instead: the
    sorted distinct MPANs (code = position), each meter's and register's MPAN code, the registers
    grouped by MPAN and, once asked for, each register's meter row. ``sources`` holds the Arrow data
    they were derived from (see :meth:`Metering._keys`).
    """

    def __init__(self, sources, mpans, meter_mpan, reg_mpan, reg_meter=None, market_rows=None):
        self.sources = sources
        self.market_rows = market_rows  # row of each MPAN in the market it was built from (unchecked)
        self.mpans = mpans
        self.meter_mpan = meter_mpan
        self.reg_mpan = reg_mpan
        self.reg_meter = reg_meter
        self.reg_count = np.bincount(reg_mpan, minlength=mpans.size).astype(np.int64)
        self.reg_start = np.cumsum(self.reg_count) - self.reg_count
        if self.reg_count.size == mpans.size:  # every code an MPAN's: grouped by counting, not sorting
            self.reg_order = _kernel.grouped_order(reg_mpan, self.reg_start)
        else:
            self.reg_order = np.argsort(reg_mpan, kind="stable")

    def mpan_codes(self, mpans: np.ndarray) -> np.ndarray:
        """Code of each MPAN (text), -1 for an MPAN without meters or registers."""
        if not self.mpans.size:
            return np.full(mpans.size, -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.mpans, mpans), self.mpans.size - 1)
        return np.where(self.mpans[pos] == mpans, pos, -1).astype(np.int64)


def empty_reads() -> pd.DataFrame:
    """An empty read table with the dtypes of :data:`READ_COLUMNS` + :data:`TRUTH_COLUMNS`."""
    return _read_frame(
        np.array([], dtype=str),
        np.array([], dtype=str),
        np.array([], dtype=str),
        np.array([], dtype="datetime64[ns]"),
        np.array([], dtype=float),
        np.array([], dtype=str),
        np.array([], dtype="datetime64[ns]"),
        np.array([], dtype=float),
        np.array([], dtype=np.int64),
        np.array([], dtype=str),
    )


def _read_frame(
    mpan, meter_id, register_id, read_at, value, read_type, available_at, true_value, true_rollovers, fault
) -> pd.DataFrame:
    n = len(mpan)

    def full(x, dtype=None):
        return np.full(n, x) if np.ndim(x) == 0 else np.asarray(x, dtype=dtype)

    return pd.DataFrame(
        {
            "mpan": _text(mpan, n),
            "meter_id": _text(meter_id, n),
            "register_id": _text(register_id, n),
            "read_at": full(read_at).astype("datetime64[ns]"),
            "value": full(value).astype(np.float64),
            "read_type": _text(read_type, n),
            "available_at": full(available_at).astype("datetime64[ns]"),
            "true_value": full(true_value).astype(np.float64),
            "true_rollovers": full(true_rollovers).astype(np.int64),
            "fault": _text(fault, n),
        }
    )


# ------------------------------------------------------------------------------------------ the model


def _choose(rng: np.random.Generator, mix, n: int) -> np.ndarray:
    labels = np.array([k for k, _ in mix])
    p = np.array([s for _, s in mix], dtype=float)
    return labels[rng.choice(len(labels), size=n, p=p / p.sum())] if n else labels[:0]


def _meter_ids(rng: np.random.Generator, smart: np.ndarray) -> np.ndarray:
    """Unique meter serials (<= 10 characters): traditional ``A12B 34567``, smart ``21P0123456``."""
    n = smart.size
    u = rng.choice(10**7, size=n, replace=False)
    letters = np.array(list("DEFLMS"))
    l1 = letters[rng.integers(0, letters.size, n)]
    l2 = np.array(list("ABCDE"))[rng.integers(0, 5, n)]
    if not n:  # (the character-wise build below needs rows)
        return _meter_ids_text(u, l1, l2, smart)
    # Ten characters per serial written as code points: both layouts are exactly 10 long, so the
    # serials are built as a (n, 10) table and read as <U10 without per-string formatting.
    digits = _digit_points(u, 7)  # u < 10**7: u // 100 is its first five digits, u % 100 its last two
    yy = digits[:, 5:7]
    out = np.empty((n, 10), dtype=np.uint32)
    out[:, 0] = l1.view(np.uint32)
    out[:, 1:3] = yy
    out[:, 3] = l2.view(np.uint32)
    out[:, 4] = ord(" ")
    out[:, 5:10] = digits[:, 0:5]
    sm = np.empty((n, 10), dtype=np.uint32)
    sm[:, 0:2] = yy
    sm[:, 2] = ord("P")
    sm[:, 3:10] = digits
    out[smart] = sm[smart]
    return out.view("<U10").reshape(n)


def _digit_points(values: np.ndarray, width: int) -> np.ndarray:
    """Code points of the decimal digits of non-negative integers below 10**width, zero-padded."""
    return _kernel.digit_points(values, width)


def _meter_ids_text(u, l1, l2, smart) -> np.ndarray:
    yy = np.char.zfill((u % 100).astype(str), 2)
    trad = np.char.add(
        np.char.add(np.char.add(l1, yy), np.char.add(l2, " ")), np.char.zfill((u // 100).astype(str), 5)
    )
    sm = np.char.add(np.char.add(yy, "P"), np.char.zfill(u.astype(str), 7))
    return np.where(smart, sm, trad).astype(str)


def _zfill_numbers(values: np.ndarray, width: int) -> np.ndarray:
    """``np.char.zfill(values.astype(str), width)``, formatting each distinct value once."""
    distinct, inverse = _distinct(values)
    return np.char.zfill(distinct.astype(str), width)[inverse]


def _distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)`` (inverse flat) of a 1-d array without sorting it
    where that is exact: small non-negative integers (register numbers) are counted, identifiers
    that :func:`_int_keys` keys (SSCs, measurement quantities) are sorted as integers."""
    values = np.asarray(values)
    if values.dtype.kind in "iu" and values.size and 0 <= int(values.min()) and int(values.max()) < 4 * values.size:
        present = np.bincount(values) > 0
        return np.flatnonzero(present).astype(values.dtype), (np.cumsum(present) - 1)[values].astype(np.intp)
    keys = _int_keys(values) if values.dtype.kind == "U" and values.size else None
    if keys is not None:  # equal keys for equal text, ordered as the text
        codes, uniques = pd.factorize(keys)  # hashed: a few distinct values (SSCs, quantities)
        if uniques.size <= 64:  # ranked as np.unique would, each value taken at one of its rows
            by_key = np.argsort(uniques)
            rank = np.empty(uniques.size, dtype=np.intp)
            rank[by_key] = np.arange(uniques.size)
            first = np.empty(uniques.size, dtype=np.intp)  # each code's first row: the last write wins
            first[codes[::-1]] = np.arange(codes.size - 1, -1, -1)
            return values[first[by_key]], rank[codes]
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        return values[first], inverse.reshape(-1)
    distinct, inverse = np.unique(values, return_inverse=True)
    return distinct, inverse.reshape(-1)


def _market_mpans(ds) -> np.ndarray:
    """The market's MPAN axis as numpy text (``ds["mpan"].to_numpy()``), read from the Arrow buffers of
    its index when it has one (no Python string per MPAN)."""
    index = ds.indexes.get("mpan")
    if index is not None and index.dtype == _STR_DTYPE:
        return _unicode(index.array)
    return ds["mpan"].to_numpy().astype(str, copy=False)


def _local_to_utc(local_naive: np.ndarray) -> np.ndarray:
    idx = pd.DatetimeIndex(local_naive).tz_localize(cal.TZ, ambiguous="raise", nonexistent="raise")
    return idx.tz_convert("UTC").tz_localize(None).as_unit("ns").to_numpy()


def build_metering(
    market, config: MeteringConfig | Any | None = None, *, seed: int | None = None
) -> Metering:
    """Meter Technical Details and true registers for the smart segment of a market.

    Parameters
    ----------
    market : tomlib.market.Market
        The true world; its ``meters`` cube gives the smart-segment MPANs (``market_segment`` S),
        their standing data and true ``energy`` [kWh per period].
    config : MeteringConfig or Scenario, optional
        Knobs; a Scenario is turned into one by :meth:`MeteringConfig.from_scenario`.
    seed : int, optional
        Default: ``market.seed``.

    Returns
    -------
    Metering
    """
    if config is None or not isinstance(config, MeteringConfig):
        config = MeteringConfig.from_scenario(config)
    seed = int(market.seed if seed is None else seed)
    ds = market.meters
    seg = ds["market_segment"].to_numpy().astype(str)
    sel = np.flatnonzero(seg == "S")
    mpans = _market_mpans(ds)[sel]
    n = mpans.size
    times = pd.DatetimeIndex(ds["time"].to_numpy())
    n_t = len(times)
    if n_t == 0:
        raise ValueError("market: empty time axis")
    boundaries = np.append(times.to_numpy(), times[-1].to_datetime64() + _PERIOD_NS).astype("datetime64[ns]")
    window_start = boundaries[0]
    if ds["energy"].dims == ("mpan", "time"):
        # checked row by row in place: the segment's rows are gathered once, per register slot, below
        energy, energy_rows = ds["energy"].to_numpy(), sel
    else:
        energy = ds["energy"].isel(mpan=sel).to_numpy()
        energy_rows = np.arange(n)
    if energy.dtype == np.float64:  # one compiled pass over the segment's rows
        finite, negative = _kernel.energy_flags(energy, energy_rows)
    else:
        finite = np.isfinite(energy[energy_rows]).all()
        negative = finite and (energy[energy_rows] < 0).any()
    if not finite:
        raise ValueError("market: true energy of the smart segment has non-finite values")
    if negative:
        raise ValueError("market: true energy of the smart segment has negative values")
    mq = ds["measurement_quantity"].to_numpy().astype(str)[sel]
    domestic = ds["domestic"].to_numpy().astype(bool)[sel]
    pclass = ds["profile_class"].to_numpy()[sel] if "profile_class" in ds.coords else np.where(domestic, 1, 3)
    linked = (
        ds["linked_mpan"].to_numpy().astype(str)[sel]
        if "linked_mpan" in ds.coords
        else np.full(n, "", dtype=str)
    )
    has_link = linked != ""
    export = mq == "AE"

    # Meter type: DCC-enrolled smart / smart in traditional mode / traditional.
    u = _rng(seed, "meter_type").random(n)
    dcc = u < config.dcc_share
    smart = u < config.dcc_share + config.smart_traditional_share
    if config.export_dcc:
        dcc |= export | has_link
        smart |= dcc

    # SSC by kind of MPAN.
    rng = _rng(seed, "ssc")
    groups = {
        "export": export,
        "domestic": ~export & domestic,
        "two_rate": ~export & ~domestic & (pclass == 4),
        "non_domestic": ~export & ~domestic & (pclass != 4),
    }
    mixes = {
        "export": ((config.export_ssc, 1.0),),
        "domestic": config.ssc_mix_domestic,
        "two_rate": config.ssc_mix_two_rate,
        "non_domestic": config.ssc_mix_non_domestic,
    }
    # the groups cover every MPAN; text wide enough for every SSC of the mixes
    ssc = np.zeros(n, dtype=f"<U{max(len(str(k)) for mix in mixes.values() for k, _ in mix)}")
    for name, mask in groups.items():
        ssc[mask] = _choose(rng, mixes[name], int(mask.sum()))

    # Exchanges: like-for-like, inside the window, on a working-hours boundary of a random day.
    rng_x = _rng(seed, "exchange")
    candidates = ~export & ~has_link
    exchanged = candidates & (rng_x.random(n) < config.exchange_share)
    ex_idx = np.flatnonzero(exchanged)
    days = pd.DatetimeIndex(cal.from_utc(times)[0]).unique()
    day_pick = days.to_numpy()[rng_x.integers(0, len(days), ex_idx.size)]
    local = day_pick + rng_x.integers(16, 36, ex_idx.size) * _PERIOD_NS
    exchanged_at = _local_to_utc(local) if ex_idx.size else np.array([], dtype="datetime64[ns]")

    # Physical meters: one per MPAN plus a new one per exchange.
    m_pos = np.concatenate([np.arange(n), ex_idx])  # MPAN position of each meter
    n_m = m_pos.size
    is_new = np.zeros(n_m, dtype=bool)
    is_new[n:] = True
    meter_id = _meter_ids(_rng(seed, "meter_id"), smart[m_pos])
    digits = _choose(_rng(seed, "digits"), config.digits, n_m).astype(np.int64)
    rng_i = _rng(seed, "installed")
    first_day = pd.Timestamp(window_start).normalize()
    lo = np.where(
        smart[m_pos[:n]],
        pd.Timestamp(config.smart_installed_from).value,
        pd.Timestamp(config.installed_from).value,
    )
    hi = (first_day - pd.Timedelta(days=30)).value
    lo = np.minimum(lo, hi - 86_400 * 10**9)
    inst_days = (lo + rng_i.random(n) * (hi - lo)).astype("datetime64[ns]").astype("datetime64[D]")
    installed_at = np.empty(n_m, dtype="datetime64[ns]")
    installed_at[:n] = inst_days.astype("datetime64[ns]") + np.timedelta64(10, "h")
    installed_at[n:] = exchanged_at
    removed_at = np.full(n_m, np.datetime64("NaT"), dtype="datetime64[ns]")
    removed_at[ex_idx] = exchanged_at

    # Text columns: each distinct value converted to an Arrow string once, then gathered by position.
    mpan_text = _str_array(mpans)
    meter_text = _str_array(meter_id)
    ssc_list, ssc_code = _distinct(ssc)
    mq_list, mq_code = _distinct(mq)
    meters = pd.DataFrame(
        {
            "mpan": mpan_text.take(m_pos),
            "meter_id": meter_text,
            "meter_type": _labels(["traditional", "smart"], smart[m_pos].astype(np.intp)),
            "dcc_enrolled": dcc[m_pos],
            "ssc": _labels(ssc_list, ssc_code[m_pos]),
            "measurement_quantity": _labels(mq_list, mq_code[m_pos]),
            "digits": digits,
            "installed_at": installed_at,
            "removed_at": removed_at,
        }
    )

    # Registers: one per TPR of the SSC; slot k of an MPAN is shared by its old and new meter.
    ssc_tprs = {s: ssc_registers(s) for s in ssc_list}
    width = max((len(t) for t in ssc_tprs.values()), default=1)
    tpr_table = np.full((ssc_list.size, width), "", dtype="<U5")  # (ssc, register position) -> TPR
    for i, s in enumerate(ssc_list):
        tpr_table[i, : len(ssc_tprs[s])] = ssc_tprs[s]
    n_reg = (tpr_table != "").sum(axis=1)[ssc_code].astype(np.int64)
    slot_start = np.concatenate([[0], np.cumsum(n_reg)])[:-1]
    reg_meter = np.repeat(np.arange(n_m), n_reg[m_pos])
    reg_k = np.arange(reg_meter.size) - np.repeat(np.cumsum(n_reg[m_pos]) - n_reg[m_pos], n_reg[m_pos])
    reg_mpan_pos = m_pos[reg_meter]
    reg_slot = slot_start[reg_mpan_pos] + reg_k
    reg_table_pos = ssc_code[reg_mpan_pos] * width + reg_k  # position in tpr_table.ravel()
    n_slots = int(n_reg.sum())
    slot_mpan_pos = np.repeat(np.arange(n), n_reg)
    slot_single = n_reg[slot_mpan_pos] == 1

    # True register energy: the MPAN's energy in the half hours its TPR is active. Every TPR of an SSC
    # in use has slots, so the slots' distinct TPRs are the table's; TPRs as codes (rows of active)
    # gathered through the table rather than sorting and searching each slot's text.
    tprs = np.unique(tpr_table[tpr_table != ""])
    active = tpr_active(tprs, times)
    slot_table_pos = np.empty(n_slots, dtype=np.int64)  # every slot has a register of the first meter
    slot_table_pos[reg_slot] = reg_table_pos
    tpr_code = np.searchsorted(tprs, tpr_table.ravel())[slot_table_pos]
    for s, t_list in ssc_tprs.items():
        if len(t_list) > 1:
            cover = active[np.searchsorted(tprs, t_list)].sum(axis=0)
            if (cover != 1).any():
                j = int(np.flatnonzero(cover != 1)[0])
                raise ValueError(
                    f"SSC {s}: its TPRs {t_list} cover period {times[j]} (UTC) {cover[j]} times, "
                    "expected exactly once"
                )
    # a single register records every period; the others, their TPR's (one compiled pass, the NumPy
    # arithmetic: energy * mask, then a running sum)
    if energy.dtype == np.float64:
        cum = _kernel.slot_cumulative(energy, energy_rows[slot_mpan_pos], tpr_code, ~slot_single, active)
    else:
        cum = np.zeros((n_slots, n_t + 1))
        slot_energy = energy[energy_rows[slot_mpan_pos]]
        multi = np.flatnonzero(~slot_single)
        slot_energy[multi] *= (active[tpr_code] | slot_single[:, None])[multi]
        np.cumsum(slot_energy, axis=1, out=cum[:, 1:])
        del slot_energy

    # Start values: random, near rollover for a share, near zero for new meters.
    start_at = np.where(is_new, installed_at, window_start)[reg_meter]
    rng_s = _rng(seed, "start_value")
    modulus = 10.0 ** digits[reg_meter]
    start_value = rng_s.random(reg_meter.size) * modulus
    new_reg = is_new[reg_meter]
    start_value[new_reg] = rng_s.random(int(new_reg.sum())) * config.new_meter_max_kwh
    b_start = np.searchsorted(boundaries, start_at)
    end_at = np.where(np.isnat(removed_at), boundaries[-1], removed_at)[reg_meter]
    b_end = np.searchsorted(boundaries, end_at)
    window_energy = _kernel.slot_differences(cum, reg_slot, b_end, b_start) if cum.dtype == np.float64 \
        else cum[reg_slot, b_end] - cum[reg_slot, b_start]
    rng_n = _rng(seed, "near_rollover")
    near = (~new_reg) & (rng_n.random(reg_meter.size) < config.near_rollover_share) & (window_energy >= 2.0)
    frac = rng_n.uniform(0.1, 0.9, reg_meter.size)
    start_value[near] = modulus[near] - frac[near] * window_energy[near]

    reg_number, reg_number_code = _distinct(reg_k + 1)
    registers = pd.DataFrame(
        {
            "mpan": mpan_text.take(reg_mpan_pos),
            "meter_id": meter_text.take(reg_meter),
            "register_id": _labels(np.char.zfill(reg_number.astype(str), 2), reg_number_code),
            "tpr": _labels(tpr_table.ravel(), reg_table_pos),
            "digits": digits[reg_meter],
            "slot": reg_slot.astype(np.int64),
            "true_start_at": start_at.astype("datetime64[ns]"),
            "true_start_value": start_value,
        }
    )
    cumulative = xr.DataArray(
        cum,
        dims=("slot", "boundary"),
        coords={
            "boundary": boundaries,
            "slot_mpan": ("slot", mpans[slot_mpan_pos]),
            "slot_register": ("slot", _zfill_numbers(np.arange(n_slots) - slot_start[slot_mpan_pos] + 1, 2)),
        },
        name="cumulative_energy",
        attrs={"units": "kWh", "long_name": "true register energy accumulated since the window start"},
    )
    exchanges = pd.DataFrame(
        {
            "mpan": mpan_text.take(ex_idx),
            "old_meter_id": meter_text.take(ex_idx),
            "new_meter_id": meter_text.take(np.arange(n, n_m)),
            "exchanged_at": exchanged_at.astype("datetime64[ns]"),
        }
    )
    result = Metering(
        meters=meters,
        registers=registers,
        exchanges=exchanges,
        exchange_reads=empty_reads(),
        cumulative=cumulative,
        config=config,
        seed=seed,
        attrs={
            "n_mpans": int(n),
            "n_meters": int(n_m),
            "n_registers": len(registers),
            "n_exchanges": int(ex_idx.size),
            "n_near_rollover": int(near.sum()),
        },
    )
    result.__dict__["_key_index"] = _built_keys(meters, registers, mpans, sel, m_pos, reg_mpan_pos, reg_meter)
    old_meter = np.zeros(n_m, dtype=bool)
    old_meter[ex_idx] = True
    at_of_pos = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    at_of_pos[ex_idx] = exchanged_at
    old_rows = np.flatnonzero(old_meter[reg_meter])
    new_rows = np.flatnonzero(is_new[reg_meter])
    rows = np.concatenate([old_rows, new_rows])
    result.exchange_reads = _exchange_reads(result, seed, old_rows.size, rows, at_of_pos[reg_mpan_pos[rows]])
    return result


def _built_keys(meters, registers, mpans, market_rows, m_pos, reg_mpan_pos, reg_meter) -> _MeterKeys:
    """Keys of the tables as :func:`build_metering` made them, from its positions (no text joins):
    MPAN code = rank of the MPAN among the segment's sorted MPANs; meter ids are unique."""
    n = mpans.size
    int_mpans = _int_keys(mpans)
    sort_key = mpans if int_mpans is None else int_mpans  # integer keys sort and compare as the text
    if n and bool((sort_key[1:] > sort_key[:-1]).all()):  # a market's MPAN axis is often sorted already
        rank = np.arange(n)
    else:
        rank = np.argsort(sort_key)  # without ties any sort is the stable one
    ranked = sort_key[rank]
    distinct = np.r_[True, ranked[1:] != ranked[:-1]] if n else np.zeros(0, dtype=bool)
    if not distinct.all():
        rank = np.argsort(sort_key, kind="stable")
        ranked = sort_key[rank]
    code_of_pos = np.empty(n, dtype=np.int64)
    code_of_pos[rank] = np.cumsum(distinct) - 1
    keys = _MeterKeys(
        tuple(_arrow_source(f, c) for f, c in ((meters, "mpan"), (meters, "meter_id"),
                                              (registers, "mpan"), (registers, "meter_id"),
                                              (registers, "register_id"))),
        mpans[rank][distinct], code_of_pos[m_pos], code_of_pos[reg_mpan_pos], reg_meter.astype(np.int64),
        market_rows[rank][distinct])
    return keys


def _exchange_reads(m: Metering, seed: int, n_old: int, rows: np.ndarray, at: np.ndarray) -> pd.DataFrame:
    """Removal read of the old meter and installation read of the new one, per exchange.

    ``rows``: register rows of the old meters (the first ``n_old``), then of the new ones, each in
    table order; ``at``: the exchange instant of each.
    """
    if not len(m.exchanges):
        return empty_reads()
    reg = m.registers
    true = m.true_value(rows, at)
    shown, wraps = m.displayed(rows, true)
    lo, hi = m.config.exchange_read_delay_hours
    delay = (_rng(seed, "exchange_delay").uniform(lo, hi, rows.size) * 3600e9).astype("timedelta64[ns]")
    read_type = _labels(["installation", "removal"], (np.arange(rows.size) < n_old).astype(np.intp))
    out = _read_frame(
        _take_text(reg, "mpan", rows),
        _take_text(reg, "meter_id", rows),
        _take_text(reg, "register_id", rows),
        at,
        shown,
        read_type,
        at + delay,
        shown,
        wraps,
        "",
    )
    # by mpan, read_at, read_type (removal first), register_id: one lexsort of integer keys of the text
    # (they sort as the text does); pandas when the text cannot be keyed or an instant is missing
    mpan_key, register_key = (_int_keys(_unicode(out[c])) for c in ("mpan", "register_id"))
    if mpan_key is None or register_key is None or np.isnat(at).any():
        return out.sort_values(
            ["mpan", "read_at", "read_type", "register_id"], kind="stable", ascending=[True, True, False, True]
        ).reset_index(drop=True)
    removal_first = (np.arange(rows.size) >= n_old).astype(np.int64)
    return out.iloc[np.lexsort((register_key, removal_first, at, mpan_key))].reset_index(drop=True)


# ------------------------------------------------------------------------------------------ benchmark


def bench_market(mpan_days: int = 100_000, days: int = 7, seed: int = 0):
    """A synthetic smart-segment market for the benchmark (no market generator needed).

    Parameters
    ----------
    mpan_days : int
        MPANs x settlement days; the MPAN count is ``mpan_days // days``.
    days : int
        Settlement days from 2026-03-23 (a week holding the 46-period day 2026-03-29).
    seed : int

    Returns
    -------
    tomlib.market.Market
        All MPANs in segment S (90 % domestic, 10 % non-domestic profile class 3/4, 3 % with a
        linked export MPAN), gamma-distributed true energy [kWh per period].
    """
    from tomlib import cube
    from tomlib import mpan as mpan_mod
    from tomlib.market import Market

    rng = np.random.default_rng(seed)
    n = max(mpan_days // days, 1)
    first = pd.Timestamp("2026-03-23")
    times = cal.time_axis(first, first + pd.Timedelta(days=days - 1))
    groups = np.array(["_A", "_B", "_C", "_D", "_E", "_F", "_G", "_H", "_J", "_K", "_L", "_M", "_N", "_P"])
    g = groups[rng.integers(0, groups.size, n)]
    cores = np.asarray(mpan_mod.generate_cores(g, rng)).astype(str)
    domestic = rng.random(n) < 0.9
    pclass = np.where(domestic, 1, np.where(rng.random(n) < 0.75, 3, 4))
    export = domestic & (rng.random(n) < 0.03)
    linked = np.full(n, "", dtype=object)
    exp_idx = np.flatnonzero(export)
    linked[exp_idx[1::2]] = cores[exp_idx[::2][: exp_idx[1::2].size]]
    linked[exp_idx[::2][: exp_idx[1::2].size]] = cores[exp_idx[1::2]]
    mq = np.where(np.isin(np.arange(n), exp_idx[1::2]), "AE", "AI")
    standing = pd.DataFrame(
        {
            "gsp_group": g,
            "market_segment": "S",
            "connection_type": "W",
            "domestic": domestic,
            "supplier": "ALFA",
            "bm_unit": "2__AALFA001",
            "llfc": "001",
            "measurement_quantity": mq,
            "annual_consumption": rng.uniform(1000, 6000, n),
            "profile_class": np.where(mq == "AE", 0, pclass),
            "linked_mpan": linked.astype(str),
        },
        index=pd.Index(cores, name="mpan"),
    )
    energy = rng.gamma(2.0, 0.1, (n, times.size))
    meters = cube.meter_cube(energy, times, cores, standing)
    empty = xr.DataArray(np.zeros((0, times.size)), dims=("gsp_group", "time"))
    return Market(
        scenario_name="bench",
        seed=int(seed),
        meters=meters,
        line_loss_factors=empty,
        unaccounted_energy=empty,
        gsp_group_take=empty,
    )


def bench_inputs(mpan_days: int = 100_000, days: int = 7, seed: int = 0) -> dict:
    """Keyword arguments of :func:`build_metering` for the benchmark: ``{"market": bench_market(...)}``.

    Meter-periods processed = MPANs x periods = ``market.meters.energy.size``.
    """
    return {"market": bench_market(mpan_days, days, seed)}
