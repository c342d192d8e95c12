"""National scale: settle a GB settlement day of 30 million MPANs, chunked, on one machine or a cluster.

(Documentation in progress; see plan, generate, settle, cluster.)
"""

from tomlib.scale.cluster import PeakMemory, Runner, open_runner
from tomlib.scale.generate import MarketStore, generate_block, generate_store, is_market_store
from tomlib.scale.plan import (
    CHUNKED_ABOVE_MPANS,
    DEFAULT_BLOCK_MPANS,
    Block,
    BlockPlan,
    block_scenario,
    plan_blocks,
    wants_chunked,
)
from tomlib.scale.settle import (
    ChunkedSettlement,
    check_sample,
    combine_aggregates,
    settle_block,
    settle_chunked,
)

__all__ = [
    "CHUNKED_ABOVE_MPANS",
    "DEFAULT_BLOCK_MPANS",
    "Block",
    "BlockPlan",
    "ChunkedSettlement",
    "MarketStore",
    "PeakMemory",
    "Runner",
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
