"""IF-033 registration service request for a metering service appointment (``[MSAppSPRequest]``).

On a change of supplier the Registration Service asks the new supplier's Metering Service to accept
the appointment for the MPAN. tomlib makes one message per registration event whose ``change`` is
``supplier`` (:mod:`tomlib.registration`), from the event, the MPAN's standing data and, when
given, its Meter Technical Details (:class:`tomlib.services.metering.Metering`):

=====================================================  ============================================
message field                                          from
=====================================================  ============================================
M0.MPANCore, GSPGroupID, distributorDIPID              ``mpan``, ``gsp_group`` of the standing data
S1.senderTimestamp                                     ``notified_at`` (floored to the second)
B012 requesting supplier MPID / DIP id                 the event's ``supplier``
B070 proposed metering service MPID / DIP id           the new supplier's metering service [INF]:
                                                       MPID ``"M"`` + the supplier MPID's first three
                                                       letters (:func:`metering_service_mpid`)
B070.proposedMeteringServiceDIPEffectiveFromDate       ``effective_from``
B070.appointmentScenario                               ``COS`` (change of supplier)
B072 incumbent metering service                        the previous supplier's, if the MPAN has an
                                                       earlier event
B022 metering point address                            all null (the model has no addresses)
B023 connection type / energy direction / metered      ``connection_type``; ``measurement_quantity``
                                                       AI -> I, AE -> E; ``market_segment`` != U;
                                                       effective from the MPAN's first event
B024 DUoS tariff id                                    ``llfc`` in force (the LLFC is the DUoS tariff
                                                       id under MHHS), since it last changed
B025 energisation status                               ``energised`` -> E / D, since it last changed
B026 market segment                                    ``market_segment``, from the first event
B029 DCC service flag (with metering)                  the meter's ``dcc_enrolled`` -> A, else N [INF]
B032 SSC (with metering)                               the installed meter's ``ssc``
=====================================================  ============================================

Reading gives one row per message with these fields back (:func:`read_if033`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tomlib.dip import schema
from tomlib.dip.common import (
    DipConfig,
    common_block,
    distributor_dip_ids,
    parse_utc,
    sender_reference,
    unwrap,
    utc_text,
)
from tomlib.dip.if021 import _labelled

__all__ = ["APPOINTMENT_COLUMNS", "EVENT_CODE", "INTERFACE", "If033Data", "if033_payloads", "metering_service_mpid",
           "read_if033"]

INTERFACE = "IF-033"
EVENT_CODE = "[MSAppSPRequest]"
_ROLE = "REGS"
#: Columns of :attr:`If033Data.appointments`.
APPOINTMENT_COLUMNS = (
    "mpan", "gsp_group", "effective_from", "supplier", "supplier_dip_id", "metering_service",
    "metering_service_dip_id", "incumbent_metering_service", "appointment_scenario", "connection_type",
    "energy_direction", "metered", "llfc", "llfc_from", "energised", "energised_from", "market_segment",
    "dcc_service_flag", "ssc", "notified_at",
)
_ADDRESS = {"meteringPointPostcode": None, **{f"addressLine{i}": None for i in range(1, 10)}}
_NEED_STANDING = ("gsp_group", "connection_type", "measurement_quantity", "market_segment")


def metering_service_mpid(supplier) -> np.ndarray:
    """[INF] MPID of each supplier's metering service: ``"M"`` + the first three letters."""
    s = np.asarray(supplier, dtype=str)
    return np.char.add("M", np.char.ljust(np.strings.slice(s, 0, 3), 3, "X")) if s.size else s


def _standing(standing: Any) -> pd.DataFrame:
    import xarray as xr

    if isinstance(standing, xr.Dataset):
        cols = [c for c in _NEED_STANDING if c in standing.coords]
        table = pd.DataFrame({c: np.asarray(standing[c].values).astype(str) for c in cols},
                             index=pd.Index(np.asarray(standing["mpan"].values).astype(str), name="mpan"))
    elif isinstance(standing, pd.DataFrame):
        table = standing.set_index("mpan") if "mpan" in standing.columns else standing
        table.index = table.index.astype(str)
    else:
        raise TypeError(f"IF-033 writer: standing must be a meter cube or a DataFrame, got {type(standing).__name__}")
    missing = [c for c in _NEED_STANDING if c not in table.columns]
    if missing:
        raise ValueError(f"IF-033 writer: standing data lack {missing}")
    return table


