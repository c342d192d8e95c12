"""The benchmark behind ``tom bench`` / ``make bench``: throughput and peak memory of every stage.

Each service module that wants a row exposes ``bench_inputs(mpan_days, days, seed) -> dict`` — the
keyword arguments of its main function, built from synthetic data so the benchmark does not depend on
the market generator — and is listed in :data:`STAGES`. A stage whose module is absent is reported as
skipped with the reason, never left out silently.

How numbers are taken
---------------------
- *Wall time*: best of ``repeats`` calls (the minimum is the least noisy estimate on a shared machine).
- *Peak memory*: one further call under :mod:`tracemalloc`, which also sees NumPy's buffers; it is the
  extra memory the call itself allocates above what was already live [bytes].
- *Throughput*: meter-periods (MPAN × settlement period cells the stage processed) per second.
- *Growth*: ``growth_per_10x`` of a row = its time over the time of the next smaller size, scaled to
  a tenfold size (``(t2 / t1) ** (1 / log10(n2 / n1))``): 10 is linear, above 10 worse than linear,
  below it fixed costs still weigh.

The same work four ways
-----------------------
:func:`compare` runs aggregation with GSP group correction on *the same data* four ways and
reports the times and their ratios (ratios hold on a noisy machine where absolute times do not):

- ``tomlib``: :func:`tomlib.services.aggregation.aggregate` then
  :func:`tomlib.services.volume_allocation.allocate`;
- ``duckdb``: one SQL query over the cells as a long table (registered zero-copy through Arrow,
  outside the timed region) joined to the registration events, with the same defaults, losses,
  CCCs and correction (:data:`_SQL`);
- ``pandas``: the same with ``groupby`` and ``merge`` over the long frame (:func:`_pandas`);
- ``plain sum``: one pass over the same energy array (``energy.sum(axis=0)``), the floor any
  formulation that reads every cell once has to pay.

The corrected volumes of DuckDB and pandas are checked against tomlib's (relative :data:`RTOL`)
before their times count, so the comparison is between methods that give the same answer. A
method above its size cap (:data:`METHOD_CAPS`) or not installed is reported as skipped with the
reason.
"""

from __future__ import annotations

import gc
import importlib
import itertools
import json
import math
import os
import platform
import time
import tracemalloc
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from tomlib._io import atomic_write_text


@dataclass(frozen=True)
class Stage:
    """One benchmarked function.

    Attributes
    ----------
    name : str
        Row label (the service's name).
    module : str
        Module holding ``bench_inputs`` and the function.
    function : str
        Function timed with the keyword arguments ``bench_inputs`` returns.
    max_mpan_days : int, optional
        Largest size worth timing; above it the row says skipped and why (a stage whose cost per
        meter-period is high would otherwise hold the whole benchmark for half an hour).
    cap_reason : str, optional
        Why the cap: what the stage would cost above it (measured at the sizes below it).
    """

    name: str
    module: str
    function: str
    max_mpan_days: int | None = None
    cap_reason: str = "cost grows linearly"


#: Why the in-memory stages built on a generated market stop at 10^6 MPAN-days (measured on the
#: project's shared 2-core machine: the generator takes ~15 s and 0.1 GB a call at 10^5 MPAN-days,
#: linear in size).
_GENERATED = ("its inputs are a generated market, ~25 min and ~10 GB a call at 10^7 MPAN-days; "
              "national sizes run block by block in the chunked engine (tom bench --scale)")

STAGES: tuple[Stage, ...] = (
    Stage("market generation", "tomlib.market", "generate", 1_000_000,
          "~25 min and ~10 GB a call at 10^7 MPAN-days; national sizes are generated block by block in the "
          "chunked engine (tom bench --scale)"),
    Stage("metering", "tomlib.services.metering", "build_metering", 1_000_000, _GENERATED),
    Stage("retrieval", "tomlib.services.retrieval", "retrieve", 1_000_000, _GENERATED),
    Stage("meter reading", "tomlib.services.meter_reading", "read_meters", 1_000_000, _GENERATED),
    Stage("processing (smart)", "tomlib.services.processing", "process", 1_000_000,
          "peak memory 0.77 GB at 10^5 MPAN-days and linear, ~75 GB at 10^7; the chunked engine runs it "
          "per block (tom bench --scale)"),
    Stage("advanced (ADS)", "tomlib.services.advanced", "process", 1_000_000,
          "peak memory 0.5 GB at 10^5 MPAN-days and linear, ~50 GB at 10^7; the chunked engine runs it "
          "per block (tom bench --scale)"),
    Stage("load shaping", "tomlib.services.load_shaping", "load_shapes"),
    Stage("aggregation", "tomlib.services.aggregation", "aggregate"),
    Stage("GSP group correction", "tomlib.services.volume_allocation", "allocate"),
    Stage("DIP IF-021 (write + validate)", "tomlib.dip", "write_if021", 100_000,
          "a JSON message per MPAN and day, each validated against the DIP schema in Python; cost grows "
          "linearly"),
)


