"""Reference tables of the GB settlement model, loaded from the package data in ``tomlib/reference/data``.

Every table is a CSV with a provenance header (see ``data/README.md``). Loaders validate the whole file,
raise ``ValueError`` naming the file, line and field on bad content, cache the parsed table and return a
copy, so callers may modify what they get. Tables marked [INF] in their file header are illustrative
choices of ours (mhhs-domain.md), kept as data so that a real file can replace them: loaders of those
tables take an optional ``path`` to such a replacement of the same format.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from tomlib.reference._io import Col, read_table

__all__ = [
    "DATA_DIR",
    "PROFILE_DAY_TYPES",
    "PROFILE_SEASONS",
    "RUNS",
    "VOLTAGE_LEVELS",
    "band_line_loss_factors",
    "consumption_component_classes",
    "gsp_correction_scaling_weights",
    "gsp_groups",
    "line_loss_factor_bands",
    "line_loss_factor_classes",
    "line_loss_season_halves",
    "line_loss_time_bands",
    "llf_season_half",
    "llf_time_band",
    "market_segments",
    "profile_class_shapes",
    "run_as_of",
    "run_timetable",
    "timetable_presets",
]

DATA_DIR = Path(__file__).with_name("data")

#: Settlement run ids in the order they happen (mhhs-domain.md F-14).
RUNS = ("II", "SF", "R1", "R2", "R3", "RF", "DF")
VOLTAGE_LEVELS = ("LV", "HV", "EHV")
#: Profiling seasons and day types of the 1997 load profiles (mhhs-domain.md F-28), in dimension order.
PROFILE_SEASONS = ("winter", "spring", "summer", "high_summer", "autumn")
PROFILE_DAY_TYPES = ("weekday", "saturday", "sunday")

_REGIONS = ("england_wales", "scotland")
_SEGMENTS = ("S", "A", "U")
_MQ = ("AI", "AE")


def _path(path: str | Path | None, default: str) -> Path:
    return DATA_DIR / default if path is None else Path(path)


# --------------------------------------------------------------------------------------------- GSP groups

_GSP_COLUMNS = (
    Col("gsp_group", pattern=r"_[A-HJ-NP]"),
    Col("name"),
    Col("distributor_id", "int", lo=10, hi=99),
    Col("distributor_mpid", pattern=r"[A-Z]{4}"),
    Col("distributor_name"),
    Col("region", choices=_REGIONS),
    Col("representative_place"),
    # GB bounding box [deg]: catches swapped or sign-flipped coordinates.
    Col("latitude", "float", lo=49.8, hi=60.9),
    Col("longitude", "float", lo=-8.7, hi=1.8),
)


@lru_cache(maxsize=16)
def _gsp_groups() -> pd.DataFrame:
    rows = read_table(DATA_DIR / "gsp_groups.csv", _GSP_COLUMNS, key=("gsp_group",))
    seen: dict[int, int] = {}
    for i, d in enumerate(rows.values["distributor_id"]):
        if d in seen:
            raise rows.fail(i, "distributor_id", f"distributor id {d} already used on line {rows.lines[seen[d]]}")
        seen[d] = i
    df = rows.frame("gsp_group")
    return df[["name", "distributor_id", "distributor_mpid", "latitude", "longitude", "region",
               "distributor_name", "representative_place"]]


def gsp_groups() -> pd.DataFrame:
    """The 14 GSP groups with their distributor and a representative point.

    Returns
    -------
    DataFrame
        Index ``gsp_group`` ("_A".."_P", no "_I"/"_O"). Columns ``name``; ``distributor_id`` (int, the
        2-digit MPAN prefix, 10..23); ``distributor_mpid`` (e.g. "LOND"); ``latitude``, ``longitude``
        (illustrative representative point [deg], [INF]); ``region`` ("england_wales" | "scotland");
        ``distributor_name``; ``representative_place``.
    """
    return _gsp_groups().copy()


# ------------------------------------------------------------------------------------------ market segments

@lru_cache(maxsize=16)
def _market_segments() -> pd.DataFrame:
    cols = (Col("market_segment", choices=_SEGMENTS), Col("description"), Col("data_service"))
    return read_table(DATA_DIR / "market_segments.csv", cols, key=("market_segment",)).frame("market_segment")


def market_segments() -> pd.DataFrame:
    """MHHS market segments.

    Returns
    -------
    DataFrame
        Index ``market_segment`` ("S", "A", "U"); columns ``description``, ``data_service``.
    """
    return _market_segments().copy()


# ----------------------------------------------------------------------------- consumption component classes

_CCC_COLUMNS = (
    Col("ccc", pattern=r"[A-Za-z0-9_-]{1,16}"),
    Col("measurement_quantity", choices=_MQ),
    Col("market_segment", choices=_SEGMENTS),
    Col("data_quality", choices=("actual", "estimated")),
    Col("component", choices=("consumption", "losses")),
    Col("description"),
)


@lru_cache(maxsize=16)
def _ccc(path: Path) -> pd.DataFrame:
    rows = read_table(path, _CCC_COLUMNS, key=("ccc",))
    attrs = ("measurement_quantity", "market_segment", "data_quality", "component")
    seen: dict[tuple, int] = {}
    for i in range(len(rows.lines)):
        k = tuple(rows.values[a][i] for a in attrs)
        if k in seen:
            raise rows.fail(i, ",".join(attrs), f"attributes {k} already used by ccc on line {rows.lines[seen[k]]}")
        seen[k] = i
    return rows.frame("ccc")


def consumption_component_classes(path: str | Path | None = None) -> pd.DataFrame:
    """Consumption Component Classes keyed by their attributes ([INF] illustrative MHHS-style list).

    Parameters
    ----------
    path : str or Path, optional
        A replacement table of the same format (e.g. built from the real MDD); default the package table.

    Returns
    -------
    DataFrame
        Index ``ccc`` (str id); columns ``measurement_quantity`` (AI/AE), ``market_segment`` (S/A/U),
        ``data_quality`` ("actual"/"estimated"), ``component`` ("consumption"/"losses"), ``description``.
        Each attribute combination occurs at most once.
    """
    return _ccc(_path(path, "consumption_component_classes.csv")).copy()


@lru_cache(maxsize=16)
def _weights(path: Path, ccc_path: Path) -> pd.Series:
    rows = read_table(path, (Col("ccc"), Col("weight", "float", lo=0.0)), key=("ccc",))
    known = _ccc(ccc_path).index
    for i, c in enumerate(rows.values["ccc"]):
        if c not in known:
            raise rows.fail(i, "ccc", f"unknown ccc {c!r}; expected one of {', '.join(known)} "
                                      f"(from {ccc_path.name})")
    missing = [c for c in known if c not in set(rows.values["ccc"])]
    if missing:
        # A CCC without a weight would silently get no correction.
        raise ValueError(f"{path.name}: no weight for ccc {', '.join(missing)} (listed in {ccc_path.name})")
    s = rows.frame("ccc")["weight"]
    s.attrs["units"] = "-"
    return s


def gsp_correction_scaling_weights(
    ccc: str | Iterable[str] | None = None,
    path: str | Path | None = None,
    ccc_path: str | Path | None = None,
) -> pd.Series:
    """GSP Group Correction Scaling Weights per CCC ([INF] illustrative; mhhs-domain.md §2.11).

    Parameters
    ----------
    ccc : str or iterable of str, optional
        Return only these CCC ids (in this order); default all.
    path : str or Path, optional
        Replacement weights table (columns ``ccc,weight``); default the package table.
    ccc_path : str or Path, optional
        CCC table the weights must cover exactly; default the package table.

    Returns
    -------
    Series
        Weight [-] (>= 0; 0 = not corrected) indexed by ``ccc``, name ``weight``.

    Raises
    ------
    ValueError
        For an unknown CCC id, naming it and the known ids.
    """
    w = _weights(_path(path, "gsp_correction_scaling_weights.csv"),
                 _path(ccc_path, "consumption_component_classes.csv"))
    if ccc is None:
        return w.copy()
    wanted = [ccc] if isinstance(ccc, str) else list(ccc)
    unknown = [c for c in wanted if c not in w.index]
    if unknown:
        raise ValueError(f"unknown ccc {', '.join(map(str, unknown))}; expected one of {', '.join(w.index)}")
    out = w.loc[wanted].copy()
    out.attrs["units"] = "-"
    return out


# --------------------------------------------------------------------------------------- run timetables

_TIMETABLE_COLUMNS = (
    Col("preset", pattern=r"[a-z][a-z0-9_]*"),
    Col("run", choices=RUNS),
    Col("working_days", "int", lo=0, hi=1000, optional=True),
    Col("months", "int", lo=1, hi=120, optional=True),
)


@lru_cache(maxsize=16)
def _timetables(path: Path) -> pd.DataFrame:
    rows = read_table(path, _TIMETABLE_COLUMNS, key=("preset", "run"))
    last: dict[str, tuple[int, int]] = {}
    for i in range(len(rows.lines)):
        wd, months = rows.values["working_days"][i], rows.values["months"][i]
        if (wd is None) == (months is None):
            raise rows.fail(i, "working_days,months", "expected exactly one of working_days or months")
        preset, run = rows.values["preset"][i], rows.values["run"][i]
        order = RUNS.index(run)
        prev = last.get(preset)
        if prev is not None and order < prev[0]:
            raise rows.fail(i, "run", f"run {run} listed after {RUNS[prev[0]]}; expected order {', '.join(RUNS)}")
        if wd is not None:
            if prev is not None and wd <= prev[1]:
                raise rows.fail(i, "working_days", f"expected more than {prev[1]} (the previous run's offset)")
            last[preset] = (order, wd)
        else:
            last[preset] = (order, prev[1] if prev else -1)
    return rows.frame(["preset", "run"])


def timetable_presets(path: str | Path | None = None) -> tuple[str, ...]:
    """Names of the settlement timetable presets (e.g. ``("legacy", "mhhs")``)."""
    return tuple(dict.fromkeys(_timetables(_path(path, "settlement_timetables.csv")).index.get_level_values(0)))


def run_timetable(preset: str = "mhhs", path: str | Path | None = None) -> pd.DataFrame:
    """Settlement run timetable of a preset (mhhs-domain.md F-20, F-21; configurable data, Q7).

    Parameters
    ----------
    preset : str
        ``"mhhs"`` (post-M16: II +4, SF +7, R1 +30, RF +84 working days, DF 20 months) or ``"legacy"``
        (II +5, SF +16, R1 +39, R2 +84, R3 +154, RF +292 working days, DF 28 months).
    path : str or Path, optional
        Replacement timetable table; default the package table.

    Returns
    -------
    DataFrame
        Index ``run`` (the preset's runs in the order II, SF, R1, R2, R3, RF, DF); columns
        ``working_days`` [working days after the settlement day] and ``months`` [calendar months], nullable
        Int64, exactly one of them set per run.
    """
    table = _timetables(_path(path, "settlement_timetables.csv"))
    presets = tuple(dict.fromkeys(table.index.get_level_values(0)))
    if preset not in presets:
        raise ValueError(f"unknown timetable preset {preset!r}; expected one of {', '.join(presets)}")
    return table.loc[preset].copy()


def run_as_of(
    settlement_dates,
    run: str,
    preset: str = "mhhs",
    region: str = "england_wales",
    path: str | Path | None = None,
) -> pd.DatetimeIndex:
    """Date on which a settlement run is performed for each settlement date.

    Parameters
    ----------
    settlement_dates : date-like or array-like of date-like
        Settlement days (tz-naive midnight, the local UK date).
    run : str
        Run id, one of the preset's runs (see :func:`run_timetable`).
    preset : str
        Timetable preset.
    region : str
        Bank-holiday region for working days ("england_wales" | "scotland").
    path : str or Path, optional
        Replacement timetable table.

    Returns
    -------
    DatetimeIndex
        As-of date per settlement date (tz-naive midnight), name ``as_of``: the settlement day plus the
        run's working days (``tomlib.calendar.add_working_days``) or calendar months (``pd.DateOffset``).
    """
    table = run_timetable(preset, path)
    if run not in table.index:
        raise ValueError(f"unknown run {run!r} for timetable preset {preset!r}; expected one of "
                         f"{', '.join(table.index)}")
    dates = pd.DatetimeIndex(np.atleast_1d(np.asarray(settlement_dates, dtype=object)))
    if dates.tz is not None:
        raise ValueError(f"settlement_dates: expected tz-naive local dates, got timezone {dates.tz}")
    dates = dates.as_unit("ns")
    if dates.hasnans:
        raise ValueError(f"settlement_dates: missing date at index {int(np.flatnonzero(dates.isna())[0])}")
    off_midnight = dates != dates.normalize()
    if off_midnight.any():
        i = int(np.flatnonzero(off_midnight)[0])
        raise ValueError(f"settlement_dates: index {i} is {dates[i]}; expected a midnight date (settlement day)")
    wd, months = table.loc[run, "working_days"], table.loc[run, "months"]
    if pd.notna(wd):
        from tomlib import calendar  # deferred: calendar is a sibling module that may import reference data

        out = pd.DatetimeIndex(calendar.add_working_days(dates, int(wd), region=region))
    else:
        if region not in _REGIONS:
            raise ValueError(f"unknown region {region!r}; expected one of {', '.join(_REGIONS)}")
        out = dates + pd.DateOffset(months=int(months))
    return out.rename("as_of")


# ------------------------------------------------------------------------------------------ line losses

_LLFC_COLUMNS = (
    Col("llfc", pattern=r"[0-9A-Z]{3}"),
    Col("distributor_id", "int", lo=10, hi=99),
    Col("distributor_mpid", pattern=r"[A-Z]{4}"),
    Col("description"),
    Col("voltage_level", choices=VOLTAGE_LEVELS),
    Col("measurement_quantity", choices=_MQ),
    Col("segment_use", pattern=r"[a-z_]+"),
    Col("market_segment", choices=_SEGMENTS),
    Col("ms_specific_indicator", choices=("A", "B", "C", "D")),
    Col("effective_from", pattern=r"\d{4}-\d{2}-\d{2}"),
)


@lru_cache(maxsize=16)
def _llfcs(path: Path) -> pd.DataFrame:
    # The key is llfc alone: real LLFC ids are only unique per distributor, so the extract picks ids that are
    # also unique across distributors (data/README.md) and llfc can be a dimension on its own.
    rows = read_table(path, _LLFC_COLUMNS, key=("llfc",))
    gsp = _gsp_groups()
    by_id = dict(zip(gsp["distributor_id"], zip(gsp.index, gsp["distributor_mpid"])))
    for i, (d, mpid) in enumerate(zip(rows.values["distributor_id"], rows.values["distributor_mpid"])):
        if d not in by_id:
            raise rows.fail(i, "distributor_id", f"unknown distributor id {d}; expected one of "
                                                 f"{', '.join(map(str, sorted(by_id)))}")
        if by_id[d][1] != mpid:
            raise rows.fail(i, "distributor_mpid", f"expected {by_id[d][1]} for distributor {d}, got {mpid!r}")
    df = rows.frame("llfc")
    df.insert(1, "gsp_group", pd.array([by_id[d][0] for d in df["distributor_id"]], dtype="str"))
    return df


def line_loss_factor_classes(path: str | Path | None = None) -> pd.DataFrame:
    """A selection of real LLFC definitions per distributor (Elexon MDD, effective 2019-04-01).

    Parameters
    ----------
    path : str or Path, optional
        Replacement table of the same format; default the package extract.

    Returns
    -------
    DataFrame
        Index ``llfc`` (3-char id, unique in this table); columns ``distributor_id``, ``gsp_group``,
        ``distributor_mpid``, ``description`` (MDD text), ``voltage_level`` ("LV"|"HV"|"EHV"),
        ``measurement_quantity`` (AI/AE), ``segment_use`` ("smart_domestic", "smart_non_domestic",
        "smart_export", "advanced_lv", "advanced_hv", "advanced_ehv", "unmetered"), ``market_segment``
        (S/A/U), ``ms_specific_indicator`` (MDD), ``effective_from`` (ISO date text).
        The classification columns are ours ([INF]), from the description.
    """
    return _llfcs(_path(path, "line_loss_factor_classes.csv")).copy()


def _hhmm_to_index(text: str) -> int:
    hours, minutes = int(text[:2]), int(text[3:])
    return hours * 2 + minutes // 30


@lru_cache(maxsize=16)
def _time_bands(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    hhmm = r"([01]\d|2[0-3]):(00|30)|24:00"
    rows = read_table(path, (Col("time_band", pattern=r"[a-z_]+"), Col("start_local", pattern=hhmm),
                             Col("end_local", pattern=hhmm)))
    per_index = np.full(48, "", dtype=object)
    for i in range(len(rows.lines)):
        start = _hhmm_to_index(rows.values["start_local"][i])
        end = _hhmm_to_index(rows.values["end_local"][i])
        if end <= start:
            raise rows.fail(i, "end_local", f"expected later than start_local {rows.values['start_local'][i]}")
        clash = [j for j in range(start, end) if per_index[j]]
        if clash:
            raise rows.fail(i, "start_local", f"overlaps band {per_index[clash[0]]!r} at half hour {clash[0]}")
        per_index[start:end] = rows.values["time_band"][i]
    gaps = np.flatnonzero(per_index == "")
    if gaps.size:
        j = int(gaps[0])
        raise ValueError(f"{path.name}: local half hour {j // 2:02d}:{30 * (j % 2):02d} is in no time band; "
                         "expected the bands to cover 00:00-24:00")
    return rows.frame(), per_index.astype(str)


@lru_cache(maxsize=16)
def _season_halves(path: Path) -> pd.Series:
    rows = read_table(path, (Col("month", "int", lo=1, hi=12), Col("season_half", pattern=r"[a-z_]+")),
                      key=("month",))
    missing = sorted(set(range(1, 13)) - set(rows.values["month"]))
    if missing:
        raise ValueError(f"{path.name}: no season_half for month {', '.join(map(str, missing))}; "
                         "expected every month 1..12")
    return rows.frame("month")["season_half"].sort_index()


def line_loss_time_bands(path: str | Path | None = None) -> pd.DataFrame:
    """Time bands of :func:`line_loss_factor_bands` ([INF]): ``time_band``, ``start_local``, ``end_local``
    (local clock time, [start, end))."""
    return _time_bands(_path(path, "line_loss_time_bands.csv"))[0].copy()


def line_loss_season_halves(path: str | Path | None = None) -> pd.Series:
    """Season half (e.g. "winter"/"summer") per calendar month 1..12 ([INF]), indexed by ``month``."""
    return _season_halves(_path(path, "line_loss_season_halves.csv")).copy()


@lru_cache(maxsize=16)
def _llf_bands(path: Path, time_path: Path, season_path: Path) -> pd.DataFrame:
    rows = read_table(path, (Col("voltage_level", choices=VOLTAGE_LEVELS), Col("season_half"),
                             Col("time_band"), Col("llf", "float", lo=0.8, hi=1.5)),
                      key=("voltage_level", "season_half", "time_band"))
    bands = list(dict.fromkeys(_time_bands(time_path)[1]))
    halves = list(dict.fromkeys(_season_halves(season_path)))
    for i in range(len(rows.lines)):
        if rows.values["time_band"][i] not in bands:
            raise rows.fail(i, "time_band", f"expected one of {', '.join(bands)} (from {time_path.name})")
        if rows.values["season_half"][i] not in halves:
            raise rows.fail(i, "season_half", f"expected one of {', '.join(halves)} (from {season_path.name})")
    have = set(zip(rows.values["voltage_level"], rows.values["season_half"], rows.values["time_band"]))
    # Q8: a missing LLF must not silently become 1.0, so the grid has to be complete.
    for v in VOLTAGE_LEVELS:
        for s in halves:
            for t in bands:
                if (v, s, t) not in have:
                    raise ValueError(f"{path.name}: no llf for voltage_level {v}, season_half {s}, time_band {t}")
    df = rows.frame(["voltage_level", "season_half", "time_band"])
    df.attrs["units"] = "-"
    return df


def line_loss_factor_bands(path: str | Path | None = None) -> pd.DataFrame:
    """[INF] Illustrative Line Loss Factors by voltage level, season half and time band.

    Not real LLF values (those are per distributor, LLFC and settlement period); realistic magnitudes
    (LV ~1.06-1.10, HV ~1.02-1.05, EHV ~1.01). Bands: :func:`line_loss_time_bands` (night 00:00-07:00,
    peak 16:00-19:00 local, day otherwise) and :func:`line_loss_season_halves` (winter Oct-Mar).

    Parameters
    ----------
    path : str or Path, optional
        Replacement table (columns ``voltage_level,season_half,time_band,llf``).

    Returns
    -------
    DataFrame
        MultiIndex (``voltage_level``, ``season_half``, ``time_band``), column ``llf`` [-]; complete grid.
    """
    return _llf_bands(_path(path, "line_loss_factor_bands.csv"), DATA_DIR / "line_loss_time_bands.csv",
                      DATA_DIR / "line_loss_season_halves.csv").copy()


def _int_array(values, name: str, lo: int, hi: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"{name}: expected integers in [{lo}, {hi}], got dtype {arr.dtype}")
    bad = (arr < lo) | (arr > hi)
    if np.any(bad):
        i = np.unravel_index(np.flatnonzero(bad)[0], arr.shape)
        raise ValueError(f"{name}: value {arr[i]} at index {tuple(map(int, i))} outside [{lo}, {hi}]")
    return arr


def llf_time_band(local_index) -> np.ndarray:
    """Line-loss time band of each local half hour.

    Parameters
    ----------
    local_index : array-like of int
        Local wall-clock half-hour index 0..47 (``tomlib.calendar.local_clock_index``).

    Returns
    -------
    ndarray of str
        Band name ("night", "day", "peak"), same shape.
    """
    per_index = _time_bands(DATA_DIR / "line_loss_time_bands.csv")[1]
    return per_index[_int_array(local_index, "local_index", 0, 47)]


def llf_season_half(months) -> np.ndarray:
    """Line-loss season half ("winter"/"summer") of each calendar month 1..12 (same shape)."""
    table = _season_halves(DATA_DIR / "line_loss_season_halves.csv")
    lookup = np.array([""] + list(table.to_numpy()), dtype=object).astype(str)
    return lookup[_int_array(months, "months", 1, 12)]


def band_line_loss_factors(voltage_level, local_index, months) -> np.ndarray:
    """Illustrative LLF [-] from :func:`line_loss_factor_bands`, vectorised and broadcast.

    Parameters
    ----------
    voltage_level : str or array-like of str
        "LV", "HV" or "EHV" (e.g. from ``line_loss_factor_classes()["voltage_level"]``).
    local_index : array-like of int
        Local half-hour index 0..47 of each settlement period.
    months : array-like of int
        Calendar month 1..12 of the settlement date.

    Returns
    -------
    ndarray of float
        LLF [-], the broadcast shape of the three inputs.
    """
    table = line_loss_factor_bands()["llf"]
    volts = np.asarray(voltage_level).astype(str)
    unknown = ~np.isin(volts, VOLTAGE_LEVELS)
    if np.any(unknown):
        raise ValueError(f"voltage_level: {str(volts[unknown].flat[0])!r} is not one of {', '.join(VOLTAGE_LEVELS)}")
    bands = llf_time_band(local_index)
    halves = llf_season_half(months)
    volts, bands, halves = np.broadcast_arrays(volts, bands, halves)
    # Look up through integer codes into a dense (voltage, season half, band) cube: the grid is complete.
    v_cats = list(VOLTAGE_LEVELS)
    s_cats = list(dict.fromkeys(table.index.get_level_values("season_half")))
    t_cats = list(dict.fromkeys(table.index.get_level_values("time_band")))
    cube = np.empty((len(v_cats), len(s_cats), len(t_cats)))
    for (v, s, t), value in table.items():
        cube[v_cats.index(v), s_cats.index(s), t_cats.index(t)] = value
    codes = [pd.Categorical(a.ravel(), categories=c).codes for a, c in
             ((volts, v_cats), (halves, s_cats), (bands, t_cats))]
    return cube[codes[0], codes[1], codes[2]].reshape(volts.shape)


# ----------------------------------------------------------------------------------------- load profiles

_PROFILE_VALUE_COLUMNS = tuple(f"{s}_{d}" for s in PROFILE_SEASONS for d in PROFILE_DAY_TYPES)


@lru_cache(maxsize=16)
def _profile_shapes(path: Path) -> xr.DataArray:
    cols = (Col("profile_class", "int", lo=1, hi=8), Col("settlement_period", "int", lo=1, hi=48),
            *(Col(c, "float", lo=0.0, hi=1000.0) for c in _PROFILE_VALUE_COLUMNS))
    rows = read_table(path, cols, key=("profile_class", "settlement_period"))
    if len(rows.lines) != 8 * 48:
        raise ValueError(f"{path.name}: expected {8 * 48} rows (8 profile classes x 48 periods), "
                         f"got {len(rows.lines)}")
    df = rows.frame().sort_values(["profile_class", "settlement_period"])
    values = df[list(_PROFILE_VALUE_COLUMNS)].to_numpy(np.float64)
    values = values.reshape(8, 48, len(PROFILE_SEASONS), len(PROFILE_DAY_TYPES)).transpose(0, 2, 3, 1)
    return xr.DataArray(
        values,
        dims=("profile_class", "season", "day_type", "settlement_period"),
        coords={
            "profile_class": np.arange(1, 9),
            "season": list(PROFILE_SEASONS),
            "day_type": list(PROFILE_DAY_TYPES),
            "settlement_period": np.arange(1, 49),
        },
        name="gad",
        attrs={
            "units": "kW",
            "long_name": "Group Average Demand per customer",
            "settlement_period": "local half-hour index + 1 (period 1 = 00:00-00:30 local clock time)",
            "source": "Elexon/Electricity Association 1997 load profiles (UKERC EDC), see data/README.md",
        },
    )


def profile_class_shapes(path: str | Path | None = None) -> xr.DataArray:
    """The 1997 Profile Class 1-8 load shapes as Group Average Demand.

    Parameters
    ----------
    path : str or Path, optional
        Replacement table of the same format; default the package copy.

    Returns
    -------
    DataArray
        GAD [kW] per customer, dims (``profile_class`` 1..8, ``season`` [winter, spring, summer,
        high_summer, autumn], ``day_type`` [weekday, saturday, sunday], ``settlement_period`` 1..48 = local
        half-hour index + 1). Energy per half hour [kWh] = GAD x 0.5 h.
    """
    return _profile_shapes(_path(path, "profile_class_shapes.csv")).copy(deep=True)
