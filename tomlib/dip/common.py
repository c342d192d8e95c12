"""What every DIP message shares: participants, the common blocks, wire formats of times and decimals.

Participants [INF]
------------------
The DIP identifies participants by a 10-character DIP id (DI-997) and a role (DI-984). The workbench
has no real ids, so :func:`dip_id` makes synthetic, deterministic 10-digit ones:
``"99" + role number (2 digits) + key (6 digits)`` -- digits only, because the sender unique
reference (DT regex ``^S-((IF|REP)-)?\\d{3,4}-[0-9a-fA-F]{10}-[A-Z]{3,5}-\\d{8}-[a-zA-Z0-9]+$``)
embeds the sender's id as 10 hexadecimal characters. The key of a distributor is its distributor id
(10..23, :func:`tomlib.reference.gsp_groups`), of a supplier its MPID read as a base-26 number, else
1. :class:`DipConfig` overrides any id and sets the environment tag (default ``DEV``: these are not
production messages).

Wire formats
------------
- Date-times (DT-003): exactly 25 characters, ``YYYY-MM-DDTHH:MM:SS+00:00``; tomlib writes UTC
  (offset ``+00:00``) and reads any offset, converting to UTC. Sub-second parts are not carried:
  the writers refuse a time that is not on a whole second rather than truncate it silently.
- Decimals (DT-016, decimal(9,3); DT-022/023, decimal(9,6)): strings with exactly 3 (6) decimals,
  ``-`` for negatives, at most 9 integer digits; a value is rounded half-to-even to the last place,
  and one that does not fit raises, naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tomlib import reference

__all__ = [
    "ENVIRONMENTS",
    "ROLE_NUMBERS",
    "SCHEMA_VERSION",
    "DipConfig",
    "common_block",
    "decimal_text",
    "dip_id",
    "distributor_dip_ids",
    "parse_decimal",
    "parse_utc",
    "sender_reference",
    "sent_timestamp",
    "unwrap",
    "utc_text",
]

#: S0.schemaVersion of every IF interface in v2.1.0 (REP reports: "008").
SCHEMA_VERSION = "011"
#: DI-991 environment tags.
ENVIRONMENTS = ("PRD", "SITB", "SIT", "UIT", "DEV")
#: [INF] Role -> the 2-digit number inside synthetic DIP ids.
ROLE_NUMBERS = {
    "SDS": 10,    # smart data service
    "ADS": 11,    # advanced data service
    "UMSDS": 12,  # unmetered supplies data service
    "VAS": 20,    # volume allocation service
    "LSS": 21,    # load shaping service
    "ECS": 22,    # Elexon central systems (REP reports)
    "REGS": 30,   # registration service
    "SMS": 40,    # smart metering service
    "SUP": 50,    # supplier
    "LDSO": 60,   # distributor
}


def dip_id(role: str, key: int | str = 1) -> str:
    """Synthetic DIP participant id (10 digits) of a role and key [INF].

    Parameters
    ----------
    role : str
        One of :data:`ROLE_NUMBERS`.
    key : int or str
        0..999999, or a 4-letter MPID (read as a base-26 number).

    Returns
    -------
    str
        E.g. ``dip_id("LDSO", 12) == "9960000012"``.
    """
    if role not in ROLE_NUMBERS:
        raise ValueError(f"dip_id: unknown role {role!r}; expected one of {list(ROLE_NUMBERS)}")
    if isinstance(key, str):
        if not (len(key) == 4 and key.isascii() and key.isalpha() and key.isupper()):
            raise ValueError(f"dip_id: a string key must be a 4-letter MPID, got {key!r}")
        n = 0
        for ch in key:
            n = n * 26 + (ord(ch) - ord("A"))
        key = n
    if not 0 <= int(key) <= 999_999:
        raise ValueError(f"dip_id: key must be within 0..999999, got {key}")
    return f"99{ROLE_NUMBERS[role]:02d}{int(key):06d}"


@dataclass(frozen=True)
class DipConfig:
    """Identity of the workbench's participants on the DIP [INF].

    Attributes
    ----------
    environment : str
        S1.environmentTag (DI-991), one of :data:`ENVIRONMENTS`.
    sub_text : str or None
        S1.subText (DI-977), free text for testing; None = null.
    dip_ids : mapping
        Overrides of :func:`dip_id`: ``{"SDS": "1009012345", "LDSO:12": "2509012345", "SUP:ALFA": ...}``
        (role, or role and key).
    """

    environment: str = "DEV"
    sub_text: str | None = None
    dip_ids: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.environment not in ENVIRONMENTS:
            raise ValueError(f"DipConfig.environment must be one of {ENVIRONMENTS}, got {self.environment!r}")
        if self.sub_text is not None and not 1 <= len(self.sub_text) <= 500:
            raise ValueError(f"DipConfig.sub_text must be 1..500 characters or None, got {len(self.sub_text)}")
        for k, v in self.dip_ids.items():
            if not (isinstance(v, str) and len(v) == 10):
                raise ValueError(f"DipConfig.dip_ids[{k!r}] must be a 10-character DIP id, got {v!r}")

    def id(self, role: str, key: int | str = 1) -> str:
        """DIP id of a role (and key), with this config's overrides."""
        return self.dip_ids.get(f"{role}:{key}", self.dip_ids.get(role) if key == 1 else None) or dip_id(role, key)

    @classmethod
    def coerce(cls, config: Any) -> DipConfig:
        """None -> defaults; a mapping -> fields of that name; a DipConfig as it is."""
        if config is None:
            return cls()
        if isinstance(config, cls):
            return config
        if isinstance(config, Mapping):
            unknown = sorted(set(config) - {"environment", "sub_text", "dip_ids"})
            if unknown:
                raise ValueError(f"DipConfig: unknown key(s) {unknown}; expected environment, sub_text, dip_ids")
            return cls(**config)
        raise TypeError(f"DipConfig: expected None, a mapping or a DipConfig, got {type(config).__name__}")


