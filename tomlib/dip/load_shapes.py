"""IF-022 load shape period data and IF-023 load shape totals, as DIP messages from the Load Shaping Service.

The DIP carries the same content as Elexon's Insights API records (:mod:`tomlib.flows.load_shapes`),
in blocks:

- IF-022 ``[LSSPeriodData]``: one message per UTC day, ``B903List`` = [{``settlementDay`` (B046),
  ``LSGSettlementPeriods``: one per category [{``LSGroup`` (B051), ``LSGroupSettlementPeriods``:
  [{``sp``, ``loadShapePeriodValue``, ``defaultLoadShapeFlag``}]}]}], from
  :func:`tomlib.services.load_shaping.load_shapes` (``load_shape`` [kWh per MPAN per period],
  ``default_flag`` DI-154). ``sp`` is the UTC **end** of the period, as in IF-021 (DI-082).
- IF-023 ``[LSSTotalsData]``: one message per settlement day, ``B912List`` = [{``settlementDay``,
  ``LSGTotals``: per category [{``LSGroup``, ``LSAnnualConsumption.annualLoadShapeTotal`` (=
  ``rolling_annual_total``), ``LSTTotals``: [{day, day peak, day off-peak, 7-day rolling, 7-day peak,
  7-day off-peak totals}]}]}], from :func:`tomlib.services.load_shaping.load_shape_totals`.
  [INF] ``settlementDayDate`` holds the *settlement* date at ``T00:00:00+00:00``: tomlib's totals
  are per local settlement day, and a UTC-day reading of totals would need the periods regrouped.

Category keys (B051): ``loadShapeGSPGroupID`` and ``loadShapeDomesticPremiseIndicator`` (T/F) may be
null, which is how an aggregated key (``*``) is written; ``connectionTypeIndicator``,
``marketSegmentIndicator`` and ``measurementQuantityID`` must have a value, so a category
definition aggregating one of them cannot be written (the writer says which). Values are
decimal(9,3) [kWh]: load shapes of a few Wh per MPAN lose digits on the wire, which reading shows.
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
    parse_decimal,
    parse_utc,
    sender_reference,
    sent_timestamp,
    unwrap,
    utc_text,
)
from tomlib.dip.if021 import _DAY_NS, _PERIOD_NS, _labelled, sp_starts

__all__ = ["TOTALS", "LoadShapeData", "if022_payloads", "if023_payloads", "read_if022", "read_if023"]

_ROLE = "LSS"
#: B051 field -> load-shape category key (tomlib.services.load_shaping).
_B051 = {
    "loadShapeGSPGroupID": "gsp_group",
    "connectionTypeIndicator": "connection_type",
    "marketSegmentIndicator": "market_segment",
    "loadShapeDomesticPremiseIndicator": "domestic",
    "measurementQuantityID": "measurement_quantity",
}
_NULLABLE = ("loadShapeGSPGroupID", "loadShapeDomesticPremiseIndicator")
_AGGREGATED = "*"
#: IF-023 B053 field -> variable of the totals Dataset.
TOTALS = {
    "loadShapeDayTotal": "day_total",
    "loadShapeDayPeakTotal": "day_peak_total",
    "loadShapeDayOffPeakTotal": "day_off_peak_total",
    "loadShape7DayRollingTotal": "rolling_7day_total",
    "loadShape7DayRollingPeakTotal": "rolling_7day_peak_total",
    "loadShape7DayRollingOffPeakTotal": "rolling_7day_off_peak_total",
}


def _groups(ds: xr.Dataset, where: str) -> list[dict]:
    """B051 LSGroup of each category (wire values; aggregated nullable keys -> null)."""
    cats = np.asarray(ds["category"].values).astype(str)
    cols = {}
    for f, key in _B051.items():
        if key not in ds.coords:
            raise ValueError(f"{where}: the load shapes have no {key!r} coordinate (B051 {f})")
        col = np.asarray(ds[key].values).astype(str)
        agg = col == _AGGREGATED
        if agg.any() and f not in _NULLABLE:
            raise ValueError(f"{where}: category {str(cats[np.argmax(agg)])!r} aggregates {key}, but B051 {f} must have a "
                             "value; write categories that split by connection type, market segment and "
                             "measurement quantity")
        cols[f] = np.where(agg, None, col).astype(object)
    return [{f: cols[f][i] for f in _B051} for i in range(cats.size)]


def _sender(cfg: DipConfig, sent: pd.Timestamp, interface: str, unique: str) -> tuple[str, str]:
    sid = cfg.id(_ROLE)
    return sid, sender_reference(interface, sid, _ROLE, sent, unique)


def if022_payloads(shapes: xr.Dataset, *, config: Any = None, sent_at=None,
                   stats: dict | None = None) -> Iterator[tuple[str, dict]]:
    """IF-022 payloads of load shapes, one per UTC day.

    Parameters
    ----------
    shapes : Dataset
        Of :func:`tomlib.services.load_shaping.load_shapes`: ``load_shape(category, time)`` [kWh],
        coordinate ``default_flag(category, time)`` (DI-154; default ``A``) and the key coordinates.
    config : DipConfig or mapping, optional
    sent_at : datetime-like, optional
        S1.senderTimestamp [UTC]; default now.
    stats : dict, optional
        Counters ``messages``, ``values``.

    Yields
    ------
    (str, dict)
        UTC day ``YYYY-MM-DD`` and payload.
    """
    where = "IF-022 writer"
    if "load_shape" not in shapes:
        raise ValueError(f"{where}: expected a Dataset with a 'load_shape' variable (load_shaping.load_shapes)")
    cfg = DipConfig.coerce(config)
    counts = stats if stats is not None else {}
    counts.setdefault("messages", 0)
    counts.setdefault("values", 0)
    sent = sent_timestamp(sent_at)
    sent_text = utc_text([sent])[0]
    ls = shapes["load_shape"].transpose("category", "time")
    values = np.asarray(ls.values, dtype=float)
    if not np.isfinite(values).all():
        i, j = np.argwhere(~np.isfinite(values))[0]
        raise ValueError(f"{where}: load_shape is {values[i, j]} for category {str(ls['category'].values[i])!r} at "
                         f"{pd.Timestamp(ls['time'].values[j])} UTC; every published period needs a value")
    flags = np.asarray(shapes["default_flag"].transpose("category", "time").values).astype(str) \
        if "default_flag" in shapes.variables else np.full(values.shape, "A")
    text = decimal_text(values, 3, "loadShapePeriodValue [kWh]")
    groups = _groups(shapes, where)
    times = np.asarray(ls["time"].values, dtype="datetime64[ns]")
    t_ns = times.astype(np.int64)
    days, starts = np.unique(t_ns - t_ns % _DAY_NS, return_index=True)
    bounds = np.append(starts, t_ns.size)
    sp_text = utc_text(times + np.timedelta64(_PERIOD_NS, "ns"), "sp")
    day_text = utc_text(days.astype("datetime64[ns]"), "settlementDayDate")
    for d in range(days.size):  # one message per UTC day
        a, b = bounds[d], bounds[d + 1]
        sps = sp_text[a:b].tolist()
        per_cat = [{"LSGroup": dict(groups[c]),
                    "LSGroupSettlementPeriods": [{"sp": s, "loadShapePeriodValue": v, "defaultLoadShapeFlag": f}
                                                 for s, v, f in zip(sps, text[c, a:b].tolist(), flags[c, a:b].tolist())]}
                   for c in range(len(groups))]  # categories: tens
        sid, ref = _sender(cfg, sent, "IF-022", f"LS{day_text[d][:10].replace('-', '')}")
        payload = {
            "CommonBlock": common_block("IF-022", "[LSSPeriodData]", sender_id=sid, role=_ROLE, sent_text=sent_text,
                                        reference=ref, config=cfg),
            "CustomBlock": {"B903List": [{"settlementDay": {"settlementDayDate": day_text[d], "periodDuration": 30},
                                          "LSGSettlementPeriods": per_cat}]},
        }
        counts["messages"] += 1
        counts["values"] += int(len(groups) * (b - a))
        yield day_text[d][:10], payload


def if023_payloads(totals: xr.Dataset, *, config: Any = None, sent_at=None,
                   stats: dict | None = None) -> Iterator[tuple[str, dict]]:
    """IF-023 payloads of load-shape totals, one per settlement day.

    Parameters
    ----------
    totals : Dataset
        Of :func:`tomlib.services.load_shaping.load_shape_totals` (category x settlement_date) [kWh].
    config, sent_at, stats
        As for :func:`if022_payloads` (counters ``messages``, ``categories``).
    """
    where = "IF-023 writer"
    need = [*TOTALS.values(), "rolling_annual_total"]
    missing = [v for v in need if v not in totals]
    if missing:
        raise ValueError(f"{where}: the totals lack {missing} (load_shaping.load_shape_totals)")
    cfg = DipConfig.coerce(config)
    counts = stats if stats is not None else {}
    counts.setdefault("messages", 0)
    counts.setdefault("categories", 0)
    sent = sent_timestamp(sent_at)
    sent_text = utc_text([sent])[0]
    groups = _groups(totals, where)
    text = {f: decimal_text(totals[v].transpose("category", "settlement_date").values, 3, f)
            for f, v in {**TOTALS, "annualLoadShapeTotal": "rolling_annual_total"}.items()}
    dates = pd.DatetimeIndex(totals["settlement_date"].values)
    day_text = utc_text(dates.normalize(), "settlement_date")
    for d in range(dates.size):  # one message per settlement day
        per_cat = [{"LSGroup": dict(groups[c]),
                    "LSAnnualConsumption": {"annualLoadShapeTotal": text["annualLoadShapeTotal"][c, d]},
                    "LSTTotals": [{f: text[f][c, d] for f in TOTALS}]}
                   for c in range(len(groups))]
        sid, ref = _sender(cfg, sent, "IF-023", f"LT{dates[d]:%Y%m%d}")
        payload = {
            "CommonBlock": common_block("IF-023", "[LSSTotalsData]", sender_id=sid, role=_ROLE, sent_text=sent_text,
                                        reference=ref, config=cfg),
            "CustomBlock": {"B912List": [{"settlementDay": {"settlementDayDate": day_text[d], "periodDuration": 30},
                                          "LSGTotals": per_cat}]},
        }
        counts["messages"] += 1
        counts["categories"] += len(groups)
        yield f"{dates[d]:%Y-%m-%d}", payload


# ------------------------------------------------------------------------------------------ reading


@dataclass
class LoadShapeData:
    """IF-022 or IF-023 messages read back.

    Attributes
    ----------
    data : Dataset
        IF-022: ``load_shape(category, time)`` [kWh per MPAN] with ``default_flag(category, time)``;
        IF-023: the :data:`TOTALS` variables and ``rolling_annual_total`` over (category,
        settlement_date) [kWh]. Both with the key coordinates (wire values, ``*`` for null) and
        category labels ``gsp|conn|segment|D/N|mq`` as :func:`tomlib.services.load_shaping.category_of`.
    rejected : DataFrame
    checks : dict
    """

    data: xr.Dataset
    rejected: pd.DataFrame
    checks: dict[str, float] = field(default_factory=dict)


def _label(group: dict) -> tuple[str, ...]:
    wire = tuple(_AGGREGATED if group[f] is None else str(group[f]) for f in _B051)
    return wire


def _category_labels(keys: list[tuple[str, ...]]) -> np.ndarray:
    dom = {"T": "D", "F": "N"}  # DI-031 wire -> load_shaping label (load_shape_categories.csv)
    return np.array(["|".join((g, c, s, dom.get(d, d), m)) for g, c, s, d, m in keys], dtype=str)


def _payloads(messages, interface: str, validate: str, on_invalid: str, where: str):
    rejected: list[dict] = []
    n = n_invalid = 0
    out = []
    for label, item in _labelled(messages, where):
        n += 1
        payload = unwrap(item, label)
        iface = schema.interface_of(payload)
        errs = [schema.SchemaError("$.CommonBlock.S0.interfaceID", f"{iface!r} is not {interface}")] \
            if iface not in (None, interface) else []
        if not errs:
            try:
                schema.check(payload, interface, mode=validate, where=label)
            except schema.DipValidationError as err:
                errs = err.errors
        if errs:
            if on_invalid == "raise":
                raise schema.DipValidationError(label, f"{interface}-Payload", errs)
            n_invalid += 1
            rejected.extend({"mpan": "", "time": pd.NaT, "field": e.path, "reason": f"schema: {e.message}",
                             "value": label} for e in errs)
            continue
        out.append((label, payload))
    return out, rejected, n, n_invalid


def _key_coords(keys: list[tuple[str, ...]]) -> dict:
    arr = np.array(keys, dtype=str).reshape(len(keys), len(_B051))
    return {key: ("category", arr[:, i]) for i, key in enumerate(_B051.values())}


def read_if022(messages: Iterable, *, sp_convention: str = "end", validate: str = "full", on_invalid: str = "raise",
               where: str = "IF-022") -> LoadShapeData:
    """Read IF-022 messages into load shapes (category x UTC period start).

    Periods a category lacks are NaN with ``default_flag`` ``""``; a period sent twice keeps the
    later message's value (counted as ``superseded``).
    """
    payloads, rejected, n, n_invalid = _payloads(messages, "IF-022", validate, on_invalid, where)
    keys: dict[tuple, int] = {}
    p_cat, p_block, p_sp, p_v, p_f, block_day, block_label = [], [], [], [], [], [], []
    for label, payload in payloads:
        for day in payload["CustomBlock"]["B903List"]:
            for per_cat in day["LSGSettlementPeriods"]:
                b = len(block_day)
                block_day.append(day["settlementDay"]["settlementDayDate"])
                block_label.append(label)
                c = keys.setdefault(_label(per_cat["LSGroup"]), len(keys))
                for p in per_cat["LSGroupSettlementPeriods"]:
                    p_cat.append(c)
                    p_block.append(b)
                    p_sp.append(p["sp"])
                    p_v.append(p["loadShapePeriodValue"])
                    p_f.append(p["defaultLoadShapeFlag"])
    sp = parse_utc(p_sp, "sp").astype(np.int64)
    start, use_end, ambiguous = sp_starts(sp, parse_utc(block_day, "settlementDayDate").astype(np.int64),
                                          np.asarray(p_block, dtype=np.int64), sp_convention,
                                          lambda b: block_label[b], p_sp)
    key_list = list(keys)
    times = np.unique(start)
    t_axis = np.arange(times.min(), times.max() + 1, _PERIOD_NS) if times.size else np.zeros(0, np.int64)
    cat = np.asarray(p_cat, dtype=np.int64)
    col = np.searchsorted(t_axis, start)
    values = np.full((len(key_list), t_axis.size), np.nan)
    flags = np.full((len(key_list), t_axis.size), "", dtype="<U1")
    flat = cat * max(t_axis.size, 1) + col
    superseded = int(flat.size - np.unique(flat).size)
    values[cat, col] = parse_decimal(p_v, "loadShapePeriodValue") if p_v else np.zeros(0)  # later wins
    flags[cat, col] = np.asarray(p_f, dtype=str) if p_f else np.zeros(0, str)
    labels = _category_labels(key_list)
    data = xr.Dataset(
        {"load_shape": (("category", "time"), values, {"units": "kWh", "long_name": "load shape (IF-022)"})},
        coords={"category": ("category", labels), "time": ("time", t_axis.astype("datetime64[ns]"),
                                                            dict(cube.TIME_ATTRS)),
                "default_flag": (("category", "time"), flags, {"long_name": "defaultLoadShapeFlag (DI-154)"}),
                **_key_coords(key_list)},
        attrs={"source": "DIP IF-022 messages (DIP API v2.1.0)", "sp_convention": sp_convention},
    )
    data = cube.add_settlement_coords(data) if t_axis.size else data
    rej = pd.DataFrame(rejected, columns=["mpan", "time", "field", "reason", "value"])
    checks = {"messages": float(n), "invalid_messages": float(n_invalid), "values": float(len(p_v)),
              "superseded": float(superseded), "sp_ambiguous_blocks": float(ambiguous.sum()),
              "sp_start_blocks": float((~use_end).sum())}
    return LoadShapeData(data, rej, checks)


def read_if023(messages: Iterable, *, validate: str = "full", on_invalid: str = "raise",
               where: str = "IF-023") -> LoadShapeData:
    """Read IF-023 messages into load-shape totals (category x settlement_date) [kWh]."""
    payloads, rejected, n, n_invalid = _payloads(messages, "IF-023", validate, on_invalid, where)
    keys: dict[tuple, int] = {}
    rows: list[tuple] = []
    for label, payload in payloads:
        for day in payload["CustomBlock"]["B912List"]:
            date = day["settlementDay"]["settlementDayDate"]
            for per_cat in day["LSGTotals"]:
                c = keys.setdefault(_label(per_cat["LSGroup"]), len(keys))
                for tot in per_cat["LSTTotals"]:
                    rows.append((c, date, per_cat["LSAnnualConsumption"]["annualLoadShapeTotal"],
                                 *[tot[f] for f in TOTALS]))
    key_list = list(keys)
    cat = np.array([r[0] for r in rows], dtype=np.int64)
    dates = pd.DatetimeIndex(parse_utc([r[1] for r in rows], "settlementDayDate")).normalize()
    uniq = np.unique(dates.to_numpy())
    col = np.searchsorted(uniq, dates.to_numpy())
    variables = {}
    for k, (f, var) in enumerate({"annualLoadShapeTotal": "rolling_annual_total", **TOTALS}.items()):
        raw = [r[2 + k] for r in rows]
        arr = np.full((len(key_list), uniq.size), np.nan)
        present = np.array([v is not None for v in raw], dtype=bool)
        if present.any():
            arr[cat[present], col[present]] = parse_decimal(np.asarray(raw, dtype=object)[present], f)
        variables[var] = (("category", "settlement_date"), arr, {"units": "kWh", "long_name": f})
    data = xr.Dataset(variables, coords={"category": ("category", _category_labels(key_list)),
                                         "settlement_date": ("settlement_date", uniq.astype("datetime64[ns]")),
                                         **_key_coords(key_list)},
                      attrs={"source": "DIP IF-023 messages (DIP API v2.1.0)"})
    rej = pd.DataFrame(rejected, columns=["mpan", "time", "field", "reason", "value"])
    return LoadShapeData(data, rej, {"messages": float(n), "invalid_messages": float(n_invalid),
                                     "rows": float(len(rows))})
