"""Half-hourly consumption files: a D0036/D0275-like record layout and two plain CSV layouts.

Reading gives the meter cube of :mod:`tomlib.cube` (:func:`tomlib.cube.meter_cube`, checked by
:func:`tomlib.cube.validate_meter_cube`); writing takes one. Round trips are identical, 46- and
50-period days included. Settlement periods are converted to UTC only through :mod:`tomlib.calendar`.

Layouts
-------
``"hhc"`` -- **our D0036/D0275-like layout** [INF]. The DTC flows D0036 ("Validated half hourly
advances for inclusion in aggregated supplier matrix") and D0275 carry half-hourly energy per MPAN,
settlement day and period; their exact group layout is in the Data Transfer Catalogue, which we could
not read, so this is our own layout built the way DTC flows are (pipe-delimited records ending with
``|``, LF line ends, ASCII, a ZHV header and a ZPT trailer)::

    ZHV|file_id|HHC001|from_role|from_participant|to_role|to_participant|created_at|test_flag|
    MPD|mpan_core|gsp_group|measurement_quantity|units|        one per MPAN (group header)
    SDY|settlement_date|period_count|                          one per settlement day of the MPAN
    HHV|settlement_period|energy|quality|estimation_reason|    one per period, 1..period_count in order
    ZPT|file_id|record_count|mpan_count|completed_at|

- ``created_at``/``completed_at`` ``CCYYMMDDHHMMSS`` UTC; ``settlement_date`` ``CCYYMMDD`` (local UK
  date), ``period_count`` the day's 46, 48 or 50 periods and exactly that many HHV records follow;
  days of an MPAN in increasing order.
- ``gsp_group`` ``_A``..``_P`` (DI-037); ``measurement_quantity`` AI, AE, RI or RE (DI-052);
  ``units`` ``kWh`` (the unit of ``energy``; anything else is refused, never converted).
- ``energy`` a non-negative decimal number [kWh] or empty for no value; ``quality`` the DI-083 label
  (``A``, ``E``, ``E0``..``E9``, ``ZE``.., ``A1``.., ``EA13``; :data:`tomlib.cube.QUALITY_CODES`), empty
  exactly when ``energy`` is; ``estimation_reason`` the DI-076 label or empty (none).
- ``record_count`` = the lines between ZHV and ZPT, ``mpan_count`` = the MPD records (both checked).

``"csv_period"`` -- a plain CSV by settlement date and period, header line then one row per MPAN and
period::

    mpan,settlement_date,settlement_period,energy_kwh,quality,estimation_reason
    1200023305967,2026-03-29,3,0.123,A,

``"csv_utc"`` -- a plain CSV by UTC start of the period::

    mpan,utc_start,energy_kwh,quality,estimation_reason
    1200023305967,2026-03-29T01:00:00Z,0.123,A,

CSV columns may come in any order; ``quality`` and ``estimation_reason`` are optional (without
``quality`` a value is ``A``, as :func:`tomlib.cube.meter_cube` codes true energy). The energy column
is ``energy_kwh``: a column ``energy_mwh``, ``energy_wh`` or ``energy`` is refused (wrong or unstated
units). Dates ``YYYY-MM-DD`` (local UK), UTC starts ``YYYY-MM-DDTHH:MM:SSZ`` on a half hour.

Reading
-------
Every reader takes the **standing data** of the MPANs (a frame indexed by MPAN, or with an ``mpan``
column, with the columns of :data:`tomlib.cube.STANDING_COORDS`; :func:`standing_of` makes it from a
cube): the file carries energy, the standing data the MPAN's GSP group, supplier, LLFC, ... An MPAN
without standing data is an error. The cube's time axis runs from the first to the last period in the
file (whole days for ``hhc``); its MPANs are in order of first appearance. A (MPAN, period) cell the
file does not hold is MISSING (quality 0, NaN), which is what the cube calls "no value".

Checks (each an :class:`HhConsumptionError` naming the file, line and field and what was expected):
MPAN core of 13 digits with a valid check digit, in the standing data (for ``hhc`` also the GSP group
and measurement quantity agree with it); a known GSP group; dates that exist and lie in
:data:`tomlib.flows.DATE_RANGE`; a settlement period that exists on its day (no 49 on a 48-period day,
no 47 on the 46-period spring day); a UTC start on a half hour; energy a finite non-negative number
in kWh; a known quality and estimation reason label; no (MPAN, period) twice; the header; an empty
file; a last line without a line feed or (``hhc``) a missing trailer, i.e. a truncated file. Nothing
is returned unless the whole file is valid.

Streaming and memory
--------------------
Files (plain or ``.gz``) are read a block of ``block_size`` bytes at a time, cut at a line end (for
``hhc`` at a record group, so a day never spans two blocks; :func:`tomlib.flows._common.blocks`). Each
block is split by pyarrow's CSV parser and checked with vectorised pyarrow/numpy operations, then
reduced to compact arrays before the next block is read: MPAN code and half-hour index (int32), energy
(float64), quality and reason (uint8), line (int64), 26 bytes a value instead of a ~40-byte text line.
So :func:`read_hh_consumption` holds one block and its parsed fields (measured: about 25 x
``block_size`` of RSS, ~100 MB at the default 4 MiB), 26 bytes per value and the cube (10 bytes per
cell). :func:`iter_hh_records` yields the checked blocks for a caller that aggregates on the fly
without building the cube (the memory-light path: one block at a time); checks that need the whole
file (a cell repeated in another block, the ``hhc`` trailer counts) run at the end, so such a caller
must not act on blocks before the iterator is exhausted if it needs all-or-nothing.

Writers (:func:`write_hh_consumption`) stream too, a block of MPANs at a time, into a temporary file
that replaces the target only when complete (:func:`tomlib._io.atomic_target`); what a writer cannot
write (negative energy, a part day in ``hhc``) raises before anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import xarray as xr

from tomlib import calendar as cal
from tomlib import cube
from tomlib import mpan as mpan_mod
from tomlib._io import atomic_target
from tomlib.flows._common import (
    DEFAULT_BLOCK_SIZE,
    GSP_GROUPS,
    TIMESTAMP,
    Block,
    FlowError,
    blocks,
    check_date_range,
    encode,
    fields,
    first_rows,
    first_true,
    matches,
    open_bytes,
    parse_dates,
    period_starts,
    zhv_fields,
)

__all__ = [
    "CSV_COLUMNS",
    "FLOW_VERSION",
    "LAYOUTS",
    "HhConsumptionError",
    "HhRecords",
    "iter_hh_records",
    "read_hh_consumption",
    "standing_of",
    "write_hh_consumption",
]

#: The layouts (module docstring).
LAYOUTS = ("hhc", "csv_period", "csv_utc")
#: Flow version of the ``hhc`` layout (ours, not a DTC flow id).
FLOW_VERSION = "HHC001"
#: Columns of the CSV layouts: (required, optional).
CSV_COLUMNS = {
    "csv_period": (("mpan", "settlement_date", "settlement_period", "energy_kwh"), ("quality", "estimation_reason")),
    "csv_utc": (("mpan", "utc_start", "energy_kwh"), ("quality", "estimation_reason")),
}
_KEY_FIELDS = {"csv_period": "mpan,settlement_date,settlement_period", "csv_utc": "mpan,utc_start",
               "hhc": "2 (settlement_period)"}
_MQ = ("AI", "AE", "RI", "RE")
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
#: Record fields after the record type: (name, RE2 pattern or None, what is expected).
_RECORDS = {
    "ZHV": zhv_fields(FLOW_VERSION),
    "MPD": (("mpan", None, ""), ("gsp_group", None, ""), ("measurement_quantity", None, ""), ("units", None, "")),
    "SDY": (("settlement_date", None, ""), ("period_count", r"\d{1,2}", "a period count 46, 48 or 50")),
    "HHV": (("settlement_period", None, ""), ("energy", None, ""), ("quality", None, ""),
            ("estimation_reason", None, "")),
    "ZPT": (("file_id", r"[0-9A-Za-z]{1,10}", "the file id of the ZHV"),
            ("record_count", r"\d{1,12}", "the number of records between ZHV and ZPT"),
            ("mpan_count", r"\d{1,9}", "the number of MPD records"),
            ("completed_at", TIMESTAMP, "a CCYYMMDDHHMMSS date-time")),
}
_KINDS = ("MPD", "SDY", "HHV", "ZPT", "ZHV")
_START = 5  # before the first line
#: What may follow each record kind.
_NEXT = {0: (1,), 1: (2,), 2: (2, 1, 0, 3), 3: (), 4: (0, 3), _START: (4,)}


class HhConsumptionError(FlowError):
    """A half-hourly consumption file (or a cube to write as one) is not valid."""


# ------------------------------------------------------------------------------------------ helpers


def standing_of(ds: xr.Dataset) -> pd.DataFrame:
    """Standing data of a meter cube: one row per MPAN (index ``mpan``), one column per coordinate on ``mpan``."""
    cols = {c: np.asarray(ds[c].values) for c in ds.coords if ds[c].dims == ("mpan",) and c != "mpan"}
    return pd.DataFrame(cols, index=pd.Index(np.asarray(ds["mpan"].values, dtype=str), name="mpan"))


def _standing_table(standing: pd.DataFrame | xr.Dataset) -> pd.DataFrame:
    if isinstance(standing, xr.Dataset):
        return standing_of(standing)
    table = standing.set_index("mpan") if "mpan" in standing.columns else standing.copy()
    table.index = pd.Index(table.index.astype(str), name="mpan")
    return table


@dataclass
class HhRecords:
    """One checked block of a half-hourly file, as compact arrays (one entry per value).

    Attributes
    ----------
    mpan : ndarray of int64
        Position of the value's MPAN in ``mpans``.
    mpans : ndarray of str
        The distinct MPAN cores of the block.
    time : ndarray of datetime64[ns]
        UTC start of the settlement period.
    energy : ndarray of float64
        [kWh]; NaN = no value (quality MISSING).
    quality, estimation_reason : ndarray of uint8
        DI-083 / DI-076 codes of :mod:`tomlib.cube`.
    line : ndarray of int64
        Line of the value in the file.
    """

    mpan: np.ndarray
    mpans: np.ndarray
    time: np.ndarray
    energy: np.ndarray
    quality: np.ndarray
    estimation_reason: np.ndarray
    line: np.ndarray


class _Ctx:
    """The file being read: its name, layout, standing data, and the errors found in a block."""

    def __init__(self, name: str, layout: str, standing: pd.DataFrame | None):
        self.name, self.layout, self.standing = name, layout, standing
        self._errors: list[tuple[int, HhConsumptionError]] = []

    def fail(self, line, field, expected, got=None, note=""):
        return HhConsumptionError.at(self.name, line, field, expected, got, note=note)

    def candidate(self, line: int, error: HhConsumptionError) -> None:
        self._errors.append((int(line), error))

    def raise_first(self) -> None:
        """Raise the error of the earliest line found so far, if any."""
        if self._errors:
            _, err = min(self._errors, key=lambda x: x[0])
            self._errors.clear()
            raise err


def _check_mpans(ctx: _Ctx, values: pa.Array, lines: np.ndarray, field: str) -> tuple[np.ndarray, np.ndarray]:
    """13 digits, a valid check digit, and in the standing data; returns (codes, distinct MPANs)."""
    codes, uniq = encode(values)
    text = uniq.astype(str)
    ok = np.asarray(mpan_mod.is_valid(text), dtype=bool).reshape(-1)
    if not ok.all():
        u = int(np.argmax(~ok))
        i = int(np.argmax(codes == u))
        core = text[u]
        detail = ""
        if re.fullmatch(r"\d{13}", core):
            detail = f" (check digit {core[-1]}, expected {int(mpan_mod.check_digit(core[:12]))})"
        raise ctx.fail(lines[i], field, "a 13-digit MPAN core with a valid check digit", core, note=detail)
    if ctx.standing is not None:
        known = ctx.standing.index.get_indexer(text) >= 0
        if not known.all():
            u = int(np.argmax(~known))
            i = int(np.argmax(codes == u))
            raise ctx.fail(lines[i], field, "an MPAN of the standing data (there is none for it)", text[u])
    return codes, text


def _parse_dates(ctx: _Ctx, values: pa.Array, lines: np.ndarray, field: str, fmt: str, shown: str):
    pattern = r"\d{4}-\d{2}-\d{2}" if fmt == "%Y-%m-%d" else r"\d{8}"
    return parse_dates(HhConsumptionError, ctx.name, values, lines, field, ((pattern, fmt),), shown)


def _parse_utc(ctx: _Ctx, values: pa.Array, lines: np.ndarray, field: str) -> np.ndarray:
    codes, uniq = encode(values)
    s = pd.Series(uniq, dtype=object).astype(str)
    shaped = s.str.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z").to_numpy(dtype=bool)
    parsed = pd.to_datetime(s.where(shaped, ""), format="%Y-%m-%dT%H:%M:%SZ", errors="coerce")
    t = parsed.to_numpy().astype("datetime64[ns]")
    bad = np.array(parsed.isna().to_numpy())
    bad[~bad] = (t[~bad] - np.datetime64(0, "ns")) % np.timedelta64(30, "m") != np.timedelta64(0, "ns")
    if bad.any():
        u = int(np.argmax(bad))
        i = int(np.argmax(codes == u))
        raise ctx.fail(lines[i], field, "the UTC start of a settlement period, YYYY-MM-DDTHH:MM:SSZ on a half hour",
                       uniq[u])
    if len(t):
        check_date_range(HhConsumptionError, ctx.name, cal.from_utc(t)[0].to_numpy(), lines[first_rows(codes)],
                         field)
    return t[codes]


def _labels_to_codes(ctx: _Ctx, values: pa.Array, lines: np.ndarray, field: str, table: dict, none: str,
                     expected: str) -> np.ndarray:
    codes, uniq = encode(values)
    text = uniq.astype(str)
    idx = pd.Index(list(table)).get_indexer(text)
    labelled = text != ""
    unknown = labelled & ((idx < 0) | (text == none))
    if unknown.any():
        u = int(np.argmax(unknown))
        i = int(np.argmax(codes == u))
        raise ctx.fail(lines[i], field, expected, text[u])
    return np.where(labelled, idx, table[none]).astype(np.uint8)[codes]


def _parse_values(ctx: _Ctx, energy: pa.Array, quality: pa.Array | None, reason: pa.Array | None,
                  lines: np.ndarray, names: tuple[str, str, str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Energy [kWh] (NaN for empty), DI-083 and DI-076 codes; raise naming the first bad line."""
    f_energy, f_quality, f_reason = names
    empty = pc.equal(energy, "").to_numpy(zero_copy_only=False)
    i = first_true(~matches(energy, _NUMBER) & ~empty)
    if i is not None:
        raise ctx.fail(lines[i], f_energy, "a number of kWh (or empty for no value)", energy[i].as_py())
    values = pc.cast(pc.if_else(pc.equal(energy, ""), "0", energy), pa.float64()).to_numpy(zero_copy_only=False)
    values = np.where(empty, np.nan, values)
    i = first_true(~empty & ~np.isfinite(values))
    if i is not None:
        raise ctx.fail(lines[i], f_energy, "a finite number of kWh", energy[i].as_py())
    i = first_true(~empty & (values < 0))
    if i is not None:
        raise ctx.fail(lines[i], f_energy, "a non-negative energy in kWh (import and export are separate MPANs)",
                       energy[i].as_py())
    if quality is None:
        q = np.where(empty, cube.MISSING, cube.QUALITY_CODES["A"]).astype(np.uint8)
    else:
        q = _labels_to_codes(ctx, quality, lines, f_quality, cube.QUALITY_CODES, "MISSING",
                             "a DI-083 quality label (A, E, E0..E9, ZE, ZE1..ZE3, A1..A3, AAE1..3, EAE1..3, EA1..EA13)")
        i = first_true(empty & (q != cube.MISSING))
        if i is not None:
            raise ctx.fail(lines[i], f_quality, "no quality for a period without energy", quality[i].as_py())
        i = first_true(~empty & (q == cube.MISSING))
        if i is not None:
            raise ctx.fail(lines[i], f_quality, "a DI-083 quality label for the energy given", quality[i].as_py())
    if reason is None:
        r = np.zeros(len(values), dtype=np.uint8)
    else:
        labels = ", ".join(x for x in cube.ESTIMATION_REASONS if x != "NONE")
        r = _labels_to_codes(ctx, reason, lines, f_reason, cube.ESTIMATION_REASONS, "NONE",
                             f"a DI-076 estimation reason ({labels}) or empty")
    return values, q, r


