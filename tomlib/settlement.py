"""Settlement runs: every service, run by run (II, SF, R1, R2, R3, RF, DF), and their reconciliation.

One run for a set of settlement days
------------------------------------
1. **As-of.** Each settlement day's as-of date comes from the scenario's run timetable
   (:func:`tomlib.reference.run_as_of`, working days of England & Wales by default); the as-of
   *instant* is the start (local midnight, in UTC) of that date: a run sees what was available
   before its day began.
2. **Registration** in force per MPAN x period as known at each day's as-of instant
   (:mod:`tomlib.registration`; a late-notified change is picked up by the first run after it).
3. **Segment data services** are discovered by the protocol of :mod:`tomlib.services.base`:
   ``S`` -> ``tomlib.services.processing.settle_segment``, ``A`` -> ``tomlib.services.advanced``,
   ``U`` -> ``tomlib.services.ums``; those that exist are called once per distinct as-of instant
   with the days that share it. An MPAN of a segment whose service does not exist yet is **not
   dropped silently**: the run's checks report ``unsettled: no data service for segment A`` with
   the MPAN count and their true energy, and since nobody's volume holds that energy it ends up in
   the GSP group correction residual (it is spread over the other suppliers by the correction).
   An MPAN a service does not return is settled as a default by aggregation (and counted).
4. **Aggregation** (:mod:`tomlib.services.aggregation`) and **volume allocation**
   (:mod:`tomlib.services.volume_allocation`) against the market's GSP group take.
5. **Truth.** The same aggregation on the market's true energy with the true (fully known)
   registration gives each BM unit's true volume at the GSP; ``allocated - true`` is what each
   BM unit pays for theft, unsettled segments and estimation error in that run.

The run's result is one Dataset (dims ``aggregate``, ``time``, ``gsp_group_id``, ``direction``,
``bm_unit_id``, ``status``, ``settlement_day``) with its provenance in ``attrs``: scenario name and
digest, seed, run, timetable, as-of range, code version, input digest (BLAKE2b of the inputs it
used), the segment services used and the checks (JSON). :func:`settle` saves it atomically with
:func:`tomlib.cube.save` to ``<data_root>/<scenario>/settlement/<run>.zarr``.

Reconciliation
--------------
:func:`reconcile` stacks runs on a ``run`` dimension: run-to-run deltas per supplier, BM unit and
GSP group (:func:`run_deltas`), the convergence of settled volumes to the truth
(:func:`convergence`) and who carries the unaccounted energy in each run (:func:`who_pays`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from tomlib import calendar, cube, reference
from tomlib import registration as reg
from tomlib.mpan import positions
from tomlib.services import aggregation, volume_allocation
from tomlib.services._aggregation_kernel import valued_cell_sums

__all__ = [
    "SEGMENT_SERVICES",
    "RunResult",
    "SettlementConfig",
    "SettlementRuns",
    "as_of_instants",
    "check_table",
    "code_version",
    "convergence",
    "discover_services",
    "open_run",
    "provenance_table",
    "reconcile",
    "run_deltas",
    "run_store_path",
    "settle",
    "settle_all",
    "settle_run",
    "summary_records",
    "true_volumes",
    "who_pays",
]

#: Module of each market segment's data service (protocol of tomlib.services.base).
SEGMENT_SERVICES = {"S": "tomlib.services.processing", "A": "tomlib.services.advanced", "U": "tomlib.services.ums"}

_STANDING = tuple(cube.STANDING_COORDS)


@dataclass(frozen=True)
class SettlementConfig:
    """Choices of a settlement run that are not in the scenario file.

    Attributes
    ----------
    take_split : str
        How the net GSP group take is split into import and export takes
        (:data:`tomlib.services.volume_allocation.TAKE_SPLITS`).
    gcf_range : (float, float)
        Factors outside are flagged [-].
    actual_quality : tuple of str
        DI-083 labels aggregated as actual.
    region : str
        Bank-holiday region of the working days of the run timetable.
    registration : RegistrationSettings, optional
        Default: the scenario's ``registration`` section, else the defaults.
    segment_configs : Mapping[str, Any]
        ``config`` passed to each segment's ``settle_segment`` (by segment letter). Without one, the
        smart segment (S) gets the scenario itself (its ``metering``, ``retrieval`` and
        ``meter_reading`` sections configure the smart data service); other segments get None.
    services : Mapping[str, Callable], optional
        Segment services to use instead of discovery (tests, experiments).
    weights : Series, optional
        GSP group correction scaling weights per CCC; default the reference table.
    """

    take_split: str = "export_metered"
    gcf_range: tuple[float, float] = volume_allocation.GCF_RANGE
    actual_quality: tuple[str, ...] = aggregation.ACTUAL_QUALITY
    region: str = "england_wales"
    registration: reg.RegistrationSettings | None = None
    segment_configs: Mapping[str, Any] = field(default_factory=dict)
    services: Mapping[str, Callable] | None = None
    weights: pd.Series | None = None

    def describe(self) -> dict:
        """JSON-ready summary (for provenance)."""
        return {"take_split": self.take_split, "gcf_range": list(self.gcf_range),
                "actual_quality": list(self.actual_quality), "region": self.region,
                "registration": dataclasses.asdict(self.registration) if self.registration else None,
                "weights": None if self.weights is None else {str(k): float(v) for k, v in self.weights.items()}}


@dataclass
class RunResult:
    """One settlement run: its dataset and where it was saved (None if not saved)."""

    run: str
    dataset: xr.Dataset
    path: Path | None = None

    @property
    def checks(self) -> dict[str, float]:
        """Named invariants and counts of the run."""
        return json.loads(self.dataset.attrs["checks"])


@dataclass
class SettlementRuns:
    """Several runs of a scenario and their reconciliation."""

    runs: dict[str, RunResult]
    reconciliation: xr.Dataset
    path: Path | None = None


# ------------------------------------------------------------------------------------------ services


def discover_services(modules: Mapping[str, str] = SEGMENT_SERVICES) -> dict[str, Callable]:
    """The segment services that exist: segment letter -> ``settle_segment``.

    A module that does not exist (yet) is skipped; any other import error is raised, so a
    broken service is never mistaken for a missing one.
    """
    found = {}
    for segment, name in modules.items():
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:
                continue
            raise
        fn = getattr(module, "settle_segment", None)
        if callable(fn):
            found[segment] = fn
    return found


def as_of_instants(settlement_dates, run: str, preset: str = "mhhs", region: str = "england_wales") -> pd.Series:
    """As-of instant of a run per settlement day: local midnight starting the as-of date, in UTC.

    Returns
    -------
    Series
        Index the settlement dates, values tz-naive UTC Timestamps.
    """
    dates = pd.DatetimeIndex(np.atleast_1d(np.asarray(settlement_dates, dtype="datetime64[ns]")))
    as_of_dates = reference.run_as_of(dates, run, preset=preset, region=region)
    return pd.Series(calendar.to_utc(as_of_dates, 1).to_numpy(), index=dates.rename("settlement_date"),
                     name="as_of")


# ------------------------------------------------------------------------------------------ truth


def _mpan_text(meters: xr.Dataset) -> np.ndarray:
    """``np.asarray(meters["mpan"].values, dtype=str)``, read from the index's Arrow buffers when the
    MPANs are fixed-width ASCII (xarray converts them string by string: ~30 ms per 100k)."""
    from tomlib._text import numpy_text as _unicode

    index = meters.indexes.get("mpan")
    if index is not None and isinstance(index.dtype, pd.StringDtype) and len(index):
        return np.asarray(_unicode(index.array), dtype=str)
    return np.asarray(meters["mpan"].values, dtype=str)


def _bm_unit_sums(agg: xr.Dataset, values: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """Sum (aggregate, time) values per BM unit and direction -> (units table, (n_bmu, 2, n_time))."""
    direction = np.where(np.asarray(agg["measurement_quantity"].values) == "AE", "export", "import")
    groups, sums = aggregation.group_sum(values, [np.asarray(agg["bm_unit"].values, dtype=str), direction])
    units = np.unique(groups["k0"].to_numpy(dtype=str))
    out = np.zeros((units.size, 2, values.shape[1]))
    out[np.searchsorted(units, groups["k0"].to_numpy(dtype=str)),
        (groups["k1"].to_numpy() == "export").astype(int)] = sums
    table = pd.DataFrame({"bm_unit": np.asarray(agg["bm_unit"].values, dtype=str),
                          "supplier": np.asarray(agg["supplier"].values, dtype=str),
                          "gsp_group": np.asarray(agg["gsp_group"].values, dtype=str)}).drop_duplicates("bm_unit")
    table = table.set_index("bm_unit").reindex(units)
    return table, out


def true_volumes(market, events: pd.DataFrame, times) -> xr.Dataset:
    """True volume at the GSP of every BM unit: true energy x LLF under the true registration.

    Parameters
    ----------
    market : Market
    events : DataFrame
        Registration history; every event counts (the truth knows every change).
    times : array-like of datetime64
        Periods (a subset of the market's time axis).

    Returns
    -------
    Dataset
        ``true_import``, ``true_export``, ``true_net(bm_unit_id, time)`` [kWh] with coordinates
        ``bm_unit_supplier``, ``bm_unit_gsp_group``; ``unaccounted_energy(gsp_group_id, time)``
        [kWh] (market) and ``true_outside_volumes(gsp_group_id, time)`` = take - sum true_net [kWh]
        (unaccounted energy plus consumption of MPANs registered de-energised).
    """
    times = np.asarray(times, dtype="datetime64[ns]")
    # every period (a one-day block): no selection, which would copy the whole cube
    meters = market.meters if np.array_equal(times, market.meters["time"].values) else market.meters.sel(time=times)
    # selecting periods by an array gives column-major copies (and full_like keeps that layout);
    # aggregation gathers rows, which is ten times slower on them at a block's size (same values)
    quality = meters["quality"]
    truth = meters.assign(energy=meters["energy"].copy(data=np.ascontiguousarray(meters["energy"].values)),
                          quality=quality.copy(data=np.full(quality.shape, cube.QUALITY_CODES["A"], quality.dtype)))
    force = reg.in_force(events, _mpan_text(market.meters), times)
    agg = aggregation.aggregate(truth, force, market.line_loss_factors)
    units, sums = _bm_unit_sums(agg, np.asarray(agg["energy"].values))
    take = market.gsp_group_take.sel(time=times)
    groups = np.asarray(take["gsp_group"].values, dtype=str)
    by_group = np.zeros((groups.size, times.size))
    g_idx = pd.Index(groups).get_indexer(units["gsp_group"].to_numpy(dtype=str))
    np.add.at(by_group, g_idx, sums[:, 0] - sums[:, 1])
    dims = ("bm_unit_id", "time")
    return xr.Dataset(
        {
            "true_import": (dims, sums[:, 0], {"units": "kWh", "long_name": "true import at the GSP"}),
            "true_export": (dims, sums[:, 1], {"units": "kWh", "long_name": "true export at the GSP"}),
            "true_net": (dims, sums[:, 0] - sums[:, 1], {"units": "kWh", "long_name": "true net volume at the GSP"}),
            "unaccounted_energy": (("gsp_group_id", "time"), market.unaccounted_energy.sel(
                time=times, gsp_group=groups).values, {"units": "kWh", "long_name": "unaccounted energy (market)"}),
            "true_outside_volumes": (("gsp_group_id", "time"), take.values - by_group,
                                     {"units": "kWh", "long_name": "take in no BM unit's true volume"}),
        },
        coords={"bm_unit_id": units.index.to_numpy(dtype=str),
                "bm_unit_supplier": ("bm_unit_id", units["supplier"].to_numpy(dtype=str)),
                "bm_unit_gsp_group": ("bm_unit_id", units["gsp_group"].to_numpy(dtype=str)),
                "gsp_group_id": groups, "time": times},
    )


# ------------------------------------------------------------------------------------------ one run


@dataclass
class _Context:
    market: Any
    scenario_name: str
    scenario_digest: str
    seed: int
    preset: str
    dates: pd.DatetimeIndex
    times: np.ndarray
    events: pd.DataFrame
    truth: xr.Dataset
    config: SettlementConfig
    services: dict[str, Callable]
    scenario: Any = None

    def segment_config(self, segment: str):
        if segment in self.config.segment_configs:
            return self.config.segment_configs[segment]
        return self.scenario if segment == "S" else None


def _prepare(market, *, scenario=None, settlement_dates=None, events=None, preset=None,
             config: SettlementConfig | None = None) -> _Context:
    config = config or SettlementConfig()
    all_dates = pd.DatetimeIndex(np.unique(np.asarray(market.meters["settlement_date"].values)))
    dates = all_dates if settlement_dates is None else pd.DatetimeIndex(
        np.atleast_1d(np.asarray(settlement_dates, dtype="datetime64[ns]")))
    outside = dates[~dates.isin(all_dates)]
    if len(outside):
        raise ValueError(f"settlement date {outside[0]:%Y-%m-%d} is not in the market "
                         f"({all_dates[0]:%Y-%m-%d}..{all_dates[-1]:%Y-%m-%d})")
    day_of_t = np.asarray(market.meters["settlement_date"].values, dtype="datetime64[ns]")
    times = np.asarray(market.meters["time"].values)[np.isin(day_of_t, dates.to_numpy())]
    if events is None:
        settings = config.registration or (reg.RegistrationSettings.from_scenario(scenario) if scenario
                                           else reg.RegistrationSettings())
        events = reg.generate_events(market, settings)
    preset = preset or (getattr(scenario, "timetable", None) or "mhhs")
    services = dict(config.services) if config.services is not None else discover_services()
    return _Context(
        market=market, scenario_name=str(getattr(scenario, "name", market.scenario_name)),
        scenario_digest=str(scenario.digest() if scenario is not None else market.attrs.get("scenario_digest", "")),
        seed=int(market.seed), preset=preset, dates=dates.sort_values(), times=times, events=events,
        truth=true_volumes(market, events, times), config=config, services=services, scenario=scenario)


def _is_range(idx: np.ndarray, n: int) -> bool:
    """``idx`` is 0, 1, ..., n-1."""
    return idx.size == n and bool((idx == np.arange(n)).all())


def _call_segment(ctx: _Context, segment: str, fn: Callable, run: str, as_of: pd.Series, mpans: np.ndarray):
    """Call a segment service once per distinct as-of instant; stitch energy/quality over the run's times.

    Returns energy, quality, estimation reason (mpans x run periods; MPANs or periods the service did
    not return stay MISSING), the service's checks summed over the calls, and rejected records by reason.
    """
    n_t = ctx.times.size
    energy = quality = reason = None  # made at the first call (or after none)
    checks: dict[str, float] = {}
    rejected: dict[str, float] = {}
    t_pos = pd.Index(ctx.times)
    groups = as_of.groupby(as_of.values)
    for instant, days in groups:  # distinct as-of instants (days), not periods
        result = fn(ctx.market, pd.Timestamp(instant), run=run, settlement_dates=pd.DatetimeIndex(days.index),
                    config=ctx.segment_config(segment))
        if result.segment != segment:
            raise ValueError(f"segment service {fn.__module__}.settle_segment returned segment "
                             f"{result.segment!r}, expected {segment!r}")
        cube.validate_meter_cube(result.meters, where=f"{fn.__module__}.settle_segment ({run}, {instant})")
        # joined on the cores' numbers, read from the index's Arrow strings (its .values would convert
        # every MPAN to NumPy text): the same as pd.Index(mpans).get_indexer(got)
        got = result.meters.indexes["mpan"]
        rows = positions(mpans, got)
        if (rows < 0).any():
            raise ValueError(f"{fn.__module__}.settle_segment returned MPAN {np.asarray(got, dtype=str)[rows < 0][0]}, "
                             f"which is not a segment {segment} MPAN of the market")
        cols = t_pos.get_indexer(np.asarray(result.meters["time"].values, dtype="datetime64[ns]"))
        day_t = np.isin(np.asarray(ctx.market.meters["settlement_date"].values, dtype="datetime64[ns]")
                        [np.isin(np.asarray(ctx.market.meters["time"].values), ctx.times)],
                        days.index.to_numpy())
        want = np.flatnonzero(day_t)
        if (cols < 0).any() or not np.isin(want, cols).all():
            raise ValueError(f"{fn.__module__}.settle_segment must return every period of "
                             f"{', '.join(f'{d:%Y-%m-%d}' for d in days.index)} and no other")
        whole = _is_range(rows, mpans.size) and _is_range(cols, n_t)
        if energy is None and whole and groups.ngroups == 1:
            # one call covering every cell in the service's own order (the usual case): its arrays as
            # they are, not copied into a filled cube (the caller concatenates the segments, a copy)
            energy = np.asarray(result.meters["energy"].values, dtype=float)
            quality = np.asarray(result.meters["quality"].values).astype(np.uint8, copy=False)
            reason = np.asarray(result.meters["estimation_reason"].values).astype(np.uint8, copy=False)
        else:
            if energy is None:
                energy, quality, reason = _missing_cells(mpans.size, n_t)
            at = (slice(None), slice(None)) if whole else np.ix_(rows, cols)
            energy[at] = np.asarray(result.meters["energy"].values, dtype=float)
            quality[at] = np.asarray(result.meters["quality"].values)
            reason[at] = np.asarray(result.meters["estimation_reason"].values)
        for why, n in result.rejected["reason"].astype(str).value_counts().items():
            rejected[why] = rejected.get(why, 0.0) + float(n)
        for k, v in result.checks.items():
            # counts add up over the as-of groups; a rate would not, so services report counts
            checks[k] = checks.get(k, 0.0) + float(v)
    if energy is None:
        energy, quality, reason = _missing_cells(mpans.size, n_t)
    return energy, quality, reason, checks, rejected


def _missing_cells(n_mpan: int, n_t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Energy (NaN), quality and estimation reason (0) of cells no service call returned."""
    return (np.full((n_mpan, n_t), np.nan), np.zeros((n_mpan, n_t), dtype=np.uint8),
            np.zeros((n_mpan, n_t), dtype=np.uint8))


def settle_run(market, run: str, *, scenario=None, settlement_dates=None, events: pd.DataFrame | None = None,
               preset: str | None = None, config: SettlementConfig | None = None,
               _context: _Context | None = None) -> xr.Dataset:
    """One settlement run over a set of settlement days, in memory (no file I/O).

    Parameters
    ----------
    market : Market
    run : str
        One of the timetable preset's runs (II, SF, R1, R2, R3, RF, DF).
    scenario : Scenario, optional
        For provenance, the timetable preset and the registration knobs.
    settlement_dates : array-like, optional
        Days to settle; default every day of the market.
    events : DataFrame, optional
        Registration history; default generated from the market (:func:`tomlib.registration.generate_events`).
    preset : str, optional
        Run timetable; default the scenario's, else ``"mhhs"``.
    config : SettlementConfig, optional

    Returns
    -------
    Dataset
        The run (module docstring); ``attrs["checks"]`` holds the checks as JSON.
    """
    ctx = _context or _prepare(market, scenario=scenario, settlement_dates=settlement_dates, events=events,
                               preset=preset, config=config)
    as_of = run_as_of(ctx, run)
    settled, force, checks, used = settled_cube(ctx, run, as_of)
    agg = aggregation.aggregate(settled, force, market.line_loss_factors, actual_quality=ctx.config.actual_quality)
    take = market.gsp_group_take.sel(time=ctx.times)
    alloc = volume_allocation.allocate(agg, take, weights=ctx.config.weights, take_split=ctx.config.take_split,
                                       gcf_range=ctx.config.gcf_range)
    ds = _assemble(ctx, run, agg, alloc, as_of)
    checks.update(_checks(ds, agg, settled, force, market))
    ds.attrs.update(_provenance(ctx, run, as_of, used, checks))
    return ds


def run_as_of(ctx: _Context, run: str) -> pd.Series:
    """As-of instant of ``run`` per settlement day of the context (:func:`as_of_instants`), after checking
    that the run is one of the context's timetable."""
    table = reference.run_timetable(ctx.preset)
    if run not in table.index:
        raise ValueError(f"unknown run {run!r} for timetable {ctx.preset!r}; expected one of {', '.join(table.index)}")
    return as_of_instants(ctx.dates, run, ctx.preset, ctx.config.region)


def settled_cube(ctx: _Context, run: str, as_of: pd.Series):
    """Steps 2-3 of a run: every segment's data service, stitched into one settled meter cube.

    The part of :func:`settle_run` that works MPAN by MPAN (the chunked engine of
    :mod:`tomlib.scale` calls it block by block, then aggregates each block).

    Returns
    -------
    settled : Dataset
        Meter cube of the MPANs of the segments with a data service over the run's periods:
        ``energy`` [kWh], ``quality``, ``estimation_reason``, standing coordinates.
    force : RegistrationInForce
        Registration in force per (MPAN, period) as known at each day's as-of instant.
    checks : dict
        MPAN and period counts, per-segment service checks (counts) and unsettled segments.
    used : dict
        Segment letter -> the data service function used.
    """
    market = ctx.market
    sd_of_t = pd.DatetimeIndex(calendar.from_utc(ctx.times)[0])
    as_of_t = as_of.reindex(sd_of_t).to_numpy()
    meters = market.meters
    all_mpans = _mpan_text(meters)
    seg_of = np.asarray(meters["market_segment"].values, dtype=str)
    t_idx = np.flatnonzero(np.isin(np.asarray(meters["time"].values), ctx.times))
    checks: dict[str, float] = {"mpans": float(all_mpans.size), "periods": float(ctx.times.size)}
    parts, used = [], {}
    for segment in ("S", "A", "U"):  # three market segments
        rows = np.flatnonzero(seg_of == segment)
        if rows.size == 0:
            continue
        checks[f"mpans.{segment}"] = float(rows.size)
        fn = ctx.services.get(segment)
        if fn is None:
            true_e = np.asarray(meters["energy"].values)[np.ix_(rows, t_idx)]
            checks[f"unsettled: no data service for segment {segment}"] = float(rows.size)
            checks[f"unsettled: no data service for segment {segment}, true energy [kWh]"] = float(np.nansum(true_e))
            continue
        used[segment] = f"{fn.__module__}.{fn.__name__}"
        energy, quality, reason, seg_checks, rejected = _call_segment(ctx, segment, fn, run, as_of, all_mpans[rows])
        checks.update({f"{segment}: {k}": v for k, v in seg_checks.items()})
        checks[f"{segment}: rejected records"] = float(sum(rejected.values()))
        checks.update({f"{segment}: rejected records: {why}": n for why, n in rejected.items()})
        checks[f"{segment}: MPAN-periods without a value (defaulted where energised)"] = float(
            (quality == cube.MISSING).sum())
        parts.append((rows, energy, quality, reason))

    rows = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, dtype=int)
    settled = meters.drop_vars(list(meters.data_vars)).isel(mpan=rows, time=t_idx)
    settled = settled.drop_vars([c for c in settled.coords if c not in _STANDING + ("mpan", "time")])
    dims = ("mpan", "time")
    settled = settled.assign(
        energy=(dims, np.concatenate([p[1] for p in parts]) if parts else np.zeros((0, t_idx.size)), {"units": "kWh"}),
        quality=(dims, np.concatenate([p[2] for p in parts]) if parts else np.zeros((0, t_idx.size), np.uint8),
                 {"units": "1"}),
        estimation_reason=(dims, np.concatenate([p[3] for p in parts]) if parts
                           else np.zeros((0, t_idx.size), np.uint8), {"units": "1"}),
    )
    settled = cube.add_settlement_coords(settled)
    # the settled MPANs as NumPy text from the array already read (the index's .values converts them again)
    force = reg.in_force(ctx.events, all_mpans[rows], ctx.times, as_of=as_of_t)
    return settled, force, checks, used