def _since(events: pd.DataFrame, col: str) -> np.ndarray:
    """Per event: effective_from of the first event of the latest unchanged run of ``col`` (per MPAN)."""
    changed = (events[col] != events.groupby("mpan")[col].shift()).to_numpy()
    start = np.where(changed, events["effective_from"].to_numpy(), np.datetime64("NaT"))
    return pd.Series(start).groupby(events["mpan"].to_numpy()).ffill().to_numpy()


def if033_payloads(events: pd.DataFrame, standing: Any, *, metering: Any = None, config: Any = None,
                   stats: dict | None = None) -> Iterator[tuple[str, dict]]:
    """IF-033 ``[MSAppSPRequest]`` payloads for the changes of supplier of a registration history.

    Parameters
    ----------
    events : DataFrame
        Registration events (:data:`tomlib.registration.EVENT_COLUMNS`); rows with ``change ==
        "supplier"`` make messages, the others give the history (incumbent, since-dates).
    standing : Dataset or DataFrame
        Meter cube or standing table with ``gsp_group``, ``connection_type``,
        ``measurement_quantity``, ``market_segment`` per MPAN.
    metering : Metering, optional
        Adds B029 (DCC service flag) and B032 (SSC) of the meter installed at ``effective_from``.
    config : DipConfig or mapping, optional
    stats : dict, optional
        Counter ``messages`` updated in place.

    Yields
    ------
    (str, dict)
        The local date of ``notified_at`` and the payload.
    """
    need = ("mpan", "effective_from", "supplier", "llfc", "energised", "notified_at", "change")
    missing = [c for c in need if c not in events.columns]
    if missing:
        raise ValueError(f"IF-033 writer: the events lack column(s) {missing}")
    cfg = DipConfig.coerce(config)
    counts = stats if stats is not None else {}
    counts.setdefault("messages", 0)
    ev = events.sort_values(["mpan", "effective_from", "notified_at"], kind="stable").reset_index(drop=True)
    ev["mpan"] = ev["mpan"].astype(str)
    table = _standing(standing)
    lacking = sorted(set(ev["mpan"]) - set(table.index))
    if lacking:
        raise ValueError(f"IF-033 writer: standing data lack {len(lacking)} MPAN(s) of the events, e.g. {lacking[:3]}")
    st = table.loc[ev["mpan"].to_numpy()]
    first_from = ev.groupby("mpan")["effective_from"].transform("min").to_numpy()
    llfc_from = _since(ev, "llfc")
    energised_from = _since(ev, "energised")
    previous = ev.groupby("mpan")["supplier"].shift().to_numpy()
    cos = np.flatnonzero(ev["change"].to_numpy(dtype=str) == "supplier")
    if cos.size == 0:
        return
    sub = ev.iloc[cos]
    mp = sub["mpan"].to_numpy(dtype=str)
    gsp = st["gsp_group"].to_numpy(dtype=str)[cos]
    distributor = distributor_dip_ids(gsp, cfg)
    supplier = sub["supplier"].to_numpy(dtype=str)
    ms = metering_service_mpid(supplier)
    prev = previous[cos]
    prev_ms = np.array([metering_service_mpid([p])[0] if isinstance(p, str) else None for p in prev], dtype=object)
    eff = utc_text(sub["effective_from"].to_numpy(), "effective_from")
    conn_from = utc_text(first_from[cos], "effective_from")
    llfc_text = utc_text(llfc_from[cos], "effective_from")
    en_text = utc_text(energised_from[cos], "effective_from")
    notified = pd.DatetimeIndex(sub["notified_at"].to_numpy()).floor("s")
    notified_text = utc_text(notified, "notified_at")
    local_day = notified.tz_localize("UTC").tz_convert("Europe/London").strftime("%Y-%m-%d")
    conn = st["connection_type"].to_numpy(dtype=str)[cos]
    direction = np.where(st["measurement_quantity"].to_numpy(dtype=str)[cos] == "AE", "E", "I")
    segment = st["market_segment"].to_numpy(dtype=str)[cos]
    llfc = sub["llfc"].to_numpy(dtype=str)
    energised = sub["energised"].to_numpy(dtype=bool)
    meter_rows = _meters_at(metering, mp, sub["effective_from"].to_numpy()) if metering is not None else None
    sender = cfg.id(_ROLE)
    for k in range(cos.size):  # one message per change of supplier
        custom = {
            "B012": {"serviceProviderAppointmentRequestingSupplierDIPID": cfg.id("SUP", supplier[k]),
                     "serviceProviderAppointmentRequestingSupplierMPID": supplier[k]},
            "B070": {"proposedMeteringServiceDIPID": cfg.id("SMS", ms[k]),
                     "proposedMeteringServiceMPID": ms[k],
                     "proposedMeteringServiceDIPEffectiveFromDate": eff[k],
                     "contractReferenceMeteringService": None,
                     "appointmentScenario": "COS"},
        }
        if prev_ms[k] is not None:
            custom["B072"] = {"incumbentMeteringServiceDIPID": cfg.id("SMS", prev_ms[k]),
                              "incumbentMeteringServiceMPID": prev_ms[k]}
        custom["B022"] = dict(_ADDRESS)
        custom["B023"] = {"connectionTypeIndicator": conn[k], "connectionTypeEffectiveFromDate": conn_from[k],
                          "energyDirection": direction[k], "meteredIndicator": bool(segment[k] != "U")}
        custom["B024"] = {"DUOSTariffID": llfc[k], "DUOSTariffIDEffectiveFromDate": llfc_text[k]}
        custom["B025"] = {"energisationStatus": "E" if energised[k] else "D",
                          "energisationStatusEffectiveFromDate": en_text[k]}
        custom["B026"] = {"marketSegmentIndicator": segment[k], "marketSegmentIndicatorEffectiveFromDate": conn_from[k]}
        if meter_rows is not None and meter_rows[k] is not None:
            dcc, ssc, installed = meter_rows[k]
            custom["B029"] = {"DCCServiceFlag": "A" if dcc else "N", "DCCEffectiveFromDate": installed}
            custom["B032"] = {"profileClass": None, "profileClassEffectiveFromDate": None, "SSC": ssc,
                              "SSCEffectiveFromDate": installed}
        payload = {
            "CommonBlock": common_block(
                INTERFACE, EVENT_CODE, sender_id=sender, role=_ROLE, sent_text=notified_text[k],
                reference=sender_reference(INTERFACE, sender, _ROLE, notified[k], f"{mp[k]}{eff[k][:10].replace('-', '')}"),
                config=cfg, m0={"MPANCore": mp[k], "distributorDIPID": distributor[k], "GSPGroupID": gsp[k]}),
            "CustomBlock": custom,
        }
        counts["messages"] += 1
        yield local_day[k], payload


