"""The chunked engine (tomlib.scale) on small data: block plan, chunked market store, chunked settlement.

What is pinned here:
- the plan splits each GSP group into even blocks, with their own seeds and disjoint MPAN core ranges
  (block edges: a group exactly one block, one MPAN over, one MPAN per block);
- a block is a market: regenerated alone it is bit for bit the block the store holds, and cores are
  unique and valid across blocks;
- chunked settlement equals the in-memory path: each block's settled MPAN data (digest) and
  aggregates equal those of the in-memory steps on that block's market, a GSP group split over
  blocks is corrected once on the sum of its blocks' aggregates, and with one block per GSP group
  the chunked run equals ``settlement.settle_run`` in every variable, exactly;
- the same numbers on a real 2-worker dask LocalCluster as in this process;
- a 46-period and a 50-period day.

Tolerances: exact (``==``) wherever the same floating-point operations run in the same order; 1e-9
relative where a GSP group's blocks are summed in another order than one market's MPANs.
"""

from __future__ import annotations

import itertools
import json
import os

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from tomlib import cli, mpan, settlement
from tomlib import scenario as scenario_mod
from tomlib.scale import (
    MarketStore,
    block_scenario,
    check_sample,
    combine_aggregates,
    generate_block,
    generate_store,
    is_market_store,
    open_runner,
    plan_blocks,
    settle_chunked,
    wants_chunked,
)
from tomlib.scale import plan as plan_mod
from tomlib.scale.cluster import WORKER_MALLOC
from tomlib.scale.settle import largest_first
from tomlib.services import aggregation, volume_allocation


def _scenario(name: str, day: str, mpans: dict, unmetered: float = 0.01):
    base = scenario_mod.load_scenario("tiny")
    return base.with_overrides({"name": name, "first_date": day, "last_date": day, "gsp_groups": list(mpans),
                                "mpans": mpans, "segments.unmetered": unmetered,
                                "segments.smart_domestic": 0.85 - unmetered})


@pytest.fixture(scope="module")
def spring(tmp_path_factory):
    """46-period day; _C (601 imports) split into 2 uneven blocks, _P one block; a market store."""
    sc = _scenario("scale_spring", "2026-03-29", {"_C": 601, "_P": 200})
    root = tmp_path_factory.mktemp("scale")
    done = generate_store(sc, root / sc.name / "market.zarr", block_mpans=301, synchronous=True)
    chunked = settle_chunked(sc, ["SF"], data_root=root, synchronous=True)
    return sc, done, chunked


@pytest.fixture(scope="module")
def autumn():
    """50-period day, one GSP group in 2 blocks (no store: blocks regenerated from their seeds)."""
    return _scenario("scale_autumn", "2026-10-25", {"_P": 500}, unmetered=0.0)


# ------------------------------------------------------------------------------------------ plan


def test_plan_splits_each_gsp_group_into_even_blocks_with_own_seeds_and_core_ranges():
    sc = _scenario("p", "2026-03-29", {"_C": 1001, "_P": 1000})
    plan = plan_blocks(sc, 1000)
    assert [(b.gsp_group, b.part, b.import_mpans) for b in plan.blocks] == [("_C", 0, 501), ("_C", 1, 500),
                                                                            ("_P", 0, 1000)]
    assert plan.import_mpans == sc.n_mpans and [b.index for b in plan.blocks] == [0, 1, 2]
    assert len({b.seed for b in plan.blocks}) == 3 and plan_blocks(sc, 1000) == plan  # deterministic
    assert plan.blocks[0].id_range[1] == plan.blocks[1].id_range[0]  # disjoint core ranges
    assert plan_mod.BlockPlan.from_json(plan.to_json()) == plan
    one_each = plan_blocks(_scenario("p", "2026-03-29", {"_C": 7, "_P": 3}), 1)
    assert len(one_each) == 10 and {b.import_mpans for b in one_each.blocks} == {1}
    with pytest.raises(ValueError, match="at most 1000 blocks per GSP group"):
        plan_blocks(sc, 1)  # 1,001 blocks would overflow the MPAN core ranges
    assert [b.parts for b in plan_blocks(sc, 1001).blocks] == [1, 1]
    # the seed of a block depends on its group and number, not on how many blocks there are
    assert plan_blocks(sc, 600).blocks[0].seed == plan.blocks[0].seed
    block = plan.blocks[1]
    assert block_scenario(sc, block).mpans == {"_C": 500} and block_scenario(sc, block).seed == block.seed


