"""Registration history: who supplies each MPAN, through which BM unit and LLFC, period by period.

Registration (MHHS REGS, mhhs-domain.md §2.13) publishes each MPAN's standing data; settlement
uses the registration *in force in each settlement period* as far as it was *known on the run's
as-of date* (§2.9: a late registration change is re-aggregated in the next run).

Events table
------------
One row per registration snapshot (:data:`EVENT_COLUMNS`):

==============  ================  ==============================================================
column          dtype             meaning
==============  ================  ==============================================================
mpan            str               13-digit MPAN core
effective_from  datetime64[ns]    UTC start of the first settlement period the snapshot applies to
supplier        str               supplier MPID
bm_unit         str               BM unit the MPAN's volumes are allocated to
llfc            str               line loss factor class id
energised       bool              energisation status
notified_at     datetime64[ns]    UTC instant the snapshot reached settlement
change          str               why the snapshot exists: ``initial``, ``supplier``, ``llfc``,
                                  ``energisation`` (informative)
==============  ================  ==============================================================

Each event is a *full snapshot* of the four registration fields (as Registration republishes
the whole standing data of an MPAN on a change), valid from ``effective_from`` until the next
snapshot of the same MPAN. In force at period t, as of instant a: among the MPAN's events with
``effective_from <= t`` and ``notified_at <= a``, the one with the latest ``effective_from``
(ties: the latest ``notified_at``). An MPAN with no such event is *not registered* in t.

Generated history ([INF])
-------------------------
:func:`generate_events` overlays changes on a market's standing data, deterministically from
the market seed (its own random stream, :data:`STREAM_KEY`), with the knobs of
:class:`RegistrationSettings` (defaults documented there; the scenario file may carry them in a
``registration`` section once :mod:`tomlib.scenario` knows it). Per MPAN at most one change of each
kind in the scenario window; each takes effect at a random settlement period after the first;
a share of them is notified late (after the change took effect), so early runs settle the
old registration and a later run picks the change up.

The overlay does not alter the market's true energy: a de-energisation event therefore models
a site registered de-energised that still consumes (its energy is in nobody's settled volume and
ends up in the GSP group correction residual, like theft).

In force per MPAN x period, vectorised
--------------------------------------
:func:`in_force` puts each visible event at the cell (mpan, max(effective period, first period
whose as-of instant sees it)) of an (mpan x time) array of event positions and carries positions
forward with ``np.maximum.accumulate``: events are sorted by (mpan, effective_from, notified_at),
so the largest position reached is the latest-effective visible event. One pass over the array,
no loop over MPANs or periods.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

__all__ = [
    "CHANGES",
    "EVENT_COLUMNS",
    "STREAM_KEY",
    "RegistrationInForce",
    "RegistrationSettings",
    "generate_events",
    "in_force",
    "initial_events",
    "validate_events",
]

EVENT_COLUMNS = ("mpan", "effective_from", "supplier", "bm_unit", "llfc", "energised", "notified_at", "change")
CHANGES = ("initial", "supplier", "llfc", "energisation")

#: Spawn key of the registration random stream (market.STREAMS uses 0..12; this one stays clear of it).
STREAM_KEY = 101

_PERIOD = np.timedelta64(30, "m")
_DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class RegistrationSettings:
    """Knobs of the generated registration history ([INF] illustrative defaults).

    Attributes
    ----------
    change_of_supplier_rate : float
        Probability per MPAN per settlement day that a change of supplier takes effect [1/day].
        Default 0.002 (about half the MPANs a year: higher than GB's ~15-20 %/year so that a
        two-week scenario shows some changes).
    llfc_change_rate : float
        Probability per MPAN per day of a change of LLFC (e.g. domestic -> non-domestic) [1/day].
    deenergisation_rate : float
        Probability per MPAN per day of a de-energisation (registration only; see module doc) [1/day].
    late_notification_share : float
        Share of changes notified after they took effect [-].
    late_notification_max_days : float
        A late change is notified uniformly 0..this many days after it took effect [days].
    notice_days : float
        A timely change is notified uniformly 0..this many days before it takes effect [days].
    initial_notice_days : float
        The initial snapshot is notified this long before the first settlement day [days].
    """

    change_of_supplier_rate: float = 0.002
    llfc_change_rate: float = 0.0005
    deenergisation_rate: float = 0.0002
    late_notification_share: float = 0.25
    late_notification_max_days: float = 30.0
    notice_days: float = 14.0
    initial_notice_days: float = 60.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0:
                raise ValueError(f"registration.{f.name} must be a finite number >= 0, got {v!r}")
        for name in ("change_of_supplier_rate", "llfc_change_rate", "deenergisation_rate",
                     "late_notification_share"):
            if getattr(self, name) > 1:
                raise ValueError(f"registration.{name} must be within [0, 1], got {getattr(self, name)}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, source: str = "registration") -> RegistrationSettings:
        """Settings from a mapping (e.g. a scenario's ``registration`` section); unknown keys raise."""
        if data is None:
            return cls()
        if dataclasses.is_dataclass(data):
            data = dataclasses.asdict(data)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: unknown key(s) {unknown}; expected some of {sorted(known)}")
        return cls(**{k: float(v) for k, v in data.items()})

    @classmethod
    def from_scenario(cls, scenario) -> RegistrationSettings:
        """The scenario's ``registration`` section if it has one, else the defaults."""
        return cls.from_mapping(getattr(scenario, "registration", None),
                                source=f"{getattr(scenario, 'source', '<scenario>')}: registration")


# ------------------------------------------------------------------------------------------ events


def _rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed), spawn_key=(STREAM_KEY,))))


