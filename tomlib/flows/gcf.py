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

The reader is strict: wrong header, an empty or malformed field, a date outside
:data:`tomlib.flows.DATE_RANGE`, a period that does not exist on its date, a duplicate (date, run,
period, gsp_group, type), an empty file or a last line without a line feed (a truncated file) raises
:class:`GcfError` (a ``ValueError``) naming the file, line and field, e.g. ``"gcf.csv: line 3: field
period: settlement period 47 does not exist on 2026-03-29 (valid: 1..46)"``; nothing is returned then.

Streaming: the file is read a block of lines at a time (:func:`tomlib.flows._common.blocks`) and each
block checked with vectorised pyarrow/numpy operations; :func:`iter_gcf` yields the checked blocks (the
memory-light path; duplicates across blocks are found by :func:`read_gcf`, which keeps a 16-byte key
and line per record for that). The writer checks what it wrote with the reader's rules before it
replaces its target atomically.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import xarray as xr

from tomlib import calendar
from tomlib._io import atomic_target
from tomlib.flows._common import (
    DATE_RANGE,
    DEFAULT_BLOCK_SIZE,
    FlowError,
    blocks,
    encode,
    fields,
    first_true,
    matches,
)

__all__ = ["COLUMNS", "GCF_TYPES", "GcfError", "gcf_records", "iter_gcf", "read_gcf", "write_gcf"]

COLUMNS = ("date", "run", "period", "gsp_group", "type", "value")
GCF_TYPES = ("legacy_gcf", "mhhs_import_gcf", "mhhs_export_gcf")
_RUNS = ("II", "SF", "R1", "R2", "R3", "RF", "DF")
_GSP_GROUPS = ("_A", "_B", "_C", "_D", "_E", "_F", "_G", "_H", "_J", "_K", "_L", "_M", "_N", "_P")
_TYPE_OF_DIRECTION = {"import": "mhhs_import_gcf", "export": "mhhs_export_gcf"}
_KEY = "date,run,period,gsp_group,type"


