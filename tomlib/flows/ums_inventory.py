"""UMS inventory files in a D0388-like layout: strict reader, byte-faithful writer.

The UMSO sends each UMS MPAN's inventory to the UMS data service in the DTC flow D0388 "Unmetered
Supplies Inventory" (mhhs-domain.md §2.7). The real D0388 layout is in the Data Transfer Catalogue, which
we could not read; this is **our own D0388-like layout** [INF], built the way DTC flows are (pipe-delimited
records ending with ``|``, a ZHV header, a ZPT trailer, LF line endings, ASCII)::

    ZHV|file_id|flow_version|from_role|from_participant|to_role|to_participant|created_at|test_flag|
    UMP|mpan_core|gsp_group|effective_from|                      one per UMS MPAN (group header)
    UMI|item_id|charge_code|switch_regime|quantity|location|     one or more per UMP: inventory lines
    ZPT|file_id|record_count|mpan_count|completed_at|

- ``flow_version`` is ``UMSINV001`` (deliberately not a DTC flow id); roles are 1 character (e.g. ``U``
  UMSO, ``M`` meter administrator / UMSDS), participants 4 characters, ``test_flag`` 4 (``OPER``/``TEST``).
- ``created_at``/``completed_at`` are ``CCYYMMDDHHMMSS`` UTC; ``effective_from`` is a local date
  ``CCYYMMDD``.
- ``quantity`` is a signed integer; the reader keeps zero and negative quantities, unknown or malformed
  charge codes and regimes, because refusing them is the UMSO validation's job
  (:func:`tomlib.services.ums_operator.validate_inventory`), not the file reader's. What addresses the
  inventory is the reader's to check: the UMP's MPAN core must have a valid check digit, its GSP group
  must be one of the 14 (DI-037) and ``effective_from`` must lie in :data:`tomlib.flows.DATE_RANGE`
  (whether the GSP group is the MPAN distributor's stays a UMSO finding: IDNO MPANs exist).
- ``record_count`` is the number of lines between ZHV and ZPT and ``mpan_count`` the number of UMP
  records; both are checked. ``location`` is free text without ``|`` (at most 60 characters).

Every error is a :class:`UmsInventoryError` (a :class:`tomlib.flows.FlowError`, a ``ValueError``) naming
the source, the line and the field with what was expected, e.g. ``"inv.txt, line 3: field 5 (quantity):
expected a whole number, got '1.5'"``. An inventory is small and record-structured, so it is read whole.

File I/O is only in :func:`read_ums_inventory` and :func:`write_ums_inventory`.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tomlib import mpan as mpan_mod
from tomlib._io import atomic_write_text
from tomlib.flows._common import DATE_RANGE, GSP_GROUPS, TIMESTAMP, FlowError, zhv_fields

__all__ = [
    "FLOW_VERSION",
    "RECORD_FIELDS",
    "UmsInventoryError",
    "UmsInventoryFile",
    "format_ums_inventory",
    "inventory_file",
    "parse_ums_inventory",
    "read_ums_inventory",
    "write_ums_inventory",
]

#: Flow version of the layout (ours, not a DTC flow).
FLOW_VERSION = "UMSINV001"

#: Field names and rules per record type (after the record type field): (name, regex, description).
RECORD_FIELDS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "ZHV": zhv_fields(FLOW_VERSION),
    "UMP": (
        ("mpan", r"\d{13}", "a 13-digit MPAN core"),
        ("gsp_group", "|".join(GSP_GROUPS), f"a GSP group id ({', '.join(GSP_GROUPS)})"),
        ("effective_from", r"\d{8}", "a CCYYMMDD date"),
    ),
    "UMI": (
        ("item_id", r"[^|]{1,20}", "an item id (1-20 characters)"),
        ("charge_code", r"[^|]{0,20}", "a charge code (up to 20 characters)"),
        ("switch_regime", r"[^|]{0,10}", "a switch regime (up to 10 characters)"),
        ("quantity", r"[+-]?\d{1,9}", "a whole number"),
        ("location", r"[^|]{0,60}", "a location (up to 60 characters)"),
    ),
    "ZPT": (
        ("file_id", r"[0-9A-Za-z]{1,10}", "the file id of the ZHV"),
        ("record_count", r"\d{1,9}", "the number of records between ZHV and ZPT"),
        ("mpan_count", r"\d{1,9}", "the number of UMP records"),
        ("completed_at", TIMESTAMP, "a CCYYMMDDHHMMSS date-time"),
    ),
}
_LINE_COLUMNS = ("mpan", "gsp_group", "effective_from", "item_id", "charge_code", "switch_regime", "quantity",
                 "location")


class UmsInventoryError(FlowError):
    """A UMS inventory file or record is not valid."""


@dataclass
class UmsInventoryFile:
    """One inventory file.

    Attributes
    ----------
    header : dict of str
        ZHV fields by name (:data:`RECORD_FIELDS`), as text.
    inventory : DataFrame
        One row per UMI record in file order: ``mpan``, ``gsp_group``, ``effective_from`` (local date,
        datetime64) of its UMP, and ``item_id``, ``charge_code``, ``switch_regime``, ``quantity`` (int),
        ``location`` -- the columns :func:`tomlib.services.ums_operator.validate_inventory` reads.
    trailer : dict of str
        ZPT fields by name.
    source : str
        File name or ``"<string>"`` for messages.
    """

    header: dict[str, str]
    inventory: pd.DataFrame
    trailer: dict[str, str] = field(default_factory=dict)
    source: str = "<string>"


def _fail(source: str, line: int, message: str) -> UmsInventoryError:
    return UmsInventoryError(f"{source}, line {line}: {message}", source=source, line=line)


def _timestamp_ok(text: str, fmt: str) -> bool:
    try:
        _dt.datetime.strptime(text, fmt)
    except ValueError:
        return False
    return True


def _fields(source: str, line_no: int, line: str, kind: str) -> list[str]:
    shown = line if len(line) <= 60 else line[:57] + "..."
    if not line.endswith("|"):
        raise _fail(source, line_no, f"record does not end with '|': {shown!r}")
    parts = line[:-1].split("|")[1:]
    spec = RECORD_FIELDS[kind]
    if len(parts) != len(spec):
        raise _fail(source, line_no, f"a {kind} record has {len(spec)} fields after the record type, got "
                                     f"{len(parts)}: {shown!r}")
    for i, ((name, pattern, what), value) in enumerate(zip(spec, parts), start=2):
        bad = not re.fullmatch(pattern, value)
        if not bad and name in ("created_at", "completed_at"):
            bad = not _timestamp_ok(value, "%Y%m%d%H%M%S")
        if not bad and name == "effective_from":
            bad = not _timestamp_ok(value, "%Y%m%d")
        if bad:
            raise _fail(source, line_no, f"field {i} ({name}): expected {what}, got {value!r}")
        if name == "effective_from" and not DATE_RANGE[0] <= pd.Timestamp(value) <= DATE_RANGE[1]:
            raise _fail(source, line_no, f"field {i} ({name}): expected a date from {DATE_RANGE[0]:%Y-%m-%d} to "
                                         f"{DATE_RANGE[1]:%Y-%m-%d}, got {value!r}")
        if name == "mpan" and not mpan_mod.is_valid(value):
            want = int(mpan_mod.check_digit(value[:12]))
            raise _fail(source, line_no, f"field {i} ({name}): expected a 13-digit MPAN core with a valid check "
                                         f"digit, got {value!r} (check digit {value[-1]}, expected {want})")
    return parts


def parse_ums_inventory(text: str, source: str = "<string>") -> UmsInventoryFile:
    """Parse the text of an inventory file strictly.

    Parameters
    ----------
    text : str
        The whole file (LF line endings; a final LF is optional).
    source : str
        Name used in error messages.

    Returns
    -------
    UmsInventoryFile

    Raises
    ------
    UmsInventoryError
        Naming the line and field: unknown or misplaced record types, wrong field counts or formats,
        a UMP without UMI records, a trailer whose counts or file id disagree.
    """
    if "\r" in text:
        line = text[: text.index("\r")].count("\n") + 1
        raise _fail(source, line, "carriage return found; expected LF line endings")
    lines = text[:-1].split("\n") if text.endswith("\n") else text.split("\n")
    if not lines or lines == [""]:
        raise UmsInventoryError(f"{source}: empty file; expected a ZHV header")
    if not lines[0].startswith("ZHV|"):
        raise _fail(source, 1, f"expected a ZHV header, got {lines[0][:40]!r}")
    header = dict(zip([f[0] for f in RECORD_FIELDS["ZHV"]], _fields(source, 1, lines[0], "ZHV")))
    if len(lines) < 2 or not lines[-1].startswith("ZPT|"):
        raise _fail(source, len(lines), "expected a ZPT trailer as the last record")
    rows: list[list[str]] = []
    current: list[str] | None = None
    n_items = 0
    mpans = 0
    for line_no, line in enumerate(lines[1:-1], start=2):
        kind = line.split("|", 1)[0]
        if kind == "UMP":
            if current is not None and n_items == 0:
                raise _fail(source, line_no, f"UMP for MPAN {current[0]} (line {line_no - 1}) has no UMI records")
            current, n_items = _fields(source, line_no, line, "UMP"), 0
            mpans += 1
        elif kind == "UMI":
            if current is None:
                raise _fail(source, line_no, "a UMI record must follow a UMP record")
            rows.append(current + _fields(source, line_no, line, "UMI"))
            n_items += 1
        else:
            raise _fail(source, line_no, f"expected a UMP or UMI record, got {line[:40]!r}")
    if current is not None and n_items == 0:
        raise _fail(source, len(lines) - 1, f"UMP for MPAN {current[0]} has no UMI records")
    last = len(lines)
    trailer = dict(zip([f[0] for f in RECORD_FIELDS["ZPT"]], _fields(source, last, lines[-1], "ZPT")))
    if trailer["file_id"] != header["file_id"]:
        raise _fail(source, last, f"field 2 (file_id): expected {header['file_id']!r} as in the ZHV, got "
                                  f"{trailer['file_id']!r}")
    if int(trailer["record_count"]) != len(lines) - 2:
        raise _fail(source, last, f"field 3 (record_count): expected {len(lines) - 2} records between ZHV and ZPT, "
                                  f"got {trailer['record_count']}")
    if int(trailer["mpan_count"]) != mpans:
        raise _fail(source, last, f"field 4 (mpan_count): expected {mpans} UMP records, got {trailer['mpan_count']}")
    inv = pd.DataFrame(rows, columns=list(_LINE_COLUMNS)) if rows else pd.DataFrame(columns=list(_LINE_COLUMNS))
    inv["quantity"] = inv["quantity"].astype(np.int64)
    inv["effective_from"] = pd.to_datetime(inv["effective_from"], format="%Y%m%d").astype("datetime64[ns]")
    for col in ("mpan", "gsp_group", "item_id", "charge_code", "switch_regime", "location"):
        inv[col] = inv[col].astype(str)
    inv = inv[["mpan", "item_id", "charge_code", "switch_regime", "quantity", "gsp_group", "location",
               "effective_from"]]
    return UmsInventoryFile(header=header, inventory=inv, trailer=trailer, source=source)


def read_ums_inventory(path: str | Path) -> UmsInventoryFile:
    """Read an inventory file (ASCII) strictly; see :func:`parse_ums_inventory`."""
    path = Path(path)
    data = path.read_bytes()
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UmsInventoryError(f"{path.name}, line {line}: byte 0x{data[exc.start]:02x} is not ASCII") from None
    return parse_ums_inventory(text, source=path.name)


def _text(values, name: str, pattern: str, what: str) -> np.ndarray:
    s = pd.Series(values).astype(str)
    bad = ~s.str.fullmatch(pattern).to_numpy(dtype=bool)
    if bad.any():
        i = int(np.argmax(bad))
        raise UmsInventoryError(f"inventory row {i} ({name}): expected {what} to write, got {s.iloc[i]!r}")
    return s.to_numpy(dtype=object)


def format_ums_inventory(f: UmsInventoryFile) -> str:
    """The text of an inventory file: the inverse of :func:`parse_ums_inventory` (byte-identical for parsed files).

    Raises
    ------
    UmsInventoryError
        If a value cannot be written (naming the row and field), or one MPAN has lines with different
        GSP groups or effective dates.
    """
    inv = f.inventory.reset_index(drop=True)
    missing = [c for c in ("mpan", "item_id", "charge_code", "switch_regime", "quantity", "gsp_group", "location",
                           "effective_from") if c not in inv.columns]
    if missing:
        raise UmsInventoryError(f"inventory: column(s) {missing} missing")
    mp = inv["mpan"].astype(str)
    per = inv.assign(_m=mp, _d=pd.DatetimeIndex(inv["effective_from"]).strftime("%Y%m%d"))
    n_keys = per.groupby("_m")[["gsp_group", "_d"]].nunique()
    split = n_keys[(n_keys > 1).any(axis=1)]
    if len(split):
        raise UmsInventoryError(f"inventory: MPAN {split.index[0]} has lines with different gsp_group or "
                                "effective_from; one UMP record holds one of each")
    # lines of an MPAN are written together, MPANs in order of first appearance
    order = np.argsort(pd.factorize(mp)[0], kind="stable")
    per = per.iloc[order].reset_index(drop=True)
    fields = {}
    rules = {**{n: (p, w) for n, p, w in RECORD_FIELDS["UMP"]}, **{n: (p, w) for n, p, w in RECORD_FIELDS["UMI"]}}
    for name in ("mpan", "gsp_group", "item_id", "charge_code", "switch_regime", "location"):
        fields[name] = _text(per[name], name, *rules[name])
    q = pd.to_numeric(per["quantity"], errors="coerce")
    if q.isna().any() or (q % 1 != 0).any():
        i = int(np.argmax((q.isna() | (q % 1 != 0)).to_numpy()))
        raise UmsInventoryError(f"inventory row {i} (quantity): expected a whole number to write, got "
                                f"{per['quantity'].iloc[i]!r}")
    fields["quantity"] = q.astype(np.int64).astype(str).to_numpy(dtype=object)
    first = np.r_[True, per["_m"].to_numpy()[1:] != per["_m"].to_numpy()[:-1]]
    ump = "UMP|" + fields["mpan"] + "|" + fields["gsp_group"] + "|" + per["_d"].to_numpy(dtype=object) + "|"
    umi = ("UMI|" + fields["item_id"] + "|" + fields["charge_code"] + "|" + fields["switch_regime"] + "|"
           + fields["quantity"] + "|" + fields["location"] + "|")
    body = np.where(first, ump + "\n" + umi, umi)
    n_records = int(first.sum()) + len(per)
    header = "|".join(["ZHV", *[f.header[n] for n, _, _ in RECORD_FIELDS["ZHV"]]]) + "|"
    trailer = dict(f.trailer)
    trailer.setdefault("file_id", f.header["file_id"])
    trailer.setdefault("completed_at", f.header["created_at"])
    trailer["record_count"] = str(n_records)
    trailer["mpan_count"] = str(int(first.sum()))
    tail = "|".join(["ZPT", *[trailer[n] for n, _, _ in RECORD_FIELDS["ZPT"]]]) + "|"
    return "\n".join([header, *body.tolist(), tail]) + "\n"


def inventory_file(inventory: pd.DataFrame, *, file_id: str, from_participant: str, to_participant: str,
                   created_at, from_role: str = "U", to_role: str = "M", test_flag: str = "OPER",
                   effective_from=None) -> UmsInventoryFile:
    """Wrap an inventory (:data:`tomlib.services.ums_operator.INVENTORY_COLUMNS`) as a file to write.

    Parameters
    ----------
    inventory : DataFrame
        Declared lines; ``effective_from`` is taken from the frame unless given here.
    file_id, from_participant, to_participant : str
        ZHV fields.
    created_at : datetime-like
        [UTC]; also the trailer's completion time.
    from_role, to_role, test_flag : str
    effective_from : date-like, optional
        For every MPAN (local date).
    """
    inv = inventory.copy()
    if effective_from is not None:
        inv["effective_from"] = pd.Timestamp(effective_from).normalize()
    if "effective_from" not in inv.columns:
        raise UmsInventoryError("inventory: effective_from missing; give it as a column or an argument")
    stamp = pd.Timestamp(created_at).strftime("%Y%m%d%H%M%S")
    header = {"file_id": file_id, "flow_version": FLOW_VERSION, "from_role": from_role,
              "from_participant": from_participant, "to_role": to_role, "to_participant": to_participant,
              "created_at": stamp, "test_flag": test_flag}
    for name, pattern, what in RECORD_FIELDS["ZHV"]:
        if not re.fullmatch(pattern, header[name]):
            raise UmsInventoryError(f"ZHV field {name}: expected {what}, got {header[name]!r}")
    return UmsInventoryFile(header=header, inventory=inv, trailer={"file_id": file_id, "completed_at": stamp})


def write_ums_inventory(f: UmsInventoryFile, path: str | Path) -> Path:
    """Write an inventory file (ASCII, LF) atomically; the text is checked by parsing it back first."""
    path = Path(path)
    text = format_ums_inventory(f)
    parse_ums_inventory(text, source=path.name)
    try:
        text.encode("ascii")
    except UnicodeEncodeError as exc:
        raise UmsInventoryError(f"{path.name}: character {text[exc.start]!r} is not ASCII") from None
    return atomic_write_text(path, text, encoding="ascii")
