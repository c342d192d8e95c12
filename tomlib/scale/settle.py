"""Chunked settlement: every block through the in-memory services, then one GSP group correction.

For each block (a task on the runner, :mod:`tomlib.scale.cluster`) and each settlement run:

1. the block's market -- read from a market store (:class:`~tomlib.scale.generate.MarketStore`) or,
   without one, regenerated from its seed (:func:`~tomlib.scale.generate.generate_block`);
2. registration history and true volumes (:func:`tomlib.settlement._prepare`), then the
   segment data services exactly as the in-memory run calls them
   (:func:`tomlib.settlement.settled_cube`: smart metering, retrieval, meter reading and processing;
   advanced; unmetered) and the block's aggregation (:func:`tomlib.services.aggregation.aggregate`);
3. the task returns only *partials*: the block's aggregates (GSP group x supplier x BM unit x CCC x
   period, a few hundred rows), its true volumes per BM unit, its take, the counts of its checks,
   the additive cell sums of :func:`tomlib.settlement.cell_sums`, and digests of its inputs and of
   its settled meter cube. Its MPAN-level data are dropped, so memory is bounded by the block size.

The driver sums the partials (aggregates by key; :func:`combine_aggregates`), applies GSP group
correction once per GSP group against the sum of the blocks' takes
(:func:`tomlib.services.volume_allocation.allocate`) and assembles the run dataset as
:func:`tomlib.settlement.settle_run` does, plus per-block variables (``block_energy``,
``block_input_digest``, ``block_settled_digest``) that let anyone check a block against the
in-memory path (:func:`check_sample`). Runs are saved atomically with :func:`tomlib.cube.save`,
with their reconciliation, where :func:`tomlib.settlement.settle_all` saves them.

Equality with the in-memory path
--------------------------------
A block *is* a market: :func:`tomlib.settlement.settle_run` on the block's market (regenerated alone
from its seed) gives the same settled MPAN data (same digest, bit for bit), the same aggregates and
the same checks as the block's partial in a chunked run. With one block per GSP group the chunked
run equals the in-memory run of that market in every variable; with a GSP group split over blocks,
its aggregates are the sums of the blocks' and the correction factor is that of the sums.
What is computed per block and therefore depends on the block split: the interim load shapes of
the smart data service and aggregation's default shapes are means over the block's MPANs of a
category (a block holds up to 500,000 import MPANs of one GSP group by default, about 160 times the
demo market) -- [INF] a national Load Shaping Service would pool all blocks of a GSP group, at the
price of a second pass over the data.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import xarray as xr

from tomlib import cube
from tomlib.scale.cluster import Runner, StageClock, open_runner
from tomlib.scale.generate import MarketStore, generate_block, is_market_store
from tomlib.scale.plan import DEFAULT_BLOCK_MPANS, BlockPlan, block_scenario, plan_blocks

__all__ = [
    "STAGES",
    "BlockPartial",
    "ChunkedSettlement",
    "RunPartial",
    "check_sample",
    "combine_aggregates",
    "settle_block",
    "settle_chunked",
    "settled_digest",
]

#: Stages timed in every block task, in order (the benchmark reports them).
STAGES = ("market generation", "market read", "registration + truth", "smart inputs (metering, retrieval, reading)",
          "processing (smart)", "advanced (ADS)", "unmetered (UMSDS)", "settled cube + registration in force",
          "aggregation", "checks + digests")

_SEGMENT_STAGE = {"S": "processing (smart)", "A": "advanced (ADS)", "U": "unmetered (UMSDS)"}


class _TimedService:
    """A segment data service whose calls count as the stage of its segment (provenance unchanged)."""

    def __init__(self, fn, segment: str, clock: StageClock):
        self.fn, self.stage, self.clock = fn, _SEGMENT_STAGE[segment], clock
        self.__module__, self.__name__ = fn.__module__, fn.__name__

    def __call__(self, *args, **kwargs):
        with self.clock.stage(self.stage):
            return self.fn(*args, **kwargs)


@dataclass
class RunPartial:
    """One block's share of one settlement run.

    Attributes
    ----------
    aggregates : Dataset
        :func:`tomlib.services.aggregation.aggregate` of the block's settled cube.
    checks : dict
        Counts of :func:`tomlib.settlement.settled_cube` (per segment service).
    sums : dict
        :func:`tomlib.settlement.cell_sums` of the block [kWh].
    used : dict
        Segment -> data service used.
    input_digest : str
        BLAKE2b of the block's inputs to the run (as :func:`tomlib.settlement.settle_run` records).
    settled_digest : str
        :func:`settled_digest` of the block's settled meter cube.
    """

    aggregates: xr.Dataset
    checks: dict
    sums: dict
    used: dict
    input_digest: str
    settled_digest: str


@dataclass
class BlockPartial:
    """What a block task returns: its partials per run, its truth and take, and its timings."""

    block: int
    name: str
    mpans: int
    cells: dict  # meter-periods by market segment, and "all"
    truth: xr.Dataset
    take: xr.DataArray
    runs: dict[str, RunPartial]
    seconds: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    peak_rss: dict[str, int] = field(default_factory=dict)
    span: tuple[float, float] = (0.0, 0.0)  # task start and end, seconds since the epoch
    worker: str = ""  # host:pid of the process that ran it


def settled_digest(settled: xr.Dataset) -> str:
    """BLAKE2b (256 bits) of a settled meter cube's MPANs, periods, energy, quality and estimation
    reason: a bit-exact fingerprint of the data services' output for those MPANs (BLAKE2b rather
    than SHA-256 because it hashes the 120 MB of a block twice as fast here)."""
    h = hashlib.blake2b(digest_size=32)
    h.update(np.asarray(settled["mpan"].values, dtype=str).tobytes())
    h.update(np.asarray(settled["time"].values, dtype="datetime64[ns]").tobytes())
    for name, dtype in (("energy", float), ("quality", np.uint8), ("estimation_reason", np.uint8)):
        h.update(np.ascontiguousarray(np.asarray(settled[name].values, dtype=dtype)).tobytes())
    return h.hexdigest()


def settle_block(index: int, scenario_dict: dict, plan_json: str, runs: list[str], store: str | None = None,
                 config=None) -> BlockPartial:
    """Task of one block: settle it for every run and reduce it to partials (module docstring).

    Parameters
    ----------
    index : int
        Block index in the plan.
    scenario_dict : dict
        ``Scenario.to_dict()`` of the whole scenario (a Scenario does not pickle).
    plan_json : str
        :meth:`BlockPlan.to_json`.
    runs : list of str
        Settlement runs.
    store : str, optional
        Market store to read the block from; None regenerates it from its seed.
    config : SettlementConfig, optional

    Returns
    -------
    BlockPartial
    """
    from tomlib import settlement
    from tomlib.scenario import Scenario
    from tomlib.services import aggregation
    from tomlib.services import processing as processing_mod

    started = time.time()
    clock = StageClock()
    scenario = Scenario.from_dict(scenario_dict)
    plan = BlockPlan.from_json(plan_json)
    block = plan.blocks[index]
    if store is None:
        with clock.stage("market generation"):
            market = generate_block(scenario, block)
    else:
        with clock.stage("market read"):
            market = MarketStore(store).block_market(index)
    bsc = block_scenario(scenario, block)
    config = config or settlement.SettlementConfig()
    found = dict(config.services) if config.services is not None else settlement.discover_services()
    config = dataclasses.replace(config, services={s: _TimedService(fn, s, clock) for s, fn in found.items()})
    with clock.stage("registration + truth"):
        ctx = settlement._prepare(market, scenario=bsc, config=config)
    if "S" in found and "S" not in config.segment_configs:
        # the smart data service's inputs are computed once per market; doing it here times them apart
        with clock.stage("smart inputs (metering, retrieval, reading)"):
            processing_mod.smart_inputs(market, ctx.segment_config("S"))
    partials = {}
    segments = np.asarray(market.meters["market_segment"].values, dtype=str)
    n_t = int(ctx.times.size)
    cells = {"all": int(segments.size * n_t), **{s: int((segments == s).sum() * n_t) for s in ("S", "A", "U")}}
    for run in runs:  # a handful of runs
        as_of = settlement.run_as_of(ctx, run)
        before = [sum(d.get(v, 0.0) for v in _SEGMENT_STAGE.values()) for d in (clock.seconds, clock.cpu_seconds)]
        with clock.stage("settled cube + registration in force"):
            settled, force, checks, used = settlement.settled_cube(ctx, run, as_of)
        # the stage is settled_cube's own work (stitching, registration in force): not its services'
        for d, b in zip((clock.seconds, clock.cpu_seconds), before):
            d["settled cube + registration in force"] -= sum(d.get(v, 0.0) for v in _SEGMENT_STAGE.values()) - b
        with clock.stage("aggregation"):
            agg = aggregation.aggregate(settled, force, market.line_loss_factors,
                                        actual_quality=ctx.config.actual_quality)
        with clock.stage("checks + digests"):
            sums = settlement.cell_sums(agg, settled, force, market)
            partials[run] = RunPartial(aggregates=agg, checks=checks, sums=sums, used=used,
                                       input_digest=settlement._input_digest(ctx, run, as_of),
                                       settled_digest=settled_digest(settled))
        del settled, force
    take = market.gsp_group_take.sel(time=ctx.times)
    return BlockPartial(block=index, name=block.name, mpans=int(segments.size), cells=cells, truth=ctx.truth,
                        take=take, runs=partials, seconds=dict(clock.seconds), cpu_seconds=dict(clock.cpu_seconds),
                        peak_rss=dict(clock.peak_rss), span=(started, time.time()),
                        worker=f"{socket.gethostname()}:{os.getpid()}")


# ------------------------------------------------------------------------------------------ combining


def _first_order_codes(keys: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Code of each row's key tuple, numbered in order of first appearance, and the first row of each."""
    codes, _ = pd.factorize(pd.MultiIndex.from_frame(keys.astype(str)), sort=False)
    first = np.full(codes.max(initial=-1) + 1, -1, dtype=np.int64)
    first[codes[::-1]] = np.arange(codes.size)[::-1]
    return codes, first