def _assemble(ctx: _Context, run: str, agg: xr.Dataset, alloc: xr.Dataset, as_of: pd.Series) -> xr.Dataset:
    truth = ctx.truth
    units = np.union1d(alloc["bm_unit_id"].values.astype(str), truth["bm_unit_id"].values.astype(str))
    sup = pd.concat([alloc["bm_unit_supplier"].to_series(), truth["bm_unit_supplier"].to_series()])
    grp = pd.concat([alloc["bm_unit_gsp_group"].to_series(), truth["bm_unit_gsp_group"].to_series()])
    sup, grp = sup[~sup.index.duplicated()].reindex(units), grp[~grp.index.duplicated()].reindex(units)
    bmu_vars = ["allocated_import", "allocated_export", "allocated_net"]
    alloc_b = alloc[bmu_vars].drop_vars(["bm_unit_supplier", "bm_unit_gsp_group"]).reindex(bm_unit_id=units,
                                                                                           fill_value=0.0)
    truth_b = truth[["true_import", "true_export", "true_net"]].drop_vars(
        ["bm_unit_supplier", "bm_unit_gsp_group"]).reindex(bm_unit_id=units, fill_value=0.0)
    direction = np.where(np.asarray(alloc["measurement_quantity"].values) == "AE", -1.0, 1.0)
    unc = _per_unit(alloc, np.asarray(alloc["uncorrected"].values) * direction[:, None], units)
    ds = alloc.drop_vars(bmu_vars + ["bm_unit_supplier", "bm_unit_gsp_group", "bm_unit_id"])
    ds = ds.assign(alloc_b).assign(truth_b)
    ds["uncorrected_net"] = (("bm_unit_id", "time"), unc, {"units": "kWh",
                                                          "long_name": "BM unit volume before correction, net"})
    ds["allocation_error"] = (ds["allocated_net"] - ds["true_net"]).assign_attrs(
        units="kWh", long_name="allocated net - true net volume (what the BM unit pays for)")
    ds = ds.assign_coords(bm_unit_supplier=("bm_unit_id", sup.to_numpy(dtype=str)),
                          bm_unit_gsp_group=("bm_unit_id", grp.to_numpy(dtype=str)))
    ds["mpan_count"] = agg["mpan_count"]
    ds["default_count"] = agg["default_count"]
    ds["mpan_periods"] = agg["mpan_periods"].reindex(gsp_group_id=ds["gsp_group_id"].values, fill_value=0)
    groups = ds["gsp_group_id"].values
    ds["unaccounted_energy"] = truth["unaccounted_energy"].reindex(gsp_group_id=groups)
    ds["true_outside_volumes"] = truth["true_outside_volumes"].reindex(gsp_group_id=groups)
    ds["as_of"] = (("settlement_day",), as_of.to_numpy(), {"long_name": "as-of instant of the run (UTC)"})
    ds = ds.assign_coords(settlement_day=("settlement_day", as_of.index.to_numpy()))
    return cube.add_settlement_coords(ds)