@dataclass
class StageResult:
    """One row of the benchmark table (times in seconds, memory in bytes)."""

    stage: str
    mpan_days: int
    meter_periods: int | None = None
    seconds: float | None = None
    meter_periods_per_second: float | None = None
    peak_memory_bytes: int | None = None
    skipped: str | None = None
    growth_per_10x: float | None = None


def _mpan_time_size(value) -> int | None:
    """Cells of an MPAN × time array held by ``value`` (a Market, Dataset or DataArray), else None."""
    meters = getattr(value, "meters", None)  # a Market
    if isinstance(meters, xr.Dataset) and "energy" in meters:
        return int(meters["energy"].size)
    if isinstance(value, xr.DataArray) and "mpan" in value.dims and value.ndim >= 2:
        return int(value.size)
    if isinstance(value, xr.Dataset):
        for var in value.data_vars.values():
            if "mpan" in var.dims and var.ndim >= 2:
                return int(var.size)
    return None


def _meter_periods(kwargs: dict) -> int:
    """Meter-periods in a stage's inputs: the size of the first MPAN × time array found [-].

    Looks at the keyword arguments and, one level down, at the fields of container objects (such as
    the smart data a processing run receives); stages downstream of aggregation have no MPAN axis and
    state the meter-periods they stand for in ``attrs["meter_periods"]``.
    """
    values = list(kwargs.values())
    nested = [(name, v) for value in values
              if hasattr(value, "__dict__") and not isinstance(value, xr.Dataset | xr.DataArray)
              for name, v in vars(value).items()]
    for value in values + [v for _, v in nested]:
        size = _mpan_time_size(value)
        if size is not None:
            return size
    for name, value in nested:  # plain MPAN x period arrays, named by what they hold
        if name in {"hh", "energy"} and isinstance(value, np.ndarray) and value.ndim == 2:
            return int(value.size)
    for value in values:
        if isinstance(value, xr.Dataset | xr.DataArray) and "meter_periods" in value.attrs:
            return int(value.attrs["meter_periods"])
    raise ValueError("bench_inputs returned no MPAN x time array to count meter-periods from")


