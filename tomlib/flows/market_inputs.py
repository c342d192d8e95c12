"""The market inputs settlement needs, checked where they enter from a file (:meth:`tomlib.market.Market.open`).

A saved market (``market.zarr`` / ``.nc``, :meth:`tomlib.market.Market.save`) carries, besides the
meter cube, the two inputs of settlement that no meter gives:

- ``line_loss_factor(llfc_id, time)`` [-]: the LLF of every LLFC in every period
  (:func:`tomlib.services.aggregation.aggregate` multiplies each MPAN's energy by it);
- ``gsp_group_take(gsp_group_id, time)`` [kWh]: the net take of every GSP group in every period
  (:func:`tomlib.services.volume_allocation.allocate` corrects the aggregated volumes to it).

:func:`check_market` refuses, naming the file, the variable, the LLFC or GSP group and the period,
with what was expected (:class:`MarketInputError`):

- an LLFC of the meters' standing data without LLFs ("missing LLF"), an LLF that is not finite in a
  period, an LLF that is not a factor near 1 (:data:`LLF_RANGE`: a value like 105 is a percentage,
  i.e. wrong units) or whose ``units`` attribute is not ``-``;
- a GSP group of the meters without a take ("missing GSP group take"), a take that is not finite in a
  period, ``units`` other than ``kWh`` (a take in MWh would be corrected to 1/1000 of itself);
- time axes of LLFs or take that differ from the meters' (a period without an LLF or a take).

The services check the same things again for inputs that never were a file (aggregation names the
LLFC and period of a missing LLF, allocation the GSP group and period of a missing take). A file
that is not a market store at all (empty, truncated, another format) is refused by
:func:`open_market_dataset` naming the file. The check is vectorised: it costs one pass over the
(LLFC x period) and (GSP group x period) tables, not over meters.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from tomlib import calendar as cal
from tomlib.flows._common import FlowError

__all__ = ["LLF_RANGE", "MarketInputError", "check_market", "open_market_dataset"]

#: Plausible line loss factors [-] [INF]: GB LLFs lie around 1.00-1.15 for demand and 0.9-1.0 for
#: generation; outside this range a value is in other units (a percentage) or corrupt.
LLF_RANGE = (0.5, 2.0)


class MarketInputError(FlowError):
    """A market file does not hold the inputs settlement needs."""


def open_market_dataset(path) -> xr.Dataset:
    """Open a market store (:func:`tomlib.cube.open`), refusing what is not one with a message naming the file."""
    from tomlib import cube

    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise MarketInputError(f"{path.name}: empty file; expected a market store (netCDF or Zarr) written by "
                               "Market.save", source=path.name)
    try:
        return cube.open(path)
    except (FileNotFoundError, MarketInputError):
        raise
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:  # h5py, zarr and xarray differ
        raise MarketInputError(f"{path.name}: expected a complete market store (netCDF or Zarr) written by "
                               f"Market.save, got one that cannot be read (truncated or damaged?): "
                               f"{type(exc).__name__}: {exc}", source=path.name) from None


def _period(t) -> str:
    d, sp = cal.from_utc([t])
    return f"{d[0]:%Y-%m-%d} period {sp[0]} ({pd.Timestamp(t):%H:%M} UTC)"


def _table(source: str, var: str, da: xr.DataArray, key_dim: str, times: np.ndarray, units: tuple[str, ...]):
    if da.dims != (key_dim, "time"):
        raise MarketInputError(f"{source}, variable {var}: expected dims ({key_dim}, time), got {da.dims}",
                               source=source, field=var)
    got = da.attrs.get("units")
    if got not in units:
        raise MarketInputError(f"{source}, variable {var}: expected units {units[0]!r}, got {got!r}",
                               source=source, field=var)
    t = np.asarray(da["time"].values, dtype="datetime64[ns]")
    if not np.array_equal(t, times):
        missing = np.setdiff1d(times, t)
        what = f"no value for {_period(missing[0])}" if missing.size else "a different time axis"
        raise MarketInputError(f"{source}, variable {var}: expected the meters' {times.size} periods, got {what}",
                               source=source, field=var)
    return pd.Index(np.asarray(da[key_dim].values, dtype=str)), np.asarray(da.values, dtype=float)


def check_market(market, source: str = "market") -> None:
    """Check the LLFs and the GSP group take of a market against its meters (module docstring).

    Parameters
    ----------
    market : tomlib.market.Market
    source : str
        The file name, for messages.

    Raises
    ------
    MarketInputError
    """
    meters = market.meters
    times = np.asarray(meters["time"].values, dtype="datetime64[ns]")
    mpans = np.asarray(meters["mpan"].values, dtype=str)

    known, llf = _table(source, "line_loss_factor", market.line_loss_factors, "llfc", times, ("-", "1"))
    llfc = np.asarray(meters["llfc"].values, dtype=str)
    used, first = np.unique(llfc, return_index=True)
    row = known.get_indexer(used)
    if (row < 0).any():
        k = int(np.argmax(row < 0))
        raise MarketInputError(
            f"{source}, variable line_loss_factor, LLFC {used[k]}: expected line loss factors for every LLFC of "
            f"the meters, got none (MPAN {mpans[first[k]]} has LLFC {used[k]}; first needed in "
            f"{_period(times[0])})", source=source, field="line_loss_factor")
    values = llf[row]
    bad = ~np.isfinite(values)
    out = ~bad & ((values < LLF_RANGE[0]) | (values > LLF_RANGE[1]))
    for mask, expected in ((bad, "a finite LLF"),
                           (out, (f"a line loss factor near 1 ({LLF_RANGE[0]:g}..{LLF_RANGE[1]:g}; a value like "
                                  "105 is a percentage: wrong units)"))):
        if mask.any():
            k, j = np.argwhere(mask)[0]
            raise MarketInputError(
                f"{source}, variable line_loss_factor, LLFC {used[k]}, {_period(times[j])}: expected {expected}, "
                f"got {float(values[k, j])!r}", source=source, field="line_loss_factor")

    known, take = _table(source, "gsp_group_take", market.gsp_group_take, "gsp_group", times, ("kWh",))
    groups, first = np.unique(np.asarray(meters["gsp_group"].values, dtype=str), return_index=True)
    row = known.get_indexer(groups)
    if (row < 0).any():
        k = int(np.argmax(row < 0))
        raise MarketInputError(
            f"{source}, variable gsp_group_take, GSP group {groups[k]}: expected a take for every GSP group of the "
            f"meters, got none (MPAN {mpans[first[k]]} is in {groups[k]}; first needed in {_period(times[0])}; "
            f"the take covers {', '.join(known) or 'no group'})", source=source, field="gsp_group_take")
    values = take[row]
    bad = ~np.isfinite(values)
    if bad.any():
        k, j = np.argwhere(bad)[0]
        raise MarketInputError(
            f"{source}, variable gsp_group_take, GSP group {groups[k]}, {_period(times[j])}: expected a finite "
            f"take [kWh], got {float(values[k, j])!r}", source=source, field="gsp_group_take")
