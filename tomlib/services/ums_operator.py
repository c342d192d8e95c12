"""Unmetered Supplies Operator (UMSO): the UMS reference tables, inventory validation and the UMS certificate.

Street lights, signs, beacons and street furniture have no meter. Their consumption is computed from an
**inventory** (mhhs-domain.md §2.7): per UMS MPAN, lines of equipment with a 13-digit **charge code**
(circuit watts, equipment type, control gear), a 3-digit **switch regime** (when it is on), a quantity, a
location and the GSP group it is in.

Reference tables
----------------
:func:`load_charge_codes` and :func:`load_switch_regimes` read ``tomlib/reference/data/ums_charge_codes.csv``
and ``ums_switch_regimes.csv`` -- ILLUSTRATIVE tables (see ``ums_README.md``: Elexon's are not public) --
with the strict reader of :mod:`tomlib.reference`; a real table with the same columns can be read with
``path=...`` and passed to every function that takes ``charge_codes``/``switch_regimes``.

Validation and certificate
--------------------------
:func:`validate_inventory` names every finding (:data:`FINDINGS`) with the row, field and value; nothing is
dropped silently. :func:`ums_certificate` gives the connected load and the annual consumption per MPAN
from the valid lines ([INF], §2.7)::

    annual kWh = sum over valid lines (circuit W x quantity x annual burning hours of the regime) / 1000

with the regime table's ``annual_hours`` (equivalent full-power hours) or hours given by the caller.

Pure functions; the only file I/O is in the two named table loaders.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from tomlib import mpan as mpan_mod
from tomlib import reference
from tomlib.reference._io import Col, read_table
from tomlib.services import ums_switching as sw

__all__ = [
    "CHARGE_CODES_PATH",
    "CONTROLS",
    "FINDINGS",
    "INVENTORY_COLUMNS",
    "KINDS",
    "PHOTOCELL_KINDS",
    "SWITCH_REGIMES_PATH",
    "certificate_lines",
    "charge_codes",
    "load_charge_codes",
    "load_switch_regimes",
    "photocell_type",
    "switch_regimes",
    "ums_certificate",
    "valid_mask",
    "validate_inventory",
]

_DATA_DIR = Path(reference.__file__).with_name("data")
#: The illustrative charge code table shipped with tomlib.
CHARGE_CODES_PATH = _DATA_DIR / "ums_charge_codes.csv"
#: The illustrative switch regime table shipped with tomlib.
SWITCH_REGIMES_PATH = _DATA_DIR / "ums_switch_regimes.csv"

#: Control gear of a charge code.
CONTROLS = ("photocell_electronic", "photocell_thermal", "cms", "timeswitch", "none")
#: Kinds of switch regime; the first four are switched at dusk and dawn by a photocell (or a CMS node).
KINDS = ("dusk_dawn", "part_night", "dimming", "cms", "fixed", "continuous")
#: Kinds switched at dusk and dawn.
PHOTOCELL_KINDS = KINDS[:4]

#: Declared inventory columns (what the UMSO holds and sends in the D0388-like file).
INVENTORY_COLUMNS = ("mpan", "item_id", "charge_code", "switch_regime", "quantity", "gsp_group", "location")
#: Validation findings of an inventory line -> what they mean.
FINDINGS = {
    "missing_value": "a required field is empty",
    "invalid_mpan": "the MPAN core is not 13 digits with a valid check digit",
    "gsp_group_mismatch": "the line's GSP group is not the GSP group of the MPAN's distributor",
    "invalid_charge_code": "the charge code is not 13 digits",
    "unknown_charge_code": "the charge code is not in the charge code table",
    "invalid_switch_regime": "the switch regime is not 3 digits",
    "unknown_switch_regime": "the switch regime is not in the switch regime table",
    "charge_code_not_allowed_with_regime": "the charge code's control gear (or a non-dimmable lamp) does not "
                                           "go with the switch regime",
    "non_positive_quantity": "the quantity is not a whole number > 0",
    "duplicate_line": "the same MPAN, charge code, switch regime and location (or item id) is listed again",
}

_HHMM = r"(?:[01]\d|2[0-3]):[0-5]\d|24:00"


# --------------------------------------------------------------------------------------------------
# reference tables
# --------------------------------------------------------------------------------------------------
_CC_COLUMNS = (
    Col("charge_code", pattern=r"\d{13}"),
    Col("equipment_type", pattern=r"[A-Z][A-Z_]*"),
    Col("description"),
    Col("lamp_watts", "float", lo=0),
    Col("circuit_watts", "float", lo=0.001),
    Col("control", choices=CONTROLS),
    Col("dimmable", choices=("true", "false")),
)

_SR_COLUMNS = (
    Col("switch_regime", pattern=r"\d{3}"),
    Col("kind", choices=KINDS),
    Col("description"),
    Col("on_lux", "float", lo=0.1, optional=True),
    Col("off_lux", "float", lo=0.1, optional=True),
    Col("passive_on_offset_min", "float", lo=-180, hi=180, optional=True),
    Col("passive_off_offset_min", "float", lo=-180, hi=180, optional=True),
    Col("clock_on", pattern=_HHMM, optional=True),
    Col("clock_off", pattern=_HHMM, optional=True),
    Col("dim_level", "float", lo=0, hi=1, optional=True),
    Col("dim_start", pattern=_HHMM, optional=True),
    Col("dim_end", pattern=_HHMM, optional=True),
    Col("allowed_controls", pattern=r"[a-z_]+(;[a-z_]+)*"),
    Col("requires_dimmable", choices=("true", "false")),
    Col("annual_hours", "float", lo=0, hi=8784, optional=True),
)

# fields each kind must have (all others of the switching fields must be empty)
_REQUIRED = {
    "dusk_dawn": ("on_lux", "off_lux", "passive_on_offset_min", "passive_off_offset_min"),
    "part_night": ("on_lux", "off_lux", "passive_on_offset_min", "passive_off_offset_min", "clock_on", "clock_off"),
    "dimming": ("on_lux", "off_lux", "passive_on_offset_min", "passive_off_offset_min", "dim_level", "dim_start",
                "dim_end"),
    "cms": ("on_lux", "off_lux", "passive_on_offset_min", "passive_off_offset_min"),
    "fixed": ("clock_on", "clock_off"),
    "continuous": (),
}
_OPTIONAL = {"cms": ("dim_level", "dim_start", "dim_end", "clock_on", "clock_off"),
             "dimming": ("clock_on", "clock_off")}
_SWITCHING_FIELDS = ("on_lux", "off_lux", "passive_on_offset_min", "passive_off_offset_min", "clock_on", "clock_off",
                     "dim_level", "dim_start", "dim_end")


def load_charge_codes(path: str | Path | None = None) -> pd.DataFrame:
    """Read a UMS charge code table.

    Parameters
    ----------
    path : path, optional
        CSV with the columns of ``ums_charge_codes.csv`` (leading ``#`` lines allowed); default
        :data:`CHARGE_CODES_PATH`.

    Returns
    -------
    DataFrame
        Index ``charge_code`` (13-digit str); columns ``equipment_type``, ``description``,
        ``lamp_watts`` [W], ``circuit_watts`` [W], ``control`` (:data:`CONTROLS`), ``dimmable`` (bool).

    Raises
    ------
    ValueError
        Naming the file, line and field.
    """
    rows = read_table(Path(path) if path else CHARGE_CODES_PATH, _CC_COLUMNS, key=("charge_code",))
    df = rows.frame("charge_code")
    df["dimmable"] = (df["dimmable"] == "true").to_numpy()
    return df


def load_switch_regimes(path: str | Path | None = None) -> pd.DataFrame:
    """Read a UMS switch regime table and check each kind has exactly its fields.

    Parameters
    ----------
    path : path, optional
        CSV with the columns of ``ums_switch_regimes.csv``; default :data:`SWITCH_REGIMES_PATH`.

    Returns
    -------
    DataFrame
        Index ``switch_regime`` (3-digit str); the file's columns (lux [lux], offsets [min], clock
        times ``HH:MM`` local, ``dim_level`` [-], ``annual_hours`` [h/year], ``requires_dimmable`` bool,
        ``allowed_controls`` as a tuple) plus ``clock_on_min``, ``clock_off_min``, ``dim_start_min``,
        ``dim_end_min`` [min after local midnight, -1 where empty] and ``photocell_type``
        (e.g. ``"35/18"``, "" for clock regimes).

    Raises
    ------
    ValueError
        Naming the file, line and field: unknown control, a field missing or present against the
        regime's kind, or a part-night window that does not lie inside one night.
    """
    rows = read_table(Path(path) if path else SWITCH_REGIMES_PATH, _SR_COLUMNS, key=("switch_regime",))
    for i, kind in enumerate(rows.values["kind"]):
        need = _REQUIRED[kind]
        for name in _SWITCHING_FIELDS:
            present = rows.values[name][i] is not None
            if name in need and not present:
                raise rows.fail(i, name, f"a {kind} regime needs a value")
            if present and name not in need and name not in _OPTIONAL.get(kind, ()):
                raise rows.fail(i, name, f"must be empty for a {kind} regime, got {rows.values[name][i]!r}")
        dims = [rows.values[n][i] is not None for n in ("dim_level", "dim_start", "dim_end")]
        if any(dims) and not all(dims):
            raise rows.fail(i, "dim_level", "dim_level, dim_start and dim_end go together")
        pn = [rows.values[n][i] is not None for n in ("clock_on", "clock_off")]
        if kind == "cms" and any(pn) and not all(pn):
            raise rows.fail(i, "clock_off", "clock_on and clock_off go together")
        unknown = sorted(set(rows.values["allowed_controls"][i].split(";")) - set(CONTROLS))
        if unknown:
            raise rows.fail(i, "allowed_controls", f"expected controls from {', '.join(CONTROLS)}, got {unknown}")
        if kind in ("part_night", "cms") and all(pn):
            off = sw.minutes_of_clock(rows.values["clock_off"][i])
            on = sw.minutes_of_clock(rows.values["clock_on"][i])
            # both on the night's timeline: evening times (>= 12:00) come before morning times
            if (off - 1440 * (off >= 720)) >= (on - 1440 * (on >= 720)):
                raise rows.fail(i, "clock_on", f"the night's switch-off {rows.values['clock_off'][i]} must come "
                                               f"before its switch-on {rows.values['clock_on'][i]}")
    df = rows.frame("switch_regime")
    df["requires_dimmable"] = (df["requires_dimmable"] == "true").to_numpy()
    df["allowed_controls"] = [tuple(s.split(";")) for s in df["allowed_controls"]]
    for name in ("clock_on", "clock_off", "dim_start", "dim_end"):
        df[f"{name}_min"] = [sw.minutes_of_clock(v) if isinstance(v, str) and v else -1 for v in df[name]]
    df["photocell_type"] = np.where(df["kind"].isin(PHOTOCELL_KINDS).to_numpy(),
                                    [photocell_type(a, b) for a, b in zip(df["on_lux"], df["off_lux"])], "")
    return df


def photocell_type(on_lux: float, off_lux: float) -> str:
    """Label of a photocell type by its switching levels, e.g. ``"35/18"`` [lux]."""
    if not (np.isfinite(on_lux) and np.isfinite(off_lux)):
        return ""
    return f"{on_lux:g}/{off_lux:g}"


@lru_cache(maxsize=1)
def _default_codes() -> pd.DataFrame:
    return load_charge_codes()


@lru_cache(maxsize=1)
def _default_regimes() -> pd.DataFrame:
    return load_switch_regimes()


def charge_codes() -> pd.DataFrame:
    """The shipped (illustrative) charge code table (cached; a copy). See :func:`load_charge_codes`."""
    return _default_codes().copy()


def switch_regimes() -> pd.DataFrame:
    """The shipped (illustrative) switch regime table (cached; a copy). See :func:`load_switch_regimes`."""
    return _default_regimes().copy()


# --------------------------------------------------------------------------------------------------
# UMSO: validation and certificate
# --------------------------------------------------------------------------------------------------
def _text(inv: pd.DataFrame, col: str) -> np.ndarray:
    s = inv[col]
    return np.where(s.isna().to_numpy(), "", s.astype(str).str.strip().to_numpy()).astype(str)


def validate_inventory(inventory: pd.DataFrame, charge_codes: pd.DataFrame | None = None,
                       switch_regimes: pd.DataFrame | None = None) -> pd.DataFrame:
    """UMSO validation of inventory lines: every finding, named.

    Parameters
    ----------
    inventory : DataFrame
        Declared lines with the columns :data:`INVENTORY_COLUMNS` (``quantity`` numeric; other columns
        are ignored).
    charge_codes, switch_regimes : DataFrame, optional
        Tables (default: the shipped ones).

    Returns
    -------
    DataFrame
        One row per finding, columns ``row`` (position in ``inventory``), ``mpan``, ``item_id``,
        ``field``, ``finding`` (a key of :data:`FINDINGS`), ``value`` (as text) and ``message``. A line
        may have several findings; a line with none is valid. The second and later copies of a
        duplicate are the ones flagged.

    Raises
    ------
    ValueError
        If a column is missing.
    """
    missing = [c for c in INVENTORY_COLUMNS if c not in inventory.columns]
    if missing:
        raise ValueError(f"inventory: column(s) {missing} missing; expected {list(INVENTORY_COLUMNS)}")
    codes = charge_codes if charge_codes is not None else _default_codes()
    regimes = switch_regimes if switch_regimes is not None else _default_regimes()
    inv = inventory.reset_index(drop=True)
    n = len(inv)
    text = {c: _text(inv, c) for c in INVENTORY_COLUMNS if c != "quantity"}
    raw_q = inv["quantity"]
    empty_q = raw_q.isna().to_numpy() | (raw_q.astype(str).str.strip() == "").to_numpy()
    qty = pd.to_numeric(raw_q, errors="coerce").to_numpy(dtype=float)
    found: list[tuple[np.ndarray, str, str, np.ndarray]] = []

    def add(mask, col, finding, values):
        found.append((np.asarray(mask, dtype=bool), col, finding, np.asarray(values, dtype=object)))

    for col in ("mpan", "charge_code", "switch_regime", "gsp_group"):
        add(text[col] == "", col, "missing_value", text[col])
    add(empty_q, "quantity", "missing_value", raw_q.astype(str))
    mp = text["mpan"]
    good_mpan = np.zeros(n, dtype=bool)
    shaped = pd.Series(mp).str.fullmatch(r"\d{13}").to_numpy(dtype=bool)
    if shaped.any():
        good_mpan[shaped] = np.asarray(mpan_mod.is_valid(mp[shaped]), dtype=bool)
    add((mp != "") & ~good_mpan, "mpan", "invalid_mpan", mp)
    groups = reference.gsp_groups()
    dist_to_group = pd.Series(groups.index.to_numpy(), index=groups["distributor_id"].astype(int).to_numpy())
    expected = np.full(n, "", dtype=object)
    if good_mpan.any():
        expected[good_mpan] = dist_to_group.reindex(
            pd.Series(mp[good_mpan]).str[:2].astype(int).to_numpy()).fillna("").to_numpy()
    gsp = text["gsp_group"]
    add(good_mpan & (gsp != "") & (expected != gsp), "gsp_group", "gsp_group_mismatch", gsp)

    cc = text["charge_code"]
    cc_shape = pd.Series(cc).str.fullmatch(r"\d{13}").to_numpy(dtype=bool)
    add((cc != "") & ~cc_shape, "charge_code", "invalid_charge_code", cc)
    cc_known = np.isin(cc, codes.index.to_numpy(dtype=str))
    add(cc_shape & ~cc_known, "charge_code", "unknown_charge_code", cc)
    sr = text["switch_regime"]
    sr_shape = pd.Series(sr).str.fullmatch(r"\d{3}").to_numpy(dtype=bool)
    add((sr != "") & ~sr_shape, "switch_regime", "invalid_switch_regime", sr)
    sr_known = np.isin(sr, regimes.index.to_numpy(dtype=str))
    add(sr_shape & ~sr_known, "switch_regime", "unknown_switch_regime", sr)

    both = cc_known & sr_known
    allowed = np.zeros(n, dtype=bool)
    if both.any():
        control = codes["control"].reindex(cc[both]).to_numpy(dtype=str)
        dimmable = codes["dimmable"].reindex(cc[both]).to_numpy(dtype=bool)
        allowed_controls = regimes["allowed_controls"].reindex(sr[both]).to_numpy()
        needs_dim = regimes["requires_dimmable"].reindex(sr[both]).to_numpy(dtype=bool)
        ok = np.array([c in a for c, a in zip(control, allowed_controls)], dtype=bool) & (dimmable | ~needs_dim)
        allowed[both] = ok
    add(both & ~allowed, "switch_regime", "charge_code_not_allowed_with_regime",
        np.char.add(np.char.add(cc.astype(str), " with "), sr.astype(str)))
    whole = np.isfinite(qty) & (np.mod(np.where(np.isfinite(qty), qty, 0), 1) == 0)
    add(~empty_q & ~(whole & (qty > 0)), "quantity", "non_positive_quantity", raw_q.astype(str))

    key = pd.Series(mp) + "|" + pd.Series(cc) + "|" + pd.Series(sr) + "|" + pd.Series(text["location"])
    item = pd.Series(mp) + "|" + pd.Series(text["item_id"])
    dup = key.duplicated().to_numpy() | (item.duplicated().to_numpy() & (text["item_id"] != ""))
    add(dup, "item_id", "duplicate_line", text["item_id"])

    parts = []
    for mask, col, finding, values in found:
        rows = np.flatnonzero(mask)
        if rows.size:
            parts.append(pd.DataFrame({
                "row": rows, "mpan": mp[rows], "item_id": text["item_id"][rows], "field": col,
                "finding": finding, "value": values[rows].astype(str),
                "message": [f"inventory row {r} (MPAN {mp[r]}, item {text['item_id'][r]}): {FINDINGS[finding]}, "
                            f"got {values[r]!s}" for r in rows],
            }))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in (("row", np.int64), ("mpan", str), ("item_id", str),
                                                                   ("field", str), ("finding", str), ("value", str),
                                                                   ("message", str))})
    return pd.concat(parts, ignore_index=True).sort_values(["row", "finding"], kind="stable").reset_index(drop=True)


def valid_mask(inventory: pd.DataFrame, findings: pd.DataFrame) -> np.ndarray:
    """True for the rows of ``inventory`` without a finding in ``findings`` (:func:`validate_inventory`)."""
    ok = np.ones(len(inventory), dtype=bool)
    ok[findings["row"].to_numpy(dtype=np.int64)] = False
    return ok


def certificate_lines(inventory: pd.DataFrame, charge_codes: pd.DataFrame | None = None,
                      switch_regimes: pd.DataFrame | None = None, annual_hours=None) -> pd.DataFrame:
    """Annual consumption of each valid inventory line.

    Parameters
    ----------
    inventory : DataFrame
        Declared lines (:data:`INVENTORY_COLUMNS`); invalid lines are left out (see
        :func:`validate_inventory`).
    charge_codes, switch_regimes : DataFrame, optional
    annual_hours : float, Mapping or Series, optional
        Annual equivalent full-power burning hours [h/year]: one number for every line, or per switch
        regime; default the regime table's ``annual_hours``.

    Returns
    -------
    DataFrame
        The valid lines with ``circuit_watts`` [W], ``annual_hours`` [h/year] and ``annual_kwh``
        [kWh/year] = circuit W x quantity x hours / 1000.

    Raises
    ------
    ValueError
        If a line's regime has no annual hours.
    """
    codes = charge_codes if charge_codes is not None else _default_codes()
    regimes = switch_regimes if switch_regimes is not None else _default_regimes()
    findings = validate_inventory(inventory, codes, regimes)
    lines = inventory.reset_index(drop=True)[valid_mask(inventory, findings)].copy()
    cc = lines["charge_code"].astype(str).str.strip()
    sr = lines["switch_regime"].astype(str).str.strip()
    lines["circuit_watts"] = codes["circuit_watts"].reindex(cc).to_numpy(dtype=float)
    if annual_hours is None:
        hours = regimes["annual_hours"].reindex(sr).to_numpy(dtype=float)
    elif isinstance(annual_hours, (Mapping, pd.Series)):
        hours = pd.Series(annual_hours, dtype=float).reindex(sr).to_numpy(dtype=float)
    else:
        hours = np.full(len(lines), float(annual_hours))
    if np.isnan(hours).any():
        bad = sr.to_numpy()[np.isnan(hours)][0]
        raise ValueError(f"certificate: switch regime {bad} has no annual burning hours (table column annual_hours "
                         "or the annual_hours argument)")
    lines["annual_hours"] = hours
    q = pd.to_numeric(lines["quantity"]).to_numpy(dtype=float)
    lines["annual_kwh"] = lines["circuit_watts"].to_numpy() * q * hours / 1000.0
    return lines


def ums_certificate(inventory: pd.DataFrame, charge_codes: pd.DataFrame | None = None,
                    switch_regimes: pd.DataFrame | None = None, annual_hours=None) -> pd.DataFrame:
    """The UMS certificate per MPAN: connected load and annual consumption of the valid lines.

    Parameters
    ----------
    inventory, charge_codes, switch_regimes, annual_hours
        As :func:`certificate_lines`.

    Returns
    -------
    DataFrame
        Index ``mpan`` (every MPAN of the inventory); columns ``n_lines`` (valid), ``n_rejected``
        (lines with findings), ``n_items`` (sum of quantities), ``circuit_kw`` [kW] and
        ``annual_consumption`` [kWh/year].
    """
    lines = certificate_lines(inventory, charge_codes, switch_regimes, annual_hours)
    q = pd.to_numeric(lines["quantity"]).astype(float)
    per = pd.DataFrame({"mpan": lines["mpan"].astype(str).str.strip().to_numpy(), "n_lines": 1, "n_items": q.to_numpy(),
                        "circuit_kw": lines["circuit_watts"].to_numpy() * q.to_numpy() / 1000.0,
                        "annual_consumption": lines["annual_kwh"].to_numpy()})
    out = per.groupby("mpan").sum()
    all_mpans = pd.Index(pd.unique(inventory["mpan"].astype(str).str.strip().to_numpy()), name="mpan")
    out = out.reindex(all_mpans).fillna(0.0)
    n_all = inventory.assign(_m=inventory["mpan"].astype(str).str.strip()).groupby("_m").size()
    out["n_lines"] = out["n_lines"].astype(np.int64)
    out["n_rejected"] = (n_all.reindex(all_mpans).to_numpy() - out["n_lines"].to_numpy()).astype(np.int64)
    return out[["n_lines", "n_rejected", "n_items", "circuit_kw", "annual_consumption"]]