def _per_unit(alloc: xr.Dataset, values: np.ndarray, units: np.ndarray) -> np.ndarray:
    code = np.searchsorted(units, np.asarray(alloc["bm_unit"].values, dtype=str))
    n_t = values.shape[1]
    flat = (code[:, None] * n_t + np.arange(n_t)[None, :]).ravel()
    return np.bincount(flat, weights=values.ravel(), minlength=units.size * n_t).reshape(units.size, n_t)


def _checks(ds: xr.Dataset, agg: xr.Dataset, settled: xr.Dataset, force, market) -> dict[str, float]:
    return run_checks(ds, cell_sums(agg, settled, force, market))


#: Keys of :func:`cell_sums`: totals over MPAN-periods that add up over any split of the MPANs [kWh].
CELL_SUMS = ("aggregated consumption", "aggregated consumption defaults", "settled energy of energised MPANs",
             "aggregated losses", "aggregated losses defaults", "losses recomputed cell by cell")


def cell_sums(agg: xr.Dataset, settled: xr.Dataset, force, market) -> dict[str, float]:
    """The MPAN-level totals behind a run's aggregation and losses checks (:data:`CELL_SUMS`) [kWh].

    They are sums, so the totals of blocks of MPANs add up to those of all of them, and
    :func:`run_checks` gives the same checks from either.
    """
    e = np.asarray(settled["energy"].values)
    comp = np.asarray(agg["component"].values)
    # losses recomputed from the cells, independently of aggregation's keys (defaults excluded):
    # sum of E x (LLF - 1) over valued cells = sum over (LLFC, period) of (LLF - 1) x their energy;
    # an LLF that is not finite where a cell is valued makes the sum NaN, as per cell it would
    codes, cats = force.codes("llfc")
    llf = market.line_loss_factors.reindex(llfc=cats).sel(time=settled["time"].values).values
    energy_by, cells_by, energised_energy = valued_cell_sums(e, np.asarray(settled["quality"].values),
                                                             force.energised, codes, len(cats), cube.MISSING)
    cell_loss = np.where(cells_by > 0, energy_by * (llf - 1.0), 0.0) if energy_by.size else np.zeros(0)
    loss_rows = comp == "losses"
    return {
        "aggregated consumption": float(agg["energy"].values[comp == "consumption"].sum()),
        "aggregated consumption defaults": float(agg["default_energy"].values[comp == "consumption"].sum()),
        "settled energy of energised MPANs": energised_energy,
        "aggregated losses": float(agg["energy"].values[loss_rows].sum()),
        "aggregated losses defaults": float(agg["default_energy"].values[loss_rows].sum()),
        "losses recomputed cell by cell": float(cell_loss.sum()),
    }


