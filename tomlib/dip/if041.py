"""IF-041 smart/advanced readings: register reads from the Meter Reading Service (and the DCC).

One message per read event -- an MPAN's registers read at one instant, of one read type, reaching
the data service at one instant -- from a read table with the columns of
:data:`tomlib.services.metering.READ_COLUMNS` (``MeterReading.reads``, ``ScreenedReads.accepted``,
``Metering.exchange_reads``):

==========================================  =======================================================
message field                               from the read table
==========================================  =======================================================
M0.MPANCore, GSPGroupID, distributorDIPID   ``mpan``; GSP group from the MPAN's distributor id
                                            (:func:`tomlib.mpan.gsp_group_of`)
S0.eventCode, readingMethod (DI-094)        ``read_type``, map :data:`READ_TYPES` below [INF]
S1.senderTimestamp                          ``available_at`` (floored to the second: the instant
                                            the read reached the data service is its send time)
B064List[] (cumulative register)            the read of a meter with ONE register
B065List[] (configurable register)          each register of a meter with several registers,
                                            ``configurableRegisterID`` = ``register_id`` [INF]
meterID                                     ``meter_id`` (DI-056, at most 10 characters)
cumulativeRegisterReading / ...Reading      ``value`` [kWh], 3 decimals
...ReadingDateTime / ...ReadingDate         ``read_at`` [UTC]
siteVisitCheckCode                          null (the model has no site visit outcome)
==========================================  =======================================================

B064 has no register id, so it carries single-register meters (register ``01``); a meter's
register count comes from ``registers`` (``Metering.registers``) when given, else from the register
ids the read table holds for that meter. Reading maps B064 back to register ``01``.

Read types [INF] (one-to-one, so reading restores the read type):

=============  ========================  ===============
read_type      eventCode                 readingMethod
=============  ========================  ===============
remote         [ReadingRemote]           A (actual)
site_visit     [ReadingOnSite]           A
customer       [ReadingCOR]              C (customer)
removal        [ReadingRemv]             A
installation   [ReadingInstl]            A
deemed         [DSEstimate]              E (estimated by the data service)
opening        [ReadingOverride]         A
=============  ========================  ===============
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tomlib import mpan as mpan_mod
from tomlib.dip import schema
from tomlib.dip.common import (
    DipConfig,
    common_block,
    decimal_text,
    distributor_dip_ids,
    parse_decimal,
    parse_utc,
    sender_reference,
    unwrap,
    utc_text,
)
from tomlib.dip.if021 import _labelled

__all__ = ["INTERFACE", "READ_TYPES", "If041Data", "if041_payloads", "read_if041"]

INTERFACE = "IF-041"
#: [INF] read_type -> (eventCode, readingMethod DI-094).
READ_TYPES = {
    "remote": ("[ReadingRemote]", "A"),
    "site_visit": ("[ReadingOnSite]", "A"),
    "customer": ("[ReadingCOR]", "C"),
    "removal": ("[ReadingRemv]", "A"),
    "installation": ("[ReadingInstl]", "A"),
    "deemed": ("[DSEstimate]", "E"),
    "opening": ("[ReadingOverride]", "A"),
}
_TYPE_OF_EVENT = {ev: t for t, (ev, _) in READ_TYPES.items()}
_COLUMNS = ("mpan", "meter_id", "register_id", "read_at", "value", "read_type", "available_at")
_ROLE = "SDS"


def _register_counts(reads: pd.DataFrame, registers: pd.DataFrame | None) -> pd.Series:
    table = registers if registers is not None else reads
    return table.groupby(table["meter_id"].astype(str))["register_id"].nunique()


def if041_payloads(reads: Any, *, registers: pd.DataFrame | None = None, config: Any = None,
                   stats: dict | None = None) -> Iterator[tuple[str, dict]]:
    """IF-041 payloads of a read table, one per read event, in order of ``available_at``.

    Parameters
    ----------
    reads : DataFrame or MeterReading
        Columns ``mpan, meter_id, register_id, read_at, value, read_type, available_at`` (others
        ignored); ``value`` is the register as displayed [kWh].
    registers : DataFrame, optional
        ``Metering.registers`` (``meter_id``, ``register_id``): decides which meters have one
        register (B064) and which several (B065).
    config : DipConfig or mapping, optional
    stats : dict, optional
        Counters updated in place: ``messages``, ``reads``.

    Yields
    ------
    (str, dict)
        The local date of ``available_at`` (``YYYY-MM-DD``, the group of the daily layout) and the
        payload.

    Raises
    ------
    ValueError
        A missing column, an unknown read type, a meter id longer than 10 characters, a read time
        not on a whole second or a value that does not fit decimal(9,3), naming the row.
    """
    table = getattr(reads, "reads", reads)
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"IF-041 writer: expected a read table (DataFrame) or a MeterReading, got {type(table).__name__}")
    missing = [c for c in _COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"IF-041 writer: the read table lacks column(s) {missing}; expected {list(_COLUMNS)}")
    cfg = DipConfig.coerce(config)
    counts = stats if stats is not None else {}
    counts.setdefault("messages", 0)
    counts.setdefault("reads", 0)
    if table.empty:
        return
    df = table.loc[:, list(_COLUMNS)].reset_index(drop=True)
    rtype = df["read_type"].to_numpy(dtype=str)
    unknown = sorted(set(rtype) - set(READ_TYPES))
    if unknown:
        raise ValueError(f"IF-041 writer: read_type {unknown} has no IF-041 event; expected one of {list(READ_TYPES)}")
    meter = df["meter_id"].to_numpy(dtype=str)
    long_ids = np.char.str_len(meter.astype(str)) > 10
    if long_ids.any():
        i = int(np.argmax(long_ids))
        raise ValueError(f"IF-041 writer: row {i}: meter_id {str(meter[i])!r} is longer than 10 characters (DI-056)")
    mp = df["mpan"].to_numpy(dtype=str)
    gsp = mpan_mod.gsp_group_of(mp)
    distributor = distributor_dip_ids(gsp, cfg)
    read_text = utc_text(df["read_at"].to_numpy(), "read_at")
    avail = pd.DatetimeIndex(df["available_at"].to_numpy()).floor("s")
    avail_text = utc_text(avail, "available_at")
    value_text = decimal_text(df["value"].to_numpy(dtype=float), 3, "value [kWh]")
    multi = _register_counts(df, registers).reindex(meter).fillna(1).to_numpy() > 1
    reg = df["register_id"].to_numpy(dtype=str)
    local_day = pd.DatetimeIndex(avail).tz_localize("UTC").tz_convert("Europe/London").strftime("%Y-%m-%d")

    keys = (avail.to_numpy(), mp, rtype, df["read_at"].to_numpy())
    order = np.lexsort((np.arange(len(df)), keys[3], keys[2], keys[1], keys[0]))
    new_event = np.zeros(len(order), bool)
    new_event[0] = True
    for col in keys:  # four key columns
        c = col[order]
        new_event[1:] |= c[1:] != c[:-1]
    starts = np.flatnonzero(new_event)
    ends = np.append(starts[1:], len(order))
    sender = cfg.id(_ROLE)
    for s, e in zip(starts, ends):  # one message per read event
        rows = order[s:e]
        i = rows[0]
        event, method = READ_TYPES[rtype[i]]
        b064, b065 = [], []
        for j in rows:  # the registers of one read event: one or a few
            if multi[j]:
                b065.append({"meterID": meter[j], "configurableRegisterReadingDate": read_text[j],
                             "configurableRegisterID": reg[j], "configurableRegisterReading": value_text[j]})
            else:
                b064.append({"meterID": meter[j], "cumulativeRegisterReading": value_text[j],
                             "cumulativeRegisterReadingDateTime": read_text[j], "readingMethod": method,
                             "siteVisitCheckCode": None})
        custom = {}
        if b064:
            custom["B064List"] = b064
        if b065:
            custom["B065List"] = b065
        payload = {
            "CommonBlock": common_block(
                INTERFACE, event, sender_id=sender, role=_ROLE, sent_text=avail_text[i],
                reference=sender_reference(INTERFACE, sender, _ROLE, pd.Timestamp(avail[i]),
                                           f"{mp[i]}{read_text[i][:19].replace('-', '').replace(':', '')}{s}"),
                config=cfg, m0={"MPANCore": mp[i], "distributorDIPID": distributor[i], "GSPGroupID": gsp[i]}),
            "CustomBlock": custom,
        }
        counts["messages"] += 1
        counts["reads"] += len(rows)
        yield local_day[i], payload


@dataclass
class If041Data:
    """IF-041 messages read back.

    Attributes
    ----------
    reads : DataFrame
        Columns ``mpan, meter_id, register_id, read_at, value, read_type, available_at`` (as
        :data:`tomlib.services.metering.READ_COLUMNS`) plus ``gsp_group`` and ``site_visit_check``.
    rejected : DataFrame
        ``mpan, time, field, reason, value``: schema errors of refused messages (``on_invalid="reject"``).
    checks : dict
        ``messages``, ``invalid_messages``, ``reads``.
    """

    reads: pd.DataFrame
    rejected: pd.DataFrame
    checks: dict[str, float] = field(default_factory=dict)


def read_if041(messages: Iterable, *, validate: str = "full", on_invalid: str = "raise",
               where: str = "IF-041") -> If041Data:
    """Read IF-041 messages into a read table.

    Parameters
    ----------
    messages : iterable
        DIP messages, payloads or ``(label, message)`` pairs.
    validate : {"full", "fast", "none"}
    on_invalid : {"raise", "reject"}
        As for :func:`tomlib.dip.read_if021`.
    where : str

    Returns
    -------
    If041Data
    """
    rows: dict[str, list] = {c: [] for c in (*_COLUMNS, "gsp_group", "site_visit_check")}
    rejected: list[dict] = []
    n = n_invalid = 0
    for label, item in _labelled(messages, where):
        n += 1
        payload = unwrap(item, label)
        errs = _errors(payload, validate, label)
        if errs:
            if on_invalid == "raise":
                raise schema.DipValidationError(label, f"{INTERFACE}-Payload", errs)
            n_invalid += 1
            rejected.extend({"mpan": "", "time": pd.NaT, "field": e.path, "reason": f"schema: {e.message}",
                             "value": label} for e in errs)
            continue
        cb, cu = payload["CommonBlock"], payload["CustomBlock"]
        event = cb["S0"]["eventCode"]
        if event not in _TYPE_OF_EVENT:
            raise ValueError(f"{label}: eventCode {event} has no tomlib read type; tomlib reads "
                             f"{sorted(_TYPE_OF_EVENT)}")
        m0 = cb["M0"]
        for item64 in cu.get("B064List", []):
            _append(rows, m0, cb, item64["meterID"], "01", item64["cumulativeRegisterReadingDateTime"],
                    item64["cumulativeRegisterReading"], _TYPE_OF_EVENT[event], item64["siteVisitCheckCode"])
        for item65 in cu.get("B065List", []):
            _append(rows, m0, cb, item65["meterID"], item65["configurableRegisterID"],
                    item65["configurableRegisterReadingDate"], item65["configurableRegisterReading"],
                    _TYPE_OF_EVENT[event], None)
    out = pd.DataFrame({
        "mpan": pd.array(np.asarray(rows["mpan"], dtype=str), dtype="str"),
        "meter_id": pd.array(np.asarray(rows["meter_id"], dtype=str), dtype="str"),
        "register_id": pd.array(np.asarray(rows["register_id"], dtype=str), dtype="str"),
        "read_at": parse_utc(rows["read_at"], "read date-time"),
        "value": parse_decimal(rows["value"], "register reading") if rows["value"] else np.zeros(0),
        "read_type": pd.array(np.asarray(rows["read_type"], dtype=str), dtype="str"),
        "available_at": parse_utc(rows["available_at"], "S1.senderTimestamp"),
        "gsp_group": pd.array(np.asarray(rows["gsp_group"], dtype=str), dtype="str"),
        "site_visit_check": pd.array(rows["site_visit_check"], dtype="object"),
    })
    rej = pd.DataFrame(rejected, columns=["mpan", "time", "field", "reason", "value"])
    return If041Data(out, rej, {"messages": float(n), "invalid_messages": float(n_invalid), "reads": float(len(out))})


def _errors(payload: dict, validate: str, label: str) -> list:
    iface = schema.interface_of(payload)
    if iface not in (None, INTERFACE):
        return [schema.SchemaError("$.CommonBlock.S0.interfaceID", f"{iface!r} is not {INTERFACE}")]
    try:
        schema.check(payload, INTERFACE, mode=validate, where=label)
    except schema.DipValidationError as err:
        return err.errors
    return []


def _append(rows, m0, cb, meter, register, at, value, read_type, svc) -> None:
    rows["mpan"].append(m0["MPANCore"])
    rows["meter_id"].append(meter)
    rows["register_id"].append(register)
    rows["read_at"].append(at)
    rows["value"].append(value)
    rows["read_type"].append(read_type)
    rows["available_at"].append(cb["S1"]["senderTimestamp"])
    rows["gsp_group"].append(m0["GSPGroupID"])
    rows["site_visit_check"].append(svc)
