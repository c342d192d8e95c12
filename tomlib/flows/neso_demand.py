"""NESO historic demand files ("Historic Demand Data", ``demanddata_<year>.csv``): strict streaming reader, writer.

The GB system operator publishes national demand per settlement date and settlement period
(``tests/data/neso_demand_2022_nd.PROVENANCE.md``). Layout: CSV, a header line, then one row per
settlement period in settlement order, days complete::

    "SETTLEMENT_DATE","SETTLEMENT_PERIOD","ND","TSD","ENGLAND_WALES_DEMAND","EMBEDDED_WIND_GENERATION",...
    "2022-01-01",1,21940,23275,20513,2412,...

- ``SETTLEMENT_DATE``: the UK settlement day, ``YYYY-MM-DD`` (also NESO's older ``DD-MON-YYYY``, e.g.
  ``01-JAN-2019``); double quotes around a field are removed.
- ``SETTLEMENT_PERIOD``: 1..46/48/50, as :mod:`tomlib.calendar` counts them ("UK time, half hour
  beginning": period 1 starts at local midnight).
- The other columns are **MW, the mean over the half hour** (energy [MWh] = MW x 0.5): ``ND`` national
  demand, ``TSD`` transmission system demand, ``ENGLAND_WALES_DEMAND``, ``EMBEDDED_*`` generation and
  capacity, ``NON_BM_STOR``, ``PUMP_STORAGE_PUMPING``, ``*_FLOW`` interconnector flows (signed).
  Columns NESO adds later are read the same way.

Checks (:class:`NesoDemandError`, naming file, line and field): the header (the two key columns
first, each column once, the columns asked for present); a date that exists within
:data:`tomlib.flows.DATE_RANGE`; a period that exists on its day; rows in settlement order with no
period missing or repeated (each row starts 30 minutes after the one before, in UTC), the file
starting at period 1 and ending with the last period of its day; every value a finite number in MW;
``ND`` and ``TSD`` within :data:`DEMAND_RANGE_MW` (a file in GW or kW falls outside: wrong units);
demand, generation, capacity and pumping columns not negative; an empty file; a last line without a
line feed (truncated).

Streaming: the file (plain or ``.gz``) is read a block of lines at a time and each block parsed with
vectorised pyarrow/numpy operations (:mod:`tomlib.flows._common`); :func:`iter_neso_demand` yields
the checked blocks (the memory-light path: one block in memory), :func:`read_neso_demand` collects
them into one Dataset (8 bytes per value and period). Nothing is returned unless the whole file is
valid (the last-period check needs the end of the file).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import xarray as xr

from tomlib import calendar as cal
from tomlib import cube
from tomlib._io import atomic_target
from tomlib.flows._common import (
    DEFAULT_BLOCK_SIZE,
    FlowError,
    blocks,
    fields,
    first_true,
    matches,
    parse_dates,
    period_starts,
)

__all__ = [
    "COLUMNS",
    "DEMAND_RANGE_MW",
    "KEY_COLUMNS",
    "NesoDemandError",
    "iter_neso_demand",
    "read_neso_demand",
    "write_neso_demand",
]

KEY_COLUMNS = ("SETTLEMENT_DATE", "SETTLEMENT_PERIOD")
#: The value columns of the 2022 file and what they hold [MW]; others are read as they come.
COLUMNS = {
    "ND": "national demand (the generation requirement, equivalent to INDO)",
    "TSD": "transmission system demand",
    "ENGLAND_WALES_DEMAND": "England and Wales part of national demand",
    "EMBEDDED_WIND_GENERATION": "estimated embedded wind generation",
    "EMBEDDED_WIND_CAPACITY": "embedded wind capacity",
    "EMBEDDED_SOLAR_GENERATION": "estimated embedded solar generation",
    "EMBEDDED_SOLAR_CAPACITY": "embedded solar capacity",
    "NON_BM_STOR": "non-BM short-term operating reserve",
    "PUMP_STORAGE_PUMPING": "pumped storage pumping demand",
    "IFA_FLOW": "IFA interconnector flow (signed)",
    "IFA2_FLOW": "IFA2 interconnector flow (signed)",
    "BRITNED_FLOW": "BritNed interconnector flow (signed)",
    "MOYLE_FLOW": "Moyle interconnector flow (signed)",
    "EAST_WEST_FLOW": "East-West interconnector flow (signed)",
    "NEMO_FLOW": "Nemo interconnector flow (signed)",
    "NSL_FLOW": "North Sea Link flow (signed)",
    "ELECLINK_FLOW": "ElecLink interconnector flow (signed)",
}
#: Plausible national demand [MW] for ND and TSD [INF]: GB demand has stayed within ~13-60 GW since
#: 2009, so a value outside this range is a file in other units (GW, kW, MWh per period x 1000).
DEMAND_RANGE_MW = (5_000.0, 80_000.0)
_NON_NEGATIVE = ("ENGLAND_WALES_DEMAND", "EMBEDDED_", "NON_BM_STOR", "PUMP_STORAGE_PUMPING")
_DATE_FORMATS = ((r"\d{4}-\d{2}-\d{2}", "%Y-%m-%d"), (r"\d{2}-[A-Za-z]{3}-\d{4}", "%d-%b-%Y"))
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"


class NesoDemandError(FlowError):
    """A NESO demand file (or a Dataset to write as one) is not valid."""


def _header(name: str, line: str, columns) -> tuple[list[str], list[str]]:
    cols = [c[1:-1] if len(c) >= 2 and c[0] == c[-1] == '"' else c for c in line.split(",")]
    if line == "":
        raise NesoDemandError.at(name, 1, None, f"a header line starting {','.join(KEY_COLUMNS)}", line)
    for k, key in enumerate(KEY_COLUMNS):
        if len(cols) <= k or cols[k] != key:
            raise NesoDemandError.at(name, 1, key, f"column {k + 1} to be {key}", cols[k] if len(cols) > k else "")
    dup = sorted({c for c in cols if cols.count(c) > 1})
    if dup:
        raise NesoDemandError.at(name, 1, dup[0], "each column once", line)
    values = [c for c in cols[2:]] if columns is None else list(columns)
    for c in values:
        if c not in cols[2:]:
            raise NesoDemandError.at(name, 1, c, f"a column {c} (columns asked for: {', '.join(values)})", line)
    if not values:
        raise NesoDemandError.at(name, 1, None, "at least one value column after the key columns", line)
    return cols, values


def iter_neso_demand(path, columns=None, *, block_size: int = DEFAULT_BLOCK_SIZE,
                     name: str | None = None) -> Iterator[pd.DataFrame]:
    """Stream a NESO demand file as checked blocks (the memory-light path).

    Parameters
    ----------
    path : path-like
        Plain or ``.gz`` CSV.
    columns : sequence of str, optional
        Value columns to read; default all.
    block_size : int
        Bytes of text parsed at a time.
    name : str, optional
        The file's name in messages (default: the file name).

    Yields
    ------
    DataFrame
        Columns ``time`` (UTC start of the period), ``settlement_date``, ``settlement_period``, the value
        columns [MW] and ``line``. The end-of-file check (the last day complete) runs after the last block.
    """
    path = Path(path)
    name = name or path.name
    cols = values = None
    prev_time = prev_line = None
    prev_values = None
    for block in blocks(path, NesoDemandError, block_size, name=name):
        data, numbers, skip = block.data, block.line_numbers, 0
        if cols is None:
            cols, values = _header(name, block.text(0), columns)
            skip = 1
            data, numbers = data[block.starts[1]:] if len(block) > 1 else b"", numbers[1:]
        if not len(numbers):
            continue
        f = fields(block, data, cols, ",", NesoDemandError, "the row", numbers, counts=block.count(",")[skip:],
                   quote=True)
        d_codes, days = parse_dates(NesoDemandError, name, f["SETTLEMENT_DATE"], numbers, "SETTLEMENT_DATE",
                                    _DATE_FORMATS, "YYYY-MM-DD")
        times, sp = period_starts(NesoDemandError, name, f["SETTLEMENT_PERIOD"], d_codes, days, numbers,
                                  "SETTLEMENT_PERIOD")
        out = {"time": times, "settlement_date": days[d_codes], "settlement_period": sp.astype(np.int8)}
        for c in values:
            out[c] = _values(name, c, f[c], numbers)
        # settlement order: every row starts 30 minutes after the row before
        before = np.r_[prev_time if prev_time is not None else times[0] - np.timedelta64(30, "m"), times[:-1]]
        step = times - before
        i = first_true(step != np.timedelta64(30, "m"))
        if prev_time is None and sp[0] != 1:
            i = 0 if i is None or i > 0 else i
        if i is not None:
            _order_error(name, numbers, i, times, before, step, sp, days[d_codes], prev_line, out, values,
                         prev_values)
        prev_time, prev_line = times[-1], int(numbers[-1])
        prev_values = {c: out[c][-1] for c in values}
        out["line"] = numbers
        yield pd.DataFrame(out)
    if cols is None:
        raise NesoDemandError(f"{name}: empty file; expected a header line starting {','.join(KEY_COLUMNS)}",
                              source=name)
    if prev_time is None:
        raise NesoDemandError(f"{name}: the file holds no rows after the header; expected settlement periods",
                              source=name)
    day, sp = cal.from_utc([prev_time])
    n = cal.periods_in_day(day[0])
    if sp[0] != n:
        raise NesoDemandError.at(name, prev_line, "SETTLEMENT_PERIOD",
                                 f"whole settlement days: {day[0]:%Y-%m-%d} has {n} periods but the file ends at "
                                 f"period {sp[0]} (truncated?)")


def _values(name: str, col: str, text: pa.Array, lines: np.ndarray) -> np.ndarray:
    i = first_true(~matches(text, _NUMBER))
    if i is not None:
        raise NesoDemandError.at(name, lines[i], col, "a number [MW]", text[i].as_py())
    v = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
    i = first_true(~np.isfinite(v))
    if i is not None:
        raise NesoDemandError.at(name, lines[i], col, "a finite number [MW]", text[i].as_py())
    if col in ("ND", "TSD"):
        lo, hi = DEMAND_RANGE_MW
        i = first_true((v < lo) | (v > hi))
        if i is not None:
            raise NesoDemandError.at(name, lines[i], col, f"national demand in MW ({lo:,.0f}..{hi:,.0f} MW; a "
                                     "value outside is a file in other units, e.g. GW)", text[i].as_py())
    elif col.startswith(_NON_NEGATIVE):
        i = first_true(v < 0)
        if i is not None:
            raise NesoDemandError.at(name, lines[i], col, "a non-negative number [MW]", text[i].as_py())
    return v


def _order_error(name, numbers, i, times, before, step, sp, dates, prev_line, out, values, prev_values):
    line = int(numbers[i])
    got = f"{pd.Timestamp(dates[i]):%Y-%m-%d} period {sp[i]}"
    if i == 0 and prev_line is None:
        raise NesoDemandError.at(name, line, "SETTLEMENT_PERIOD", "the file to start with period 1 of a day", got)
    previous = prev_line if i == 0 else int(numbers[i - 1])
    if step[i] == np.timedelta64(0, "ns"):
        old = prev_values if i == 0 else {c: out[c][i - 1] for c in values}
        differ = [c for c in values if old[c] != out[c][i]]
        what = (f"conflicting values ({differ[0]} {old[differ[0]]:g} and {out[differ[0]][i]:g})" if differ
                else "the same values")
        raise NesoDemandError.at(name, line, "SETTLEMENT_DATE,SETTLEMENT_PERIOD",
                                 f"each settlement period once; {got} is also on line {previous}",
                                 note=f" ({what})")
    want_day, want_sp = cal.from_utc([before[i] + np.timedelta64(30, "m")])
    raise NesoDemandError.at(name, line, "SETTLEMENT_DATE,SETTLEMENT_PERIOD",
                             f"{want_day[0]:%Y-%m-%d} period {want_sp[0]} (rows in settlement order, none "
                             f"missing, after line {previous})", got)


def read_neso_demand(path, columns=None, *, block_size: int = DEFAULT_BLOCK_SIZE) -> xr.Dataset:
    """Read a NESO demand file strictly (module docstring).

    Parameters
    ----------
    path : path-like
        Plain or ``.gz`` CSV.
    columns : sequence of str, optional
        Value columns to read; default all.
    block_size : int
        Bytes of text parsed at a time.

    Returns
    -------
    Dataset
        Dimension ``time`` (UTC period starts, :data:`tomlib.cube.TIME_ATTRS`) with ``settlement_date``
        and ``settlement_period`` coordinates; one float64 variable per column [MW] in file order.

    Raises
    ------
    NesoDemandError
        Naming the file, line and field of the first fault; nothing is returned then.
    """
    parts = list(iter_neso_demand(path, columns, block_size=block_size))
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    names = [c for c in frame.columns if c not in ("time", "settlement_date", "settlement_period", "line")]
    ds = xr.Dataset({c: ("time", frame[c].to_numpy(dtype=np.float64),
                         {"units": "MW", "long_name": COLUMNS.get(c, c) + " (mean over the half hour)"})
                     for c in names},
                    coords={"time": ("time", frame["time"].to_numpy(dtype="datetime64[ns]"))})
    ds.attrs["source"] = Path(path).name
    return cube.add_settlement_coords(ds)


def _number_text(values: np.ndarray) -> np.ndarray:
    """Whole numbers without a decimal point (as NESO writes them), others in shortest round-trip form."""
    v = np.asarray(values, dtype=np.float64)
    whole = np.isfinite(v) & (np.abs(v) < 2**53) & (v == np.round(v))
    out = np.asarray(pc.cast(pa.array(v), pa.string()).to_numpy(zero_copy_only=False), dtype=object)
    out[whole] = v[whole].astype(np.int64).astype(str)
    return out


def write_neso_demand(ds: xr.Dataset, path, columns=None) -> Path:
    """Write demand (as :func:`read_neso_demand` returns it) in NESO's layout, atomically.

    Dates are written ``YYYY-MM-DD`` without quotes, whole numbers without a decimal point; a ``.gz``
    target is gzip-compressed (level 9, no timestamp, so the bytes are reproducible).

    Raises
    ------
    NesoDemandError
        If the Dataset would not read back (checked with the reader's rules before anything is written):
        non-finite values, a time axis with gaps or part days, values outside their column's range.
    """
    path = Path(path)
    names = list(columns) if columns is not None else [str(v) for v in ds.data_vars]
    for c in names:
        if c not in ds.data_vars or ds[c].dims != ("time",):
            raise NesoDemandError(f"{path.name}: variable {c!r} on ('time',) is missing", source=path.name)
        if ds[c].attrs.get("units", "MW") != "MW":
            raise NesoDemandError(f"{path.name}: variable {c} is in {ds[c].attrs['units']!r}; the file holds MW",
                                  source=path.name)
    times = pd.DatetimeIndex(ds["time"].values)
    dates, periods = cal.from_utc(times)
    cols = [pa.array(dates.strftime("%Y-%m-%d").tolist(), pa.string()), pa.array(periods.astype(str).tolist()),
            *(pa.array(_number_text(ds[c].values).tolist(), pa.string()) for c in names)]
    text = ",".join((*KEY_COLUMNS, *names)) + "\n"
    if len(times):
        text += "\n".join(pc.binary_join_element_wise(*cols, ",").to_pylist()) + "\n"
    data = text.encode("ascii")
    with atomic_target(path) as tmp:
        tmp.write_bytes(gzip.compress(data, compresslevel=9, mtime=0) if path.suffix == ".gz" else data)
        for _ in iter_neso_demand(tmp, names, name=path.name):  # the reader's rules, before the rename
            pass
    return path