@pytest.mark.parametrize("size", [0, -5, plan_mod.MAX_BLOCK_MPANS + 1])
def test_plan_rejects_block_sizes_out_of_range(size):
    with pytest.raises(ValueError, match="block_mpans"):
        plan_blocks(_scenario("p", "2026-03-29", {"_C": 10}), size)


def test_gb_scenarios_go_to_the_chunked_engine():
    gb = scenario_mod.load_scenario("gb")
    assert wants_chunked(gb) and not wants_chunked(scenario_mod.load_scenario("demo"))
    assert wants_chunked(scenario_mod.load_scenario("demo"), "chunked") and not wants_chunked(gb, "memory")
    assert 29_000_000 < gb.n_mpans < 30_000_000 and len(gb.gsp_groups) == 14
    for name, periods in (("gb", 48), ("gb_spring", 46), ("gb_autumn", 50)):
        sc = scenario_mod.load_scenario(name)
        assert sc.first_date == sc.last_date and sc.mpans == gb.mpans and sc.seed == gb.seed
        assert len(pd.date_range(sc.first_date, periods=2, freq="D")) == 2
        from tomlib import calendar

        assert len(calendar.time_axis(sc.first_date, sc.last_date)) == periods
    assert len(plan_blocks(gb)) == sum(-(-n // plan_mod.DEFAULT_BLOCK_MPANS) for n in gb.mpans.values())
    with pytest.raises(ValueError, match="engine"):
        wants_chunked(gb, "fast")


# ------------------------------------------------------------------------------------------ store


def test_store_holds_every_block_as_it_regenerates_alone(spring):
    sc, done, _ = spring
    store = MarketStore(done.path)
    assert is_market_store(done.path) and len(store.plan) == 3 and store.rows == done.rows
    assert [b.import_mpans for b in store.plan.blocks] == [301, 300, 200]
    assert not [p for p in done.path.parent.iterdir() if p.name.startswith(".")]  # no temporary left
    kept, fresh = store.block_market(1), generate_block(sc, store.plan.blocks[1])  # regenerated alone
    assert kept.seed == store.plan.blocks[1].seed and kept.meters.sizes["time"] == 46
    np.testing.assert_array_equal(kept.meters["energy"].values, fresh.meters["energy"].values)
    np.testing.assert_array_equal(kept.meters["mpan"].values, fresh.meters["mpan"].values)
    xr.testing.assert_identical(kept.gsp_group_take, fresh.gsp_group_take)
    assert (kept.meters["market_segment"].values.astype(str) == "U").any()
    cores = []
    for block in store.plan.blocks:  # three blocks
        ids = store.block_market(block.index).meters["mpan"].values.astype(str)
        unique_part = np.array([int(c[2:12]) for c in ids])
        assert ((unique_part >= block.id_range[0]) & (unique_part < block.id_range[1])).all()
        cores.append(ids)
    cores = np.concatenate(cores)
    mpan.validate(cores, "store")
    assert np.unique(cores).size == cores.size == store.rows
    # the GSP group take is the sum of its blocks' takes; every block wrote its own row
    root = xr.open_zarr(done.path, consolidated=False)
    assert root["block_done"].values.all() and root["block_take"].encoding["chunks"] == (1, 46)
    c_rows = np.asarray(root["block_gsp_group"].values, dtype=object).astype(str) == "_C"
    np.testing.assert_allclose(store.gsp_group_take.sel(gsp_group="_C").values,
                               root["block_take"].values[c_rows].sum(axis=0), rtol=1e-12)
    with pytest.raises(ValueError, match="chunked market store"):  # the in-memory path says where to go
        settlement.settle(sc, "SF", data_root=done.path.parents[1], save=False)
    lazy = store.meters()
    assert lazy.sizes == {"mpan": store.rows, "time": 46} and lazy["energy"].chunks is not None
    assert float(lazy["energy"].sum()) == pytest.approx(sum(
        float(store.block_market(i).meters["energy"].sum()) for i in range(3)), rel=1e-12)


# ------------------------------------------------------------------------------------------ settlement


def test_chunked_run_equals_the_in_memory_path_block_by_block(spring):
    sc, done, chunked = spring
    ds = chunked.result.runs["SF"].dataset
    assert settlement.check_table(chunked.result)["ok"].all()
    assert ds.attrs["engine"].startswith("chunked") and ds.sizes["block"] == 3 and ds.sizes["time"] == 46
    store = MarketStore(done.path)
    keys = aggregation.AGGREGATE_COORDS
    index = pd.MultiIndex.from_arrays([ds[c].values.astype(str) for c in keys])
    in_memory, takes = [], []
    for block in store.plan.blocks:  # the in-memory run of each block's market, unchanged
        market = store.block_market(block.index)
        run = settlement.settle_run(market, "SF", scenario=block_scenario(sc, block))
        rows = index.get_indexer(pd.MultiIndex.from_arrays([run[c].values.astype(str) for c in keys]))
        assert (rows >= 0).all()
        np.testing.assert_array_equal(ds["block_energy"].values[block.index][rows], run["uncorrected"].values)
        assert ds["block_input_digest"].values[block.index] == run.attrs["input_digest"]
        in_memory.append(run)
        takes.append(market.gsp_group_take)
    # a GSP group split over blocks: corrected once, on the sum of its blocks' aggregates
    agg = combine_aggregates([_as_aggregates(r) for r in in_memory])
    take = xr.concat(takes, dim="gsp_group").groupby("gsp_group").sum()
    expect = volume_allocation.allocate(agg, take)
    rows = index.get_indexer(pd.MultiIndex.from_arrays([agg[c].values.astype(str) for c in keys]))
    np.testing.assert_allclose(ds["corrected"].values[rows], expect["corrected"].values, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ds["gcf"].sel(gsp_group_id=expect["gsp_group_id"]).values, expect["gcf"].values,
                               rtol=1e-9)
    assert int(ds["mpan_periods"].sum()) == sum(int(r["mpan_periods"].sum()) for r in in_memory)
    assert int(ds["mpan_periods"].sum()) == store.rows * 46
    checks = json.loads(ds.attrs["checks"])
    assert checks["mpans"] == store.rows and checks["periods"] == 46
    assert checks["S: mpan_periods"] == sum(json.loads(r.attrs["checks"])["S: mpan_periods"] for r in in_memory)
    sample = check_sample(ds, sc, 2, store=done.path)
    assert sample["settled_digest_equal"] and sample["aggregates_max_abs_diff_kwh"] == 0.0
    saved = settlement.open_run(chunked.result.runs["SF"].path)
    np.testing.assert_array_equal(saved["allocated_net"].values, ds["allocated_net"].values)


def test_one_block_per_gsp_group_is_exactly_the_in_memory_run(autumn):
    chunked = settle_chunked(autumn, ["SF"], block_mpans=500, synchronous=True, save=False)
    ds = chunked.result.runs["SF"].dataset
    assert chunked.source.startswith("regenerated") and ds.sizes["time"] == 50
    block = chunked.plan.blocks[0]
    want = settlement.settle_run(generate_block(autumn, block), "SF", scenario=block_scenario(autumn, block))
    for name in want.variables:
        np.testing.assert_array_equal(ds[name].values, want[name].values, err_msg=name)
    got_checks, want_checks = json.loads(ds.attrs["checks"]), json.loads(want.attrs["checks"])
    assert got_checks.keys() == want_checks.keys()
    for key, value in want_checks.items():
        assert got_checks[key] == value or (np.isnan(value) and np.isnan(got_checks[key])), key
    for key in ("input_digest", "segment_services", "as_of_first", "settlement_dates", "config"):
        assert ds.attrs[key] == want.attrs[key], key


def test_tom_generate_and_settle_pick_the_chunked_engine_and_a_cluster_agrees(autumn, tmp_path, monkeypatch):
    import contextlib

    from tomlib.scale import generate as gen_mod
    from tomlib.scale import settle as settle_mod

    @contextlib.contextmanager
    def here(**options):  # the CLI's runner options reach open_runner; run in this process
        assert options == {"scheduler": None, "workers": 2, "memory_limit": "3GiB"}
        with open_runner(synchronous=True) as runner:
            yield runner

    monkeypatch.setattr(gen_mod, "open_runner", here)
    monkeypatch.setattr(settle_mod, "open_runner", here)
    path = tmp_path / "scale_autumn.yaml"
    path.write_text(json.dumps(autumn.to_dict()))  # JSON is YAML
    args = ["--scenario", str(path), "--data-root", str(tmp_path)]
    assert cli.main(["generate", *args, "--engine", "chunked", "--block-mpans", "250", "--memory-limit", "3GiB"]) == 0
    store = tmp_path / "scale_autumn" / "market.zarr"
    assert is_market_store(store)
    assert cli.main(["settle", "--run", "SF", *args, "--memory-limit", "3GiB"]) == 0  # auto: a chunked store
    here_ds = settlement.open_run(tmp_path / "scale_autumn" / "settlement" / "SF.zarr")
    assert here_ds.attrs["engine"].startswith("chunked") and here_ds.sizes["block"] == 2
    monkeypatch.undo()

    # the same blocks on a real local cluster of two worker processes
    with open_runner(workers=2, memory_limit="2GiB") as runner:
        assert runner.n_workers == 2
        # the workers started with the malloc settings that keep a block's freed arrays for the next
        environs = runner.client.run(lambda: {k: os.environ.get(k) for k in WORKER_MALLOC})
        assert list(environs.values()) == [{k: str(v) for k, v in WORKER_MALLOC.items()}] * 2
        # and without the statistical profiler (every 10 ms, for a dashboard that is not started);
        # every server -- workers, their nannies and the scheduler -- checks its event loop once a
        # second, not every 20 ms
        import dask

        profiling = runner.client.run(lambda: dask.config.get("distributed.worker.profile.enabled"))
        assert list(profiling.values()) == [False, False]
        ticks = [*runner.client.run(lambda dask_worker: dask_worker._tick_interval).values(),
                 *runner.client.run(lambda dask_worker: dask_worker._tick_interval, nanny=True).values(),
                 runner.client.run_on_scheduler(lambda dask_scheduler: dask_scheduler._tick_interval)]
        assert ticks == [1.0] * 5
        there = settle_chunked(autumn, ["SF"], store=store, runner=runner, save=False)
    assert "local dask cluster" in there.runner and len(there.plan) == 2
    there_ds = there.result.runs["SF"].dataset
    for name in ("allocated_net", "gcf", "corrected", "block_energy", "mpan_periods", "true_net"):
        np.testing.assert_array_equal(here_ds[name].values, there_ds[name].values, err_msg=name)
    assert here_ds.attrs["input_digest"] == there_ds.attrs["input_digest"]
    assert list(here_ds["block_settled_digest"].values) == list(there_ds["block_settled_digest"].values)


def test_a_one_thread_worker_runs_one_block_at_a_time_even_when_a_block_computes_with_dask():
    # a dask computation inside a task would otherwise go to the cluster and secede the task's thread,
    # and the worker would start its next task beside it; tasks start in the order given

    def task_with_a_dask_computation(i: int) -> tuple[float, float, int]:  # pickled by value for the worker
        import time

        import dask.array as da

        started = time.time()
        assert int(da.ones(8, chunks=2).sum().compute()) == 8  # as xarray's .load() of a chunked file does
        time.sleep(0.3)
        return started, time.time(), i

    with open_runner(workers=1, memory_limit="1GiB") as runner:  # a worker process: nothing shared with pytest
        spans = sorted(runner.map(task_with_a_dask_computation, [2, 0, 3, 1]))
    assert all(end <= next_start for (_, end, _), (next_start, _, _) in itertools.pairwise(spans)), spans
    assert [i for _, _, i in spans] == [2, 0, 3, 1]


def test_blocks_are_run_largest_first():
    plan = plan_blocks(scenario_mod.load_scenario("gb"))
    order = largest_first(plan)
    sizes = [plan.blocks[i].import_mpans for i in order]
    assert sorted(order) == list(range(len(plan))) and sizes == sorted(sizes, reverse=True)
    assert sizes[0] > sizes[-1]  # the GB day's GSP groups split into blocks of different sizes


# ------------------------------------------------------------------------------------------ combining


def _as_aggregates(run: xr.Dataset) -> xr.Dataset:
    """The uncorrected aggregates of an in-memory run, in the layout aggregation gives them."""
    return xr.Dataset({"energy": run["uncorrected"], "default_energy": run["uncorrected"] * 0.0,
                       "mpan_count": run["mpan_count"], "default_count": run["default_count"],
                       "mpan_periods": run["mpan_periods"]})


@settings(max_examples=8, deadline=None)
@given(cut=st.integers(1, 59), seed=st.integers(0, 3))
def test_aggregates_of_any_split_of_the_mpans_add_up_to_those_of_all(cut, seed):
    # without cells to default (defaults use means over the aggregated MPANs) a split changes nothing
    inputs = aggregation.bench_inputs(mpan_days=60 * 2, days=2, seed=seed, missing_share=0.0)
    meters, reg, llf = inputs["meters"], inputs["registration"], inputs["line_loss_factors"]
    whole = aggregation.aggregate(meters, reg, llf)
    combined = combine_aggregates([aggregation.aggregate(meters.isel(mpan=rows), reg, llf)
                                   for rows in (slice(0, cut), slice(cut, None))])
    keys = aggregation.AGGREGATE_COORDS
    index = pd.MultiIndex.from_arrays([combined[c].values.astype(str) for c in keys])
    rows = index.get_indexer(pd.MultiIndex.from_arrays([whole[c].values.astype(str) for c in keys]))
    assert (rows >= 0).all() and rows.size == combined.sizes["aggregate"]
    for name in ("energy", "mpan_count", "default_count"):
        np.testing.assert_allclose(combined[name].values[rows], whole[name].values, rtol=1e-12, atol=1e-12)
    xr.testing.assert_equal(combined["mpan_periods"], whole["mpan_periods"])


# ------------------------------------------------------------------------------------------ helpers

_WORDS = st.sampled_from(["", "a", "ab", "é", "\u20ac", "abcdefgh", "abcdefghi", "1200000000017", "0000000000001",
                          "M1234567", "01", "02"])


@settings(max_examples=60, deadline=None)
@given(left=st.lists(st.tuples(_WORDS, _WORDS, st.integers(0, 2)), max_size=25, unique=True),
       right=st.lists(st.tuples(_WORDS, _WORDS, st.integers(0, 2)), max_size=25))
def test_integer_coded_joins_equal_the_pandas_ones(left, right):
    from tomlib.services._processing_keys import lookup, pairs_on

    cols = [np.array([t[i] for t in left], dtype=str if i < 2 else np.int64) for i in range(3)]
    rcols = [np.array([t[i] for t in right], dtype=str if i < 2 else np.int64) for i in range(3)]
    if left and right:
        want = pd.MultiIndex.from_arrays(cols).get_indexer(pd.MultiIndex.from_arrays(rcols))
        np.testing.assert_array_equal(lookup(cols, rcols), want)
    a, b = cols[0], rcols[0]
    e, r = pairs_on(a, b)
    merged = pd.DataFrame({"k": a, "e": np.arange(a.size)}).merge(pd.DataFrame({"k": b, "r": np.arange(b.size)}),
                                                                  on="k").sort_values(["e", "r"])
    np.testing.assert_array_equal(e, merged["e"].to_numpy())
    np.testing.assert_array_equal(r, merged["r"].to_numpy())


def test_store_string_encoding_round_trips_exactly():
    from tomlib.scale.generate import decode_strings, encode_strings

    ds = xr.Dataset({"x": (("mpan",), np.array(["ab", "é", ""], dtype="<U5")),
                     "codes": (("mpan",), np.array(["0000000000012", "1234567890123", ""]))},
                    coords={"mpan": np.array(["1200000000017", "1400000000012", "1900000000013"]),
                            "linked": ("mpan", np.array(["", "1200000000017", ""]))})
    encoded = encode_strings(ds)
    assert all(v.dtype.kind in "iu" for v in encoded.variables.values())
    assert encoded["mpan"].dtype == np.int64 and encoded["linked"].values[0] == -1
    xr.testing.assert_identical(decode_strings(encoded), ds)
    assert decode_strings(encoded)["x"].dtype == np.dtype("<U5")


# ------------------------------------------------------------------------------------------ the benchmark


def test_scale_benchmark_rows_with_and_without_a_market_store(tmp_path):
    """The benchmark's two ways through a size (store written and read; one pass regenerating the
    blocks) settle the same numbers, and their rows account for every meter-period."""
    from tomlib.scale import bench as scale_bench

    sc = scale_bench.size_scenario(700, base="tiny").with_overrides({"name": "bench_700"})
    with open_runner(synchronous=True) as runner:
        stored = scale_bench._one(sc, 700, tmp_path / "a", runner=runner, block_mpans=300)
        one_pass = scale_bench._one(sc, 700, tmp_path / "b", runner=runner, block_mpans=300, store_market=False,
                                    sample=True)
    by_stage = {r.stage: r for r in one_pass}
    assert {"tom settle --run SF (no store)", "end to end", "market generation", "aggregation"} <= set(by_stage)
    assert "market read" not in by_stage and "tom generate" in {r.stage for r in stored}
    end = by_stage["end to end"]
    assert end.blocks == 3 and end.meter_periods == next(r for r in stored if r.stage == "end to end").meter_periods
    assert end.notes["market"].startswith("regenerated")
    check = by_stage["tom settle --run SF (no store)"].notes["sample_check"]
    assert check["settled_digest_equal"] and check["aggregates_max_abs_diff_kwh"] == 0.0
    notes = by_stage["tom settle --run SF (no store)"].notes
    assert notes["checks_ok"] and notes["checks_failed"] == []
    assert len(notes["blocks"]) == end.blocks
    assert sum(b["mpans"] for b in notes["blocks"]) == end.mpans
    assert all(0.0 <= b["start"] <= b["end"] and b["cpu_seconds"] > 0 and b["worker"] for b in notes["blocks"])
    a = settlement.open_run(tmp_path / "a" / "bench_700" / "settlement" / "SF.zarr")
    b = settlement.open_run(tmp_path / "b" / "bench_700" / "settlement" / "SF.zarr")
    for name in ("allocated_net", "corrected", "gcf", "block_energy"):
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    assert "no store" not in scale_bench.format_table(stored) and "(no store)" in scale_bench.format_table(one_pass)