def _meters_at(metering: Any, mpans: np.ndarray, at: np.ndarray) -> list:
    """(dcc_enrolled, ssc, installed_at text) of the import/export meter installed at each instant, or None."""
    meters = getattr(metering, "meters", metering)
    out: list = []
    by_mpan = {m: g for m, g in meters.groupby(meters["mpan"].astype(str))}
    for m, t in zip(mpans, at):  # one lookup per change of supplier (few)
        g = by_mpan.get(m)
        if g is None:
            out.append(None)
            continue
        ok = (g["installed_at"].to_numpy() <= t) & ((g["removed_at"].isna().to_numpy())
                                                     | (g["removed_at"].to_numpy() > t))
        if not ok.any():
            out.append(None)
            continue
        row = g.iloc[int(np.argmax(ok))]
        installed = pd.Timestamp(row["installed_at"]).floor("s")
        out.append((bool(row["dcc_enrolled"]), str(row["ssc"]), utc_text([installed], "installed_at")[0]))
    return out


@dataclass
class If033Data:
    """IF-033 messages read back: ``appointments`` (:data:`APPOINTMENT_COLUMNS`), ``rejected``, ``checks``."""

    appointments: pd.DataFrame
    rejected: pd.DataFrame
    checks: dict[str, float] = field(default_factory=dict)


