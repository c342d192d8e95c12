"""National scale: settle a GB settlement day of 30 million MPANs, chunked, on one machine or a cluster.

(Documentation in progress; see plan, generate, settle, cluster.)
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