# ------------------------------------------------------------------------------------------ CSV layouts


def _csv_header(ctx: _Ctx, line: str) -> list[str]:
    required, optional = CSV_COLUMNS[ctx.layout]
    cols = line.split(",")
    for c in cols:
        if c in required or c in optional:
            continue
        if c.lower().startswith("energy"):
            raise ctx.fail(1, c, "the column energy_kwh (energy per settlement period in kWh; other units "
                                 "are not converted)", c)
        raise ctx.fail(1, c, f"a column of {', '.join(required + optional)}", c)
    dup = sorted({c for c in cols if cols.count(c) > 1})
    if dup:
        raise ctx.fail(1, dup[0], "each column once", line)
    missing = [c for c in required if c not in cols]
    if missing:
        raise ctx.fail(1, missing[0], f"a header with the columns {', '.join(required)}", line)
    return cols


def _iter_csv(ctx: _Ctx, path: Path, block_size: int) -> Iterator[HhRecords]:
    cols = None
    for block in blocks(path, HhConsumptionError, block_size):
        data, numbers, skip = block.data, block.line_numbers, 0
        if cols is None:
            cols = _csv_header(ctx, block.text(0))
            skip = 1
            data, numbers = data[block.starts[1]:] if len(block) > 1 else b"", numbers[1:]
        if not len(numbers):
            continue
        f = fields(block, data, cols, ",", HhConsumptionError, "the row", numbers,
                   counts=block.count(",")[skip:])
        codes, mpans = _check_mpans(ctx, f["mpan"], numbers, "mpan")
        if ctx.layout == "csv_period":
            d_codes, days = _parse_dates(ctx, f["settlement_date"], numbers, "settlement_date", "%Y-%m-%d",
                                         "YYYY-MM-DD")
            times, _ = period_starts(HhConsumptionError, ctx.name, f["settlement_period"], d_codes, days, numbers,
                                     "settlement_period")
        else:
            times = _parse_utc(ctx, f["utc_start"], numbers, "utc_start")
        energy, q, r = _parse_values(ctx, f["energy_kwh"], f.get("quality"), f.get("estimation_reason"), numbers,
                                     ("energy_kwh", "quality", "estimation_reason"))
        yield HhRecords(codes, mpans, times, energy, q, r, numbers)
    if cols is None:
        raise HhConsumptionError(f"{ctx.name}: empty file; expected a header line "
                                 f"({','.join(CSV_COLUMNS[ctx.layout][0])}, ...)", source=ctx.name)


