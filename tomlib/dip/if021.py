"""IF-021 UTC settlement period consumption: data services -> volume allocation (and others).

One message per MPAN, measurement quantity and UTC settlement day (``[ActivePower]`` for AI/AE,
``[ReactivePower]`` for RI/RE), built from a settled meter cube (:func:`tomlib.cube.meter_cube`, e.g.
``SegmentResult.meters`` of :func:`tomlib.services.processing.settle_run`):

==============================================  ===============================================
message field                                   from the cube
==============================================  ===============================================
M0.MPANCore / GSPGroupID                        ``mpan`` / ``gsp_group``
M0.distributorDIPID                             the GSP group's distributor (synthetic id)
S1.senderRoleID, senderDIPID, B044              data service of ``market_segment``: S -> SDS,
                                                A -> ADS, U -> UMSDS [INF ids]
B067.connectionTypeIndicator                    ``connection_type``
B067.connectionTypeEffectiveFromDate            coordinate ``connection_type_effective_from``
                                                if present, else the start of the cube's first
                                                settlement day [INF: no earlier history kept]
B900.MQID.measurementQuantityID                 ``measurement_quantity``
settlementDay.settlementDayDate                 the UTC day, ``YYYY-MM-DDT00:00:00+00:00``
consumptionPeriods[].sp                         UTC **end** of the period (see below)
consumptionPeriods[].v                          ``energy`` [kWh], 3 decimals (DT-016)
consumptionPeriods[].q                          ``quality`` (DI-083 code, map below)
consumptionPeriods[].e                          ``estimation_reason`` (DI-076; 0 -> null)
consumptionPeriods[].arc                        null (tomlib models no amendments)
==============================================  ===============================================

UTC days, not settlement days: a local day of 46 or 50 periods spreads over two UTC days of 48
(the 2026-03-29 local day is 2026-03-29T00:00Z..23:00Z; the 2026-10-25 local day starts at
2026-10-24T23:00Z). A cube that starts or ends inside a UTC day gives that day's messages only
the periods it holds (the schema allows 1..48).

Missing data: a period whose quality is MISSING (tomlib's explicit "no value", not a DI-083 code)
is **left out** of ``consumptionPeriods`` -- IF-021 has no way to send "no value" -- and counted
(``missing_periods_omitted``); an MPAN-day without any value sends no message
(``mpan_days_without_values``). Reading puts MISSING back where a period is absent.

Quality and estimation reason map (one-to-one)
----------------------------------------------
``tomlib.cube.QUALITY_CODES`` numbers the DI-083 codes in the catalogue's order after 0 =
MISSING: code k (1..38) <-> the k-th entry of DI-083 (A, E, E0..E9, ZE, ZE1..ZE3, A1..A3,
AAE1..AAE3, EAE1..EAE3, EA1..EA13); :func:`tomlib.dip.check_code_lists` proves the two lists equal
against the packaged catalogue. DI-076: cube code 0 <-> null, 1..10 <-> ``'1'``..``'10'`` (the
wire value is the code).

The ``sp`` decision
-------------------
``sp`` is DI-082 "Settlement Period Effective To DateTime", defined in the data catalogue as "the UTC
**end** date and time of the settlement period for a consumption value". tomlib writes the end:
the day 2026-03-29 has ``sp`` 00:30 .. 24:00 (= next day 00:00). The official IF-021 example
(Examples v0.6) has 00:00 .. 23:30, i.e. period **starts**; it contradicts the catalogue and the
file says it was not reviewed, so the catalogue wins. Reading: ``sp_convention="end"`` (default)
refuses a day block whose ``sp`` are not period ends of its ``settlementDayDate`` and says so;
``"start"`` reads starts; ``"auto"`` decides per day block -- a block holding ``T00:00`` of its own
day can only be starts, one holding next-day ``T00:00`` only ends, and one that fits both (no
period at either edge) is read as ends, as defined -- and the result records what it assumed
(``attrs["sp_convention"]``, checks ``sp_end_blocks`` / ``sp_start_blocks`` /
``sp_ambiguous_blocks``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from tomlib import cube
from tomlib.dip import schema
from tomlib.dip.common import (
    DipConfig,
    common_block,
    decimal_text,
    distributor_dip_ids,
    parse_decimal,
    parse_utc,
    sender_reference,
    sent_timestamp,
    unwrap,
    utc_text,
)

__all__ = [
    "ESTIMATION_REASON_WIRE",
    "EVENT_CODES",
    "INTERFACE",
    "QUALITY_WIRE",
    "SENDER_ROLES",
    "SP_CONVENTIONS",
    "If021Data",
    "if021_payloads",
    "read_if021",
    "sp_starts",
]

INTERFACE = "IF-021"
#: Event code per measurement quantity.
EVENT_CODES = {"AI": "[ActivePower]", "AE": "[ActivePower]", "RI": "[ReactivePower]", "RE": "[ReactivePower]"}
#: [INF] Data service role sending IF-021 for each market segment.
SENDER_ROLES = {"S": "SDS", "A": "ADS", "U": "UMSDS"}
#: Reading conventions of ``sp``.
SP_CONVENTIONS = ("end", "start", "auto")
#: cube quality code -> DI-083 wire value (None for MISSING: the period is not sent).
QUALITY_WIRE = np.array([None if label == "MISSING" else label
                         for _, label in sorted(cube.QUALITY_LABELS.items())], dtype=object)
#: cube estimation reason code -> DI-076 wire value (None = null).
ESTIMATION_REASON_WIRE = np.array([None] + [str(c) for c in range(1, len(cube.ESTIMATION_REASONS))], dtype=object)

_PERIOD_NS = 30 * 60 * 10**9
_DAY_NS = 24 * 3600 * 10**9
_CHUNK = 2000  # MPANs prepared together: bounds memory, keeps numpy calls large


def _need(ds: xr.Dataset, names: Iterable[str], where: str) -> None:
    missing = [n for n in names if n not in ds.variables]
    if missing:
        raise ValueError(f"{where}: the meter cube has no {missing}; expected a cube of tomlib.cube.meter_cube")


def if021_payloads(meters: Any, *, config: Any = None, sent_at=None, energy: str = "energy",
                   stats: dict | None = None, chunk_mpans: int = _CHUNK) -> Iterator[tuple[str, dict]]:
    """IF-021 payloads of a settled meter cube, one per MPAN and UTC day, day by day.

    Parameters
    ----------
    meters : Dataset or SegmentResult
        Meter cube with ``energy`` [kWh], ``quality`` (DI-083 codes), ``estimation_reason`` (DI-076)
        and the standing coordinates ``gsp_group``, ``connection_type``, ``measurement_quantity``
        (``market_segment`` optional: default S). Dask-backed cubes are read a chunk of MPANs at a time.
    config : DipConfig or mapping, optional
        Environment and DIP ids.
    sent_at : datetime-like, optional
        S1.senderTimestamp of every message [UTC]; default now.
    energy : str
        Name of the energy variable.
    stats : dict, optional
        Counters updated in place: ``messages``, ``periods``, ``missing_periods_omitted``,
        ``mpan_days_without_values``.
    chunk_mpans : int
        MPANs prepared per numpy pass.

    Yields
    ------
    (str, dict)
        The UTC day (``YYYY-MM-DD``, the group of the daily file layout) and the payload.

    Raises
    ------
    ValueError
        A missing variable, a time axis that is not ascending, a value that does not fit DT-016
        (naming MPAN and time), a present period with a non-finite value.
    """
    ds = getattr(meters, "meters", meters)
    where = "IF-021 writer"
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"{where}: expected a meter cube (xarray.Dataset) or a SegmentResult, got {type(ds).__name__}")
    _need(ds, (energy, "quality", "estimation_reason", "mpan", "time", "gsp_group", "connection_type",
               "measurement_quantity"), where)
    cfg = DipConfig.coerce(config)
    sent = sent_timestamp(sent_at)
    sent_text = utc_text([sent])[0]
    sent_day = f"{sent:%Y%m%d}"
    counts = stats if stats is not None else {}
    for k in ("messages", "periods", "missing_periods_omitted", "mpan_days_without_values"):
        counts.setdefault(k, 0)

    times = np.asarray(ds["time"].values, dtype="datetime64[ns]")
    t_ns = times.astype(np.int64)
    if t_ns.size and (np.diff(t_ns) <= 0).any():
        raise ValueError(f"{where}: time must be ascending")
    day_ns = t_ns - t_ns % _DAY_NS
    days, starts = np.unique(day_ns, return_index=True)
    bounds = np.append(starts, t_ns.size)
    sp_text = utc_text(times + np.timedelta64(_PERIOD_NS, "ns"), "sp") if t_ns.size else np.zeros(0, object)
    day_text = utc_text(days.astype("datetime64[ns]"), "settlementDayDate") if days.size else np.zeros(0, object)

    mpans = np.asarray(ds["mpan"].values).astype(str)
    gsp = np.asarray(ds["gsp_group"].values).astype(str)
    conn = np.asarray(ds["connection_type"].values).astype(str)
    mq = np.asarray(ds["measurement_quantity"].values).astype(str)
    seg = np.asarray(ds["market_segment"].values).astype(str) if "market_segment" in ds.variables \
        else np.full(mpans.size, "S")
    bad_mq = sorted(set(mq) - set(EVENT_CODES))
    if bad_mq:
        raise ValueError(f"{where}: measurement_quantity {bad_mq} is not one of {list(EVENT_CODES)} (DI-052)")
    bad_seg = sorted(set(seg) - set(SENDER_ROLES))
    if bad_seg:
        raise ValueError(f"{where}: market_segment {bad_seg} has no IF-021 data service; expected {list(SENDER_ROLES)}")
    distributor = distributor_dip_ids(gsp, cfg)
    role = np.array([SENDER_ROLES[s] for s in seg], dtype=object) if mpans.size else np.zeros(0, object)
    sender = {r: cfg.id(r) for r in SENDER_ROLES.values()}
    if "connection_type_effective_from" in ds.variables:
        conn_from = utc_text(ds["connection_type_effective_from"].values, "connection_type_effective_from")
    else:
        conn_from = np.full(mpans.size, day_text[0] if days.size else "", dtype=object)

    e_var, q_var, r_var = ds[energy], ds["quality"], ds["estimation_reason"]
    for d in range(days.size):  # a handful of UTC days
        a, b = bounds[d], bounds[d + 1]
        sps = sp_text[a:b].tolist()
        day_label = str(day_text[d])[:10]
        day_compact = day_label.replace("-", "")
        for i0 in range(0, mpans.size, chunk_mpans):
            i1 = min(i0 + chunk_mpans, mpans.size)
            e = np.asarray(e_var.isel(mpan=slice(i0, i1), time=slice(a, b)).transpose("mpan", "time").values,
                           dtype=float)
            q = np.asarray(q_var.isel(mpan=slice(i0, i1), time=slice(a, b)).transpose("mpan", "time").values)
            r = np.asarray(r_var.isel(mpan=slice(i0, i1), time=slice(a, b)).transpose("mpan", "time").values)
            present = q != cube.MISSING
            bad = present & ~np.isfinite(e)
            if bad.any():
                i, j = np.argwhere(bad)[0]
                raise ValueError(f"{where}: {energy} is {e[i, j]} at mpan {mpans[i0 + i]}, "
                                 f"{pd.Timestamp(times[a + j])} UTC with quality {cube.QUALITY_LABELS[int(q[i, j])]}; "
                                 "a period with a quality code needs a finite value [kWh]")
            try:
                v = decimal_text(np.where(present, e, 0.0), 3, f"{energy} [kWh]")
            except ValueError:
                big = present & ~(np.abs(np.where(present, e, 0.0)) < 1e9 - 0.0005)
                i, j = np.argwhere(big)[0]
                raise ValueError(f"{where}: {energy} {e[i, j]!r} kWh at mpan {mpans[i0 + i]}, "
                                 f"{pd.Timestamp(times[a + j])} UTC does not fit DT-016 decimal(9,3)") from None
            ql = QUALITY_WIRE[q].tolist()
            el = ESTIMATION_REASON_WIRE[r].tolist()
            vl = v.tolist()
            pl = present.tolist()
            n_present = present.sum(axis=1).tolist()
            counts["missing_periods_omitted"] += int((~present).sum())
            for k in range(i1 - i0):  # one message per MPAN: the dict assembly is the per-message work
                if n_present[k] == 0:
                    counts["mpan_days_without_values"] += 1
                    continue
                m = i0 + k
                if n_present[k] == len(sps):
                    periods = [{"sp": s, "v": vv, "q": qq, "e": ee, "arc": None}
                               for s, vv, qq, ee in zip(sps, vl[k], ql[k], el[k])]
                else:
                    periods = [{"sp": s, "v": vv, "q": qq, "e": ee, "arc": None}
                               for s, vv, qq, ee, p in zip(sps, vl[k], ql[k], el[k], pl[k]) if p]
                rl = role[m]
                sid = sender[rl]
                payload = {
                    "CommonBlock": common_block(
                        INTERFACE, EVENT_CODES[mq[m]], sender_id=sid, role=rl, sent_text=sent_text,
                        reference=sender_reference(INTERFACE, sid, rl, sent_day, f"{mpans[m]}{day_compact}{mq[m]}"),
                        config=cfg,
                        m0={"MPANCore": mpans[m], "distributorDIPID": distributor[m], "GSPGroupID": gsp[m]}),
                    "CustomBlock": {
                        "B044": {"issuingDataServiceDIPID": sid},
                        "B067": {"connectionTypeIndicator": conn[m],
                                 "connectionTypeEffectiveFromDate": conn_from[m]},
                        "B900": {
                            "MQID": {"measurementQuantityID": mq[m]},
                            "settlementDayConsumptionPeriods": [{
                                "settlementDay": {"settlementDayDate": day_text[d], "periodDuration": 30},
                                "consumptionPeriods": periods,
                            }],
                        },
                    },
                }
                counts["messages"] += 1
                counts["periods"] += n_present[k]
                yield day_label, payload


# ------------------------------------------------------------------------------------------ reading


@dataclass
class If021Data:
    """IF-021 messages read back.

    Attributes
    ----------
    meters : Dataset
        dims (mpan, time): ``energy`` [kWh] (NaN = no period received), ``quality`` (cube codes,
        MISSING where nothing was received), ``estimation_reason``; coordinates ``gsp_group``,
        ``connection_type``, ``measurement_quantity``, ``distributor_dip_id``,
        ``data_service_dip_id``, ``connection_type_effective_from`` from the messages -- a full meter
        cube (:func:`tomlib.cube.validate_meter_cube`) when ``standing`` was given.
    rejected : DataFrame
        One row per refused item: ``mpan``, ``time`` (period start, NaT if none), ``field`` (JSON
        path or field), ``reason``, ``value`` (the message's label).
    checks : dict
        ``messages``, ``invalid_messages``, ``day_blocks``, ``periods_in``, ``periods_read``,
        ``periods_rejected``, ``in_minus_out`` (= 0), ``superseded``, ``sp_end_blocks``,
        ``sp_start_blocks``, ``sp_ambiguous_blocks``, ``amended_periods`` (``arc`` not null).
    """

    meters: xr.Dataset
    rejected: pd.DataFrame
    checks: dict[str, float] = field(default_factory=dict)


_REJECTED_COLUMNS = ("mpan", "time", "field", "reason", "value")


class _Columns:
    """Period-level columns of the messages read so far, turned into numpy every batch (so a long
    stream holds numbers, not millions of strings)."""

    BATCH = 200_000  # periods

    def __init__(self) -> None:
        self.chunks: list[tuple[np.ndarray, ...]] = []  # (block, sp [ns], value, quality, reason)
        self.n_amended = 0
        self.msg_mpan: list[str] = []
        self.msg_attrs: list[tuple] = []   # gsp, conn, conn_from, mq, distributor, data service
        self.msg_sent: list[str] = []
        self.msg_label: list[str] = []
        self.block_msg: list[int] = []
        self.block_day: list[str] = []
        self.p_block: list[int] = []
        self.p_sp: list[str] = []
        self.p_v: list[str] = []
        self.p_q: list[str] = []
        self.p_e: list = []
        self.p_arc: list = []

    def flush(self) -> None:
        """Convert the pending period strings (vectorised) and clear them."""
        if not self.p_block:
            return
        e_raw = np.asarray(self.p_e, dtype=object)
        reason = np.zeros(e_raw.size, dtype=np.uint8)
        has_e = np.not_equal(e_raw, None)
        if has_e.any():
            reason[has_e] = e_raw[has_e].astype(str).astype(np.int64).astype(np.uint8)
        self.chunks.append((
            np.asarray(self.p_block, dtype=np.int64),
            parse_utc(self.p_sp, "consumptionPeriods[].sp").astype(np.int64),
            parse_decimal(self.p_v, "consumptionPeriods[].v"),
            cube.quality_code(np.asarray(self.p_q, dtype=object)),
            reason,
        ))
        self.n_amended += int(np.not_equal(np.asarray(self.p_arc, dtype=object), None).sum())
        for lst in (self.p_block, self.p_sp, self.p_v, self.p_q, self.p_e, self.p_arc):
            lst.clear()

    def periods(self) -> tuple[np.ndarray, ...]:
        """All periods read: (block, sp [ns], value [kWh], quality code, reason code)."""
        self.flush()
        if not self.chunks:
            return (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.uint8),
                    np.zeros(0, np.uint8))
        return tuple(np.concatenate(parts) for parts in zip(*self.chunks))


def _labelled(items: Iterable, where: str) -> Iterator[tuple[str, Any]]:
    for i, item in enumerate(items):
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            yield item
        else:
            yield f"{where}[{i}]", item


def read_if021(messages: Iterable, *, sp_convention: str = "end", standing: pd.DataFrame | None = None,
               times=None, validate: str = "full", on_invalid: str = "raise",
               measurement_quantities=("AI", "AE"), name: str = "energy", where: str = "IF-021") -> If021Data:
    """Read IF-021 messages into a meter cube.

    Parameters
    ----------
    messages : iterable
        DIP messages (``{"payload": ...}``) or payloads, or ``(label, message)`` pairs (the label
        names the message in errors, e.g. ``"day1.json[3]"``).
    sp_convention : {"end", "start", "auto"}
        How ``sp`` is read (module docstring).
    standing : DataFrame, optional
        Standing data indexed by MPAN (or with an ``mpan`` column) with the columns of
        :data:`tomlib.cube.STANDING_COORDS`: the result is then a full meter cube, ready for
        aggregation. ``gsp_group``, ``connection_type`` and ``measurement_quantity`` must agree
        with the messages.
    times : array-like, optional
        UTC period starts of the result's time axis (e.g. a run's window); default the span of the
        periods received. Periods outside are rejected.
    validate : {"full", "fast", "none"}
        Schema check of each message (:func:`tomlib.dip.schema.check`).
    on_invalid : {"raise", "reject"}
        A message failing its schema (or of another interface) raises
        :class:`~tomlib.dip.schema.DipValidationError`, or is refused: one ``rejected`` row per
        schema error, with its path.
    measurement_quantities : sequence of str
        Measurement quantities read; the periods of other messages (e.g. reactive power) are
        refused, one row each.
    name : str
        Name of the energy variable.
    where : str
        Label prefix of messages without one.

    Returns
    -------
    If021Data

    Raises
    ------
    ValueError
        Naming the message: an ``sp`` that does not fit the convention, an MPAN whose GSP group,
        connection type or measurement quantity differs between messages or from ``standing``.
    """
    if sp_convention not in SP_CONVENTIONS:
        raise ValueError(f"read_if021: sp_convention must be one of {SP_CONVENTIONS}, got {sp_convention!r}")
    if on_invalid not in ("raise", "reject"):
        raise ValueError(f"read_if021: on_invalid must be 'raise' or 'reject', got {on_invalid!r}")
    cols = _Columns()
    rejected: list[dict] = []
    n_messages = n_invalid = 0
    for label, item in _labelled(messages, where):
        n_messages += 1
        payload = unwrap(item, label)
        iface = schema.interface_of(payload)
        if iface not in (None, INTERFACE):
            errs = [schema.SchemaError("$.CommonBlock.S0.interfaceID", f"{iface!r} is not {INTERFACE}")]
        else:
            try:
                schema.check(payload, INTERFACE, mode=validate, where=label)
                errs = []
            except schema.DipValidationError as err:
                errs = err.errors
        if errs:
            if on_invalid == "raise":
                raise schema.DipValidationError(label, f"{INTERFACE}-Payload", errs)
            n_invalid += 1
            mp = _get(payload, "CommonBlock", "M0", "MPANCore")
            rejected.extend({"mpan": mp if isinstance(mp, str) else "", "time": pd.NaT, "field": e.path,
                             "reason": f"schema: {e.message}", "value": label} for e in errs)
            continue
        cb, cu = payload["CommonBlock"], payload["CustomBlock"]
        m = len(cols.msg_mpan)
        cols.msg_mpan.append(cb["M0"]["MPANCore"])
        cols.msg_attrs.append((cb["M0"]["GSPGroupID"], cu["B067"]["connectionTypeIndicator"],
                               cu["B067"]["connectionTypeEffectiveFromDate"], cu["B900"]["MQID"]["measurementQuantityID"],
                               cb["M0"]["distributorDIPID"], cu["B044"]["issuingDataServiceDIPID"]))
        cols.msg_sent.append(cb["S1"]["senderTimestamp"])
        cols.msg_label.append(label)
        for block in cu["B900"]["settlementDayConsumptionPeriods"]:
            b = len(cols.block_msg)
            cols.block_msg.append(m)
            cols.block_day.append(block["settlementDay"]["settlementDayDate"])
            periods = block["consumptionPeriods"]
            cols.p_block.extend([b] * len(periods))
            for p in periods:  # plain appends; every conversion is vectorised below
                cols.p_sp.append(p["sp"])
                cols.p_v.append(p["v"])
                cols.p_q.append(p["q"])
                cols.p_e.append(p["e"])
                cols.p_arc.append(p["arc"])
        if len(cols.p_block) >= cols.BATCH:
            cols.flush()
    return _assemble(cols, rejected, n_messages, n_invalid, sp_convention, standing, times,
                     tuple(measurement_quantities), name)


def _get(d: Any, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _assemble(cols: _Columns, rejected: list[dict], n_messages: int, n_invalid: int, sp_convention: str,
              standing, times, mqs: tuple, name: str) -> If021Data:
    msg_mpan = np.asarray(cols.msg_mpan, dtype=str)
    attrs = np.asarray(cols.msg_attrs, dtype=object).reshape(-1, 6)
    msg_sent = parse_utc(cols.msg_sent, "S1.senderTimestamp") if cols.msg_sent else np.zeros(0, "datetime64[ns]")
    block_msg = np.asarray(cols.block_msg, dtype=np.int64)
    block_day = parse_utc(cols.block_day, "settlementDayDate").astype(np.int64) if cols.block_day \
        else np.zeros(0, np.int64)
    p_block, sp, value, quality, reason = cols.periods()
    n_in = p_block.size
    n_amended = cols.n_amended

    # sp convention per day block
    start, use_end, ambiguous = sp_starts(sp, block_day, p_block, sp_convention,
                                          lambda b: cols.msg_label[block_msg[b]])
    n_blocks = block_msg.size

    # measurement quantities read
    mq_of_msg = attrs[:, 3].astype(str) if len(attrs) else np.zeros(0, str)
    p_msg = block_msg[p_block] if n_in else np.zeros(0, np.int64)
    keep = np.isin(mq_of_msg[p_msg], mqs) if n_in else np.zeros(0, bool)
    for j in np.flatnonzero(~keep):  # only periods of other measurement quantities
        mm = p_msg[j]
        rejected.append({"mpan": msg_mpan[mm], "time": pd.Timestamp(start[j]), "field": "B900.MQID",
                         "reason": f"measurement quantity {mq_of_msg[mm]} is not read (reading {list(mqs)})",
                         "value": cols.msg_label[mm]})

    # duplicates: the latest message (sender timestamp, then arrival) wins
    idx = np.flatnonzero(keep)
    mpans, inv = np.unique(msg_mpan, return_inverse=True)
    k_mpan, k_start = inv[p_msg[idx]], start[idx]
    order = np.lexsort((p_msg[idx], msg_sent[p_msg[idx]].astype(np.int64), k_start, k_mpan))
    idx = idx[order]
    k_mpan, k_start = k_mpan[order], k_start[order]
    last = np.ones(idx.size, bool)
    if idx.size > 1:
        last[:-1] = (k_mpan[1:] != k_mpan[:-1]) | (k_start[1:] != k_start[:-1])
    for j in idx[~last]:  # superseded periods
        mm = p_msg[j]
        rejected.append({"mpan": msg_mpan[mm], "time": pd.Timestamp(start[j]), "field": "consumptionPeriods[].sp",
                         "reason": "superseded by a later message for the same MPAN and period",
                         "value": cols.msg_label[mm]})
    n_superseded = int((~last).sum())
    idx = idx[last]

    # MPANs and their standing data from the messages
    fields = ("gsp_group", "connection_type", "connection_type_effective_from", "measurement_quantity",
              "distributor_dip_id", "data_service_dip_id")
    per_mpan = {}
    for c, fname in enumerate(fields):  # six fields
        col = attrs[:, c].astype(str) if len(attrs) else np.zeros(0, str)
        first = np.zeros(mpans.size, np.int64)
        first[inv[::-1]] = np.arange(inv.size)[::-1]
        val = col[first] if mpans.size else col
        differs = col != val[inv]
        if differs.any() and fname != "connection_type_effective_from":
            j = int(np.argmax(differs))
            raise ValueError(f"{cols.msg_label[j]}: MPAN {msg_mpan[j]} has {fname} {str(col[j])!r} here but "
                             f"{str(val[inv[j]])!r} in {cols.msg_label[first[inv[j]]]}; one MPAN, one value")
        per_mpan[fname] = val
    per_mpan["connection_type_effective_from"] = parse_utc(per_mpan["connection_type_effective_from"],
                                                           "connectionTypeEffectiveFromDate") \
        if mpans.size else np.zeros(0, "datetime64[ns]")

    # time axis
    if times is not None:
        t_axis = pd.DatetimeIndex(pd.to_datetime(np.asarray(times).ravel())).as_unit("ns").to_numpy()
    elif idx.size:
        lo, hi = int(start[idx].min()), int(start[idx].max())
        t_axis = np.arange(lo, hi + 1, _PERIOD_NS).astype("datetime64[ns]")
    else:
        t_axis = np.zeros(0, "datetime64[ns]")
    t_int = t_axis.astype(np.int64)
    col_of = np.searchsorted(t_int, start[idx])
    inside = (col_of < t_int.size) & (t_int[np.minimum(col_of, max(t_int.size - 1, 0))] == start[idx]) \
        if t_int.size else np.zeros(idx.size, bool)
    for j in idx[~inside]:
        mm = p_msg[j]
        rejected.append({"mpan": msg_mpan[mm], "time": pd.Timestamp(start[j]), "field": "consumptionPeriods[].sp",
                         "reason": "outside the requested time axis", "value": cols.msg_label[mm]})
    idx, col_of = idx[inside], col_of[inside]
    row_of = np.searchsorted(mpans, msg_mpan[p_msg[idx]])
    energy = np.full((mpans.size, t_axis.size), np.nan)
    q = np.zeros((mpans.size, t_axis.size), np.uint8)
    r = np.zeros((mpans.size, t_axis.size), np.uint8)
    energy[row_of, col_of] = value[idx]
    q[row_of, col_of] = quality[idx]
    r[row_of, col_of] = reason[idx]

    n_read = int(idx.size)
    checks = {
        "messages": float(n_messages), "invalid_messages": float(n_invalid), "day_blocks": float(n_blocks),
        "periods_in": float(n_in), "periods_read": float(n_read),
        "periods_rejected": float(n_in - n_read), "in_minus_out": 0.0,
        "superseded": float(n_superseded),
        "sp_end_blocks": float((use_end & ~ambiguous).sum()), "sp_start_blocks": float((~use_end).sum()),
        "sp_ambiguous_blocks": float(ambiguous.sum()), "amended_periods": float(n_amended),
    }
    assumed = {"end": "end (DI-082, the data catalogue's definition)",
               "start": "start (as told by the reader; contradicts DI-082)",
               "auto": f"auto: {int(checks['sp_end_blocks'])} day block(s) read as period ends, "
                       f"{int(checks['sp_start_blocks'])} as starts, {int(checks['sp_ambiguous_blocks'])} "
                       "ambiguous read as ends (DI-082)"}[sp_convention]
    ds = _cube(energy, q, r, t_axis, mpans, per_mpan, standing, name)
    ds.attrs.update({"source": "DIP IF-021 messages (DIP API v2.1.0)", "sp_convention": assumed,
                     "messages": n_messages})
    rej = pd.DataFrame(rejected, columns=list(_REJECTED_COLUMNS))
    return If021Data(meters=ds, rejected=rej, checks=checks)


def sp_starts(sp: np.ndarray, block_day: np.ndarray, p_block: np.ndarray, convention: str, label_of,
              sp_texts=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Period starts of ``sp`` values grouped in day blocks, under an ``sp`` convention.

    Parameters
    ----------
    sp : ndarray of int64
        ``sp`` instants [ns since epoch, UTC].
    block_day : ndarray of int64
        ``settlementDayDate`` of each day block [ns, UTC midnight].
    p_block : ndarray of int
        Day block of each ``sp``.
    convention : {"end", "start", "auto"}
    label_of : callable
        Block index -> message label, for errors.
    sp_texts : sequence of str, optional
        The ``sp`` as written, for errors.

    Returns
    -------
    start : ndarray of int64
        Period starts [ns, UTC].
    use_end : ndarray of bool
        Per block: read as ends.
    ambiguous : ndarray of bool
        Per block: fits both conventions.

    Raises
    ------
    ValueError
        Naming the message and ``sp`` of a block that does not fit.
    """
    if convention not in SP_CONVENTIONS:
        raise ValueError(f"sp convention must be one of {SP_CONVENTIONS}, got {convention!r}")
    n_blocks = block_day.size
    rel = sp - block_day[p_block] if sp.size else sp
    aligned = rel % _PERIOD_NS == 0
    end_ok = aligned & (rel >= _PERIOD_NS) & (rel <= _DAY_NS)
    start_ok = aligned & (rel >= 0) & (rel < _DAY_NS)
    end_all = np.bincount(p_block, weights=~end_ok, minlength=n_blocks) == 0
    start_all = np.bincount(p_block, weights=~start_ok, minlength=n_blocks) == 0
    if convention == "end":
        use_end, bad = np.ones(n_blocks, bool), ~end_all
    elif convention == "start":
        use_end, bad = np.zeros(n_blocks, bool), ~start_all
    else:
        use_end = end_all  # ends where they fit (ambiguous blocks too: DI-082), else starts
        bad = ~end_all & ~start_all
    if bad.any():
        b = int(np.argmax(bad))
        ok = end_ok if use_end[b] else start_ok
        j = int(np.flatnonzero((p_block == b) & ~ok)[0])
        text = sp_texts[j] if sp_texts is not None else f"{pd.Timestamp(sp[j]):%Y-%m-%dT%H:%M:%S}+00:00"
        hint = ""
        if convention == "end" and start_all[b]:
            hint = (" -- they read as period starts (like the official v0.6 example); read with "
                    "sp_convention='start' or 'auto'")
        what = "ends (DI-082)" if use_end[b] else "starts"
        raise ValueError(f"{label_of(b)}: sp {text} is not one of the period {what} of settlement day "
                         f"{pd.Timestamp(block_day[b]):%Y-%m-%d} (UTC){hint}")
    start = sp - np.where(use_end[p_block], _PERIOD_NS, 0) if sp.size else sp
    return start, use_end, end_all & start_all