def initial_events(meters: xr.Dataset, effective_from, notified_at) -> pd.DataFrame:
    """One ``initial`` snapshot per MPAN from a meter cube's standing data (all energised).

    Parameters
    ----------
    meters : Dataset
        Meter cube with ``supplier``, ``bm_unit``, ``llfc`` coordinates on ``mpan``.
    effective_from, notified_at : Timestamp
        UTC instants of every initial snapshot.
    """
    n = meters.sizes["mpan"]
    return pd.DataFrame({
        "mpan": np.asarray(meters["mpan"].values, dtype=str),
        "effective_from": np.full(n, np.datetime64(pd.Timestamp(effective_from), "ns")),
        "supplier": np.asarray(meters["supplier"].values, dtype=str),
        "bm_unit": np.asarray(meters["bm_unit"].values, dtype=str),
        "llfc": np.asarray(meters["llfc"].values, dtype=str),
        "energised": np.ones(n, dtype=bool),
        "notified_at": np.full(n, np.datetime64(pd.Timestamp(notified_at), "ns")),
        "change": np.full(n, "initial"),
    })


def _draw_changes(rng, n_mpan: int, n_time: int, n_days: int, rate: float, s: RegistrationSettings):
    """Which MPANs change (at most once), the period it takes effect and its notification delay."""
    p = 1.0 - (1.0 - rate) ** n_days
    who = np.flatnonzero(rng.random(n_mpan) < p)
    t_idx = rng.integers(1, max(n_time, 2), size=who.size)
    late = rng.random(who.size) < s.late_notification_share
    delay_days = np.where(late, rng.random(who.size) * s.late_notification_max_days,
                          -rng.random(who.size) * s.notice_days)
    return who, np.minimum(t_idx, n_time - 1), delay_days


def _pick_other(rng, current: np.ndarray, group: np.ndarray, options: Mapping[str, np.ndarray]) -> np.ndarray:
    """For each row a random option of its group other than its current value ('' if none)."""
    out = np.full(current.size, "", dtype=object)
    for g in np.unique(group):  # a few GSP groups / classes, not MPANs
        rows = np.flatnonzero(group == g)
        opts = np.asarray(options.get(g, np.array([], dtype=str)), dtype=str)
        cand = opts[None, :] != current[rows][:, None]  # (rows, options)
        n_cand = cand.sum(axis=1)
        draw = (rng.random(rows.size) * np.maximum(n_cand, 1)).astype(int)
        # the draw-th True of each row
        rank = np.cumsum(cand, axis=1) - 1
        hit = cand & (rank == draw[:, None])
        chosen = np.where(n_cand > 0, opts[np.argmax(hit, axis=1)] if opts.size else "", "")
        out[rows] = chosen
    return out.astype(str)