def distributor_dip_ids(gsp_groups, config: DipConfig | None = None) -> np.ndarray:
    """DIP id of the distributor of each GSP group (M0.distributorDIPID) [INF ids].

    Raises
    ------
    ValueError
        Naming a GSP group that is not in :func:`tomlib.reference.gsp_groups`.
    """
    cfg = DipConfig.coerce(config)
    table = reference.gsp_groups()
    groups = np.asarray(gsp_groups, dtype=str)
    uniq, inv = np.unique(groups, return_inverse=True)
    unknown = [g for g in uniq if g not in table.index]
    if unknown:
        raise ValueError(f"unknown GSP group(s) {unknown}; expected one of {list(table.index)}")
    ids = np.array([cfg.id("LDSO", int(table.loc[g, "distributor_id"])) for g in uniq], dtype=object)  # <= 14
    return ids[inv] if groups.size else np.zeros(0, dtype=object)


# ------------------------------------------------------------------------------------------ times


def _as_utc_ns(times) -> np.ndarray:
    t = pd.DatetimeIndex(pd.to_datetime(np.asarray(times).ravel()) if not isinstance(times, pd.DatetimeIndex)
                         else times)
    if t.tz is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return t.as_unit("ns").to_numpy()


def utc_text(times, what: str = "time") -> np.ndarray:
    """UTC instants -> DT-003 strings ``YYYY-MM-DDTHH:MM:SS+00:00`` (object array, same length).

    Parameters
    ----------
    times : array-like of datetime-like
        tz-naive values mean UTC.
    what : str
        Names the field in errors.

    Raises
    ------
    ValueError
        For NaT or a time that is not on a whole second.
    """
    t = _as_utc_ns(times)
    if np.isnat(t).any():
        raise ValueError(f"{what}: {int(np.isnat(t).sum())} missing time(s) (NaT); every DIP date-time is required")
    frac = t.astype(np.int64) % 10**9
    if (frac != 0).any():
        raise ValueError(f"{what}: {pd.Timestamp(t[np.argmax(frac != 0)])} is not on a whole second; DIP date-times "
                         "carry seconds (DT-003), round the times first")
    text = np.datetime_as_string(t.astype("datetime64[s]"), unit="s")
    return np.char.add(text, "+00:00").astype(object)


def parse_utc(texts, what: str = "date-time") -> np.ndarray:
    """DT-003 strings (any offset) -> tz-naive UTC ``datetime64[ns]``.

    Raises
    ------
    ValueError
        Naming the first string that is not ``YYYY-MM-DDTHH:MM:SS±HH:MM``.
    """
    s = np.asarray(texts, dtype=object).ravel()
    if s.size == 0:
        return np.zeros(0, dtype="datetime64[ns]")
    arr = s.astype(str)
    # fast path: every value in UTC
    utc = np.char.endswith(arr, "+00:00") & (np.char.str_len(arr) == 25)
    out = np.empty(arr.size, dtype="datetime64[ns]")
    try:
        if utc.all():
            out[:] = np.char.replace(arr, "+00:00", "").astype("datetime64[s]")
        else:
            parsed = pd.to_datetime(pd.Series(arr), format="%Y-%m-%dT%H:%M:%S%z", utc=True)
            out[:] = parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    except (ValueError, TypeError):
        good = np.array([_one_time_ok(x) for x in arr])  # only on the error path
        bad = arr[~good]
        raise ValueError(f"{what}: {bad[0]!r} is not an ISO 8601 date-time with offset "
                         "(YYYY-MM-DDTHH:MM:SS+HH:MM)") from None
    return out