_FROM_MESSAGES = ("gsp_group", "connection_type", "measurement_quantity")


def _cube(energy, q, r, t_axis, mpans, per_mpan: dict, standing, name: str) -> xr.Dataset:
    extra = {k: per_mpan[k] for k in ("distributor_dip_id", "data_service_dip_id", "connection_type_effective_from")}
    if standing is not None:
        table = standing.set_index("mpan") if "mpan" in standing.columns else standing
        table = table.copy()
        table.index = pd.Index(table.index.astype(str), name="mpan")
        lacking = mpans[~np.isin(mpans, table.index)]
        if lacking.size:
            raise ValueError(f"IF-021 reader: standing data lack {lacking.size} MPAN(s) of the messages, e.g. "
                             f"{lacking[:3].tolist()}")
        rows = table.loc[mpans]
        for f in _FROM_MESSAGES:
            if f in rows.columns:
                theirs = rows[f].to_numpy(dtype=str)
                differ = theirs != per_mpan[f]
                if differ.any():
                    i = int(np.argmax(differ))
                    raise ValueError(f"IF-021 reader: MPAN {mpans[i]} has {f} {str(per_mpan[f][i])!r} in the messages but "
                                     f"{str(theirs[i])!r} in the standing data")
        rows = rows.assign(**{f: per_mpan[f] for f in _FROM_MESSAGES}, **extra)
        return cube.meter_cube(energy, t_axis, mpans, rows.reset_index(), quality=q, estimation_reason=r, name=name)
    coords = {f: ("mpan", per_mpan[f]) for f in _FROM_MESSAGES}
    coords.update({k: ("mpan", v) for k, v in extra.items()})
    ds = xr.Dataset(
        {
            name: (("mpan", "time"), energy, {"units": "kWh", "long_name": "energy in the settlement period"}),
            "quality": (("mpan", "time"), q, {"units": "1",
                                               "long_name": "settlement period quality indicator (DI-083)"}),
            "estimation_reason": (("mpan", "time"), r, {"units": "1", "long_name": "estimation reason (DI-076)"}),
        },
        coords={"mpan": ("mpan", mpans.astype(str)), "time": ("time", t_axis), **coords},
    )
    ds.attrs["standing"] = "IF-021 fields only (pass standing= for a full meter cube)"
    return cube.add_settlement_coords(ds)