def combine_aggregates(parts: list[xr.Dataset]) -> xr.Dataset:
    """Sum blocks' aggregates by key (:data:`tomlib.services.aggregation.AGGREGATE_COORDS`).

    Rows keep the order of their first appearance (block order), so one block is returned as it is.

    Parameters
    ----------
    parts : list of Dataset
        :func:`tomlib.services.aggregation.aggregate` outputs over the same periods.

    Returns
    -------
    Dataset
        The same variables: ``energy``, ``default_energy`` [kWh], ``mpan_count``, ``default_count``
        summed per aggregate key; ``mpan_periods`` summed per GSP group.
    """
    from tomlib.services.aggregation import AGGREGATE_COORDS

    if not parts:
        raise ValueError("combine_aggregates: no partial aggregates")
    if len(parts) == 1:
        return parts[0]
    times = parts[0]["time"].values
    for p in parts[1:]:
        if not np.array_equal(p["time"].values, times):
            raise ValueError("combine_aggregates: the partial aggregates cover different periods")
    keys = pd.concat([pd.DataFrame({c: np.asarray(p[c].values, dtype=str) for c in AGGREGATE_COORDS})
                      for p in parts], ignore_index=True)
    codes, first = _first_order_codes(keys)
    n_out, n_t = first.size, times.size
    flat = (codes[:, None] * n_t + np.arange(n_t)[None, :]).ravel()
    template = parts[0]
    data = {}
    for name in ("energy", "default_energy", "mpan_count", "default_count"):
        values = np.concatenate([np.asarray(p[name].transpose("aggregate", "time").values, dtype=float)
                                 for p in parts])
        summed = np.bincount(flat, weights=values.ravel(), minlength=n_out * n_t).reshape(n_out, n_t)
        dtype = template[name].dtype
        data[name] = (("aggregate", "time"), summed.astype(dtype) if dtype.kind in "iu" else summed,
                      dict(template[name].attrs))
    coords = {c: ("aggregate", keys[c].to_numpy(dtype=str)[first]) for c in AGGREGATE_COORDS}
    periods = xr.concat([p["mpan_periods"] for p in parts], dim="gsp_group_id").groupby("gsp_group_id").sum()
    out = xr.Dataset(data, coords={"time": ("time", times, dict(cube.TIME_ATTRS)), **coords})
    out["mpan_periods"] = periods.astype(template["mpan_periods"].dtype).assign_attrs(template["mpan_periods"].attrs)
    return cube.add_settlement_coords(out)