def run_checks(ds: xr.Dataset, sums: dict[str, float]) -> dict[str, float]:
    """A run's checks from its dataset and the :func:`cell_sums` of its MPANs."""
    by_group = ds["allocated_net"].groupby(ds["bm_unit_gsp_group"]).sum().reindex(
        bm_unit_gsp_group=ds["gsp_group_id"].values, fill_value=0.0).values
    unalloc = ds["unallocated"].sel(direction="import").values - ds["unallocated"].sel(direction="export").values
    conservation = np.abs(by_group + unalloc - ds["gsp_group_take"].values)
    status = ds["mpan_periods"].sum(["gsp_group_id", "time"]).to_series()
    gcf = ds["gcf"].where(~ds["uncorrectable"])
    out = {
        "conservation: max |sum allocated + unallocated - GSP group take| [kWh]": float(conservation.max(initial=0)),
        "aggregation: |sum consumption aggregates - defaults - sum settled MPAN energy| [kWh]": float(abs(
            sums["aggregated consumption"] - sums["aggregated consumption defaults"]
            - sums["settled energy of energised MPANs"])),
        "aggregation: default energy [kWh]": float(sums["aggregated consumption defaults"]),
        "gcf: min": float(gcf.min()) if gcf.notnull().any() else float("nan"),
        "gcf: max": float(gcf.max()) if gcf.notnull().any() else float("nan"),
        "gcf: cells outside range": float(ds["gcf_out_of_range"].sum()),
        "gcf: uncorrectable cells": float(ds["uncorrectable"].sum()),
        "unallocated energy [kWh]": float(np.abs(ds["unallocated"].values).sum()),
        "GSP group take [kWh]": float(ds["gsp_group_take"].sum()),
        "true volumes, net [kWh]": float(ds["true_net"].sum()),
        "allocated, net [kWh]": float(ds["allocated_net"].sum()),
        "unaccounted energy (market) [kWh]": float(ds["unaccounted_energy"].sum()),
    }
    out.update({f"MPAN-periods: {k}": float(v) for k, v in status.items()})
    agg_loss = sums["aggregated losses"] - sums["aggregated losses defaults"]
    out["losses: |sum losses CCCs - sum energy x (LLF - 1)| [kWh]"] = float(
        abs(agg_loss - sums["losses recomputed cell by cell"]))
    out["losses [kWh]"] = float(sums["aggregated losses"])
    return out