# ------------------------------------------------------------------------------------------ hhc layout


def _record(ctx: _Ctx, block: Block, mask: np.ndarray, kind: str, counts: np.ndarray) -> dict[str, pa.Array]:
    """The fields of the ``kind`` records of a block (checked against their patterns)."""
    spec = _RECORDS[kind]
    numbers = block.line_numbers[mask]
    f = fields(block, block.select(mask), ["_kind", *(s[0] for s in spec), "_end"], "|", HhConsumptionError,
               f"a {kind} record", numbers, counts=counts[mask])
    for k, (name, pattern, what) in enumerate(spec, start=2):
        if pattern is not None:
            i = first_true(~matches(f[name], pattern))
            if i is not None:
                raise ctx.fail(numbers[i], f"{k} ({name})", what, f[name][i].as_py())
    return f


def _timestamp_ok(ctx: _Ctx, value: str, line: int, field: str) -> None:
    if pd.isna(pd.to_datetime(value, format="%Y%m%d%H%M%S", errors="coerce")):
        raise ctx.fail(line, field, "a valid CCYYMMDDHHMMSS date-time", value)


@dataclass
class _HhcState:
    header: dict | None = None
    prev_kind: int = _START
    group: tuple | None = None  # (mpan, last day) of the MPD group a block continues
    n_records: int = 0
    n_mpd: int = 0