def _combine_truth(truths: list[xr.Dataset]) -> xr.Dataset:
    """Sum blocks' true volumes (:func:`tomlib.settlement.true_volumes`) per BM unit and GSP group."""
    if len(truths) == 1:
        return truths[0]
    units = xr.concat([t[["true_import", "true_export", "true_net"]] for t in truths], dim="bm_unit_id")
    sup = pd.concat([t["bm_unit_supplier"].to_series() for t in truths])
    grp = pd.concat([t["bm_unit_gsp_group"].to_series() for t in truths])
    summed = units.drop_vars(["bm_unit_supplier", "bm_unit_gsp_group"]).groupby("bm_unit_id").sum()
    ids = summed["bm_unit_id"].values.astype(str)
    sup, grp = sup[~sup.index.duplicated()].reindex(ids), grp[~grp.index.duplicated()].reindex(ids)
    groups = xr.concat([t[["unaccounted_energy", "true_outside_volumes"]] for t in truths], dim="gsp_group_id")
    groups = groups.groupby("gsp_group_id").sum()
    out = summed.assign(groups)
    for name in out.data_vars:
        out[name].attrs = dict(truths[0][name].attrs)
    out = out.assign_coords(bm_unit_id=ids, bm_unit_supplier=("bm_unit_id", sup.to_numpy(dtype=str)),
                            bm_unit_gsp_group=("bm_unit_id", grp.to_numpy(dtype=str)),
                            gsp_group_id=groups["gsp_group_id"].values.astype(str))
    return out