def _provenance(ctx: _Context, run: str, as_of: pd.Series, used: dict, checks: dict) -> dict:
    return {
        "title": f"settlement run {run} of scenario {ctx.scenario_name}",
        "scenario": ctx.scenario_name,
        "scenario_digest": ctx.scenario_digest,
        "seed": ctx.seed,
        "run": run,
        "timetable": ctx.preset,
        "as_of_first": pd.Timestamp(as_of.min()).isoformat(),
        "as_of_last": pd.Timestamp(as_of.max()).isoformat(),
        "settlement_dates": json.dumps([f"{d:%Y-%m-%d}" for d in ctx.dates]),
        "code_version": code_version(),
        "input_digest": _input_digest(ctx, run, as_of),
        "segment_services": json.dumps(used),
        "config": json.dumps(ctx.config.describe()),
        "checks": json.dumps(checks, allow_nan=True),
    }


def _input_digest(ctx: _Context, run: str, as_of: pd.Series) -> str:
    """BLAKE2b (256 bits) of what the run reads: run and as-of instants, market arrays on the run's
    periods, registration, settings. (BLAKE2b rather than SHA-256: it hashes a block's ~100 MB of
    energy twice as fast here, and is as strong.)"""
    h = hashlib.blake2b(digest_size=32)
    m = ctx.market
    h.update(ctx.scenario_digest.encode())
    h.update(run.encode())
    h.update(np.asarray(as_of.to_numpy(), dtype="datetime64[ns]").tobytes())
    energy = m.meters["energy"]
    if not np.array_equal(ctx.times, energy["time"].values):  # else the same bytes without a copy
        energy = energy.sel(time=ctx.times)
    h.update(np.ascontiguousarray(energy.values).data)
    h.update(_mpan_text(m.meters).tobytes())
    h.update(np.ascontiguousarray(m.line_loss_factors.sel(time=ctx.times).values).tobytes())
    h.update(np.ascontiguousarray(m.gsp_group_take.sel(time=ctx.times).values).tobytes())
    _update_with_table(h, ctx.events)
    h.update(json.dumps(ctx.config.describe(), sort_keys=True).encode())
    return h.hexdigest()


def _update_with_table(h, table: pd.DataFrame) -> None:
    """Feed a table to a hash as its raw values, column by column.

    The row count, then per column its name, dtype and values: the bytes of NumPy columns (numbers,
    booleans, datetimes); for text (Arrow-backed or object) the Arrow offsets counted from zero, the
    characters they span and the nulls. Two tables feed the same bytes exactly when they have the
    same columns, dtypes and values (however the text is chunked or sliced); no Python object per row
    (``pd.util.hash_pandas_object`` took ~0.2 s for a block's 240,000 events and gave 64 bits per row).

    Parameters
    ----------
    h : hashlib hash
        Updated in place.
    table : DataFrame
    """
    import pyarrow as pa

    h.update(f"{len(table)} rows".encode())
    for name in table.columns:
        column = table[name]
        h.update(f"\0{name}\0{column.dtype}\0".encode())
        if isinstance(column.dtype, np.dtype) and column.dtype.kind in "biufmM":
            h.update(np.ascontiguousarray(column.to_numpy()).view(np.uint8).data)
            continue
        text = pa.array(column, from_pandas=True).cast(pa.large_string())
        if isinstance(text, pa.ChunkedArray):
            text = text.combine_chunks()
        if len(text) == 0:
            continue
        _, offsets_buf, data_buf = text.buffers()
        offsets = np.frombuffer(offsets_buf, np.int64)[text.offset:text.offset + len(text) + 1]
        h.update((offsets - offsets[0]).data)
        if data_buf is not None:
            h.update(memoryview(data_buf)[int(offsets[0]):int(offsets[-1])])
        h.update(np.packbits(text.is_null().to_numpy(zero_copy_only=False)).data)


@lru_cache(maxsize=1)
def code_version() -> str:
    """tomlib's version, plus the git commit (and ``.dirty``) when run from a checkout."""
    import subprocess
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    import tomlib

    try:
        version = str(tomlib.__version__)
    except AttributeError:  # imported as a namespace package (a stray tomlib folder on sys.path)
        try:
            version = dist_version("tomlib")
        except PackageNotFoundError:
            version = "unknown"
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return version
    return f"{version}+g{commit}{'.dirty' if dirty else ''}" if commit else version


