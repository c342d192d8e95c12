"""What every segment's data service hands to aggregation: the protocol between services and settlement.

Each market segment (S smart, A advanced, U unmetered) has a data service with a function
``settle_segment(market, as_of, *, run, settlement_dates, config=None) -> SegmentResult``. The settlement
run (``tomlib.settlement``) calls whichever segment services exist; a run sees only observations whose
``available_at`` is not later than the run's ``as_of`` instant.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import xarray as xr

REJECTED_COLUMNS = ("mpan", "time", "field", "reason", "value")


@dataclass
class SegmentResult:
    """A segment data service's output for one settlement run.

    Attributes
    ----------
    segment : str
        Market segment: ``"S"``, ``"A"`` or ``"U"``.
    meters : xarray.Dataset
        Meter cube (``tomlib.cube.meter_cube``) of the segment's MPANs over the run's time axis:
        ``energy`` settled per period [kWh] (NaN only where ``quality`` is MISSING), ``quality``
        (DI-083 codes) and ``estimation_reason`` (DI-076 codes).
    rejected : pandas.DataFrame
        Every input record the service refused, one row each, with at least the columns
        ``mpan, time, field, reason, value``: bad input is reported, never dropped.
    checks : dict
        Named invariants and their numbers (for example ``in_records``, ``settled``, ``rejected``);
        the report's "checks" section lists them.
    """

    segment: str
    meters: xr.Dataset
    rejected: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(REJECTED_COLUMNS)))
    checks: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.segment not in {"S", "A", "U"}:
            raise ValueError(f"SegmentResult.segment must be one of S, A, U, got {self.segment!r}")
        missing = [c for c in REJECTED_COLUMNS if c not in self.rejected.columns]
        if missing:
            raise ValueError(f"SegmentResult.rejected lacks the columns {missing}")