def _sum_dicts(dicts: list[dict], not_additive=()) -> dict:
    out: dict = {}
    for d in dicts:
        for k, v in d.items():
            if k in not_additive:
                if k in out and out[k] != v:
                    raise ValueError(f"blocks disagree on {k!r}: {out[k]} and {v}")
                out[k] = v
            else:
                out[k] = out.get(k, 0.0) + float(v)
    return out


def _block_energy(agg: xr.Dataset, parts: list[xr.Dataset]) -> np.ndarray:
    """(block, aggregate, time) energy of each block's aggregates on the combined aggregate axis."""
    from tomlib.services.aggregation import AGGREGATE_COORDS

    index = pd.MultiIndex.from_arrays([np.asarray(agg[c].values, dtype=str) for c in AGGREGATE_COORDS])
    out = np.zeros((len(parts), agg.sizes["aggregate"], agg.sizes["time"]))
    for b, p in enumerate(parts):  # one small table per block
        rows = index.get_indexer(pd.MultiIndex.from_arrays([np.asarray(p[c].values, dtype=str)
                                                            for c in AGGREGATE_COORDS]))
        out[b, rows] = np.asarray(p["energy"].transpose("aggregate", "time").values)
    return out


def _assemble_run(run: str, blocks: list[BlockPartial], plan: BlockPlan, scenario, config, where: str) -> xr.Dataset:
    from tomlib import settlement
    from tomlib.services import volume_allocation

    parts = [b.runs[run] for b in blocks]
    agg = combine_aggregates([p.aggregates for p in parts])
    truth = _combine_truth([b.truth for b in blocks])
    takes = xr.concat([b.take.drop_vars(["settlement_date", "settlement_period"], errors="ignore") for b in blocks],
                      dim="gsp_group").groupby("gsp_group").sum()
    takes = cube.add_settlement_coords(takes.reindex(gsp_group=list(plan.gsp_groups)))
    alloc = volume_allocation.allocate(agg, takes, weights=config.weights, take_split=config.take_split,
                                       gcf_range=config.gcf_range)
    dates = pd.DatetimeIndex(np.unique(np.asarray(blocks[0].take["settlement_date"].values)))
    as_of = settlement.as_of_instants(dates, run, scenario.timetable, config.region)
    ds = settlement._assemble(SimpleNamespace(truth=truth), run, agg, alloc, as_of)
    checks = _sum_dicts([p.checks for p in parts], not_additive=("periods",))
    checks.update(settlement.run_checks(ds, _sum_dicts([p.sums for p in parts])))
    digests = [p.input_digest for p in parts]
    input_digest = digests[0] if len(digests) == 1 else hashlib.sha256(
        "\n".join(f"{b.name} {d}" for b, d in zip(blocks, digests)).encode()).hexdigest()
    names = np.array([b.name for b in blocks], dtype=str)
    ds["block_energy"] = (("block", "aggregate", "time"), _block_energy(agg, [p.aggregates for p in parts]),
                          {"units": "kWh", "long_name": "each block's share of the uncorrected aggregate"})
    ds["block_input_digest"] = ("block", np.array(digests, dtype=str))
    ds["block_settled_digest"] = ("block", np.array([p.settled_digest for p in parts], dtype=str))
    ds["block_mpans"] = ("block", np.array([b.mpans for b in blocks], dtype=np.int64), {"units": "1"})
    ds = ds.assign_coords(block=names)
    ds.attrs.update({
        "title": f"settlement run {run} of scenario {scenario.name}",
        "scenario": scenario.name,
        "scenario_digest": scenario.digest(),
        "seed": int(scenario.seed),
        "run": run,
        "timetable": scenario.timetable,
        "as_of_first": pd.Timestamp(as_of.min()).isoformat(),
        "as_of_last": pd.Timestamp(as_of.max()).isoformat(),
        "settlement_dates": json.dumps([f"{d:%Y-%m-%d}" for d in dates]),
        "code_version": settlement.code_version(),
        "input_digest": input_digest,
        "segment_services": json.dumps(parts[0].used),
        "config": json.dumps(config.describe()),
        "checks": json.dumps(checks, allow_nan=True),
        "engine": "chunked (tomlib.scale)",
        "blocks": len(blocks),
        "block_mpans": plan.block_mpans,
        "runner": where,
    })
    return ds