# ------------------------------------------------------------------------------------------ files and CLI


def run_store_path(scenario_name: str, run: str, data_root: str | Path = "data") -> Path:
    """Where :func:`settle` keeps a run: ``<data_root>/<scenario>/settlement/<run>.zarr``."""
    return Path(data_root) / scenario_name / "settlement" / f"{run}.zarr"


def _scenario(spec):
    from tomlib import scenario as scenario_mod

    if isinstance(spec, scenario_mod.Scenario):
        return spec
    path = Path(spec)
    if not (path.suffix in {".yaml", ".yml"} and path.exists()):
        path = scenario_mod.default_scenario_path(str(spec))
    return scenario_mod.load_scenario(path)


def _market(scenario, market=None, market_path=None, data_root: str | Path = "data"):
    from tomlib import market as market_mod

    if market is not None:
        return market
    path = Path(market_path) if market_path else Path(data_root) / scenario.name / "market.zarr"
    if market_path is None and not path.exists():
        return market_mod.generate(scenario)
    from tomlib.scale.generate import is_market_store

    if is_market_store(path):
        raise ValueError(f"{path}: a chunked market store (tomlib.scale); settle it with the chunked engine "
                         "(tom settle --engine auto or chunked; tomlib.scale.settle_chunked)")
    loaded = market_mod.Market.open(path)
    digest = loaded.attrs.get("scenario_digest")
    if digest and digest != scenario.digest():
        raise ValueError(f"{path}: market was generated from other settings of scenario {scenario.name!r} "
                         f"(digest {digest[:12]}, scenario file {scenario.digest()[:12]}); run `tom generate` again")
    return loaded


def open_run(path) -> xr.Dataset:
    """Read a run saved by :func:`settle`."""
    ds = cube.open(path)
    for key in ("run", "checks", "input_digest"):
        if key not in ds.attrs:
            raise ValueError(f"{path}: not a settlement run (attrs[{key!r}] is missing)")
    return ds


def settle(scenario, run: str = "SF", *, data_root: str | Path = "data", market=None, market_path=None,
           out: str | Path | None = None, settlement_dates=None, config: SettlementConfig | None = None,
           save: bool = True) -> RunResult:
    """``tom settle --scenario NAME --run RUN``: one settlement run of a scenario, saved.

    Parameters
    ----------
    scenario : Scenario, str or Path
        A Scenario, a scenario name in ``datasets/scenarios`` or a YAML path.
    run : str
        II, SF, R1, R2, R3, RF or DF (those of the scenario's timetable).
    data_root : path
        Folder of generated data: the market is read from ``<data_root>/<scenario>/market.zarr`` if
        it exists (else generated in memory) and the run written to :func:`run_store_path`.
    market : Market, optional
        Use this market instead.
    market_path : path, optional
        Read the market from here instead (must exist).
    out : path, optional
        Output store (``.zarr`` or ``.nc``) instead of the default.
    settlement_dates : array-like, optional
        Days to settle; default all days of the market.
    config : SettlementConfig, optional
    save : bool
        Write the run (atomically); False keeps it in memory only.

    Returns
    -------
    RunResult
    """
    sc = _scenario(scenario)
    mk = _market(sc, market, market_path, data_root)
    ds = settle_run(mk, run, scenario=sc, settlement_dates=settlement_dates, config=config)
    path = None
    if save:
        path = cube.save(ds, Path(out) if out else run_store_path(sc.name, run, data_root))
    return RunResult(run=run, dataset=ds, path=path)


def settle_all(scenario, runs=None, *, data_root: str | Path = "data", market=None, market_path=None,
               out_dir: str | Path | None = None, settlement_dates=None, config: SettlementConfig | None = None,
               save: bool = True) -> SettlementRuns:
    """``tom settle --run all``: every run of the scenario's timetable (or ``runs``) and their reconciliation.

    The registration history and the truth are computed once and shared by the runs. Each run is
    saved as in :func:`settle` (into ``out_dir`` if given) and the reconciliation as
    ``reconciliation.zarr`` beside them.

    Returns
    -------
    SettlementRuns
    """
    sc = _scenario(scenario)
    mk = _market(sc, market, market_path, data_root)
    ctx = _prepare(mk, scenario=sc, settlement_dates=settlement_dates, config=config)
    table = reference.run_timetable(ctx.preset)
    runs = list(table.index) if runs is None else list(runs)
    unknown = [r for r in runs if r not in table.index]
    if unknown:
        raise ValueError(f"unknown run(s) {unknown} for timetable {ctx.preset!r}; expected {', '.join(table.index)}")
    folder = Path(out_dir) if out_dir else run_store_path(sc.name, "X", data_root).parent
    results = {}
    for run in runs:  # a handful of runs
        ds = settle_run(mk, run, _context=ctx)
        results[run] = RunResult(run, ds, cube.save(ds, folder / f"{run}.zarr") if save else None)
    recon = reconcile({r: res.dataset for r, res in results.items()})
    path = cube.save(recon, folder / "reconciliation.zarr") if save else None
    return SettlementRuns(runs=results, reconciliation=recon, path=path)


# ------------------------------------------------------------------------------------------ reconciliation


