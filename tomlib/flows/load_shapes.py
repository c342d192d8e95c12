"""IF022 load-shape period and IF023 load-shape totals records as JSON, in Elexon's field names.

The records are those of Elexon's Insights API (``/lss/load-shape-period`` = IF022,
``/lss/load-shape-totals`` = IF023; F-15; ``/work/shared/data/elexon-lss-api``), every field of the
schema in its order (:data:`IF022_FIELDS`, :data:`IF023_FIELDS`). A file is the API's non-stream
response, ``{"data": [records], "metadata": {"datasets": ["IF022"]}}``; the reader also takes the
``/stream`` form, a bare JSON array.

Field conventions ([INF] where the spec gives no meaning, see the source README):

- ``settlementDate`` ``YYYY-MM-DD``; date-times ISO 8601 UTC with ``Z`` (``2026-03-29T01:00:00Z``);
  ``settlementPeriodStartDateTime`` = the period's UTC start, ``...EndDateTime`` = start +
  ``settlementPeriodDuration`` minutes (30);
- category fields: ``gspGroupId`` (DI-039), ``connectionTypeIndicator`` (DI-015),
  ``marketSegmentIndicator`` (DI-050), ``domesticPremiseIndicator`` ``T``/``F`` (DI-031),
  ``measurementQuantityId`` (DI-052); ``null`` = the key is aggregated in the category definition;
- ``runNumber``: :data:`tomlib.services.load_shaping.RUN_NUMBERS` (II 1, SF 2, R1 3, ... DF 7);
  ``eventCode``: the DIP event code (``LSSPeriodData`` / ``LSSTotalsData``);
- ``loadShapePeriodValue`` and totals [kWh per MPAN], full double precision (DIP carries decimal(9,3));
  ``defaultLoadShapeFlag`` DI-154 ``A``/``D``/``E``/``B``.

IF023 carries no coverage: rolling totals over a window shorter than 7 days / a year are written as
computed (over the days available), and the coverage stays in the totals Dataset
(``rolling_7day_days``, ``rolling_annual_days``).

The reader is strict: a missing or unexpected field, a wrong type, a value outside its code list (an
unknown GSP group), a negative or non-finite value, a settlement date outside
:data:`tomlib.flows.DATE_RANGE`, a settlement period that does not exist on its date, a start/end time
that disagrees with date and period, a period duration other than 30 minutes, a duplicate record, or a
file that is not (complete) JSON raises :class:`LoadShapeError` (a :class:`tomlib.flows.FlowError`, a
``ValueError``) naming the file, the record index and the field (JSON syntax errors: line and column).
Writers replace their target atomically.

A file holds one run's records (categories x periods: thousands to tens of thousands), so it is parsed
whole by :mod:`json`; the half-hourly and CSV readers stream instead.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from tomlib import calendar as cal
from tomlib._io import atomic_write_text
from tomlib.flows._common import DATE_RANGE, FlowError

__all__ = [
    "CATEGORY_FIELDS",
    "IF022_FIELDS",
    "IF023_FIELDS",
    "LoadShapeError",
    "if022_records",
    "if023_records",
    "parse_if022",
    "parse_if023",
    "read_if022",
    "read_if023",
    "shapes_from_if022",
    "write_if022",
    "write_if023",
]

#: Category fields (IF022 and IF023) -> the tomlib key behind them.
CATEGORY_FIELDS = {
    "gspGroupId": "gsp_group",
    "connectionTypeIndicator": "connection_type",
    "marketSegmentIndicator": "market_segment",
    "domesticPremiseIndicator": "domestic",
    "measurementQuantityId": "measurement_quantity",
}
_CODES = {
    "gspGroupId": ("_A", "_B", "_C", "_D", "_E", "_F", "_G", "_H", "_J", "_K", "_L", "_M", "_N", "_P"),
    "connectionTypeIndicator": ("W", "L", "H", "E", "U"),
    "marketSegmentIndicator": ("S", "A", "U"),
    "domesticPremiseIndicator": ("T", "F"),
    "measurementQuantityId": ("AI", "AE", "RI", "RE"),
    "defaultLoadShapeFlag": ("A", "D", "E", "B"),
}
_HEAD = ("sourceFileName", "sourceFileDatetime", "settlementDate")
_RUN = ("runNumber", "eventCode", "settlementPeriodDuration")
#: IF022 LoadShapePeriodData fields, in the schema's order.
IF022_FIELDS = (*_HEAD, "settlementPeriodStartDateTime", "settlementPeriodEndDateTime", "settlementPeriod",
                *CATEGORY_FIELDS, *_RUN, "loadShapePeriodValue", "defaultLoadShapeFlag")
#: IF023 LoadShapeTotalsData fields, in the schema's order.
IF023_FIELDS = (*_HEAD, *CATEGORY_FIELDS, *_RUN, "loadShapeDayTotal", "loadShapeDayPeakTotal",
                "loadShapeDayOffPeakTotal", "loadShape7DayRollingTotal", "loadShape7DayRollingPeakTotal",
                "loadShape7DayRollingOffPeakTotal", "loadShapeRollingAnnualTotal")
#: Totals Dataset variable behind each IF023 total field.
_TOTALS = {
    "loadShapeDayTotal": "day_total", "loadShapeDayPeakTotal": "day_peak_total",
    "loadShapeDayOffPeakTotal": "day_off_peak_total", "loadShape7DayRollingTotal": "rolling_7day_total",
    "loadShape7DayRollingPeakTotal": "rolling_7day_peak_total",
    "loadShape7DayRollingOffPeakTotal": "rolling_7day_off_peak_total",
    "loadShapeRollingAnnualTotal": "rolling_annual_total",
}
_NULLABLE = {"sourceFileName", *CATEGORY_FIELDS, "eventCode", "defaultLoadShapeFlag", "loadShapeDayPeakTotal",
             "loadShapeDayOffPeakTotal", "loadShape7DayRollingPeakTotal", "loadShape7DayRollingOffPeakTotal"}
_EVENT = {"IF022": "LSSPeriodData", "IF023": "LSSTotalsData"}
_DURATION_MIN = 30
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")


class LoadShapeError(FlowError):
    """An IF022/IF023 file or record is not valid."""


# ------------------------------------------------------------------------------------------ records


def _utc_text(values) -> np.ndarray:
    return pd.DatetimeIndex(values).strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy(dtype=object)


def _category_columns(da: xr.DataArray | xr.Dataset, where: str) -> dict[str, np.ndarray]:
    """IF022 category fields per category (None where the key is aggregated)."""
    from tomlib.services.load_shaping import AGGREGATED, load_categories

    names = load_categories().names
    extra = [c for c in da.coords if da[c].dims == ("category",) and c not in names and c not in
             ("category", "category_mpans")]
    split = [c for c in extra if (np.asarray(da[c].values).astype(str) != AGGREGATED).any()]
    if split:
        raise ValueError(f"{where}: category key(s) {split} have no IF022/IF023 field; a refined category "
                         "definition cannot be written as IF022/IF023")
    out = {}
    for field, key in CATEGORY_FIELDS.items():
        if key not in da.coords:
            raise ValueError(f"{where}: the load shapes lack the category coordinate {key!r}")
        v = np.asarray(da[key].values).astype(str).astype(object)
        v[v == AGGREGATED] = None
        out[field] = v
    return out


def _run_number(obj, where: str) -> int:
    from tomlib.services.load_shaping import RUN_NUMBERS

    if "run_number" in obj.attrs:
        return int(obj.attrs["run_number"])
    run = obj.attrs.get("run")
    if run not in RUN_NUMBERS:
        raise ValueError(f"{where}: attrs['run'] must be one of {list(RUN_NUMBERS)}, got {run!r}")
    return RUN_NUMBERS[run]


def _head(obj, times_end, source_file_name, source_file_datetime, kind: str) -> tuple[str | None, pd.Timestamp]:
    run = obj.attrs.get("run", "")
    name = source_file_name if source_file_name is not None else f"tomlib_LSS_{kind}_{run}"
    when = pd.Timestamp(source_file_datetime) if source_file_datetime is not None else pd.Timestamp(times_end)
    if when.tz is not None:
        when = when.tz_convert("UTC").tz_localize(None)
    return name, when


def if022_records(shapes: xr.Dataset | xr.DataArray, *, source_file_name: str | None = None,
                  source_file_datetime=None) -> pd.DataFrame:
    """IF022 records of load shapes (:func:`tomlib.services.load_shaping.load_shapes`).

    Parameters
    ----------
    shapes : Dataset or DataArray
        ``load_shape`` (category, time) with the category key coordinates and ``default_flag``.
    source_file_name : str, optional
        Default ``tomlib_LSS_IF022_<run>``.
    source_file_datetime : datetime-like, optional
        [UTC] Default: the end of the last period (keeps files reproducible).

    Returns
    -------
    DataFrame
        Columns :data:`IF022_FIELDS`, one row per category and period (date, period, category
        order); ``settlementDate`` a midnight Timestamp, date-times tz-naive UTC Timestamps, nulls None.
    """
    da = shapes["load_shape"] if isinstance(shapes, xr.Dataset) else shapes
    da = da.transpose("category", "time")
    where = "if022_records"
    values = da.to_numpy()
    if not np.isfinite(values).all():
        c, t = np.argwhere(~np.isfinite(values))[0]
        raise ValueError(f"{where}: loadShapePeriodValue must be finite, got {values[c, t]} for category "
                         f"{da['category'].values[c]} at {pd.Timestamp(da['time'].values[t])} UTC")
    times = pd.DatetimeIndex(da["time"].to_numpy())
    dates, periods = cal.from_utc(times)
    n_c, n_t = values.shape
    cats = _category_columns(da, where)
    flags = (np.asarray(da["default_flag"].values).astype(str).astype(object) if "default_flag" in da.coords
             else np.full((n_c, n_t), None, dtype=object))
    name, when = _head(da, times[-1] + cal.PERIOD if n_t else pd.Timestamp(0), source_file_name,
                       source_file_datetime, "IF022")
    t_idx = np.tile(np.arange(n_t), n_c).reshape(n_c, n_t).T.ravel()  # time-major: date, period, category
    c_idx = np.tile(np.arange(n_c), n_t)
    return _frame({
        "sourceFileName": np.full(t_idx.size, name, dtype=object),
        "sourceFileDatetime": np.full(t_idx.size, when.to_datetime64()),
        "settlementDate": dates.to_numpy()[t_idx],
        "settlementPeriodStartDateTime": times.to_numpy()[t_idx],
        "settlementPeriodEndDateTime": (times + cal.PERIOD).to_numpy()[t_idx],
        "settlementPeriod": periods.astype(np.int64)[t_idx],
        **{f: v[c_idx] for f, v in cats.items()},
        "runNumber": np.full(t_idx.size, _run_number(da, where), dtype=np.int64),
        "eventCode": np.full(t_idx.size, _EVENT["IF022"], dtype=object),
        "settlementPeriodDuration": np.full(t_idx.size, _DURATION_MIN, dtype=np.int64),
        "loadShapePeriodValue": values[c_idx, t_idx],
        "defaultLoadShapeFlag": flags[c_idx, t_idx],
    })


def _frame(cols: dict[str, np.ndarray]) -> pd.DataFrame:
    # text fields stay object arrays with None for null, as the reader gives them (pandas would infer
    # its string dtype and turn None into NaN)
    return pd.DataFrame({k: pd.Series(v, dtype=object) if v.dtype == object else v for k, v in cols.items()})


def if023_records(totals: xr.Dataset, *, source_file_name: str | None = None,
                  source_file_datetime=None) -> pd.DataFrame:
    """IF023 records of load-shape totals (:func:`tomlib.services.load_shaping.load_shape_totals`).

    Returns
    -------
    DataFrame
        Columns :data:`IF023_FIELDS`, one row per category and settlement date (date, category order);
        NaN peak / off-peak totals become None (nullable fields); other totals must be finite.
    """
    where = "if023_records"
    tot = totals.transpose("category", "settlement_date")
    days = pd.DatetimeIndex(tot["settlement_date"].to_numpy())
    n_c, n_d = tot.sizes["category"], tot.sizes["settlement_date"]
    cats = _category_columns(tot, where)
    end = cal.to_utc(days[-1], cal.periods_in_day(days[-1]))[0] + cal.PERIOD if n_d else pd.Timestamp(0)
    name, when = _head(tot, end, source_file_name, source_file_datetime, "IF023")
    d_idx = np.repeat(np.arange(n_d), n_c)
    c_idx = np.tile(np.arange(n_c), n_d)
    cols = {}
    for field, var in _TOTALS.items():
        v = tot[var].to_numpy()[c_idx, d_idx].astype(float)
        if field in _NULLABLE:
            cols[field] = np.where(np.isfinite(v), v, None).astype(object)
        elif not np.isfinite(v).all():
            i = int(np.argmax(~np.isfinite(v)))
            raise ValueError(f"{where}: {field} must be finite, got {v[i]} for category "
                             f"{tot['category'].values[c_idx[i]]} on {days[d_idx[i]]:%Y-%m-%d}")
        else:
            cols[field] = v
    return _frame({
        "sourceFileName": np.full(d_idx.size, name, dtype=object),
        "sourceFileDatetime": np.full(d_idx.size, when.to_datetime64()),
        "settlementDate": days.to_numpy()[d_idx],
        **{f: v[c_idx] for f, v in cats.items()},
        "runNumber": np.full(d_idx.size, _run_number(tot, where), dtype=np.int64),
        "eventCode": np.full(d_idx.size, _EVENT["IF023"], dtype=object),
        "settlementPeriodDuration": np.full(d_idx.size, _DURATION_MIN, dtype=np.int64),
        **cols,
    })


# ------------------------------------------------------------------------------------------ writing


def _to_json_records(records: pd.DataFrame, fields: tuple[str, ...], kind: str, path: Path) -> list[dict]:
    missing = [f for f in fields if f not in records.columns]
    if missing:
        raise ValueError(f"write_{kind.lower()}: records lack field(s) {missing}; expected {list(fields)}")
    cols = {}
    for f in fields:
        col = records[f]
        if f == "settlementDate":
            cols[f] = pd.DatetimeIndex(col).strftime("%Y-%m-%d").to_numpy(dtype=object)
        elif f in ("sourceFileDatetime", "settlementPeriodStartDateTime", "settlementPeriodEndDateTime"):
            cols[f] = _utc_text(col)
        elif pd.api.types.is_integer_dtype(col):
            cols[f] = col.to_numpy().astype(object)
            cols[f] = np.array([int(v) for v in cols[f]], dtype=object)
        else:
            cols[f] = np.array([None if (v is None or (isinstance(v, float) and np.isnan(v))) else
                                (float(v) if isinstance(v, (float, np.floating)) else v)
                                for v in col.to_numpy(dtype=object)], dtype=object)
    return [dict(zip(fields, row)) for row in zip(*(cols[f] for f in fields))]


def _write(records: pd.DataFrame, path, fields: tuple[str, ...], kind: str) -> Path:
    path = Path(path)
    data = _to_json_records(records, fields, kind, path)
    # the reader's rules, before anything is written: a file we write always reads back
    _parse({"data": data, "metadata": {"datasets": [kind]}}, fields, kind, str(path))
    # one record per line: compact, and a diff or an error's record index stays readable
    lines = ",\n".join(json.dumps(rec, allow_nan=False) for rec in data)
    text = '{"data": [\n' + lines + '\n], "metadata": ' + json.dumps({"datasets": [kind]}) + "}"
    return atomic_write_text(path, text + "\n")


def write_if022(records: pd.DataFrame | xr.Dataset, path, **kwargs) -> Path:
    """Write IF022 records (or load shapes, converted with :func:`if022_records`) as JSON, atomically."""
    if isinstance(records, (xr.Dataset, xr.DataArray)):
        records = if022_records(records, **kwargs)
    return _write(records, path, IF022_FIELDS, "IF022")


def write_if023(records: pd.DataFrame | xr.Dataset, path, **kwargs) -> Path:
    """Write IF023 records (or totals, converted with :func:`if023_records`) as JSON, atomically."""
    if isinstance(records, xr.Dataset):
        records = if023_records(records, **kwargs)
    return _write(records, path, IF023_FIELDS, "IF023")


# ------------------------------------------------------------------------------------------ reading


def _fail(source: str, i: int | None, field: str | None, msg: str) -> LoadShapeError:
    where = source + (f", record {i}" if i is not None else "") + (f", field '{field}'" if field else "")
    return LoadShapeError(f"{where}: {msg}", source=source, field=field)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)


def _check_column(values: list, field: str, source: str, test, expected: str) -> None:
    nullable = field in _NULLABLE
    bad = [i for i, v in enumerate(values) if not ((v is None and nullable) or (v is not None and test(v)))]
    if bad:
        i = bad[0]
        raise _fail(source, i, field, f"expected {expected}{' or null' if nullable else ''}, got {values[i]!r}")


def _parse(obj: Any, fields: tuple[str, ...], kind: str, source: str) -> pd.DataFrame:
    if isinstance(obj, dict):
        extra = sorted(set(obj) - {"data", "metadata"})
        if extra or "data" not in obj:
            raise _fail(source, None, None, f"expected an object with 'data' (and 'metadata') or a JSON array of "
                                            f"{kind} records, got keys {sorted(obj)}")
        obj = obj["data"] if obj["data"] is not None else []
    if not isinstance(obj, list):
        raise _fail(source, None, None, f"expected a JSON array of {kind} records, got {type(obj).__name__}")
    for i, rec in enumerate(obj):  # the object shape of each record: the only per-record step
        if not isinstance(rec, dict):
            raise _fail(source, i, None, f"expected a JSON object, got {type(rec).__name__}")
        if len(rec) != len(fields) or rec.keys() != set(fields):
            missing = [f for f in fields if f not in rec]
            if missing:
                raise _fail(source, i, missing[0], "field is missing")
            raise _fail(source, i, min(set(rec) - set(fields)), f"unexpected field (not in {kind})")
    cols = {f: [rec[f] for rec in obj] for f in fields}
    str_ok = lambda v: isinstance(v, str)
    for f in fields:
        if f in _CODES:
            codes = _CODES[f]
            _check_column(cols[f], f, source, lambda v, c=codes: isinstance(v, str) and v in c,
                          f"one of {', '.join(codes)}")
        elif f == "settlementDate":
            _check_column(cols[f], f, source, lambda v: isinstance(v, str) and bool(_DATE.fullmatch(v)),
                          "a date YYYY-MM-DD")
        elif f.endswith(("Datetime", "DateTime")):
            _check_column(cols[f], f, source, lambda v: isinstance(v, str) and bool(_DATETIME.fullmatch(v)),
                          "an ISO 8601 date-time with a UTC offset, e.g. 2026-03-29T01:00:00Z")
        elif f in ("settlementPeriod", "runNumber", "settlementPeriodDuration"):
            _check_column(cols[f], f, source, lambda v: _is_int(v) and v >= 1, "an integer >= 1")
        elif f.startswith("loadShape"):
            _check_column(cols[f], f, source, lambda v: _is_number(v) and v >= 0,
                          "a finite number >= 0 [kWh per MPAN]")
        else:
            _check_column(cols[f], f, source, str_ok, "a string")
    n = len(obj)
    frame = pd.DataFrame({f: pd.Series(cols[f], dtype=object) for f in fields}, index=pd.RangeIndex(n))
    for f in ("settlementPeriod", "runNumber", "settlementPeriodDuration"):
        if f in frame:
            frame[f] = frame[f].astype(np.int64)
    for f in fields:
        if f.startswith("loadShape") and f not in _NULLABLE:
            frame[f] = frame[f].astype(np.float64)
    for f in fields:
        if f == "settlementDate":
            parsed = pd.to_datetime(frame[f], format="%Y-%m-%d", errors="coerce")
            if parsed.isna().any():
                i = int(np.flatnonzero(parsed.isna().to_numpy())[0])
                raise _fail(source, i, f, f"expected a calendar date, got {frame[f].iloc[i]!r}")
            frame[f] = parsed.to_numpy().astype("datetime64[ns]")
            out = (frame[f] < DATE_RANGE[0]) | (frame[f] > DATE_RANGE[1])
            if out.any():
                i = int(np.flatnonzero(out.to_numpy())[0])
                raise _fail(source, i, f, f"expected a date from {DATE_RANGE[0]:%Y-%m-%d} to "
                                          f"{DATE_RANGE[1]:%Y-%m-%d}, got {frame[f].iloc[i]:%Y-%m-%d}")
        elif f.endswith(("Datetime", "DateTime")):
            parsed = pd.to_datetime(frame[f], format="ISO8601", utc=True, errors="coerce")
            if parsed.isna().any():
                i = int(np.flatnonzero(parsed.isna().to_numpy())[0])
                raise _fail(source, i, f, f"expected a valid date-time, got {frame[f].iloc[i]!r}")
            frame[f] = parsed.dt.tz_localize(None).to_numpy().astype("datetime64[ns]")
    dur = frame["settlementPeriodDuration"].to_numpy()
    if n and (dur != _DURATION_MIN).any():
        i = int(np.argmax(dur != _DURATION_MIN))
        raise _fail(source, i, "settlementPeriodDuration", f"expected {_DURATION_MIN} [min], got {dur[i]}")
    key = ["settlementDate", *CATEGORY_FIELDS, "runNumber"]
    if kind == "IF022":
        _check_periods(frame, source)
        key.insert(1, "settlementPeriod")
    dup = frame[key].astype(str).duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise _fail(source, i, ",".join(key), "duplicate record (same date, period, category and run as an "
                                              "earlier record); expected each record once")
    return frame


def _check_periods(frame: pd.DataFrame, source: str) -> None:
    days = pd.DatetimeIndex(frame["settlementDate"])
    sp = frame["settlementPeriod"].to_numpy()
    n = np.atleast_1d(cal.periods_in_day(days.to_numpy())) if len(days) else np.zeros(0, int)
    bad = sp > n
    if bad.any():
        i = int(np.argmax(bad))
        raise _fail(source, i, "settlementPeriod", f"settlement period {sp[i]} does not exist on "
                                                   f"{days[i]:%Y-%m-%d} (valid: 1..{n[i]}); expected a period "
                                                   "of the day")
    start = cal.to_utc(days.to_numpy(), sp).to_numpy() if len(days) else np.zeros(0, "datetime64[ns]")
    for field, expected in (("settlementPeriodStartDateTime", start),
                            ("settlementPeriodEndDateTime", start + np.timedelta64(_DURATION_MIN, "m"))):
        got = frame[field].to_numpy()
        bad = got != expected
        if bad.any():
            i = int(np.argmax(bad))
            raise _fail(source, i, field, f"expected {pd.Timestamp(expected[i]):%Y-%m-%dT%H:%M:%SZ} for "
                                          f"{days[i]:%Y-%m-%d} period {sp[i]}, "
                                          f"got {pd.Timestamp(got[i]):%Y-%m-%dT%H:%M:%SZ}")


def parse_if022(obj: Any, source: str = "<IF022>") -> pd.DataFrame:
    """Validate parsed JSON (wrapper object or array) as IF022 records (module docstring)."""
    return _parse(obj, IF022_FIELDS, "IF022", source)


def parse_if023(obj: Any, source: str = "<IF023>") -> pd.DataFrame:
    """Validate parsed JSON (wrapper object or array) as IF023 records (module docstring)."""
    return _parse(obj, IF023_FIELDS, "IF023", source)


def _load(path) -> tuple[Any, str]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LoadShapeError(f"{path}: cannot read ({exc.strerror})", source=path.name) from exc
    except UnicodeDecodeError as exc:
        raise LoadShapeError(f"{path.name}: expected UTF-8 JSON, got byte 0x{exc.object[exc.start]:02x} at "
                             f"offset {exc.start}", source=path.name) from None
    if text.strip() == "":
        raise LoadShapeError(f"{path.name}: empty file; expected a JSON object with 'data' or a JSON array",
                             source=path.name)
    try:
        return json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c))), path.name
    except json.JSONDecodeError as exc:
        raise LoadShapeError(f"{path.name}, line {exc.lineno}, column {exc.colno}: expected valid JSON, got "
                             f"{exc.msg} (the file may be truncated)", source=path.name, line=exc.lineno) from None
    except ValueError as exc:
        raise LoadShapeError(f"{path.name}: expected valid JSON, got the non-standard constant {exc}",
                             source=path.name) from None


def read_if022(path) -> pd.DataFrame:
    """Read an IF022 JSON file strictly; columns :data:`IF022_FIELDS` (as :func:`if022_records`)."""
    obj, name = _load(path)
    return parse_if022(obj, name)


def read_if023(path) -> pd.DataFrame:
    """Read an IF023 JSON file strictly; columns :data:`IF023_FIELDS` (as :func:`if023_records`)."""
    obj, name = _load(path)
    return parse_if023(obj, name)


# ------------------------------------------------------------------------------------------ back to shapes


def shapes_from_if022(records: pd.DataFrame) -> xr.DataArray:
    """A ``load_shape`` DataArray (category, time) from IF022 records of one run, e.g. read from Elexon.

    Category labels follow :func:`tomlib.services.load_shaping.category_of` (``*`` for a null key);
    coordinates ``default_flag`` and ``default_shape``. A (category, period) without a record is NaN.

    Raises
    ------
    ValueError
        If the records hold several runs.
    """
    from tomlib.services.load_shaping import AGGREGATED, RUN_NUMBERS, load_categories

    runs = np.unique(records["runNumber"].to_numpy())
    if runs.size > 1:
        raise ValueError(f"shapes_from_if022: records of several runs {runs.tolist()}; select one")
    defn = {k.key: k for k in load_categories().keys}
    parts = []
    for field, key in CATEGORY_FIELDS.items():  # five keys
        v = records[field].to_numpy(dtype=object)
        k = defn[key]
        text = np.where(pd.isna(v), AGGREGATED, v.astype(str))
        if k.boolean:
            text = np.where(text == k.true_wire, k.true_label, np.where(text == k.false_wire, k.false_label, text))
        parts.append(text.astype(str))
    labels = parts[0]
    for p in parts[1:]:
        labels = np.char.add(np.char.add(labels, "|"), p)
    cats, c_idx = np.unique(labels, return_inverse=True)
    start = records["settlementPeriodStartDateTime"].to_numpy(dtype="datetime64[ns]")
    times = cal.time_axis(pd.Timestamp(records["settlementDate"].min()), pd.Timestamp(records["settlementDate"].max()))
    t_idx = pd.Index(times).get_indexer(start)
    values = np.full((cats.size, len(times)), np.nan)
    values[c_idx, t_idx] = records["loadShapePeriodValue"].to_numpy(dtype=float)
    flags = np.full((cats.size, len(times)), "", dtype="<U1")
    flags[c_idx, t_idx] = records["defaultLoadShapeFlag"].fillna("").to_numpy(dtype=str)
    split = np.array([lab.split("|") for lab in cats], dtype=object).reshape(cats.size, len(CATEGORY_FIELDS))
    run_number = int(runs[0]) if runs.size else 0
    run = {v: k for k, v in RUN_NUMBERS.items()}.get(run_number, "")
    da = xr.DataArray(values, dims=("category", "time"), name="load_shape",
                      coords={"category": cats, "time": times.to_numpy(),
                              **{key: ("category", split[:, i].astype(str)) for i, key in
                                 enumerate(CATEGORY_FIELDS.values())},
                              "default_flag": (("category", "time"), flags),
                              "default_shape": (("category", "time"), (flags != "A") & (flags != ""))},
                      attrs={"units": "kWh", "source": "IF022 records", "run": run, "run_number": run_number})
    if "domestic" in da.coords:
        k = defn["domestic"]
        dom = np.asarray(da["domestic"].values).astype(str)
        da = da.assign_coords(domestic=("category", np.where(dom == k.true_label, k.true_wire,
                                                             np.where(dom == k.false_label, k.false_wire, dom))))
    return da