@dataclass
class ChunkedSettlement:
    """A chunked settlement: the runs (as :class:`tomlib.settlement.SettlementRuns`), the plan, and
    what each block cost.

    Attributes
    ----------
    result : SettlementRuns
    plan : BlockPlan
    blocks : list of BlockPartial
        Without their aggregates (timings, cells, digests only).
    seconds : dict
        Wall time of the driver's stages [s]: ``blocks`` (all block tasks), ``combine + GSP group
        correction``, ``save``.
    runner : str
    source : str
        ``store <path>`` or ``regenerated from seeds``.
    """

    result: object
    plan: BlockPlan
    blocks: list
    seconds: dict
    runner: str
    source: str


def largest_first(plan: BlockPlan) -> list[int]:
    """Block indices, most import MPANs first (in plan order among equals): the shortest tasks come
    last, so the workers run out of work at nearly the same time. On the GB day in plan order one
    worker waited 14 s at the end for the other."""
    return sorted(range(len(plan)), key=lambda i: -plan.blocks[i].import_mpans)


def settle_chunked(scenario, runs=None, *, store=None, data_root: str | Path = "data", out_dir=None,
                   block_mpans: int = DEFAULT_BLOCK_MPANS, config=None, save: bool = True, runner: Runner | None = None,
                   **runner_options) -> ChunkedSettlement:
    """Settle a scenario block by block (module docstring) and save the runs with their reconciliation.

    Parameters
    ----------
    scenario : Scenario
    runs : list of str, optional
        Default every run of the scenario's timetable.
    store : path, optional
        Market store (:func:`tomlib.scale.generate.generate_store`); default
        ``<data_root>/<scenario>/market.zarr`` if that is one, else the blocks are regenerated from
        their seeds inside the tasks (nothing is read or written for the market).
    data_root : path
    out_dir : path, optional
        Folder of the saved runs; default ``<data_root>/<scenario>/settlement``.
    block_mpans : int
        Block size when regenerating (a store has its own plan).
    config : SettlementConfig, optional
        ``services`` and ``segment_configs`` must pickle to run on a cluster.
    save : bool
    runner : Runner, optional
        Default one from :func:`tomlib.scale.cluster.open_runner` with ``runner_options``.

    Returns
    -------
    ChunkedSettlement
    """
    from tomlib import reference, settlement

    config = config or settlement.SettlementConfig()
    default_store = Path(data_root) / scenario.name / "market.zarr"
    if store is None and is_market_store(default_store):
        store = default_store
    if store is not None:
        opened = MarketStore(store)
        if opened.attrs["scenario_digest"] != scenario.digest():
            raise ValueError(f"{store}: market was generated from other settings of scenario {scenario.name!r} "
                             f"(digest {opened.attrs['scenario_digest'][:12]}, scenario file {scenario.digest()[:12]}); "
                             "run `tom generate` again")
        plan = opened.plan
        source = f"store {Path(store)}"
    else:
        plan = plan_blocks(scenario, block_mpans)
        source = "regenerated from the block seeds"
    table = reference.run_timetable(scenario.timetable)
    runs = list(table.index) if runs is None else list(runs)
    unknown = [r for r in runs if r not in table.index]
    if unknown:
        raise ValueError(f"unknown run(s) {unknown} for timetable {scenario.timetable!r}; expected "
                         f"{', '.join(table.index)}")
    seconds = {}
    started = time.perf_counter()
    import contextlib

    ctx = contextlib.nullcontext(runner) if runner is not None else open_runner(**runner_options)
    with ctx as run_on:
        blocks = sorted(run_on.map(settle_block, largest_first(plan), scenario.to_dict(), plan.to_json(), runs,
                                   None if store is None else str(Path(store).resolve()), config),
                        key=lambda b: b.block)
        where = run_on.description
    seconds["blocks"] = time.perf_counter() - started
    started = time.perf_counter()
    datasets = {run: _assemble_run(run, blocks, plan, scenario, config, where) for run in runs}
    recon = settlement.reconcile(datasets)
    seconds["combine + GSP group correction"] = time.perf_counter() - started
    started = time.perf_counter()
    folder = Path(out_dir) if out_dir else settlement.run_store_path(scenario.name, "X", data_root).parent
    results = {run: settlement.RunResult(run, ds, cube.save(ds, folder / f"{run}.zarr") if save else None)
               for run, ds in datasets.items()}
    path = cube.save(recon, folder / "reconciliation.zarr") if save else None
    seconds["save"] = time.perf_counter() - started
    for b in blocks:  # keep the timings, drop the partial data
        b.runs = {r: dataclasses.replace(p, aggregates=None) for r, p in b.runs.items()}
        b.truth = b.take = None
    return ChunkedSettlement(result=settlement.SettlementRuns(runs=results, reconciliation=recon, path=path),
                             plan=plan, blocks=blocks, seconds=seconds, runner=where, source=source)


