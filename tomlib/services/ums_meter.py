"""The UMS equivalent meter (UMSDS): half-hourly energy of unmetered supplies by the passive, PECU or CMS method.

:func:`equivalent_meter` computes energy per UMS MPAN and settlement period from the valid inventory
lines (mhhs-domain.md §2.8)::

    E[m, j] = sum over lines of m:  circuit kW x quantity x weighted on-minutes in j / 60

with the on-minutes from one of three methods:

- **passive**: switch-on at sunset + the regime's passive offset, off at sunrise - offset, at the
  representative point of the line's GSP group (:func:`passive_switching`, astral);
- **PECU array**: the switching times of the photocells of the line's photocell type (its regime's lux
  levels) in the GSP group's **primary** array; where that array's night is missing (not delivered by
  ``as_of``) or fails validation (:func:`pecu_validation`: array clock deviation beyond the warning, too
  few plausible cells), the **secondary** array; where both fail, **passive** (fallback). Each valid cell
  weighs 1/n of the night's valid cells, so the settled switching is the mean of the array's cells;
- **CMS**: the switch and dimming events of the item (inventory line) from the central management
  system; a night without a complete event log falls back to passive.

Part-night and dimming windows and fixed-time regimes are local clock times (UK) converted per night by
:mod:`tomlib.services.ums_switching`; continuous regimes are on all the time and fixed/continuous
regimes need no switching data at all.

Sources and quality
-------------------
Every settled MPAN-period carries the *source* of its energy (:data:`SOURCES`, the worst over the MPAN's
lines in that order) and, through :attr:`UmsConfig.quality`, a DI-083 quality code. The DI-083 catalogue
has no UMS-specific codes, so this is our [INF] mapping (:data:`QUALITY_BY_SOURCE`, configurable):

=================  =====  ================================================================
source             code   meaning
=================  =====  ================================================================
regime             A      fixed-time or continuous regime: inventory-based, no switching data needed
passive            A      the MPAN's agreed method is passive: inventory-based actual (CCC U actual)
cms                A      measured switching/dimming events of the item
pecu_primary       A      actual switching of the primary array
pecu_secondary     E      primary unavailable or invalid: another array's switching substituted
passive_fallback   E7     no valid switching data ("no recent data"): passive estimate
=================  =====  ================================================================

The estimated ones carry DI-076 estimation reason ``Missing`` (the preferred data had not arrived by
``as_of``) or ``Invalid`` (they failed validation), for the primary array (PECU) or the line's log (CMS).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tomlib import calendar as cal
from tomlib import cube, reference
from tomlib.mpan import positions
from tomlib.services import ums_switching as sw
from tomlib.services.ums_operator import _default_codes, _default_regimes

__all__ = [
    "CMS_COLUMNS",
    "METHODS",
    "PECU_COLUMNS",
    "QUALITY_BY_SOURCE",
    "SOURCES",
    "EquivalentMeter",
    "SunTable",
    "UmsConfig",
    "annual_burning_hours",
    "equivalent_meter",
    "lit_segments",
    "night_of_period",
    "passive_switching",
    "pecu_validation",
    "regime_minutes",
    "resolve_config",
]

#: Equivalent meter methods ("registered": each MPAN's own).
METHODS = ("registered", "passive", "pecu", "cms")
#: Source of settled energy, in increasing order of "worse" (an MPAN-period takes its worst line's).
SOURCES = ("none", "regime", "passive", "cms", "pecu_primary", "pecu_secondary", "passive_fallback")
_SRC = {s: i for i, s in enumerate(SOURCES)}
#: [INF] DI-083 quality label of each source (see the module docstring).
QUALITY_BY_SOURCE = {"regime": "A", "passive": "A", "cms": "A", "pecu_primary": "A",
                     "pecu_secondary": "E", "passive_fallback": "E7"}
_MISSING_R = cube.ESTIMATION_REASONS["Missing"]
_INVALID_R = cube.ESTIMATION_REASONS["Invalid"]
#: Columns of the PECU array observations.
PECU_COLUMNS = ("array_id", "gsp_group", "role", "photocell", "photocell_type", "night", "switch_on", "switch_off",
                "clock_deviation_s", "available_at")
#: Columns of the CMS event log.
CMS_COLUMNS = ("mpan", "item_id", "night", "time", "level", "available_at")

# --------------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UmsConfig:
    """Choices of the UMS data service (``config`` of :func:`settle_segment`); [INF] defaults.

    Attributes
    ----------
    method : str
        One of :data:`METHODS`: ``"registered"`` (each MPAN's ``ums_method``), or ``"passive"``,
        ``"pecu"``, ``"cms"`` for every MPAN (``"cms"`` settles CMS-controlled lines from CMS events and
        the other photocell lines from the PECU arrays).
    quality : Mapping[str, str]
        DI-083 label per source (:data:`QUALITY_BY_SOURCE`).
    clock_warning_s : float
        An array night whose clock deviation exceeds this fails validation [s].
    min_valid_share : float
        An array night needs at least this share of its cells of a photocell type plausible [-].
    plausible_window_min : float
        A cell's switch-on (off) must lie within this of sunset (sunrise) to be plausible [min].
    charge_codes, switch_regimes : DataFrame, optional
        Tables to use instead of the shipped ones (as :func:`load_charge_codes` returns them).
    """

    method: str = "registered"
    quality: Mapping[str, str] = field(default_factory=lambda: dict(QUALITY_BY_SOURCE))
    clock_warning_s: float = 300.0
    min_valid_share: float = 0.6
    plausible_window_min: float = 120.0
    charge_codes: pd.DataFrame | None = field(default=None, compare=False, repr=False)
    switch_regimes: pd.DataFrame | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"UmsConfig.method must be one of {', '.join(METHODS)}, got {self.method!r}")
        missing = sorted(set(SOURCES[1:]) - set(self.quality))
        if missing:
            raise ValueError(f"UmsConfig.quality lacks a DI-083 label for source(s) {missing}")
        unknown = sorted(set(self.quality.values()) - set(cube.QUALITY_CODES) - {"MISSING"})
        if unknown or "MISSING" in self.quality.values():
            raise ValueError(f"UmsConfig.quality: {unknown or ['MISSING']} are not DI-083 labels")
        if not 0 <= self.min_valid_share <= 1:
            raise ValueError(f"UmsConfig.min_valid_share must be within [0, 1], got {self.min_valid_share}")
        if self.clock_warning_s < 0 or self.plausible_window_min <= 0:
            raise ValueError("UmsConfig.clock_warning_s must be >= 0 and plausible_window_min > 0")

    @property
    def codes(self) -> pd.DataFrame:
        return self.charge_codes if self.charge_codes is not None else _default_codes()

    @property
    def regimes(self) -> pd.DataFrame:
        return self.switch_regimes if self.switch_regimes is not None else _default_regimes()

    def describe(self) -> dict:
        """JSON-ready summary (provenance)."""
        return {"method": self.method, "quality": dict(self.quality), "clock_warning_s": self.clock_warning_s,
                "min_valid_share": self.min_valid_share, "plausible_window_min": self.plausible_window_min,
                "custom_tables": self.charge_codes is not None or self.switch_regimes is not None}


def resolve_config(config) -> UmsConfig:
    """A UmsConfig from None (defaults), a UmsConfig or a mapping of its fields."""
    if config is None:
        return UmsConfig()
    if isinstance(config, UmsConfig):
        return config
    if isinstance(config, Mapping):
        return UmsConfig(**config)
    raise TypeError(f"UMS config must be a UmsConfig, a mapping or None, got {type(config).__name__}")


# --------------------------------------------------------------------------------------------------
# switching of one regime (also used by the notebook and the truth generator)
# --------------------------------------------------------------------------------------------------
def passive_switching(regime: pd.Series, latitude: float, longitude: float, nights) -> tuple[np.ndarray, np.ndarray]:
    """Passive equivalent meter switching: sunset + offset and next sunrise - offset.

    Parameters
    ----------
    regime : Series
        A row of :func:`switch_regimes` of a photocell kind.
    latitude, longitude : float
        [deg].
    nights : array-like of date-like
        Local dates of the evenings.

    Returns
    -------
    dusk, dawn : numpy.ndarray of datetime64[ns]
        [UTC].
    """
    nights = pd.DatetimeIndex(pd.to_datetime(np.atleast_1d(np.asarray(nights))))
    _, sunset = sw.sun_times(latitude, longitude, nights)
    sunrise, _ = sw.sun_times(latitude, longitude, nights + pd.Timedelta(days=1))
    on = np.round(float(regime["passive_on_offset_min"]) * 60e9).astype(np.int64)
    off = np.round(float(regime["passive_off_offset_min"]) * 60e9).astype(np.int64)
    return sunset + np.timedelta64(on, "ns"), sunrise - np.timedelta64(off, "ns")


def lit_segments(regime: pd.Series, nights, dusk, dawn):
    """Weighted lit segments of a photocell regime for rows (night, dusk, dawn): (start, end, weight, row)."""
    dusk = np.asarray(dusk, dtype="datetime64[ns]")
    dawn = np.asarray(dawn, dtype="datetime64[ns]")
    if int(regime["clock_off_min"]) >= 0:
        s, e, row = sw.part_night_segments(nights, dusk, dawn, int(regime["clock_off_min"]), int(regime["clock_on_min"]))
    else:
        s, e, row = dusk, dawn, np.arange(dusk.size)
    w = np.ones(s.size)
    if int(regime["dim_start_min"]) >= 0:
        ds, de = sw.dimmed_segments(nights, s, e, row, int(regime["dim_start_min"]), int(regime["dim_end_min"]))
        s, e = np.concatenate([s, ds]), np.concatenate([e, de])
        w = np.concatenate([w, np.full(ds.size, float(regime["dim_level"]) - 1.0)])
        row = np.concatenate([row, row])
    return s, e, w, row


def _clock_segments(regime: pd.Series, times: pd.DatetimeIndex):
    """Segments of a fixed or continuous regime over a UTC axis: (start, end)."""
    if regime["kind"] == "continuous":
        return (np.array([times[0].to_datetime64()], dtype="datetime64[ns]"),
                np.array([(times[-1] + cal.PERIOD).to_datetime64()], dtype="datetime64[ns]"))
    return sw.fixed_segments(sw.nights_of(times), int(regime["clock_on_min"]), int(regime["clock_off_min"]))


def regime_minutes(regime: pd.Series, times, latitude: float, longitude: float, dusk=None, dawn=None) -> np.ndarray:
    """Weighted on-minutes per settlement period of one item under a regime.

    Parameters
    ----------
    regime : Series
        A row of :func:`switch_regimes`.
    times : array-like of datetime64
        Contiguous UTC period starts.
    latitude, longitude : float
        Location [deg].
    dusk, dawn : array-like of datetime64, optional
        Photocell switching per night of :func:`tomlib.services.ums_switching.nights_of`; default the
        passive switching of the regime.

    Returns
    -------
    numpy.ndarray
        [min] per period (x circuit kW / 60 = kWh).
    """
    times = pd.DatetimeIndex(np.asarray(times, dtype="datetime64[ns]"))
    if regime["kind"] in ("fixed", "continuous"):
        s, e = _clock_segments(regime, times)
        return sw.period_minutes(np.zeros(s.size, dtype=np.int64), s, e, 1.0, 1, times[0], len(times))[0]
    nights = sw.nights_of(times)
    if dusk is None or dawn is None:
        dusk, dawn = passive_switching(regime, latitude, longitude, nights)
    s, e, w, _ = lit_segments(regime, nights, dusk, dawn)
    return sw.period_minutes(np.zeros(s.size, dtype=np.int64), s, e, w, 1, times[0], len(times))[0]


def annual_burning_hours(regime: pd.Series, latitude: float, longitude: float, year: int) -> float:
    """Equivalent full-power burning hours of a regime over a calendar year (passive switching).

    Parameters
    ----------
    regime : Series
        A row of :func:`switch_regimes`.
    latitude, longitude : float
        [deg].
    year : int

    Returns
    -------
    float
        [h/year]: lit hours, dimmed hours counted at their level, over the settlement days of ``year``.
    """
    times = cal.time_axis(pd.Timestamp(f"{year}-01-01"), pd.Timestamp(f"{year}-12-31"))
    return float(regime_minutes(regime, times, latitude, longitude).sum() / 60.0)


# --------------------------------------------------------------------------------------------------
# PECU array validation
# --------------------------------------------------------------------------------------------------
def _check_columns(df: pd.DataFrame, cols, what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: column(s) {missing} missing; expected {list(cols)}")


class SunTable:
    """Sunset and next sunrise [UTC] per (area, night), and the areas' coordinates."""

    def __init__(self, areas, nights: pd.DatetimeIndex):
        table = reference.gsp_groups()
        self.areas = pd.Index(list(areas))
        unknown = sorted(set(self.areas) - set(table.index))
        if unknown:
            raise ValueError(f"unknown GSP group(s) {unknown}; expected one of {', '.join(table.index)}")
        self.lat = table.loc[self.areas, "latitude"].to_numpy(dtype=float)
        self.lon = table.loc[self.areas, "longitude"].to_numpy(dtype=float)
        self.nights = nights
        shape = (len(self.areas), len(nights))
        self.sunset = np.empty(shape, dtype="datetime64[ns]")
        self.sunrise = np.empty(shape, dtype="datetime64[ns]")
        for a in range(len(self.areas)):  # a loop over GSP groups
            _, self.sunset[a] = sw.sun_times(self.lat[a], self.lon[a], nights)
            self.sunrise[a], _ = sw.sun_times(self.lat[a], self.lon[a], nights + pd.Timedelta(days=1))


def pecu_validation(pecu: pd.DataFrame, nights, as_of=None, config: UmsConfig | None = None,
                    sun: SunTable | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Validate PECU array nights available at ``as_of``.

    Parameters
    ----------
    pecu : DataFrame
        Observations, columns ``PECU_COLUMNS``: one row per array, photocell and night, with the
        recorded switch-on/off [UTC, NaT where the cell did not report], the array's clock deviation [s]
        and ``available_at`` [UTC].
    nights : array-like of date-like
        Nights to validate.
    as_of : Timestamp, optional
        Only rows with ``available_at <= as_of`` count; default all.
    config : UmsConfig, optional
    sun : optional
        Precomputed sun times (internal).

    Returns
    -------
    status : DataFrame
        One row per (array_id, photocell_type, night) that has any row: ``gsp_group``, ``role``,
        ``n_cells`` (the array's cells of that type), ``n_valid``, ``clock_deviation_s`` (largest
        absolute) and ``status``: ``ok``, ``invalid_clock`` or ``too_few_valid`` (missing nights have no row).
    valid : numpy.ndarray of bool
        Per row of ``pecu``: available, in ``nights`` and plausible (both times present, each within
        ``plausible_window_min`` of sunset/sunrise, on before off).
    """
    config = resolve_config(config)
    _check_columns(pecu, PECU_COLUMNS, "PECU observations")
    nights = pd.DatetimeIndex(pd.to_datetime(np.atleast_1d(np.asarray(nights))))
    areas = pd.unique(pecu["gsp_group"].astype(str).to_numpy())
    sun = sun if sun is not None and set(areas) <= set(sun.areas) else SunTable(areas, nights)
    night = pd.DatetimeIndex(pecu["night"]).to_numpy()
    n_idx = nights.get_indexer(night)
    a_idx = sun.areas.get_indexer(pecu["gsp_group"].astype(str).to_numpy())
    present = n_idx >= 0
    if as_of is not None:
        av = pecu["available_at"].to_numpy(dtype="datetime64[ns]")
        present &= ~np.isnat(av) & (av <= np.datetime64(pd.Timestamp(as_of).as_unit("ns").to_datetime64()))
    on = pecu["switch_on"].to_numpy(dtype="datetime64[ns]")
    off = pecu["switch_off"].to_numpy(dtype="datetime64[ns]")
    window = np.timedelta64(int(config.plausible_window_min * 60e9), "ns")
    ni, ai = np.where(present, n_idx, 0), np.where(present, a_idx, 0)
    sunset, sunrise = sun.sunset[ai, ni], sun.sunrise[ai, ni]
    plausible = (~np.isnat(on) & ~np.isnat(off) & (on < off) & (np.abs(on - sunset) <= window)
                 & (np.abs(off - sunrise) <= window))
    valid = present & plausible
    size = (pecu.assign(_n=1).groupby(["array_id", "photocell_type", "photocell"]).size()
            .groupby(level=[0, 1]).size().rename("n_cells"))
    frame = pecu.loc[present, ["array_id", "photocell_type", "night", "gsp_group", "role", "clock_deviation_s"]].copy()
    frame["valid"] = valid[present]
    frame["abs_clock"] = frame["clock_deviation_s"].abs()
    status = (frame.groupby(["array_id", "photocell_type", "night"])
              .agg(gsp_group=("gsp_group", "first"), role=("role", "first"), n_valid=("valid", "sum"),
                   clock_deviation_s=("abs_clock", "max")).reset_index())
    status = status.join(size, on=["array_id", "photocell_type"])
    need = np.ceil(config.min_valid_share * status["n_cells"].to_numpy(dtype=float))
    status["status"] = np.select(
        [status["clock_deviation_s"].to_numpy(dtype=float) > config.clock_warning_s,
         status["n_valid"].to_numpy(dtype=float) < np.maximum(need, 1)],
        ["invalid_clock", "too_few_valid"], "ok")
    return status, valid


# --------------------------------------------------------------------------------------------------
# the equivalent meter
# --------------------------------------------------------------------------------------------------
@dataclass
class EquivalentMeter:
    """Output of :func:`equivalent_meter`.

    Attributes
    ----------
    mpans : ndarray of str
    times : DatetimeIndex
        UTC period starts.
    energy : ndarray, shape (n_mpan, n_time)
        Settled energy [kWh]; 0 for an MPAN without lines.
    source : ndarray of uint8, same shape
        Index into :data:`SOURCES` (worst over the MPAN's lines).
    reason : ndarray of uint8, same shape
        DI-076 estimation reason code of that source (0 none, 2 Missing, 3 Invalid).
    has_lines : ndarray of bool, shape (n_mpan,)
    nights : DataFrame
        The source chosen per PECU group night (``gsp_group``, ``photocell_type``, ``night``, ``source``,
        ``reason``) and per CMS line night (``mpan``, ``item_id``), for reports.
    """

    mpans: np.ndarray
    times: pd.DatetimeIndex
    energy: np.ndarray
    source: np.ndarray
    reason: np.ndarray
    has_lines: np.ndarray
    nights: pd.DataFrame


def _methods_of(methods, mpans: np.ndarray) -> np.ndarray:
    if isinstance(methods, str):
        out = np.full(mpans.size, methods, dtype=object)
    else:
        out = pd.Series(methods).astype(str).reindex(mpans).to_numpy(dtype=object)
        if pd.isna(out).any():
            raise ValueError(f"equivalent_meter: no method for MPAN {mpans[pd.isna(out)][0]}")
    bad = sorted(set(out) - {"passive", "pecu", "cms"})
    if bad:
        raise ValueError(f"equivalent_meter: method {bad[0]!r} is not passive, pecu or cms")
    return out.astype(str)


def night_of_period(times: pd.DatetimeIndex, nights: pd.DatetimeIndex) -> np.ndarray:
    dates, _ = cal.from_utc(times)
    morning = np.asarray(cal.local_clock_index(times)) < 24
    night = dates - pd.to_timedelta(morning.astype(np.int64), unit="D")
    return nights.get_indexer(night)


def equivalent_meter(inventory: pd.DataFrame, times, *, methods, pecu: pd.DataFrame | None = None,
                     cms: pd.DataFrame | None = None, as_of=None, config: UmsConfig | None = None,
                     mpans=None) -> EquivalentMeter:
    """Half-hourly energy of UMS MPANs from their (valid) inventory lines.

    Parameters
    ----------
    inventory : DataFrame
        Valid declared lines (:data:`INVENTORY_COLUMNS`; validate first: an unknown code raises).
    times : array-like of datetime64
        Contiguous UTC period starts.
    methods : str or Mapping/Series mpan -> str
        ``"passive"``, ``"pecu"`` or ``"cms"`` per MPAN (or one for all).
    pecu : DataFrame, optional
        PECU array observations (:func:`pecu_validation`); none: PECU lines fall back to passive.
    cms : DataFrame, optional
        CMS events, columns ``CMS_COLUMNS``: per line (mpan, item_id) and night, the instants [UTC] at
        which the line's power level (fraction of its circuit watts, lit share x dimming) changes;
        the last event of a night has level 0. None: CMS lines fall back to passive.
    as_of : Timestamp, optional
        Only observations with ``available_at <= as_of``; default all.
    config : UmsConfig, optional
    mpans : array-like of str, optional
        Output rows (default: the inventory's MPANs, sorted).

    Returns
    -------
    EquivalentMeter
    """
    config = resolve_config(config)
    codes, regimes = config.codes, config.regimes
    times = pd.DatetimeIndex(np.asarray(times, dtype="datetime64[ns]"))
    if len(times) == 0 or (len(times) > 1 and (np.diff(times.to_numpy()) != np.timedelta64(30, "m")).any()):
        raise ValueError("equivalent_meter: times must be non-empty contiguous 30-minute UTC period starts")
    lines = inventory.reset_index(drop=True)
    line_mpan = lines["mpan"].astype(str).str.strip().to_numpy(dtype=str)
    mpans = np.asarray(sorted(set(line_mpan)) if mpans is None else mpans, dtype=str)
    cc = lines["charge_code"].astype(str).str.strip().to_numpy()
    sr = lines["switch_regime"].astype(str).str.strip().to_numpy()
    unknown = ~np.isin(cc, codes.index.to_numpy(dtype=str)) | ~np.isin(sr, regimes.index.to_numpy(dtype=str))
    if unknown.any():
        i = int(np.argmax(unknown))
        raise ValueError(f"equivalent_meter: inventory row {i} has charge code {cc[i]!r} / switch regime {sr[i]!r} "
                         "not in the tables; pass only lines that validate_inventory accepts")
    m_idx = positions(mpans, line_mpan)
    if (m_idx < 0).any():
        raise ValueError(f"equivalent_meter: inventory MPAN {line_mpan[m_idx < 0][0]} is not among mpans")
    kw = codes["circuit_watts"].reindex(cc).to_numpy(dtype=float) * pd.to_numeric(lines["quantity"]).to_numpy(
        dtype=float) / 1000.0
    kind = regimes["kind"].reindex(sr).to_numpy(dtype=str)
    control = codes["control"].reindex(cc).to_numpy(dtype=str)
    area = lines["gsp_group"].astype(str).str.strip().to_numpy(dtype=str)
    meth = _methods_of(methods, mpans)[m_idx] if len(lines) else np.zeros(0, dtype=str)
    clock = np.isin(kind, ("fixed", "continuous"))
    line_method = np.select([clock, (meth == "cms") & (control == "cms"), meth == "cms"], ["regime", "cms", "pecu"],
                            meth).astype(str)
    key = pd.Series(line_method, dtype=object) + "|" + np.where(clock, "", area) + "|" + sr
    key = key.where(line_method != "cms", "cms|" + pd.Series(np.arange(len(lines))).astype(str))
    g_of_line, group_keys = pd.factorize(key.to_numpy(dtype=str))
    n_g = len(group_keys)
    g_method = np.array([k.split("|")[0] for k in group_keys], dtype=object).astype(str)
    first_line = np.zeros(n_g, dtype=np.int64)
    first_line[g_of_line[::-1]] = np.arange(len(lines))[::-1]
    g_area, g_regime = area[first_line] if n_g else area, sr[first_line] if n_g else sr

    nights = sw.nights_of(times)
    n_n, n_t = len(nights), len(times)
    t0 = times[0]
    src = np.zeros((n_g, n_n), dtype=np.uint8)
    rsn = np.zeros((n_g, n_n), dtype=np.uint8)
    segs: list[tuple] = []
    used_areas = sorted(set(g_area[g_method != "regime"])) if n_g else []
    sun = SunTable(used_areas, nights) if used_areas else None
    night_rows = []

    # clock regimes
    for r in sorted(set(g_regime[g_method == "regime"])):  # a handful of regimes
        g = np.flatnonzero((g_method == "regime") & (g_regime == r))
        s, e = _clock_segments(regimes.loc[r], times)
        segs.append((np.repeat(g, s.size), np.tile(s, g.size), np.tile(e, g.size), 1.0))
        src[g] = _SRC["regime"]

    def passive_rows(groups: np.ndarray, night_mask: np.ndarray, r: str):
        """Passive segments for the (group, night) pairs where night_mask[group_row, night] is True."""
        gi, ni = np.nonzero(night_mask)
        if gi.size == 0:
            return
        a = sun.areas.get_indexer(g_area[groups[gi]])
        reg = regimes.loc[r]
        on = np.timedelta64(round(float(reg["passive_on_offset_min"]) * 60e9), "ns")
        off = np.timedelta64(round(float(reg["passive_off_offset_min"]) * 60e9), "ns")
        s, e, w, row = lit_segments(reg, nights[ni], sun.sunset[a, ni] + on, sun.sunrise[a, ni] - off)
        segs.append((groups[gi][row], s, e, w))

    # passive groups
    for r in sorted(set(g_regime[g_method == "passive"])):
        g = np.flatnonzero((g_method == "passive") & (g_regime == r))
        passive_rows(g, np.ones((g.size, n_n), dtype=bool), r)
        src[g] = _SRC["passive"]

    # PECU groups: primary, else secondary, else passive, per (area, photocell type, night)
    pecu_groups = np.flatnonzero(g_method == "pecu")
    if pecu_groups.size:
        ptype = regimes["photocell_type"].reindex(g_regime[pecu_groups]).to_numpy(dtype=str)
        choice, reason, cells = _pecu_choice(pecu, g_area[pecu_groups], ptype, nights, as_of, config, sun)
        for r in sorted(set(g_regime[pecu_groups])):
            sel = g_regime[pecu_groups] == r
            g = pecu_groups[sel]
            src[g], rsn[g] = choice[sel], reason[sel]
            passive_rows(g, choice[sel] == _SRC["passive_fallback"], r)
            if cells is not None and len(cells):
                gk = pd.Series(g, index=pd.Index(g_area[g]))
                mine = cells[(cells["photocell_type"] == regimes.loc[r, "photocell_type"]).to_numpy()
                             & cells["gsp_group"].isin(gk.index).to_numpy()]
                if len(mine):
                    s, e, w, row = lit_segments(regimes.loc[r], mine["night"].to_numpy(), mine["switch_on"].to_numpy(),
                                                 mine["switch_off"].to_numpy())
                    segs.append((gk.reindex(mine["gsp_group"].to_numpy()).to_numpy()[row], s, e,
                                 w * mine["weight"].to_numpy()[row]))
        night_rows.append(pd.DataFrame({
            "gsp_group": np.repeat(g_area[pecu_groups], n_n), "photocell_type": np.repeat(ptype, n_n),
            "switch_regime": np.repeat(g_regime[pecu_groups], n_n), "night": np.tile(nights, pecu_groups.size),
            "source": np.array(SOURCES)[choice.ravel()], "reason": reason.ravel()}))

    # CMS groups: one per line
    cms_groups = np.flatnonzero(g_method == "cms")
    if cms_groups.size:
        lrow = first_line[cms_groups]
        ok, seg = _cms_segments(cms, line_mpan[lrow], lines["item_id"].astype(str).str.strip().to_numpy()[lrow],
                                nights, as_of)
        src[cms_groups] = np.where(ok == 1, _SRC["cms"], _SRC["passive_fallback"])
        rsn[cms_groups] = np.select([ok == 0, ok == 2], [_MISSING_R, _INVALID_R], 0)
        if seg is not None:
            segs.append((cms_groups[seg[0]], seg[1], seg[2], seg[3]))
        for r in sorted(set(g_regime[cms_groups])):
            sel = g_regime[cms_groups] == r
            passive_rows(cms_groups[sel], ok[sel] != 1, r)
        night_rows.append(pd.DataFrame({
            "mpan": np.repeat(line_mpan[lrow], n_n),
            "item_id": np.repeat(lines["item_id"].astype(str).to_numpy()[lrow], n_n),
            "night": np.tile(nights, cms_groups.size), "source": np.array(SOURCES)[src[cms_groups].ravel()],
            "reason": rsn[cms_groups].ravel()}))

    if segs:
        group = np.concatenate([np.broadcast_to(np.asarray(p[0]), np.shape(p[1])) for p in segs])
        start = np.concatenate([np.asarray(p[1], dtype="datetime64[ns]") for p in segs])
        end = np.concatenate([np.asarray(p[2], dtype="datetime64[ns]") for p in segs])
        weight = np.concatenate([np.broadcast_to(np.asarray(p[3], dtype=float), np.shape(p[1])) for p in segs])
        minutes = sw.period_minutes(group, start, end, weight, n_g, t0, n_t)
    else:
        minutes = np.zeros((n_g, n_t))
    weights = np.zeros((mpans.size, n_g))
    np.add.at(weights, (m_idx, g_of_line), kw)
    # einsum's own loops, not BLAS: a BLAS product's rounding depends on how many threads it uses, so a
    # block settled on a one-thread dask worker would differ in the last bit from the same block
    # settled in a process with more (seen on the GB day's in-memory sample check)
    energy = np.einsum("mg,gt->mt", weights, minutes) / 60.0

    p_night = night_of_period(times, nights)
    combined = (src.astype(np.uint16) * 16 + rsn)[:, p_night]  # (group, time)
    worst = np.zeros((mpans.size, n_t), dtype=np.uint16)
    if len(lines):
        order = np.argsort(m_idx, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(m_idx[order]) != 0])
        worst[m_idx[order][starts]] = np.maximum.reduceat(combined[g_of_line[order]], starts, axis=0)
    has = np.zeros(mpans.size, dtype=bool)
    has[m_idx] = True
    nights_df = pd.concat(night_rows, ignore_index=True) if night_rows else pd.DataFrame()
    return EquivalentMeter(mpans=mpans, times=times, energy=energy, source=(worst // 16).astype(np.uint8),
                           reason=(worst % 16).astype(np.uint8), has_lines=has, nights=nights_df)


def _pecu_choice(pecu, areas, ptypes, nights, as_of, config, sun):
    """Source (and reason) per (group row, night), and the chosen cells with their weights."""
    n_r, n_n = len(areas), len(nights)
    choice = np.full((n_r, n_n), _SRC["passive_fallback"], dtype=np.uint8)
    reason = np.full((n_r, n_n), _MISSING_R, dtype=np.uint8)
    if pecu is None or len(pecu) == 0:
        return choice, reason, None
    status, valid = pecu_validation(pecu, nights, as_of, config, sun)
    st = status.assign(night=pd.DatetimeIndex(status["night"]))
    keys = pd.MultiIndex.from_arrays([np.repeat(areas, n_n), np.repeat(ptypes, n_n), np.tile(nights, n_r)])
    ok = {}
    fail = {}
    for role in ("primary", "secondary"):  # the two array roles
        sub = st[st["role"] == role].set_index(["gsp_group", "photocell_type", "night"])
        sub = sub[~sub.index.duplicated()]
        s = sub["status"].reindex(keys)
        ok[role] = (s == "ok").to_numpy(dtype=bool).reshape(n_r, n_n)
        fail[role] = np.where(s.isna().to_numpy(), _MISSING_R, _INVALID_R).reshape(n_r, n_n)
    choice = np.select([ok["primary"], ok["secondary"]], [_SRC["pecu_primary"], _SRC["pecu_secondary"]],
                       _SRC["passive_fallback"]).astype(np.uint8)
    reason = np.where(ok["primary"], 0, fail["primary"]).astype(np.uint8)
    # the chosen array of each (area, type, night): cells of that array-night that are valid
    chosen = pd.DataFrame({"gsp_group": np.repeat(areas, n_n), "photocell_type": np.repeat(ptypes, n_n),
                           "night": np.tile(nights, n_r), "role": np.select(
                               [choice.ravel() == _SRC["pecu_primary"], choice.ravel() == _SRC["pecu_secondary"]],
                               ["primary", "secondary"], "")})
    chosen = chosen[chosen["role"] != ""].drop_duplicates()
    rows = pecu[valid].assign(night=lambda d: pd.DatetimeIndex(d["night"]))
    cells = rows.merge(chosen, on=["gsp_group", "photocell_type", "night", "role"], how="inner")
    n_valid = cells.groupby(["array_id", "photocell_type", "night"])["photocell"].transform("size")
    cells = cells.assign(weight=1.0 / n_valid.to_numpy(dtype=float))
    return choice, reason, cells


def _cms_segments(cms, mpans, items, nights, as_of):
    """Per CMS line and night: 1 complete event log, 0 none, 2 invalid; and the lit segments of complete logs."""
    n_l, n_n = len(mpans), len(nights)
    ok = np.zeros((n_l, n_n), dtype=np.uint8)
    if cms is None or len(cms) == 0:
        return ok, None
    _check_columns(cms, CMS_COLUMNS, "CMS events")
    ev = cms
    if as_of is not None:
        av = ev["available_at"].to_numpy(dtype="datetime64[ns]")
        ev = ev[~np.isnat(av) & (av <= np.datetime64(pd.Timestamp(as_of).as_unit("ns").to_datetime64()))]
    line_key = pd.Index(pd.Series(mpans).astype(str) + "|" + pd.Series(items).astype(str))
    l_idx = line_key.get_indexer(ev["mpan"].astype(str) + "|" + ev["item_id"].astype(str))
    n_idx = nights.get_indexer(pd.DatetimeIndex(ev["night"]))
    keep = (l_idx >= 0) & (n_idx >= 0)
    if not keep.any():
        return ok, None
    l_idx, n_idx = l_idx[keep], n_idx[keep]
    t = ev["time"].to_numpy(dtype="datetime64[ns]")[keep]
    level = ev["level"].to_numpy(dtype=float)[keep]
    order = np.lexsort((t, n_idx, l_idx))
    l_idx, n_idx, t, level = l_idx[order], n_idx[order], t[order], level[order]
    ln = l_idx * n_n + n_idx
    last = np.r_[ln[1:] != ln[:-1], True]
    bad_level = ~np.isfinite(level) | (level < 0) | (level > 1) | np.isnat(t)
    counts = np.bincount(ln, minlength=n_l * n_n)
    invalid = np.bincount(ln, weights=bad_level.astype(float), minlength=n_l * n_n) > 0
    end_not_off = np.zeros(n_l * n_n, dtype=bool)
    end_not_off[ln[last]] = level[last] != 0
    # a night without darkness has a single "off" event
    status = np.where(counts == 0, 0, np.where(invalid | end_not_off, 2, 1)).astype(np.uint8)
    ok = status.reshape(n_l, n_n)
    use = (ok.ravel()[ln] == 1) & ~last
    nxt = np.r_[t[1:], t[-1:]]
    return ok, (l_idx[use], t[use], nxt[use], level[use])