def reconcile(runs: Mapping[str, xr.Dataset]) -> xr.Dataset:
    """Stack runs of the same days on a ``run`` dimension (in timetable order).

    Parameters
    ----------
    runs : Mapping[str, Dataset]
        Run id -> run dataset (:func:`settle_run`), all over the same settlement days.

    Returns
    -------
    Dataset
        ``allocated_net``, ``uncorrected_net``, ``allocation_error(run, bm_unit_id, time)``,
        ``true_net(bm_unit_id, time)`` [kWh]; ``gcf``, ``gcf_out_of_range(run, gsp_group_id,
        direction, time)``; ``gsp_group_take``, ``unaccounted_energy``, ``true_outside_volumes
        (gsp_group_id, time)``; ``mpan_periods(run, gsp_group_id, status, time)``; ``as_of(run,
        settlement_day)``. Coordinates ``bm_unit_supplier``, ``bm_unit_gsp_group``.
    """
    if not runs:
        raise ValueError("reconcile: no runs given")
    order = [r for r in reference.RUNS if r in runs] + [r for r in runs if r not in reference.RUNS]
    first = runs[order[0]]
    for r in order[1:]:
        if not np.array_equal(runs[r]["time"].values, first["time"].values):
            raise ValueError(f"reconcile: run {r} covers other periods than run {order[0]}")
    units = np.unique(np.concatenate([runs[r]["bm_unit_id"].values.astype(str) for r in order]))
    sup = pd.concat([runs[r]["bm_unit_supplier"].to_series() for r in order])
    grp = pd.concat([runs[r]["bm_unit_gsp_group"].to_series() for r in order])
    sup, grp = sup[~sup.index.duplicated()].reindex(units), grp[~grp.index.duplicated()].reindex(units)
    # a numpy-str index: a pandas (string dtype) index would become numpy StringDType, which Zarr v3 cannot store
    run_dim = xr.DataArray(np.array(order, dtype=str), dims="run", name="run")
    per_unit = ["allocated_net", "uncorrected_net", "allocation_error", "allocated_import", "allocated_export"]
    stacked = xr.concat(
        [runs[r][per_unit].drop_vars(["bm_unit_supplier", "bm_unit_gsp_group"]).reindex(
            bm_unit_id=units, fill_value=0.0) for r in order], dim=run_dim)
    truth = first[["true_net"]].drop_vars(["bm_unit_supplier", "bm_unit_gsp_group"]).reindex(
        bm_unit_id=units, fill_value=0.0)
    for r in order[1:]:
        other = runs[r]["true_net"].drop_vars(["bm_unit_supplier", "bm_unit_gsp_group"]).reindex(
            bm_unit_id=units, fill_value=0.0)
        if not np.allclose(other.values, truth["true_net"].values):
            raise ValueError(f"reconcile: run {r} has another truth than run {order[0]} (different market?)")
    # the error is re-derived on the union of BM units (a unit absent from a run allocated 0)
    stacked["allocation_error"] = stacked["allocated_net"] - truth["true_net"]
    gsp = xr.concat([runs[r][["gcf", "gcf_out_of_range", "uncorrectable", "unallocated", "mpan_periods",
                              "as_of"]].drop_vars([c for c in runs[r].coords if "aggregate" in runs[r][c].dims],
                                                  errors="ignore")
                     for r in order], dim=run_dim, join="outer", fill_value=np.nan)
    out = stacked.assign(truth).assign(gsp)
    for name in ("gsp_group_take", "unaccounted_energy", "true_outside_volumes"):
        out[name] = first[name]
    out = out.assign_coords(bm_unit_supplier=("bm_unit_id", sup.to_numpy(dtype=str)),
                            bm_unit_gsp_group=("bm_unit_id", grp.to_numpy(dtype=str)))
    out.attrs = {k: first.attrs[k] for k in ("scenario", "scenario_digest", "seed", "timetable", "settlement_dates")
                 if k in first.attrs}
    out.attrs["runs"] = json.dumps(order)
    out.attrs["input_digests"] = json.dumps({r: runs[r].attrs.get("input_digest", "") for r in order})
    out.attrs["code_version"] = code_version()
    return cube.add_settlement_coords(out)


_BY = {"supplier": "bm_unit_supplier", "bm_unit": "bm_unit_id", "gsp_group": "bm_unit_gsp_group"}


def _by(recon: xr.Dataset, var: str, by: str) -> xr.DataArray:
    if by not in _BY:
        raise ValueError(f"by must be one of {', '.join(_BY)}, got {by!r}")
    da = recon[var]
    return da.groupby(recon[_BY[by]]).sum() if by != "bm_unit" else da


def run_deltas(recon: xr.Dataset, by: str = "supplier") -> pd.DataFrame:
    """Run-to-run change of allocated net volume, summed over the periods [kWh].

    Parameters
    ----------
    recon : Dataset
        From :func:`reconcile`.
    by : {"supplier", "bm_unit", "gsp_group"}

    Returns
    -------
    DataFrame
        Index (run, key); columns ``previous_run``, ``allocated_net`` [kWh], ``delta`` [kWh] (0 and
        previous_run "" for the first run).
    """
    total = _by(recon, "allocated_net", by).sum("time")
    key = total.dims[-1]
    df = total.to_dataframe(name="allocated_net").reset_index().rename(columns={key: by})
    runs = list(recon["run"].values)
    prev = dict(zip(runs[1:], runs[:-1]))
    df["previous_run"] = df["run"].map({run: prev.get(run, "") for run in runs})  # the first run has none
    df = df.set_index(["run", by]).sort_index()
    prev_vals = df["allocated_net"].rename("prev").reset_index()
    prev_vals["run"] = prev_vals["run"].map({v: k for k, v in prev.items()})
    merged = df.reset_index().merge(prev_vals.dropna(subset=["run"]), on=["run", by], how="left")
    merged["delta"] = (merged["allocated_net"] - merged["prev"]).fillna(0.0)
    order = {r: i for i, r in enumerate(runs)}
    merged = merged.sort_values(["run", by], key=lambda s: s.map(order) if s.name == "run" else s)
    return merged.set_index(["run", by])[["previous_run", "allocated_net", "delta"]]


def who_pays(recon: xr.Dataset, by: str = "supplier") -> pd.DataFrame:
    """Who carries the energy that is in the take but in no true volume, per run.

    ``error = allocated - true`` summed over the periods; over all suppliers it adds up to the
    take minus the true volumes (unaccounted energy, MPANs registered de-energised) plus what the
    run could not allocate (``unallocated``).

    Returns
    -------
    DataFrame
        Index (run, key); columns ``true_net``, ``allocated_net``, ``error`` [kWh],
        ``share_of_error`` [-] (error / total error of the run), ``share_of_true`` [-].
    """
    alloc = _by(recon, "allocated_net", by).sum("time")
    truth = _by(recon, "true_net", by).sum("time")
    key = alloc.dims[-1]
    df = alloc.to_dataframe(name="allocated_net").reset_index().rename(columns={key: by})
    t = truth.to_series()
    t.index = t.index.rename(by)
    df["true_net"] = df[by].map(t).to_numpy(dtype=float)
    df["error"] = df["allocated_net"] - df["true_net"]
    err_total = df.groupby("run")["error"].transform("sum")
    true_total = df.groupby("run")["true_net"].transform("sum")
    df["share_of_error"] = np.where(err_total != 0, df["error"] / err_total.replace(0, np.nan), np.nan)
    df["share_of_true"] = df["true_net"] / true_total.replace(0, np.nan)
    order = {r: i for i, r in enumerate(recon["run"].values)}
    df = df.sort_values(["run", by], key=lambda s: s.map(order) if s.name == "run" else s)
    return df.set_index(["run", by])[["true_net", "allocated_net", "error", "share_of_error", "share_of_true"]]


def convergence(recon: xr.Dataset) -> pd.DataFrame:
    """How close each run's volumes are to the truth.

    Returns
    -------
    DataFrame
        Index run; columns ``abs_error`` (sum over BM units and periods of |allocated - true|),
        ``abs_error_uncorrected`` (same before correction), ``true_abs`` (sum of |true|) [kWh],
        ``relative_abs_error`` [-], ``actual_share`` [-] (actual MPAN-periods / settled MPAN-periods),
        ``default_share`` [-], ``import_gcf_min``, ``import_gcf_max``, ``export_gcf_min``,
        ``export_gcf_max`` [-] (uncorrectable cells left out), ``gcf_outside_range`` (cells).
    """
    true = recon["true_net"]
    abs_err = abs(recon["allocated_net"] - true).sum(["bm_unit_id", "time"])
    abs_unc = abs(recon["uncorrected_net"] - true).sum(["bm_unit_id", "time"])
    status = recon["mpan_periods"].sum(["gsp_group_id", "time"])
    settled = status.sel(status=["actual", "estimated", "default", "default_flat"]).sum("status")
    gcf = recon["gcf"].where(~recon["uncorrectable"].astype(bool))
    gcf_dims = ["gsp_group_id", "time"]
    true_abs = float(abs(true).sum())
    df = pd.DataFrame({
        "abs_error": abs_err.to_series(),
        "abs_error_uncorrected": abs_unc.to_series(),
        "true_abs": true_abs,
        "relative_abs_error": abs_err.to_series() / true_abs if true_abs else np.nan,
        "actual_share": (status.sel(status="actual") / settled.where(settled > 0)).to_series(),
        "default_share": (status.sel(status=["default", "default_flat"]).sum("status")
                          / settled.where(settled > 0)).to_series(),
        "import_gcf_min": gcf.sel(direction="import").min(gcf_dims).to_series(),
        "import_gcf_max": gcf.sel(direction="import").max(gcf_dims).to_series(),
        "export_gcf_min": gcf.sel(direction="export").min(gcf_dims).to_series(),
        "export_gcf_max": gcf.sel(direction="export").max(gcf_dims).to_series(),
        "gcf_outside_range": recon["gcf_out_of_range"].astype(bool).sum(["gsp_group_id", "direction", "time"])
        .to_series(),
    })
    df.index.name = "run"
    return df