def _market_bench_inputs(mpan_days: int, days: int, seed: int) -> dict:
    """A demo-like scenario of ``mpan_days // days`` MPANs over ``days`` days from 2026-03-23."""
    import pandas as pd

    from tomlib import scenario as scenario_mod

    demo = scenario_mod.load_scenario(scenario_mod.default_scenario_path("demo"))
    n_mpans = max(mpan_days // days, 2)
    first = pd.Timestamp("2026-03-23")
    overrides = {
        "mpans": {"_C": n_mpans - n_mpans // 3, "_P": n_mpans // 3},
        "first_date": first.date().isoformat(),
        "last_date": (first + pd.Timedelta(days=days - 1)).date().isoformat(),
        "seed": seed,
    }
    return {"scenario": demo.with_overrides(overrides)}


def _inputs(stage: Stage, module, mpan_days: int, days: int, seed: int) -> dict:
    if stage.module == "tomlib.market":
        return _market_bench_inputs(mpan_days, days, seed)
    return module.bench_inputs(mpan_days=mpan_days, days=days, seed=seed)


def measure(stage: Stage, mpan_days: int, *, days: int = 7, seed: int = 0, repeats: int = 2) -> StageResult:
    """Time one stage at one size.

    Parameters
    ----------
    stage : Stage
    mpan_days : int
        MPANs × settlement days of the synthetic input [-].
    days : int
        Settlement days (a week from 2026-03-23 holds the 46-period day 2026-03-29).
    seed : int
    repeats : int
        Timed calls; the fastest counts.

    Returns
    -------
    StageResult
    """
    if stage.max_mpan_days is not None and mpan_days > stage.max_mpan_days:
        return StageResult(stage.name, mpan_days,
                           skipped=f"timed up to {stage.max_mpan_days:,} MPAN-days only: {stage.cap_reason}")
    try:
        module = importlib.import_module(stage.module)
    except ModuleNotFoundError as err:
        return StageResult(stage.name, mpan_days, skipped=f"{stage.module} is not installed ({err.name})")
    if stage.module != "tomlib.market" and not hasattr(module, "bench_inputs"):
        return StageResult(stage.name, mpan_days, skipped=f"{stage.module} has no bench_inputs()")
    function = getattr(module, stage.function)
    kwargs = _inputs(stage, module, mpan_days, days, seed)
    periods = _meter_periods(kwargs) if stage.module != "tomlib.market" else None

    best = float("inf")
    result = None
    for _ in range(max(repeats, 1)):
        gc.collect()
        started = time.perf_counter()
        result = function(**kwargs)
        best = min(best, time.perf_counter() - started)
    if periods is None:
        periods = int(result.meters["energy"].size)
    del result
    gc.collect()
    tracemalloc.start()
    try:
        function(**kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return StageResult(stage.name, mpan_days, periods, best, periods / best, int(peak))


# ------------------------------------------------------------------ the same work three ways

#: Methods of the comparison section, in table order.
METHODS = ("tomlib", "duckdb", "pandas", "plain sum")

#: Largest size each method is run at in the comparison; above it the row says skipped and why.
METHOD_CAPS: dict[str, tuple[int, str]] = {
    "pandas": (1_000_000, ("the long frame and groupby's codes of every key per row need ~10 GB at 10^7 "
                           "MPAN-days, more than a shared machine has; its time grows linearly (see the "
                           "smaller sizes)")),
}

#: Results of the three methods must agree to this relative tolerance (summation order) [-].
RTOL = 1e-9

_KEYS = ["gsp_group", "supplier", "bm_unit", "measurement_quantity", "market_segment", "domestic", "llfc"]
_CATEGORY = ["gsp_group", "measurement_quantity", "market_segment", "domestic"]
_AGGREGATE = ["gsp_group", "supplier", "bm_unit", "ccc"]


@dataclass
class LongData:
    """The comparison's data as tables, built once and outside the timed region.

    Attributes
    ----------
    fact : dict of ndarray
        One row per MPAN x period cell: ``event`` (int32, registration event in force, -1 none),
        ``t`` (int16, period position), ``quality`` (uint8 DI-083 code), ``energy`` [kWh]; views of
        the meter cube's arrays except ``t``.
    events : DataFrame
        Per event id (index, with a row -1 for "not registered"): the MPAN's standing data
        (:data:`_CATEGORY`, ``annual_consumption`` [kWh/year]) and the registration (``supplier``,
        ``bm_unit``, ``llfc``, ``energised``).
    mpans : DataFrame
        Standing data of every MPAN of the cube (the mean annual consumption per category is over these).
    llf : DataFrame
        ``llfc``, ``t``, ``llf`` [-].
    cccs : DataFrame
        ``measurement_quantity``, ``market_segment``, ``data_quality``, ``component``, ``ccc``, ``weight``.
    take : DataFrame
        ``gsp_group``, ``t``, ``take`` [kWh] (net GSP group take).
    actual_codes : list of int
        DI-083 codes settled as actual.
    """

    fact: dict
    events: pd.DataFrame
    mpans: pd.DataFrame
    llf: pd.DataFrame
    cccs: pd.DataFrame
    take: pd.DataFrame
    actual_codes: list


def comparison_inputs(mpan_days: int, days: int = 7, seed: int = 0,
                      first_date: str = "2026-03-23") -> tuple[dict, dict, LongData]:
    """Inputs of the comparison: tomlib's keyword arguments and the same data as tables.

    Parameters
    ----------
    mpan_days, days, seed : int
        As :func:`tomlib.services.aggregation.bench_inputs`.
    first_date : str
        First settlement day (ISO date).

    Returns
    -------
    aggregate_kwargs : dict
        Of :func:`tomlib.services.aggregation.aggregate` (:func:`~tomlib.services.aggregation.bench_inputs`).
    allocate_kwargs : dict
        Of :func:`tomlib.services.volume_allocation.allocate` but ``aggregates``: the ``gsp_group_take``.
    long : LongData
    """
    from tomlib import reference
    from tomlib.services import aggregation, volume_allocation

    kwargs = aggregation.bench_inputs(mpan_days=mpan_days, days=days, seed=seed, first_date=first_date)
    take = volume_allocation.bench_inputs(aggregates=aggregation.aggregate(**kwargs), seed=seed)["gsp_group_take"]
    meters, force, llf = kwargs["meters"], kwargs["registration"], kwargs["line_loss_factors"]
    mpans = np.asarray(meters["mpan"].values, dtype=str)
    n_mpan, n_t = meters.sizes["mpan"], meters.sizes["time"]
    event = aggregation._events_of(force, mpans, n_t)
    standing = pd.DataFrame({c: np.asarray(meters[c].values) for c in _CATEGORY + ["annual_consumption"]})
    ev = force.events
    row = pd.Index(mpans).get_indexer(ev["mpan"].to_numpy(dtype=str))
    events = pd.concat([standing.iloc[np.maximum(row, 0)].reset_index(drop=True),
                        ev[["supplier", "bm_unit", "llfc", "energised"]].reset_index(drop=True)], axis=1)
    events.loc[row < 0, "energised"] = False
    none = events.iloc[:1].copy()
    none.loc[:, "energised"] = False
    events = pd.concat([events, none.set_axis([-1])])
    events.index.name = "event"
    for c in _KEYS:  # small dictionaries, as a database would keep them
        events[c] = events[c].astype("category") if c != "domestic" else events[c].astype(bool)
    fact = {"event": event.reshape(-1), "t": np.tile(np.arange(n_t, dtype=np.int16), n_mpan),
            "quality": np.asarray(meters["quality"].values).reshape(-1),
            "energy": np.asarray(meters["energy"].values, dtype=float).reshape(-1)}
    times = np.asarray(meters["time"].values)
    llf_long = pd.DataFrame({"llfc": np.repeat(np.asarray(llf["llfc"].values, dtype=str), n_t),
                             "t": np.tile(np.arange(n_t, dtype=np.int16), llf.sizes["llfc"]),
                             "llf": np.asarray(llf.sel(time=times).transpose("llfc", "time").values).ravel()})
    cccs = reference.consumption_component_classes().reset_index()
    weights = reference.gsp_correction_scaling_weights()
    cccs["weight"] = pd.Series(weights).reindex(cccs["ccc"]).to_numpy(dtype=float)
    groups = np.asarray(take["gsp_group"].values, dtype=str)
    take_long = pd.DataFrame({"gsp_group": np.repeat(groups, n_t), "t": np.tile(np.arange(n_t, dtype=np.int16),
                                                                                    groups.size),
                              "take": np.asarray(take.transpose("gsp_group", "time").values).ravel()})
    actual = np.flatnonzero(aggregation.quality_classes(aggregation.ACTUAL_QUALITY) == 1).tolist()
    long = LongData(fact, events, standing, llf_long, cccs[["measurement_quantity", "market_segment",
                                                             "data_quality", "component", "ccc", "weight"]],
                    take_long, actual)
    return kwargs, {"gsp_group_take": take}, long


def _tomlib(aggregate_kwargs: dict, allocate_kwargs: dict) -> xr.Dataset:
    from tomlib.services import aggregation, volume_allocation

    aggregates = aggregation.aggregate(**aggregate_kwargs)
    return volume_allocation.allocate(aggregates, **allocate_kwargs)


def _tomlib_long(allocation: xr.Dataset) -> pd.Series:
    """Corrected volume per (GSP group, supplier, BM unit, CCC, period position) [kWh]."""
    n_t = allocation.sizes["time"]
    n_a = allocation.sizes["aggregate"]
    index = pd.MultiIndex.from_arrays(
        [np.repeat(np.asarray(allocation[c].values, dtype=str), n_t) for c in _AGGREGATE]
        + [np.tile(np.arange(n_t), n_a)], names=_AGGREGATE + ["t"])
    return pd.Series(np.asarray(allocation["corrected"].transpose("aggregate", "time").values).ravel(), index=index)


_SQL = """
WITH keyed AS (    -- per event a small integer key: (GSP group, supplier, BM unit, MQ, segment, domestic, LLFC)
    SELECT event, annual_consumption,
           dense_rank() OVER (ORDER BY gsp_group, supplier, bm_unit, measurement_quantity, market_segment, domestic,
                                       llfc) AS key
    FROM events WHERE energised
), keys AS (
    SELECT DISTINCT k.key, e.gsp_group, e.supplier, e.bm_unit, e.measurement_quantity, e.market_segment, e.domestic,
           e.llfc
    FROM keyed k JOIN events e USING (event)
), sums AS (       -- the pass over every cell with a value: grouped by three small integers
    SELECT k.key, CASE WHEN f.quality IN ({actual}) THEN 0 ELSE 1 END AS cls, f.t,
           sum(f.energy) AS energy, count(*) AS n
    FROM fact f JOIN keyed k ON f.event = k.event
    WHERE f.quality <> {missing} GROUP BY ALL
), shape AS (      -- load shape: mean actual energy per MPAN of the category in the period
    SELECT gsp_group, measurement_quantity, market_segment, domestic, t, sum(energy) / sum(n) AS ls
    FROM sums JOIN keys USING (key) WHERE cls = 0 GROUP BY ALL
), mean_ac AS (
    SELECT gsp_group, measurement_quantity, market_segment, domestic, avg(annual_consumption) AS mean_ac
    FROM mpans GROUP BY ALL
), defaults AS (   -- missing cells: load shape x AC / mean AC, or a flat AC / 8766 h x 0.5 h
    SELECT k.key, 1 AS cls, f.t,
           sum(CASE WHEN s.ls IS NULL THEN k.annual_consumption * 0.5 / 8766.0
                    WHEN m.mean_ac > 0 THEN s.ls * (k.annual_consumption / m.mean_ac) ELSE s.ls END) AS energy
    FROM fact f
    JOIN keyed k ON f.event = k.event
    JOIN keys c ON c.key = k.key
    JOIN mean_ac m USING (gsp_group, measurement_quantity, market_segment, domestic)
    LEFT JOIN shape s USING (gsp_group, measurement_quantity, market_segment, domestic, t)
    WHERE f.quality = {missing} GROUP BY ALL
), filled AS (
    SELECT c.*, f.cls, f.t, f.energy
    FROM (SELECT key, cls, t, energy FROM sums UNION ALL SELECT * FROM defaults) f JOIN keys c USING (key)
), volumes AS (
    SELECT f.gsp_group, f.supplier, f.bm_unit, f.measurement_quantity, f.market_segment, f.t,
           CASE WHEN f.cls = 0 THEN 'actual' ELSE 'estimated' END AS data_quality,
           sum(f.energy) AS consumption, sum(f.energy * (l.llf - 1)) AS losses
    FROM filled f JOIN llf l ON l.llfc = f.llfc AND l.t = f.t GROUP BY ALL
), aggregates AS (
    SELECT v.gsp_group, v.supplier, v.bm_unit, v.measurement_quantity, v.t, c.ccc, c.weight,
           CASE WHEN c.component = 'consumption' THEN v.consumption ELSE v.losses END AS u
    FROM volumes v JOIN cccs c USING (measurement_quantity, market_segment, data_quality)
), totals AS (
    SELECT gsp_group, measurement_quantity, t, sum(u) AS total, sum(weight * u) AS wu FROM aggregates GROUP BY ALL
), takes AS (      -- take split "export_metered": export take = metered export, import take = net + export
    SELECT t.gsp_group, t.t, i.total AS total_ai, i.wu AS wu_ai,
           t.take + coalesce(x.total, 0) AS take_ai
    FROM gsp_take t
    LEFT JOIN totals i ON i.gsp_group = t.gsp_group AND i.t = t.t AND i.measurement_quantity = 'AI'
    LEFT JOIN totals x ON x.gsp_group = t.gsp_group AND x.t = t.t AND x.measurement_quantity = 'AE'
)
SELECT a.gsp_group, a.supplier, a.bm_unit, a.ccc, a.t,
       a.u * (1 + (CASE WHEN a.measurement_quantity = 'AI' AND abs(k.wu_ai) > {min_correctable}
                        THEN (k.take_ai - k.total_ai) / k.wu_ai ELSE 0 END) * a.weight) AS corrected
FROM aggregates a JOIN takes k USING (gsp_group, t)
"""


def _duckdb_connect(long: LongData):
    import duckdb
    import pyarrow as pa

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.register("fact", pa.table(long.fact))  # zero-copy: Arrow wraps the NumPy buffers
    events = long.events.reset_index()
    con.register("events", events)
    con.register("mpans", long.mpans)
    con.register("llf", long.llf)
    con.register("cccs", long.cccs)
    con.register("gsp_take", long.take)
    return con


def _duckdb(con, long: LongData) -> pd.DataFrame:
    from tomlib import cube
    from tomlib.services import volume_allocation

    sql = _SQL.format(actual=", ".join(map(str, long.actual_codes)), missing=cube.MISSING,
                      min_correctable=repr(volume_allocation.MIN_CORRECTABLE_KWH))
    return con.execute(sql).df()


def _pandas(long: LongData) -> pd.DataFrame:
    """The same aggregation, defaults, losses and GSP group correction with pandas groupby."""
    from tomlib import cube
    from tomlib.services import volume_allocation

    fact = long.fact
    events = long.events[long.events["energised"]]
    keys = events.groupby(_KEYS, observed=True)
    key_of_event = pd.Series(-1, index=long.events.index, dtype=np.int32)  # -1: not settled
    key_of_event[events.index] = keys.ngroup().astype(np.int32)
    key_table = keys.size().index.to_frame(index=False)
    codes = np.arange(256)
    cls_of_code = pd.Series(np.where(np.isin(codes, long.actual_codes), 0, np.where(codes == cube.MISSING, 2, 1)),
                            dtype=np.int8)
    cells = pd.DataFrame({"key": pd.Series(fact["event"]).map(key_of_event),
                          "cls": pd.Series(fact["quality"]).map(cls_of_code),
                          "t": fact["t"], "energy": fact["energy"], "event": fact["event"]})
    cells = cells[cells["key"] >= 0]
    sums = cells[cells["cls"] < 2].groupby(["key", "cls", "t"])["energy"].agg(["sum", "size"]).reset_index()
    sums = sums.merge(key_table, left_on="key", right_index=True)
    actual = sums[sums["cls"] == 0].groupby(_CATEGORY + ["t"], observed=True)[["sum", "size"]].sum()
    shape = (actual["sum"] / actual["size"]).rename("ls").reset_index()
    mean_ac = long.mpans.groupby(_CATEGORY)["annual_consumption"].mean().rename("mean_ac").reset_index()
    miss = cells[cells["cls"] == 2][["key", "t", "event"]]
    miss = miss.assign(ac=long.events["annual_consumption"].reindex(miss["event"]).to_numpy()).merge(
        key_table, left_on="key", right_index=True)
    miss = miss.merge(mean_ac, on=_CATEGORY).merge(shape, on=_CATEGORY + ["t"], how="left")
    scale = np.where(miss["mean_ac"] > 0, miss["ac"] / miss["mean_ac"], 1.0)
    miss["sum"] = np.where(miss["ls"].notna(), miss["ls"] * scale, miss["ac"] * 0.5 / 8766.0)
    defaults = miss.groupby(_KEYS + ["t"], observed=True)["sum"].sum().reset_index().assign(cls=1)
    filled = pd.concat([sums[_KEYS + ["t", "cls", "sum"]], defaults[_KEYS + ["t", "cls", "sum"]]])
    filled = filled.merge(long.llf, on=["llfc", "t"])
    filled["losses"] = filled["sum"] * (filled["llf"] - 1.0)
    filled["data_quality"] = np.where(filled["cls"] == 0, "actual", "estimated")
    volumes = filled.groupby(["gsp_group", "supplier", "bm_unit", "measurement_quantity", "market_segment",
                              "data_quality", "t"], observed=True)[["sum", "losses"]].sum().reset_index()
    agg = volumes.merge(long.cccs, on=["measurement_quantity", "market_segment", "data_quality"])
    agg["u"] = np.where(agg["component"] == "consumption", agg["sum"], agg["losses"])
    agg["wu"] = agg["weight"] * agg["u"]
    totals = agg.groupby(["gsp_group", "measurement_quantity", "t"], observed=True)[["u", "wu"]].sum()
    ai = totals.xs("AI", level="measurement_quantity").add_suffix("_ai")
    ae = totals.xs("AE", level="measurement_quantity")["u"].rename("u_ae")
    takes = long.take.set_index(["gsp_group", "t"]).join(ai).join(ae).fillna({"u_ae": 0.0})
    takes["take_ai"] = takes["take"] + takes["u_ae"]
    ok = takes["wu_ai"].abs() > volume_allocation.MIN_CORRECTABLE_KWH
    takes["f"] = np.where(ok, (takes["take_ai"] - takes["u_ai"]) / takes["wu_ai"].where(ok, 1.0), 0.0)
    agg = agg.merge(takes[["f"]].reset_index(), on=["gsp_group", "t"])
    f = np.where(agg["measurement_quantity"] == "AI", agg["f"], 0.0)
    agg["corrected"] = agg["u"] * (1.0 + f * agg["weight"])
    return agg[_AGGREGATE + ["t", "corrected"]]


def _agreement(reference: pd.Series, other: pd.DataFrame, method: str) -> float:
    """Largest |difference| of ``other``'s corrected volumes from tomlib's [kWh]; raises beyond :data:`RTOL`."""
    got = other.astype({c: str for c in _AGGREGATE}).assign(t=lambda d: d["t"].astype(np.int64)) \
        .groupby(_AGGREGATE + ["t"])["corrected"].sum()
    extra = got.index.difference(reference.index)
    if len(extra) and np.abs(got.loc[extra]).max() > 0:
        raise AssertionError(f"comparison: {method} gives volumes tomlib has no aggregate for, e.g. {extra[0]}")
    got = got.reindex(reference.index, fill_value=0.0)
    diff = np.abs(got.to_numpy() - reference.to_numpy())
    scale = max(float(np.abs(reference.to_numpy()).max(initial=0.0)), 1.0)
    if not (diff <= RTOL * scale).all():
        k = int(np.argmax(diff))
        raise AssertionError(f"comparison: {method} differs from tomlib at {reference.index[k]}: "
                             f"{got.iloc[k]!r} vs {reference.iloc[k]!r} kWh")
    return float(diff.max(initial=0.0))


@dataclass
class ComparisonResult:
    """One size of the comparison (times in seconds, best of the repeats; ratios [-]).

    ``duckdb_over_tomlib`` and ``pandas_over_tomlib`` are how many times longer the other method
    took than tomlib; ``tomlib_over_plain_sum`` is tomlib's time in plain passes over the energy
    array. The ``*_cpu*`` fields are the same on the CPU time of the process (all its threads:
    DuckDB's workers count), which other programs on a shared machine disturb far less than the
    wall time. ``max_abs_diff_kwh`` holds each method's largest difference from tomlib's corrected
    volumes (checked within :data:`RTOL`); ``skipped`` the reason per method not run.
    """

    mpan_days: int
    meter_periods: int | None = None
    tomlib_seconds: float | None = None
    duckdb_seconds: float | None = None
    pandas_seconds: float | None = None
    plain_sum_seconds: float | None = None
    duckdb_over_tomlib: float | None = None
    pandas_over_tomlib: float | None = None
    tomlib_over_plain_sum: float | None = None
    tomlib_cpu_seconds: float | None = None
    duckdb_cpu_seconds: float | None = None
    pandas_cpu_seconds: float | None = None
    plain_sum_cpu_seconds: float | None = None
    duckdb_over_tomlib_cpu: float | None = None
    pandas_over_tomlib_cpu: float | None = None
    tomlib_over_plain_sum_cpu: float | None = None
    duckdb_threads: int | None = None
    aggregates: int | None = None
    max_abs_diff_kwh: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)
    growth_per_10x: dict = field(default_factory=dict)


def _seconds_key(method: str) -> str:
    return method.replace(" ", "_") + "_seconds"


def compare(mpan_days: int, *, days: int = 7, seed: int = 0, repeats: int = 2, methods=METHODS,
            first_date: str = "2026-03-23") -> ComparisonResult:
    """Aggregation with GSP group correction on the same data by tomlib, DuckDB, pandas, and a plain sum.

    Parameters
    ----------
    mpan_days : int
        Size of :func:`tomlib.services.aggregation.bench_inputs` [MPAN-days].
    days, seed : int
    repeats : int
        Timed calls per method; the fastest counts.
    first_date : str
        First settlement day (ISO date; the default week holds the 46-period day 2026-03-29).
    methods : sequence of str
        Some of :data:`METHODS` (tomlib always runs: it is the reference).

    Returns
    -------
    ComparisonResult

    Raises
    ------
    AssertionError
        If DuckDB's or pandas' corrected volumes differ from tomlib's beyond :data:`RTOL`.
    """
    aggregate_kwargs, allocate_kwargs, long = comparison_inputs(mpan_days, days, seed, first_date)
    energy = aggregate_kwargs["meters"]["energy"].values
    result = ComparisonResult(mpan_days, meter_periods=int(energy.size))
    (result.tomlib_seconds, result.tomlib_cpu_seconds), allocation = _best(
        lambda: _tomlib(aggregate_kwargs, allocate_kwargs), repeats)
    reference = _tomlib_long(allocation)
    result.aggregates = int(allocation.sizes["aggregate"])
    del allocation
    for method in methods:
        if method == "tomlib":
            continue
        cap = METHOD_CAPS.get(method)
        if cap is not None and mpan_days > cap[0]:
            result.skipped[method] = f"run up to {cap[0]:,} MPAN-days only: {cap[1]}"
            continue
        if method == "plain sum":
            (result.plain_sum_seconds, result.plain_sum_cpu_seconds), _ = _best(lambda: energy.sum(axis=0),
                                                                                max(repeats, 3))
        elif method == "duckdb":
            try:
                con = _duckdb_connect(long)
            except ModuleNotFoundError as err:
                result.skipped[method] = f"{err.name} is not installed"
                continue
            result.duckdb_threads = int(con.execute("SELECT current_setting('threads')").fetchone()[0])
            (result.duckdb_seconds, result.duckdb_cpu_seconds), got = _best(lambda con=con: _duckdb(con, long),
                                                                             repeats)
            result.max_abs_diff_kwh[method] = _agreement(reference, got, method)
            con.close()
        elif method == "pandas":
            (result.pandas_seconds, result.pandas_cpu_seconds), got = _best(lambda: _pandas(long), repeats)
            result.max_abs_diff_kwh[method] = _agreement(reference, got, method)
        else:
            raise ValueError(f"compare: unknown method {method!r}; expected some of {METHODS}")
        got = None
        gc.collect()
    for suffix in ("", "_cpu"):
        t = getattr(result, f"tomlib{suffix}_seconds")
        duck, pandas, plain = (getattr(result, f"{m}{suffix}_seconds") for m in ("duckdb", "pandas", "plain_sum"))
        setattr(result, f"duckdb_over_tomlib{suffix}", duck / t if duck else None)
        setattr(result, f"pandas_over_tomlib{suffix}", pandas / t if pandas else None)
        setattr(result, f"tomlib_over_plain_sum{suffix}", t / plain if plain else None)
    return result


def _best(function, repeats: int):
    """((fastest wall time, fastest CPU time of the process) of ``repeats`` calls [s], the last call's result)."""
    wall, cpu, out = float("inf"), float("inf"), None
    for _ in range(max(repeats, 1)):
        out = None
        gc.collect()
        started, started_cpu = time.perf_counter(), time.process_time()
        out = function()
        wall = min(wall, time.perf_counter() - started)
        cpu = min(cpu, time.process_time() - started_cpu)
    return (wall, cpu), out


def format_comparison(comparisons: list[ComparisonResult]) -> str:
    """The comparison rows as a fixed-width table with the ratios, and what was skipped."""
    title = ("Aggregation + GSP group correction, the same data four ways (wall seconds, best of the repeats; "
             "M = million meter-periods/s; ratios on wall and on CPU time)")
    header = (f"{'MPAN-days':>12}{'meter-periods':>15}{'tomlib':>16}{'DuckDB':>16}{'pandas':>16}{'plain sum':>16}"
              f"{'DuckDB/tomlib':>16}{'pandas/tomlib':>16}{'tomlib/sum':>16}")
    sub = f"{'':>91}{'wall    cpu':>16}{'wall    cpu':>16}{'wall    cpu':>16}"
    lines = [title, header, sub, "-" * len(header)]

    def cell(seconds, n):
        return f"{seconds:8.3f} {n / seconds / 1e6:5.0f}M" if seconds else f"{'-':>15}"

    def ratio(wall, cpu):
        return f"{wall:>9.1f}{cpu:>7.1f}" if wall and cpu else f"{'-':>16}"

    for c in comparisons:
        n = c.meter_periods
        lines.append(f"{c.mpan_days:>12,}{n:>15,} {cell(c.tomlib_seconds, n)} {cell(c.duckdb_seconds, n)} "
                     f"{cell(c.pandas_seconds, n)} {cell(c.plain_sum_seconds, n)}"
                     f"{ratio(c.duckdb_over_tomlib, c.duckdb_over_tomlib_cpu)}"
                     f"{ratio(c.pandas_over_tomlib, c.pandas_over_tomlib_cpu)}"
                     f"{ratio(c.tomlib_over_plain_sum, c.tomlib_over_plain_sum_cpu)}")
    for c in comparisons:
        for method, why in c.skipped.items():
            lines.append(f"  {method} at {c.mpan_days:,} MPAN-days skipped: {why}")
    for c in comparisons:
        if c.growth_per_10x:
            grown = ", ".join(f"{m} {g:.1f}" for m, g in c.growth_per_10x.items())
            lines.append(f"  x t/10x n up to {c.mpan_days:,} MPAN-days: {grown}")
    agree = sorted({f"{m} {max(c.max_abs_diff_kwh.get(m, 0.0) for c in comparisons):.1e}"
                    for c in comparisons for m in c.max_abs_diff_kwh})
    threads = {c.duckdb_threads for c in comparisons if c.duckdb_threads}
    lines.append(f"  every method's corrected volumes equal tomlib's (largest |difference| [kWh]: "
                 f"{', '.join(agree) or '-'}); DuckDB threads: {', '.join(map(str, threads)) or '-'}; "
                 f"tomlib, pandas and the sum use one core")
    return "\n".join(lines)


#: Default sizes of ``tom bench`` [MPAN-days].
SIZES = (100_000, 1_000_000, 10_000_000)


class BenchRun(list):
    """The stage rows of one run (a list of :class:`StageResult`, in run order) and its comparison rows
    (``comparisons``: a list of :class:`ComparisonResult`)."""

    def __init__(self, stages, comparisons=()):
        super().__init__(stages)
        self.comparisons = list(comparisons)


def growth(seconds: dict[int, float]) -> dict[int, float]:
    """Time ratio per tenfold size between consecutive sizes: ``{larger size: (t2 / t1) ** (1 / log10(n2 / n1))}``.

    Parameters
    ----------
    seconds : dict
        Time [s] by size [MPAN-days]; sizes without a time are left out.

    Returns
    -------
    dict
        10 where the cost grows linearly.
    """
    sizes = sorted(n for n, t in seconds.items() if t)
    return {n2: (seconds[n2] / seconds[n1]) ** (1.0 / math.log10(n2 / n1)) for n1, n2 in itertools.pairwise(sizes)}


def run(sizes=SIZES, out: str | Path = "reports/bench/bench.json", stages=STAGES,
        days: int = 7, repeats: int = 2, compare_methods=METHODS) -> BenchRun:
    """Run every stage at every size, then the comparison at every size; write the results as JSON
    (atomically) and the readable table next to it (``.txt``).

    Parameters
    ----------
    sizes : sequence of int
        MPAN-days per run [-].
    out : path
        JSON file written (keys ``machine``, ``results``, ``comparison``; other keys already in the
        file, such as the chunked engine's, are kept).
    stages : sequence of Stage
    days : int
    repeats : int
    compare_methods : sequence of str
        Methods of :func:`compare` (empty: no comparison).

    Returns
    -------
    BenchRun
    """
    results = [measure(stage, int(size), days=days, repeats=repeats) for size in sizes for stage in stages]
    for stage in stages:
        rows = {r.mpan_days: r for r in results if r.stage == stage.name}
        for n, g in growth({n: r.seconds for n, r in rows.items()}).items():
            rows[n].growth_per_10x = g
    comparisons = [compare(int(size), days=days, repeats=repeats, methods=compare_methods) for size in sizes] \
        if compare_methods else []
    for method in METHODS:
        key = _seconds_key(method)
        for n, g in growth({c.mpan_days: getattr(c, key) for c in comparisons}).items():
            next(c for c in comparisons if c.mpan_days == n).growth_per_10x[method] = g
    out = Path(out)
    update_json(out, {"machine": machine_facts(), "results": [asdict(r) for r in results],
                      "comparison": [asdict(c) for c in comparisons]})
    report = BenchRun(results, comparisons)
    atomic_write_text(out.with_suffix(".txt"), format_table(report) + "\n")
    return report


def machine_facts() -> dict:
    """What the numbers were measured on: Python, processor, cores, NumPy and the load at the time."""
    return {"python": platform.python_version(), "processor": platform.machine(), "cpus": os.cpu_count(),
            "numpy": np.__version__, "load_average": list(os.getloadavg())}


def update_json(out: str | Path, updates: dict, *, keep_machine: bool = False) -> Path:
    """Set top-level keys of the benchmark JSON ``out`` atomically, keeping the other keys (the in-memory
    stages and the chunked engine write their parts of one file).

    ``keep_machine`` keeps a ``machine`` entry already in the file rather than replacing it.
    """
    out = Path(out)
    payload = json.loads(out.read_text()) if out.is_file() else {}
    if keep_machine and "machine" in payload:
        updates = {k: v for k, v in updates.items() if k != "machine"}
    payload.update(updates)
    atomic_write_text(out, json.dumps(payload, indent=2, default=str))
    return out


def format_table(results: list[StageResult], comparisons=None) -> str:
    """A fixed-width text table of benchmark results, and of the comparison rows if there are any
    (``comparisons``, default those of a :class:`BenchRun`)."""
    header = (f"{'stage':<30}{'MPAN-days':>12}{'meter-periods':>15}{'seconds':>10}{'Mperiods/s':>12}"
              f"{'peak MB':>10}{'x t/10x n':>11}")
    lines = [header, "-" * len(header)]
    for r in results:
        if r.skipped:
            lines.append(f"{r.stage[:29]:<30}{r.mpan_days:>12,}  skipped: {r.skipped}")
            continue
        grown = f"{r.growth_per_10x:>11.1f}" if r.growth_per_10x is not None else f"{'':>11}"
        lines.append(
            f"{r.stage[:29]:<30}{r.mpan_days:>12,}{r.meter_periods:>15,}{r.seconds:>10.3f}"
            f"{r.meter_periods_per_second / 1e6:>12.2f}{r.peak_memory_bytes / 2**20:>10.1f}{grown}"
        )
    lines.append("x t/10x n: time ratio per tenfold size against the next smaller size (10 = linear)")
    comparisons = getattr(results, "comparisons", []) if comparisons is None else comparisons
    if comparisons:
        lines += ["", format_comparison(comparisons)]
    return "\n".join(lines)
