"""REP-003 BM unit allocated demand volumes to market participants, from Volume Allocation.

REP reports carry their body in ``CustomBlock.P03.compressedReport``: the body JSON, compressed with
zlib and base64-encoded (the spec's ``format: byte``). The body is checked against
``REP-003-CustomBlock`` (ECS-Reports), the message against ``REP-003-Payload`` (schemaVersion
``008``, event ``[BMUnitAllocatedDemandVolumesToMarketParticipants]``, sender role ``ECS``).

One message per GSP group and settlement date of a settlement run (:func:`tomlib.settlement.settle_run`,
or :func:`tomlib.services.volume_allocation.allocate` output with ``mpan_count``):

==========================  ==============================================================================
body block                  from the run
==========================  ==============================================================================
R013 / R002 / R103          GSP group; settlement date, run code (``attrs["run"]``), run number 1 [INF];
                            period duration 30
R007                        ``as_of`` of the day (the run's as-of instant) if present, else the send time
REP003-R015[]               one per supplier of the GSP group (``supplier`` of the aggregates)
 REP003-R016[]              one per BM unit; ``defaultBMUnitFlag`` = id ends in ``000`` [INF: base BM units
                            ``2__<GSP><MPID>000`` are the suppliers' defaults]
  REP003-R017[]             one per CCC: R017 (CCC id, scaling weight, connection type, segment,
                            ``C``/``L``) from ``tomlib/dip/data/ccc_ids.csv`` [INF ids];
                            R019 daily sums; REP003-R018 one row per settlement period (1..46/48/50)
  R021                      BM unit daily totals (import - export) and ``dailyBMUnitMSIDCount`` = the
                            largest number of MPANs of the BM unit's consumption CCCs in any period [INF]
REP003-R024[]               GSP group correction factors per period, import and export (9 decimals)
==========================  ==============================================================================

Volumes are **MWh** with 6 decimals ([INF]: decimal(9,6) is the SAA convention for MWh; tomlib's
volumes are kWh, divided by 1000). A consumption CCC fills the consumption fields and leaves the
losses fields null; a losses CCC the other way round; R019 writes 0 in the non-nullable field that
does not apply. REP003-R051 (demand disconnection events) is not written: tomlib has none.

Reading reverses it: ``uncorrected``/``corrected(aggregate, time)`` [kWh], ``gcf(gsp_group_id,
direction, time)``, ``allocated_import``/``_export``/``_net(bm_unit_id, time)`` [kWh] summed from
the corrected volumes.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from tomlib import calendar, cube
from tomlib.dip import schema
from tomlib.dip.common import (
    DipConfig,
    common_block,
    decimal_text,
    parse_decimal,
    sender_reference,
    sent_timestamp,
    unwrap,
    utc_text,
)
from tomlib.dip.if021 import _labelled
from tomlib.reference._io import Col, read_table

__all__ = ["CCC_IDS_PATH", "INTERFACE", "Rep003Data", "ccc_ids", "decode_report", "encode_report", "read_rep003",
           "rep003_payloads"]

INTERFACE = "REP-003"
EVENT_CODE = "[BMUnitAllocatedDemandVolumesToMarketParticipants]"
SCHEMA_VERSION = "008"
_ROLE = "ECS"
_BODY = "REP-003-CustomBlock"
#: The CCC id table ([INF], see its header).
CCC_IDS_PATH = Path(__file__).resolve().parent / "data" / "ccc_ids.csv"
_KWH_PER_MWH = 1000.0


@lru_cache(maxsize=4)
def _ccc_ids(path: Path) -> pd.DataFrame:
    cols = (Col("ccc", pattern=r"[A-Z]{2}-[SAU]-[AE]-[CL]"), Col("ccc_id", "int", lo=100, hi=999),
            Col("connection_type", choices=("W", "L", "H", "E", "U")))
    frame = read_table(path, cols, key=("ccc",)).frame("ccc")
    dup = frame["ccc_id"].duplicated()
    if dup.any():
        raise ValueError(f"{path.name}: ccc_id {int(frame['ccc_id'][dup].iloc[0])} is used twice; the map must be "
                         "one-to-one")
    return frame


def ccc_ids(path: str | Path | None = None) -> pd.DataFrame:
    """The CCC id table: index ``ccc`` (tomlib id), columns ``ccc_id`` (int), ``connection_type``."""
    return _ccc_ids(Path(path) if path else CCC_IDS_PATH).copy()


def encode_report(body: dict) -> str:
    """Body JSON -> zlib -> base64 (``P03.compressedReport``)."""
    raw = json.dumps(body, separators=(",", ":")).encode("utf-8")
    return base64.b64encode(zlib.compress(raw, 6)).decode("ascii")


def decode_report(text: str, where: str = "P03.compressedReport") -> Any:
    """``P03.compressedReport`` -> the body JSON; raises naming ``where`` if it is not base64 zlib JSON."""
    try:
        raw = zlib.decompress(base64.b64decode(text, validate=True))
        return json.loads(raw)
    except (ValueError, zlib.error) as exc:
        raise ValueError(f"{where}: not a base64-encoded zlib-compressed JSON report ({exc})") from None


def _need(ds: xr.Dataset, names, where: str) -> None:
    missing = [n for n in names if n not in ds.variables]
    if missing:
        raise ValueError(f"{where}: the run lacks {missing}; expected tomlib.settlement.settle_run output")


def rep003_payloads(run: xr.Dataset, *, run_code: str | None = None, config: Any = None, sent_at=None,
                    ccc_table: pd.DataFrame | None = None, stats: dict | None = None) -> Iterator[tuple[str, dict]]:
    """REP-003 payloads of a settlement run, one per GSP group and settlement date.

    Parameters
    ----------
    run : Dataset
        ``uncorrected``, ``corrected(aggregate, time)`` [kWh] with aggregate coordinates
        ``gsp_group``, ``supplier``, ``bm_unit``, ``ccc``, ``weight``; ``gcf(gsp_group_id,
        direction, time)``; ``mpan_count(aggregate, time)``; optionally ``as_of(settlement_day)``.
    run_code : str, optional
        Settlement run (SF, R1, ...); default ``run.attrs["run"]``.
    config : DipConfig or mapping, optional
    sent_at : datetime-like, optional
        S1.senderTimestamp [UTC]; default now.
    ccc_table : DataFrame, optional
        Default :func:`ccc_ids`.
    stats : dict, optional
        Counters ``messages``, ``rows`` (R018 rows).

    Yields
    ------
    (str, dict)
        Settlement date ``YYYY-MM-DD`` and payload; GSP groups in order within each date.
    """
    where = "REP-003 writer"
    _need(run, ("uncorrected", "corrected", "gcf", "mpan_count", "gsp_group", "supplier", "bm_unit", "ccc", "weight"),
          where)
    code = run_code or run.attrs.get("run")
    if code is None:
        raise ValueError(f"{where}: the run code is unknown; pass run_code= (SF, R1, ...) or set attrs['run']")
    cfg = DipConfig.coerce(config)
    counts = stats if stats is not None else {}
    counts.setdefault("messages", 0)
    counts.setdefault("rows", 0)
    sent = sent_timestamp(sent_at)
    sent_text = utc_text([sent])[0]
    table = ccc_table if ccc_table is not None else ccc_ids()
    from tomlib import reference

    classes = reference.consumption_component_classes()
    agg_ccc = np.asarray(run["ccc"].values).astype(str)
    unknown = sorted(set(agg_ccc) - set(table.index))
    if unknown:
        raise ValueError(f"{where}: CCC(s) {unknown} have no id in {CCC_IDS_PATH.name}")
    unknown = sorted(set(agg_ccc) - set(classes.index))
    if unknown:
        raise ValueError(f"{where}: CCC(s) {unknown} are not in the CCC reference table")
    ccc_id = table.loc[agg_ccc, "ccc_id"].to_numpy(dtype=np.int64)
    conn = table.loc[agg_ccc, "connection_type"].to_numpy(dtype=str)
    component = np.where(classes.loc[agg_ccc, "component"].to_numpy(dtype=str) == "losses", "L", "C")
    segment = classes.loc[agg_ccc, "market_segment"].to_numpy(dtype=str)
    export = classes.loc[agg_ccc, "measurement_quantity"].to_numpy(dtype=str) == "AE"
    weight = decimal_text(np.asarray(run["weight"].values, dtype=float), 2, "GSPGroupCorrectionScalingWeight")
    group = np.asarray(run["gsp_group"].values).astype(str)
    supplier = np.asarray(run["supplier"].values).astype(str)
    bmu = np.asarray(run["bm_unit"].values).astype(str)
    u = np.asarray(run["uncorrected"].transpose("aggregate", "time").values, dtype=float) / _KWH_PER_MWH
    c = np.asarray(run["corrected"].transpose("aggregate", "time").values, dtype=float) / _KWH_PER_MWH
    n_mpan = np.asarray(run["mpan_count"].transpose("aggregate", "time").values)
    times = pd.DatetimeIndex(run["time"].values)
    dates, periods = calendar.from_utc(times)
    u_text = decimal_text(u, 6, "uncorrected volume [MWh]")
    c_text = decimal_text(c, 6, "corrected volume [MWh]")
    gcf = run["gcf"]
    gcf_groups = np.asarray(gcf["gsp_group_id"].values).astype(str)
    gcf_text = {d: decimal_text(gcf.sel(direction=d).transpose("gsp_group_id", "time").values, 9,
                                f"groupCorrectionFactor{d.title()}") for d in ("import", "export")}
    as_of = None
    if "as_of" in run and "settlement_day" in run["as_of"].dims:
        as_of = pd.Series(pd.DatetimeIndex(run["as_of"].values), index=pd.DatetimeIndex(run["settlement_day"].values))
    day_values, day_starts = np.unique(dates.to_numpy(), return_index=True)
    bounds = np.append(day_starts, times.size)
    sign = np.where(export, -1.0, 1.0)
    sender = cfg.id(_ROLE)
    for d, day in enumerate(pd.DatetimeIndex(day_values)):  # settlement days of the run
        a, b = bounds[d], bounds[d + 1]
        sps = periods[a:b].astype(int).tolist()
        date_text = f"{day:%Y-%m-%d}"
        run_at = as_of.get(day) if as_of is not None else None
        exec_text = utc_text([pd.Timestamp(run_at).floor("s") if run_at is not None and not pd.isna(run_at)
                              else sent], "settlementRunExecutionDate")[0]
        for g in np.unique(group):  # GSP groups of the run
            rows = np.flatnonzero(group == g)
            gi = np.flatnonzero(gcf_groups == g)
            if gi.size != 1:
                raise ValueError(f"{where}: no GSP group correction factors for {g}")
            r015 = []
            for s in np.unique(supplier[rows]):  # suppliers of the GSP group
                r016 = []
                srows = rows[supplier[rows] == s]
                for unit in np.unique(bmu[srows]):  # BM units of the supplier
                    urows = srows[bmu[srows] == unit]
                    r017 = [_ccc_block(k, a, b, sps, date_text, ccc_id, weight, conn, segment, component, u, c,
                                       u_text, c_text) for k in urows]
                    msid = n_mpan[urows][component[urows] == "C"][:, a:b].sum(axis=0)
                    r016.append({
                        "R016": {"BMUnitID": unit, "defaultBMUnitFlag": unit.endswith("000")},
                        "REP003-R017": r017,
                        "R021": {
                            "dailyUncorrectedPeriodBMUnitTotalAllocatedVolume": decimal_text(
                                (sign[urows, None] * u[urows, a:b]).sum(), 6, "R021")[()],
                            "dailyPeriodBMUnitTotalAllocatedVolume": decimal_text(
                                (sign[urows, None] * c[urows, a:b]).sum(), 6, "R021")[()],
                            "dailyBMUnitMSIDCount": int(msid.max()) if msid.size else 0,
                        },
                    })
                    counts["rows"] += int(len(urows) * (b - a))
                r015.append({"R015": {"supplierMPID": s}, "REP003-R016": r016})
            body = {
                "R013": {"GSPGroupID": g},
                "R007": {"settlementRunExecutionDate": exec_text},
                "R002": {"settlementDate": date_text, "settlementCode": code, "runNumber": 1},
                "R103": {"settlementPeriodDuration": 30},
                "REP003-R015": r015,
                "REP003-R024": [{"settlementPeriodID": sp, "groupCorrectionFactorImport": gcf_text["import"][gi[0], a + j],
                                 "groupCorrectionFactorExport": gcf_text["export"][gi[0], a + j]}
                                for j, sp in enumerate(sps)],
            }
            schema.check(body, schema=_BODY, mode="fast", where=f"{where}: report body {g} {date_text} {code}")
            ref = sender_reference(INTERFACE, sender, _ROLE, sent, f"{g.strip('_')}{day:%Y%m%d}{code}")
            payload = {
                "CommonBlock": common_block(INTERFACE, EVENT_CODE, sender_id=sender, role=_ROLE, sent_text=sent_text,
                                            reference=ref, config=cfg, schema_version=SCHEMA_VERSION),
                "CustomBlock": {"P03": {"compressedReport": encode_report(body)}},
            }
            counts["messages"] += 1
            yield date_text, payload


def _ccc_block(k, a, b, sps, date_text, ccc_id, weight, conn, segment, component, u, c, u_text, c_text) -> dict:
    losses = component[k] == "L"
    zero = "0.000000"
    u_day = decimal_text(u[k, a:b].sum(), 6, "R019")[()]
    c_day = decimal_text(c[k, a:b].sum(), 6, "R019")[()]
    per = []
    for j, sp in enumerate(sps):  # periods of one CCC row
        ut, ct = u_text[k, a + j], c_text[k, a + j]
        per.append({"settlementDate": date_text, "settlementPeriod": sp,
                    "uncorrectedBMUnitPeriodLevelConsumption": None if losses else ut,
                    "uncorrectedBMUnitPeriodLevelConsumptionLosses": ut if losses else None,
                    "correctedComponentConsumption": None if losses else ct,
                    "correctedComponentLosses": ct if losses else None})
    return {
        "R017": {"consumptionComponentClassID": int(ccc_id[k]), "GSPGroupCorrectionScalingWeight": weight[k],
                 "connectionTypeIndicator": conn[k], "marketSegmentIndicator": segment[k],
                 "consumptionComponentIndicator": component[k]},
        "R019": {"dailyBMUnitPeriodLevelConsumption": zero if losses else u_day,
                 "dailyBMUnitPeriodLevelConsumptionLosses": u_day if losses else None,
                 "dailyCorrectedComponent": zero if losses else c_day,
                 "dailyCorrectedComponentLosses": c_day if losses else zero},
        "REP003-R018": per,
    }


# ------------------------------------------------------------------------------------------ reading


@dataclass
class Rep003Data:
    """REP-003 reports read back: ``allocation`` Dataset (module docstring), ``rejected``, ``checks``,
    and ``bodies`` (the decoded report bodies, in order)."""

    allocation: xr.Dataset
    rejected: pd.DataFrame
    checks: dict[str, float] = field(default_factory=dict)
    bodies: list = field(default_factory=list)


def read_rep003(messages: Iterable, *, validate: str = "full", on_invalid: str = "raise",
                ccc_table: pd.DataFrame | None = None, where: str = "REP-003") -> Rep003Data:
    """Read REP-003 messages (message and decoded body both checked against their schemas).

    Returns
    -------
    Rep003Data

    A CCC id outside :func:`ccc_ids` (e.g. a real MHHS id) is kept as ``ccc`` ``"CCC<id>"`` with the
    segment and component the report states; its direction is unknown (``measurement_quantity``
    ``""``), so it is left out of ``allocated_*`` and counted in ``aggregates_without_direction``.

    Raises
    ------
    ValueError
        A body that is not base64 zlib JSON or a settlement period that does not exist on its date,
        naming the message.
    """
    table = ccc_table if ccc_table is not None else ccc_ids()
    ccc_of_id = pd.Series(table.index.to_numpy(dtype=str), index=table["ccc_id"].to_numpy())
    from tomlib import reference

    classes = reference.consumption_component_classes()
    keys: dict[tuple, int] = {}
    cell_agg, cell_date, cell_sp, cell_u, cell_c = [], [], [], [], []
    gcf_rows: list[tuple] = []
    weights: dict[int, str] = {}
    wire: dict[int, tuple] = {}  # CCC id, segment and component as the report states them
    bodies, rejected = [], []
    n = n_invalid = 0
    for label, item in _labelled(messages, where):
        n += 1
        payload = unwrap(item, label)
        iface = schema.interface_of(payload)
        errs = [schema.SchemaError("$.CommonBlock.S0.interfaceID", f"{iface!r} is not {INTERFACE}")] \
            if iface not in (None, INTERFACE) else []
        body = None
        if not errs:
            try:
                schema.check(payload, INTERFACE, mode=validate, where=label)
                body = decode_report(payload["CustomBlock"]["P03"]["compressedReport"],
                                     f"{label}: CustomBlock.P03.compressedReport")
                schema.check(body, schema=_BODY, mode=validate, where=f"{label}: report body")
            except schema.DipValidationError as err:
                errs = [schema.SchemaError(e.path if body is None else
                                           "$.CustomBlock.P03.compressedReport<" + e.path + ">", e.message)
                        for e in err.errors]
        if errs:
            if on_invalid == "raise":
                raise schema.DipValidationError(label, f"{INTERFACE}-Payload", errs)
            n_invalid += 1
            rejected.extend({"mpan": "", "time": pd.NaT, "field": e.path, "reason": f"schema: {e.message}",
                             "value": label} for e in errs)
            continue
        bodies.append(body)
        g = body["R013"]["GSPGroupID"]
        for r15 in body.get("REP003-R015", []):
            s = r15["R015"]["supplierMPID"]
            for r16 in r15.get("REP003-R016", []):
                unit = r16["R016"]["BMUnitID"]
                for r17 in r16.get("REP003-R017", []):
                    cid = r17["R017"]["consumptionComponentClassID"]
                    losses = r17["R017"]["consumptionComponentIndicator"] == "L"
                    known = cid in ccc_of_id.index
                    k = keys.setdefault((g, s, unit, ccc_of_id[cid] if known else f"CCC{cid}"), len(keys))
                    weights[k] = r17["R017"]["GSPGroupCorrectionScalingWeight"]
                    wire[k] = (cid, r17["R017"]["marketSegmentIndicator"], "losses" if losses else "consumption")
                    for row in r17.get("REP003-R018", []):
                        cell_agg.append(k)
                        cell_date.append(row["settlementDate"])
                        cell_sp.append(row["settlementPeriod"])
                        cell_u.append(row["uncorrectedBMUnitPeriodLevelConsumptionLosses" if losses
                                          else "uncorrectedBMUnitPeriodLevelConsumption"])
                        cell_c.append(row["correctedComponentLosses" if losses else "correctedComponentConsumption"])
        for row in body.get("REP003-R024", []):
            gcf_rows.append((g, body["R002"]["settlementDate"], row["settlementPeriodID"],
                             row["groupCorrectionFactorImport"], row["groupCorrectionFactorExport"]))
    key_list = list(keys)
    agg = np.asarray(cell_agg, dtype=np.int64)
    try:
        t = calendar.to_utc(pd.DatetimeIndex(pd.to_datetime(cell_date, format="%Y-%m-%d")),
                            np.asarray(cell_sp, dtype=np.int64)).to_numpy() if cell_date else np.zeros(0, "M8[ns]")
    except ValueError as exc:
        raise ValueError(f"REP-003 reader: {exc}") from None
    t_axis = np.unique(np.concatenate([t, _gcf_times(gcf_rows)]))
    col = np.searchsorted(t_axis, t)
    u = np.full((len(key_list), t_axis.size), np.nan)
    c = np.full((len(key_list), t_axis.size), np.nan)
    u[agg, col] = _volumes(cell_u) * _KWH_PER_MWH
    c[agg, col] = _volumes(cell_c) * _KWH_PER_MWH
    arr = np.array(key_list, dtype=object).reshape(len(key_list), 4)
    ccc = arr[:, 3].astype(str)
    known = np.isin(ccc, classes.index)
    # a CCC id outside tomlib's table keeps what the report says; its direction is unknown ("")
    mq = np.where(known, classes["measurement_quantity"].reindex(ccc).fillna("").to_numpy(dtype=str), "")
    seg = np.array([wire[k][1] for k in range(len(key_list))], dtype=str)
    comp = np.array([wire[k][2] for k in range(len(key_list))], dtype=str)
    coords = {
        "gsp_group": ("aggregate", arr[:, 0].astype(str)), "supplier": ("aggregate", arr[:, 1].astype(str)),
        "bm_unit": ("aggregate", arr[:, 2].astype(str)), "ccc": ("aggregate", ccc),
        "ccc_id": ("aggregate", np.array([wire[k][0] for k in range(len(key_list))], dtype=np.int64)),
        "measurement_quantity": ("aggregate", mq), "market_segment": ("aggregate", seg),
        "component": ("aggregate", comp),
        "weight": ("aggregate", np.array([float(weights[k]) for k in range(len(key_list))]), {"units": "-"}),
    }
    ds = xr.Dataset(
        {"uncorrected": (("aggregate", "time"), u, {"units": "kWh", "long_name": "uncorrected volume"}),
         "corrected": (("aggregate", "time"), c, {"units": "kWh", "long_name": "corrected volume"})},
        coords={"time": ("time", t_axis, dict(cube.TIME_ATTRS)), **coords},
        attrs={"source": "DIP REP-003 reports (DIP API v2.1.0)", "units_on_wire": "MWh, 6 decimals"},
    )
    ds = ds.merge(_gcf(gcf_rows, t_axis)).merge(_units(ds, mq))
    ds = cube.add_settlement_coords(ds) if t_axis.size else ds
    rej = pd.DataFrame(rejected, columns=["mpan", "time", "field", "reason", "value"])
    return Rep003Data(ds, rej, {"messages": float(n), "invalid_messages": float(n_invalid),
                                "rows": float(agg.size), "aggregates_without_direction": float((mq == "").sum())},
                      bodies)


def _volumes(texts: list) -> np.ndarray:
    arr = np.asarray(texts, dtype=object)
    out = np.full(arr.size, np.nan)
    present = np.not_equal(arr, None) if arr.size else np.zeros(0, bool)
    if present.any():
        out[present] = parse_decimal(arr[present], "REP-003 volume")
    return out


def _gcf_times(rows: list[tuple]) -> np.ndarray:
    if not rows:
        return np.zeros(0, "datetime64[ns]")
    return calendar.to_utc(pd.DatetimeIndex(pd.to_datetime([r[1] for r in rows], format="%Y-%m-%d")),
                           np.array([r[2] for r in rows], dtype=np.int64)).to_numpy()


def _gcf(rows: list[tuple], t_axis: np.ndarray) -> xr.Dataset:
    groups = np.unique([r[0] for r in rows]) if rows else np.zeros(0, str)
    out = np.full((groups.size, 2, t_axis.size), np.nan)
    if rows:
        gi = np.searchsorted(groups, [r[0] for r in rows])
        ti = np.searchsorted(t_axis, _gcf_times(rows))
        out[gi, 0, ti] = parse_decimal([r[3] for r in rows], "groupCorrectionFactorImport")
        out[gi, 1, ti] = parse_decimal([r[4] for r in rows], "groupCorrectionFactorExport")
    return xr.Dataset({"gcf": (("gsp_group_id", "direction", "time"), out,
                               {"units": "-", "long_name": "GSP group correction factor"})},
                      coords={"gsp_group_id": groups.astype(str), "direction": ["import", "export"], "time": t_axis})


def _units(ds: xr.Dataset, mq: np.ndarray) -> xr.Dataset:
    bmu = np.asarray(ds["bm_unit"].values).astype(str)
    units, code = np.unique(bmu, return_inverse=True)
    corrected = np.nan_to_num(ds["corrected"].values)
    imp = np.zeros((units.size, ds.sizes["time"]))
    exp = np.zeros_like(imp)
    np.add.at(imp, code[mq == "AI"], corrected[mq == "AI"])
    np.add.at(exp, code[mq == "AE"], corrected[mq == "AE"])
    dims = ("bm_unit_id", "time")
    return xr.Dataset({
        "allocated_import": (dims, imp, {"units": "kWh", "long_name": "BM unit allocated import volume"}),
        "allocated_export": (dims, exp, {"units": "kWh", "long_name": "BM unit allocated export volume"}),
        "allocated_net": (dims, imp - exp, {"units": "kWh", "long_name": "BM unit allocated volume, import - export"}),
    }, coords={"bm_unit_id": units, "time": ds["time"].values})