def read_if033(messages: Iterable, *, validate: str = "full", on_invalid: str = "raise",
               where: str = "IF-033") -> If033Data:
    """Read IF-033 appointment requests (both ``[MSAppSPRequest]`` and ``[DSAppSPRequest]`` pass the
    schema; only the metering service request is turned into a row, a data service request raises).

    Returns
    -------
    If033Data
        One row per message; times are tz-naive UTC.
    """
    rows: list[dict] = []
    rejected: list[dict] = []
    n = n_invalid = 0
    for label, item in _labelled(messages, where):
        n += 1
        payload = unwrap(item, label)
        iface = schema.interface_of(payload)
        errs = [schema.SchemaError("$.CommonBlock.S0.interfaceID", f"{iface!r} is not {INTERFACE}")] \
            if iface not in (None, INTERFACE) else []
        if not errs:
            try:
                schema.check(payload, INTERFACE, mode=validate, where=label)
            except schema.DipValidationError as err:
                errs = err.errors
        if errs:
            if on_invalid == "raise":
                raise schema.DipValidationError(label, f"{INTERFACE}-Payload", errs)
            n_invalid += 1
            rejected.extend({"mpan": "", "time": pd.NaT, "field": e.path, "reason": f"schema: {e.message}",
                             "value": label} for e in errs)
            continue
        cb, cu = payload["CommonBlock"], payload["CustomBlock"]
        if cb["S0"]["eventCode"] != EVENT_CODE:
            raise ValueError(f"{label}: eventCode {cb['S0']['eventCode']}; tomlib reads {EVENT_CODE} (metering "
                             "service appointments) only")
        b070, b023 = cu["B070"], cu["B023"]
        rows.append({
            "mpan": cb["M0"]["MPANCore"], "gsp_group": cb["M0"]["GSPGroupID"],
            "effective_from": b070["proposedMeteringServiceDIPEffectiveFromDate"],
            "supplier": cu["B012"]["serviceProviderAppointmentRequestingSupplierMPID"],
            "supplier_dip_id": cu["B012"]["serviceProviderAppointmentRequestingSupplierDIPID"],
            "metering_service": b070["proposedMeteringServiceMPID"],
            "metering_service_dip_id": b070["proposedMeteringServiceDIPID"],
            "incumbent_metering_service": cu.get("B072", {}).get("incumbentMeteringServiceMPID"),
            "appointment_scenario": b070["appointmentScenario"],
            "connection_type": b023["connectionTypeIndicator"], "energy_direction": b023["energyDirection"],
            "metered": b023["meteredIndicator"],
            "llfc": cu["B024"]["DUOSTariffID"], "llfc_from": cu["B024"]["DUOSTariffIDEffectiveFromDate"],
            "energised": cu["B025"]["energisationStatus"] == "E",
            "energised_from": cu["B025"]["energisationStatusEffectiveFromDate"],
            "market_segment": cu["B026"]["marketSegmentIndicator"],
            "dcc_service_flag": cu.get("B029", {}).get("DCCServiceFlag"),
            "ssc": cu.get("B032", {}).get("SSC"),
            "notified_at": cb["S1"]["senderTimestamp"],
        })
    out = pd.DataFrame(rows, columns=list(APPOINTMENT_COLUMNS))
    for c in ("effective_from", "llfc_from", "energised_from", "notified_at"):
        out[c] = parse_utc(out[c].to_numpy(), c)
    rej = pd.DataFrame(rejected, columns=["mpan", "time", "field", "reason", "value"])
    return If033Data(out, rej, {"messages": float(n), "invalid_messages": float(n_invalid),
                                "appointments": float(len(out))})