def _hhc_cut(buf: bytes) -> int:
    """Where the next block starts: at the last MPD, SDY or ZPT record, so a day stays in one block."""
    return max(buf.rfind(b"\nMPD|"), buf.rfind(b"\nSDY|"), buf.rfind(b"\nZPT|")) + 1


def _hhc_block(ctx: _Ctx, st: _HhcState, block: Block) -> HhRecords:
    n = len(block)
    numbers = block.line_numbers
    kinds = np.full(n, -1, dtype=np.int64)
    for k, name in enumerate(_KINDS):
        kinds[block.lines_starting(name.encode() + b"|")] = k
    # record order: each kind may only follow certain kinds
    prev = np.r_[st.prev_kind, kinds[:-1]]
    allowed = np.zeros((6, 6), dtype=bool)  # column 5: an unknown kind (-1)
    for p, nxt in _NEXT.items():
        allowed[p, list(nxt)] = True
    i = first_true(~allowed[prev, kinds])
    if i is not None:
        want = " or ".join(_KINDS[k] for k in _NEXT[int(prev[i])]) or "nothing after the ZPT trailer"
        raise HhConsumptionError(f"{ctx.name}, line {numbers[i]}: expected a {want} record, got "
                                 f"{block.text(i)[:40]!r}", source=ctx.name, line=int(numbers[i]))
    if block.last and kinds[-1] != 3:
        raise HhConsumptionError(f"{ctx.name}, line {numbers[-1]}: expected a ZPT trailer as the last record "
                                 "(the file looks truncated)", source=ctx.name, line=int(numbers[-1]))
    st.prev_kind = int(kinds[-1])
    counts = block.count("|")
    idx = np.arange(n)
    is_mpd, is_sdy, is_hhv = kinds == 0, kinds == 1, kinds == 2

    if kinds[0] == 4:  # the header
        z = _record(ctx, block, idx == 0, "ZHV", counts)
        st.header = {name: z[name][0].as_py() for name, _, _ in _RECORDS["ZHV"]}
        _timestamp_ok(ctx, st.header["created_at"], 1, "8 (created_at)")

    # MPD: the MPAN and what the file says about it, checked against the standing data
    mp_n = numbers[is_mpd]
    f = _record(ctx, block, is_mpd, "MPD", counts)
    mpd_codes, mpd_uniq = _check_mpans(ctx, f["mpan"], mp_n, "2 (mpan)")
    mpan = mpd_uniq[mpd_codes]
    gsp, mq, units = (np.asarray(f[c].to_pylist(), dtype=object).astype(str)
                      for c in ("gsp_group", "measurement_quantity", "units"))
    for values, field, allowed_values, what in ((gsp, "3 (gsp_group)", GSP_GROUPS, "a GSP group id"),
                                                (mq, "4 (measurement_quantity)", _MQ, "a measurement quantity")):
        i = first_true(~np.isin(values, allowed_values))
        if i is not None:
            raise ctx.fail(mp_n[i], field, f"{what} ({', '.join(allowed_values)})", values[i])
    i = first_true(units != "kWh")
    if i is not None:
        raise ctx.fail(mp_n[i], "5 (units)", "kWh (the unit of the energy; other units are not converted)", units[i])
    if ctx.standing is not None and len(mpan):
        rows = ctx.standing.reindex(mpan)
        for values, col, field in ((gsp, "gsp_group", "3 (gsp_group)"),
                                   (mq, "measurement_quantity", "4 (measurement_quantity)")):
            want = rows[col].to_numpy(dtype=str)
            i = first_true(values != want)
            if i is not None:
                raise ctx.fail(mp_n[i], field, f"{want[i]} as in the standing data of MPAN {mpan[i]}", values[i])
    st.n_mpd += int(is_mpd.sum())

    # SDY: the day and its period count
    sd_n = numbers[is_sdy]
    f = _record(ctx, block, is_sdy, "SDY", counts)
    d_codes, d_uniq = _parse_dates(ctx, f["settlement_date"], sd_n, "2 (settlement_date)", "%Y%m%d", "CCYYMMDD")
    days = d_uniq[d_codes]
    count = pc.cast(f["period_count"], pa.int64()).to_numpy()
    n_day = np.asarray(cal.periods_in_day(days)).reshape(-1) if len(days) else np.zeros(0, np.int64)
    i = first_true(count != n_day)
    if i is not None:
        raise ctx.fail(sd_n[i], "3 (period_count)",
                       f"{n_day[i]} (the settlement periods of {pd.Timestamp(days[i]):%Y-%m-%d})",
                       f["period_count"][i].as_py())
    mpd_pos = np.cumsum(is_mpd) - 1  # which MPD of the block a line belongs to (-1: the continued group)
    sdy_pos = np.cumsum(is_sdy) - 1
    if len(days):  # the days of an MPAN strictly increase
        g = mpd_pos[is_sdy]
        prev_day = np.r_[np.datetime64("NaT", "ns"), days[:-1]].astype("datetime64[ns]")
        same = np.r_[False, g[1:] == g[:-1]]
        if g[0] == -1 and st.group is not None:
            same[0], prev_day[0] = True, st.group[1]
        i = first_true(same & ~np.isnat(prev_day) & ~(days > prev_day))
        if i is not None:
            raise ctx.fail(sd_n[i], "2 (settlement_date)", f"a day after {pd.Timestamp(prev_day[i]):%Y-%m-%d} (the "
                           "days of an MPAN in increasing order, each once)", f["settlement_date"][i].as_py())

    # HHV: its position in the day is its period, and a day holds exactly its periods
    hv = np.flatnonzero(is_hhv)
    h_n = numbers[hv]
    f = _record(ctx, block, is_hhv, "HHV", counts)
    sdy_ref = np.maximum.accumulate(np.where(is_sdy, idx, -1))
    pos = hv - sdy_ref[hv]
    h_day = sdy_pos[hv]
    h_count = count[h_day]
    pt = f["settlement_period"]
    numeric = matches(pt, r"\d{1,2}")
    period = np.where(numeric, pc.cast(pc.if_else(pa.array(numeric), pt, "0"), pa.int64()).to_numpy(), -1)
    i = first_true(pos > h_count)
    if i is not None:
        day = f"{pd.Timestamp(days[h_day[i]]):%Y-%m-%d}"
        ctx.candidate(h_n[i], ctx.fail(h_n[i], "2 (settlement_period)", f"a settlement period of {day} "
                                       f"(1..{h_count[i]})", pt[i].as_py(),
                                       note=f"; settlement period {pt[i].as_py()} does not exist on {day}"))
    i = first_true(period != pos)
    if i is not None:
        note = f" (a repeat of line {h_n[i] - 1})" if period[i] == pos[i] - 1 and pos[i] > 1 else ""
        ctx.candidate(h_n[i], ctx.fail(h_n[i], "2 (settlement_period)",
                                       f"settlement period {pos[i]} (the periods of a day in order)",
                                       pt[i].as_py(), note=note))
    if len(days):  # a day with fewer HHV records than periods: the record after its last one is the error
        nonhhv = np.r_[np.flatnonzero(~is_hhv), n]
        sd_idx = np.flatnonzero(is_sdy)
        nxt = nonhhv[np.searchsorted(nonhhv, sd_idx, side="right")]
        got = nxt - sd_idx - 1
        i = first_true(got < count)
        if i is not None:
            at = min(int(nxt[i]), n - 1)
            ctx.candidate(numbers[at], HhConsumptionError(
                f"{ctx.name}, line {numbers[at]}: expected an HHV record for settlement period {got[i] + 1} of "
                f"{pd.Timestamp(days[i]):%Y-%m-%d} ({count[i]} periods), got {block.text(at)[:40]!r}",
                source=ctx.name, line=int(numbers[at])))
    ctx.raise_first()
    energy, q, r = _parse_values(ctx, f["energy"], f["quality"], f["estimation_reason"], h_n,
                                 ("3 (energy)", "4 (quality)", "5 (estimation_reason)"))

    # ZPT: the counts of the whole file
    st.n_records += n
    if kinds[-1] == 3:
        z = _record(ctx, block, idx == n - 1, "ZPT", counts)
        z = {name: z[name][0].as_py() for name, _, _ in _RECORDS["ZPT"]}
        at = int(numbers[-1])
        _timestamp_ok(ctx, z["completed_at"], at, "5 (completed_at)")
        if z["file_id"] != st.header["file_id"]:
            raise ctx.fail(at, "2 (file_id)", f"{st.header['file_id']!r} as in the ZHV", z["file_id"])
        if int(z["record_count"]) != st.n_records - 2:
            raise ctx.fail(at, "3 (record_count)", f"{st.n_records - 2} records between ZHV and ZPT",
                           z["record_count"])
        if int(z["mpan_count"]) != st.n_mpd:
            raise ctx.fail(at, "4 (mpan_count)", f"{st.n_mpd} MPD records", z["mpan_count"])

    # the MPAN of each value: its group's MPD in this block, or the group the block continues
    h_mpd = mpd_pos[hv]
    continued = (h_mpd < 0).any()
    mpans = np.r_[mpd_uniq, [st.group[0]]].astype(str) if continued else mpd_uniq.astype(str)
    code = np.where(h_mpd >= 0, mpd_codes[np.maximum(h_mpd, 0)] if len(mpd_codes) else 0, len(mpd_uniq))
    first = cal.to_utc(days, 1).to_numpy() if len(days) else np.zeros(0, "datetime64[ns]")
    times = first[h_day] + (pos - 1) * np.timedelta64(30, "m")
    if len(mpan):
        st.group = (mpan[-1], np.datetime64("NaT", "ns"))
    if len(days) and (not len(mpan) or np.flatnonzero(is_sdy)[-1] > np.flatnonzero(is_mpd)[-1]):
        st.group = (st.group[0], days[-1])
    return HhRecords(code, mpans, times, energy, q, r, h_n)