def _one_time_ok(text: str) -> bool:
    try:
        pd.to_datetime(text, format="%Y-%m-%dT%H:%M:%S%z")
    except (ValueError, TypeError):
        return False
    return len(text) == 25


def sent_timestamp(sent_at=None) -> pd.Timestamp:
    """The messages' S1.senderTimestamp as a tz-naive UTC Timestamp on a whole second.

    ``None`` = now; tz-aware values are converted to UTC; sub-seconds are dropped (the instant a
    message is sent is ours to choose, unlike the data times the writers refuse to round).
    """
    t = pd.Timestamp.now(tz="UTC") if sent_at is None else pd.Timestamp(sent_at)
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return t.floor("s")


def sender_reference(interface: str, sender_id: str, role: str, sent: pd.Timestamp | str, unique: str) -> str:
    """S1.senderUniqueReference (DI-995): ``S-IF-021-<DIP id>-<role>-<YYYYMMDD>-<unique>``.

    ``sent`` is the send time or its date already as ``YYYYMMDD`` (cheaper in a loop).
    """
    day = sent if isinstance(sent, str) else f"{sent:%Y%m%d}"
    return f"S-{interface}-{sender_id}-{role}-{day}-{unique}"


def common_block(interface: str, event_code: str, *, sender_id: str, role: str, sent_text: str, reference: str,
                 config: DipConfig, schema_version: str = SCHEMA_VERSION, m0: dict | None = None,
                 recipients: list[str] | None = None) -> dict:
    """CommonBlock with S0, S1 and, as given, M0 and A0 (primary recipients)."""
    block = {
        "S0": {"interfaceID": interface, "schemaVersion": schema_version, "eventCode": event_code},
        "S1": {
            "environmentTag": config.environment,
            "subText": config.sub_text,
            "senderUniqueReference": reference,
            "senderTimestamp": sent_text,
            "senderDIPID": sender_id,
            "senderRoleID": role,
            "senderCorrelationID": None,
            "DIPConnectionProviderID": None,
        },
    }
    if recipients is not None:
        block["A0"] = {"primaryRecipients": list(recipients), "secondaryRecipients": [], "always": []}
    if m0 is not None:
        block["M0"] = m0
    return block


def unwrap(item: Any, where: str) -> dict:
    """The payload of a DIP message ``{"payload": {...}}``, or a bare payload as it is.

    Raises
    ------
    ValueError
        If ``item`` is neither.
    """
    if isinstance(item, dict):
        if set(item) == {"payload"} and isinstance(item["payload"], dict):
            return item["payload"]
        if "CommonBlock" in item or "CustomBlock" in item:
            return item
        raise ValueError(f"{where}: expected a DIP message {{\"payload\": {{...}}}} or a payload with "
                         f"CommonBlock/CustomBlock, got an object with keys {sorted(item)[:6]}")
    raise ValueError(f"{where}: expected a DIP message object, got {type(item).__name__}")


# ------------------------------------------------------------------------------------------ decimals


def decimal_text(values, places: int = 3, what: str = "value") -> np.ndarray:
    """Numbers -> fixed-point strings with exactly ``places`` decimals (vectorised).

    Parameters
    ----------
    values : array-like of float
    places : int
        3 for DT-016 decimal(9,3), 6 for decimal(9,6), 2 for DT-031.
    what : str
        Names the field in errors.

    Returns
    -------
    numpy.ndarray of str
        Same shape; ``"-0.000"`` never occurs (a value rounding to zero is ``"0.000"``).

    Raises
    ------
    ValueError
        For a non-finite value or one with more than 9 integer digits.
    """
    x = np.asarray(values, dtype=float)
    scale = 10**places
    with np.errstate(invalid="ignore", over="ignore"):
        w = np.rint(x * scale)
        ok = np.isfinite(w) & (np.abs(w) < 1e9 * scale)
    if not ok.all():
        bad = x[~ok].ravel()[0]
        raise ValueError(f"{what}: {bad!r} cannot be written as a DIP decimal (finite, at most 9 integer digits, "
                         f"{places} decimals)")
    w = w.astype(np.int64)
    a = np.abs(w)
    whole = (a // scale).astype(str)
    frac = np.strings.zfill((a % scale).astype(str), places)
    text = np.strings.add(np.strings.add(whole, "."), frac)
    return np.where(w < 0, np.strings.add("-", text), text)


def parse_decimal(texts, what: str = "value") -> np.ndarray:
    """Decimal strings (as validated by the schema) -> float64; raises naming the first bad one."""
    arr = np.asarray(texts, dtype=object).ravel()
    try:
        return arr.astype(str).astype(np.float64)
    except ValueError:
        for v in arr:  # error path only
            try:
                float(v)
            except (TypeError, ValueError):
                raise ValueError(f"{what}: {v!r} is not a decimal number") from None
        raise