def _text(values: np.ndarray):
    """``pd.array(values, dtype="str")``, written from the code points when the ids are fixed-width ASCII."""
    from tomlib._text import arrow_text

    return arrow_text(np.asarray(values, dtype=str))


def _bm_unit_of(gsp: np.ndarray, supplier: np.ndarray, bm_unit: np.ndarray) -> pd.Series:
    """The most frequent BM unit per (GSP group, supplier), indexed by both."""
    codes = [pd.factorize(_text(x)) for x in (gsp, supplier, bm_unit)]
    key = codes[0][0].astype(np.int64)
    for c, u in codes[1:]:
        key = key * max(len(u), 1) + c
    _, first = np.unique(key, return_index=True)
    pair = np.unique(key[first] // max(len(codes[2][1]), 1))
    # a BM unit per (GSP group, supplier) pair: the groups of the distinct triples are the same groups
    # and their one value is the most frequent; several BM units of a pair count rows, as before
    rows = first if pair.size == first.size else slice(None)
    pairs = pd.DataFrame({"gsp": gsp[rows], "supplier": supplier[rows], "bm_unit": bm_unit[rows]})
    return pairs.groupby(["gsp", "supplier"])["bm_unit"].agg(lambda x: x.value_counts().index[0])


def generate_events(market, settings: RegistrationSettings | None = None, *, seed: int | None = None) -> pd.DataFrame:
    """A deterministic registration history over a market's time axis.

    Parameters
    ----------
    market : tomlib.market.Market
        Its ``meters`` standing data is the initial registration; ``line_loss_factors.llfc`` bounds
        the LLFCs a change may move to (an LLFC without LLFs would fail settlement).
    settings : RegistrationSettings, optional
        Default :class:`RegistrationSettings()`.
    seed : int, optional
        Default ``market.seed``.

    Returns
    -------
    DataFrame
        Columns :data:`EVENT_COLUMNS`, sorted by (mpan, effective_from, notified_at). Changes of
        supplier move to another supplier that has a BM unit in the MPAN's GSP group in the market
        (its BM unit follows); LLFC changes move to another LLFC of the same GSP group, market
        segment and measurement quantity that has LLFs; a change with no candidate is not made.
    """
    from tomlib import reference

    s = settings or RegistrationSettings()
    rng = _rng(market.seed if seed is None else seed)
    meters = market.meters
    times = pd.DatetimeIndex(meters["time"].values)
    n_mpan, n_time = meters.sizes["mpan"], times.size
    n_days = int(np.unique(np.asarray(meters["settlement_date"].values)).size)
    start = times[0]
    # the initial snapshot as NumPy columns: the events table is built once, at the end
    mpan_index = meters.indexes["mpan"]
    supplier = np.asarray(meters["supplier"].values, dtype=str)
    bm_unit = np.asarray(meters["bm_unit"].values, dtype=str)
    llfc = np.asarray(meters["llfc"].values, dtype=str)
    gsp = np.asarray(meters["gsp_group"].values, dtype=str)
    seg = np.asarray(meters["market_segment"].values, dtype=str)
    mq = np.asarray(meters["measurement_quantity"].values, dtype=str)

    changes = []
    # change of supplier: to a supplier with a BM unit in the same GSP group
    who, t_idx, delay = _draw_changes(rng, n_mpan, n_time, n_days, s.change_of_supplier_rate, s)
    bmu_of = _bm_unit_of(gsp, supplier, bm_unit)
    options = {g: np.asarray(bmu_of.loc[g].index, dtype=str) for g in bmu_of.index.get_level_values(0).unique()}
    new_supplier = _pick_other(rng, supplier[who], gsp[who], options)
    keep = new_supplier != ""
    new_bmu = bmu_of.reindex(pd.MultiIndex.from_arrays([gsp[who][keep], new_supplier[keep]])).to_numpy(dtype=str)
    changes.append(("supplier", who[keep], t_idx[keep], delay[keep], {"supplier": new_supplier[keep],
                                                                      "bm_unit": new_bmu}))
    # change of LLFC: same GSP group, segment and measurement quantity, with LLFs in the market
    who, t_idx, delay = _draw_changes(rng, n_mpan, n_time, n_days, s.llfc_change_rate, s)
    table = reference.line_loss_factor_classes()
    table = table[table.index.isin(np.asarray(market.line_loss_factors["llfc"].values, dtype=str))]
    key = table["gsp_group"].astype(str) + "|" + table["market_segment"].astype(str) + "|" + \
        table["measurement_quantity"].astype(str)
    llfc_options = {k: np.asarray(v.index, dtype=str) for k, v in table.groupby(key.to_numpy())}
    # the class of the drawn MPANs only (joining text is slow per row)
    cls = np.char.add(np.char.add(np.char.add(np.char.add(gsp[who], "|"), seg[who]), "|"), mq[who])
    new_llfc = _pick_other(rng, llfc[who], cls, llfc_options)
    keep = new_llfc != ""
    changes.append(("llfc", who[keep], t_idx[keep], delay[keep], {"llfc": new_llfc[keep]}))
    # de-energisation
    who, t_idx, delay = _draw_changes(rng, n_mpan, n_time, n_days, s.deenergisation_rate, s)
    changes.append(("energisation", who, t_idx, delay, {"energised": np.zeros(who.size, dtype=bool)}))

    # Snapshots: each change carries the fields it changes; the others are carried forward from
    # the MPAN's previous snapshot in effective order (every MPAN's initial snapshot comes first).
    eff_at = times.to_numpy().astype("datetime64[ns]")
    m_parts, t_parts, eff_parts, notified_parts = [np.arange(n_mpan)], [np.full(n_mpan, -1)], \
        [np.full(n_mpan, np.datetime64(pd.Timestamp(start), "ns"))], \
        [np.full(n_mpan, np.datetime64(pd.Timestamp(start - pd.Timedelta(days=s.initial_notice_days)), "ns"))]
    kind_parts = [np.zeros(n_mpan, dtype=np.int8)]
    values = {"supplier": [_text(supplier)], "bm_unit": [_text(bm_unit)], "llfc": [_text(llfc)],
              "energised": [np.ones(n_mpan, bool)]}
    given = {col: [np.ones(n_mpan, dtype=bool)] for col in values}
    for kind, who, t_idx, delay, fields in changes:
        eff = eff_at[t_idx]
        notified = (eff + (delay * 86_400e9).astype("timedelta64[ns]")).astype("datetime64[s]").astype("datetime64[ns]")
        m_parts.append(who), t_parts.append(t_idx), eff_parts.append(eff), notified_parts.append(notified)
        kind_parts.append(np.full(who.size, CHANGES.index(kind), dtype=np.int8))
        for col, parts in values.items():  # four fields
            given[col].append(np.full(who.size, col in fields))
            if col in fields:
                parts.append(fields[col] if col == "energised" else _text(fields[col]))
    m_all, t_all = np.concatenate(m_parts), np.concatenate(t_parts)
    eff_all, notified_all = np.concatenate(eff_parts), np.concatenate(notified_parts)
    order = np.lexsort((notified_all, t_all, m_all))  # stable, as the (mpan, period, notified) sort was
    # MPANs gathered from the index's Arrow strings: converting them to NumPy and back costs 10x more
    mpan_text = mpan_index.array if isinstance(mpan_index.dtype, pd.StringDtype) else \
        _text(np.asarray(mpan_index, dtype=str))
    columns = {"mpan": mpan_text.take(m_all[order]), "effective_from": eff_all[order]}
    rows = np.arange(order.size)
    for col in ("supplier", "bm_unit", "llfc", "energised"):
        has = np.concatenate(given[col])[order]
        pool_row = np.cumsum(np.concatenate(given[col])) - 1  # row in the concatenated values
        carried = np.maximum.accumulate(np.where(has, rows, -1))  # forward fill within each MPAN
        picked = pool_row[order][carried]
        if col == "energised":
            columns[col] = np.concatenate(values[col])[picked].astype(bool)
        else:
            parts = values[col]
            columns[col] = type(parts[0])._concat_same_type(parts).take(picked)
    columns["notified_at"] = notified_all[order]
    columns["change"] = pd.array(np.asarray(CHANGES), dtype="str").take(np.concatenate(kind_parts)[order].astype(np.intp))
    ev = pd.DataFrame({c: columns[c] for c in EVENT_COLUMNS})
    validate_events(ev, where="generate_events")
    return ev


def _empty_text(column: pd.Series) -> np.ndarray:
    """Where a column (no nulls) holds "" -- ``(column.astype(str).str.len() == 0)``; an Arrow text
    column is read from its offsets (an empty value starts where the next does), no string copied."""
    import pyarrow as pa

    chunked = getattr(column.array, "_pa_array", None)
    if chunked is not None and (pa.types.is_string(chunked.type) or pa.types.is_large_string(chunked.type)) \
            and not chunked.null_count:
        chunk = chunked.combine_chunks()
        kind = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        offsets = np.frombuffer(chunk.buffers()[1], dtype=kind)[chunk.offset:chunk.offset + len(chunk) + 1]
        return np.diff(offsets) == 0
    return (column.astype(str).str.len() == 0).to_numpy(dtype=bool)


def validate_events(events: pd.DataFrame, where: str = "registration events") -> None:
    """Check an events table: columns, no nulls, types, half-hour ``effective_from``.

    Raises
    ------
    ValueError
        Naming ``where``, the column and the first offending row.
    """
    missing = [c for c in EVENT_COLUMNS[:-1] if c not in events.columns]
    if missing:
        raise ValueError(f"{where}: missing column(s) {missing}; expected {list(EVENT_COLUMNS[:-1])}")
    for col in EVENT_COLUMNS[:-1]:
        nulls = events[col].isna().to_numpy()
        if nulls.any():
            raise ValueError(f"{where}: column {col} is empty in row {int(np.argmax(nulls))}; expected a value")
    for col in ("effective_from", "notified_at"):
        if not pd.api.types.is_datetime64_dtype(events[col]) or getattr(events[col].dtype, "tz", None):
            raise ValueError(f"{where}: column {col} must be tz-naive datetime64 (UTC), got {events[col].dtype}")
    if not pd.api.types.is_bool_dtype(events["energised"]):
        raise ValueError(f"{where}: column energised must be boolean, got {events['energised'].dtype}")
    eff = events["effective_from"].to_numpy().astype("datetime64[ns]")
    off = (eff - np.datetime64(0, "ns")) % _PERIOD != np.timedelta64(0, "ns")
    if off.any():
        i = int(np.argmax(off))
        raise ValueError(f"{where}: effective_from must be a settlement period start (half hour, UTC), got "
                         f"{pd.Timestamp(eff[i])} in row {i} (mpan {events['mpan'].iloc[i]})")
    for col in ("supplier", "bm_unit", "llfc"):
        empty = _empty_text(events[col])
        if empty.any():
            raise ValueError(f"{where}: column {col} is '' in row {int(np.argmax(empty))}; expected an id")


# ------------------------------------------------------------------------------------------ in force


@dataclass(frozen=True)
class RegistrationInForce:
    """Registration in force per (mpan, time) cell, as event positions into a sorted events table.

    Attributes
    ----------
    mpans : ndarray of str, shape (n_mpan,)
    times : DatetimeIndex, shape (n_time,)
        UTC period starts.
    events : DataFrame
        The visible-or-not events, sorted by (mpan, effective_from, notified_at), index 0..n-1.
    event : ndarray of int32, shape (n_mpan, n_time)
        Position in ``events`` of the snapshot in force; -1 = not registered.
    event_row : ndarray of int64, shape (n_events,)
        Row in ``mpans`` of each event's MPAN.
    """

    mpans: np.ndarray
    times: pd.DatetimeIndex
    events: pd.DataFrame
    event: np.ndarray
    event_row: np.ndarray

    def codes(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """Integer codes (n_mpan, n_time) of ``supplier``, ``bm_unit`` or ``llfc`` (-1 = not registered)
        and the sorted values they index."""
        # factorised where the strings are (Arrow): converting them to NumPy first cost 10x more
        codes, cats = pd.factorize(self.events[column].astype(str), sort=True)
        # position -1 (not registered) picks the appended -1 code
        return np.append(codes.astype(np.int32), -1)[self.event], np.asarray(cats, dtype=str)

    @cached_property
    def registered(self) -> np.ndarray:
        """bool (n_mpan, n_time): some snapshot is in force."""
        return self.event >= 0

    @cached_property
    def energised(self) -> np.ndarray:
        """bool (n_mpan, n_time): registered and energised."""
        return np.append(self.events["energised"].to_numpy(dtype=bool), False)[self.event]

    def field(self, column: str) -> np.ndarray:
        """String values (n_mpan, n_time) of ``supplier``, ``bm_unit`` or ``llfc`` ('' = not registered)."""
        codes, cats = self.codes(column)
        return np.append(cats, "")[codes]

    def to_dataset(self) -> xr.Dataset:
        """Inspection view: supplier, bm_unit, llfc (str) and energised, registered (bool) per cell."""
        coords = {"mpan": self.mpans, "time": self.times.to_numpy()}
        data = {c: (("mpan", "time"), self.field(c)) for c in ("supplier", "bm_unit", "llfc")}
        data["energised"] = (("mpan", "time"), self.energised)
        data["registered"] = (("mpan", "time"), self.registered)
        return xr.Dataset(data, coords=coords)


def _as_of_per_time(as_of, times: pd.DatetimeIndex) -> np.ndarray | None:
    if as_of is None:
        return None
    arr = np.asarray(pd.DatetimeIndex(np.atleast_1d(np.asarray(as_of, dtype="datetime64[ns]"))))
    if arr.size == 1:
        return np.full(times.size, arr[0])
    if arr.size != times.size:
        raise ValueError(f"in_force: as_of must be one instant or one per period ({times.size}), got {arr.size}")
    if np.isnat(arr).any() or (np.diff(arr) < np.timedelta64(0, "ns")).any():
        raise ValueError("in_force: as_of per period must be free of NaT and non-decreasing in time "
                         "(a later settlement day is never settled on older data)")
    return arr


def in_force(events: pd.DataFrame, mpans, times, as_of=None) -> RegistrationInForce:
    """Registration in force per MPAN and period, as known at ``as_of``.

    Parameters
    ----------
    events : DataFrame
        Columns :data:`EVENT_COLUMNS` (``change`` optional); events of other MPANs are ignored.
    mpans : array-like of str, shape (n_mpan,)
    times : array-like of datetime64, shape (n_time,)
        UTC period starts, increasing.
    as_of : Timestamp or array-like of Timestamp, optional
        One UTC instant, or one per period (non-decreasing: the as-of of each period's settlement
        day); only events with ``notified_at <= as_of`` count. None: every event (the truth).

    Returns
    -------
    RegistrationInForce
    """
    validate_events(events, where="in_force: events")
    mpans = np.asarray(mpans, dtype=str)
    times = pd.DatetimeIndex(np.asarray(times, dtype="datetime64[ns]"))
    from tomlib._registration_kernel import latest_event_grid
    from tomlib.mpan import positions

    m_idx = positions(mpans, events["mpan"])
    eff = events["effective_from"].to_numpy().astype("datetime64[ns]")
    notified = events["notified_at"].to_numpy().astype("datetime64[ns]")
    order = np.lexsort((notified, eff, m_idx))
    order = order[m_idx[order] >= 0]
    if order.size == len(events) and (order == np.arange(order.size)).all():
        # already sorted and all of these MPANs (the truth on a generated history): no copy of the rows
        ev = events.reset_index(drop=True)
    else:
        ev = events.iloc[order].reset_index(drop=True)
        m_idx, eff, notified = m_idx[order], eff[order], notified[order]

    place = np.searchsorted(times.to_numpy(), eff, side="left")
    a = _as_of_per_time(as_of, times)
    if a is not None:
        place = np.maximum(place, np.searchsorted(a, notified, side="left"))
    n_time = times.size
    ok = place < n_time
    # latest event per cell, carried forward along each MPAN's periods (one compiled pass)
    grid = latest_event_grid(m_idx[ok], place[ok], np.flatnonzero(ok), mpans.size, n_time)
    return RegistrationInForce(mpans=mpans, times=times, events=ev, event=grid, event_row=m_idx.astype(np.int64))
