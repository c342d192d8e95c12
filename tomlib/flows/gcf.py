"""GSP group correction factor files in Elexon's layout (mhhs-domain.md F-13, F-14).

Elexon publishes GSP group correction factors per settlement date, run, settlement period, GSP
group and factor type (``legacy_gcf``, ``mhhs_import_gcf``, ``mhhs_export_gcf``); the public
parser we know (chellow ``chellow/e/gcf.py`` [SEC]) reads the columns in this order and skips a
header line. The exact header text of Elexon's file is not in our sources, so this module writes
and requires its own header::

    date,run,period,gsp_group,type,value
    2026-03-29,SF,46,_C,mhhs_import_gcf,1.0123456789

- ``date``: settlement date, ``YYYY-MM-DD`` (the reader also takes ``DD/MM/YYYY``, as chellow does);
- ``run``: II, SF, R1, R2, R3, RF, DF; ``period``: 1..46/48/50 valid for the date;
- ``gsp_group``: ``_A``..``_P``; ``type``: one of :data:`GCF_TYPES`; ``value``: a finite number [-].

The reader is strict: wrong header, an empty or malformed field, a period that does not exist on
its date, or a duplicate (date, run, period, gsp_group, type) raises ``ValueError`` naming the file,
line and field. The writer replaces its target atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from tomlib import calendar
from tomlib._io import atomic_write_text

__all__ = ["COLUMNS", "GCF_TYPES", "gcf_records", "read_gcf", "write_gcf"]

COLUMNS = ("date", "run", "period", "gsp_group", "type", "value")
GCF_TYPES = ("legacy_gcf", "mhhs_import_gcf", "mhhs_export_gcf")
_RUNS = ("II", "SF", "R1", "R2", "R3", "RF", "DF")
_GSP_GROUPS = ("_A", "_B", "_C", "_D", "_E", "_F", "_G", "_H", "_J", "_K", "_L", "_M", "_N", "_P")
_TYPE_OF_DIRECTION = {"import": "mhhs_import_gcf", "export": "mhhs_export_gcf"}


def gcf_records(allocation: xr.Dataset, run: str) -> pd.DataFrame:
    """GCF records of one run from a volume allocation result.

    Parameters
    ----------
    allocation : Dataset
        With ``gcf(gsp_group_id, direction, time)`` [-] (:func:`tomlib.services.volume_allocation.allocate`).
    run : str
        Run id.

    Returns
    -------
    DataFrame
        Columns :data:`COLUMNS` (``date`` a tz-naive midnight Timestamp), sorted by date, period,
        GSP group, type.
    """
    if run not in _RUNS:
        raise ValueError(f"gcf_records: run must be one of {', '.join(_RUNS)}, got {run!r}")
    gcf = allocation["gcf"].transpose("gsp_group_id", "direction", "time")
    dates, periods = calendar.from_utc(gcf["time"].values)
    g, d, t = np.meshgrid(np.arange(gcf.sizes["gsp_group_id"]), np.arange(gcf.sizes["direction"]),
                          np.arange(gcf.sizes["time"]), indexing="ij")
    directions = np.asarray(gcf["direction"].values, dtype=str)
    out = pd.DataFrame({
        "date": dates.to_numpy()[t.ravel()],
        "run": run,
        "period": periods[t.ravel()].astype(np.int64),
        "gsp_group": np.asarray(gcf["gsp_group_id"].values, dtype=str)[g.ravel()],
        "type": pd.Series(directions[d.ravel()]).map(_TYPE_OF_DIRECTION).to_numpy(dtype=str),
        "value": np.asarray(gcf.values, dtype=float).ravel(),
    })
    return out.sort_values(["date", "period", "gsp_group", "type"], kind="stable").reset_index(drop=True)


def write_gcf(records: pd.DataFrame, path) -> Path:
    """Write GCF records (columns :data:`COLUMNS`) as CSV, atomically; values in full precision.

    Raises
    ------
    ValueError
        If the records would not read back (checked with the reader's rules before writing).
    """
    path = Path(path)
    missing = [c for c in COLUMNS if c not in records.columns]
    if missing:
        raise ValueError(f"write_gcf: records lack column(s) {missing}; expected {list(COLUMNS)}")
    table = records[list(COLUMNS)].copy()
    table["date"] = pd.DatetimeIndex(table["date"]).strftime("%Y-%m-%d")
    text = table.astype({"period": np.int64, "value": float}).to_csv(index=False, lineterminator="\n",
                                                                      float_format=_shortest)
    _validate(pd.read_csv(_io(text), dtype=str, keep_default_na=False), str(path))
    return atomic_write_text(path, text, encoding="ascii")


def _shortest(value) -> str:
    # shortest text that reads back to the same float
    return repr(float(value))


def _io(text: str):
    import io

    return io.StringIO(text)


def read_gcf(path) -> pd.DataFrame:
    """Read a GCF file strictly (module docstring).

    Returns
    -------
    DataFrame
        Columns :data:`COLUMNS` plus ``time`` (UTC start of the period); ``date`` a Timestamp,
        ``period`` int, ``value`` float.
    """
    path = Path(path)
    with open(path, encoding="ascii", newline="") as f:
        raw = pd.read_csv(f, dtype=str, keep_default_na=False)
    return _validate(raw, str(path))


def _validate(raw: pd.DataFrame, where: str) -> pd.DataFrame:
    header = list(raw.columns)
    if header != list(COLUMNS):
        raise ValueError(f"{where}: line 1: header must be {','.join(COLUMNS)}, got {','.join(header)}")

    def fail(i: int, field: str, msg: str):
        raise ValueError(f"{where}: line {int(i) + 2}: field {field}: {msg}")

    for col in COLUMNS:
        empty = raw[col].str.strip().to_numpy() == ""
        if empty.any():
            fail(np.argmax(empty), col, "empty; expected a value")
    text = raw["date"].to_numpy(dtype=str)
    iso = pd.to_datetime(pd.Series(text), format="%Y-%m-%d", errors="coerce")
    dmy = pd.to_datetime(pd.Series(text), format="%d/%m/%Y", errors="coerce")
    dates = iso.fillna(dmy)
    if dates.isna().any():
        i = int(np.argmax(dates.isna().to_numpy()))
        fail(i, "date", f"expected YYYY-MM-DD or DD/MM/YYYY, got {text[i]!r}")
    for col, allowed in (("run", _RUNS), ("gsp_group", _GSP_GROUPS), ("type", GCF_TYPES)):
        bad = ~raw[col].isin(allowed).to_numpy()
        if bad.any():
            i = int(np.argmax(bad))
            fail(i, col, f"expected one of {', '.join(allowed)}, got {raw[col].iloc[i]!r}")
    period = pd.to_numeric(raw["period"], errors="coerce")
    bad = period.isna().to_numpy() | ~raw["period"].str.fullmatch(r"\d{1,2}").to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        fail(i, "period", f"expected an integer 1..50, got {raw['period'].iloc[i]!r}")
    period = period.to_numpy(dtype=np.int64)
    n = np.asarray(calendar.periods_in_day(dates.to_numpy()))
    bad = (period < 1) | (period > n)
    if bad.any():
        i = int(np.argmax(bad))
        fail(i, "period", f"settlement period {period[i]} does not exist on {dates.iloc[i]:%Y-%m-%d} "
                          f"(valid: 1..{n[i]})")
    value = pd.to_numeric(raw["value"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(value)
    if bad.any():
        i = int(np.argmax(bad))
        fail(i, "value", f"expected a finite number, got {raw['value'].iloc[i]!r}")
    out = pd.DataFrame({"date": dates.to_numpy(), "run": raw["run"].to_numpy(dtype=str), "period": period,
                        "gsp_group": raw["gsp_group"].to_numpy(dtype=str), "type": raw["type"].to_numpy(dtype=str),
                        "value": value})
    dup = out.duplicated(["date", "run", "period", "gsp_group", "type"], keep=False).to_numpy()
    if dup.any():
        rows = np.flatnonzero(dup)
        first = out.iloc[rows[0]]
        same = rows[(out.iloc[rows][["date", "run", "period", "gsp_group", "type"]] ==
                     first[["date", "run", "period", "gsp_group", "type"]]).all(axis=1).to_numpy()]
        fail(same[1], "date,run,period,gsp_group,type", f"duplicate of line {same[0] + 2}")
    out["time"] = calendar.to_utc(out["date"].to_numpy(), period)
    return out