def _iter_hhc(ctx: _Ctx, path: Path, block_size: int) -> Iterator[HhRecords]:
    st = _HhcState()
    for block in blocks(path, HhConsumptionError, block_size, crlf=False, cut=_hhc_cut):
        yield _hhc_block(ctx, st, block)
    if st.header is None:
        raise HhConsumptionError(f"{ctx.name}: empty file; expected a ZHV header line", source=ctx.name)


# ------------------------------------------------------------------------------------------ reading


def _layout_of(path: Path, layout: str | None) -> str:
    if layout is not None:
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        return layout
    with open_bytes(path) as fh:
        first = fh.readline(4096).decode("ascii", errors="replace")
    if first == "":
        raise HhConsumptionError(f"{path.name}: empty file; expected a ZHV header or a CSV header line",
                                 source=path.name)
    if first.startswith("ZHV|"):
        return "hhc"
    cols = first.rstrip("\r\n").split(",")
    if "settlement_period" in cols:
        return "csv_period"
    if "utc_start" in cols:
        return "csv_utc"
    raise HhConsumptionError.at(path.name, 1, None, "a ZHV header (hhc layout) or a CSV header with "
                                "settlement_date,settlement_period or utc_start", first.rstrip("\r\n"))


def iter_hh_records(path, standing: pd.DataFrame | xr.Dataset | None = None, *, layout: str | None = None,
                    block_size: int = DEFAULT_BLOCK_SIZE) -> Iterator[HhRecords]:
    """Stream a half-hourly file as checked blocks of values (the memory-light path).

    Parameters
    ----------
    path : path-like
        Plain or ``.gz`` file.
    standing : DataFrame or Dataset, optional
        Standing data to check the MPANs against (None: MPANs are checked for their check digit only).
    layout : {"hhc", "csv_period", "csv_utc"}, optional
        Default: recognised from the first line.
    block_size : int
        Bytes of text parsed at a time.

    Yields
    ------
    HhRecords
        Each block after its own checks. A (MPAN, period) given twice in two blocks is only found by
        :func:`read_hh_consumption`; the ``hhc`` trailer is checked with the last block.
    """
    path = Path(path)
    layout = _layout_of(path, layout)
    ctx = _Ctx(path.name, layout, None if standing is None else _standing_table(standing))
    return _iter_hhc(ctx, path, block_size) if layout == "hhc" else _iter_csv(ctx, path, block_size)


