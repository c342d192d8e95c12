"""Chunked market generation: one Zarr store, written block by block, each block regenerable alone.

Store layout (Zarr format 3, ``data/<scenario>/market.zarr``)
-------------------------------------------------------------
``/`` (root group)
    attrs: ``tomlib_store`` = :data:`STORE_KIND`, the scenario (JSON) and its digest, the block plan
    (JSON), generator settings, ``complete``. Variables over the blocks, each block writing its
    own row by a *region write* (chunks of one block, so parallel writers never share a chunk):
    ``block_take(block, time)`` and ``block_unaccounted(block, time)`` [kWh], ``block_mpans(block)``
    (rows of the block's meter cube) and ``block_done(block)``. Written once all blocks are in:
    ``gsp_group_take(gsp_group_id, time)`` and ``unaccounted_energy(gsp_group_id, time)`` (sums of
    the blocks') [kWh], ``line_loss_factor(llfc_id, time)`` [-] (every LLFC used).
``/blocks/<name>`` (one group per block, e.g. ``blocks/C0003``)
    The block's market exactly as :meth:`tomlib.market.Market.to_dataset` makes it (meter cube,
    standing data, its own LLFs, take and unaccounted energy, UMS truth); energy chunked by up to
    131,072 MPANs x the day. Strings are stored as integers (:func:`encode_strings`): an MPAN core
    as its 13-digit number, any other string as a code into its sorted categories (attribute
    ``tomlib_categories``) -- a few dozen distinct values over hundreds of thousands of MPANs, which
    as variable-length strings cost more to write and read than the energy itself.

The whole store is written into a hidden temporary sibling and renamed into place at the end
(:func:`tomlib._io.atomic_target`): a failed or interrupted generation leaves the previous store
(or none), never half a store.

:class:`MarketStore` reads it back: a block as an in-memory :class:`~tomlib.market.Market`
(exactly what :func:`generate_block` returns), the GSP group take, and a lazy dask-backed view of
every MPAN's energy for exploration.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from tomlib import calendar as cal
from tomlib import cube
from tomlib._io import atomic_target
from tomlib.scale.cluster import Runner, StageClock, open_runner
from tomlib.scale.plan import (
    DEFAULT_BLOCK_MPANS,
    Block,
    BlockPlan,
    block_scenario,
    block_settings,
    plan_blocks,
)

__all__ = ["STORE_KIND", "GenerateResult", "MarketStore", "generate_block", "generate_store", "is_market_store"]

#: Value of the root attribute ``tomlib_store`` of a chunked market store.
STORE_KIND = "chunked market (tomlib.scale)"

_CHUNK_MPANS = 131_072


def generate_block(scenario, block: Block, settings=None, lcl_path=None):
    """One block's market, in memory: :func:`tomlib.market.generate` of its block scenario.

    Parameters
    ----------
    scenario : Scenario
        The whole scenario.
    block : Block
        From :func:`tomlib.scale.plan.plan_blocks` of that scenario.
    settings : GeneratorSettings, optional
    lcl_path : path, optional

    Returns
    -------
    Market
        Seeded with the block's seed; its cores come from the block's range.
    """
    from tomlib import market as market_mod

    return market_mod.generate(block_scenario(scenario, block), settings=block_settings(block, settings),
                               lcl_path=lcl_path)


@dataclass
class GenerateResult:
    """What :func:`generate_store` did.

    Attributes
    ----------
    path : Path
    plan : BlockPlan
    seconds : float
        Wall time [s].
    blocks : list of dict
        Per block: ``block``, ``rows`` (MPANs incl. export and UMS), ``cells`` (meter-periods),
        ``segments`` (MPANs by market segment); ``seconds``, ``cpu_seconds`` [s] and ``peak_rss``
        [bytes] of the stages ``market generation`` and ``market write`` of its task.
    runner : str
        Where the blocks ran.
    """

    path: Path
    plan: BlockPlan
    seconds: float
    blocks: list[dict] = field(default_factory=list)
    runner: str = ""

    @property
    def rows(self) -> int:
        """MPANs in the store (imports, exports and UMS)."""
        return int(sum(b["rows"] for b in self.blocks))


def _times(scenario) -> np.ndarray:
    return cal.time_axis(scenario.first_date, scenario.last_date).to_numpy()


def _root_template(scenario, plan: BlockPlan) -> xr.Dataset:
    times = _times(scenario)
    n_b, n_t = len(plan), times.size
    names = np.array([b.name for b in plan.blocks], dtype=str)
    ds = xr.Dataset(
        {
            "block_take": (("block", "time"), np.full((n_b, n_t), np.nan),
                           {"units": "kWh", "long_name": "GSP group take of the block's MPANs"}),
            "block_unaccounted": (("block", "time"), np.full((n_b, n_t), np.nan),
                                  {"units": "kWh", "long_name": "unaccounted energy of the block"}),
            "block_mpans": (("block",), np.zeros(n_b, dtype=np.int64),
                            {"units": "1", "long_name": "MPANs of the block (import, export, UMS)"}),
            "block_done": (("block",), np.zeros(n_b, dtype=bool), {"long_name": "the block is written"}),
        },
        coords={"block": names, "block_gsp_group": ("block", np.array([b.gsp_group for b in plan.blocks], dtype=str)),
                "time": ("time", times, dict(cube.TIME_ATTRS))},
        attrs={"tomlib_store": STORE_KIND, "scenario_name": scenario.name, "scenario_digest": scenario.digest(),
               "scenario": json.dumps(scenario.to_dict(), sort_keys=True), "plan": plan.to_json(),
               "seed": int(scenario.seed), "complete": 0},
    )
    return cube.add_settlement_coords(ds)


def _region_encoding(ds: xr.Dataset) -> dict:
    return {k: {"chunks": (1,) + v.shape[1:]} for k, v in ds.data_vars.items() if v.dims[:1] == ("block",)}


def _block_encoding(ds: xr.Dataset) -> dict:
    enc = {}
    for k, v in ds.data_vars.items():
        if v.dims[:1] == ("mpan",) and v.ndim == 2:
            enc[k] = {"chunks": (min(max(v.shape[0], 1), _CHUNK_MPANS), v.shape[1])}
            if v.dtype.kind == "f":  # noisy energy compresses by a sixth for a third more write time
                enc[k]["compressors"] = None
    return enc


_MPAN_POWERS = 10 ** np.arange(12, -1, -1, dtype=np.int64)


def _is_core_like(values: np.ndarray) -> bool:
    """13-digit strings, or "" (no MPAN), everywhere."""
    if values.dtype.itemsize // 4 != 13 or values.size == 0:
        return False
    digits = values.view(np.uint32).reshape(values.size, 13)
    empty = (digits == 0).all(axis=1)
    return bool((((digits >= 48) & (digits <= 57)).all(axis=1) | empty).all())


def encode_strings(ds: xr.Dataset) -> xr.Dataset:
    """Every fixed-width string variable of ``ds`` as integers, exactly invertible by :func:`decode_strings`.

    MPAN-like strings (13 digits or "") become int64 (-1 for ""); others int32 codes into their
    sorted distinct values, kept as JSON in the attribute ``tomlib_categories``. The original dtype
    is kept in ``tomlib_dtype``.
    """
    out = {}
    for name, var in ds.variables.items():
        if var.dtype.kind != "U":
            continue
        values = np.ascontiguousarray(var.values).reshape(-1)
        attrs = {**var.attrs, "tomlib_dtype": var.dtype.str}
        if _is_core_like(values):
            digits = values.view(np.uint32).reshape(values.size, 13).astype(np.int64) - 48
            number = np.where((digits < 0).any(axis=1), -1, digits @ _MPAN_POWERS)
            out[name] = xr.Variable(var.dims, number.reshape(var.shape), {**attrs, "tomlib_encoding": "mpan13"})
        else:
            cats, codes = np.unique(values, return_inverse=True)
            out[name] = xr.Variable(var.dims, codes.astype(np.int32).reshape(var.shape),
                                    {**attrs, "tomlib_categories": json.dumps(cats.tolist())})
    return ds.assign_coords({k: v for k, v in out.items() if k in ds.coords}).assign(
        {k: v for k, v in out.items() if k not in ds.coords})


def decode_strings(ds: xr.Dataset) -> xr.Dataset:
    """Inverse of :func:`encode_strings` (the same strings, dtypes and attributes)."""
    out = {}
    for name, var in ds.variables.items():
        attrs = dict(var.attrs)
        if "tomlib_dtype" not in attrs:
            continue
        dtype = np.dtype(attrs.pop("tomlib_dtype"))
        values = np.asarray(var.values)
        if attrs.pop("tomlib_encoding", None) == "mpan13":
            flat = values.reshape(-1)
            digits = (flat[:, None] // _MPAN_POWERS[None, :]) % 10 + 48
            digits[flat < 0] = 0
            text = np.ascontiguousarray(digits.astype(np.uint32)).view("<U13").reshape(values.shape)
        else:
            cats = np.asarray(json.loads(attrs.pop("tomlib_categories")), dtype=str)
            text = cats[values] if cats.size else np.zeros(values.shape, dtype=str)
        out[name] = xr.Variable(var.dims, text.astype(dtype), attrs)
    return ds.assign_coords({k: v for k, v in out.items() if k in ds.coords}).assign(
        {k: v for k, v in out.items() if k not in ds.coords})


def write_block(index: int, scenario_dict: dict, plan_json: str, path: str, settings=None) -> dict:
    """Task of one block: generate it and write it into the store at ``path`` (its group and its row
    of the root's per-block variables). Returns a small summary (see :class:`GenerateResult`)."""
    from tomlib.scenario import Scenario

    clock = StageClock()
    scenario = Scenario.from_dict(scenario_dict)
    plan = BlockPlan.from_json(plan_json)
    block = plan.blocks[index]
    with clock.stage("market generation"):
        market = generate_block(scenario, block, settings)
    with clock.stage("market write"):
        ds = cube._prepared(encode_strings(market.to_dataset()), "zarr")
        ds.to_zarr(path, group=f"blocks/{block.name}", mode="w-", zarr_format=3, consolidated=False,
                   encoding=_block_encoding(ds))
        take = market.gsp_group_take.sel(gsp_group=block.gsp_group).to_numpy()
        unaccounted = market.unaccounted_energy.sel(gsp_group=block.gsp_group).to_numpy()
        rows = int(market.meters.sizes["mpan"])
        row = xr.Dataset({"block_take": (("block", "time"), take[None, :]),
                          "block_unaccounted": (("block", "time"), unaccounted[None, :]),
                          "block_mpans": (("block",), np.array([rows], dtype=np.int64)),
                          "block_done": (("block",), np.array([True]))})
        row.to_zarr(path, region={"block": slice(index, index + 1)}, mode="r+", zarr_format=3, consolidated=False)
    segments = pd.Series(market.meters["market_segment"].to_numpy().astype(str)).value_counts()
    return {"block": index, "name": block.name, "gsp_group": block.gsp_group, "rows": rows,
            "cells": int(market.meters["energy"].size),
            "segments": {str(k): int(v) for k, v in segments.items()},
            "llf": market.line_loss_factors.drop_vars(["settlement_date", "settlement_period"]),
            "seconds": dict(clock.seconds), "cpu_seconds": dict(clock.cpu_seconds), "peak_rss": dict(clock.peak_rss)}


def _finish(path: Path, scenario, plan: BlockPlan, llfs: list[xr.DataArray], meta: dict) -> None:
    """Market-level arrays from the blocks: GSP group take, unaccounted energy and the LLFs."""
    with xr.open_dataset(path, engine="zarr", consolidated=False, chunks=None) as src:
        root = cube._fixed_width(src.load())
    done = root["block_done"].to_numpy()
    if not done.all():
        missing = root["block"].to_numpy()[~done]
        raise RuntimeError(f"{path}: blocks {', '.join(map(str, missing[:5]))} were not written")
    groups = np.array(plan.gsp_groups, dtype=str)
    of_block = root["block_gsp_group"].to_numpy().astype(str)
    member = (of_block[None, :] == groups[:, None]).astype(float)
    # einsum, not a BLAS product (whose rounding depends on its thread count)
    take = np.einsum("gb,bt->gt", member, root["block_take"].to_numpy())
    unaccounted = np.einsum("gb,bt->gt", member, root["block_unaccounted"].to_numpy())
    llf = xr.concat(llfs, dim="llfc", join="exact")
    values = llf.to_numpy()
    codes, first, inverse = np.unique(llf["llfc"].to_numpy().astype(str), return_index=True, return_inverse=True)
    if not np.array_equal(values, values[first][inverse], equal_nan=True):
        raise RuntimeError(f"{path}: blocks disagree on the line loss factors of an LLFC")
    out = xr.Dataset(
        {"gsp_group_take": (("gsp_group_id", "time"), take, {"units": "kWh", "long_name": "true GSP group take"}),
         "unaccounted_energy": (("gsp_group_id", "time"), unaccounted,
                                {"units": "kWh", "long_name": "energy in the GSP group take that no meter sees"}),
         "line_loss_factor": (("llfc_id", "time"), values[first], {"units": "-", "long_name": "line loss factor"})},
        coords={"gsp_group_id": groups, "llfc_id": codes, "time": root["time"].to_numpy()},
        attrs={**root.attrs, **meta, "complete": 1})  # appending replaces the root's attrs
    cube._prepared(out.drop_vars("time"), "zarr").to_zarr(path, mode="a", zarr_format=3, consolidated=False)


def generate_store(scenario, path, *, block_mpans: int = DEFAULT_BLOCK_MPANS, runner: Runner | None = None,
                   settings=None, **runner_options) -> GenerateResult:
    """Generate a scenario's market block by block into a Zarr store (module docstring), atomically.

    Parameters
    ----------
    scenario : Scenario
    path : path
        Store to write (``.zarr``); replaced only once every block is written.
    block_mpans : int
        Most import MPANs per block.
    runner : Runner, optional
        Where the blocks run; default one from :func:`tomlib.scale.cluster.open_runner` with
        ``runner_options`` (``scheduler``, ``workers``, ``memory_limit``, ``synchronous``).
    settings : GeneratorSettings, optional

    Returns
    -------
    GenerateResult
    """
    started = time.perf_counter()
    path = Path(path)
    plan = plan_blocks(scenario, block_mpans)
    scenario_dict = scenario.to_dict()
    plan_json = plan.to_json()
    with atomic_target(path) as tmp:
        root = _root_template(scenario, plan)
        cube._prepared(root, "zarr").to_zarr(tmp, mode="w-", zarr_format=3, consolidated=False,
                                             encoding=_region_encoding(root))
        with _runner(runner, runner_options) as run:
            summaries = sorted(run.map(write_block, range(len(plan)), scenario_dict, plan_json, str(tmp.resolve()),
                                       settings), key=lambda s: s["block"])
            where = run.description
        from tomlib import market as market_mod

        meta = {"generator_settings": (settings or market_mod.GeneratorSettings()).to_json(),
                "tomlib_version": market_mod._tomlib_version(),
                "generated_by": where, "rows": int(sum(s["rows"] for s in summaries))}
        _finish(tmp, scenario, plan, [s.pop("llf") for s in summaries], meta)
    return GenerateResult(path=path, plan=plan, seconds=time.perf_counter() - started, blocks=summaries, runner=where)


def _runner(runner: Runner | None, options: dict):
    import contextlib

    return contextlib.nullcontext(runner) if runner is not None else open_runner(**options)


def is_market_store(path) -> bool:
    """Whether ``path`` is a chunked market store (root attribute ``tomlib_store``)."""
    path = Path(path)
    meta = path / "zarr.json"
    if not meta.is_file():
        return False
    try:
        attrs = json.loads(meta.read_text()).get("attributes", {})
    except (OSError, ValueError):
        return False
    return attrs.get("tomlib_store") == STORE_KIND


class MarketStore:
    """A chunked market store opened for reading.

    Parameters
    ----------
    path : path

    Attributes
    ----------
    path : Path
    plan : BlockPlan
    scenario : Scenario
        The scenario the store was generated from.
    attrs : dict
        Root attributes.
    """

    def __init__(self, path):
        from tomlib.scenario import Scenario

        self.path = Path(path)
        if not is_market_store(self.path):
            raise ValueError(f"{self.path}: not a chunked market store (written by tomlib.scale.generate_store)")
        # the root holds only small per-block and per-GSP-group arrays: read them into memory with
        # numpy (a dask-backed view would, inside a dask worker, schedule its reads on the cluster)
        with xr.open_dataset(self.path, engine="zarr", consolidated=False, chunks=None) as src:
            root = src.load()
        self.attrs = dict(root.attrs)
        if not self.attrs.get("complete"):
            raise ValueError(f"{self.path}: the store is incomplete (its generation did not finish)")
        self.plan = BlockPlan.from_json(self.attrs["plan"])
        self.scenario = Scenario.from_dict(json.loads(self.attrs["scenario"]), source=f"{self.path} (stored scenario)")
        self._root = cube._fixed_width(root)

    @property
    def times(self) -> np.ndarray:
        """UTC period starts of the market."""
        return self._root["time"].to_numpy()

    @property
    def rows(self) -> int:
        """MPANs in the store (imports, exports, UMS)."""
        return int(self._root["block_mpans"].sum())

    def _market_level(self, name: str, dim: str, new: str) -> xr.DataArray:
        da = self._root[name].load().rename({dim: new})
        da = da.drop_vars([c for c in ("settlement_date", "settlement_period") if c in da.coords])
        return cube.add_settlement_coords(da)

    @property
    def gsp_group_take(self) -> xr.DataArray:
        """True GSP group take (gsp_group, time) [kWh]: the sum of the blocks' takes."""
        return self._market_level("gsp_group_take", "gsp_group_id", "gsp_group")

    @property
    def unaccounted_energy(self) -> xr.DataArray:
        """Unaccounted energy (gsp_group, time) [kWh]."""
        return self._market_level("unaccounted_energy", "gsp_group_id", "gsp_group")

    @property
    def line_loss_factors(self) -> xr.DataArray:
        """LLF (llfc, time) [-] of every LLFC used."""
        return self._market_level("line_loss_factor", "llfc_id", "llfc")

    def block_market(self, index: int):
        """Block ``index`` as an in-memory :class:`~tomlib.market.Market` (what :func:`generate_block` gives)."""
        from tomlib.market import Market

        block = self.plan.blocks[index]
        with xr.open_dataset(self.path, engine="zarr", group=f"blocks/{block.name}", consolidated=False) as src:
            ds = src.load()
        return Market.from_dataset(decode_strings(ds))

    def meters(self, variables=("energy",)) -> xr.Dataset:
        """Every MPAN's true energy as one lazy dask-backed cube (mpan x time), block after block.

        Parameters
        ----------
        variables : sequence of str
            Meter variables to include (their standing coordinates come along).
        """
        parts = []
        for block in self.plan.blocks:  # one lazy view per block; nothing is read here
            ds = xr.open_zarr(self.path, group=f"blocks/{block.name}", consolidated=False)
            part = ds[list(variables)]  # keeps the coordinates on mpan and time only
            parts.append(decode_strings(part.assign_coords({c: part[c].load() for c in part.coords
                                                            if "tomlib_dtype" in part[c].attrs})))
        return xr.concat(parts, dim="mpan", data_vars="minimal", coords="minimal", compat="override",
                         join="exact")