class GcfError(FlowError):
    """A GCF file (or records to write as one) is not valid."""


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
        raise GcfError(f"gcf_records: run must be one of {', '.join(_RUNS)}, got {run!r}")
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
    GcfError
        If the records would not read back (the written text is checked with the reader's rules
        before it replaces the target; nothing is written then).
    """
    path = Path(path)
    missing = [c for c in COLUMNS if c not in records.columns]
    if missing:
        raise GcfError(f"write_gcf: records lack column(s) {missing}; expected {list(COLUMNS)}")
    table = records[list(COLUMNS)].copy()
    table["date"] = pd.DatetimeIndex(table["date"]).strftime("%Y-%m-%d")
    text = table.astype({"period": np.int64, "value": float}).to_csv(index=False, lineterminator="\n",
                                                                      float_format=_shortest)
    with atomic_target(path) as tmp:
        tmp.write_text(text, encoding="ascii")
        _collect(iter_gcf(tmp, name=str(path)), str(path))
    return path


def _shortest(value) -> str:
    # shortest text that reads back to the same float
    return repr(float(value))


def read_gcf(path, *, block_size: int = DEFAULT_BLOCK_SIZE) -> pd.DataFrame:
    """Read a GCF file strictly (module docstring).

    Returns
    -------
    DataFrame
        Columns :data:`COLUMNS` plus ``time`` (UTC start of the period); ``date`` a Timestamp,
        ``period`` int, ``value`` float.
    """
    return _collect(iter_gcf(path, block_size=block_size), str(path))


def _fail(where: str, line: int, field: str, msg: str) -> GcfError:
    return GcfError(f"{where}: line {int(line)}: field {field}: {msg}", source=where, line=int(line), field=field)


def iter_gcf(path, *, block_size: int = DEFAULT_BLOCK_SIZE, name: str | None = None) -> Iterator[pd.DataFrame]:
    """Stream a GCF file as checked blocks of records (the memory-light path).

    Yields
    ------
    DataFrame
        Columns of :func:`read_gcf` plus ``line``. A record repeated in a later block is only found
        by :func:`read_gcf`.
    """
    path = Path(path)
    where = name or str(path)
    header = False
    for block in blocks(path, GcfError, block_size, name=where):
        data, numbers, skip = block.data, block.line_numbers, 0
        if not header:
            got = block.text(0)
            if got != ",".join(COLUMNS):
                raise GcfError(f"{where}: line 1: header must be {','.join(COLUMNS)}, got {got}", source=where, line=1)
            header, skip = True, 1
            data, numbers = data[block.starts[1]:] if len(block) > 1 else b"", numbers[1:]
        if len(numbers):
            yield _block(block, data, numbers, block.count(",")[skip:], where)
    if not header:
        raise GcfError(f"{where}: empty file; expected the header line {','.join(COLUMNS)}", source=where)


def _block(block, data: bytes, lines: np.ndarray, counts: np.ndarray, where: str) -> pd.DataFrame:
    bad = first_true(counts != len(COLUMNS) - 1)
    if bad is not None:
        raise _fail(where, lines[bad], ",".join(COLUMNS[min(counts[bad] + 1, 5):]) or "value",
                    f"the line has {counts[bad] + 1} fields, expected {len(COLUMNS)}: "
                    f"{block.text(lines[bad] - block.first_line)!r}")
    f = fields(block, data, list(COLUMNS), ",", GcfError, "the line", lines, counts=counts)
    for col in COLUMNS:
        i = first_true(pc.equal(pc.utf8_trim_whitespace(f[col]), "").to_numpy(zero_copy_only=False))
        if i is not None:
            raise _fail(where, lines[i], col, "empty; expected a value")
    codes, uniq = encode(f["date"])
    s = pd.Series(uniq, dtype=object).astype(str)
    iso = pd.to_datetime(s.where(s.str.fullmatch(r"\d{4}-\d{2}-\d{2}"), ""), format="%Y-%m-%d", errors="coerce")
    dmy = pd.to_datetime(s.where(s.str.fullmatch(r"\d{2}/\d{2}/\d{4}"), ""), format="%d/%m/%Y", errors="coerce")
    days = iso.fillna(dmy).to_numpy().astype("datetime64[ns]")
    bad = np.isnat(days)
    if bad.any():
        u = int(np.argmax(bad))
        raise _fail(where, lines[int(np.argmax(codes == u))], "date", f"expected YYYY-MM-DD or DD/MM/YYYY, got {uniq[u]!r}")
    lo, hi = (np.datetime64(x, "ns") for x in DATE_RANGE)
    bad = (days < lo) | (days > hi)
    if bad.any():
        u = int(np.argmax(bad))
        raise _fail(where, lines[int(np.argmax(codes == u))], "date",
                    f"expected a date from {DATE_RANGE[0]:%Y-%m-%d} to {DATE_RANGE[1]:%Y-%m-%d}, got {uniq[u]!r}")
    cat = {}
    for col, allowed in (("run", _RUNS), ("gsp_group", _GSP_GROUPS), ("type", GCF_TYPES)):
        c, u = encode(f[col])
        pos = pd.Index(allowed).get_indexer(u.astype(str))
        if (pos < 0).any():
            k = int(np.argmax(pos < 0))
            raise _fail(where, lines[int(np.argmax(c == k))], col,
                        f"expected one of {', '.join(allowed)}, got {u[k]!r}")
        cat[col] = (pos[c], np.asarray(allowed, dtype=object)[pos[c]])
    i = first_true(~matches(f["period"], r"\d{1,2}"))
    if i is not None:
        raise _fail(where, lines[i], "period", f"expected an integer 1..50, got {f['period'][i].as_py()!r}")
    period = pc.cast(f["period"], pa.int64()).to_numpy()
    n = np.asarray(calendar.periods_in_day(days)).reshape(-1)[codes]
    bad = (period < 1) | (period > n)
    if bad.any():
        i = int(np.argmax(bad))
        raise _fail(where, lines[i], "period", f"settlement period {period[i]} does not exist on "
                                               f"{pd.Timestamp(days[codes[i]]):%Y-%m-%d} (valid: 1..{n[i]}); "
                                               "expected a period of the day")
    number = matches(f["value"], r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
    value = np.full(len(lines), np.nan)
    if number.any():
        value[number] = pc.cast(pc.filter(f["value"], pa.array(number)), pa.float64()).to_numpy(zero_copy_only=False)
    bad = ~np.isfinite(value)
    if bad.any():
        i = int(np.argmax(bad))
        raise _fail(where, lines[i], "value", f"expected a finite number, got {f['value'][i].as_py()!r}")
    first = calendar.to_utc(days, 1).to_numpy()
    date = days[codes]
    return pd.DataFrame({"date": date, "run": cat["run"][1].astype(str), "period": period,
                         "gsp_group": cat["gsp_group"][1].astype(str), "type": cat["type"][1].astype(str),
                         "value": value, "time": first[codes] + (period - 1) * np.timedelta64(30, "m"),
                         "line": lines,
                         "_key": ((((date.astype("datetime64[D]").astype(np.int64) * 8 + cat["run"][0]) * 64
                                   + period) * 16 + cat["gsp_group"][0]) * 4 + cat["type"][0])})


def _collect(parts: Iterator[pd.DataFrame], where: str) -> pd.DataFrame:
    frames = list(parts)
    if not frames:
        return pd.DataFrame({"date": pd.Series([], dtype="datetime64[ns]"), "run": pd.Series([], dtype=str),
                             "period": pd.Series([], dtype=np.int64), "gsp_group": pd.Series([], dtype=str),
                             "type": pd.Series([], dtype=str), "value": pd.Series([], dtype=float),
                             "time": pd.Series([], dtype="datetime64[ns]")})
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    key = out["_key"].to_numpy()
    order = np.argsort(key, kind="stable")
    same = np.flatnonzero(key[order][1:] == key[order][:-1])
    if same.size:
        # the earliest line that repeats an earlier record
        second = order[same + 1]
        k = int(np.argmin(out["line"].to_numpy()[second]))
        a, b = order[same[k]], second[k]
        raise _fail(where, out["line"].iloc[b], _KEY, f"duplicate of line {out['line'].iloc[a]}; expected each "
                                                      "(date, run, period, gsp_group, type) once")
    return out.drop(columns=["line", "_key"])