def check_sample(run_ds: xr.Dataset, scenario, index: int, *, store=None, config=None) -> dict:
    """Settle one block of a chunked run in memory and compare it with the run's record of that block.

    The block's market is read from ``store`` (or regenerated from its seed) in this process and put
    through the in-memory run's steps (:func:`tomlib.settlement.settled_cube` and
    :func:`tomlib.services.aggregation.aggregate`, as :func:`tomlib.settlement.settle_run` calls
    them). Its settled meter cube must have the digest the chunked run recorded for the block, and
    its aggregates must be the chunked run's ``block_energy`` of the block.

    Returns
    -------
    dict
        ``block``, ``mpans``, ``settled_digest_equal`` (bool), ``aggregates_max_abs_diff_kwh``
        [kWh], ``seconds`` (in-memory settlement of the block) [s].
    """
    from tomlib import settlement
    from tomlib.services import aggregation

    plan = MarketStore(store).plan if store is not None else plan_blocks(scenario, int(run_ds.attrs["block_mpans"]))
    block = plan.blocks[index]
    started = time.perf_counter()
    market = MarketStore(store).block_market(index) if store is not None else generate_block(scenario, block)
    config = config or settlement.SettlementConfig()
    ctx = settlement._prepare(market, scenario=block_scenario(scenario, block), config=config)
    run = str(run_ds.attrs["run"])
    settled, force, _, _ = settlement.settled_cube(ctx, run, settlement.run_as_of(ctx, run))
    agg = aggregation.aggregate(settled, force, market.line_loss_factors, actual_quality=config.actual_quality)
    seconds = time.perf_counter() - started
    pos = int(np.flatnonzero(run_ds["block"].values.astype(str) == block.name)[0])
    chunked = np.asarray(run_ds["block_energy"].isel(block=pos).transpose("aggregate", "time").values)
    expected = _block_energy(run_ds, [agg])[0]
    return {"block": block.name, "mpans": int(market.meters.sizes["mpan"]),
            "settled_digest_equal": settled_digest(settled) == str(run_ds["block_settled_digest"].values[pos]),
            "aggregates_max_abs_diff_kwh": float(np.abs(expected - chunked).max(initial=0.0)),
            "seconds": seconds}
