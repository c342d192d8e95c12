"""DTC D0010 "Meter Readings" flow files: strict reader, byte-faithful writer, conversion to read records.

Layout (from the public samples, see ``tests/data/d0010/README.md``; names marked [INF] in that
README are our reading of the Data Transfer Catalogue): pipe-delimited records, each ending with
``|``, LF line endings::

    ZHV|file_id|D0010002|from_role|from_participant|to_role|to_participant|created_at|||
       |test_flag|                                              header, first line
    026|mpan_core|validation_status|                           one per metering point
    028|meter_id|reading_type|                                 one or more per 026
    030|register_id|read_at|value|md_reset_at|md_resets|reading_flag|reading_method|
                                                               one or more per 028
    ZPT|file_id|record_count|checksum|flow_count|completed_at|  trailer, last line

``record_count`` is the number of lines between ZHV and ZPT and ``flow_count`` the number of 026
groups (both checked). Timestamps are ``CCYYMMDDHHMMSS``. Meter ids may contain inner spaces.
Trailing fields holding only whitespace (seen in a public copy) are accepted and kept. Other record
types of the D0010 (site visit, validation results) are refused with a clear error.

[INF] D0010 date-times are UK local clock time; :func:`d0010_to_reads` converts them to UTC and
refuses the ambiguous hour of the October clock change; :func:`reads_to_d0010` refuses reads it
could not write unambiguously. Reading-type codes (J0171): C customer own read, D deemed, R
routine (our site visit and opening reads), F final (removal), I initial (installation), X
remotely obtained; other codes convert to read type ``other``. Reading method [INF]: ``P`` for
reads by an agent on site, ``N`` otherwise.

Every error is a :class:`D0010Error` (a :class:`tomlib.flows.FlowError`, a ``ValueError``) naming the
source, the line and the field with what was expected, e.g. ``"x.uff, line 4, field 3 (read_at):
expected a valid CCYYMMDDHHMMSS date-time, got '20161322000000'"``. Besides the record syntax the
reader refuses: an MPAN core whose check digit is wrong (``check_mpan=False`` keeps such a file, so
that :func:`tomlib.services.meter_reading.screen_reads` can refuse the reading alone, as a data service
does), a date-time outside :data:`tomlib.flows.DATE_RANGE`, and the same register read twice at the
same time (MPAN, meter, register, read time). Nothing is returned unless the whole file is valid.

A D0010 is small (one record group per metering point read) and record-structured, so it is read whole
and checked record by record; the half-hourly and CSV readers stream instead.

File I/O is only in :func:`read_d0010` and :func:`write_d0010`.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tomlib import calendar as cal
from tomlib import mpan as mpan_mod
from tomlib._io import atomic_write_text
from tomlib.flows._common import DATE_RANGE, FlowError

__all__ = [
    "D0010",
    "READ_TYPE_CODES",
    "RECORD_FIELDS",
    "D0010Error",
    "d0010_to_reads",
    "format_d0010",
    "parse_d0010",
    "read_d0010",
    "reads_to_d0010",
    "write_d0010",
]


class D0010Error(FlowError):
    """A D0010 file or record is not valid."""


_TS = r"\d{14}"
#: Field names and rules per record type (after the record type field): (name, regex, description).
RECORD_FIELDS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "ZHV": (
        ("file_id", r"[0-9A-Za-z]{1,10}", "1-10 letters or digits"),
        ("flow_version", r"D0010\d{3}", "'D0010' and a 3-digit version"),
        ("from_role", r"[A-Z0-9]", "a 1-character role code"),
        ("from_participant", r"[A-Z0-9]{4}", "a 4-character market participant id"),
        ("to_role", r"[A-Z0-9]", "a 1-character role code"),
        ("to_participant", r"[A-Z0-9]{4}", "a 4-character market participant id"),
        ("created_at", _TS, "a CCYYMMDDHHMMSS date-time"),
        ("header_field_9", r"[^|]{0,40}", "up to 40 characters"),
        ("header_field_10", r"[^|]{0,40}", "up to 40 characters"),
        ("header_field_11", r"[^|]{0,40}", "up to 40 characters"),
        ("test_flag", r"[A-Z0-9]{4}", "a 4-character test/live flag such as OPER"),
    ),
    "026": (
        ("mpan", r"\d{13}", "a 13-digit MPAN core"),
        ("validation_status", r"[A-Z]", "a 1-letter BSC validation status"),
    ),
    "028": (
        ("meter_id", r"[^\s|](?:[^|]{0,8}[^\s|])?", "a meter serial of 1-10 characters without outer spaces"),
        ("reading_type", r"[A-Z]", "a 1-letter reading type"),
    ),
    "030": (
        ("register_id", r"[0-9A-Z]{1,2}", "a 1-2 character meter register id"),
        ("read_at", _TS, "a CCYYMMDDHHMMSS date-time"),
        ("value", r"\d{1,10}(?:\.\d{1,2})?", "a non-negative register reading with up to 2 decimals"),
        ("md_reset_at", r"(?:\d{14})?", "empty or a CCYYMMDDHHMMSS date-time"),
        ("md_resets", r"\d{0,2}", "empty or a number of MD resets"),
        ("reading_flag", r"[TF]", "T or F"),
        ("reading_method", r"[A-Z]", "a 1-letter reading method"),
    ),
    "ZPT": (
        ("file_id", r"[0-9A-Za-z]{1,10}", "1-10 letters or digits"),
        ("record_count", r"\d{1,8}", "a record count"),
        ("checksum", r"[^|]{0,20}", "empty or a checksum"),
        ("flow_count", r"\d{1,8}", "a flow count"),
        ("completed_at", _TS, "a CCYYMMDDHHMMSS date-time"),
    ),
}
_TIMESTAMP_FIELDS = {"created_at", "read_at", "md_reset_at", "completed_at"}

#: Our read type -> D0010 reading type (J0171).
READ_TYPE_CODES = {
    "customer": "C",
    "deemed": "D",
    "site_visit": "R",
    "opening": "R",
    "removal": "F",
    "installation": "I",
    "remote": "X",
}
_CODE_READ_TYPES = {
    "C": "customer",
    "D": "deemed",
    "R": "site_visit",
    "F": "removal",
    "I": "installation",
    "X": "remote",
}
_AGENT_READ_TYPES = {"site_visit", "opening", "removal", "installation"}

_READING_COLUMNS = (
    "mpan",
    "validation_status",
    "meter_id",
    "reading_type",
    "register_id",
    "read_at",
    "value",
    "md_reset_at",
    "md_resets",
    "reading_flag",
    "reading_method",
)


@dataclass
class D0010:
    """One D0010 file.

    Attributes
    ----------
    header : dict of str
        ZHV fields by name (:data:`RECORD_FIELDS`), text as in the file.
    readings : DataFrame
        One row per 030 record, text as in the file: ``mpan``, ``validation_status`` (026);
        ``meter_id``, ``reading_type`` (028); ``register_id``, ``read_at`` (CCYYMMDDHHMMSS),
        ``value``, ``md_reset_at``, ``md_resets``, ``reading_flag``, ``reading_method`` (030); and
        ``group`` / ``meter_group`` (int ordinals of the 026 and 028 records) and ``line`` (int,
        line of the 030 in the source; 0 if built in memory).
    trailer : dict of str
        ZPT fields by name.
    source : str
        File name or ``"<string>"`` for messages.
    final_newline : bool
        The file ends with a line feed (the public sample does not).
    extra_fields : dict
        Line number -> whitespace-only fields after a record's last field (kept for round trips).
    """

    header: dict[str, str]
    readings: pd.DataFrame
    trailer: dict[str, str]
    source: str = "<string>"
    final_newline: bool = False
    extra_fields: dict[int, tuple[str, ...]] = field(default_factory=dict)


def _fail(source: str, line: int, message: str) -> D0010Error:
    return D0010Error(f"{source}, line {line}: {message}")


def _valid_timestamp(text: str) -> bool:
    try:
        _dt.datetime.strptime(text, "%Y%m%d%H%M%S")
    except ValueError:
        return False
    return True


def _in_range(text: str) -> bool:
    return DATE_RANGE[0] <= pd.Timestamp(_dt.datetime.strptime(text[:8], "%Y%m%d")) <= DATE_RANGE[1]


def _record(
    source: str, line_no: int, line: str, expected: tuple[str, ...]
) -> tuple[str, list[str], tuple[str, ...]]:
    """Split and check one line; return (record type, fields, extra whitespace fields)."""
    if "\r" in line:
        raise _fail(source, line_no, "carriage return found; expected LF line endings")
    shown = line if len(line) <= 60 else line[:57] + "..."
    kind = line.split("|", 1)[0]
    if kind not in expected:
        raise _fail(source, line_no, f"expected a {' or '.join(expected)} record, got {shown!r}")
    if not line.endswith("|"):
        raise _fail(source, line_no, f"record does not end with '|': {shown!r}")
    parts = line[:-1].split("|")
    spec = RECORD_FIELDS[kind]
    values = parts[1:]
    if len(values) < len(spec):
        raise _fail(source, line_no, f"{kind} record has {len(values)} fields, expected {len(spec)}")
    extra = tuple(values[len(spec) :])
    for k, text in enumerate(extra, start=len(spec) + 2):
        if text.strip() != "":
            raise _fail(
                source,
                line_no,
                f"field {k}: {kind} record has {len(values)} fields, expected "
                f"{len(spec)} (extra fields may hold only whitespace), got {text!r}",
            )
    values = values[: len(spec)]
    for k, ((name, pattern, desc), text) in enumerate(zip(spec, values, strict=True), start=2):
        if not re.fullmatch(pattern, text):
            raise D0010Error(f"{source}, line {line_no}, field {k} ({name}): expected {desc}, got {text!r}")
        if name in _TIMESTAMP_FIELDS and text and not _valid_timestamp(text):
            raise D0010Error(
                f"{source}, line {line_no}, field {k} ({name}): expected a valid CCYYMMDDHHMMSS "
                f"date-time, got {text!r}"
            )
        if name in _TIMESTAMP_FIELDS and text and not _in_range(text):
            raise D0010Error(
                f"{source}, line {line_no}, field {k} ({name}): expected a date-time from "
                f"{DATE_RANGE[0]:%Y-%m-%d} to {DATE_RANGE[1]:%Y-%m-%d}, got {text!r}"
            )
    return kind, values, extra


def parse_d0010(text: str, source: str = "<string>", *, check_mpan: bool = True) -> D0010:
    """Parse the text of a D0010 file strictly.

    Parameters
    ----------
    text : str
        File content.
    source : str
        Name used in error messages.
    check_mpan : bool
        Refuse an MPAN core whose check digit is wrong (False: keep it for the data service's
        per-reading screen, :func:`tomlib.services.meter_reading.screen_reads`).

    Returns
    -------
    D0010

    Raises
    ------
    D0010Error
        Naming the source, line and field: wrong record order or nesting, a field that does not
        match its rule, a bad record or flow count, mismatched file ids, an empty file, a wrong MPAN
        check digit, a date-time out of range, a register read twice at one time.
    """
    if text == "":
        raise D0010Error(f"{source}: empty file; expected a ZHV header line")
    final_newline = text.endswith("\n")
    lines = (text[:-1] if final_newline else text).split("\n")
    if len(lines) < 2:
        raise _fail(source, 1, "a D0010 needs at least a ZHV header and a ZPT trailer line")
    extra_fields: dict[int, tuple[str, ...]] = {}
    _, hv, extra = _record(source, 1, lines[0], ("ZHV",))
    if extra:
        extra_fields[1] = extra
    header = dict(zip((f[0] for f in RECORD_FIELDS["ZHV"]), hv, strict=True))
    rows: list[list] = []
    group = meter_group = -1
    cur026: list[str] | None = None
    cur028: list[str] | None = None
    lines026: list[tuple[int, str]] = []
    state = "start"  # what the previous body record was: start, 026, 028, 030
    n_body = len(lines) - 2
    for i, line in enumerate(lines[1:-1], start=2):
        expected = {"start": ("026",), "026": ("028",), "028": ("030",), "030": ("030", "028", "026")}[state]
        kind, values, extra = _record(source, i, line, expected)
        if extra:
            extra_fields[i] = extra
        if kind == "026":
            group += 1
            cur026 = values
            lines026.append((i, values[0]))
        elif kind == "028":
            meter_group += 1
            cur028 = values
        else:
            rows.append([*cur026, *cur028, *values, group, meter_group, i])
        state = kind
    last = len(lines)
    if state in ("026", "028"):
        raise _fail(
            source,
            last,
            f"expected a {'028' if state == '026' else '030'} record before the trailer, "
            f"got {lines[-1][:60]!r}",
        )
    _, pt, extra = _record(source, last, lines[-1], ("ZPT",))
    if extra:
        extra_fields[last] = extra
    trailer = dict(zip((f[0] for f in RECORD_FIELDS["ZPT"]), pt, strict=True))
    if trailer["file_id"] != header["file_id"]:
        raise D0010Error(
            f"{source}, line {last}, field 2 (file_id): expected the header's file id "
            f"{header['file_id']!r}, got {trailer['file_id']!r}"
        )
    if int(trailer["record_count"]) != n_body:
        raise D0010Error(
            f"{source}, line {last}, field 3 (record_count): expected {n_body} (the lines between "
            f"ZHV and ZPT), got {trailer['record_count']!r}"
        )
    if int(trailer["flow_count"]) != group + 1:
        raise D0010Error(
            f"{source}, line {last}, field 5 (flow_count): expected {group + 1} (the 026 groups), "
            f"got {trailer['flow_count']!r}"
        )
    if check_mpan and lines026:
        cores = np.array([m for _, m in lines026])
        bad = ~np.asarray(mpan_mod.is_valid(cores), dtype=bool).reshape(-1)
        if bad.any():
            k = int(np.argmax(bad))
            core = str(cores[k])
            detail = f" (check digit {core[-1]}, expected {int(mpan_mod.check_digit(core[:12]))})" if \
                len(core) == 13 else ""
            raise D0010Error(
                f"{source}, line {lines026[k][0]}, field 2 (mpan): expected a 13-digit MPAN core with a valid "
                f"check digit, got {core!r}{detail}"
            )
    _check_repeats(rows, source)
    cols = list(_READING_COLUMNS) + ["group", "meter_group", "line"]
    readings = pd.DataFrame(rows, columns=cols) if rows else pd.DataFrame({c: [] for c in cols})
    for c in _READING_COLUMNS:
        readings[c] = pd.array(readings[c].astype(str).to_numpy(), dtype="str")
    for c in ("group", "meter_group", "line"):
        readings[c] = readings[c].astype(np.int64)
    return D0010(
        header=header,
        readings=readings,
        trailer=trailer,
        source=source,
        final_newline=final_newline,
        extra_fields=extra_fields,
    )


def _check_repeats(rows: list[list], source: str) -> None:
    """The same register read twice at the same time (MPAN, meter, register, read time) is an error."""
    if not rows:
        return
    key = pd.DataFrame([(r[0], r[2], r[4], r[5]) for r in rows])
    dup = key.duplicated(keep=False).to_numpy()
    if dup.any():
        idx = np.flatnonzero(dup)
        first = idx[0]
        later = next(j for j in idx[1:] if (key.iloc[j] == key.iloc[first]).all())
        a, b = rows[first], rows[later]
        what = "conflicting values" if a[6] != b[6] else "the same value"
        raise D0010Error(
            f"{source}, line {b[-1]}, field 3 (read_at): expected each register read once per read time; "
            f"MPAN {a[0]}, meter {a[2]!r}, register {a[4]} at {a[5]} is also on line {a[-1]} "
            f"({what}: {a[6]} and {b[6]})"
        )


def read_d0010(path: str | Path, *, check_mpan: bool = True) -> D0010:
    """Read a D0010 file (ASCII) strictly; see :func:`parse_d0010`."""
    path = Path(path)
    data = path.read_bytes()
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise D0010Error(f"{path.name}, line {line}: byte 0x{data[exc.start]:02x} is not ASCII") from None
    return parse_d0010(text, source=path.name, check_mpan=check_mpan)


def format_d0010(d: D0010) -> str:
    """The text of a D0010: the inverse of :func:`parse_d0010` (byte-identical for parsed files)."""
    out: list[str] = []

    def emit(kind: str, values) -> None:
        line_no = len(out) + 1
        extra = d.extra_fields.get(line_no, ())
        out.append("|".join([kind, *values, *extra]) + "|")

    emit("ZHV", [d.header[f[0]] for f in RECORD_FIELDS["ZHV"]])
    r = d.readings
    cols = {c: r[c].to_numpy(dtype=str) for c in _READING_COLUMNS}
    groups = r["group"].to_numpy()
    meters = r["meter_group"].to_numpy()
    for i in range(len(r)):
        if i == 0 or groups[i] != groups[i - 1]:
            emit("026", [cols["mpan"][i], cols["validation_status"][i]])
        if i == 0 or meters[i] != meters[i - 1] or groups[i] != groups[i - 1]:
            emit("028", [cols["meter_id"][i], cols["reading_type"][i]])
        emit("030", [cols[c][i] for c in _READING_COLUMNS[4:]])
    emit("ZPT", [d.trailer[f[0]] for f in RECORD_FIELDS["ZPT"]])
    return "\n".join(out) + ("\n" if d.final_newline else "")


def write_d0010(d: D0010, path: str | Path) -> Path:
    """Write a D0010 file (ASCII, LF), atomically; the text is checked by parsing it back first."""
    text = format_d0010(d)
    parse_d0010(text, source=str(path), check_mpan=False)
    return atomic_write_text(path, text, encoding="ascii")


# ----------------------------------------------------------------------------------------- conversions


def _local_text_to_utc(
    texts: np.ndarray, lines: np.ndarray, source: str, field_no: int, name: str
) -> np.ndarray:
    local = pd.to_datetime(pd.Series(texts, dtype="str"), format="%Y%m%d%H%M%S")
    idx = pd.DatetimeIndex(local)
    aware = idx.tz_localize(cal.TZ, ambiguous="NaT", nonexistent="NaT")
    bad = np.asarray(aware.isna())
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise D0010Error(
            f"{source}, line {lines[i]}, field {field_no} ({name}): local time {str(texts[i])!r} is "
            "ambiguous or does not exist at a clock change; cannot convert to UTC"
        )
    return aware.tz_convert("UTC").tz_localize(None).as_unit("ns").to_numpy()


def d0010_to_reads(d: D0010, available_at=None) -> pd.DataFrame:
    """Read records (``tomlib.services.metering.READ_COLUMNS``) from a D0010.

    Parameters
    ----------
    d : D0010
    available_at : datetime-like, optional
        When the data service received the file [UTC]. Default: the header's ``created_at``
        (UK local time, converted to UTC).

    Returns
    -------
    DataFrame
        READ_COLUMNS (read_at in UTC; value [kWh]; read_type from the reading type, ``other`` for
        codes we do not model) plus ``d0010_reading_type``, ``validation_status``,
        ``reading_flag``, ``reading_method``, ``line``. No row is dropped: validation against the
        MTDs is :func:`tomlib.services.meter_reading.screen_reads`.
    """
    r = d.readings
    lines = r["line"].to_numpy()
    read_at = _local_text_to_utc(r["read_at"].to_numpy(dtype=str), lines, d.source, 3, "read_at")
    if available_at is None:
        avail = _local_text_to_utc(
            np.array([d.header["created_at"]]), np.array([1]), d.source, 8, "created_at"
        )[0]
    else:
        avail = np.datetime64(pd.Timestamp(available_at), "ns")
    codes = r["reading_type"].to_numpy(dtype=str)
    read_type = pd.Series(codes).map(_CODE_READ_TYPES).fillna("other").to_numpy(dtype=str)
    return pd.DataFrame(
        {
            "mpan": pd.array(r["mpan"].to_numpy(dtype=str), dtype="str"),
            "meter_id": pd.array(r["meter_id"].to_numpy(dtype=str), dtype="str"),
            "register_id": pd.array(r["register_id"].to_numpy(dtype=str), dtype="str"),
            "read_at": read_at,
            "value": r["value"].astype(float).to_numpy(),
            "read_type": pd.array(read_type, dtype="str"),
            "available_at": np.full(len(r), avail, dtype="datetime64[ns]"),
            "d0010_reading_type": pd.array(codes, dtype="str"),
            "validation_status": pd.array(r["validation_status"].to_numpy(dtype=str), dtype="str"),
            "reading_flag": pd.array(r["reading_flag"].to_numpy(dtype=str), dtype="str"),
            "reading_method": pd.array(r["reading_method"].to_numpy(dtype=str), dtype="str"),
            "line": lines.astype(np.int64),
        }
    )


def _utc_to_local_text(times: np.ndarray, what: str) -> np.ndarray:
    idx = pd.DatetimeIndex(np.asarray(times, dtype="datetime64[ns]"))
    if idx.isna().any():
        raise D0010Error(f"reads: {what} at row {int(np.flatnonzero(idx.isna())[0])} is missing (NaT)")
    local = idx.tz_localize("UTC").tz_convert(cal.TZ).tz_localize(None)
    back = local.tz_localize(cal.TZ, ambiguous="NaT", nonexistent="NaT")
    bad = np.asarray(back.isna())
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise D0010Error(
            f"reads: {what} {idx[i]} (UTC) at row {i} falls in the repeated local hour of the "
            "October clock change; a D0010 local time could not tell which"
        )
    return np.asarray(local.strftime("%Y%m%d%H%M%S"), dtype=str)


def reads_to_d0010(
    reads: pd.DataFrame,
    *,
    file_id: str,
    from_participant: str,
    to_participant: str,
    created_at,
    from_role: str = "D",
    to_role: str = "X",
    test_flag: str = "OPER",
    completed_at=None,
    flow_version: str = "D0010002",
) -> D0010:
    """Build a D0010 from read records.

    Reads are grouped into one 026 per MPAN and one 028 per (meter, reading type, read time), in
    the order of (mpan, meter_id, reading type, read_at, register_id).

    Parameters
    ----------
    reads : DataFrame
        At least mpan, meter_id, register_id, read_at [UTC], value [kWh, at most one decimal],
        read_type; optional ``d0010_reading_type`` overrides the reading type code.
    file_id, from_participant, to_participant : str
        Header fields (file id up to 10 characters, participants 4 characters).
    created_at, completed_at : datetime-like
        Header creation and trailer completion instants [UTC]; written as UK local time.
        ``completed_at`` defaults to ``created_at``.
    from_role, to_role, test_flag, flow_version : str
        Header fields (D = data collector, X = supplier [INF]).

    Returns
    -------
    D0010
        Validated by formatting and parsing it back.
    """
    n = len(reads)
    if n == 0:
        raise D0010Error("reads: a D0010 needs at least one reading")
    rt = reads["read_type"].to_numpy(dtype=str)
    if "d0010_reading_type" in reads.columns:
        codes = reads["d0010_reading_type"].to_numpy(dtype=str)
    else:
        unknown = ~np.isin(rt, list(READ_TYPE_CODES))
        if unknown.any():
            i = int(np.flatnonzero(unknown)[0])
            raise D0010Error(
                f"reads: read_type {str(rt[i])!r} at row {i} has no D0010 reading type; expected one of "
                f"{', '.join(READ_TYPE_CODES)}"
            )
        codes = pd.Series(rt).map(READ_TYPE_CODES).to_numpy(dtype=str)
    value = reads["value"].to_numpy(dtype=float)
    bad = ~np.isfinite(value) | (value < 0) | (np.abs(np.round(value, 1) - value) > 1e-9)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise D0010Error(
            f"reads: value {float(value[i])!r} at row {i} is not a non-negative reading with one decimal"
        )
    at_text = _utc_to_local_text(reads["read_at"].to_numpy(dtype="datetime64[ns]"), "read_at")
    method = np.where(np.isin(rt, list(_AGENT_READ_TYPES)), "P", "N")
    if "reading_method" in reads.columns:
        method = reads["reading_method"].to_numpy(dtype=str)
    df = pd.DataFrame(
        {
            "mpan": reads["mpan"].to_numpy(dtype=str),
            "validation_status": (
                reads["validation_status"].to_numpy(dtype=str)
                if "validation_status" in reads.columns
                else np.full(n, "V")
            ),
            "meter_id": reads["meter_id"].to_numpy(dtype=str),
            "reading_type": codes,
            "register_id": reads["register_id"].to_numpy(dtype=str),
            "read_at": at_text,
            "value": np.char.mod("%.1f", value),
            "md_reset_at": np.full(n, ""),
            "md_resets": np.full(n, ""),
            "reading_flag": (
                reads["reading_flag"].to_numpy(dtype=str)
                if "reading_flag" in reads.columns
                else np.full(n, "T")
            ),
            "reading_method": method,
            "_sort_at": reads["read_at"].to_numpy(dtype="datetime64[ns]"),
        }
    )
    df = df.sort_values(["mpan", "meter_id", "reading_type", "_sort_at", "register_id"], kind="stable")
    df = df.drop(columns="_sort_at").reset_index(drop=True)
    new_group = np.r_[True, df["mpan"].to_numpy()[1:] != df["mpan"].to_numpy()[:-1]]
    mkey = (df["mpan"] + "|" + df["meter_id"] + "|" + df["reading_type"] + "|" + df["read_at"]).to_numpy()
    new_meter = np.r_[True, mkey[1:] != mkey[:-1]]
    df["group"] = np.cumsum(new_group) - 1
    df["meter_group"] = np.cumsum(new_meter) - 1
    df["line"] = 0
    for c in _READING_COLUMNS:
        df[c] = pd.array(df[c].to_numpy(dtype=str), dtype="str")
    created = _utc_to_local_text(np.array([pd.Timestamp(created_at)], dtype="datetime64[ns]"), "created_at")[
        0
    ]
    done = (
        created
        if completed_at is None
        else _utc_to_local_text(
            np.array([pd.Timestamp(completed_at)], dtype="datetime64[ns]"), "completed_at"
        )[0]
    )
    header = {
        "file_id": file_id,
        "flow_version": flow_version,
        "from_role": from_role,
        "from_participant": from_participant,
        "to_role": to_role,
        "to_participant": to_participant,
        "created_at": created,
        "header_field_9": "",
        "header_field_10": "",
        "header_field_11": "",
        "test_flag": test_flag,
    }
    n_records = int(new_group.sum() + new_meter.sum() + n)
    trailer = {
        "file_id": file_id,
        "record_count": str(n_records),
        "checksum": "",
        "flow_count": str(int(new_group.sum())),
        "completed_at": done,
    }
    d = D0010(header=header, readings=df, trailer=trailer, source="<reads>", final_newline=True)
    parse_d0010(format_d0010(d), source="<reads>", check_mpan=False)
    return d