def read_hh_consumption(path, standing: pd.DataFrame | xr.Dataset, *, layout: str | None = None,
                        name: str = "energy", block_size: int = DEFAULT_BLOCK_SIZE) -> xr.Dataset:
    """Read a half-hourly consumption file into a meter cube (module docstring).

    Parameters
    ----------
    path : path-like
        Plain or ``.gz`` file.
    standing : DataFrame or Dataset
        Standing data of (at least) every MPAN of the file, or a cube holding it.
    layout : {"hhc", "csv_period", "csv_utc"}, optional
        Default: recognised from the first line.
    name : str
        Name of the energy variable.
    block_size : int
        Bytes of text parsed at a time.

    Returns
    -------
    Dataset
        Meter cube (mpan, time): ``energy`` [kWh], ``quality``, ``estimation_reason``.

    Raises
    ------
    HhConsumptionError
        Naming the file, line and field of the first fault; nothing is returned then.
    """
    path = Path(path)
    table = _standing_table(standing)
    layout = _layout_of(path, layout)
    # each block is reduced at once to 26 bytes a value: MPAN code and half-hour index (int32), energy,
    # quality and reason codes, line; the block's text and fields are dropped before the next is read
    known = pd.Index([], dtype=object)
    parts = []
    for b in iter_hh_records(path, table, layout=layout, block_size=block_size):
        pos = known.get_indexer(b.mpans)
        if (pos < 0).any():
            known = known.append(pd.Index(b.mpans[pos < 0], dtype=object))
            pos = known.get_indexer(b.mpans)
        hh = ((b.time - _EPOCH) // np.timedelta64(30, "m")).astype(np.int32)
        parts.append((pos.astype(np.int32)[b.mpan], hh, b.energy, b.quality, b.estimation_reason, b.line))
    if not sum(len(p[0]) for p in parts):
        raise HhConsumptionError(f"{path.name}: the file holds no half-hourly values; expected at least one",
                                 source=path.name)
    mpans = np.asarray(known, dtype=str)
    t0 = _EPOCH + int(min(p[1].min() for p in parts if len(p[1]))) * np.timedelta64(30, "m")
    t1 = _EPOCH + int(max(p[1].max() for p in parts if len(p[1]))) * np.timedelta64(30, "m")
    if layout == "hhc":  # whole days
        axis = cal.time_axis(cal.from_utc([t0])[0][0], cal.from_utc([t1])[0][0])
    else:
        axis = pd.DatetimeIndex(np.arange(t0, t1 + np.timedelta64(30, "m"), np.timedelta64(30, "m")), name="time")
    n_t = len(axis)
    hh0 = int((axis[0].to_datetime64() - _EPOCH) // np.timedelta64(30, "m"))
    size = mpans.size * n_t
    energy = np.full(size, np.nan)
    quality = np.full(size, cube.MISSING, dtype=np.uint8)
    reason = np.zeros(size, dtype=np.uint8)
    seen = np.zeros(size, dtype=bool)
    for k, (code, hh, e, q, r, line) in enumerate(parts):
        cell = code.astype(np.int64) * n_t + (hh - hh0)
        ordered = np.sort(cell)
        twice = ordered[1:][ordered[1:] == ordered[:-1]]
        again = cell[seen[cell]]
        if twice.size or again.size:
            c = int(again[0] if again.size else twice[0])
            _duplicate(path.name, layout, c, n_t, axis, mpans, parts, hh0)
        seen[cell] = True
        energy[cell], quality[cell], reason[cell] = e, q, r
        parts[k] = None  # free the block as soon as it is in the cube
    shape = (mpans.size, n_t)
    return cube.meter_cube(energy.reshape(shape), axis, mpans, table, quality=quality.reshape(shape),
                           estimation_reason=reason.reshape(shape), name=name)


_EPOCH = np.datetime64("1995-12-31T00:00", "ns")  # half-hour indices count from here (DATE_RANGE)


def _duplicate(name: str, layout: str, c: int, n_t: int, axis, mpans, parts, hh0) -> None:
    """Raise for the (MPAN, period) cell ``c`` given twice, naming both lines."""
    hits = []
    for part in parts:
        if part is not None:
            code, hh, e, _, _, line = part
            at = np.flatnonzero(code.astype(np.int64) * n_t + (hh - hh0) == c)
            hits += [(int(line[i]), float(e[i])) for i in at]
    (l1, a), (l2, b) = sorted(hits)[:2]
    same = a == b or (np.isnan(a) and np.isnan(b))
    t = pd.Timestamp(axis[c % n_t])
    d, sp = cal.from_utc([t])
    raise HhConsumptionError.at(
        name, l2, _KEY_FIELDS[layout],
        f"each (MPAN, settlement period) once; MPAN {mpans[c // n_t]}, {d[0]:%Y-%m-%d} period {sp[0]} "
        f"({t:%Y-%m-%dT%H:%M}Z) is also on line {l1}",
        note=f" ({'the same value' if same else 'conflicting values'}: {a!r} and {b!r} kWh)")


# ------------------------------------------------------------------------------------------ writing


def _cube_checks(ds: xr.Dataset, name: str, where: str, layout: str) -> None:
    try:
        cube.validate_meter_cube(ds, where=where, name=name)
    except ValueError as exc:
        raise HhConsumptionError(str(exc), source=where) from None
    e = np.asarray(ds[name].values)
    bad = e < 0
    if bad.any():
        m, t = np.argwhere(bad)[0]
        raise HhConsumptionError(f"{where}: {name} must be >= 0 kWh to be written, got {float(e[m, t])!r} for MPAN "
                                 f"{ds['mpan'].values[m]} at {pd.Timestamp(ds['time'].values[t])} UTC", source=where)
    if layout == "hhc":
        _, sp = cal.from_utc(ds["time"].values[[0, -1]])
        last_day = ds["settlement_date"].values[-1]
        if sp[0] != 1 or sp[1] != cal.periods_in_day(pd.Timestamp(last_day)):
            raise HhConsumptionError(f"{where}: the hhc layout carries whole settlement days; the cube runs from "
                                     f"period {sp[0]} to period {sp[1]} of its last day", source=where)


def _label_text(codes: np.ndarray, order: dict, missing: int) -> pa.Array:
    labels = pa.array([("" if code == missing else label) for label, code in order.items()], pa.string())
    return labels.take(pa.array(codes.ravel(), pa.uint8()))


def write_hh_consumption(ds: xr.Dataset, path, *, layout: str = "csv_period", name: str = "energy",
                         file_id: str = "1", from_participant: str = "TOMD", to_participant: str = "TOMS",
                         created_at=None, from_role: str = "D", to_role: str = "X", test_flag: str = "TEST",
                         chunk_rows: int = 1_000_000) -> Path:
    """Write a meter cube as a half-hourly consumption file, atomically and a block of MPANs at a time.

    Parameters
    ----------
    ds : Dataset
        Meter cube; ``energy`` >= 0 [kWh]. For ``hhc`` whole settlement days.
    path : path-like
        Target.
    layout : {"csv_period", "csv_utc", "hhc"}
    name : str
        Name of the energy variable.
    file_id, from_participant, to_participant, from_role, to_role, test_flag : str
        ``hhc`` ZHV header fields (D = data service, X = supplier [INF]).
    created_at : datetime-like, optional
        ``hhc`` creation time [UTC]; default the end of the cube's last period (reproducible files).
    chunk_rows : int
        About this many values are formatted at a time.

    Returns
    -------
    Path

    Raises
    ------
    HhConsumptionError
        If the cube is not valid or cannot be written in the layout; nothing is written then.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    path = Path(path)
    _cube_checks(ds, name, path.name, layout)
    times = pd.DatetimeIndex(ds["time"].values)
    n_t = len(times)
    dates, periods = cal.from_utc(times)
    mpans = np.asarray(ds["mpan"].values, dtype=str)
    energy = np.asarray(ds[name].values)
    quality = np.asarray(ds["quality"].values)
    reason = np.asarray(ds["estimation_reason"].values)
    per_block = max(1, chunk_rows // max(n_t, 1))
    if layout == "hhc":
        created = pd.Timestamp(created_at) if created_at is not None else times[-1] + cal.PERIOD
        stamp = created.strftime("%Y%m%d%H%M%S")
        head = {"file_id": file_id, "flow_version": FLOW_VERSION, "from_role": from_role,
                "from_participant": from_participant, "to_role": to_role, "to_participant": to_participant,
                "created_at": stamp, "test_flag": test_flag}
        for field, pattern, what in _RECORDS["ZHV"]:
            if not re.fullmatch(pattern, head[field]):
                raise HhConsumptionError(f"{path.name}: ZHV field {field}: expected {what}, got {head[field]!r}",
                                         source=path.name)
        header = "|".join(["ZHV", *head.values()]) + "|\n"
        new_day = np.r_[True, dates[1:] != dates[:-1]]
        day_starts = np.flatnonzero(new_day)
        n_d = day_starts.size
        sdy = [f"SDY|{d:%Y%m%d}|{int(cal.periods_in_day(d))}|" for d in dates[day_starts]]
        key = pa.array([f"HHV|{p}" for p in periods.tolist()], pa.string())
        mq = np.asarray(ds["measurement_quantity"].values, dtype=str)
        gsp = np.asarray(ds["gsp_group"].values, dtype=str)
        per_mpan = 1 + n_d + n_t
        # line positions within an MPAN's group: MPD, then per day its SDY and HHV records
        pos_hhv = 1 + np.cumsum(new_day) + np.arange(n_t)
        pos_sdy = 1 + np.arange(n_d) + day_starts
    elif layout == "csv_period":
        header = "mpan,settlement_date,settlement_period,energy_kwh,quality,estimation_reason\n"
        key = pa.array((pd.Series(dates.strftime("%Y-%m-%d")) + "," + periods.astype(str)).tolist(), pa.string())
    else:
        header = "mpan,utc_start,energy_kwh,quality,estimation_reason\n"
        key = pa.array(times.strftime("%Y-%m-%dT%H:%M:%SZ").tolist(), pa.string())
    sep = "|" if layout == "hhc" else ","
    with atomic_target(path) as tmp, open(tmp, "w", encoding="ascii", newline="\n") as fh:
        fh.write(header)
        for start in range(0, mpans.size, per_block):
            stop = min(start + per_block, mpans.size)
            m = stop - start
            e = pa.array(energy[start:stop].ravel(), pa.float64())
            e_text = pc.if_else(pc.is_nan(e), "", pc.cast(e, pa.string()))
            t_idx = pa.array(np.tile(np.arange(n_t), m))
            cols = [key.take(t_idx), e_text, _label_text(quality[start:stop], cube.QUALITY_CODES, cube.MISSING),
                    _label_text(reason[start:stop], cube.ESTIMATION_REASONS, 0)]
            if layout != "hhc":
                cols.insert(0, pa.array(mpans[start:stop]).take(pa.array(np.repeat(np.arange(m), n_t))))
            values = pc.binary_join_element_wise(*cols, sep).to_numpy(zero_copy_only=False)
            if layout == "hhc":
                lines = np.empty((m, per_mpan), dtype=object)
                lines[:, 0] = [f"MPD|{a}|{g}|{q}|kWh|" for a, g, q in zip(mpans[start:stop], gsp[start:stop],
                                                                          mq[start:stop])]
                lines[:, pos_sdy] = np.asarray(sdy, dtype=object)[None, :]
                lines[:, pos_hhv] = (values + "|").reshape(m, n_t)
                values = lines.ravel()
            fh.write("\n".join(values.tolist()))
            fh.write("\n")
        if layout == "hhc":
            fh.write(f"ZPT|{file_id}|{mpans.size * per_mpan}|{mpans.size}|{stamp}|\n")
    return path
