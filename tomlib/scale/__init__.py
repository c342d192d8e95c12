"""National scale: settle a GB settlement day of 30 million MPANs, chunked, on one machine or a cluster.

The in-memory path (:func:`tomlib.market.generate`, :func:`tomlib.settlement.settle_run`) holds a
whole market in one process; a GB day (30 million MPANs x 48 periods, 1.4 billion values) does
not fit. The chunked engine cuts the market into **blocks** (GSP group x MPAN block, at most
``block_mpans`` import MPANs each, 500,000 by default; a GSP group may span several blocks) and
runs every block through the *same* functions the in-memory path uses:

- :mod:`~tomlib.scale.plan`: the block plan; each block has its own seed and MPAN core range, so a
  block is a market of its own that can be regenerated and settled alone, anywhere;
- :mod:`~tomlib.scale.generate`: ``tom generate`` -- blocks generated as dask tasks into one Zarr
  store (a group per block, per-block rows of the root arrays by region writes, the whole store
  written atomically); :class:`MarketStore` reads a block back or gives a lazy dask view of all;
- :mod:`~tomlib.scale.settle`: ``tom settle`` -- per block, the smart, advanced and UMS data
  services and aggregation as :func:`tomlib.settlement.settle_run` calls them, reduced to partial
  aggregates (GSP group x supplier x BM unit x CCC x period); the partials are summed and GSP group
  correction applied once; the runs and their reconciliation are saved as the in-memory path
  saves them;
- :mod:`~tomlib.scale.cluster`: where the blocks run -- this process, a local dask cluster (default
  2 worker processes x 1 thread, 10 GiB each: peak memory is bounded by the block size, not by
  the number of MPANs) or a dask.distributed cluster given by its scheduler address;
- :mod:`~tomlib.scale.bench`: ``tom bench --scale`` / ``--gb``.

Running the GB day
------------------
::

    tom generate --scenario gb            # 14 GSP groups, 30 M MPANs -> data/gb/market.zarr (~15 GB)
    tom settle   --scenario gb --run SF   # every block, one GSP group correction -> data/gb/settlement/
    tom settle   --scenario gb --run SF --scheduler tcp://host:8786   # the blocks on a dask cluster

``gb_spring`` and ``gb_autumn`` are the same market on the 46- and 50-period days. Scenarios with
more than :data:`CHUNKED_ABOVE_MPANS` import MPANs use this engine (``--engine`` forces either);
without a market store, ``tom settle`` regenerates each block from its seed inside its task.
On a cluster, the workers need tomlib installed and the market store on storage they all see.

Equality with the in-memory path: :mod:`tomlib.scale.settle` (module docstring) and
:func:`check_sample`; tests in ``tests/test_scale.py``.
"""

import importlib

#: Public names -> the submodule holding them; imported on first use, so ``tom --help`` (which
#: reads the defaults below) does not pay for xarray.
_WHERE = {
    "PeakMemory": "cluster", "Runner": "cluster", "StageClock": "cluster", "open_runner": "cluster",
    "MarketStore": "generate", "generate_block": "generate", "generate_store": "generate",
    "is_market_store": "generate",
    "CHUNKED_ABOVE_MPANS": "plan", "DEFAULT_BLOCK_MPANS": "plan", "Block": "plan", "BlockPlan": "plan",
    "block_scenario": "plan", "plan_blocks": "plan", "wants_chunked": "plan",
    "ChunkedSettlement": "settle", "check_sample": "settle", "combine_aggregates": "settle",
    "settle_block": "settle", "settle_chunked": "settle",
}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"tomlib.scale.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'tomlib.scale' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)


__all__ = [
    "CHUNKED_ABOVE_MPANS",
    "DEFAULT_BLOCK_MPANS",
    "Block",
    "BlockPlan",
    "ChunkedSettlement",
    "MarketStore",
    "PeakMemory",
    "Runner",
    "StageClock",
    "block_scenario",
    "check_sample",
    "combine_aggregates",
    "generate_block",
    "generate_store",
    "is_market_store",
    "open_runner",
    "plan_blocks",
    "settle_block",
    "settle_chunked",
    "wants_chunked",
]