# ------------------------------------------------------------------------------------------ report helpers


_CHECKS = (
    ("conservation: max |sum allocated + unallocated - GSP group take| [kWh]",
     "allocated volumes + unallocated = GSP group take, every GSP group and period (max abs residual)"),
    ("aggregation: |sum consumption aggregates - defaults - sum settled MPAN energy| [kWh]",
     "aggregates = sum of their MPANs' settled energy (abs residual)"),
    ("losses: |sum losses CCCs - sum energy x (LLF - 1)| [kWh]",
     "losses CCCs = energy x (LLF - 1), recomputed cell by cell (abs residual)"),
)


def check_table(result: SettlementRuns, tolerance_kwh: float = 1e-6,
                relative_tolerance: float = 1e-12) -> pd.DataFrame:
    """The invariants of every run with their numbers, for a report's "Checks" section.

    Parameters
    ----------
    result : SettlementRuns
    tolerance_kwh : float
        Largest accepted residual [kWh] of a run whose energy is small.
    relative_tolerance : float
        Largest accepted residual as a share of the run's GSP group take [-]. The two sides of a
        residual are sums of up to 1.4 billion MPAN-periods added in different orders (by aggregate,
        by block, cell by cell), so they differ by the rounding of float64 sums: on the GB day
        (take 5.2e8 kWh) by 1.7e-6 kWh, 3e-15 of the take. 1e-12 leaves room for that and still
        fails for any lost or doubled MPAN-period of more than a thousandth of a kWh per 1e9 kWh.

    Returns
    -------
    DataFrame
        Columns ``run``, ``check``, ``value``, ``expected``, ``ok``: conservation, aggregation and
        losses residuals, each within ``max(tolerance_kwh, relative_tolerance x |GSP group take|)``;
        completeness (MPAN-periods by status = MPANs x periods); and that the errors against the
        truth add up to the energy outside every true volume minus what was left unallocated.
    """
    rows = []
    for run, res in result.runs.items():  # a handful of runs
        ds, checks = res.dataset, res.checks
        tolerance = max(tolerance_kwh, relative_tolerance * abs(checks["GSP group take [kWh]"]))
        for key, text in _CHECKS:
            rows.append((run, text, checks[key], f"<= {tolerance:.3g}", checks[key] <= tolerance))
        cells = float(ds["mpan_periods"].sum())
        expected = checks["mpans"] * checks["periods"] - sum(
            v for k, v in checks.items() if k.startswith("unsettled: no data service") and not k.endswith("]")
        ) * checks["periods"]
        text = "every MPAN-period of a settled segment has one status (actual, estimated, default, " \
               "de-energised, not registered)"
        rows.append((run, text, cells, f"{expected:.0f}", cells == expected))
        err = float(ds["allocation_error"].sum())
        unalloc = float((ds["unallocated"].sel(direction="import") - ds["unallocated"].sel(direction="export")).sum())
        want = float(ds["true_outside_volumes"].sum()) - unalloc
        rows.append((run, "sum of (allocated - true) = energy outside every true volume - unallocated [kWh]",
                     err, f"{want:.6f}", abs(err - want) <= tolerance_kwh * max(1.0, abs(want))))
    return pd.DataFrame(rows, columns=["run", "check", "value", "expected", "ok"]).astype(
        {"value": float, "expected": str, "ok": bool})


def provenance_table(result: SettlementRuns) -> pd.DataFrame:
    """Where each run's numbers come from: as-of range, services, digests, code version.

    Returns
    -------
    DataFrame
        Index run; columns ``as_of_first``, ``as_of_last``, ``timetable``, ``segment_services``,
        ``unsettled_segments``, ``unsettled_true_energy_kwh`` (true energy at the meter of the MPANs of
        segments without a data service) and ``gsp_group_take_kwh`` [kWh], ``input_digest`` (first 12
        hex digits), ``code_version``.
    """
    rows = {}
    for run, res in result.runs.items():
        a = res.dataset.attrs
        unsettled = [k.rsplit(" ", 1)[-1] for k in res.checks if k.startswith("unsettled: no data service")
                     and not k.endswith("]")]
        unsettled_kwh = sum(v for k, v in res.checks.items() if k.startswith("unsettled: no data service")
                            and k.endswith("[kWh]"))
        rows[run] = {"as_of_first": a["as_of_first"], "as_of_last": a["as_of_last"], "timetable": a["timetable"],
                     "segment_services": ", ".join(f"{k}: {v}" for k, v in json.loads(a["segment_services"]).items()),
                     "unsettled_segments": ", ".join(unsettled),
                     "unsettled_true_energy_kwh": float(unsettled_kwh),
                     "gsp_group_take_kwh": float(res.checks["GSP group take [kWh]"]),
                     "input_digest": a["input_digest"][:12],
                     "code_version": a["code_version"]}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("run")


def _num(value) -> float | None:
    """A float for JSON; None for NaN (e.g. no GCF where every cell was uncorrectable)."""
    value = float(value)
    return value if np.isfinite(value) else None


def summary_records(result: SettlementRuns) -> dict[str, Any]:
    """Key figures of a set of runs as JSON-ready values (what the notebooks record).

    Returns
    -------
    dict
        ``runs``; ``gcf_range`` (run -> {direction -> [min, max]}, None where no factor exists); ``allocation_error_by_supplier``
        (run -> supplier -> allocated - true [kWh]); ``abs_error`` (run -> [kWh]);
        ``unsettled_segments`` (segment -> MPANs); ``checks_ok``.
    """
    recon = result.reconciliation
    conv = convergence(recon)
    pays = who_pays(recon)["error"]
    checks = check_table(result)
    first = next(iter(result.runs.values())).checks
    return {
        "runs": list(result.runs),
        "gcf_range": {r: {d: [_num(conv.loc[r, f"{d}_gcf_min"]), _num(conv.loc[r, f"{d}_gcf_max"])]
                          for d in ("import", "export")} for r in result.runs},
        "allocation_error_by_supplier": {r: {str(k): float(v) for k, v in pays.loc[r].items()} for r in result.runs},
        "abs_error": {r: _num(conv.loc[r, "abs_error"]) for r in result.runs},
        "unsettled_segments": {k.rsplit(" ", 1)[-1]: int(v) for k, v in first.items()
                               if k.startswith("unsettled: no data service") and not k.endswith("]")},
        "checks_ok": bool(checks["ok"].all()),
    }
