"""Processing Service (Smart): validated and estimated settlement energy per MPAN x period.

The Smart Data Service's processing step (mhhs-domain.md §2.5) turns what the data service knows at
a settlement run's as-of instant -- HH data retrieved from DCC-enrolled meters
(:mod:`~tomlib.services.retrieval`), register reads of meters read by hand
(:mod:`~tomlib.services.meter_reading`) and the Meter Technical Details
(:mod:`~tomlib.services.metering`) -- into energy per MPAN and settlement period with a DI-083
quality code and a DI-076 estimation reason, for the smart segment's import and export MPANs.
:func:`settle_segment` is the segment service of :mod:`tomlib.services.base`.

Pipeline of one run (each step vectorised over all MPANs x periods)
-------------------------------------------------------------------
1. **What is visible**: HH values, duplicate HH records and register reads with
   ``available_at <= as_of``; the intake check of reads
   (:func:`tomlib.services.meter_reading.screen_reads`: unknown MPAN / meter / register,
   impossible values, future-dated reads, duplicates) refuses what cannot be used.
2. **HH validation** (:mod:`tomlib.services.validation`, shared with the Advanced segment):
   negative values, values above the connection's physical maximum, conflicting duplicates, runs
   of zeros on energised import meters whose data are otherwise never zero.
3. **Load shapes**: passed in (the Load Shaping Service, issue 5), or -- until then -- the interim
   shapes of :func:`interim_load_shapes`, the mean validated actual data per category; the output's
   ``attrs["load_shapes"]`` and the check ``load_shapes_interim`` (1 per call that used them) say which.
4. **Register reads** (:mod:`tomlib.services.processing_reads`): advances between consecutive
   actual reads with rollover given the register digits; zero-consumption, twice-expected and
   negative-advance checks against the expected consumption (the MPAN's validated HH data where it
   has them, else annual consumption x load shape, over the periods the register records, F-33).
5. **Estimation hierarchy** (§2.5 step 6), first step that gives a value wins:

   =====  ========================  ========================================================
   code   step                      value
   =====  ========================  ========================================================
   A      actual                    the validated HH value
   ZE1    de-energised              0 (§2.5 edge case: zero, not estimated; DI-076
                                    ``De-Energised``) where ``SmartData.energised`` is False
   E2     daily advance             advance between two DCC daily register reads (the DCC
                                    "daily advance", DI-083 "DA available") minus the actual HH
                                    energy inside it, shaped over the periods without a value
   E3     register advance          the same with at least one read taken by hand (DI-083
                                    "NDM advance"); for a multi-rate meter each register's
                                    advance is shaped only over the periods its TPR records
   E4     the meter's own history   HH: mean of the MPAN's actual values at the same local half
                                    hour on days of the same type within 28 days (F-34); read
                                    meters: the annualised rate of the nearest advance of the
                                    register x load shape (DI-083 "register read history")
   E9     annual consumption        ``AC x LS_j / annual total`` (§5 G-9; DI-083 "AAC or SNAC"),
                                    with the AC maintained from actual data (step 6)
   E7     category default          a default AC of the MPAN's kind x the load shape, or flat
                                    over the day when there is no shape (DI-083 "no recent data")
   =====  ========================  ========================================================

   The DI-076 estimation reason of an estimated period: ``NonSmart`` for meters read by hand
   (traditional meters and smart meters in traditional mode, §2.3), ``Invalid`` where the HH value
   was refused, ``CommsFault`` where the day's retrieval fell in a communications failure, else
   ``Missing``.
6. **Annual consumption maintenance** (§2.5 step 7, [INF] after the legacy EAC smoothing, Q9): the
   actual energy an MPAN recorded (validated HH, or validated register advances for read meters),
   divided by the share of a year's consumption the load shape expects in those periods, is its
   annualised consumption; the AC moves towards it with a weight equal to that share (a fortnight
   of data moves it by ~4 %). The result is the ``annual_consumption_maintained`` coordinate.

Nothing disappears: every refused HH value, duplicate and read is a row of
``SegmentResult.rejected`` with its reason, and ``checks`` count records in = accepted + refused,
per source, and MPAN-periods = sum over quality codes. Counts are for the requested settlement
days only (a read counts on the day that ends at its ``read_at``), so the checks of several
calls for disjoint days add up, as :mod:`tomlib.settlement` sums them.

Notes [INF]: the interim shapes leave out import MPANs with generation behind them (their import is
demand net of solar while their annual consumption is the household's demand; in the demo market
they import ~2/3 of it in spring and would pull the category's annual-consumption-based estimates
~2 % low). The input services are computed once per market and configuration
(:func:`smart_inputs`), and a run's result is shared between as-of instants with no arrival of data
between them (all days of a late run), so a run costs one processing pass per distinct set of
visible data.

Accuracy against the truth of the simulated market: :func:`accuracy_by_method` and
:func:`run_summary`. Benchmark: :func:`bench_inputs` + :func:`process` (throughput = meter-periods
``data.hh.size`` per call).
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from pandas.errors import InvalidIndexError

from tomlib import calendar as cal
from tomlib import cube, reference
from tomlib._text import arrow_text, numpy_text, tight
from tomlib.services import meter_reading as mr_mod
from tomlib.services import metering as mt_mod
from tomlib.services import retrieval as rt_mod
from tomlib.services._processing_kernel import (
    actual_cells,
    estimation_reasons,
    fill_scaled_rows,
    label_energy_sums,
    masked_row_sums,
    nan_rows,
    register_activity_grid,
    visible_grid,
    window_label_energy_sums,
    word_lookup,
)
from tomlib.services._processing_keys import _codes, _packed_words, joint_codes, key_codes, lookup, str_codes
from tomlib.services.base import SegmentResult
from tomlib.services.processing_estimation import (
    DAYS_PER_YEAR,
    INTERIM_SOURCE,
    _label_codes,
    category_labels,
    column_major,
    expected_cumulative,
    hh_history,
    interim_load_shapes,
    one_day_without_repeats,
    per_mpan,
    read_rate_history,
    shape_ratio,
    shaped_spans,
)
from tomlib.services.processing_reads import ReadRules, validate_reads
from tomlib.services.validation import (
    HH_REASONS,
    MAX_KW_BY_CONNECTION_TYPE,
    physical_maximum,
    rejected_hh,
    screen_duplicates,
    validate_hh,
)

__all__ = [
    "METHODS",
    "Processed",
    "ProcessingConfig",
    "SmartData",
    "SmartInputs",
    "accuracy_by_method",
    "bench_inputs",
    "interim_load_shapes",
    "process",
    "register_activity",
    "run_summary",
    "settle_run",
    "settle_segment",
    "smart_data",
    "smart_inputs",
]

#: Estimation steps in hierarchy order: DI-083 label -> what it means (module docstring).
METHODS = {
    "A": "actual HH data",
    "ZE1": "de-energised: zero",
    "E2": "shaped daily advance (DCC register reads)",
    "E3": "shaped register advance (reads by hand)",
    "E4": "the meter's own history",
    "E9": "annual consumption x load shape",
    "E7": "category default",
}
_Q = {label: cube.QUALITY_CODES[label] for label in (*METHODS, "MISSING")}
_R = cube.ESTIMATION_REASONS
_EMPTY_TIME = np.array([], dtype="datetime64[ns]")


# ------------------------------------------------------------------------------------------ configuration


@dataclass(frozen=True)
class ProcessingConfig:
    """Knobs of the smart processing service ([INF] defaults, documented in the module docstring).

    Attributes
    ----------
    metering, retrieval, meter_reading : config dataclass, optional
        Configs of the input services (default: theirs).
    read_rules : ReadRules
        Thresholds of the register-read checks.
    min_zero_run : int
        Shortest suspicious run of zeros [periods].
    max_zero_share : float
        A zero run is suspicious only on MPANs whose other data are zero less often than this [-].
    max_kw_by_connection_type : tuple of (str, float)
        Physical maximum per connection type [kW].
    duplicate_keep : {"first", "neither"}
        Which value a conflicting HH duplicate leaves standing
        (:func:`tomlib.services.validation.screen_duplicates`).
    use_deemed_reads : bool
        Let deemed (estimated) reads bound advances.
    resolution_kwh : float
        Register resolution: a span's remainder down to minus this counts as zero [kWh].
    history_window_days : int
        Days either side searched for the same-day-type HH history [days].
    history_min_values : int
        Fewest history values for an HH history estimate [-].
    history_min_span_days : float
        Shortest register advance whose rate estimates later periods [days].
    min_mpans_per_category : int
        Fewest MPANs with actual data for a category's own interim load shape value (Q2).
    bank_holiday_as : str
        Day type a bank holiday counts as in the HH history.
    default_annual_consumption : tuple of (str, float)
        Default AC by kind ``domestic``, ``non_domestic``, ``export`` [kWh/year] (F-35: ~2,700
        for a domestic unrestricted customer).
    load_shapes : DataArray or callable, optional
        Load shapes (category x time) or ``f(market, as_of, run) -> DataArray``; None -> interim.
    """

    metering: mt_mod.MeteringConfig | None = None
    retrieval: rt_mod.RetrievalConfig | None = None
    meter_reading: mr_mod.MeterReadingConfig | None = None
    read_rules: ReadRules = field(default_factory=ReadRules)
    min_zero_run: int = 4
    max_zero_share: float = 0.01
    max_kw_by_connection_type: tuple[tuple[str, float], ...] = tuple(MAX_KW_BY_CONNECTION_TYPE.items())
    duplicate_keep: str = "first"
    use_deemed_reads: bool = False
    resolution_kwh: float = 1.0
    history_window_days: int = 28
    history_min_values: int = 1
    history_min_span_days: float = 3.0
    min_mpans_per_category: int = 5
    bank_holiday_as: str = "sunday"
    default_annual_consumption: tuple[tuple[str, float], ...] = (
        ("domestic", 2700.0), ("non_domestic", 12000.0), ("export", 1500.0))
    load_shapes: Any = field(default=None, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.duplicate_keep not in ("first", "neither"):
            raise ValueError(f"ProcessingConfig.duplicate_keep must be 'first' or 'neither', got "
                             f"{self.duplicate_keep!r}")
        if int(self.min_zero_run) < 2:
            raise ValueError(f"ProcessingConfig.min_zero_run must be >= 2 periods, got {self.min_zero_run}")
        if not 0 <= self.max_zero_share <= 1:
            raise ValueError(f"ProcessingConfig.max_zero_share must be within [0, 1], got {self.max_zero_share}")
        if self.resolution_kwh < 0 or self.history_window_days < 0 or self.history_min_span_days < 0:
            raise ValueError("ProcessingConfig: resolution_kwh, history_window_days and history_min_span_days "
                             "must be >= 0")
        if self.bank_holiday_as not in ("weekday", "saturday", "sunday"):
            raise ValueError(f"ProcessingConfig.bank_holiday_as must be weekday, saturday or sunday, got "
                             f"{self.bank_holiday_as!r}")
        kinds = dict(self.default_annual_consumption)
        if set(kinds) != {"domestic", "non_domestic", "export"} or min(kinds.values()) <= 0:
            raise ValueError("ProcessingConfig.default_annual_consumption must give domestic, non_domestic and "
                             f"export a positive AC [kWh/year], got {kinds}")

    @classmethod
    def from_scenario(cls, scenario: Any = None, **overrides) -> ProcessingConfig:
        """Configs of the input services from the scenario's sections (``metering``, ``retrieval``,
        ``meter_reading``), fields of a ``processing`` section when the scenario has one, then
        ``overrides``."""
        values: dict[str, Any] = {
            "metering": mt_mod.MeteringConfig.from_scenario(scenario),
            "retrieval": rt_mod.RetrievalConfig.from_scenario(scenario),
            "meter_reading": mr_mod.MeterReadingConfig.from_scenario(scenario),
        }
        section = getattr(scenario, "processing", None)
        if section is not None:
            for f in dataclasses.fields(cls):
                if hasattr(section, f.name):
                    values[f.name] = getattr(section, f.name)
        values.update(overrides)
        return cls(**values)


def _config(config) -> ProcessingConfig:
    if config is None:
        return ProcessingConfig()
    if isinstance(config, ProcessingConfig):
        return config
    return ProcessingConfig.from_scenario(config)


# ------------------------------------------------------------------------------------------ inputs


@dataclass
class SmartData:
    """What the smart data service holds at an as-of instant, on an (mpan x time) grid.

    Attributes
    ----------
    mpans : ndarray of str (n_mpan,)
    times : DatetimeIndex (n_time,)
        UTC period starts, whole settlement days, no gaps.
    standing : DataFrame
        Indexed like ``mpans``: the :data:`tomlib.cube.STANDING_COORDS` columns; optional
        ``linked_mpan`` (an import MPAN with generation behind it has its export MPAN here) and
        ``solar_capacity`` [kW].
    hh : ndarray (n_mpan, n_time)
        Visible HH values [kWh]; NaN = none.
    missing_reason : ndarray of uint8 (n_mpan, n_time)
        DI-076 reason for periods without a usable actual value (NonSmart / Missing / CommsFault).
    duplicates : DataFrame
        Extra HH records: ``mpan``, ``time``, ``energy`` [kWh], ``available_at``.
    reads : DataFrame
        Register reads that passed the intake check (READ_COLUMNS).
    registers : DataFrame
        Meter registers (MTDs): ``mpan``, ``meter_id``, ``register_id``, ``tpr``, ``digits``,
        ``installed_at``, ``removed_at`` (NaT = in service).
    energised : ndarray of bool, optional
        (n_mpan,) or (n_mpan, n_time); default energised.
    active : ndarray of bool (n_register, n_time), optional
        :func:`register_activity` of ``registers`` (computed when not given).
    standing_text : dict of str to ndarray, optional
        Text columns of ``standing`` as numpy strings (as wide as their longest value), when their
        maker has them (:func:`smart_data`): handed to :func:`tomlib.cube.meter_cube` instead of
        converting the pandas columns back.
    """

    mpans: np.ndarray
    times: pd.DatetimeIndex
    standing: pd.DataFrame
    hh: np.ndarray
    missing_reason: np.ndarray
    duplicates: pd.DataFrame
    reads: pd.DataFrame
    registers: pd.DataFrame
    energised: np.ndarray | None = None
    active: np.ndarray | None = None
    standing_text: dict | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.mpans = np.asarray(self.mpans).astype(str)
        self.times = pd.DatetimeIndex(self.times)
        m, t = self.mpans.size, len(self.times)
        for name in ("hh", "missing_reason"):
            if np.shape(getattr(self, name)) != (m, t):
                raise ValueError(f"SmartData.{name} must have shape (n_mpan, n_time) = ({m}, {t}), got "
                                 f"{np.shape(getattr(self, name))}")
        if t > 1 and (np.diff(self.times.asi8) != cal.PERIOD.value).any():
            raise ValueError("SmartData.times must be contiguous 30-minute period starts (UTC)")
        if len(self.standing) != m or not _same_keys(self.standing.index, self.mpans):
            raise ValueError("SmartData.standing must be indexed by mpans, in the same order")
        packed = _packed_words([self.mpans], _str_keys(self.registers, ["mpan"]))
        if packed is not None:  # ASCII MPANs: each register's MPAN looked up among mpans (compiled hash join)
            words, n_mpans = packed
            unknown = word_lookup(words[:n_mpans], words[n_mpans:])[0] < 0
        else:
            reg_codes, mpan_codes = key_codes(_str_keys(self.registers, ["mpan"]), [self.mpans])
            unknown = ~pd.Index(reg_codes).isin(mpan_codes)  # hashed, as np.isin's sort is slower here
        if unknown.any():
            raise ValueError(f"SmartData.registers: MPAN {self.registers['mpan'].to_numpy(dtype=str)[unknown][0]} "
                             "is not one of mpans")


def _same_keys(index: pd.Index, mpans: np.ndarray) -> bool:
    """``(np.asarray(index).astype(str) == mpans).all()`` for an index as long as ``mpans``, comparing
    ASCII strings by their bytes (:func:`~tomlib.services._processing_keys._packed_words`)."""
    if isinstance(index.dtype, pd.StringDtype) and not index.hasnans:
        packed = _packed_words([index.array], [mpans])  # the bytes of both, padded alike
        if packed is not None:
            words, n = packed
            return bool((words[:n] == words[n:]).all())
    return bool((np.asarray(index).astype(str) == mpans).all())


@dataclass
class SmartInputs:
    """The input services' output for a market (metering, retrieval, meter reading) and what the
    processing service derives from it once: every read screened, register activity, comms days and
    the arrival instants of all records. Made by :func:`smart_inputs`."""

    metering: mt_mod.Metering
    retrieval: rt_mod.Retrieval
    meter_reading: mr_mod.MeterReading
    screened: mr_mod.ScreenedReads  # every read, screened once without as_of (see smart_data)
    registers: pd.DataFrame
    active: np.ndarray  # register_activity over the market's whole time axis
    comms: np.ndarray  # (smart MPAN, settlement day): the day's retrieval fell in a comms failure
    arrivals: np.ndarray  # sorted distinct available_at of every record: what is visible changes only there
    mpans: np.ndarray  # the market's smart MPANs, in its order (the rows of SmartData)
    hh_rows: np.ndarray  # row of mpans of each MPAN of the retrieval's HH dataset


_CACHE: dict[tuple, tuple[weakref.ref, SmartInputs]] = {}


def smart_inputs(market, config=None) -> SmartInputs:
    """Metering, retrieval and meter reading of a market: pure functions of (market, config), so one
    computation serves every run and as-of instant (cached while the market lives).

    Parameters
    ----------
    market : tomlib.market.Market
    config : ProcessingConfig or Scenario, optional

    Returns
    -------
    SmartInputs
    """
    cfg = _config(config)
    key = (id(market), cfg.metering, cfg.retrieval, cfg.meter_reading)
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is market:
        return hit[1]
    mt = mt_mod.build_metering(market, cfg.metering)
    rt = rt_mod.retrieve(market, mt, cfg.retrieval)
    mr = mr_mod.read_meters(market, mt, cfg.meter_reading)
    # DCC-enrolled meters: daily remote reads, plus the exchange reads of their meters
    ex = mt.exchange_reads
    ex = ex[~_is_in(ex["mpan"], mt.read_mpans)]
    cols = list(mt_mod.READ_COLUMNS)
    reads = pd.concat([mr.reads[cols], rt.register_reads[cols], ex[cols]], ignore_index=True)
    # Screening without as_of then keeping the reads available by as_of gives what screening at as_of
    # gives: a first arrival is available whenever a later duplicate is, and a read available by
    # as_of cannot be dated after it (read_at > available_at is refused either way).
    screened = mr_mod.screen_reads(reads, mt, as_of=None)
    meter_rows = mt.register_meter_rows()
    registers = _registers(mt, meter_rows)
    seg = market.meters["market_segment"].to_numpy().astype(str)
    mpans = mt_mod._market_mpans(market.meters)[seg == "S"]  # (from the index's Arrow buffers)
    times = pd.DatetimeIndex(market.meters["time"].to_numpy())
    days = pd.DatetimeIndex(np.unique(cal.from_utc(times)[0]))
    hh_mpans = _index_text(rt.hh, "mpan")
    hh_rows = lookup([mpans], [hh_mpans])
    # (the retrieval's day table and HH dataset run over the same DCC MPANs: one lookup serves both)
    comms = _comms_grid(rt, mt.dcc_mpans, mpans, days, hh_rows if np.array_equal(hh_mpans, mt.dcc_mpans) else None)
    # distinct instants by hashing (np.unique would sort every MPAN-day's instant), then sorted; the
    # HH values of an MPAN-day arrive at its day's instant (the HH available_at spreads the day
    # table's over the day's periods), so the day table's instants are the HH's, 48 times fewer
    arrivals = np.sort(pd.unique(np.concatenate([
        rt.days["available_at"].to_numpy(dtype="datetime64[ns]"),
        rt.duplicates["available_at"].to_numpy(dtype="datetime64[ns]"),
        reads["available_at"].to_numpy(dtype="datetime64[ns]")])))
    out = SmartInputs(metering=mt, retrieval=rt, meter_reading=mr, screened=screened, registers=registers,
                      active=register_activity(registers, times, meter_rows=meter_rows), comms=comms,
                      arrivals=arrivals[~np.isnat(arrivals)], mpans=mpans, hh_rows=hh_rows)
    for k in [k for k, v in _CACHE.items() if v[0]() is None or len(_CACHE) >= 4]:
        del _CACHE[k]
    _CACHE[key] = (weakref.ref(market), out)
    return out


def _is_in(values: pd.Series, table: np.ndarray) -> np.ndarray:
    """``np.isin(values.to_numpy(dtype=str), table)``: by the compiled hash join of :func:`lookup`
    (no sort of the table's text), or by ``np.isin`` when the table holds a key twice."""
    if not len(values) or not table.size:
        return np.zeros(len(values), dtype=bool)
    try:
        return lookup([table], [values]) >= 0
    except InvalidIndexError:
        return np.isin(values.to_numpy(dtype=str), table)


def _registers(mt: mt_mod.Metering, meter_rows: np.ndarray) -> pd.DataFrame:
    """The registers with their meter's ``installed_at`` and ``removed_at`` (NaT where the register's
    (mpan, meter_id) is no meter): the left join of registers and meters on (mpan, meter_id), its
    dates gathered by the metering's register -> meter rows instead of joining text."""
    registers = mt.registers[["mpan", "meter_id", "register_id", "tpr", "digits"]].reset_index(drop=True)
    found = meter_rows >= 0
    take = np.where(found, meter_rows, 0)
    for c in ("installed_at", "removed_at"):
        column = mt.meters[c]
        values = column.to_numpy()
        if found.all():
            got = values[take]
        else:
            got = np.full(meter_rows.size, np.datetime64("NaT"), dtype=values.dtype)
            got[found] = values[meter_rows[found]]
        registers[c] = pd.Series(got, dtype=column.dtype, index=registers.index)
    return registers


def _comms_grid(rt: rt_mod.Retrieval, dcc_mpans: np.ndarray, mpans: np.ndarray,
                days: pd.DatetimeIndex, dcc_rows: np.ndarray | None = None) -> np.ndarray:
    """(MPAN of ``mpans``, day of ``days``) whose day's retrieval fell in a comms failure (False where
    the MPAN is not retrieved): the retrieval's day table is DCC-MPAN-major, day-minor (``dcc_mpans``
    x its days), so its comms flags are reshaped and scattered by MPAN rather than pivoted.
    ``dcc_rows``: ``lookup([mpans], [dcc_mpans])`` if already known."""
    table = rt.days
    n_dcc, n_days = len(dcc_mpans), len(days)
    if len(table) == n_dcc * n_days and n_dcc and (
            table["settlement_date"].to_numpy(dtype="datetime64[ns]")[:n_days] == days.to_numpy()).all():
        grid = np.zeros((mpans.size, n_days), dtype=bool)
        pos = lookup([mpans], [dcc_mpans]) if dcc_rows is None else dcc_rows
        into = pos >= 0
        grid[pos[into]] = table["comms_failure"].to_numpy(dtype=bool).reshape(n_dcc, n_days)[into]
        return grid
    comms = table.pivot_table(index="mpan", columns="settlement_date", values="comms_failure", aggfunc="max")
    return comms.reindex(index=mpans, columns=days).astype(float).fillna(0.0).to_numpy() > 0


_NUMPY_STRINGS_AS = pd.Series(np.array(["a"])).dtype  # what pandas makes of numpy strings (pandas 3: str)


def _column(values: np.ndarray):
    """A standing column as pandas makes it of a numpy array, numpy strings converted once per distinct
    value (a handful per column: GSP group, supplier, LLFC, ...) and then taken by row."""
    if values.dtype.kind != "U" or not values.size or not isinstance(_NUMPY_STRINGS_AS, pd.StringDtype):
        return values
    points = np.ascontiguousarray(values).view(np.uint32)
    if points.size and int(points.max()) < 128 and values.ndim == 1:
        # every value ASCII (GSP group, supplier, BM unit; linked MPANs of several widths, most empty):
        # the Arrow buffers written from the characters (tomlib._text.arrow_text), no conversion at all
        return arrow_text(values)
    codes, _ = _codes(values)
    first = np.unique(codes, return_index=True)[1]
    return pd.array(values[first], dtype=_NUMPY_STRINGS_AS).take(codes)


def _numpy_text(column: pd.Series):
    """A standing column as meter_cube takes it: a pandas string column without nulls as numpy strings
    converted once per distinct value (what meter_cube would make of it), any other column as it is."""
    if not isinstance(column.dtype, pd.StringDtype) or not len(column):
        return column
    codes, distinct = pd.factorize(column)
    if (codes < 0).any():  # left to meter_cube, which refuses it
        return column
    return np.asarray(distinct, dtype=object).astype(np.str_)[codes]


def _standing(meters: xr.Dataset, mpans: np.ndarray) -> tuple[pd.DataFrame, dict]:
    """Standing columns of ``meters``, indexed by its MPANs ``mpans`` (numpy strings, fetched once), and
    its numpy string columns as :func:`_numpy_text` would give them back (``SmartData.standing_text``)."""
    cols = list(cube.STANDING_COORDS) + [c for c in ("linked_mpan", "solar_capacity", "profile_class")
                                         if c in meters.coords]
    values = {c: meters[c].to_numpy() for c in cols}
    # numpy strings as wide as their longest value: what _numpy_text makes of their pandas column,
    # without the round trip
    text = {c: tight(v) for c, v in values.items() if v.dtype.kind == "U" and v.size}
    index = pd.Index(arrow_text(mpans) if mpans.size else mpans, name="mpan", copy=False)
    return pd.DataFrame({c: _column(v) for c, v in values.items()}, index=index), text


def _window_end(times: pd.DatetimeIndex, as_of, until) -> int:
    """Number of periods of the grid: up to the end of the settlement day holding max(as_of, until)."""
    if until is None:
        return len(times)
    cut = max(np.datetime64(pd.Timestamp(as_of), "ns"), np.datetime64(pd.Timestamp(until), "ns"))
    day_of_t = cal.from_utc(times)[0].to_numpy()
    before = np.flatnonzero(times.to_numpy() < cut)
    last_day = day_of_t[before[-1]] if before.size else day_of_t[0]
    return int(np.searchsorted(day_of_t, last_day, side="right"))


_RESULTS: dict[tuple, tuple[weakref.ref, tuple]] = {}


def _processed(market, t_as_of: pd.Timestamp, until, run: str, cfg: ProcessingConfig):
    """smart_data + process, remembered for the last as-of instants: data only become visible at
    arrival instants, so two as-of instants with no arrival between them see the same data (every day
    of a late run does) and need one computation. Given load shapes (or a shape provider, itself a
    function of the visible data and the run) are part of the key."""
    arrivals = smart_inputs(market, cfg).arrivals
    k = int(np.searchsorted(arrivals, np.datetime64(t_as_of, "ns"), side="right"))
    n_keep = _window_end(pd.DatetimeIndex(market.meters["time"].to_numpy()), t_as_of, until)
    given = cfg.load_shapes
    # the key holds cfg, which holds the shapes, so their id cannot be reused while the entry lives
    key = (id(market), cfg, id(given), run if callable(given) else None, arrivals[k - 1] if k else None, n_keep)
    hit = _RESULTS.get(key)
    if hit is not None and hit[0]() is market:
        return hit[1]
    data, rej, extra = smart_data(market, t_as_of, cfg, until=until)
    shapes = given(market, t_as_of, run) if callable(given) else given
    value = (data, rej, extra, process(data, cfg, shapes))
    for old in [k_ for k_, v in _RESULTS.items() if v[0]() is None or len(_RESULTS) >= 2]:
        del _RESULTS[old]
    _RESULTS[key] = (weakref.ref(market), value)
    return value


def _index_text(ds: xr.Dataset, dim: str) -> np.ndarray:
    """``ds[dim].to_numpy().astype(str)`` of a text dimension coordinate, read from its index's Arrow
    buffers (:func:`tomlib._text.numpy_text`) when that gives the coordinate's own dtype."""
    index = ds.indexes.get(dim)
    if index is not None and isinstance(index.dtype, pd.StringDtype):
        text = numpy_text(index.array)
        if text.dtype == ds[dim].dtype:
            return text
    return ds[dim].to_numpy().astype(str)


def smart_data(market, as_of, config=None, until=None) -> tuple[SmartData, pd.DataFrame, dict[str, float]]:
    """What the smart data service of ``market`` holds at ``as_of``.

    Parameters
    ----------
    market : tomlib.market.Market
    as_of : datetime-like
        The run's as-of instant [UTC, tz-naive].
    config : ProcessingConfig or Scenario, optional
    until : datetime-like, optional
        End of the periods wanted [UTC]. The grid runs from the market's first period to the end of
        the settlement day holding the later of ``as_of`` and ``until`` (no data exist after
        ``as_of``, so later periods change nothing); default the market's whole window.

    Returns
    -------
    data : SmartData
        Over the smart-segment MPANs (import and export).
    intake_rejected : DataFrame
        Reads refused by the intake check (available by ``as_of``), one row each.
    counts : dict
        ``reads_not_yet_available``.
    """
    cfg = _config(config)
    inp = smart_inputs(market, cfg)
    t_as_of = np.datetime64(pd.Timestamp(as_of), "ns")
    meters = market.meters
    seg = meters["market_segment"].to_numpy().astype(str)
    sel = np.flatnonzero(seg == "S")
    all_times = pd.DatetimeIndex(meters["time"].to_numpy())
    day_of_t = cal.from_utc(all_times)[0]
    n_keep = _window_end(all_times, t_as_of, until)
    # the standing coordinates of the smart MPANs (not the market's energy: a copy of it is not needed)
    ds = meters.drop_vars(list(meters.data_vars)).isel(mpan=sel, time=slice(0, n_keep))
    mpans = _index_text(ds, "mpan")
    times = all_times[:n_keep]
    # what rt_mod.visible shows at as_of, the HH values masked by their arrival and scattered onto the
    # grid of smart MPANs in one compiled pass (no masked copy of the retrieval's values)
    ret = inp.retrieval
    dups = ret.duplicates[ret.duplicates["available_at"].to_numpy() <= t_as_of].reset_index(drop=True)
    rows = inp.hh_rows if np.array_equal(mpans, inp.mpans) else lookup([mpans], [_index_text(ret.hh, "mpan")])
    hh = visible_grid(ret.hh["energy"].to_numpy(), ret.hh["available_at"].to_numpy(), rows, mpans.size, n_keep,
                      t_as_of)
    if hh is None:  # an HH MPAN twice or off the grid: scattered as NumPy does
        hh = np.full((mpans.size, n_keep), np.nan)
        hh[rows] = rt_mod.visible(ret, t_as_of)[0]["energy"].to_numpy()[:, :n_keep]
    dups = dups[dups["time"].to_numpy(dtype="datetime64[ns]") < (times[-1] + cal.PERIOD).to_datetime64()]
    dcc = np.zeros(mpans.size, dtype=bool)
    dcc[rows] = True
    # DI-076 of a period without actual data: by meter, then by the day's retrieval outcome
    d_idx = np.unique(day_of_t.to_numpy(), return_inverse=True)[1][:n_keep]
    reason = np.where(inp.comms[:, d_idx], np.uint8(_R["CommsFault"]), np.uint8(_R["Missing"]))
    reason[~dcc] = _R["NonSmart"]
    screened = inp.screened
    acc = screened.accepted
    acc = acc[acc["available_at"].to_numpy(dtype="datetime64[ns]") <= t_as_of].reset_index(drop=True)
    rej = screened.rejected
    rej = rej[rej["available_at"].to_numpy(dtype="datetime64[ns]") <= t_as_of].reset_index(drop=True)
    rej = rej.assign(source=pd.array(np.full(len(rej), "read"), dtype="str"))
    later = int((screened.accepted["available_at"].to_numpy(dtype="datetime64[ns]") > t_as_of).sum()
                + (screened.rejected["available_at"].to_numpy(dtype="datetime64[ns]") > t_as_of).sum())
    standing, text = _standing(ds, mpans)
    data = SmartData(mpans=mpans, times=times, standing=standing, hh=hh, missing_reason=reason,
                     duplicates=dups, reads=acc, registers=inp.registers, active=inp.active[:, :n_keep],
                     standing_text=text)
    return data, rej, {"reads_not_yet_available": float(later)}


# ------------------------------------------------------------------------------------------ processing


def register_activity(registers: pd.DataFrame, times, meter_rows: np.ndarray | None = None) -> np.ndarray:
    """Periods each meter register records: its TPR is active (a single-register meter records every
    period, [INF] as in :mod:`~tomlib.services.metering`) and its meter is installed.

    Parameters
    ----------
    registers : DataFrame
        ``mpan``, ``meter_id``, ``tpr``, ``installed_at``, ``removed_at``.
    times : datetime-like sequence
        Period starts [UTC].
    meter_rows : ndarray of int, optional
        Each register's row in its metering's meters
        (:meth:`~tomlib.services.metering.Metering.register_meter_rows`): registers of the same meter
        are then counted on these rows instead of on their (mpan, meter_id) text.

    Returns
    -------
    ndarray of bool (n_register, n_time)
    """
    times = pd.DatetimeIndex(times)
    tpr_codes, tprs = pd.factorize(registers["tpr"])
    if (tpr_codes < 0).any():  # a missing TPR: coded as its text, as before
        tprs, tpr_codes = np.unique(registers["tpr"].to_numpy(dtype=str), return_inverse=True)
    tprs = np.asarray(tprs, dtype=str)
    tpr_on = mt_mod.tpr_active(tprs, times) if tprs.size else np.zeros((0, len(times)), dtype=bool)
    if meter_rows is not None and len(meter_rows) == len(registers) and (meter_rows >= 0).all():
        single = np.bincount(meter_rows)[meter_rows] == 1
    else:  # registers of the same (mpan, meter): integer-coded pairs counted
        none = np.zeros(0, dtype=str)
        meter_code, _, _ = joint_codes(
            [registers["mpan"].to_numpy(dtype=str), registers["meter_id"].to_numpy(dtype=str)], [none, none])
        _, pair, count = np.unique(meter_code, return_inverse=True, return_counts=True)
        single = count[pair.reshape(-1)] == 1
    t = times.to_numpy()
    inst = registers["installed_at"].to_numpy(dtype="datetime64[ns]")
    rem = registers["removed_at"].to_numpy(dtype="datetime64[ns]")
    inst = np.where(np.isnat(inst), np.datetime64("1677-09-22", "ns"), inst)
    rem = np.where(np.isnat(rem), np.datetime64("2262-01-01", "ns"), rem)
    if np.isnat(t).any():  # (no period starts at NaT; kept as NumPy compares it)
        active = tpr_on[tpr_codes.reshape(-1)] | single[:, None]
        return active & (t[None, :] >= inst[:, None]) & (t[None, :] < rem[:, None])
    # TPR, single register and meter dates in one compiled pass (no register x period copies)
    return register_activity_grid(tpr_on, tpr_codes, single, inst, rem, t)


@dataclass
class Processed:
    """Result of :func:`process` over the whole window of a :class:`SmartData`.

    Attributes
    ----------
    energy : ndarray (n_mpan, n_time) [kWh]
    quality : ndarray of uint8
        DI-083 codes (:data:`METHODS`).
    estimation_reason : ndarray of uint8
        DI-076 codes (0 for actual data).
    hh_reason : ndarray of uint8
        HH rejection reason per cell (index into :data:`~tomlib.services.validation.HH_REASONS`).
    rejected : DataFrame
        Refused HH values, duplicates and reads (:data:`~tomlib.services.base.REJECTED_COLUMNS` +
        ``source`` and read columns).
    reads : DataFrame
        The input reads with ``reason`` ("" kept) and ``deemed``.
    spans : DataFrame
        Validated advances (:func:`~tomlib.services.processing_estimation.shaped_spans`).
    shapes : DataArray
        Load shapes used.
    annual_consumption : ndarray (n_mpan,)
        Maintained AC [kWh/year].
    counts : dict
        Diagnostics over the whole window.
    """

    energy: np.ndarray
    quality: np.ndarray
    estimation_reason: np.ndarray
    hh_reason: np.ndarray
    rejected: pd.DataFrame
    reads: pd.DataFrame
    spans: pd.DataFrame
    shapes: xr.DataArray
    annual_consumption: np.ndarray
    counts: dict[str, float]


def _is(column, value: str) -> np.ndarray:
    """Rows of a standing column whose text is ``value`` (compared on its few distinct values)."""
    codes, distinct = str_codes(column)
    return (distinct == value)[codes]


def _kind_defaults(standing: pd.DataFrame, cfg: ProcessingConfig) -> np.ndarray:
    d = dict(cfg.default_annual_consumption)
    export = _is(standing["measurement_quantity"], "AE")
    dom = standing["domestic"].to_numpy(dtype=bool)
    return np.where(export, d["export"], np.where(dom, d["domestic"], d["non_domestic"]))


def _regions(gsp_group) -> np.ndarray:
    codes, groups = str_codes(gsp_group)  # groups in order of first appearance: the error names the first row's
    out = reference.gsp_groups()["region"].reindex(groups).to_numpy()
    if pd.isna(out).any():
        raise ValueError(f"unknown GSP group {groups[pd.isna(out)][0]!r}")
    return out.astype(str)[codes]


def _str_array(values: np.ndarray):
    """``pd.array(values.astype(str), dtype="str")`` for values with a few distinct strings (reasons):
    the distinct ones converted, then taken by row."""
    values = np.asarray(values, dtype=object)
    if not values.size or pd.isna(values).any():  # (None and NaN render differently: row by row)
        return pd.array(values.astype(str), dtype="str")
    codes, distinct = pd.factorize(values)
    return pd.array(np.asarray(distinct, dtype=object).astype(str), dtype="str").take(codes)


def _str_keys(frame: pd.DataFrame, columns) -> list:
    """Key columns for :func:`lookup`: string columns as they are (coded from their bytes), any other as
    the text ``to_numpy(dtype=str)`` gives."""
    return [frame[c] if pd.api.types.is_string_dtype(frame[c].dtype) else frame[c].to_numpy(dtype=str)
            for c in columns]


def _reads_rejected(reads: pd.DataFrame, reason: np.ndarray, field_name: np.ndarray) -> pd.DataFrame:
    bad = reason != ""
    r = reads.loc[bad]
    return pd.DataFrame({
        "mpan": pd.array(r["mpan"].to_numpy(dtype=str), dtype="str"),
        "time": r["read_at"].to_numpy(dtype="datetime64[ns]"),
        "field": pd.array(field_name[bad].astype(str), dtype="str"),
        "reason": pd.array(reason[bad].astype(str), dtype="str"),
        "value": pd.array(r["value"].to_numpy(dtype=float).astype(str), dtype="str"),
        "source": pd.array(np.full(int(bad.sum()), "read"), dtype="str"),
        "meter_id": pd.array(r["meter_id"].to_numpy(dtype=str), dtype="str"),
        "register_id": pd.array(r["register_id"].to_numpy(dtype=str), dtype="str"),
        "read_at": r["read_at"].to_numpy(dtype="datetime64[ns]"),
        "available_at": r["available_at"].to_numpy(dtype="datetime64[ns]"),
        "read_type": pd.array(r["read_type"].to_numpy(dtype=str), dtype="str"),
    })


def process(data: SmartData, config=None, shapes: xr.DataArray | None = None) -> Processed:
    """Validate and estimate: the core of the processing service (module docstring, steps 2-6).

    Parameters
    ----------
    data : SmartData
    config : ProcessingConfig, optional
    shapes : DataArray, optional
        Load shapes (category x time) covering ``data.times``; None -> :func:`interim_load_shapes`
        of the validated actual data.

    Returns
    -------
    Processed
    """
    cfg = _config(config)
    m, n_t = data.hh.shape
    times = data.times
    st = data.standing
    hh = np.asarray(data.hh, dtype=float)
    import_ = _is(st["measurement_quantity"], "AI")
    ac = st["annual_consumption"].to_numpy(dtype=float)
    counts: dict[str, float] = {}

    # 2. HH validation
    capacity = st["solar_capacity"].to_numpy(dtype=float) if "solar_capacity" in st else None
    max_e = physical_maximum(st["connection_type"], st["measurement_quantity"], capacity,
                             dict(cfg.max_kw_by_connection_type))
    linked = ~_is(st["linked_mpan"], "") if "linked_mpan" in st else np.zeros(m, bool)
    generation = import_ & linked  # import net of on-site generation
    hh_reason = validate_hh(hh, max_energy=max_e, zero_run_rows=import_ & ~generation,
                            energised=data.energised, min_zero_run=cfg.min_zero_run,
                            max_zero_share=cfg.max_zero_share)
    dups = data.duplicates
    d_row = lookup([data.mpans], _str_keys(dups, ["mpan"]))
    d_col = pd.Index(times).get_indexer(pd.DatetimeIndex(dups["time"].to_numpy(dtype="datetime64[ns]")))
    inside = (d_row >= 0) & (d_col >= 0)
    if not inside.all():
        i = int(np.flatnonzero(~inside)[0])
        raise ValueError(f"SmartData.duplicates row {i} (mpan {dups['mpan'].iloc[i]}, time {dups['time'].iloc[i]}) "
                         "is not on the grid of mpans x times")
    dup_reason, invalidate = screen_duplicates(dups, hh[d_row, d_col], cfg.duplicate_keep)
    kill = invalidate & (hh_reason[d_row, d_col] == 0) & np.isfinite(hh[d_row, d_col])
    hh_reason[d_row[kill], d_col[kill]] = HH_REASONS.index("conflicting_duplicate")
    # valid actual cells, and the energy and quality grids the estimation steps fill (one pass)
    valid, energy, quality = actual_cells(hh, hh_reason, _Q["A"], _Q["MISSING"])

    # 3. load shapes
    cat = category_labels(st)
    region = _regions(st["gsp_group"])
    interim = shapes is None
    if interim:
        # the most common region (the first in sorted order on a tie, as pandas' mode gives)
        names, of_row = _label_codes(region)
        main_region = str(names[np.argmax(np.bincount(of_row))]) if m else "england_wales"
        shapes = interim_load_shapes(hh, valid, cat, times, ac, include=~generation,
                                     min_mpans=cfg.min_mpans_per_category, region=main_region)
    ratio = shape_ratio(shapes, cat, times, hh, valid & ~generation[:, None], ac)

    # 4. register reads
    regs = data.registers
    reg_mpan = lookup([data.mpans], _str_keys(regs, ["mpan"]))
    active = data.active if data.active is not None else register_activity(regs, times)
    reads = data.reads.reset_index(drop=True)
    n_reads = len(reads)
    key = ["mpan", "meter_id", "register_id"]
    reg_of_read = lookup(_str_keys(regs, key), _str_keys(reads, key)) if n_reads else np.zeros(0, dtype=np.int64)
    bounds = np.append(times.to_numpy(), times[-1].to_datetime64() + cal.PERIOD.to_timedelta64()) \
        if n_t else np.zeros(0, dtype="datetime64[ns]")
    read_at = reads["read_at"].to_numpy(dtype="datetime64[ns]")
    b = np.searchsorted(bounds, read_at)
    on_bound = (b < bounds.size) & (bounds[np.minimum(b, bounds.size - 1)] == read_at)
    read_reason = np.full(n_reads, "", dtype=object)
    read_field = np.full(n_reads, "value", dtype=object)
    read_reason[reg_of_read < 0] = "unknown_register"
    read_field[reg_of_read < 0] = "register_id"
    off = (reg_of_read >= 0) & ~on_bound
    read_reason[off] = "read_at_not_period_boundary"
    read_field[off] = "read_at"
    use = read_reason == ""
    # only a register with two usable reads can bound an advance: the expected energy, the spans and
    # their estimates are worked out on those registers' rows (a few thousand of a block's ~10^5);
    # every other row of the expected cumulative energy is never read (left 0)
    n_reg = len(regs)
    paired = np.flatnonzero(np.bincount(reg_of_read[use], minlength=n_reg) >= 2) if n_reg else \
        np.zeros(0, dtype=np.int64)
    p_mpan = reg_mpan[paired]
    r_p = ratio[p_mpan]
    active_p = np.asarray(active)[paired]
    known_p = np.where(valid[p_mpan], hh[p_mpan], np.nan)
    # (the rows of the paired registers, and one row of zeros that every other register reads: the
    # ~10^5 rows of zeros a full table held were a fresh ~100 MB per block)
    exp_rows = np.full(n_reg, paired.size, dtype=np.int64)
    exp_rows[paired] = np.arange(paired.size)
    exp_cum = np.zeros((paired.size + 1, n_t + 1))
    exp_cum[:paired.size] = expected_cumulative(r_p, active_p, ac[p_mpan], known_p)
    deemed = _is(reads["read_type"], "deemed")
    rv = validate_reads(reg_of_read[use], b[use], reads["value"].to_numpy(dtype=float)[use],
                        regs["digits"].to_numpy()[reg_of_read[use]], deemed[use] & (not cfg.use_deemed_reads),
                        _is(reads["read_type"], "remote")[use], exp_cum, cfg.read_rules, expected_rows=exp_rows)
    read_reason[np.flatnonzero(use)] = rv.reason
    counts["read_validation_passes"] = float(rv.passes)
    counts["advances_unresolved"] = float(rv.unresolved)

    # 5. estimation hierarchy
    # spans on the rows of the paired registers (register = position in `paired`), then by MPAN: the
    # MPANs of those registers (`p_rows`) are the only ones the register-based steps can fill
    span_reg = rv.spans["register"].to_numpy(dtype=np.int64)
    shaped, spans_p, cell_span = shaped_spans(rv.spans.assign(register=np.searchsorted(paired, span_reg)),
                                              r_p, active_p, known_p, cfg.resolution_kwh)
    spans = spans_p.assign(register=span_reg)
    p_rows, p_of = np.unique(p_mpan, return_inverse=True)
    p_of = p_of.reshape(-1)
    remote_of_span = np.append(spans["remote"].to_numpy(dtype=bool), False)  # index -1: no span
    remote_cell = remote_of_span[cell_span]
    shaped_m = per_mpan(shaped, p_of, p_rows.size)
    remote_m = per_mpan(np.where(cell_span >= 0, remote_cell.astype(float), np.nan), p_of, p_rows.size)

    def fill(values: np.ndarray, code, rows: np.ndarray | None = None) -> None:
        # the first step that gives a value wins: fill only cells still without one
        if rows is None:
            take = np.isnan(energy) & np.isfinite(values)
            np.copyto(energy, values, where=take)
            np.copyto(quality, code if np.ndim(code) else np.uint8(code), where=take)
            return
        e, q = energy[rows], quality[rows]  # values of these MPANs' rows only
        take = np.isnan(e) & np.isfinite(values)
        np.copyto(e, values, where=take)
        np.copyto(q, code if np.ndim(code) else np.uint8(code), where=take)
        energy[rows], quality[rows] = e, q

    # §2.5: a de-energised period without an actual value is zero, not an estimate
    if data.energised is not None:  # default: energised everywhere, nothing to fill
        off = ~np.broadcast_to(np.asarray(data.energised, dtype=bool).reshape(m, -1), (m, n_t))
        fill(np.where(off, 0.0, np.nan), _Q["ZE1"])
    fill(shaped_m, np.where(remote_m == 1.0, _Q["E2"], _Q["E3"]).astype(np.uint8), p_rows)
    if not one_day_without_repeats(times):
        # (in a window of one settlement day without a repeated clock half hour the MPAN's history at a
        # period is its own value there: the step could only give back actual values, already in place)
        fill(hh_history(hh, valid, times, region, window_days=cfg.history_window_days,
                        min_values=cfg.history_min_values, bank_holiday_as=cfg.bank_holiday_as), _Q["E4"])
    t0 = times[0] if n_t else pd.Timestamp(0)
    bound_days = (bounds - np.datetime64(t0, "ns")) / np.timedelta64(1, "D") if n_t else np.zeros(1)
    need = np.isnan(energy[p_mpan]) & active_p
    fill(per_mpan(read_rate_history(spans_p, r_p, active_p, need, bound_days, cfg.history_min_span_days),
                  p_of, p_rows.size), _Q["E4"], p_rows)

    # 6. annual consumption maintained from actual data (before the AC-based steps use it)
    # row sums of the valid cells, as numpy summed where(valid, ., 0.0) by row, without the masked
    # copies; the ratio's NaN -> 0 and +-inf -> +-max (np.nan_to_num) only where it is summed
    hh_e = masked_row_sums(hh, valid)
    hh_r = masked_row_sums(ratio, valid, finite=True)
    ok_span = (spans["status"].to_numpy(dtype=str) != "inconsistent") & np.isfinite(spans["rate"].to_numpy(float)) \
        & (spans["rate"].to_numpy(float) > 0)
    span_mpan = reg_mpan[spans["register"].to_numpy(dtype=np.int64)[ok_span]]
    span_e = np.bincount(span_mpan, weights=spans["advance"].to_numpy(dtype=float)[ok_span], minlength=m)
    span_r = np.bincount(span_mpan, weights=(spans["advance"] / spans["rate"]).to_numpy(dtype=float)[ok_span]
                         if ok_span.any() else np.zeros(0), minlength=m)
    span_r = np.nan_to_num(span_r)
    use_hh = hh_r > 0
    got_e = np.where(use_hh, hh_e, span_e)
    got_r = np.where(use_hh, hh_r, span_r)
    with np.errstate(invalid="ignore", divide="ignore"):
        annualised = got_e / got_r
    w = np.clip(got_r, 0.0, 1.0)
    ac_new = np.where(got_r > 0, np.where(np.isfinite(ac), (1 - w) * ac + w * annualised, annualised), ac)
    counts["annual_consumption_updated"] = float((got_r > 0).sum())

    # the AC-based steps can only fill the rows still holding a cell without a value (few, once the
    # actual data and the register steps are in): worked out on those rows, cell for cell the same
    # (each step fills AC x ratio in place on those rows and gives back the rows still open)
    open_rows = fill_scaled_rows(energy, quality, nan_rows(energy), ac_new, ratio, _Q["E9"])
    default_ac = _kind_defaults(st, cfg)
    open_rows = fill_scaled_rows(energy, quality, open_rows, default_ac, ratio, _Q["E7"])
    dates, _ = cal.from_utc(times)
    flat = default_ac[open_rows, None] / DAYS_PER_YEAR / np.asarray(cal.periods_in_day(dates.to_numpy()))[None, :]
    fill(flat, _Q["E7"], open_rows)

    # DI-076: the missing data's reason, Invalid where a value was refused, De-Energised where ZE1 (one pass)
    reason = estimation_reasons(valid, data.missing_reason, hh_reason, hh, quality, _R["Invalid"], _Q["ZE1"],
                                _R["De-Energised"])

    rejected = pd.concat([
        rejected_hh(hh_reason, hh, data.mpans, times.to_numpy(), source="hh"),
        _duplicates_rejected(dups, dup_reason),
        _reads_rejected(reads, read_reason, read_field),
    ], ignore_index=True)
    reads_out = reads.assign(reason=_str_array(read_reason), deemed=deemed)
    counts["spans"] = float(len(spans))
    for status in ("shaped", "all_actual", "inconsistent"):
        counts[f"spans_{status}"] = float((spans["status"] == status).sum())
    counts["rollovers"] = float(spans["rollover"].sum()) if len(spans) else 0.0
    counts["load_shapes_interim"] = float(interim)
    return Processed(energy=energy, quality=quality, estimation_reason=reason, hh_reason=hh_reason,
                     rejected=rejected, reads=reads_out, spans=spans, shapes=shapes, annual_consumption=ac_new,
                     counts=counts)


def _duplicates_rejected(dups: pd.DataFrame, reason: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({
        "mpan": pd.array(dups["mpan"].to_numpy(dtype=str), dtype="str"),
        "time": dups["time"].to_numpy(dtype="datetime64[ns]"),
        "field": pd.array(np.full(len(dups), "energy"), dtype="str"),
        "reason": pd.array(np.asarray(reason).astype(str), dtype="str"),
        "value": pd.array(dups["energy"].to_numpy(dtype=float).astype(str), dtype="str"),
        "source": pd.array(np.full(len(dups), "duplicate"), dtype="str"),
        "available_at": dups["available_at"].to_numpy(dtype="datetime64[ns]"),
    })


# ------------------------------------------------------------------------------------------ the segment service


def _record_day(times: np.ndarray, window: pd.DatetimeIndex, end_inclusive: bool) -> np.ndarray:
    """Settlement day a record counts on: a period's own day; a read's, the day that ends at (or holds)
    its ``read_at`` -- clipped into the window, so records dated outside it count on its first or last day."""
    t = np.asarray(times, dtype="datetime64[ns]")
    if end_inclusive:
        t = t - np.timedelta64(1, "ns")
    t = np.clip(t, window[0].to_datetime64(), window[-1].to_datetime64())
    t = np.asarray(t, dtype="datetime64[ns]")
    if not t.size:
        return _EMPTY_TIME
    if np.isnat(t).any():
        return cal.from_utc(pd.DatetimeIndex(t).floor("30min"))[0].to_numpy()
    # the window's periods are contiguous and on the half-hour grid: the period holding t is its
    # position, and its day the window's own (instead of converting every record's time)
    period = ((t - window[0].to_datetime64()) // cal.PERIOD.to_timedelta64()).astype(np.int64)
    return cal.from_utc(window)[0].to_numpy()[period]


def settle_segment(market, as_of, *, run: str, settlement_dates, config=None) -> SegmentResult:
    """The smart segment's settlement data for some settlement days, as known at ``as_of``.

    Parameters
    ----------
    market : tomlib.market.Market
    as_of : datetime-like
        The run's as-of instant [UTC, tz-naive]: only data with ``available_at <= as_of`` are used.
    run : str
        Settlement run (II, SF, R1, ...), for provenance and a callable ``load_shapes``.
    settlement_dates : array-like of datetime-like
        Settlement days to return (local dates, in the market's window).
    config : ProcessingConfig or Scenario, optional

    Returns
    -------
    SegmentResult
        ``meters``: the meter cube of the smart-segment MPANs over the days' periods (``energy``,
        ``quality``, ``estimation_reason``; coordinate ``annual_consumption_maintained``);
        ``rejected``: every refused record of those days; ``checks``: the counts of the module
        docstring (``in_records = accepted_records + rejected``, ``mpan_periods`` = sum of
        ``mpan_periods_<label>``) plus energy per quality code [kWh].
    """
    cfg = _config(config)
    t_as_of = pd.Timestamp(as_of)
    days = pd.DatetimeIndex(np.atleast_1d(np.asarray(settlement_dates, dtype="datetime64[ns]"))).normalize()
    market_days = pd.DatetimeIndex(np.unique(np.asarray(market.meters["settlement_date"].values)))
    outside = days[~days.isin(market_days)]
    if len(outside) or len(days) == 0:
        raise ValueError(f"settle_segment: settlement dates must be days of the market's window "
                         f"({market_days[0]:%Y-%m-%d}..{market_days[-1]:%Y-%m-%d}), got "
                         f"{', '.join(f'{d:%Y-%m-%d}' for d in (outside if len(outside) else days))}")
    until = cal.to_utc(days.max(), 1)[0] + pd.Timedelta(days=1)  # after the last day's end, in any season
    data, intake_rej, _, out = _processed(market, t_as_of, until, run, cfg)
    window = data.times
    day_of_t = cal.from_utc(window)[0]
    cols = np.flatnonzero(day_of_t.isin(days))
    # the requested days are (nearly always) one run of columns: slice them rather than gather
    if cols.size and cols[-1] - cols[0] + 1 == cols.size:
        cols = slice(int(cols[0]), int(cols[-1]) + 1)
    # the standing table is indexed by data.mpans in their order (SmartData checks it): handed over as
    # columns aligned with the MPANs, text columns as numpy strings made per distinct value, so
    # meter_cube neither looks the MPANs up again nor converts text row by row
    text = data.standing_text or {}
    st = {c: text[c] if c in text else _numpy_text(data.standing[c]) for c in data.standing.columns}
    st["annual_consumption_maintained"] = out.annual_consumption
    meters = cube.meter_cube(np.array(out.energy[:, cols]), window[cols], data.mpans, st,
                             quality=np.array(out.quality[:, cols]),
                             estimation_reason=np.array(out.estimation_reason[:, cols]))
    meters["annual_consumption_maintained"].attrs.update(
        {"units": "kWh/year", "long_name": "annual consumption maintained from actual data at the as-of instant"})
    interim = bool(out.counts["load_shapes_interim"])
    meters.attrs.update({
        "segment": "S", "run": str(run), "as_of": str(t_as_of),
        "load_shapes": INTERIM_SOURCE if interim else str(out.shapes.attrs.get("source", "given")),
        "quality_codes": "; ".join(f"{k} {v}" for k, v in METHODS.items()),
    })

    rejected = pd.concat([out.rejected, intake_rej], ignore_index=True)
    is_read = rejected["source"].to_numpy(dtype=str) == "read"
    rec_day = np.where(is_read, _record_day(rejected["time"].to_numpy(), window, True),
                       _record_day(rejected["time"].to_numpy(), window, False))
    rejected = rejected[np.isin(rec_day, days.to_numpy())].reset_index(drop=True)
    checks = _checks(data, out, rejected, intake_rej, cols, days, window, smart_inputs(market, cfg).screened, t_as_of)
    return SegmentResult(segment="S", meters=meters, rejected=rejected, checks=checks)


def _checks(data, out, rejected, intake_rej, cols, days, window, screened, as_of) -> dict[str, float]:
    """Counts of the module docstring for the requested days (records counted on their day)."""
    c: dict[str, float] = {}
    wanted = days.to_numpy()
    src = rejected["source"].to_numpy(dtype=str)
    dups = data.duplicates
    dup_in = np.isin(_record_day(dups["time"].to_numpy(), window, False), wanted)
    c["hh_in"] = float(np.count_nonzero(np.isfinite(data.hh[:, cols])) + dup_in.sum())
    c["hh_accepted"] = float(np.count_nonzero(out.quality[:, cols] == _Q["A"]))
    c["hh_rejected"] = float(np.isin(src, ("hh", "duplicate")).sum())
    hh_src = np.isin(src, ("hh", "duplicate"))
    why_of = rejected["reason"].to_numpy(dtype=str)
    for why in ("duplicate", *HH_REASONS[1:]):
        c[f"hh_rejected_{why}"] = float((hh_src & (why_of == why)).sum())
    reads_all = pd.concat([out.reads[["read_at"]], intake_rej[["read_at"]]], ignore_index=True)
    c["reads_in"] = float(np.isin(_record_day(reads_all["read_at"].to_numpy(), window, True), wanted).sum())
    kept = _is(out.reads["reason"], "")
    kept_in = np.isin(_record_day(out.reads["read_at"].to_numpy()[kept], window, True), wanted)
    c["reads_accepted"] = float(kept_in.sum())
    c["reads_accepted_deemed_not_used"] = float((kept_in & out.reads["deemed"].to_numpy(dtype=bool)[kept]).sum())
    c["reads_rejected"] = float((src == "read").sum())
    for why in sorted(set(rejected.loc[src == "read", "reason"].astype(str))):
        c[f"reads_rejected_{why}"] = float(((src == "read") & (rejected["reason"].to_numpy(dtype=str) == why)).sum())
    t = np.datetime64(pd.Timestamp(as_of), "ns")
    pending = [f.loc[f["available_at"].to_numpy(dtype="datetime64[ns]") > t, "read_at"].to_numpy()
               for f in (screened.accepted, screened.rejected)]
    c["reads_not_yet_available"] = float(np.isin(_record_day(np.concatenate(pending), window, True), wanted).sum())
    c["in_records"] = c["hh_in"] + c["reads_in"]
    c["accepted_records"] = c["hh_accepted"] + c["reads_accepted"]
    c["rejected"] = float(len(rejected))
    c["in_minus_out"] = c["in_records"] - c["accepted_records"] - c["rejected"]
    labels = (*METHODS, "MISSING")
    codes = [_Q[label] for label in labels]
    # per label, the sum numpy's nansum(where(q == label, e, 0)) gave over the column-major copies of
    # the days' columns, summed in that order by a compiled pass over the row-major arrays themselves
    # (no copies; when the days' columns are one run, as nearly always)
    got = None
    if isinstance(cols, slice) and cols.step in (None, 1) and out.energy.flags.c_contiguous \
            and out.quality.flags.c_contiguous:
        start, stop, _ = cols.indices(out.energy.shape[1])
        got = window_label_energy_sums(out.energy, out.quality, start, max(start, stop), codes)
        c["mpan_periods"] = float(out.quality.shape[0] * max(stop - start, 0))
    if got is None:
        # gathered by column index (column-major copies): the energy sums add the cells in that order
        col_idx = np.arange(out.quality.shape[1])[cols]
        q = out.quality[:, col_idx]
        c["mpan_periods"] = float(q.size)
        e = column_major(out.energy[:, cols])  # the same column-major copy, made quicker
        got = label_energy_sums(e, q, codes)
    counts, sums = got
    for label, energy in zip(labels, sums):
        c[f"mpan_periods_{label}"] = float(counts[_Q[label]])
        c[f"energy_{label} [kWh]"] = float(energy)
    c["mpan_periods_in_minus_out"] = c["mpan_periods"] - sum(c[f"mpan_periods_{k}"] for k in (*METHODS, "MISSING"))
    # advances count on the day their closing read does
    bounds = np.append(window.to_numpy(), window[-1].to_datetime64() + cal.PERIOD.to_timedelta64())
    sp = out.spans
    span_in = np.isin(_record_day(bounds[sp["b2"].to_numpy(dtype=np.int64)], window, True), wanted)
    status = sp["status"].to_numpy(dtype=str)
    c["advances"] = float(span_in.sum())
    c["advances_shaped"] = float((span_in & (status == "shaped")).sum())
    c["advances_inconsistent_with_hh"] = float((span_in & (status == "inconsistent")).sum())
    c["advances_with_rollover"] = float((span_in & sp["rollover"].to_numpy(dtype=bool)).sum())
    c["load_shapes_interim"] = out.counts["load_shapes_interim"]  # 1 per call that used interim shapes
    return c


# ------------------------------------------------------------------------------------------ runs and accuracy


def settle_run(market, run: str, *, settlement_dates=None, config=None, preset: str = "mhhs",
               region: str = "england_wales") -> SegmentResult:
    """The smart segment of one settlement run over several days, each day at its own as-of instant
    (one :func:`settle_segment` call per distinct instant, as :mod:`tomlib.settlement` does).

    Parameters
    ----------
    market : Market
    run : str
    settlement_dates : array-like, optional
        Default: every day of the market.
    config : ProcessingConfig or Scenario, optional
    preset, region : str
        Run timetable preset and working-day region.

    Returns
    -------
    SegmentResult
        Meters of all the days (time-ordered), their rejected records and summed checks;
        ``meters.attrs["as_of"]`` lists the instants.
    """
    from tomlib.settlement import as_of_instants

    all_days = pd.DatetimeIndex(np.unique(np.asarray(market.meters["settlement_date"].values)))
    days = all_days if settlement_dates is None else pd.DatetimeIndex(
        np.atleast_1d(np.asarray(settlement_dates, dtype="datetime64[ns]")))
    as_of = as_of_instants(days, run, preset, region)
    parts = [settle_segment(market, pd.Timestamp(t), run=run, settlement_dates=pd.DatetimeIndex(g.index),
                            config=config)
             for t, g in as_of.groupby(as_of.values)]  # one call per distinct as-of instant (a few days each)
    meters = xr.concat([p.meters for p in parts], dim="time", coords="minimal", compat="override",
                       combine_attrs="override").sortby("time")
    meters.attrs["as_of"] = ", ".join(str(pd.Timestamp(t)) for t in np.unique(as_of.values))
    checks: dict[str, float] = {}
    for p in parts:
        for k, v in p.checks.items():
            checks[k] = checks.get(k, 0.0) + v
    rejected = pd.concat([p.rejected for p in parts], ignore_index=True)
    return SegmentResult(segment="S", meters=meters, rejected=rejected, checks=checks)


def accuracy_by_method(result: SegmentResult, market) -> pd.DataFrame:
    """Error of the settled energy against the market's truth, per estimation step.

    Parameters
    ----------
    result : SegmentResult
        Of :func:`settle_segment` or :func:`settle_run`.
    market : Market
        The market it settled (its ``energy`` is the truth).

    Returns
    -------
    DataFrame
        Index ``quality`` (DI-083 label, hierarchy order, steps used only) with ``method``,
        ``mpan_periods``, ``share_periods`` [-], ``settled_kwh``, ``true_kwh``, ``share_energy``
        (of the true energy) [-], ``mae_kwh`` and ``bias_kwh`` (mean absolute and mean error per
        MPAN-period [kWh]), ``mae_pct`` and ``bias_pct`` (sum of absolute / signed errors over the
        true energy of those periods [%]) and ``daily_mae_pct`` (absolute error of each MPAN-day's
        total over the periods of the step, over their true energy [%]).
    """
    ds = result.meters
    truth = market.meters["energy"].sel(mpan=ds["mpan"].values, time=ds["time"].values).to_numpy()
    e = ds["energy"].to_numpy()
    q = ds["quality"].to_numpy()
    err = e - truth
    day = np.unique(np.asarray(ds["settlement_date"].values), return_inverse=True)[1]
    rows = []
    total_true = float(np.nansum(truth))
    for label, method in METHODS.items():  # six estimation steps
        sel = q == _Q[label]
        n = int(sel.sum())
        if n == 0:
            continue
        t_sum = float(truth[sel].sum())
        key = np.nonzero(sel)[0] * (day.max() + 1) + day[np.nonzero(sel)[1]]
        de = pd.Series(err[sel]).groupby(key).sum()
        rows.append({
            "quality": label, "method": method, "mpan_periods": n, "share_periods": n / q.size,
            "settled_kwh": float(e[sel].sum()), "true_kwh": t_sum,
            "share_energy": t_sum / total_true if total_true else np.nan,
            "mae_kwh": float(np.abs(err[sel]).mean()), "bias_kwh": float(err[sel].mean()),
            "mae_pct": 100 * float(np.abs(err[sel]).sum()) / t_sum if t_sum else np.nan,
            "bias_pct": 100 * float(err[sel].sum()) / t_sum if t_sum else np.nan,
            "daily_mae_pct": 100 * float(de.abs().sum()) / t_sum if t_sum else np.nan,
        })
    return pd.DataFrame(rows).set_index("quality")


def run_summary(results: Mapping[str, SegmentResult], market) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Actual / estimate mix and error against the truth, per settlement run.

    Parameters
    ----------
    results : mapping run -> SegmentResult
        E.g. ``{run: settle_run(market, run) for run in ("II", "SF", "R1")}``.
    market : Market

    Returns
    -------
    summary : DataFrame
        Index ``run``: ``actual_share_energy`` and ``actual_share_periods`` (quality A) [-],
        ``read_share_energy`` (A, E2 or E3: settled on actual HH data or actual reads) [-],
        ``settled_kwh``, ``true_kwh``, ``bias_pct``, ``mae_pct`` [%], ``rejected`` and ``in_minus_out``.
    accuracy : DataFrame
        :func:`accuracy_by_method` of each run, with a ``run`` column.
    """
    rows, acc = [], []
    for run, res in results.items():  # a handful of runs
        a = accuracy_by_method(res, market)
        ds = res.meters
        truth = market.meters["energy"].sel(mpan=ds["mpan"].values, time=ds["time"].values).to_numpy()
        e = ds["energy"].to_numpy()
        q = ds["quality"].to_numpy()
        actual = q == _Q["A"]
        on_reads = np.isin(q, [_Q["A"], _Q["E2"], _Q["E3"]])
        rows.append({
            "run": run,
            "actual_share_energy": float(e[actual].sum() / e.sum()),
            "actual_share_periods": float(actual.mean()),
            "read_share_energy": float(e[on_reads].sum() / e.sum()),
            "settled_kwh": float(e.sum()), "true_kwh": float(truth.sum()),
            "bias_pct": 100 * float((e - truth).sum() / truth.sum()),
            "mae_pct": 100 * float(np.abs(e - truth).sum() / truth.sum()),
            "rejected": float(len(res.rejected)), "in_minus_out": res.checks.get("in_minus_out", np.nan),
        })
        acc.append(a.reset_index().assign(run=run))
    summary = pd.DataFrame(rows).set_index("run")
    accuracy = pd.concat(acc, ignore_index=True) if acc else pd.DataFrame()
    return summary, accuracy


# ------------------------------------------------------------------------------------------ benchmark


def bench_inputs(mpan_days: int = 100_000, days: int = 7, seed: int = 0) -> dict:
    """Synthetic inputs of :func:`process` for the benchmark (no market generator needed).

    A week from 2026-03-23 (it holds the 46-period day 2026-03-29), ``mpan_days // days`` MPANs:
    70 % DCC-enrolled with daily register reads and ~3 % of days missing, a few negative values,
    zero runs and conflicting duplicates; 30 % read by hand (an opening read and one more read);
    10 % two-rate meters (SSC 0151); 5- and 6-digit registers, some near rollover.

    Returns
    -------
    dict
        Keyword arguments of :func:`process`: ``data`` (SmartData) and ``config``. Throughput =
        ``data.hh.size`` meter-periods per call.
    """
    rng = np.random.default_rng(seed)
    n = max(mpan_days // days, 2)
    first = pd.Timestamp("2026-03-23")
    times = cal.time_axis(first, first + pd.Timedelta(days=days - 1))
    n_t = len(times)
    mpans = np.char.zfill((10**12 + np.arange(n)).astype(str), 13)
    dom = rng.random(n) < 0.9
    g = np.where(rng.random(n) < 0.6, "_C", "_P")
    ac = np.where(dom, rng.lognormal(np.log(3000), 0.4, n), rng.lognormal(np.log(15000), 0.6, n))
    standing = pd.DataFrame({
        "gsp_group": g, "market_segment": "S", "connection_type": "W", "domestic": dom, "supplier": "ALFA",
        "bm_unit": "2__CALFA001", "llfc": "100", "measurement_quantity": "AI", "annual_consumption": ac,
    }, index=pd.Index(mpans, name="mpan"))
    k = cal.local_clock_index(times)
    base = 0.6 + 0.5 * np.sin((k - 14) / 48 * 2 * np.pi) ** 2 + (k >= 34) * (k <= 42) * 0.8
    base = base / base.sum() * 48
    truth = ac[:, None] / 365.0 / 48 * base[None, :] * rng.lognormal(0, 0.3, (n, n_t))
    dcc = rng.random(n) < 0.7
    dates, _ = cal.from_utc(times)
    day_idx = np.unique(dates.to_numpy(), return_inverse=True)[1]
    got_day = rng.random((n, days)) > 0.03
    hh = np.where(dcc[:, None] & got_day[:, day_idx], truth, np.nan)
    f = rng.random(hh.shape)
    hh[f < 2e-5] = -1.0
    dup_cells = np.argwhere((f > 1 - 4e-5) & np.isfinite(hh))
    dups = pd.DataFrame({"mpan": mpans[dup_cells[:, 0]], "time": times.to_numpy()[dup_cells[:, 1]],
                         "energy": hh[dup_cells[:, 0], dup_cells[:, 1]] * 1.3,
                         "available_at": times[-1] + pd.Timedelta(days=3)})
    two = rng.random(n) < 0.1
    reg_mpan = np.concatenate([np.arange(n), np.flatnonzero(two)])
    reg_id = np.where(np.arange(reg_mpan.size) < n, "01", "02")
    tpr = np.where(two[reg_mpan], np.where(reg_id == "01", "00043", "00210"), "00001")
    digits = np.where(rng.random(n) < 0.6, 5, 6)[reg_mpan]
    registers = pd.DataFrame({"mpan": mpans[reg_mpan], "meter_id": np.char.add("M", mpans[reg_mpan]),
                              "register_id": reg_id, "tpr": tpr, "digits": digits,
                              "installed_at": pd.Timestamp("2020-01-01"), "removed_at": pd.NaT})
    active = register_activity(registers, times)
    start = rng.random(reg_mpan.size) * 10.0**digits
    cum = np.concatenate([np.zeros((reg_mpan.size, 1)), np.cumsum(truth[reg_mpan] * active, axis=1)], axis=1)
    day_end = np.append(np.flatnonzero(np.diff(day_idx)) + 1, n_t)  # boundary index ending each day
    # DCC: a read at the end of every retrieved day; by hand: the window start and one day mid-window
    r_dcc = np.flatnonzero(dcc[reg_mpan])
    rr, dd = np.nonzero(got_day[reg_mpan[r_dcc]])
    rows = np.concatenate([r_dcc[rr], np.flatnonzero(~dcc[reg_mpan]), np.flatnonzero(~dcc[reg_mpan])])
    bidx = np.concatenate([day_end[dd], np.zeros(int((~dcc[reg_mpan]).sum()), dtype=int),
                           day_end[rng.integers(1, days, int((~dcc[reg_mpan]).sum()))]])
    bounds = np.append(times.to_numpy(), times[-1].to_datetime64() + cal.PERIOD.to_timedelta64())
    value = np.floor(start[rows] + cum[rows, bidx]) % 10.0 ** digits[rows]
    reads = pd.DataFrame({"mpan": mpans[reg_mpan[rows]], "meter_id": registers["meter_id"].to_numpy()[rows],
                          "register_id": reg_id[rows], "read_at": bounds[bidx], "value": value,
                          "read_type": np.where(dcc[reg_mpan[rows]], "remote", "customer"),
                          "available_at": bounds[bidx] + np.timedelta64(1, "D")})
    reads.loc[~dcc[reg_mpan[rows]] & (bidx == 0), "read_type"] = "opening"
    reason = np.where(dcc[:, None], _R["Missing"], _R["NonSmart"]) * np.ones((1, n_t), dtype=np.uint8)
    data = SmartData(mpans=mpans, times=times, standing=standing, hh=hh, missing_reason=reason.astype(np.uint8),
                     duplicates=dups, reads=reads, registers=registers)
    return {"data": data, "config": ProcessingConfig()}
